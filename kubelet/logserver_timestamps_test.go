package kubelet_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/kubelet"
	"github.com/skiffhq/skiff/kubelet/sim"
	kubeletv1 "github.com/skiffhq/skiff/proto/kubelet/v1"
	"github.com/skiffhq/skiff/test/waitfor"
)

// simClock is a settable clock for the simulated runtime.
type simClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *simClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *simClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// TestLogServerTimestamps: the log server reads the runtime's CRI log and prints lines
// alone, or with --timestamps each with the time it was written; since filters by that
// time, limit-bytes cuts the output, tail and follow go with them.
func TestLogServerTimestamps(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Times an hour ago, then now (since_seconds counts on the kubelet's real clock).
	now := time.Now().UTC()
	t0 := now.Add(-time.Hour).Truncate(time.Second)
	clock := &simClock{t: t0}
	rt := sim.New(sim.Config{Present: []string{"busybox"}, Now: clock.Now})
	ls := kubelet.NewLogServer(nil)
	ls.Register("w1", rt)
	c := logsClient(t, serveLogs(t, ls, nil), insecure.NewCredentials())
	id := start(t, ctx, rt, "web", "uid-1", "app", 0, "sleep", "86400")
	clock.Set(t0.Add(time.Second))
	if err := rt.Write(id, "one"); err != nil {
		t.Fatal(err)
	}
	clock.Set(now)
	if err := rt.Write(id, "two"); err != nil {
		t.Fatal(err)
	}
	ts := func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
	startLine := "sim: container app started (image busybox, attempt 0): sleep 86400\n"
	req := func(mod func(r *kubeletv1.ContainerLogsRequest)) *kubeletv1.ContainerLogsRequest {
		r := &kubeletv1.ContainerLogsRequest{NodeName: "w1", Namespace: "default", Pod: "web", Container: "app"}
		mod(r)
		return r
	}
	for _, tc := range []struct {
		name string
		req  *kubeletv1.ContainerLogsRequest
		want string
	}{
		{"plain", req(func(r *kubeletv1.ContainerLogsRequest) {}), startLine + "one\ntwo\n"},
		{"timestamps", req(func(r *kubeletv1.ContainerLogsRequest) { r.Timestamps = true }),
			ts(t0) + " " + startLine + ts(t0.Add(time.Second)) + " one\n" + ts(now) + " two\n"},
		{"since time", req(func(r *kubeletv1.ContainerLogsRequest) { r.SinceTime = timestamppb.New(t0.Add(time.Second)) }), "one\ntwo\n"},
		{"since seconds", req(func(r *kubeletv1.ContainerLogsRequest) { r.SinceSeconds = ptr.To[int64](600) }), "two\n"},
		{"limit bytes", req(func(r *kubeletv1.ContainerLogsRequest) { r.LimitBytes = ptr.To[int64](5) }), "sim: "},
		{"tail with timestamps", req(func(r *kubeletv1.ContainerLogsRequest) { r.TailLines = ptr.To[int64](1); r.Timestamps = true }), ts(now) + " two\n"},
		{"tail and since", req(func(r *kubeletv1.ContainerLogsRequest) {
			r.TailLines = ptr.To[int64](2)
			r.SinceTime = timestamppb.New(now)
		}), "two\n"},
	} {
		got, err := readLogs(ctx, c, tc.req)
		if err != nil || got != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
	_, err := readLogs(ctx, c, req(func(r *kubeletv1.ContainerLogsRequest) { r.SinceSeconds = ptr.To[int64](-5) }))
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "sinceSeconds: Invalid value: -5: must be greater than 0") {
		t.Errorf("negative since: %v", err)
	}

	// Following with timestamps from the last line: what is written next, with its time.
	s, err := c.ContainerLogs(ctx, req(func(r *kubeletv1.ContainerLogsRequest) {
		r.Follow, r.Timestamps, r.TailLines = true, true, ptr.To[int64](1)
	}))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var followed strings.Builder
	done := make(chan error, 1)
	go func() {
		for {
			chunk, err := s.Recv()
			if err != nil {
				done <- err
				return
			}
			mu.Lock()
			followed.Write(chunk.GetData())
			mu.Unlock()
		}
	}()
	followedIs := func(what, want string) {
		waitfor.Condition(t, 20*time.Second, what, func() (bool, string) {
			mu.Lock()
			defer mu.Unlock()
			return followed.String() == want, followed.String()
		})
	}
	followedIs("the tail", ts(now)+" two\n")
	later := now.Add(time.Second)
	clock.Set(later)
	if err := rt.Write(id, "three"); err != nil {
		t.Fatal(err)
	}
	followedIs("the followed line", ts(now)+" two\n"+ts(later)+" three\n")
	cancel()
	<-done
}

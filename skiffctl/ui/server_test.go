package ui

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/kinds"
)

// newTestServer is a Server whose caches are empty and never started (no API server
// behind it): enough for the HTTP layer.
func newTestServer(t *testing.T) *Server {
	t.Helper()
	s, err := New(Config{Listen: "127.0.0.1:0", Servers: []string{"127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.ln.Close(); s.conn.Close() })
	return s
}

func TestNewRefusesNonLoopback(t *testing.T) {
	if _, err := New(Config{Listen: "0.0.0.0:0", Servers: []string{"127.0.0.1:1"}}); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("New on 0.0.0.0: %v", err)
	}
}

func TestHandler(t *testing.T) {
	s := newTestServer(t)
	h := s.Handler()
	host := s.ln.Addr().String()
	get := func(target, hostHeader string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", target, nil)
		r.Host = hostHeader
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	for _, tc := range []struct {
		target, host string
		code         int
		body         string
	}{
		{"/", host, 200, `<script src="app.js">`},
		{"/app.js", host, 200, ""},
		{"/api/cluster", host, 200, `"raft":`},
		{"/api/chain?kind=Deployment&name=web", host, 200, `"summary":"deployment default/web not found"`},
		{"/api/chain?kind=Pod&name=web", host, 400, `kind: Unsupported value: "Pod": supported values: Deployment, DaemonSet, StatefulSet, Job, CronJob, Service`},
		{"/api/chain?kind=job&name=pi", host, 200, `"summary":"job default/pi not found"`},
		{"/api/chain?kind=cj&name=tick", host, 200, `"summary":"cronjob default/tick not found"`},
		{"/api/chain?kind=svc&namespace=prod&name=web", host, 200, `"summary":"service prod/web not found"`},
		// Another name for 127.0.0.1 (DNS rebinding), or another port: refused.
		{"/api/cluster", "evil.example:" + host[strings.LastIndex(host, ":")+1:], 403, "not allowed"},
		{"/api/cluster", "127.0.0.1:1", 403, "not allowed"},
	} {
		w := get(tc.target, tc.host)
		if w.Code != tc.code || !strings.Contains(w.Body.String(), tc.body) {
			t.Errorf("GET %s (Host %s): %d %q, want %d with %q", tc.target, tc.host, w.Code, w.Body.String(), tc.code, tc.body)
		}
	}
}

// TestStream: the stream sends the Raft members and the chain at once, and what changed
// when told of a change.
func TestStream(t *testing.T) {
	s := newTestServer(t)
	s.cfg.Throttle = time.Millisecond
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/stream?kind=deploy&namespace=prod&name=web", nil)
	req.Host = s.ln.Addr().String()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	lines := bufio.NewReader(resp.Body)
	next := func() (event, data string) {
		for {
			l, err := lines.ReadString('\n')
			if err != nil {
				t.Fatalf("stream: %v", err)
			}
			l = strings.TrimSpace(l)
			switch {
			case strings.HasPrefix(l, "event: "):
				event = strings.TrimPrefix(l, "event: ")
			case strings.HasPrefix(l, "data: "):
				return event, strings.TrimPrefix(l, "data: ")
			}
		}
	}
	if ev, _ := next(); ev != "raft" {
		t.Fatalf("first event %q, want raft", ev)
	}
	if ev, data := next(); ev != "chain" || !strings.Contains(data, `"summary":"deployment prod/web not found"`) {
		t.Fatalf("second event %q %s", ev, data)
	}
	// A change of the Raft status is sent (first: raft comes before chain, which did not
	// change).
	s.mu.Lock()
	s.raft = Raft{Leader: "n2", Term: 7, Members: []Member{{Name: "n2", Leader: true, Health: "healthy"}}}
	s.mu.Unlock()
	s.hub.changed("")
	if ev, data := next(); ev != "raft" || !strings.Contains(data, `"leader":"n2"`) {
		t.Fatalf("after the change: %q %s", ev, data)
	}
	cancel()
	io.Copy(io.Discard, resp.Body)
}

// TestStreamShowsItsObjectAtOnce: a change of the object a page is about goes out at
// once, even while the page's throttle holds back what changed just before (its pods'
// changes): the update lag of the workload the user watches is not the throttle's.
func TestStreamShowsItsObjectAtOnce(t *testing.T) {
	s := newTestServer(t)
	s.cfg.Throttle = time.Hour
	var objs atomic.Pointer[Objects]
	deployment := func(rv string) {
		objs.Store(&Objects{Deployments: []*appsv1.Deployment{{ObjectMeta: metav1.ObjectMeta{
			Name: "web", Namespace: "prod", ResourceVersion: rv, Annotations: map[string]string{"mark": rv}}}}})
	}
	deployment("10")
	s.objects = func() *Objects { return objs.Load() }
	s.workloadObjects = func(string, string, string) *Objects { return objs.Load() }
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/stream?kind=deploy&namespace=prod&name=web", nil)
	req.Host = s.ln.Addr().String()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewReader(resp.Body)
	chain := func(what string) string {
		for {
			l, err := lines.ReadString('\n')
			if err != nil {
				t.Fatalf("%s: the stream: %v", what, err)
			}
			if data, ok := strings.CutPrefix(strings.TrimSpace(l), "data: "); ok && strings.Contains(data, `"resourceVersion"`) {
				var c struct {
					ResourceVersion string `json:"resourceVersion"`
				}
				if err := json.Unmarshal([]byte(data), &c); err == nil && c.ResourceVersion != "" {
					return c.ResourceVersion
				}
			}
		}
	}
	if rv := chain("the first chain"); rv != "10" {
		t.Fatalf("first chain at resourceVersion %s, want 10", rv)
	}
	// Something else changes: the stream waits out its throttle (an hour) for it.
	s.hub.changed(objectKey(kinds.Pod, "prod", "web-1"))
	// The Deployment changes: it goes out now, with the change before it.
	deployment("11")
	s.hub.changed(objectKey(kinds.Deployment, "prod", "web"))
	if rv := chain("the Deployment's change, during the throttle"); rv != "11" {
		t.Fatalf("chain at resourceVersion %s, want 11", rv)
	}
}

// TestStreamHeadDoesNotWaitForABuild: while the stream's builder computes a view (a
// chain of 10,000 pods takes hundreds of milliseconds on a loaded machine), a change of
// the workload goes out at once as the chain's head; the chain built from the objects
// before that change then goes out with the newer head, never taking the page back.
func TestStreamHeadDoesNotWaitForABuild(t *testing.T) {
	s := newTestServer(t)
	s.cfg.Throttle = time.Millisecond
	var objs atomic.Pointer[Objects]
	deployment := func(rv string, replicas int32) {
		objs.Store(&Objects{Deployments: []*appsv1.Deployment{{ObjectMeta: metav1.ObjectMeta{
			Name: "web", Namespace: "prod", UID: "d1", ResourceVersion: rv}, Spec: appsv1.DeploymentSpec{Replicas: &replicas}}}})
	}
	deployment("10", 3)
	var builds atomic.Int32
	building, release := make(chan struct{}), make(chan struct{})
	s.objects = func() *Objects {
		o := objs.Load()
		if builds.Add(1) == 2 { // the second build: read, then slow
			close(building)
			<-release
		}
		return o
	}
	s.workloadObjects = func(string, string, string) *Objects { return objs.Load() }
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	released := false
	defer func() { // before the server's Close, which waits for the stream's builder
		if !released {
			close(release)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/stream?kind=deploy&namespace=prod&name=web", nil)
	req.Host = s.ln.Addr().String()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewReader(resp.Body)
	type head struct {
		ResourceVersion string `json:"resourceVersion"`
		Desired         int32  `json:"desired"`
	}
	// next is the next event that carries the Deployment's head (a chain or a head alone).
	next := func(what string) (event string, h head) {
		for {
			l, err := lines.ReadString('\n')
			if err != nil {
				t.Fatalf("%s: the stream: %v", what, err)
			}
			l = strings.TrimSpace(l)
			if e, ok := strings.CutPrefix(l, "event: "); ok {
				event = e
			} else if data, ok := strings.CutPrefix(l, "data: "); ok && (event == "chain" || event == "head") {
				if err := json.Unmarshal([]byte(data), &h); err != nil {
					t.Fatalf("%s: %s: %v", what, data, err)
				}
				return event, h
			}
		}
	}
	if ev, h := next("the first chain"); ev != "chain" || h.ResourceVersion != "10" || h.Desired != 3 {
		t.Fatalf("first %s at resourceVersion %s desired %d, want the chain at 10 with 3", ev, h.ResourceVersion, h.Desired)
	}
	// A pod changes: the builder reads the objects and takes its time.
	s.hub.changed(objectKey(kinds.Pod, "prod", "web-1"))
	<-building
	// The Deployment is scaled meanwhile: its head goes out now.
	deployment("11", 5)
	s.hub.changed(objectKey(kinds.Deployment, "prod", "web"))
	if ev, h := next("the Deployment's change, during a build"); ev != "head" || h.ResourceVersion != "11" || h.Desired != 5 {
		t.Fatalf("%s at resourceVersion %s desired %d, want the head at 11 with 5", ev, h.ResourceVersion, h.Desired)
	}
	// The build of the objects before the change ends: its chain carries the newer head.
	close(release)
	released = true
	if ev, h := next("the chain built before the change"); ev != "chain" || h.ResourceVersion != "11" || h.Desired != 5 {
		t.Fatalf("%s at resourceVersion %s desired %d, want the chain with the head at 11 with 5", ev, h.ResourceVersion, h.Desired)
	}
}

// TestRaftBeforePoll: before the first poll the members are an empty list, not null
// (the page lists them).
func TestRaftBeforePoll(t *testing.T) {
	s := newTestServer(t)
	if b, _ := json.Marshal(s.Raft()); !strings.Contains(string(b), `"members":[]`) {
		t.Fatalf("raft before a poll: %s", b)
	}
}

// TestBuildPause: a page's stream rests at least the Throttle between two builds, and
// after a slow build twice its time, so that building a large workload's views (tens of
// milliseconds of CPU for 10,000 pods, hundreds on a loaded machine) takes at most a
// third of a core, not all of one, from the cluster whose changes the page waits for.
func TestBuildPause(t *testing.T) {
	const throttle = 100 * time.Millisecond
	for _, tc := range []struct{ took, want time.Duration }{
		{0, throttle},
		{20 * time.Millisecond, throttle},
		{50 * time.Millisecond, throttle},
		{80 * time.Millisecond, 160 * time.Millisecond},
		{300 * time.Millisecond, 600 * time.Millisecond},
		{2 * time.Second, 4 * time.Second},
	} {
		if got := buildPause(throttle, tc.took); got != tc.want {
			t.Errorf("after a build of %v: pause %v, want %v", tc.took, got, tc.want)
		}
		if busy := float64(tc.took) / float64(tc.took+buildPause(throttle, tc.took)); busy > 1.0/3+1e-9 {
			t.Errorf("after a build of %v: the stream builds %.0f%% of the time, want at most a third", tc.took, 100*busy)
		}
	}
}

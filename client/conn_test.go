package client_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/pki"
	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
	"github.com/skiffhq/skiff/test/waitfor"
)

// fakeServer answers Create from a script: each call takes the next outcome.
type fakeServer struct {
	apiv1.UnimplementedResourcesServer
	mu      sync.Mutex
	script  []error
	calls   int
	created map[string]bool
}

func (f *fakeServer) Create(ctx context.Context, req *apiv1.CreateRequest) (*apiv1.Object, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	obj, err := kinds.Unwrap(req.GetObject())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	name := obj.GetName()
	if f.created[name] {
		return nil, status.Error(codes.AlreadyExists, "configmaps \""+name+"\" already exists")
	}
	if len(f.script) > 0 {
		err, f.script = f.script[0], f.script[1:]
	}
	if err == errLostReply {
		f.created[name] = true // it happened, but the reply is lost
		return nil, status.Error(codes.Unavailable, "connection reset")
	}
	if err != nil {
		return nil, err
	}
	f.created[name] = true
	return req.GetObject(), nil
}

var errLostReply = status.Error(codes.Internal, "lost reply marker")

func refused() error {
	st, _ := status.New(codes.Unavailable, "no leader").WithDetails(&errdetails.ErrorInfo{Reason: "ServiceUnavailable", Domain: "skiff.dev"})
	return st.Err()
}

func startFake(t *testing.T, f apiv1.ResourcesServer) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	apiv1.RegisterResourcesServer(s, f)
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	return ln.Addr().String()
}

func TestCreateRetryRules(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cm := func(name, generate string) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, GenerateName: generate}}
	}
	for _, tc := range []struct {
		name      string
		script    []error
		obj       *corev1.ConfigMap
		calls     int
		check     func(error) bool
		checkName string
	}{
		{"refusals are retried", []error{refused(), refused()}, cm("a", ""), 3, func(err error) bool { return err == nil }, "success"},
		{"named create retried after a lost reply reports it may be its own", []error{errLostReply}, cm("b", ""), 2,
			func(err error) bool { return client.IsAlreadyExists(err) && client.IsRetriedCreate(err) }, "retried AlreadyExists"},
		{"generateName create is not repeated after a lost reply", []error{errLostReply}, cm("", "gen-"), 1,
			client.IsUnknownOutcome, "unknown outcome"},
		{"invalid is final", []error{status.Error(codes.InvalidArgument, "bad")}, cm("c", ""), 1, client.IsInvalid, "invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeServer{script: tc.script, created: map[string]bool{}}
			conn, _ := client.Dial([]string{startFake(t, f)}, client.Options{BackoffBase: time.Millisecond})
			defer conn.Close()
			_, err := client.For[*corev1.ConfigMap](conn).Create(ctx, tc.obj)
			if !tc.check(err) {
				t.Fatalf("err = %v, want %s", err, tc.checkName)
			}
			if f.calls != tc.calls {
				t.Fatalf("server saw %d calls, want %d", f.calls, tc.calls)
			}
		})
	}
}

func TestFailsOverToTheNextServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	good := &fakeServer{created: map[string]bool{}}
	// The first address refuses connections: nothing listens there.
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	dead.Close()
	conn, _ := client.Dial([]string{deadAddr, startFake(t, good)}, client.Options{BackoffBase: time.Millisecond})
	defer conn.Close()
	for i := 0; i < 3; i++ {
		if _, err := client.For[*corev1.ConfigMap](conn).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: string(rune('a' + i))}}); err != nil {
			t.Fatal(err)
		}
	}
	if good.calls != 3 {
		t.Fatalf("live server saw %d calls", good.calls)
	}
}

// bindServer binds pods like the API server, losing the reply of the first call.
type bindServer struct {
	apiv1.UnimplementedResourcesServer
	mu    sync.Mutex
	calls int
	node  string // where pod "p" (uid "u1") is bound
}

func (f *bindServer) Bind(ctx context.Context, req *apiv1.BindRequest) (*apiv1.Object, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.node != "" {
		return nil, status.Errorf(codes.FailedPrecondition, "pod default/p is already assigned to node %q", f.node)
	}
	f.node = req.GetNodeName()
	if f.calls == 1 {
		return nil, status.Error(codes.Unavailable, "connection reset") // committed, reply lost
	}
	return kinds.Wrap(f.pod())
}

func (f *bindServer) Get(ctx context.Context, req *apiv1.GetRequest) (*apiv1.Object, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return kinds.Wrap(f.pod())
}

func (f *bindServer) pod() *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", UID: "u1"}, Spec: corev1.PodSpec{NodeName: f.node}}
}

func TestBindRetriedAfterLostReply(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f := &bindServer{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	apiv1.RegisterResourcesServer(s, f)
	go s.Serve(ln)
	defer s.Stop()
	conn, _ := client.Dial([]string{ln.Addr().String()}, client.Options{BackoffBase: time.Millisecond})
	defer conn.Close()
	pod, err := conn.Bind(ctx, "default", "p", "u1", "w1")
	if err != nil || pod.Spec.NodeName != "w1" {
		t.Fatalf("bind after a lost reply = %v, %v; want success on w1", pod, err)
	}
	// Another node is a real conflict, reported as such.
	if _, err := conn.Bind(ctx, "default", "p", "u1", "w2"); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("bind to another node = %v, want FailedPrecondition", err)
	}
}

// TestPlaintextClientOfATLSServerFailsAtOnce: a Conn without TLS calling a server that
// speaks only TLS gets an error naming what to give, at once: the handshake failure looks
// like a lost connection, which it would otherwise retry until its deadline.
func TestPlaintextClientOfATLSServerFailsAtOnce(t *testing.T) {
	dir := t.TempDir()
	if _, err := pki.InitDir(dir, pki.InitOptions{Hosts: []string{"127.0.0.1"}}); err != nil {
		t.Fatal(err)
	}
	certs, err := pki.NewReloader(filepath.Join(dir, "apiserver.crt"), filepath.Join(dir, "apiserver.key"), filepath.Join(dir, pki.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	// As the API server serves, and a TLS 1.2 server demanding a client certificate, which
	// refuses the probe's handshake with an alert.
	strict := certs.ServerTLS().Clone()
	strict.MaxVersion, strict.ClientAuth = tls.VersionTLS12, tls.RequireAnyClientCert
	for name, cfg := range map[string]*tls.Config{"TLS": certs.ServerTLS(), "TLS 1.2 with client certificates": strict} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s := grpc.NewServer(grpc.Creds(credentials.NewTLS(cfg)))
		apiv1.RegisterResourcesServer(s, &fakeServer{created: map[string]bool{}})
		go s.Serve(ln)
		t.Cleanup(s.Stop)

		conn, err := client.Dial([]string{ln.Addr().String()}, client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err = client.NewClientset(conn).ConfigMaps.Get(ctx, "default", "x")
		if ctx.Err() != nil {
			t.Fatalf("%s: the call was retried until its deadline: %v", name, err)
		}
		if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "speaks TLS") || !strings.Contains(err.Error(), "--ca-file") {
			t.Fatalf("%s: got %v, want FailedPrecondition saying the server speaks TLS and naming --ca-file", name, err)
		}
	}

	// A plaintext server that is down is not mistaken for one: the call keeps trying.
	down, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := down.Addr().String()
	down.Close()
	conn2, err := client.Dial([]string{addr}, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	short, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	if _, err := client.NewClientset(conn2).ConfigMaps.Get(short, "default", "x"); status.Code(err) == codes.FailedPrecondition {
		t.Fatalf("a server that is down was taken for a TLS one: %v", err)
	}
}

func tooManyRequests(delay time.Duration) error {
	st, _ := status.New(codes.ResourceExhausted, "too many requests").WithDetails(
		&errdetails.ErrorInfo{Reason: "TooManyRequests", Domain: "skiff.dev"},
		&errdetails.RetryInfo{RetryDelay: durationpb.New(delay)})
	return st.Err()
}

// TestThrottledCallWaitsTheRetryDelay: a call refused as too many requests is repeated
// only after the delay the server asked for, not at once.
func TestThrottledCallWaitsTheRetryDelay(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f := &fakeServer{script: []error{tooManyRequests(3 * time.Second), tooManyRequests(3 * time.Second)}, created: map[string]bool{}}
	fc := testingclock.NewFakeClock(time.Now())
	conn, _ := client.Dial([]string{startFake(t, f)}, client.Options{Clock: fc, BackoffBase: time.Millisecond})
	defer conn.Close()
	done := make(chan error, 1)
	go func() {
		_, err := client.For[*corev1.ConfigMap](conn).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "a"}})
		done <- err
	}()
	calls := func() int {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.calls
	}
	waiting := func(n int) {
		waitfor.Condition(t, 10*time.Second, "the client waiting after a refusal", func() (bool, string) {
			return calls() == n && fc.HasWaiters(), fmt.Sprintf("%d calls, waiting %v", calls(), fc.HasWaiters())
		})
	}
	waiting(1)
	fc.Step(3*time.Second - time.Millisecond)
	if !fc.HasWaiters() || calls() != 1 {
		t.Fatalf("the client came back before the retry delay: %d calls", calls())
	}
	fc.Step(time.Second) // the delay and its jitter (at most a quarter of it)
	waiting(2)
	fc.Step(4 * time.Second)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if calls() != 3 {
		t.Fatalf("%d calls, want 3", calls())
	}
}

// TestThrottleRetriesEnd: past ThrottleRetries the refusal is the call's error.
func TestThrottleRetriesEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	refusal := tooManyRequests(time.Millisecond)
	f := &fakeServer{script: []error{refusal, refusal, refusal, refusal}, created: map[string]bool{}}
	conn, _ := client.Dial([]string{startFake(t, f)}, client.Options{ThrottleRetries: 2, BackoffBase: time.Millisecond})
	defer conn.Close()
	_, err := client.For[*corev1.ConfigMap](conn).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "a"}})
	if !client.IsTooManyRequests(err) || client.RetryAfter(err) != time.Millisecond || f.calls != 3 {
		t.Fatalf("err %v after %d calls; want too many requests after 3", err, f.calls)
	}
}

// TestOwnThrottlingIsNotRetried: a call whose caller backs off on its own is not
// repeated when refused as too many requests: the first refusal is its error.
func TestOwnThrottlingIsNotRetried(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	refusal := tooManyRequests(time.Millisecond)
	f := &fakeServer{script: []error{refusal, refusal}, created: map[string]bool{}}
	conn, _ := client.Dial([]string{startFake(t, f)}, client.Options{ThrottleRetries: 2, BackoffBase: time.Millisecond})
	defer conn.Close()
	_, err := client.For[*corev1.ConfigMap](conn).Create(client.OwnThrottling(ctx), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "a"}})
	if !client.IsTooManyRequests(err) || client.RetryAfter(err) != time.Millisecond || f.calls != 1 {
		t.Fatalf("err %v after %d calls; want too many requests after 1", err, f.calls)
	}
}

// watchServer refuses the first watch as too many requests, then serves.
type watchServer struct {
	apiv1.UnimplementedResourcesServer
	mu    sync.Mutex
	calls int
}

func (w *watchServer) Watch(req *apiv1.WatchRequest, s apiv1.Resources_WatchServer) error {
	w.mu.Lock()
	w.calls++
	first := w.calls == 1
	w.mu.Unlock()
	if first {
		return tooManyRequests(time.Millisecond)
	}
	if err := s.SendHeader(nil); err != nil {
		return err
	}
	<-s.Context().Done()
	return nil
}

// TestRefusedWatchIsWaitedOut: a watch the server refuses before it starts is refused
// by Watch (not at the first Next), and repeated after the delay.
func TestRefusedWatchIsWaitedOut(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws := &watchServer{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	apiv1.RegisterResourcesServer(s, ws)
	go s.Serve(ln)
	defer s.Stop()
	for _, retries := range []int{1, 10} {
		ws.calls = 0
		conn, _ := client.Dial([]string{ln.Addr().String()}, client.Options{ThrottleRetries: retries, BackoffBase: time.Millisecond})
		w, err := client.For[*corev1.Pod](conn).Watch(ctx, "", client.WatchOptions{})
		if err != nil {
			t.Fatalf("retries %d: %v", retries, err)
		}
		w.Stop()
		conn.Close()
		if ws.calls != 2 {
			t.Fatalf("%d watch calls, want 2", ws.calls)
		}
	}
}

// updateServer answers Update and counts the calls; it has no UpdateBatch, as a server
// older than the call.
type updateServer struct {
	apiv1.UnimplementedResourcesServer
	mu              sync.Mutex
	updates, batchs int
}

func (f *updateServer) Update(ctx context.Context, req *apiv1.UpdateRequest) (*apiv1.Object, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.updates++
	return req.GetObject(), nil
}

func (f *updateServer) UpdateBatch(ctx context.Context, req *apiv1.UpdateBatchRequest) (*apiv1.UpdateBatchResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.batchs++
	return nil, status.Error(codes.Unimplemented, "unknown method UpdateBatch")
}

// TestUpdateEachWithoutBatch: against a server without UpdateBatch, UpdateEach updates
// each object with its own Update, and the Conn remembers not to try the batch again.
func TestUpdateEachWithoutBatch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f := &updateServer{}
	conn, err := client.Dial([]string{startFake(t, f)}, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cms := client.NewClientset(conn).ConfigMaps
	objs := []*corev1.ConfigMap{
		{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "default"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "b", Namespace: "default"}},
	}
	for range 2 {
		out, errs := cms.UpdateEach(ctx, objs)
		for i := range objs {
			if errs[i] != nil || out[i].Name != objs[i].Name {
				t.Fatalf("object %d: %v, %v", i, out[i], errs[i])
			}
		}
	}
	if f.batchs != 1 || f.updates != 4 {
		t.Fatalf("%d UpdateBatch and %d Update calls, want 1 and 4 (the batch tried once)", f.batchs, f.updates)
	}
}

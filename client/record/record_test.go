package record_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffhq/skiff/apiserver"
	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/record"
	"github.com/skiffhq/skiff/kinds"
	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/goroutines"
	"github.com/skiffhq/skiff/test/waitfor"
)

// startRecorder runs a recorder writing to events until the test ends.
func startRecorder(t *testing.T, events *client.Client[*corev1.Event], cfg record.Config) *record.Recorder {
	r := record.New(events, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

// dialCluster starts a one-node cluster and returns a clientset of it.
func dialCluster(t *testing.T) *client.Clientset {
	c := apicluster.Start(t, 1, apicluster.Options{})
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return client.NewClientset(conn)
}

func TestEventsAreAggregated(t *testing.T) {
	cs := dialCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r := startRecorder(t, cs.Events, record.Config{Component: "test", Host: "h1"})

	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "p", UID: "u1"}}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w1", UID: "u2"}}
	for i := 0; i < 300; i++ {
		r.Eventf(pod, record.Warning, "BackOff", "Back-off restarting failed container %s", "c")
	}
	r.Eventf(pod, record.Normal, "Scheduled", "Successfully assigned default/p to w1")
	r.Eventf(node, record.Normal, "NodeReady", "Node w1 status is now: NodeReady")

	for {
		l, err := cs.Events.List(ctx, "", client.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		counts := map[string]int32{}
		for _, ev := range l.Items {
			counts[ev.Reason] += ev.Count
			if ev.Source.Component != "test" || ev.EventTime.IsZero() {
				t.Fatalf("event %v lacks its source or time", ev)
			}
		}
		if len(l.Items) == 3 && counts["BackOff"] == 300 && counts["Scheduled"] == 1 && counts["NodeReady"] == 1 {
			for _, ev := range l.Items {
				if ev.Reason == "NodeReady" && ev.Namespace != "default" {
					t.Errorf("node event in namespace %q", ev.Namespace)
				}
			}
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("events: %d objects, counts %v", len(l.Items), counts)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func TestRecordingNeverBlocks(t *testing.T) {
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := dead.Addr().String()
	dead.Close()
	conn, _ := client.Dial([]string{addr}, client.Options{})
	defer conn.Close()
	r := record.New(client.For[*corev1.Event](conn), record.Config{Component: "test", MaxPending: 100})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	start := time.Now()
	for i := 0; i < 10000; i++ {
		r.Eventf(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", UID: "u"}}, record.Normal, "R", "message %d", i)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("recording 10,000 events with no server took %v", d)
	}
	cancel()
	<-done
}

// An idle recorder holds one goroutine, its Run's: writers are started as batches come
// and end with them (issue 26: a process of simulated nodes runs a recorder a node).
func TestIdleRecorderHoldsNoWriters(t *testing.T) {
	cs := dialCluster(t)
	r := startRecorder(t, cs.Events, record.Config{Component: "test", Host: "h1", Workers: 8})
	for i := range 50 {
		r.Eventf(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprint("p", i), UID: types.UID(fmt.Sprint("u", i))}},
			record.Normal, "Started", "Started container app")
	}
	waitfor.Condition(t, time.Minute, "the events written, and one goroutine of the recorder's left", func() (bool, string) {
		l, err := cs.Events.List(context.Background(), "default", client.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		n := goroutines.Running("record.(*Recorder).")
		return len(l.Items) == 50 && n == 1, fmt.Sprintf("%d events, %d goroutines", len(l.Items), n)
	})
}

func TestSimilarEventsAreCombined(t *testing.T) {
	cs := dialCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r := startRecorder(t, cs.Events, record.Config{Component: "test"})

	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "u1"}}
	for i := 0; i < 1000; i++ {
		r.Eventf(rs, record.Normal, "SuccessfulCreate", "Created pod: web-%d", i)
	}
	for {
		l, err := cs.Events.List(ctx, "", client.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		total, combined, message := int32(0), 0, ""
		for _, ev := range l.Items {
			total += ev.Count
			if ev.Count > 1 {
				combined++
				message = ev.Message
			}
		}
		// Only the final state is checked: before it, the combined event may carry the
		// message of an earlier write.
		if total == 1000 {
			if len(l.Items) != 11 || combined != 1 {
				t.Fatalf("%d events (%d combined) for 1000 similar ones; want 10 single and 1 combined", len(l.Items), combined)
			}
			if want := "(combined from similar events): Created pod: web-999"; message != want {
				t.Fatalf("combined message %q, want %q", message, want)
			}
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("events: %d objects, count %d", len(l.Items), total)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestEventsRecordedTogetherAreWrittenTogether: a burst of events is created in a batch
// (one transaction, so one resourceVersion), not one call each.
func TestEventsRecordedTogetherAreWrittenTogether(t *testing.T) {
	cs := dialCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r := startRecorder(t, cs.Events, record.Config{Component: "test"})

	const n = 30
	for i := 0; i < n; i++ {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("p%d", i), UID: types.UID(fmt.Sprintf("u%d", i))}}
		r.Eventf(p, record.Normal, "Scheduled", "Successfully assigned default/p%d to w1", i)
	}
	for {
		l, err := cs.Events.List(ctx, "default", client.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Items) == n {
			versions := map[string]bool{}
			for _, ev := range l.Items {
				versions[ev.ResourceVersion] = true
			}
			if len(versions) > n/3 {
				t.Fatalf("%d events recorded together were written in %d transactions", n, len(versions))
			}
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d of %d events written", len(l.Items), n)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// createOnly is an API server from before CreateBatch: it only counts creates.
type createOnly struct {
	apiv1.UnimplementedResourcesServer
	mu      sync.Mutex
	created map[string]bool
}

func (s *createOnly) Create(_ context.Context, req *apiv1.CreateRequest) (*apiv1.Object, error) {
	obj, err := kinds.Unwrap(req.GetObject())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.created[obj.GetName()] = true
	return req.GetObject(), nil
}

func (s *createOnly) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.created)
}

// TestRecorderWritesToServersWithoutBatches: against a server that lacks CreateBatch
// (an upgrade in progress), events are created one at a time.
func TestRecorderWritesToServersWithoutBatches(t *testing.T) {
	fake := &createOnly{created: map[string]bool{}}
	r := startRecorder(t, serve(t, fake), record.Config{Component: "test"})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	const n = 10
	for i := 0; i < n; i++ {
		r.Eventf(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("p%d", i), UID: types.UID(fmt.Sprintf("u%d", i))}}, record.Normal, "Started", "Started container c")
	}
	for fake.count() < n {
		select {
		case <-ctx.Done():
			t.Fatalf("%d of %d events created", fake.count(), n)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// throttling refuses each event's first write as over the event rate budget, asking
// for retryAfter, and records when each event was tried.
type throttling struct {
	apiv1.UnimplementedResourcesServer
	retryAfter time.Duration
	mu         sync.Mutex
	tries      map[string][]time.Time
}

func (s *throttling) try(o *apiv1.Object) error {
	obj, err := kinds.Unwrap(o)
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tries[obj.GetName()] = append(s.tries[obj.GetName()], time.Now())
	if len(s.tries[obj.GetName()]) > 1 {
		return nil
	}
	st, _ := status.New(codes.ResourceExhausted, "limit reached on type Namespace for key default").
		WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(s.retryAfter)})
	return st.Err()
}

func (s *throttling) Create(_ context.Context, req *apiv1.CreateRequest) (*apiv1.Object, error) {
	return req.GetObject(), s.try(req.GetObject())
}

func (s *throttling) CreateBatch(_ context.Context, req *apiv1.CreateBatchRequest) (*apiv1.CreateBatchResponse, error) {
	return batchResults(req, s.try), nil
}

// batchResults answers a CreateBatch with each object's outcome: created, or refused
// with refuse's error.
func batchResults(req *apiv1.CreateBatchRequest, refuse func(*apiv1.Object) error) *apiv1.CreateBatchResponse {
	res := &apiv1.CreateBatchResponse{}
	for _, o := range req.GetObjects() {
		r := &apiv1.CreateBatchResult{Object: o}
		if err := refuse(o); err != nil {
			r.Object = nil
			r.Error, _ = proto.Marshal(status.Convert(err).Proto())
		}
		res.Results = append(res.Results, r)
	}
	return res
}

// TestRecorderWaitsOutRateLimits: an event the server refuses as over its event rate
// budget is written again once the delay the server asked for has passed: not
// dropped, and not asked again sooner.
func TestRecorderWaitsOutRateLimits(t *testing.T) {
	fake := &throttling{retryAfter: 500 * time.Millisecond, tries: map[string][]time.Time{}}
	r := startRecorder(t, serve(t, fake), record.Config{Component: "test"})

	const n = 3 // recorded together: refused item by item in one batch
	for i := 0; i < n; i++ {
		r.Eventf(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("p%d", i), UID: types.UID(fmt.Sprintf("u%d", i))}}, record.Normal, "Started", "Started container c")
	}
	waitfor.Condition(t, 30*time.Second, "every event written after its refusal", func() (bool, string) {
		fake.mu.Lock()
		defer fake.mu.Unlock()
		done := 0
		for _, tries := range fake.tries {
			if len(tries) >= 2 {
				done++
			}
		}
		return done == n, fmt.Sprintf("%d of %d events written", done, n)
	})
	fake.mu.Lock()
	defer fake.mu.Unlock()
	for name, tries := range fake.tries {
		if len(tries) != 2 {
			t.Errorf("event %s tried %d times, want twice (refused, then written)", name, len(tries))
		}
		if gap := tries[1].Sub(tries[0]); gap < fake.retryAfter {
			t.Errorf("event %s tried again after %v, before the %v the server asked for", name, gap, fake.retryAfter)
		}
	}
}

// refusing refuses every write as over the event rate budget with a tiny delay (a
// bucket that refills every few milliseconds, shared by many writers) until it is
// opened, counting the calls and, once open, the events each write carried.
type refusing struct {
	apiv1.UnimplementedResourcesServer
	mu      sync.Mutex
	open    bool
	refused int   // calls refused
	events  int   // events refused
	written []int // events per call written
}

func (s *refusing) write(n int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.open {
		s.refused++
		s.events += n
		st, _ := status.New(codes.ResourceExhausted, "limit reached on type Namespace for key default").
			WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(time.Millisecond)})
		return st.Err()
	}
	s.written = append(s.written, n)
	return nil
}

// total is how many events were written. Called with s.mu held.
func (s *refusing) total() int {
	n := 0
	for _, k := range s.written {
		n += k
	}
	return n
}

func (s *refusing) Create(_ context.Context, req *apiv1.CreateRequest) (*apiv1.Object, error) {
	return req.GetObject(), s.write(1)
}

func (s *refusing) CreateBatch(_ context.Context, req *apiv1.CreateBatchRequest) (*apiv1.CreateBatchResponse, error) {
	err := s.write(len(req.GetObjects()))
	return batchResults(req, func(*apiv1.Object) error { return err }), nil
}

// TestRecorderBacksOffWhileRefused: while the server keeps refusing events for its rate
// budget, asking each time for only a millisecond, the recorder backs off as a whole
// (a few calls a second, not hundreds), holds the events recorded meanwhile, asking
// with one event at a time, and once the server takes them writes them all, in calls
// that grow, none dropped.
func TestRecorderBacksOffWhileRefused(t *testing.T) {
	fake := &refusing{}
	r := startRecorder(t, serve(t, fake), record.Config{Component: "test"})
	record := func(i int) {
		r.Eventf(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("p%d", i), UID: types.UID(fmt.Sprintf("u%d", i))}},
			record.Normal, "Started", "Started container c")
	}
	const n = 6
	for i := 0; i < n/2; i++ {
		record(i)
	}
	waitfor.Condition(t, 30*time.Second, "the first refusal", func() (bool, string) {
		fake.mu.Lock()
		defer fake.mu.Unlock()
		return fake.refused > 0, "no write yet"
	})
	began := time.Now()
	for i := n / 2; i < n; i++ { // recorded while the recorder backs off
		record(i)
	}
	// Two seconds of refusals: 100 ms doubling is at most five calls after the first
	// (with jitter, fewer); retrying at the server's millisecond would be hundreds.
	waitfor.Condition(t, 30*time.Second, "two seconds of refusals", func() (bool, string) {
		return time.Since(began) >= 2*time.Second, ""
	})
	fake.mu.Lock()
	refused := fake.refused
	fake.open = true
	fake.mu.Unlock()
	if refused > 8 {
		t.Errorf("%d calls refused in two seconds: the recorder did not back off", refused)
	}
	waitfor.Condition(t, 30*time.Second, "every event written", func() (bool, string) {
		fake.mu.Lock()
		defer fake.mu.Unlock()
		total := fake.total()
		return total >= n, fmt.Sprintf("%d of %d events written in calls of %v", total, n, fake.written)
	})
	fake.mu.Lock()
	defer fake.mu.Unlock()
	// After refusals the recorder asks with one event, then twice as many after each
	// write taken whole: not its whole backlog to have it refused but one.
	for i, k := range fake.written {
		if i == 0 && k != 1 || i > 0 && k > 2*fake.written[i-1] {
			t.Errorf("events written in calls of %v, want one first, then at most twice the call before", fake.written)
			break
		}
	}
}

// partial takes one event of each write and refuses the rest as over the event rate
// budget with a tiny delay (a namespace's bucket shared by many writers: a token now
// and then), counting the calls and the events it took.
type partial struct {
	apiv1.UnimplementedResourcesServer
	mu    sync.Mutex
	calls int
	taken map[string]bool
}

func (s *partial) CreateBatch(_ context.Context, req *apiv1.CreateBatchRequest) (*apiv1.CreateBatchResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	took := false
	return batchResults(req, func(o *apiv1.Object) error {
		if !took {
			took = true
			obj, _ := kinds.Unwrap(o)
			s.taken[obj.GetName()] = true
			return nil
		}
		st, _ := status.New(codes.ResourceExhausted, "limit reached on type Namespace for key default").
			WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(time.Millisecond)})
		return st.Err()
	}), nil
}

func (s *partial) Create(ctx context.Context, req *apiv1.CreateRequest) (*apiv1.Object, error) {
	res, _ := s.CreateBatch(ctx, &apiv1.CreateBatchRequest{Objects: []*apiv1.Object{req.GetObject()}})
	if e := res.GetResults()[0].GetError(); e != nil {
		var st spb.Status
		_ = proto.Unmarshal(e, &st)
		return nil, status.FromProto(&st).Err()
	}
	return req.GetObject(), nil
}

// serve runs srv on a loopback port until the test ends and returns a client of it.
func serve(t *testing.T, srv apiv1.ResourcesServer) *client.Client[*corev1.Event] {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	apiv1.RegisterResourcesServer(g, srv)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	conn, err := client.Dial([]string{lis.Addr().String()}, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return client.For[*corev1.Event](conn)
}

// recordPods records a Started event about each of pods p<from>..p<to-1>.
func recordPods(r *record.Recorder, from, to int) {
	for i := from; i < to; i++ {
		r.Eventf(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("p%d", i), UID: types.UID(fmt.Sprintf("u%d", i))}},
			record.Normal, "Started", "Started container c")
	}
}

// TestRecorderBacksOffWhilePartlyRefused: a write the server takes only in part (its
// budget had a token for one event) is a refusal too: the back-off goes on doubling
// rather than starting again at its base with every write, as if a thousand
// recorders' backlogs were welcome every 100 ms.
func TestRecorderBacksOffWhilePartlyRefused(t *testing.T) {
	fake := &partial{taken: map[string]bool{}}
	r := startRecorder(t, serve(t, fake), record.Config{Component: "test"})
	recordPods(r, 0, 50)
	began := time.Now()
	// Three seconds of partial refusals. After each pause the recorder asks with one
	// event (taken), then with two (one refused): two calls a pause. 100 ms doubling
	// is at most five pauses, eleven calls or so; starting again at 100 ms after each
	// would be 40 or more.
	waitfor.Condition(t, 30*time.Second, "three seconds of partial refusals", func() (bool, string) {
		return time.Since(began) >= 3*time.Second, ""
	})
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if fake.calls > 14 {
		t.Errorf("%d calls in three seconds, each taken in part: the recorder did not back off", fake.calls)
	}
	if len(fake.taken) == 0 {
		t.Errorf("no event taken in %d calls", fake.calls)
	}
}

// sharing takes every third write whole and refuses the others whole as over the
// event rate budget with a tiny delay: a budget many recorders share, with a token for
// this one now and then.
type sharing struct {
	apiv1.UnimplementedResourcesServer
	mu    sync.Mutex
	calls int
}

func (s *sharing) CreateBatch(_ context.Context, req *apiv1.CreateBatchRequest) (*apiv1.CreateBatchResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	var err error
	if s.calls%3 != 0 {
		st, _ := status.New(codes.ResourceExhausted, "limit reached on type Namespace for key default").
			WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(time.Millisecond)})
		err = st.Err()
	}
	return batchResults(req, func(*apiv1.Object) error { return err }), nil
}

func (s *sharing) Create(ctx context.Context, req *apiv1.CreateRequest) (*apiv1.Object, error) {
	res, _ := s.CreateBatch(ctx, &apiv1.CreateBatchRequest{Objects: []*apiv1.Object{req.GetObject()}})
	if e := res.GetResults()[0].GetError(); e != nil {
		var st spb.Status
		_ = proto.Unmarshal(e, &st)
		return nil, status.FromProto(&st).Err()
	}
	return req.GetObject(), nil
}

// TestRecorderBackOffEasesAfterWrites: a write that goes through lowers the back-off
// by one doubling, not back to its base: while a shared budget takes one write in
// three, a recorder with events to write all the time asks less and less often (100,
// 200, then 200, 400, then 400, 800 ms...: about eight calls in two seconds), where
// starting again at 100 ms after each would be a call every 100 ms or so.
func TestRecorderBackOffEasesAfterWrites(t *testing.T) {
	fake := &sharing{}
	r := startRecorder(t, serve(t, fake), record.Config{Component: "test"})
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() { // a pod's event every 10 ms: something to write at every chance
		defer close(stopped)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			case <-tick.C:
				recordPods(r, i, i+1)
			}
		}
	}()
	waitfor.Condition(t, 30*time.Second, "the first write", func() (bool, string) {
		fake.mu.Lock()
		defer fake.mu.Unlock()
		return fake.calls > 0, "none yet"
	})
	fake.mu.Lock()
	first := fake.calls
	fake.mu.Unlock()
	began := time.Now()
	waitfor.Condition(t, 30*time.Second, "two seconds of writes", func() (bool, string) {
		return time.Since(began) >= 2*time.Second, ""
	})
	close(done)
	<-stopped
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if n := fake.calls - first; n > 11 {
		t.Errorf("%d calls in two seconds, one in three taken: the back-off started again after each write", n)
	}
}

// dropped reads skiff_recorder_events_dropped_total by reason.
func dropped(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "skiff_recorder_events_dropped_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" {
					got[l.GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
	}
	return got
}

// TestRecorderGivesUpAfterTries: an event refused maxTries (12) times in a row is
// dropped, as client-go's recorder drops it, and counted; the server is then asked no
// more. A later occurrence of it is written again, with the count of every occurrence.
func TestRecorderGivesUpAfterTries(t *testing.T) {
	fake := &refusing{}
	reg := prometheus.NewRegistry()
	r := startRecorder(t, serve(t, fake), record.Config{Component: "test", RetryBase: time.Millisecond, RetryMax: 10 * time.Millisecond,
		Metrics: record.NewMetrics(reg)})
	recordPods(r, 0, 1)
	waitfor.Condition(t, 30*time.Second, "the event dropped", func() (bool, string) {
		got := dropped(t, reg)
		fake.mu.Lock()
		defer fake.mu.Unlock()
		return got[record.DroppedTries] == 1, fmt.Sprintf("dropped %v refused %d", got, fake.refused)
	})
	fake.mu.Lock()
	refused := fake.refused
	fake.open = true
	fake.mu.Unlock()
	if refused != 12 {
		t.Errorf("the event was tried %d times before it was dropped, want 12", refused)
	}
	recordPods(r, 0, 1) // again: written, counting both occurrences
	waitfor.Condition(t, 30*time.Second, "the event written again", func() (bool, string) {
		fake.mu.Lock()
		defer fake.mu.Unlock()
		return len(fake.written) == 1, fmt.Sprintf("written %v", fake.written)
	})
	if got := dropped(t, reg); got[record.DroppedTries] != 1 || len(got) != 1 {
		t.Errorf("dropped %v, want the one event's tries", got)
	}
}

// TestRecorderAsksWithOneEventWhileRefused: a recorder whose events the server keeps
// refusing for its rate budget sends one event a write after the first refusal, not
// its backlog: the others wait out each pause as refused ones do, a try counted, and
// are dropped after the same twelve. (Sending the backlog each time, the server
// refused every event twelve times: 240 refusals here, against about 31.)
func TestRecorderAsksWithOneEventWhileRefused(t *testing.T) {
	fake := &refusing{}
	reg := prometheus.NewRegistry()
	r := startRecorder(t, serve(t, fake), record.Config{Component: "test", RetryBase: time.Millisecond, RetryMax: 10 * time.Millisecond,
		Metrics: record.NewMetrics(reg)})
	const n = 20
	recordPods(r, 0, n)
	waitfor.Condition(t, 30*time.Second, "every event dropped after its tries", func() (bool, string) {
		got := dropped(t, reg)
		fake.mu.Lock()
		defer fake.mu.Unlock()
		return got[record.DroppedTries] == n, fmt.Sprintf("dropped %v; %d calls refused, %d events", got, fake.refused, fake.events)
	})
	fake.mu.Lock()
	defer fake.mu.Unlock()
	// The first write carries what was recorded by then (up to all n), each after it one.
	if most := n + maxTries; fake.events > most {
		t.Errorf("%d event writes refused in %d calls for %d events, want at most %d: one event a write after the first refusal",
			fake.events, fake.refused, n, most)
	}
	if got := dropped(t, reg); len(got) != 1 {
		t.Errorf("dropped %v, want the %d events' tries only", got, n)
	}
	t.Logf("%d event writes refused in %d calls for %d events", fake.events, fake.refused, n)
}

// maxTries is the recorder's: how many refused writes in a row drop an event.
const maxTries = 12

// TestRecorderBoundsItsBacklog: the events waiting out refusals count against
// MaxPending: beyond it new events are dropped and counted, not held without bound.
func TestRecorderBoundsItsBacklog(t *testing.T) {
	fake := &refusing{}
	reg := prometheus.NewRegistry()
	r := startRecorder(t, serve(t, fake), record.Config{Component: "test", MaxPending: 10, Metrics: record.NewMetrics(reg)})
	recordPods(r, 0, 10)
	waitfor.Condition(t, 30*time.Second, "the first refusal", func() (bool, string) {
		fake.mu.Lock()
		defer fake.mu.Unlock()
		return fake.refused > 0, "no write yet"
	})
	recordPods(r, 10, 15) // while the ten wait out the refusal
	fake.mu.Lock()
	fake.open = true
	fake.mu.Unlock()
	waitfor.Condition(t, 30*time.Second, "the ten written", func() (bool, string) {
		fake.mu.Lock()
		defer fake.mu.Unlock()
		total := fake.total()
		return total >= 10, fmt.Sprintf("%d written in calls of %v", total, fake.written)
	})
	if got := dropped(t, reg); got[record.DroppedBacklog] != 5 {
		t.Errorf("dropped %v, want the 5 events recorded past the backlog of 10", got)
	}
	recordPods(r, 15, 16) // the backlog written: room again
	waitfor.Condition(t, 30*time.Second, "a later event written", func() (bool, string) {
		fake.mu.Lock()
		defer fake.mu.Unlock()
		total := fake.total()
		return total == 11, fmt.Sprintf("%d written in calls of %v", total, fake.written)
	})
}

// A recorder made without Metrics of its own counts its drops in record.Registry, which
// the processes' /metrics serve.
func TestDefaultMetricsInRegistry(t *testing.T) {
	before := dropped(t, record.Registry)[record.DroppedBacklog]
	fake := &refusing{}
	r := startRecorder(t, serve(t, fake), record.Config{Component: "test", MaxPending: 10})
	recordPods(r, 0, 10)
	waitfor.Condition(t, 30*time.Second, "the first refusal", func() (bool, string) {
		fake.mu.Lock()
		defer fake.mu.Unlock()
		return fake.refused > 0, "no write yet"
	})
	recordPods(r, 10, 13) // past the backlog while the ten wait out the refusal
	if got := dropped(t, record.Registry)[record.DroppedBacklog] - before; got != 3 {
		t.Errorf("record.Registry counted %v backlog drops, want 3", got)
	}
}

// TestRecordersShareASpentBudget: many recorders whose Events, recorded together, are
// many times their namespace's budget (Event rate limit, burst 10, 20 a second) each
// write every Event in the end, and are refused about once per Event the burst could not
// take: each refused writer is told its place in the budget's line, and comes back when
// the bucket has a token for it. (Told the next token for anyone, as before, they all
// came back together and all but one were refused again: over four refusals an Event,
// and the last Event written after 20 s rather than 6.)
func TestRecordersShareASpentBudget(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{Configure: func(cfg *apiserver.Config) {
		cfg.EventRateLimit = apiserver.EventRateLimit{NamespaceQPS: 20, NamespaceBurst: 10}
	}})
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	cs := client.NewClientset(conn)
	const recorders, each, burst = 40, 3, 10
	reg := prometheus.NewRegistry()
	metrics := record.NewMetrics(reg)
	var rs []*record.Recorder
	for i := range recorders {
		rs = append(rs, startRecorder(t, cs.Events, record.Config{Component: "kubelet", Host: fmt.Sprintf("w%d", i), Metrics: metrics}))
	}
	for i, r := range rs {
		for j := range each {
			name := fmt.Sprintf("p%d-%d", i, j)
			r.Eventf(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID(name)}}, record.Normal, "Started", "Started container c")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	waitfor.Condition(t, 2*time.Minute, "every Event written", func() (bool, string) {
		l, err := cs.Events.List(ctx, "default", client.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		return len(l.Items) == recorders*each, fmt.Sprintf("%d of %d Events written", len(l.Items), recorders*each)
	})
	if got := dropped(t, reg); len(got) != 0 {
		t.Fatalf("recorders dropped Events: %v", got)
	}
	refused := eventsRefused(t, c.Server(0))
	// Once per Event past the burst, and some again: a writer back at its slot can find
	// its token taken by one refused at that moment.
	if most := 2 * (recorders*each - burst); refused > float64(most) {
		t.Fatalf("%v Event writes refused for %d Events past the burst, want at most %d", refused, recorders*each-burst, most)
	}
	t.Logf("%v Event writes refused for %d Events past the burst", refused, recorders*each-burst)
}

// eventsRefused reads a member's skiff_apiserver_events_refused_total, all limit types.
func eventsRefused(t *testing.T, s *apiserver.Server) float64 {
	t.Helper()
	mfs, err := s.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0.0
	for _, mf := range mfs {
		if mf.GetName() == "skiff_apiserver_events_refused_total" {
			for _, m := range mf.GetMetric() {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}

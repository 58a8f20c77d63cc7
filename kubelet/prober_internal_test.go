package kubelet

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/skiffhq/skiff/client/record"
	"github.com/skiffhq/skiff/client/workqueue"
	"github.com/skiffhq/skiff/test/goroutines"
	"github.com/skiffhq/skiff/test/waitfor"
)

// Network probes against real servers on the loopback: an HTTP server (status codes,
// headers, a named port), a TCP port open and closed, and a gRPC health server whose
// services are serving or not, as Kubernetes' prober reads each.
func TestDialProbe(t *testing.T) {
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/healthz" && r.URL.Query().Get("verbose") == "1" && r.Header.Get("X-Custom") == "awesome" &&
			strings.HasPrefix(r.UserAgent(), "kube-probe/"):
			w.Write([]byte("ok"))
		case r.URL.Path == "/redirect":
			w.WriteHeader(http.StatusFound)
		default:
			http.Error(w, "unhealthy", http.StatusInternalServerError)
		}
	}))
	defer web.Close()
	webPort := web.Listener.Addr().(*net.TCPAddr).Port

	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := closed.Addr().(*net.TCPAddr).Port
	closed.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("db", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	go srv.Serve(ln)
	defer srv.Stop()
	grpcPort := int32(ln.Addr().(*net.TCPAddr).Port)

	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"}}
	ctr := &corev1.Container{Name: "app", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: int32(webPort)}}}
	for _, tc := range []struct {
		name    string
		h       corev1.ProbeHandler
		headers []corev1.HTTPHeader
		ok      bool
		output  string
	}{
		{"http ok by port name", corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz?verbose=1", Port: intstr.FromString("http")}},
			[]corev1.HTTPHeader{{Name: "X-Custom", Value: "awesome"}}, true, "ok"},
		{"http 500", corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(int32(webPort))}},
			nil, false, "HTTP probe failed with statuscode: 500"},
		{"http redirect is success", corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/redirect", Port: intstr.FromInt32(int32(webPort))}},
			nil, true, ""},
		{"tcp open", corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(int32(webPort))}}, nil, true, ""},
		{"tcp closed", corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(int32(closedPort))}},
			nil, false, "connection refused"},
		{"grpc serving", corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: grpcPort}}, nil, true, ""},
		{"grpc service not serving", corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: grpcPort, Service: new("db")}},
			nil, false, `service unhealthy (responded with "NOT_SERVING")`},
		{"grpc unknown service", corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: grpcPort, Service: new("cache")}},
			nil, false, "NotFound"},
		{"grpc nothing listening", corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: int32(closedPort)}},
			nil, false, "connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			np, err := networkProbe(pod, ctr, &tc.h, "127.0.0.1")
			if err != nil {
				t.Fatal(err)
			}
			ok, out := dialProbe(context.Background(), np, tc.headers, 5*time.Second)
			if ok != tc.ok || !strings.Contains(out, tc.output) {
				t.Errorf("probe %s:%s: ok %v %q, want %v %q", np.Host, strconv.Itoa(np.Port), ok, out, tc.ok, tc.output)
			}
		})
	}

	// A named port the container does not declare.
	if _, err := networkProbe(pod, ctr, &corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromString("metrics")}}, "127.0.0.1"); err == nil ||
		err.Error() != "couldn't find port: metrics in default/web" {
		t.Errorf("unknown port name: %v", err)
	}
}

// testClock is k8s.io/utils' fake clock as the kubelet's Clock.
type testClock struct{ *testingclock.FakeClock }

func (c testClock) NewTimer(d time.Duration) workqueue.Timer { return c.FakeClock.NewTimer(d) }

// probeRuntime answers exec probes from a script per container (true: exit 0), records
// when each ran, and holds a container's probes in slow until they are released or
// cancelled.
type probeRuntime struct {
	Runtime // only ExecSync is called
	clock   Clock

	mu     sync.Mutex
	script map[string][]bool
	ran    map[string][]time.Duration // since start
	start  time.Time
	slow   map[string]chan struct{}
	onRun  func() // called at each run, r.mu held
	// inFlight is how many ExecSync calls run now; peakInFlight the most at once.
	inFlight, peakInFlight int
}

func (r *probeRuntime) ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) (ExecResult, error) {
	r.mu.Lock()
	r.inFlight++
	r.peakInFlight = max(r.peakInFlight, r.inFlight)
	defer func() {
		r.mu.Lock()
		r.inFlight--
		r.mu.Unlock()
	}()
	r.ran[cmd[0]] = append(r.ran[cmd[0]], r.clock.Now().Sub(r.start))
	if r.onRun != nil {
		r.onRun()
	}
	ok := len(r.script[cmd[0]]) == 0 || r.script[cmd[0]][0]
	if len(r.script[cmd[0]]) > 0 {
		r.script[cmd[0]] = r.script[cmd[0]][1:]
	}
	slow := r.slow[id]
	r.mu.Unlock()
	if slow != nil {
		select {
		case <-slow:
		case <-ctx.Done():
			return ExecResult{}, ctx.Err()
		}
	}
	if !ok {
		return ExecResult{ExitCode: 1, Output: []byte("no")}, nil
	}
	return ExecResult{}, nil
}

func (r *probeRuntime) runs(cmd string) []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ran[cmd])
}

// startProber runs a kubelet's prober alone, on a fake clock, until the test ends.
func startProber(t *testing.T, limit int) (*prober, *probeRuntime, testClock) {
	ctx, cancel := context.WithCancel(context.Background())
	p, rt, clk, wait := newTestProber(ctx, limit)
	t.Cleanup(func() { cancel(); wait() })
	return p, rt, clk
}

// newTestProber runs a kubelet's prober alone, on a fake clock, until ctx ends; wait
// waits for it to have stopped.
func newTestProber(ctx context.Context, limit int) (_ *prober, _ *probeRuntime, _ testClock, wait func()) {
	clk := testClock{testingclock.NewFakeClock(time.Unix(1000, 0))}
	rt := &probeRuntime{clock: clk, script: map[string][]bool{}, ran: map[string][]time.Duration{}, start: clk.Now(), slow: map[string]chan struct{}{}}
	cfg := DefaultConfig()
	cfg.Clock, cfg.ProbeConcurrency = clk, limit
	k := &Kubelet{rt: rt, cfg: cfg, queue: workqueue.New(workqueue.Config{Clock: clk}),
		rec: record.New(nil, record.Config{Now: clk.Now})}
	k.prober = newProber(k)
	k.prober.begin(ctx)
	return k.prober, rt, clk, k.prober.wg.Wait
}

// execProbe is an exec probe running cmd.
func execProbe(cmd string, delay, period, success, failure int32) *corev1.Probe {
	return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{cmd}}},
		InitialDelaySeconds: delay, PeriodSeconds: period, SuccessThreshold: success, FailureThreshold: failure}
}

// settle waits until the prober has started every probe due and none is running
// (but those in hold, held by the test).
func settle(t *testing.T, p *prober, clk testClock, hold int) {
	t.Helper()
	waitfor.Condition(t, 20*time.Second, "the prober idle until its next probe is due", func() (bool, string) {
		p.mu.Lock()
		defer p.mu.Unlock()
		due := len(p.due) > 0 && !p.due[0].next.After(clk.Now())
		return p.running == hold && !due, fmt.Sprintf("%d running, %d scheduled, one due: %v", p.running, len(p.due), due)
	})
}

func seconds(s ...int) []time.Duration {
	var d []time.Duration
	for _, n := range s {
		d = append(d, time.Duration(n)*time.Second)
	}
	return d
}

// The prober's schedule on a fake clock, second by second, as Kubernetes' probe worker
// runs: the first run at initialDelaySeconds after the container started, then one a
// period; successThreshold and failureThreshold runs in a row change the result; a
// failed liveness probe and a passed startup probe are not run again; the startup
// probe holds the others; keep stops a container's probes.
func TestProberSchedule(t *testing.T) {
	p, rt, clk := startProber(t, 4)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "p", UID: "u"}}
	ready := &corev1.Container{Name: "ready", ReadinessProbe: execProbe("ready", 5, 10, 2, 2)}
	live := &corev1.Container{Name: "live", LivenessProbe: execProbe("live", 0, 3, 1, 3)}
	gated := &corev1.Container{Name: "gated", StartupProbe: execProbe("startup", 0, 2, 1, 10), ReadinessProbe: execProbe("gated-ready", 0, 4, 1, 1)}
	rt.script["ready"] = []bool{true, true, false, false, true} // then true
	rt.script["live"] = []bool{false, false, true, false, false, false}
	rt.script["startup"] = []bool{false, false, true}
	start := clk.Now()
	for _, c := range []struct {
		spec *corev1.Container
		id   string
	}{{ready, "c-ready"}, {live, "c-live"}, {gated, "c-gated"}} {
		p.ensure(pod, c.spec, Container{ID: c.id, Name: c.spec.Name, StartedAt: start})
		p.ensure(pod, c.spec, Container{ID: c.id, Name: c.spec.Name, StartedAt: start}) // again: not scheduled twice
	}
	want := map[int][]struct {
		id  string
		typ probeType
		r   result
	}{
		0:  {{"c-ready", readiness, resultFailure}, {"c-live", liveness, resultSuccess}, {"c-gated", startup, resultUnknown}, {"c-gated", readiness, resultFailure}},
		5:  {{"c-ready", readiness, resultFailure}},                                      // one success of two
		12: {{"c-live", liveness, resultSuccess}},                                        // two failures of three
		15: {{"c-ready", readiness, resultSuccess}, {"c-live", liveness, resultFailure}}, // two successes; three failures
		7:  {{"c-gated", startup, resultSuccess}, {"c-gated", readiness, resultFailure}}, // started at 4; readiness held until then
		8:  {{"c-gated", readiness, resultSuccess}},                                      // run at 8, the first after 4
		25: {{"c-ready", readiness, resultSuccess}},                                      // one failure of two
		35: {{"c-ready", readiness, resultFailure}},                                      // two
		45: {{"c-ready", readiness, resultFailure}},                                      // one success of two
		55: {{"c-ready", readiness, resultSuccess}},                                      // two
		56: {{"c-gated", readiness, resultFailure}, {"c-live", liveness, resultSuccess}}, // c-ready alone kept at 20: the others forgotten
	}
	for at := 0; at <= 60; at++ {
		if at > 0 {
			clk.Step(time.Second)
		}
		settle(t, p, clk, 0)
		for _, w := range want[at] {
			if r := p.result(w.id, w.typ); r != w.r {
				t.Errorf("at %ds: %s %v probe %v, want %v", at, w.id, w.typ, r, w.r)
			}
		}
		if at == 20 {
			p.keep("u", map[string]bool{"c-ready": true})
		}
	}
	for cmd, want := range map[string][]time.Duration{
		"ready":       seconds(5, 15, 25, 35, 45, 55),
		"live":        seconds(0, 3, 6, 9, 12, 15), // not after its third failure in a row
		"startup":     seconds(0, 2, 4),            // not after its success
		"gated-ready": seconds(8, 12, 16, 20),      // held at 0 and 4; stopped at 20
	} {
		if got := rt.runs(cmd); !slices.Equal(got, want) {
			t.Errorf("%s ran at %v, want %v", cmd, got, want)
		}
	}
}

// A probe that hangs holds one of the prober's slots, not the others' schedule: they
// run on time while it waits, until the kubelet stops (which ends it).
func TestProberSlowProbe(t *testing.T) {
	p, rt, clk := startProber(t, 2)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "p", UID: "u"}}
	rt.slow["c-slow"] = make(chan struct{})
	start := clk.Now()
	p.ensure(pod, &corev1.Container{Name: "slow", LivenessProbe: execProbe("slow", 0, 1, 1, 3)}, Container{ID: "c-slow", StartedAt: start})
	p.ensure(pod, &corev1.Container{Name: "fast", ReadinessProbe: execProbe("fast", 0, 1, 1, 3)}, Container{ID: "c-fast", StartedAt: start})
	for at := 0; at <= 5; at++ {
		if at > 0 {
			clk.Step(time.Second)
		}
		settle(t, p, clk, 1)
	}
	if got, want := rt.runs("fast"), seconds(0, 1, 2, 3, 4, 5); !slices.Equal(got, want) {
		t.Errorf("the fast probe ran at %v beside a hanging one, want %v", got, want)
	}
	if got, want := rt.runs("slow"), seconds(0); !slices.Equal(got, want) {
		t.Errorf("the hanging probe ran at %v, want %v", got, want)
	}
}

// The prober's goroutines do not grow with the number of probes: 2,000 probes of
// 1,000 containers run at most ProbeConcurrency at once, on goroutines that end with
// their runs, beside the schedule's, which ends when the probes do. (The count of
// goroutines at a moment was bounded by twice ProbeConcurrency before: on a loaded
// machine more of those whose runs had ended had not yet returned.)
func TestProbesNeedNoGoroutineEach(t *testing.T) {
	const limit, containers = 16, 1000
	p, rt, clk := startProber(t, limit)
	if n := goroutines.Running("kubelet.(*prober)."); n != 0 {
		t.Fatalf("%d goroutines of the prober's without probes", n)
	}
	peak, runs := 0, 0
	rt.onRun = func() { // rt.mu held
		if runs++; runs%50 == 0 {
			peak = max(peak, goroutines.Running("kubelet.(*prober)."))
		}
	}
	start := clk.Now()
	for i := range containers {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprint("p", i), UID: types.UID(fmt.Sprint("u", i))}}
		spec := &corev1.Container{Name: "app", LivenessProbe: execProbe("live", 0, 10, 1, 3), ReadinessProbe: execProbe("ready", 0, 10, 1, 3)}
		p.ensure(pod, spec, Container{ID: fmt.Sprint("c", i), StartedAt: start})
	}
	settle(t, p, clk, 0)
	if n, m := len(rt.runs("live")), len(rt.runs("ready")); n != containers || m != containers {
		t.Fatalf("runs: %d liveness, %d readiness, want %d each", n, m, containers)
	}
	rt.mu.Lock()
	top, running := peak, rt.peakInFlight
	rt.mu.Unlock()
	if running > limit {
		t.Errorf("%d probes ran at once, more than the %d the prober may run", running, limit)
	}
	// Goroutines that ran a probe may not have returned yet when the next ones start
	// (how many depends on the machine's load): far fewer than a goroutine a probe.
	if top > containers/4 {
		t.Errorf("%d goroutines of the prober's while %d probes ran: not bounded by the %d it may run at once", top, 2*containers, limit)
	}
	waitfor.Condition(t, 20*time.Second, "the schedule's goroutine alone while the probes wait", func() (bool, string) {
		n := goroutines.Running("kubelet.(*prober).")
		return n == 1, fmt.Sprintf("%d goroutines of the prober's", n)
	})
	for i := range containers {
		p.keep(fmt.Sprint("u", i), nil)
	}
	p.poke()
	waitfor.Condition(t, 20*time.Second, "no goroutine of the prober's once its probes are gone", func() (bool, string) {
		n := goroutines.Running("kubelet.(*prober).")
		return n == 0, fmt.Sprintf("%d goroutines of the prober's", n)
	})
}

// BenchmarkProbers1000 is what 1,000 containers' probes (one readiness probe each, run
// once and waiting for their next period) cost a kubelet: its goroutines, their stacks
// and the heap, beyond an idle prober's.
func BenchmarkProbers1000(b *testing.B) {
	const containers = 1000
	for b.Loop() {
		func() {
			ctx, cancel := context.WithCancel(context.Background())
			p, rt, clk, wait := newTestProber(ctx, 16)
			defer wait()
			defer cancel()
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			g := runtime.NumGoroutine()
			start := clk.Now()
			for i := range containers {
				pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprint("p", i), UID: types.UID(fmt.Sprint("u", i))}}
				spec := &corev1.Container{Name: "app", ReadinessProbe: execProbe("ready", 0, 10, 1, 3)}
				p.ensure(pod, spec, Container{ID: fmt.Sprint("c", i), StartedAt: start})
			}
			waitfor.Condition(b, time.Minute, "every probe run once", func() (bool, string) {
				n := len(rt.runs("ready"))
				return n == containers && runtime.NumGoroutine()-g <= containers, fmt.Sprint(n, " runs")
			})
			runtime.GC()
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(runtime.NumGoroutine()-g), "goroutines")
			b.ReportMetric(float64(int64(after.StackInuse)-int64(before.StackInuse)), "stack-B")
			b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)), "heap-B")
		}()
	}
}

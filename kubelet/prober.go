package kubelet

import (
	"container/heap"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/client/record"
	"github.com/skiffhq/skiff/client/workqueue"
)

// NetworkProber is implemented by a runtime that simulates its containers' network as
// well as their processes (kubelet/sim): the kubelet asks it instead of dialling.
type NetworkProber interface {
	// ProbeNetwork runs p against container id: ok, or why not.
	ProbeNetwork(ctx context.Context, id string, p NetworkProbe) (ok bool, output string)
}

// NetworkProbe is a probe's or hook's httpGet, tcpSocket or grpc, its port resolved.
type NetworkProbe struct {
	Kind   string // ProbeHTTP, ProbeTCP or ProbeGRPC
	Host   string
	Port   int
	Path   string // HTTP
	Scheme string // HTTP: "HTTP" or "HTTPS"
	// Service is the service a gRPC probe asks the health of ("": the server's).
	Service string
}

// The kinds of network probes.
const (
	ProbeHTTP = "http"
	ProbeTCP  = "tcp"
	ProbeGRPC = "grpc"
)

// probeType is which of a container's probes.
type probeType int

const (
	liveness probeType = iota
	readiness
	startup
)

func (t probeType) String() string { return [...]string{"Liveness", "Readiness", "Startup"}[t] }

// result is a probe's verdict so far.
type result int

const (
	resultUnknown result = iota
	resultSuccess
	resultFailure
)

type probeKey struct {
	id  string // the container's runtime ID: a restarted container is probed anew
	typ probeType
}

// prober runs the probes of each running container on one schedule per kubelet (a
// heap of the probes by the time each is next due) instead of Kubernetes' goroutine per
// probe, and keeps their results, which syncPod reads: readiness makes a container
// ready, a failed liveness or startup probe has it killed. A result that changes queues
// the pod.
//
// run's loop owns the schedule: it starts each probe that is due in a goroutine of its
// own, at most Config.ProbeConcurrency at once, and the probe goes back on the heap,
// one period after it started, when it is done. The loop runs only while there are
// probes: a kubelet without any (most simulated nodes) has no goroutine for them. A probe that hangs holds its slot only
// for its timeout, which each handler keeps (ExecSync, dialProbe), so one slow probe
// cannot hold the others back beyond it; a simulated node's probes are answered at once.
// The number of goroutines is thus bounded by the concurrency, not by the probes.
//
// The semantics are Kubernetes' probe worker's: the first run at initialDelaySeconds
// after the container started, then one every periodSeconds; successThreshold and
// failureThreshold runs in a row change the result; the startup probe holds the others
// until it has succeeded, and is not run again then; a failed liveness or startup
// probe is not run again (the container is killed, and its successor probed anew).
type prober struct {
	k     *Kubelet
	limit int
	wake  chan struct{} // a probe was added, or a run ended: look at the heap again
	wg    sync.WaitGroup

	mu      sync.Mutex
	ctx     context.Context // the kubelet's Run (nil before): probes run until it ends
	looping bool            // run's loop is running
	probes  map[probeKey]*probe
	results map[probeKey]result
	byPod   map[string]map[probeKey]bool // pod uid -> its probes
	due     probeHeap                    // the probes waiting for their time
	running int                          // probes being run
}

// probe is one probe of one container, and where it stands.
type probe struct {
	key   probeKey
	pod   *corev1.Pod
	spec  *corev1.Container
	c     Container
	probe *corev1.Probe

	next                time.Time // when it is due
	index               int       // in the heap; -1 when not in it (running or done)
	successes, failures int       // runs in a row
	cancel              context.CancelFunc
	stopped             bool // forgotten by keep: its run in flight counts for nothing
}

func newProber(k *Kubelet) *prober {
	return &prober{k: k, limit: k.cfg.ProbeConcurrency, wake: make(chan struct{}, 1),
		probes: map[probeKey]*probe{}, results: map[probeKey]result{}, byPod: map[string]map[probeKey]bool{}}
}

// result is a probe's result, or what a probe not run yet counts as: Kubernetes'
// initial values (failed readiness, successful liveness, unknown startup).
func (p *prober) result(id string, typ probeType) result {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.resultLocked(probeKey{id, typ})
}

func (p *prober) resultLocked(key probeKey) result {
	if r, ok := p.results[key]; ok {
		return r
	}
	return [...]result{resultSuccess, resultFailure, resultUnknown}[key.typ]
}

// ensure schedules a running container's probes, the first at its initial delay (run
// starts them).
func (p *prober) ensure(pod *corev1.Pod, spec *corev1.Container, c Container) {
	p.mu.Lock()
	defer p.mu.Unlock()
	added := false
	for typ, pr := range [...]*corev1.Probe{liveness: spec.LivenessProbe, readiness: spec.ReadinessProbe, startup: spec.StartupProbe} {
		key := probeKey{c.ID, probeType(typ)}
		if _, ok := p.probes[key]; ok || pr == nil {
			continue
		}
		pb := &probe{key: key, pod: pod, spec: spec, c: c, probe: pr, index: -1,
			next: c.StartedAt.Add(time.Duration(pr.InitialDelaySeconds) * time.Second)}
		p.probes[key] = pb
		if p.byPod[string(pod.UID)] == nil {
			p.byPod[string(pod.UID)] = map[probeKey]bool{}
		}
		p.byPod[string(pod.UID)][key] = true
		heap.Push(&p.due, pb)
		added = true
	}
	if added {
		p.loopLocked()
		p.poke()
	}
}

// begin lets the prober run probes until ctx ends (the kubelet's Run); its goroutines
// are then waited for with p.wg.
func (p *prober) begin(ctx context.Context) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ctx = ctx
	p.loopLocked()
}

// loopLocked starts run's loop when there are probes and it is not running (p.mu held).
func (p *prober) loopLocked() {
	if p.ctx == nil || p.ctx.Err() != nil || p.looping || len(p.due)+p.running == 0 {
		return
	}
	p.looping = true
	ctx := p.ctx
	p.wg.Go(func() { p.run(ctx) })
}

// keep stops the probes of pod uid's containers not in ids, and forgets their results.
func (p *prober) keep(uid string, ids map[string]bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for key := range p.byPod[uid] {
		if ids[key.id] {
			continue
		}
		if pb := p.probes[key]; pb != nil {
			pb.stopped = true
			if pb.index >= 0 {
				heap.Remove(&p.due, pb.index)
			}
			if pb.cancel != nil {
				pb.cancel()
			}
		}
		delete(p.probes, key)
		delete(p.results, key)
		delete(p.byPod[uid], key)
	}
	if len(p.byPod[uid]) == 0 {
		delete(p.byPod, uid)
	}
}

// poke wakes Run's loop, if it is not awake already.
func (p *prober) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// run starts the probes as they come due until ctx ends or there are none left.
func (p *prober) run(ctx context.Context) {
	clock := p.k.cfg.Clock
	for {
		p.mu.Lock()
		now := clock.Now()
		for p.running < p.limit && len(p.due) > 0 && !p.due[0].next.After(now) {
			p.start(ctx, heap.Pop(&p.due).(*probe), now)
		}
		if len(p.due) == 0 && p.running == 0 {
			p.looping = false // the next probe ensure adds starts another
			p.mu.Unlock()
			return
		}
		wait := time.Duration(-1) // nothing to wait for but a poke
		if p.running < p.limit && len(p.due) > 0 {
			wait = p.due[0].next.Sub(now)
		}
		p.mu.Unlock()
		var timer workqueue.Timer
		var fire <-chan time.Time
		if wait >= 0 {
			timer = clock.NewTimer(wait)
			fire = timer.C()
		}
		select {
		case <-ctx.Done():
		case <-p.wake:
		case <-fire:
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// start runs pb, due now, unless the startup probe holds it: then it waits a period.
func (p *prober) start(ctx context.Context, pb *probe, now time.Time) {
	period := time.Duration(max(pb.probe.PeriodSeconds, 1)) * time.Second
	if pb.key.typ != startup && pb.spec.StartupProbe != nil && p.resultLocked(probeKey{pb.c.ID, startup}) != resultSuccess {
		pb.next = now.Add(period)
		heap.Push(&p.due, pb)
		return
	}
	ctx, pb.cancel = context.WithCancel(ctx)
	p.running++
	p.wg.Go(func() {
		ok, out := p.k.runProbe(ctx, pb.pod, pb.spec, pb.c.ID, &pb.probe.ProbeHandler, time.Duration(max(pb.probe.TimeoutSeconds, 1))*time.Second)
		p.done(ctx, pb, now.Add(period), ok, out)
	})
}

// done counts a run of pb: the result changes after enough runs in a row. pb goes back
// on the heap for next (now, if that has passed), unless it is done for good.
func (p *prober) done(ctx context.Context, pb *probe, next time.Time, ok bool, out string) {
	p.mu.Lock()
	p.running--
	if pb.stopped || ctx.Err() != nil { // forgotten, or the kubelet stopped
		p.mu.Unlock()
		p.poke()
		return
	}
	pb.cancel()
	typ, changed := pb.key.typ, false
	if ok {
		pb.successes, pb.failures = pb.successes+1, 0
	} else {
		pb.successes, pb.failures = 0, pb.failures+1
	}
	again := true
	switch {
	case ok && pb.successes >= int(max(pb.probe.SuccessThreshold, 1)):
		changed = p.set(pb.key, resultSuccess)
		again = typ != startup
	case !ok && pb.failures >= int(max(pb.probe.FailureThreshold, 1)):
		changed = p.set(pb.key, resultFailure)
		again = typ == readiness
	}
	if again {
		pb.next = next
		if now := p.k.cfg.Clock.Now(); now.After(next) {
			pb.next = now
		}
		heap.Push(&p.due, pb)
	}
	p.mu.Unlock()
	p.poke()
	if !ok {
		p.k.rec.Eventf(pb.pod, record.Warning, "Unhealthy", "%s probe failed: %s", typ, strings.TrimSpace(out))
	}
	if changed {
		p.k.queue.Add(cache.Key(pb.pod))
	}
}

// set records a probe's result (p.mu held): whether it changed.
func (p *prober) set(key probeKey, r result) bool {
	old, had := p.results[key]
	p.results[key] = r
	return !had || old != r
}

// probeHeap orders probes by when they are due (container/heap).
type probeHeap []*probe

func (h probeHeap) Len() int           { return len(h) }
func (h probeHeap) Less(i, j int) bool { return h[i].next.Before(h[j].next) }
func (h probeHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *probeHeap) Push(x any) {
	pb := x.(*probe)
	pb.index = len(*h)
	*h = append(*h, pb)
}
func (h *probeHeap) Pop() any {
	old := *h
	pb := old[len(old)-1]
	old[len(old)-1] = nil
	pb.index = -1
	*h = old[:len(old)-1]
	return pb
}

// probeOutputLimit is how much of a probe's output Kubernetes keeps.
const probeOutputLimit = 10 * 1024

// runProbe runs a probe's (or a hook's) handler once against container id of pod.
func (k *Kubelet) runProbe(ctx context.Context, pod *corev1.Pod, spec *corev1.Container, id string, h *corev1.ProbeHandler, timeout time.Duration) (bool, string) {
	if h.Exec != nil {
		res, err := k.rt.ExecSync(ctx, id, h.Exec.Command, timeout)
		switch {
		case errors.Is(err, ErrExecTimeout):
			return false, fmt.Sprintf("command %q timed out", strings.Join(h.Exec.Command, " "))
		case err != nil:
			return false, err.Error()
		case res.ExitCode != 0:
			return false, string(res.Output)
		}
		return true, string(res.Output)
	}
	np, err := networkProbe(pod, spec, h, k.podAddr(pod))
	if err != nil {
		return false, err.Error()
	}
	if sim, ok := k.rt.(NetworkProber); ok {
		return sim.ProbeNetwork(ctx, id, np)
	}
	var headers []corev1.HTTPHeader
	if h.HTTPGet != nil {
		headers = h.HTTPGet.HTTPHeaders
	}
	return dialProbe(ctx, np, headers, timeout)
}

// networkProbe resolves a handler's target: its host (the pod's IP, which is the
// node's) and its port (a number or the name of a container port).
func networkProbe(pod *corev1.Pod, spec *corev1.Container, h *corev1.ProbeHandler, podIP string) (NetworkProbe, error) {
	var np NetworkProbe
	var port intstr.IntOrString
	switch {
	case h.HTTPGet != nil:
		np = NetworkProbe{Kind: ProbeHTTP, Host: h.HTTPGet.Host, Path: h.HTTPGet.Path, Scheme: string(h.HTTPGet.Scheme)}
		port = h.HTTPGet.Port
	case h.TCPSocket != nil:
		np = NetworkProbe{Kind: ProbeTCP, Host: h.TCPSocket.Host}
		port = h.TCPSocket.Port
	case h.GRPC != nil:
		np = NetworkProbe{Kind: ProbeGRPC, Service: ptr.Deref(h.GRPC.Service, "")}
		port = intstr.FromInt32(h.GRPC.Port)
	default:
		return np, errors.New("missing probe handler")
	}
	if np.Host == "" {
		np.Host = podIP
	}
	if np.Path == "" && np.Kind == ProbeHTTP {
		np.Path = "/"
	}
	if port.Type == intstr.Int {
		np.Port = port.IntValue()
	} else {
		for _, cp := range spec.Ports {
			if cp.Name == port.StrVal {
				np.Port = int(cp.ContainerPort)
			}
		}
		if np.Port == 0 {
			if n, err := strconv.Atoi(port.StrVal); err == nil {
				np.Port = n
			} else {
				return np, fmt.Errorf("couldn't find port: %s in %s/%s", port.StrVal, pod.Namespace, pod.Name)
			}
		}
	}
	return np, nil
}

// dialProbe runs a network probe over the network, as Kubernetes' prober does.
func dialProbe(ctx context.Context, np NetworkProbe, headers []corev1.HTTPHeader, timeout time.Duration) (bool, string) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	addr := net.JoinHostPort(np.Host, strconv.Itoa(np.Port))
	switch np.Kind {
	case ProbeTCP:
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return false, err.Error()
		}
		conn.Close()
		return true, ""
	case ProbeGRPC:
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return false, err.Error()
		}
		defer conn.Close()
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: np.Service})
		if err != nil {
			if ctx.Err() != nil {
				return false, fmt.Sprintf("timeout: health rpc did not complete within %v", timeout)
			}
			return false, err.Error()
		}
		if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			return false, fmt.Sprintf("service unhealthy (responded with %q)", resp.GetStatus().String())
		}
		return true, ""
	}
	scheme := strings.ToLower(np.Scheme)
	if scheme == "" {
		scheme = "http"
	}
	u := &url.URL{Scheme: scheme, Host: addr, Path: np.Path}
	if p, q, ok := strings.Cut(np.Path, "?"); ok {
		u.Path, u.RawQuery = p, q
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return false, err.Error()
	}
	req.Header.Set("User-Agent", "kube-probe/"+Version)
	req.Header.Set("Accept", "*/*")
	for _, h := range headers {
		if strings.EqualFold(h.Name, "Host") {
			req.Host = h.Value
			continue
		}
		req.Header.Add(h.Name, h.Value)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, probeOutputLimit))
	if resp.StatusCode < http.StatusOK || resp.StatusCode >= http.StatusBadRequest {
		return false, fmt.Sprintf("HTTP probe failed with statuscode: %d", resp.StatusCode)
	}
	return true, string(body)
}

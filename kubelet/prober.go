package kubelet

import (
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

// prober runs a goroutine per probe of each running container (Kubernetes' probe
// workers) and keeps their results, which syncPod reads: readiness makes a container
// ready, a failed liveness or startup probe has it killed. A result that changes queues
// the pod.
type prober struct {
	k   *Kubelet
	ctx context.Context // the kubelet's Run: workers end with it
	wg  sync.WaitGroup

	mu      sync.Mutex
	workers map[probeKey]context.CancelFunc
	results map[probeKey]result
	byPod   map[string]map[probeKey]bool // pod uid -> its probes
}

func newProber(k *Kubelet) *prober {
	return &prober{k: k, workers: map[probeKey]context.CancelFunc{}, results: map[probeKey]result{}, byPod: map[string]map[probeKey]bool{}}
}

// result is a probe's result, or what a probe not run yet counts as: Kubernetes'
// initial values (failed readiness, successful liveness, unknown startup).
func (p *prober) result(id string, typ probeType) result {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r, ok := p.results[probeKey{id, typ}]; ok {
		return r
	}
	return [...]result{resultSuccess, resultFailure, resultUnknown}[typ]
}

// ensure starts the workers of a running container's probes.
func (p *prober) ensure(pod *corev1.Pod, spec *corev1.Container, c Container) {
	for typ, pr := range map[probeType]*corev1.Probe{liveness: spec.LivenessProbe, readiness: spec.ReadinessProbe, startup: spec.StartupProbe} {
		if pr == nil {
			continue
		}
		key := probeKey{c.ID, typ}
		p.mu.Lock()
		if _, ok := p.workers[key]; ok || p.ctx == nil {
			p.mu.Unlock()
			continue
		}
		ctx, cancel := context.WithCancel(p.ctx)
		p.workers[key] = cancel
		if p.byPod[string(pod.UID)] == nil {
			p.byPod[string(pod.UID)] = map[probeKey]bool{}
		}
		p.byPod[string(pod.UID)][key] = true
		p.mu.Unlock()
		p.wg.Go(func() { p.work(ctx, pod, spec, c, typ, pr) })
	}
}

// keep stops the workers of pod uid's containers not in ids, and forgets their results.
func (p *prober) keep(uid string, ids map[string]bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for key := range p.byPod[uid] {
		if ids[key.id] {
			continue
		}
		if cancel := p.workers[key]; cancel != nil {
			cancel()
		}
		delete(p.workers, key)
		delete(p.results, key)
		delete(p.byPod[uid], key)
	}
	if len(p.byPod[uid]) == 0 {
		delete(p.byPod, uid)
	}
}

// work probes one container with one probe until ctx ends, or a liveness or startup
// probe has failed (the container is then killed) or a startup probe has succeeded.
func (p *prober) work(ctx context.Context, pod *corev1.Pod, spec *corev1.Container, c Container, typ probeType, pr *corev1.Probe) {
	k := p.k
	key := probeKey{c.ID, typ}
	period := time.Duration(max(pr.PeriodSeconds, 1)) * time.Second
	if delay := c.StartedAt.Add(time.Duration(pr.InitialDelaySeconds) * time.Second).Sub(k.cfg.Clock.Now()); delay > 0 {
		if !k.sleep(ctx, delay) {
			return
		}
	}
	successes, failures := 0, 0
	for {
		if typ != startup && spec.StartupProbe != nil && p.result(c.ID, startup) != resultSuccess {
			// The startup probe holds the others.
		} else {
			ok, out := k.runProbe(ctx, pod, spec, c.ID, &pr.ProbeHandler, time.Duration(max(pr.TimeoutSeconds, 1))*time.Second)
			if ctx.Err() != nil {
				return
			}
			if ok {
				successes, failures = successes+1, 0
			} else {
				successes, failures = 0, failures+1
				k.rec.Eventf(pod, record.Warning, "Unhealthy", "%s probe failed: %s", typ, strings.TrimSpace(out))
			}
			switch {
			case ok && successes >= int(max(pr.SuccessThreshold, 1)):
				p.set(pod, key, resultSuccess)
				if typ == startup {
					return
				}
			case !ok && failures >= int(max(pr.FailureThreshold, 1)):
				p.set(pod, key, resultFailure)
				if typ != readiness {
					return
				}
			}
		}
		if !k.sleep(ctx, period) {
			return
		}
	}
}

func (p *prober) set(pod *corev1.Pod, key probeKey, r result) {
	p.mu.Lock()
	if _, live := p.workers[key]; !live {
		p.mu.Unlock()
		return
	}
	old, had := p.results[key]
	p.results[key] = r
	p.mu.Unlock()
	if !had || old != r {
		p.k.queue.Add(cache.Key(pod))
	}
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

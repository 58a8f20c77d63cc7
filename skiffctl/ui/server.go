// Package ui is `skiffctl ui`: a web server on loopback that shows the cluster and the
// chain map of a workload live, in the user's browser.
//
// One informer per kind (nodes, pods, Deployments, ReplicaSets, DaemonSets, StatefulSets,
// ControllerRevisions, Jobs, CronJobs, Services, EndpointSlices, Events) keeps a cache
// with the user's own credentials: a watch per kind, however many pages are open. The Raft cluster has no watch, so its members are
// asked for their status once a PollInterval, each on its own address: a member that
// does not answer is shown unreachable, and the others name the new leader.
//
// A page opens one server-sent event stream (/api/stream). Whenever a cache or the Raft
// status changes, the stream's goroutine recomputes the view the page shows (the cluster,
// or the chain of the workload it names) from the caches and sends those that changed,
// at most once per Throttle (or twice a slow build's time: buildPause): during a rollout
// of 10,000 pods a page gets a few updates a second, never one per object. The views are computed by BuildCluster and BuildChain,
// pure functions of the objects, which the unit tests drive.
//
// The page itself (static/) is built from web/ by `make ui` (esbuild, preact and htm
// from the npm registry) and embedded: running needs no Node and no network.
package ui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/kinds"
)

// Config configures the server.
type Config struct {
	// Listen is the loopback host:port to serve on (port 0: any free one).
	Listen string
	// Servers and Options are how to reach the API servers: the user's client config.
	Servers []string
	Options client.Options
	// PollInterval is how often the Raft members are asked for their status. Default 1s.
	PollInterval time.Duration
	// Throttle is the shortest time between two updates of one page. Default 100ms.
	Throttle time.Duration
	Log      hclog.Logger
}

// DefaultListen is where `skiffctl ui` serves by default.
const DefaultListen = "127.0.0.1:7480"

// Server serves the UI.
type Server struct {
	cfg  Config
	log  hclog.Logger
	conn *client.Conn
	ln   net.Listener

	factory      *cache.Factory
	nodes        *cache.Informer[*corev1.Node]
	pods         *cache.Informer[*corev1.Pod]
	deployments  *cache.Informer[*appsv1.Deployment]
	replicaSets  *cache.Informer[*appsv1.ReplicaSet]
	daemonSets   *cache.Informer[*appsv1.DaemonSet]
	statefulSets *cache.Informer[*appsv1.StatefulSet]
	revisions    *cache.Informer[*appsv1.ControllerRevision]
	jobs         *cache.Informer[*batchv1.Job]
	cronJobs     *cache.Informer[*batchv1.CronJob]
	services     *cache.Informer[*corev1.Service]
	slices       *cache.Informer[*discoveryv1.EndpointSlice]
	events       *cache.Informer[*corev1.Event]

	// objects is where the views come from: the caches (Objects); tests set it.
	objects func() *Objects
	// workloadObjects is where a chain's head comes from: the workload alone, from the
	// caches (WorkloadObjects); tests set it.
	workloadObjects func(kind, namespace, name string) *Objects

	hub hub

	mu      sync.Mutex
	raft    Raft
	members map[string]*client.Conn // by API address: one connection per member
}

// CheckLoopback fails unless host:port names a loopback address: the UI acts with the
// user's credentials, so it is never served to other machines.
func CheckLoopback(listen string) error {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("invalid listen address %q: %w", listen, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%q is not a loopback address: the UI uses your credentials and serves on loopback only (127.0.0.1, ::1, localhost)", host)
	}
	return nil
}

// New validates cfg, listens, and prepares the caches; Run serves.
func New(cfg Config) (*Server, error) {
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.Throttle <= 0 {
		cfg.Throttle = 100 * time.Millisecond
	}
	if cfg.Log == nil {
		cfg.Log = hclog.NewNullLogger()
	}
	if err := CheckLoopback(cfg.Listen); err != nil {
		return nil, err
	}
	conn, err := client.Dial(cfg.Servers, cfg.Options)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	s := &Server{cfg: cfg, log: cfg.Log, conn: conn, ln: ln, members: map[string]*client.Conn{}}
	s.hub.ch = make(chan struct{})
	cs := client.NewClientset(conn)
	s.factory = cache.NewFactory(cs, cfg.Log)
	all := client.ListOptions{}
	s.nodes = watchKind[*corev1.Node](s, all)
	s.pods = watchKind[*corev1.Pod](s, all)
	s.deployments = watchKind[*appsv1.Deployment](s, all)
	s.replicaSets = watchKind[*appsv1.ReplicaSet](s, all)
	s.daemonSets = watchKind[*appsv1.DaemonSet](s, all)
	s.statefulSets = watchKind[*appsv1.StatefulSet](s, all)
	s.revisions = watchKind[*appsv1.ControllerRevision](s, all)
	s.jobs = watchKind[*batchv1.Job](s, all)
	s.cronJobs = watchKind[*batchv1.CronJob](s, all)
	s.services = watchKind[*corev1.Service](s, all)
	s.slices = watchKind[*discoveryv1.EndpointSlice](s, all)
	s.events = watchKind[*corev1.Event](s, all)
	s.objects, s.workloadObjects = s.Objects, s.WorkloadObjects
	return s, nil
}

func watchKind[T kinds.Object](s *Server, opts client.ListOptions) *cache.Informer[T] {
	inf := cache.InformerFor[T](s.factory, "", opts)
	kind := kinds.OfType[T]().Kind
	changed := func(obj T) { s.hub.changed(objectKey(kind, obj.GetNamespace(), obj.GetName())) }
	inf.AddHandler(cache.Handler[T]{
		OnAdd:    changed,
		OnUpdate: func(_, obj T) { changed(obj) },
		OnDelete: changed,
	})
	return inf
}

// objectKey names an object to the hub.
func objectKey(kind, namespace, name string) string { return kind + "/" + namespace + "/" + name }

// URL is the page's address.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() + "/" }

// Run serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer s.conn.Close()
	s.factory.Start(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); s.pollRaft(ctx) }()
	srv := &http.Server{Handler: s.Handler(), BaseContext: func(net.Listener) context.Context { return ctx }, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(s.ln) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	srv.Shutdown(sctx) // streams end with ctx (their BaseContext)
	cancel()
	wg.Wait()
	s.factory.Wait()
	s.mu.Lock()
	for _, c := range s.members {
		c.Close()
	}
	s.mu.Unlock()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// hub tells the page streams that something changed: ch is closed and replaced at each
// change, so a stream waits on the channel it got before reading the caches. A stream
// also waits on its own object's channel (objects, by objectKey; made when asked for,
// dropped when closed): a change of the object a page is about is not held back by the
// throttle that the changes of its pods and events are.
type hub struct {
	mu      sync.Mutex
	ch      chan struct{}
	objects map[string]chan struct{}
}

// changed signals a change: of the object key names, or ("") of something else.
func (h *hub) changed(key string) {
	h.mu.Lock()
	close(h.ch)
	h.ch = make(chan struct{})
	if ch, ok := h.objects[key]; ok {
		close(ch)
		delete(h.objects, key)
	}
	h.mu.Unlock()
}

func (h *hub) wait() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ch
}

// waitObject is closed at the next change of the object key names.
func (h *hub) waitObject(key string) <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	ch, ok := h.objects[key]
	if !ok {
		if h.objects == nil {
			h.objects = map[string]chan struct{}{}
		}
		ch = make(chan struct{})
		h.objects[key] = ch
	}
	return ch
}

// Objects is the caches' content now.
func (s *Server) Objects() *Objects {
	all := labels.Everything()
	return &Objects{
		Nodes: s.nodes.Lister().List(all), Pods: s.pods.Lister().List(all), Deployments: s.deployments.Lister().List(all),
		ReplicaSets: s.replicaSets.Lister().List(all), DaemonSets: s.daemonSets.Lister().List(all),
		StatefulSets: s.statefulSets.Lister().List(all), ControllerRevisions: s.revisions.Lister().List(all),
		Jobs: s.jobs.Lister().List(all), CronJobs: s.cronJobs.Lister().List(all),
		Services: s.services.Lister().List(all), EndpointSlices: s.slices.Lister().List(all),
		Events: s.events.Lister().List(all),
	}
}

// WorkloadObjects is the workload kind namespace/name from the caches, alone (a
// CronJob with its namespace's Jobs): what BuildHead needs, without listing every cache.
func (s *Server) WorkloadObjects(kind, namespace, name string) *Objects {
	o := &Objects{}
	switch kind {
	case kinds.Deployment:
		o.Deployments = cached(s.deployments, namespace, name)
	case kinds.DaemonSet:
		o.DaemonSets = cached(s.daemonSets, namespace, name)
	case kinds.StatefulSet:
		o.StatefulSets = cached(s.statefulSets, namespace, name)
	case kinds.Job:
		o.Jobs = cached(s.jobs, namespace, name)
	case kinds.CronJob:
		o.CronJobs = cached(s.cronJobs, namespace, name)
		o.Jobs = s.jobs.Lister().ListNamespace(namespace, labels.Everything())
	}
	return o
}

// cached is the object namespace/name of inf's cache, as a list of one or none.
func cached[T kinds.Object](inf *cache.Informer[T], namespace, name string) []T {
	if obj, ok := inf.Lister().Get(namespace, name); ok {
		return []T{obj}
	}
	return nil
}

// Raft is the last Raft status polled.
func (s *Server) Raft() Raft {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.raft
	if r.Members == nil {
		r.Members = []Member{} // before the first poll: none known yet
	}
	return r
}

func (s *Server) memberNames() []string {
	var out []string
	for _, m := range s.Raft().Members {
		out = append(out, m.Name)
	}
	return out
}

// ServeHTTP routes: the page (/), its assets, the views as JSON (/api/cluster,
// /api/chain?kind=&namespace=&name=) and the stream (/api/stream?kind=&namespace=&name=).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /", http.FileServerFS(staticFS()))
	mux.HandleFunc("GET /api/cluster", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, BuildCluster(s.Raft(), s.objects()))
	})
	mux.HandleFunc("GET /api/chain", func(w http.ResponseWriter, r *http.Request) {
		kind, ns, name, err := workloadParams(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		writeJSON(w, s.view(kind, ns, name, s.objects()))
	})
	mux.HandleFunc("GET /api/stream", s.stream)
	return s.checkHost(mux)
}

// checkHost refuses requests whose Host is not the address served: a page of another
// site cannot reach the UI through a name it points at 127.0.0.1 (DNS rebinding).
func (s *Server) checkHost(h http.Handler) http.Handler {
	_, port, _ := net.SplitHostPort(s.ln.Addr().String())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, p, err := net.SplitHostPort(r.Host)
		if err != nil || p != port || CheckLoopback(r.Host) != nil {
			http.Error(w, fmt.Sprintf("host %q not allowed: open the UI on %s", host, s.URL()), http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// view is the page's view of one object: a Service's endpoints, a workload's chain.
func (s *Server) view(kind, namespace, name string, objs *Objects) any {
	if kind == kinds.Service {
		return BuildService(namespace, name, objs)
	}
	return BuildChain(kind, namespace, name, s.memberNames(), objs)
}

// viewKinds are the kinds the page opens: those with a trace, and Services.
const viewKinds = "Deployment, DaemonSet, StatefulSet, Job, CronJob, Service"

func workloadParams(r *http.Request) (kind, namespace, name string, err error) {
	q := r.URL.Query()
	kind, namespace, name = q.Get("kind"), q.Get("namespace"), q.Get("name")
	if name == "" {
		return "", "", "", nil
	}
	info, ok := kinds.Lookup(kind)
	if !ok {
		return "", "", "", fmt.Errorf("kind: Unsupported value: %q: supported values: %s", kind, viewKinds)
	}
	switch info.Kind {
	case kinds.Deployment, kinds.DaemonSet, kinds.StatefulSet, kinds.Job, kinds.CronJob, kinds.Service:
	default:
		return "", "", "", fmt.Errorf("kind: Unsupported value: %q: supported values: %s", kind, viewKinds)
	}
	if namespace == "" {
		namespace = "default"
	}
	return info.Kind, namespace, name, nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// stream sends the page its views as server-sent events: "cluster" (the cluster view), or,
// when the page names a workload, "chain" (its chain map) and "raft" (the members); each
// when it changed, at most once per Throttle. A chain map's page also gets "head" (the
// workload's ChainHead) as soon as the workload itself changes.
//
// Two goroutines serve a stream. The builder computes the views from the caches and
// hands them to the writer, which alone writes to the page. The views of a large
// workload cost in proportion to its pods and events (a chain of 10,000 pods and their
// 50,000 events takes hundreds of milliseconds on a loaded machine), so a change of the
// workload itself, the change the user makes or watches (an edit, a scale, its rollout's
// status), is not left to wait behind a build: the writer reads the workload alone and
// sends its head at once, and a chain built from older objects goes out with that newer
// head (a page never sees its workload go back).
func (s *Server) stream(w http.ResponseWriter, r *http.Request) {
	kind, ns, name, err := workloadParams(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	ctx, cancel := context.WithCancel(r.Context())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	views := make(chan []view)
	wg.Add(1)
	go func() { defer wg.Done(); s.buildViews(ctx, kind, ns, name, views) }()

	last := map[string][]byte{}
	send := func(event string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if string(last[event]) == string(b) {
			return nil
		}
		last[event] = b
		_, err = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b)
		return err
	}
	var own <-chan struct{} // the shown workload's change
	key := objectKey(kind, ns, name)
	if name != "" && kind != kinds.Service {
		own = s.hub.waitObject(key)
	}
	var head *ChainHead // the newest head sent, alone or in a chain
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		var err error
		select {
		case <-ctx.Done():
			return
		case <-keepalive.C:
			_, err = fmt.Fprint(w, ": keepalive\n\n")
		case vs := <-views:
			for _, v := range vs {
				if c, ok := v.value.(*Chain); ok && c.Found {
					if head != nil && newerRV(head.ResourceVersion, c.ResourceVersion) {
						c.ChainHead = *head // built before the workload's last change
					}
					h := c.ChainHead
					head = &h
				}
				if err = send(v.event, v.value); err != nil {
					break
				}
			}
		case <-own:
			own = s.hub.waitObject(key) // before reading: a change after the read comes again
			h, found := BuildHead(kind, ns, name, s.workloadObjects(kind, ns, name))
			if found && (head == nil || newerRV(h.ResourceVersion, head.ResourceVersion)) {
				head = &h
				err = send("head", h)
			}
		}
		if err != nil {
			return
		}
		fl.Flush()
	}
}

// view is one view to send on a page's stream: its event's name and value.
type view struct {
	event string
	value any
}

// buildViews computes the views a page's stream sends (the cluster, or the Raft members
// and the chain or Service view of kind ns/name) and hands them to out: at once, then at
// each change of the caches, at most once per Throttle, and a slow build (a large
// workload's, a loaded machine's) rests twice its own time first (buildPause). A change
// after a quiet spell is computed at once; one soon after the last build waits for the
// rest of the pause (and brings the changes made meanwhile), unless it is the shown
// object's own (a Service's: its chain's workload has its head sent by the writer).
func (s *Server) buildViews(ctx context.Context, kind, ns, name string, out chan<- []view) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		changed := s.hub.wait()
		var own <-chan struct{}
		if kind == kinds.Service {
			own = s.hub.waitObject(objectKey(kind, ns, name))
		}
		began := time.Now()
		objs := s.objects()
		var vs []view
		switch {
		case name == "":
			vs = []view{{"cluster", BuildCluster(s.Raft(), objs)}}
		case kind == kinds.Service:
			// The chain map and the Service show the Raft members, not the rest of the cluster view.
			vs = []view{{"raft", s.Raft()}, {"service", BuildService(ns, name, objs)}}
		default:
			vs = []view{{"raft", s.Raft()}, {"chain", BuildChain(kind, ns, name, s.memberNames(), objs)}}
		}
		took := time.Since(began)
		select {
		case <-ctx.Done():
			return
		case out <- vs:
		}
		built := time.Now()
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
		if wait := buildPause(s.cfg.Throttle, took) - time.Since(built); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			case <-own:
				timer.Stop() // a timer's channel holds no stale tick after Stop (Go 1.23)
			}
		}
	}
}

// buildShare is the largest share of the time a page's stream spends computing its
// views: after a build that took d, the next waits at least (1/buildShare - 1)·d.
const buildShare = 3

// buildPause is the shortest time from the end of a build that took took to the next:
// the Throttle, or longer when builds are slow, so that a stream builds for at most
// 1/buildShare of the time. A chain of 10,000 pods and their 50,000 events costs tens
// of milliseconds of CPU, hundreds on a loaded machine: built back to back, one page
// kept a core busy, which the cluster it shows (its writes, its watches, the very
// changes the page waits for) then lacked.
func buildPause(throttle, took time.Duration) time.Duration {
	return max(throttle, (buildShare-1)*took)
}

// newerRV says whether resourceVersion a is later than b. Skiff's resourceVersions are
// the store's revisions, numbers that grow with every write.
func newerRV(a, b string) bool {
	x, errA := strconv.ParseInt(a, 10, 64)
	y, errB := strconv.ParseInt(b, 10, 64)
	if errA != nil || errB != nil {
		return a != b
	}
	return x > y
}

// pollRaft asks every known member for its status once a PollInterval.
func (s *Server) pollRaft(ctx context.Context) {
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	for {
		r := s.pollOnce(ctx)
		s.mu.Lock()
		old, _ := json.Marshal(s.raft)
		s.raft = r
		s.mu.Unlock()
		if now, _ := json.Marshal(r); string(now) != string(old) {
			s.hub.changed("")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

type answer struct {
	addr string
	st   *statusAnswer
	err  error
}

// statusAnswer is what one member said.
type statusAnswer struct {
	Leader   string
	Term     uint64
	Revision int64
	Self     Member
	Members  []Member
}

func (s *Server) pollOnce(ctx context.Context) Raft {
	addrs := map[string]bool{}
	for _, a := range s.cfg.Servers {
		addrs[a] = true
	}
	for _, m := range s.Raft().Members {
		if m.API != "" {
			addrs[m.API] = true
		}
	}
	answers := make(chan answer, len(addrs))
	for addr := range addrs {
		go func() {
			st, err := s.askMember(ctx, addr)
			answers <- answer{addr: addr, st: st, err: err}
		}()
	}
	var got []answer
	for range addrs {
		got = append(got, <-answers)
	}
	return MergeStatus(s.Raft(), got)
}

func (s *Server) askMember(ctx context.Context, addr string) (*statusAnswer, error) {
	s.mu.Lock()
	c := s.members[addr]
	if c == nil {
		opts := s.cfg.Options
		opts.AttemptTimeout = s.cfg.PollInterval
		var err error
		if c, err = client.Dial([]string{addr}, opts); err != nil {
			s.mu.Unlock()
			return nil, err
		}
		s.members[addr] = c
	}
	s.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, s.cfg.PollInterval)
	defer cancel()
	st, err := c.ClusterStatus(cctx)
	if err != nil {
		return nil, err
	}
	out := &statusAnswer{Leader: st.GetLeader(), Term: st.GetTerm(), Revision: st.GetRevision()}
	if self := st.GetSelf(); self != nil {
		out.Self = Member{Name: self.GetName(), State: self.GetState(), CommitIndex: self.GetCommitIndex(), AppliedIdx: self.GetAppliedIndex()}
	}
	for _, m := range st.GetMembers() {
		out.Members = append(out.Members, Member{Name: m.GetName(), API: m.GetApiAddress(), Raft: m.GetRaftAddress(),
			Suffrage: m.GetSuffrage(), Leader: m.GetLeader()})
	}
	return out, nil
}

// MergeStatus combines the members' answers into the cluster's status: the members and
// leader as the answer of the highest term names them (a member cut off from the others
// may still believe in an old leader), each member's own state and commit index as it
// said it, and "unreachable" for a member that did not answer. prev supplies the
// members when none answered.
func MergeStatus(prev Raft, answers []answer) Raft {
	var best *statusAnswer
	self := map[string]Member{}
	var errs []string
	for _, a := range answers {
		if a.err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", a.addr, a.err))
			continue
		}
		self[a.st.Self.Name] = a.st.Self
		if best == nil || a.st.Term > best.Term || (a.st.Term == best.Term && best.Leader == "" && a.st.Leader != "") {
			best = a.st
		}
	}
	out := Raft{Members: []Member{}}
	members := prev.Members
	if best != nil {
		out.Leader, out.Term, out.Revision = best.Leader, best.Term, best.Revision
		members = best.Members
	} else {
		out.Error = "no API server answered: " + joinErrs(errs)
	}
	for _, m := range members {
		m.Leader = m.Name == out.Leader && out.Leader != ""
		if st, ok := self[m.Name]; ok {
			m.State, m.CommitIndex, m.AppliedIdx, m.Health, m.Error = st.State, st.CommitIndex, st.AppliedIdx, "healthy", ""
		} else {
			m.State, m.Health, m.Error = "", "unreachable", "did not answer"
			m.CommitIndex, m.AppliedIdx = 0, 0
		}
		out.Members = append(out.Members, m)
	}
	return out
}

func joinErrs(errs []string) string {
	out := ""
	for i, e := range errs {
		if i > 0 {
			out += "; "
		}
		out += e
	}
	return out
}

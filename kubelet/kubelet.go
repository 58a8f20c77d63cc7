package kubelet

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/client/record"
	"github.com/skiffhq/skiff/client/workqueue"
	"github.com/skiffhq/skiff/controllers/rootcacert"
	"github.com/skiffhq/skiff/internal/workers"
	"github.com/skiffhq/skiff/kubelet/volume"
)

// Kubelet is one node's agent. Make it with New and run it once with Run.
type Kubelet struct {
	cs   *client.Clientset
	rt   Runtime
	cfg  Config
	log  hclog.Logger
	rec  *record.Recorder
	pods *cache.Informer[*corev1.Pod]
	// services are every Service, for the variables pods get of them (servicelinks.go).
	services *cache.Informer[*corev1.Service]
	// ownServices: the kubelet runs services (Config.Services was nil).
	ownServices bool
	// stopPool ends the workers of the kubelet's own pool (Config.Pool was nil) once
	// Run has returned; nil with a pool shared with other kubelets.
	stopPool func()
	queue    *workqueue.Queue
	scheme   string // the runtime's name: container IDs are scheme://id
	bp       backoffPolicy
	info     corev1.NodeSystemInfo
	// capacity is cfg.Capacity, parsed once: the node's capacity and allocatable.
	capacity corev1.ResourceList
	volumes  *volume.Manager
	objects  *objectCache
	// tokens are the pods' service-account tokens (tokens.go).
	tokens *tokenManager
	// podCerts are the pods' podCertificate credentials (podcerts.go).
	podCerts *podCertManager
	prober   *prober

	mu     sync.Mutex
	memory map[string]*podMemory // by pod key
	// cidr is the node's podCIDR once read (a string).
	cidr atomic.Value
}

// podMemory is what the kubelet remembers about a pod beyond what the runtime and the
// API hold: back-offs and why containers wait. Losing it (a restart) only resets
// back-offs. Only the worker holding the pod's key touches it.
type podMemory struct {
	uid     types.UID
	restart map[string]*backoff // by container name
	pull    map[string]*backoff
	waiting map[string]*corev1.ContainerStateWaiting
	// written is the last status written until the cache has it (writtenRV is the
	// revision the write made): kept only while the cache lags, not as a second copy of
	// every pod's status (issue 26).
	written   *corev1.PodStatus
	writtenRV int64
	// ownRV is writtenRV for the pod informer's handler, which reads it on its own
	// goroutine to know the kubelet's own status write when it comes back (changed);
	// writing is the status of a write not yet answered, whose watch event can come
	// before the answer.
	ownRV   atomic.Int64
	writing atomic.Pointer[corev1.PodStatus]
	// messages are exited attempts' termination messages, by container ID.
	messages map[string]string
	// mountErr is the last FailedMount event's message (one event per distinct one).
	mountErr string
	// failure is why the whole pod failed (its active deadline passed, it was evicted).
	failure *podFailure
	// admitted: the pod passed the kubelet's admission and holds its host ports
	// (guarded by Kubelet.mu: other pods' admissions read it).
	admitted bool
	// podIP is the address the pod's network gave it (guarded by Kubelet.mu).
	podIP string
	// handler is the pod's RuntimeClass's handler, once handlerKnown (the pod's
	// worker's alone).
	handler      string
	handlerKnown bool
	// allocated are the resources the pod's app containers and sidecars run with, by
	// name (resize.go), and allocatedRequests the pod's requests with them (guarded by
	// Kubelet.mu: other pods' workers read them); nil until first allocated.
	allocated         allocation
	allocatedRequests corev1.ResourceList
	// pendingMsg is the pending resize's message last told in an event.
	pendingMsg string
	// resizeRestart are the containers stopped to take a resize (RestartContainer),
	// started again at once, whatever the restart policy.
	resizeRestart map[string]bool
}

// put sets (*m)[k] to v, making the map on first use: most pods never need most of
// podMemory's maps (a back-off, a waiting reason), and a process of simulated nodes holds
// one podMemory a pod (issue 26).
func put[K comparable, V any](m *map[K]V, k K, v V) {
	if *m == nil {
		*m = map[K]V{}
	}
	(*m)[k] = v
}

// New makes a kubelet for cfg.NodeName that runs pods through rt.
func New(cs *client.Clientset, rt Runtime, cfg Config) (*Kubelet, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("kubelet config: %w", err)
	}
	log := cfg.Logger.With("node", cfg.NodeName)
	var stopPool func()
	if cfg.Pool == nil {
		stop := make(chan struct{})
		cfg.Pool, stopPool = workers.New(poolMaxWorkers, poolIdle, stop), sync.OnceFunc(func() { close(stop) })
	}
	scheme, _, ok := strings.Cut(rt.Version(), "://")
	if !ok {
		scheme = "runtime"
	}
	k := &Kubelet{
		cs: cs, rt: rt, cfg: cfg, log: log, scheme: scheme, stopPool: stopPool,
		rec:      record.New(cs.Events, record.Config{Component: "kubelet", Host: cfg.NodeName, Logger: log, Now: cfg.Clock.Now, Pool: cfg.Pool}),
		pods:     cache.NewInformer(cs.Pods, "", client.ListOptions{FieldSelector: "spec.nodeName=" + cfg.NodeName}, log),
		services: cfg.Services,
		queue:    workqueue.New(workqueue.Config{BaseDelay: 100 * time.Millisecond, MaxDelay: 30 * time.Second, Clock: cfg.Clock, Pool: cfg.Pool}),
		bp:       backoffPolicy{initial: cfg.BackoffInitial, max: cfg.BackoffMax, reset: cfg.BackoffReset},
		info:     systemInfo(rt.Version()),

		capacity: cfg.resourceList(),
		objects:  newObjectCache(cs, cfg.ObjectCacheTTL, cfg.Clock.Now),
		tokens:   newTokenManager(cs.Conn, cfg.Clock.Now),
		podCerts: newPodCertManager(cs, cfg.NodeName, cfg.Clock.Now),

		memory: map[string]*podMemory{},
	}
	if k.services == nil {
		k.services, k.ownServices = cache.NewInformer(cs.Services, "", client.ListOptions{}, log), true
	}
	parts := cfg.PodParts
	if parts == nil {
		parts = cache.NewPodParts()
	}
	k.pods.SetTransform(parts.Share)
	k.prober = newProber(k)
	vm, err := volume.New(volume.Config{Root: cfg.RootDir, Tmpfs: cfg.Tmpfs, Simulated: !cfg.ContainerFiles, SkipContent: !cfg.VolumeFiles})
	if err != nil {
		return nil, err
	}
	k.volumes = vm
	enqueue := func(p *corev1.Pod) { k.queue.Add(cache.Key(p)) }
	k.pods.AddHandler(cache.Handler[*corev1.Pod]{
		OnAdd: enqueue, OnDelete: enqueue,
		OnUpdate: func(old, p *corev1.Pod) {
			if k.changed(old, p) {
				enqueue(p)
			}
		},
	})
	return k, nil
}

// Run registers the node, keeps its status and Lease fresh, and runs the pods bound to
// it, until ctx ends. Containers keep running after it returns: a kubelet started again
// adopts them. Run may be called once.
func (k *Kubelet) Run(ctx context.Context) error {
	// Every call and wait of this node takes its deadline from a context of the node's
	// own. Each context.WithTimeout registers with the nearest cancelable parent under
	// that parent's lock, and its end takes the lock again: thousands of simulated nodes
	// in one process sharing the process's context all queued on that one lock, and Go's
	// collector walks a queue that long again for every waiter's stack it moves (the
	// 5,000-node fleet spent half its CPU so, its Leases expiring).
	if k.stopPool != nil {
		defer k.stopPool() // last: the work below has ended
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	k.log.Info("kubelet starting", "runtime", k.rt.Version(), "nodeIP", k.cfg.NodeIP, "rootDir", k.cfg.RootDir)
	k.prober.begin(ctx)
	wg.Go(func() { k.rec.Run(ctx) })
	wg.Go(func() { k.pods.Run(ctx) })
	if k.ownServices {
		wg.Go(func() { k.services.Run(ctx) })
	}
	k.nodeLoop(ctx, &wg)
	k.leaseLoop(ctx, &wg)
	// Pods are handled once the cache holds them all: a container whose pod the cache
	// lacks is then an orphan, not a pod not yet seen. The queue's own log of failed
	// keys is discarded: syncPod's failures are the kubelet's warnings. Containers start
	// once the Services are known too, so that none misses a service's variables (as
	// Kubernetes' kubelet waits for its service lister).
	if cache.WaitForSync(ctx, k.pods, k.services) {
		k.sweepNetworks(ctx)
		wg.Go(func() { k.queue.Run(ctx, k.cfg.Workers, hclog.NewNullLogger(), k.syncPodLogged) })
		k.relistLoop(ctx, &wg)
	}
	<-ctx.Done()
	k.queue.ShutDown() // the queue's Run does too, when it ran
	wg.Wait()
	k.prober.wg.Wait()
	k.log.Info("kubelet stopped")
	return nil
}

// Turns bounds how much work its users do at once: Take waits for a turn (or ctx's end)
// and returns the function that gives it back.
type Turns interface {
	Take(ctx context.Context) (done func(), err error)
}

// NewTurns returns Turns of n at once.
func NewTurns(n int) Turns { return make(chanTurns, n) }

type chanTurns chan struct{}

func (t chanTurns) Take(ctx context.Context) (func(), error) {
	select {
	case t <- struct{}{}:
		return func() { <-t }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// syncPodLogged is syncPod, warning of a failure (retried with back-off) that is not
// the kubelet stopping.
func (k *Kubelet) syncPodLogged(ctx context.Context, key string) (time.Duration, error) {
	if k.cfg.SyncTurns != nil {
		done, err := k.cfg.SyncTurns.Take(ctx)
		if err != nil {
			return 0, err
		}
		defer done()
	}
	requeue, err := k.syncPod(ctx, key)
	if err != nil && ctx.Err() == nil {
		k.log.Warn("sync pod failed; retrying", "pod", key, "error", err)
	}
	return requeue, err
}

// sleep waits d on the kubelet's clock; false when ctx ended first.
func (k *Kubelet) sleep(ctx context.Context, d time.Duration) bool {
	t := k.cfg.Clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return true
	case <-ctx.Done():
		return false
	}
}

// relistLoop is the kubelet's eye on the runtime (Kubernetes' PLEG): it lists the
// containers every RelistPeriod and queues the pods whose containers changed, plus
// every pod each ResyncPeriod; on a timer (every) until ctx ends, wg counting it.
func (k *Kubelet) relistLoop(ctx context.Context, wg *sync.WaitGroup) {
	seen := map[string]string{} // pod key -> fingerprint of its containers
	var lastResync, lastRefresh time.Time
	// A runtime that counts its changes is listed only when the count moved since the
	// last list that succeeded (listed); a relist would find nothing otherwise.
	tracker, tracks := k.rt.(ChangeTracker)
	var listed struct {
		ok      bool
		changes uint64
	}
	k.every(ctx, wg, func(ctx context.Context) time.Duration {
		if lastResync.IsZero() {
			lastResync, lastRefresh = k.cfg.Clock.Now(), k.cfg.Clock.Now()
			k.housekeeping(ctx)
		}
		var changes uint64
		if tracks {
			changes = tracker.Changes() // before the list: a change during it is listed again
		}
		if !tracks || !listed.ok || changes != listed.changes {
			next, err := k.relist(ctx, seen)
			if err != nil && ctx.Err() == nil {
				k.log.Warn("list containers failed", "error", err)
			}
			if next != nil {
				seen = next
				listed.ok, listed.changes = tracks, changes
			}
		}
		if now := k.cfg.Clock.Now(); now.Sub(lastResync) >= k.cfg.ResyncPeriod {
			lastResync = now
			for _, p := range k.pods.Lister().List(labels.Everything()) {
				k.queue.Add(cache.Key(p))
			}
			k.housekeeping(ctx)
		} else if now := k.cfg.Clock.Now(); now.Sub(lastRefresh) >= k.cfg.ObjectCacheTTL {
			// Pods with ConfigMap or Secret volumes look again as often as the objects
			// can change in the cache, so an update reaches their files within it; pods
			// with storage limits as often, to be measured (Kubernetes' eviction manager
			// looks every 10s).
			lastRefresh = now
			for _, p := range k.pods.Lister().List(labels.Everything()) {
				if projectsObjects(&p.Spec) || measuresStorage(&p.Spec) {
					k.queue.Add(cache.Key(p))
				}
			}
			if k.cfg.LocalPathRoot != "" {
				reclaimLocalVolumes(ctx, clientVolumes{k.cs}, k.cfg.LocalPathRoot, k.cfg.NodeName, k.claimInUse, k.log)
			}
		}
		return k.cfg.RelistPeriod
	})
}

// projectsObjects tells whether a pod has a volume made from ConfigMaps or Secrets that
// the kubelet looks at again every ObjectCacheTTL, besides the ResyncPeriod every pod
// has. The service-account volume every pod has (kube-api-access: its token, the
// kube-root-ca.crt ConfigMap, its namespace) is not: its token is renewed at 80% of its
// life and its CA changes only when the cluster's does, both within a resync (as
// Kubernetes' kubelet updates every volume at its pod's periodic sync), and looking at
// it every 10 s was 1,000 pod syncs a second at 10,000 pods, 15,000 at 150,000.
func projectsObjects(spec *corev1.PodSpec) bool {
	for i := range spec.Volumes {
		s := &spec.Volumes[i].VolumeSource
		if s.ConfigMap != nil || s.Secret != nil || s.Projected != nil && !serviceAccountVolume(s.Projected) {
			return true
		}
	}
	return false
}

// serviceAccountVolume tells whether p projects no more than the service-account volume
// the API server adds to pods: tokens, the kube-root-ca.crt ConfigMap, downward API.
func serviceAccountVolume(p *corev1.ProjectedVolumeSource) bool {
	for _, src := range p.Sources {
		switch {
		case src.ServiceAccountToken != nil, src.DownwardAPI != nil:
		case src.ConfigMap != nil && src.ConfigMap.Name == rootcacert.ConfigMapName:
		default:
			return false
		}
	}
	return true
}

// measuresStorage tells whether a pod has a storage limit the kubelet measures it
// against: an emptyDir with a sizeLimit, or a container's limits.ephemeral-storage.
func measuresStorage(spec *corev1.PodSpec) bool {
	for i := range spec.Volumes {
		if e := spec.Volumes[i].EmptyDir; e != nil && e.SizeLimit != nil && e.SizeLimit.Sign() > 0 {
			return true
		}
	}
	_, limited := podEphemeralLimit(spec)
	return limited
}

// housekeeping releases what pods that are gone left behind — a directory with its
// volumes, a cgroup — when no container of theirs remains (a kubelet restarted after a
// pod was deleted, or after a crash), forgets cached objects no pod read lately, and
// reclaims the node's Released local-path volumes (localpath.go).
func (k *Kubelet) housekeeping(ctx context.Context) {
	k.objects.forget()
	if k.cfg.LocalPathRoot != "" {
		reclaimLocalVolumes(ctx, clientVolumes{k.cs}, k.cfg.LocalPathRoot, k.cfg.NodeName, k.claimInUse, k.log)
	}
	uids, err := k.volumes.Pods()
	if err != nil || len(uids) == 0 {
		return
	}
	known := map[types.UID]bool{}
	for _, p := range k.pods.Lister().List(labels.Everything()) {
		known[p.UID] = true
	}
	ctrs, err := k.rt.List(ctx)
	if err != nil {
		return
	}
	for _, c := range ctrs {
		known[types.UID(c.PodUID)] = true
	}
	for _, uid := range uids {
		if known[uid] {
			continue
		}
		k.log.Info("removing what a pod that is gone left behind", "uid", uid)
		if err := k.cleanUpPod(ctx, uid); err != nil {
			k.log.Warn("clean up pod failed", "uid", uid, "error", err)
		}
	}
}

// relist queues the pods whose containers differ from seen and returns what it saw.
func (k *Kubelet) relist(ctx context.Context, seen map[string]string) (map[string]string, error) {
	ctrs, err := k.rt.List(ctx)
	if err != nil {
		return nil, err
	}
	// Run every second on every node: built without fmt, which showed in profiles of a
	// thousand simulated nodes.
	now := make(map[string]string, len(seen))
	for _, c := range ctrs {
		key := c.Namespace + "/" + c.PodName
		now[key] += c.ID + ":" + string(c.State) + ":" + strconv.Itoa(c.ExitCode) + ";"
	}
	for key, fp := range now {
		if seen[key] != fp {
			k.queue.Add(key)
		}
	}
	for key := range seen {
		if _, ok := now[key]; !ok {
			k.queue.Add(key)
		}
	}
	return now, nil
}

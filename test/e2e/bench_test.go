package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/apiserver"
	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/controllers"
	"github.com/skiffhq/skiff/kubelet"
	"github.com/skiffhq/skiff/kubelet/containerd"
	"github.com/skiffhq/skiff/kubelet/sim"
	"github.com/skiffhq/skiff/pki"
	"github.com/skiffhq/skiff/scheduler"
	"github.com/skiffhq/skiff/test/apicluster"
	benchfig "github.com/skiffhq/skiff/test/bench"
	"github.com/skiffhq/skiff/test/containerdtest"
	"github.com/skiffhq/skiff/test/waitfor"
)

// The end-to-end benchmarks run the whole chain in one process: three API servers, the
// controllers, the scheduler and simulated kubelets with zero start delay. They time a
// Deployment from create to all replicas Running and Ready. As users run Skiff, every
// hop is TLS and every component its own identity: the controller-manager and the scheduler their
// certificates, each simulated node its own kubelet certificate (so the node authorizer
// confines each to its node, as it would a real kubelet) and its own connections, and
// the Deployment comes from an administrator; the API servers' limits are the defaults.
// The _insecure figures run the same without TLS, authentication, authorization or
// limits: the difference is what security costs.

func BenchmarkE2EDeploy1000r100n(b *testing.B) {
	benchDeploy(b, "e2e_deploy_1000r_100n", 1000, 100, true)
}
func BenchmarkE2EDeploy1000r100nInsecure(b *testing.B) {
	benchDeploy(b, "e2e_deploy_1000r_100n_insecure", 1000, 100, false)
}
func BenchmarkE2EDeploy10000r1000n(b *testing.B) {
	benchDeploy(b, "e2e_deploy_10000r_1000n", 10000, 1000, true)
}
func BenchmarkE2EDeploy10000r1000nInsecure(b *testing.B) {
	benchDeploy(b, "e2e_deploy_10000r_1000n_insecure", 10000, 1000, false)
}

// benchCluster runs the whole chain in this process: three API servers, the
// controller-manager, the scheduler and nodes simulated kubelets named sim-N, each with
// its own certificate when secure. It returns once every node is registered; stop ends
// it all.
func benchCluster(b *testing.B, nodes int, secure bool) (c *apicluster.Cluster, cs *client.Clientset, ctx context.Context, stop func()) {
	opts := apicluster.Options{HistorySize: 200_000, ServiceAccountAdmission: true}
	// A pod range for every node, as a cluster of this size is planned: the default
	// 10.42.0.0/16 holds 256 nodes' /24s, and on 1,000 nodes the node IPAM controller
	// retried the other 744 for as long as the benchmark ran.
	opts.Configure = func(cfg *apiserver.Config) { cfg.Networking.ClusterCIDR = benchClusterCIDR }
	nodeNames := make([]string, nodes)
	for i := range nodeNames {
		nodeNames[i] = fmt.Sprintf("sim-%d", i)
	}
	if secure {
		opts.Certs = apicluster.Certs(b, nodeNames...)
	}
	// Each component runs under its profile label (benchfig.Label): one process, split
	// by component as it would be by process.
	benchfig.Label("apiserver", func() { c = apicluster.Start(b, 3, opts) })
	benchfig.Label("benchmark", func() { cs = client.NewClientset(c.Dial(b, "admin", client.Options{})) })
	// The simulated nodes' roots (made before the cleanup that stops the nodes, so
	// removed after it): see the nodes' configuration below.
	roots := memoryDir(b)
	// Ten minutes for the timed part, and as long again for the nodes to join first.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	var wg sync.WaitGroup
	stop = func() { cancel(); wg.Wait() }
	b.Cleanup(stop) // also when the nodes never join
	run := func(fn func()) { wg.Add(1); go func() { defer wg.Done(); fn() }() }

	began := time.Now()
	mcfg := controllers.DefaultConfig()
	mcfg.LeaderElect, mcfg.Logger = false, benchfig.Logger(b)
	if secure {
		// Every namespace's kube-root-ca.crt, which the pods' kube-api-access volumes
		// (their service-account tokens) project.
		mcfg.RootCAFile = filepath.Join(c.CertsDir(), pki.CACertFile)
	}
	benchfig.Label("controller-manager", func() {
		conn := c.Dial(b, "controller-manager", client.Options{})
		run(func() { controllers.Run(ctx, conn, mcfg) })
	})
	benchfig.Label("scheduler", func() {
		sched, err := scheduler.New(client.NewClientset(c.Dial(b, "scheduler", client.Options{})), scheduler.DefaultConfig())
		if err != nil {
			b.Fatal(err)
		}
		run(func() { sched.Run(ctx) })
	})
	// The nodes join in waves, each registered before the next starts, as a cluster's
	// machines come up over minutes rather than in one instant. A thousand kubelets
	// dialling at once, each with its own certificate, are thousands of TLS handshakes
	// (both ends in this process) queued ahead of the Raft members' own: on a loaded
	// machine the members missed their heartbeats behind them, re-elected for minutes
	// (their new connections' handshakes timing out behind the same queue), and the
	// nodes never all registered.
	const wave = 100
	for first := 0; first < len(nodeNames); first += wave {
		for _, node := range nodeNames[first:min(first+wave, len(nodeNames))] {
			// Simulated, as `skiff kubelet --sim-nodes` runs them, each with its own
			// root: they shared /var/lib/skiff/kubelet (with every other benchmark on
			// the machine), and each node's housekeeping tore down every other node's
			// pod directories, once a second, reading /proc/self/mountinfo (grown by
			// the pods' tmpfs mounts) for each: 29% of ui_update_lag's CPU.
			kc := kubelet.DefaultConfig().SimulatedFleet()
			kc.NodeName, kc.RootDir = node, filepath.Join(roots, node)
			kc.Capacity = map[string]string{"cpu": "32", "memory": "128Gi", "pods": "110"}
			kc.Workers = 2
			benchfig.Label("kubelet", func() {
				k, err := kubelet.New(client.NewClientset(c.Dial(b, "kubelet-"+node, client.Options{})), sim.New(sim.Config{}), kc)
				if err != nil {
					b.Fatal(err)
				}
				run(func() { k.Run(ctx) })
			})
		}
		joined := min(first+wave, len(nodeNames))
		waitfor.Condition(b, 5*time.Minute, fmt.Sprintf("%d nodes registered", joined), func() (bool, string) {
			l, err := cs.Nodes.List(ctx, "", client.ListOptions{})
			if err != nil {
				return false, err.Error()
			}
			return len(l.Items) == joined, fmt.Sprintf("%d registered", len(l.Items))
		})
	}
	b.Logf("%d nodes registered in %v", nodes, time.Since(began).Round(time.Millisecond))
	// And every node given its pod range before the figure's clock starts: the node
	// IPAM controller gives them one Node write at a time, which on 1,000 nodes went on
	// through the timed part (a thousand writes sharing its Raft rounds).
	waitfor.Condition(b, 10*time.Minute, "every node given a pod range", func() (bool, string) {
		l, err := cs.Nodes.List(ctx, "", client.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		given := 0
		for _, n := range l.Items {
			if n.Spec.PodCIDR != "" {
				given++
			}
		}
		return given == nodes, fmt.Sprintf("%d of %d given", given, nodes)
	})
	b.Logf("%d nodes given pod ranges in %v", nodes, time.Since(began).Round(time.Millisecond))
	return c, cs, ctx, stop
}

// benchClusterCIDR is the benchmarks' pod range: 1,024 nodes' /24s, clear of the
// default service range (10.43.0.0/16).
const benchClusterCIDR = "10.64.0.0/14"

// memoryDir is a directory on a memory filesystem (/dev/shm), removed when b ends, or
// b.TempDir() where there is none. The simulated nodes' roots live there: a real
// kubelet writes a pod's secret and projected volumes (its service-account token) on a
// tmpfs it mounts; a simulated one, which mounts nothing, wrote them on the test
// machine's disk, a hundred nodes' volumes on one disk: 2.6-3.2 ms of CPU per pod
// against 0.2 ms on tmpfs (BenchmarkTokenVolume with TMPDIR=/tmp and /dev/shm), 19-33%
// of e2e_deploy_1000r_100n's CPU profile, none of it the control plane's.
func memoryDir(b testing.TB) string {
	if fi, err := os.Stat("/dev/shm"); err != nil || !fi.IsDir() {
		return b.TempDir()
	}
	dir, err := os.MkdirTemp("/dev/shm", rootName(shmRootPrefix))
	if err != nil {
		return b.TempDir()
	}
	b.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			b.Errorf("remove %s: %v", dir, err)
		}
	})
	return dir
}

func benchDeploy(b *testing.B, name string, replicas, nodes int, secure bool) {
	benchfig.Want(b, name, name+"_rate", name+"_cpu", name+"_refused")
	c, cs, ctx, stop := benchCluster(b, nodes, secure)
	defer stop()
	f := cache.NewFactory(cs, hclog.NewNullLogger())
	podInf := cache.InformerFor[*corev1.Pod](f, "default", client.ListOptions{})
	var runningCount atomic.Int64
	allRunning := make(chan struct{})
	var once sync.Once
	running := map[string]bool{}
	var mu sync.Mutex
	note := func(p *corev1.Pod) {
		mu.Lock()
		defer mu.Unlock()
		if runningAndReady(p) && !running[p.Name] {
			running[p.Name] = true
			if runningCount.Add(1) == int64(replicas) {
				once.Do(func() { close(allRunning) })
			}
		}
	}
	podInf.AddHandler(cache.Handler[*corev1.Pod]{OnAdd: note, OnUpdate: func(_, p *corev1.Pod) { note(p) }})
	stages := watchStages(ctx, f, "default", nil)
	// The chain's head, before its first pod: the Deployment's ReplicaSet as a watcher
	// sees it appear.
	var rsSeen atomic.Pointer[time.Time]
	rsInf := cache.InformerFor[*appsv1.ReplicaSet](f, "default", client.ListOptions{})
	rsInf.AddHandler(cache.Handler[*appsv1.ReplicaSet]{OnAdd: func(*appsv1.ReplicaSet) {
		now := time.Now()
		rsSeen.CompareAndSwap(nil, &now)
	}})
	f.Start(ctx)
	if !cache.WaitForSync(ctx, podInf, rsInf) {
		b.Fatal("no sync")
	}
	lbl := map[string]string{"app": "bench"}
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "bench", Namespace: "default"}, Spec: appsv1.DeploymentSpec{
		Replicas: ptr.To(int32(replicas)), Selector: &metav1.LabelSelector{MatchLabels: lbl},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbl}, Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "app", Image: "busybox", Command: []string{"sleep", "3600"},
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")}}}}}}}}
	b.ResetTimer()
	cpu := benchfig.StartCPU()
	stopProfile := benchfig.StartCPUProfile(b)
	stages()
	load := benchfig.LoadAverage()
	stopSampling := benchfig.SampleCPU(10 * time.Millisecond)
	start := time.Now()
	if _, err := cs.Deployments.Create(ctx, d); err != nil {
		b.Fatal(err)
	}
	created := time.Since(start)
	select {
	case <-allRunning:
	case <-ctx.Done():
		b.Fatalf("%d of %d pods running and ready after %v", runningCount.Load(), replicas, time.Since(start))
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cpuSamples := stopSampling()
	stopProfile()
	// Where the time went (b.Log's lines are cut short behind the cluster's): the head of
	// the chain, each pod's stages, and how busy the process kept the machine's cores
	// meanwhile (a slice well under their number waited more than it worked).
	fmt.Fprintf(os.Stderr, "stage load average %s before; deployment created in %.3fs", load, created.Seconds())
	if at := rsSeen.Load(); at != nil {
		fmt.Fprintf(os.Stderr, ", its replicaset seen at %.3fs", at.Sub(start).Seconds())
	}
	fmt.Fprintln(os.Stderr)
	stages().Report(os.Stderr)
	fmt.Fprintf(os.Stderr, "stage cores busy in each twentieth of the run (%.3fs each):%s\n", elapsed.Seconds()/20, formatBusy(benchfig.CoresBusy(cpuSamples, 20)))
	benchfig.WriteHeapProfile(b) // every component's, while the cluster runs
	benchfig.Report(name, elapsed.Seconds(), "s")
	benchfig.Report(name+"_rate", float64(replicas)/elapsed.Seconds(), "pods/s")
	benchfig.Report(name+"_cpu", cpu().Seconds(), "s")
	if secure {
		// The cluster's own components must not have been throttled.
		var refused int64
		for i := range c.Addrs() {
			for _, l := range c.Server(i).FlowControl() {
				refused += l.Rejected
				if l.Dispatched > 0 {
					b.Logf("n%d %s: %d seats, %d requests, %d of them queued, %d refused, at most %d at once", i+1, l.Name, l.Limit, l.Dispatched, l.Queued, l.Rejected, l.PeakDemand)
				}
			}
		}
		benchfig.Report(name+"_refused", float64(refused), "requests")
	}
	stop()
	f.Wait()
}

// BenchmarkPodStartupContainerd: ms from pod create to Running for 50 busybox pods on one
// real node (a private containerd), the image present. Each pod carries what real
// applications' pods do: a readiness probe, a configMap volume and an env var from a
// Secret (which the kubelet, authorized as its node, reads).
func BenchmarkPodStartupContainerd(b *testing.B) {
	benchfig.Want(b, "pod_startup_containerd_p50", "pod_startup_containerd_p99")
	socket := containerdtest.Start(b)
	// As users run Skiff: TLS, the kubelet authenticated as its node, the pods created by
	// an administrator.
	c := apicluster.Start(b, 1, apicluster.Options{Certs: apicluster.Certs(b, "bench-node")})
	cs := client.NewClientset(c.Dial(b, "admin", client.Options{}))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	const image = "docker.io/library/busybox:latest"
	rt, err := containerd.New(ctx, containerd.Config{Socket: socket, Namespace: "skiff-bench", LogDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer rt.Close()
	data, err := containerd.BusyboxArchive("/bin/busybox", image)
	if err != nil {
		b.Skipf("no static busybox: %v", err)
	}
	if _, err := rt.Import(ctx, bytes.NewReader(data)); err != nil {
		b.Fatal(err)
	}
	if _, err := cs.ConfigMaps.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "startup-config", Namespace: "default"},
		Data: map[string]string{"app.properties": "mode=bench\n"}}); err != nil {
		b.Fatal(err)
	}
	if _, err := cs.Secrets.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "startup-secret", Namespace: "default"},
		Data: map[string][]byte{"token": []byte("s3cret")}}); err != nil {
		b.Fatal(err)
	}
	kc := kubelet.DefaultConfig()
	kc.NodeName = "bench-node"
	kc.RootDir = b.TempDir()
	k, err := kubelet.New(client.NewClientset(c.Dial(b, "kubelet-bench-node", client.Options{})), rt, kc)
	if err != nil {
		b.Fatal(err)
	}
	wg.Add(1)
	go func() { defer wg.Done(); k.Run(ctx) }()

	const n = 50
	created := make([]time.Time, n)
	runningAt := make([]time.Time, n)
	var mu sync.Mutex
	remaining := n
	allRunning := make(chan struct{})
	f := cache.NewFactory(cs, hclog.NewNullLogger())
	inf := cache.InformerFor[*corev1.Pod](f, "default", client.ListOptions{})
	note := func(p *corev1.Pod) {
		var i int
		if _, err := fmt.Sscanf(p.Name, "startup-%d", &i); err != nil || p.Status.Phase != corev1.PodRunning {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if runningAt[i].IsZero() {
			runningAt[i] = time.Now()
			if remaining--; remaining == 0 {
				close(allRunning)
			}
		}
	}
	inf.AddHandler(cache.Handler[*corev1.Pod]{OnAdd: note, OnUpdate: func(_, p *corev1.Pod) { note(p) }})
	f.Start(ctx)
	defer func() { cancel(); f.Wait() }() // the informers end with ctx: cancel first
	cache.WaitForSync(ctx, inf)
	b.ResetTimer()
	var cw sync.WaitGroup
	for i := 0; i < n; i++ {
		cw.Add(1)
		go func() {
			defer cw.Done()
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("startup-%d", i), Namespace: "default"},
				Spec: corev1.PodSpec{NodeName: "bench-node", TerminationGracePeriodSeconds: ptr.To(int64(0)),
					Volumes: []corev1.Volume{{Name: "config", VolumeSource: corev1.VolumeSource{
						ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "startup-config"}}}}},
					Containers: []corev1.Container{{Name: "c", Image: image, ImagePullPolicy: corev1.PullIfNotPresent, Command: []string{"sleep", "3600"},
						VolumeMounts: []corev1.VolumeMount{{Name: "config", MountPath: "/etc/config"}},
						Env: []corev1.EnvVar{{Name: "TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
							LocalObjectReference: corev1.LocalObjectReference{Name: "startup-secret"}, Key: "token"}}}},
						ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{
							Command: []string{"cat", "/etc/config/app.properties"}}}}}}}}
			mu.Lock()
			created[i] = time.Now()
			mu.Unlock()
			if _, err := cs.Pods.Create(ctx, p); err != nil {
				b.Error(err)
			}
		}()
	}
	cw.Wait()
	select {
	case <-allRunning:
	case <-ctx.Done():
		b.Fatalf("%d pods not running", remaining)
	}
	b.StopTimer()
	lat := make([]time.Duration, n)
	mu.Lock()
	for i := range lat {
		lat[i] = runningAt[i].Sub(created[i])
	}
	mu.Unlock()
	benchfig.Report("pod_startup_containerd_p50", benchfig.Percentile(lat, 0.50), "ms")
	benchfig.Report("pod_startup_containerd_p99", benchfig.Percentile(lat, 0.99), "ms")
	// Leave no container behind: delete the pods and wait for the kubelet to stop them.
	cleanup := time.Now()
	defer func() { b.Logf("cleanup took %v", time.Since(cleanup)) }()
	for i := 0; i < n; i++ {
		cs.Pods.Delete(ctx, "default", fmt.Sprintf("startup-%d", i), client.DeleteOptions{})
	}
	for {
		list, err := rt.List(ctx)
		if err != nil || len(list) == 0 || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// BenchmarkE2EDaemonSet1000n: a DaemonSet on 1,000 simulated nodes, from create to a
// pod ready on every node (ds_rollout_1000n_create), then a new image rolled across
// them all with maxUnavailable 10% (ds_rollout_1000n), both as the DaemonSet's status
// says (what rollout status waits for), with the whole chain secure as users run it.
// The create also reports its CPU (_create_cpu), the Raft entries committed per pod
// (_create_raft_entries_per_pod) and the Event writes refused as over the event rate
// limit (_create_events_refused), as the Job's benchmark does.
func BenchmarkE2EDaemonSet1000n(b *testing.B) { benchDaemonSet(b, "ds_rollout_1000n", 1000) }

// BenchmarkE2EDaemonSet100n: the same on 100 nodes, ten waves of ten: quick enough to
// compare two commits on a machine too busy for the thousand nodes.
func BenchmarkE2EDaemonSet100n(b *testing.B) { benchDaemonSet(b, "ds_rollout_100n", 100) }

// reportStages writes rec's stages, and how long after the last pod was ready (as the
// benchmark's watcher saw it) the DaemonSet's status said so, at done: the status
// write's lag, part of the figure.
func reportStages(rec *podStages, done time.Time) {
	rec.Report(os.Stderr)
	if last := rec.Last(stageReady); !last.IsZero() {
		fmt.Fprintf(os.Stderr, "status: all available at %.2fs, %.0f ms after the last pod was ready\n",
			done.Sub(rec.start).Seconds(), float64(done.Sub(last).Microseconds())/1000)
	}
}

func benchDaemonSet(b *testing.B, name string, nodes int32) {
	benchfig.Want(b, name, name+"_create", name+"_create_cpu", name+"_create_raft_entries_per_pod", name+"_create_events_refused", name+"_cpu")
	c, cs, ctx, stop := benchCluster(b, int(nodes), true)
	defer stop()
	f := cache.NewFactory(cs, hclog.NewNullLogger())
	dsInf := cache.InformerFor[*appsv1.DaemonSet](f, "default", client.ListOptions{})
	changed := make(chan struct{}, 1)
	notify := func(*appsv1.DaemonSet) {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	var dsWrites atomic.Int64 // the DaemonSet's writes as the watch saw them: its status's, nearly all
	dsInf.AddHandler(cache.Handler[*appsv1.DaemonSet]{OnAdd: notify, OnUpdate: func(_, ds *appsv1.DaemonSet) { dsWrites.Add(1); notify(ds) }})
	stages := watchStages(ctx, f, "default", func() string {
		ds, _ := dsInf.Lister().Get("default", "bench")
		if ds == nil {
			return ""
		}
		return fmt.Sprintf("daemonset: updated %d, ready %d, available %d, unavailable %d",
			ds.Status.UpdatedNumberScheduled, ds.Status.NumberReady, ds.Status.NumberAvailable, ds.Status.NumberUnavailable)
	})
	f.Start(ctx)
	defer func() { stop(); f.Wait() }() // the informers end with ctx: end it first
	if !cache.WaitForSync(ctx, dsInf) {
		b.Fatal("no sync")
	}
	// rolledOut waits until the DaemonSet of generation gen has every pod updated and
	// available, as rollout status judges it.
	rolledOut := func(gen int64) {
		for {
			if ds, ok := dsInf.Lister().Get("default", "bench"); ok && ds.Status.ObservedGeneration >= gen &&
				ds.Status.DesiredNumberScheduled == nodes && ds.Status.UpdatedNumberScheduled == nodes && ds.Status.NumberAvailable == nodes {
				return
			}
			select {
			case <-changed:
			case <-ctx.Done():
				ds, _ := dsInf.Lister().Get("default", "bench")
				b.Fatalf("not rolled out: %+v", ds)
			}
		}
	}
	lbl := map[string]string{"app": "bench"}
	maxUnavailable := intstr.FromString("10%")
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "bench", Namespace: "default"}, Spec: appsv1.DaemonSetSpec{
		Selector: &metav1.LabelSelector{MatchLabels: lbl},
		UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType,
			RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: &maxUnavailable}},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbl}, Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "agent", Image: "busybox:1.36", Command: []string{"sleep", "3600"},
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")}}}}}}}}
	b.ResetTimer()
	cpu := benchfig.StartCPU()
	stopProfile := benchfig.StartCPUProfile(b) // the create's
	stages()
	baseIndex, baseRefused := c.Server(0).Store().Revision(), eventsRefused(b, c)
	start := time.Now()
	created, err := cs.DaemonSets.Create(ctx, ds)
	if err != nil {
		b.Fatal(err)
	}
	rolledOut(created.Generation)
	createTook, createCPU := time.Since(start), cpu()
	stopProfile()
	entries, refused := c.Server(0).Store().Revision()-baseIndex, eventsRefused(b, c)-baseRefused
	benchfig.Report(name+"_create", createTook.Seconds(), "s")
	benchfig.Report(name+"_create_cpu", createCPU.Seconds(), "s")
	benchfig.Report(name+"_create_raft_entries_per_pod", float64(entries)/float64(nodes), "entries")
	benchfig.Report(name+"_create_events_refused", refused, "events")
	fmt.Fprintf(os.Stderr, "the DaemonSet written %d times during the create\n", dsWrites.Load())
	fmt.Fprintln(os.Stderr, "create, as a watcher saw the pods:") // to stderr: see benchJob
	reportStages(stages(), time.Now())

	start = time.Now()
	var gen int64
	for {
		cur, err := cs.DaemonSets.Get(ctx, "default", "bench")
		if err != nil {
			b.Fatal(err)
		}
		cur.Spec.Template.Spec.Containers[0].Image = "busybox:1.37"
		out, err := cs.DaemonSets.Update(ctx, cur)
		if client.IsConflict(err) {
			continue // the controller wrote the status meanwhile
		}
		if err != nil {
			b.Fatal(err)
		}
		gen = out.Generation
		break
	}
	rolledOut(gen)
	b.StopTimer()
	benchfig.Report(name, time.Since(start).Seconds(), "s")
	fmt.Fprintln(os.Stderr, "rollout, as a watcher saw the pods:")
	reportStages(stages(), time.Now())
	benchfig.Report(name+"_cpu", cpu().Seconds(), "s")
}

// TestMemoryDir: the simulated nodes' roots are on tmpfs where the machine has
// /dev/shm, and gone once the benchmark ends.
func TestMemoryDir(t *testing.T) {
	var dir string
	t.Run("bench", func(t *testing.T) {
		dir = memoryDir(t)
		if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		var fs syscall.Statfs_t
		if err := syscall.Statfs(dir, &fs); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat("/dev/shm"); err == nil && fs.Type != tmpfsMagic {
			t.Errorf("%s: filesystem type %#x, want tmpfs (%#x)", dir, fs.Type, tmpfsMagic)
		}
	})
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s after the benchmark: %v, want it removed", dir, err)
	}
}

const tmpfsMagic = 0x01021994 // statfs(2)

// runningAndReady says whether p is Running with its Ready condition True: the state the
// e2e_deploy figures wait for in every pod (the "Running and Ready"; a pod
// Running but not Ready serves nothing).
func runningAndReady(p *corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// formatBusy writes cores busy as " 1.92 0.40 …".
func formatBusy(busy []float64) string {
	var b strings.Builder
	for _, c := range busy {
		fmt.Fprintf(&b, " %.2f", c)
	}
	return b.String()
}

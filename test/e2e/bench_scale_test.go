package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/internal/heapsignal"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/pki"
	"github.com/skiffhq/skiff/test/apicluster"
	benchfig "github.com/skiffhq/skiff/test/bench"
	"github.com/skiffhq/skiff/test/freeport"
	"github.com/skiffhq/skiff/test/waitfor"
)

// The scale benchmarks measure how the cluster's costs grow with its size (issue 26):
// the same run at 1,000, 10,000, 50,000 and 150,000 replicas on 100, 1,000, 2,500 and
// 5,000 simulated nodes. Unlike e2e_deploy_*, every component is its own `skiff`
// process, as users run them — three API servers, the controller-manager, the
// scheduler and one `skiff kubelet --sim-nodes` process for all the nodes, each node
// with its own certificate — so that each component's memory can be read from /proc. The
// benchmark's own process is the load: the Deployments (one per 1,000 replicas, all
// created at once), a watch counting the pods Running and Ready, and, through the run,
// three probes:
//
//   - mutate: a client creating and updating ConfigMaps, one call every 100 ms; the
//     latency of each call (Kubernetes' SLO: p99 ≤ 1 s);
//   - list: a client listing every pod through the REST API in pages of 500
//     (limit/continue), one list after another, in Kubernetes' protobuf encoding as
//     client-go's typed clients, pager and informers ask for a built-in kind, then in
//     JSON as `kubectl get -o json` asks; the time of each whole list, of each encoding;
//   - watch lag: a watch on those ConfigMaps; from just before each write to its
//     event's arrival (so the write's own commit is inside the figure).
//
// Each point prints, under the prefix scale_<R>r_<N>n (docs/performance.md):
// the time from create to every pod Running and Ready, seconds per 1,000 pods, the
// probes' p99s, the peak RSS of each component, RSS per pod of each component (growth
// over the run / pods), bytes on disk per pod per member (growth of the data
// directory) and Raft entries per pod (the applied index's growth / pods, the nodes'
// heartbeats included). hack/plotcurve draws the per-pod figures against the pods.
// The 150,000-pod point also prints its time as e2e_deploy_150000r_5000n.

// scaleClusterCIDR is the scale points' pod range: 8,192 nodes' /24s (the default
// 10.42.0.0/16 has 256), so that every one of up to 5,000 nodes gets its range rather than
// the node IPAM controller retrying the rest for the whole run; clear of the service range.
const scaleClusterCIDR = "10.64.0.0/11"

func BenchmarkScale1000r100n(b *testing.B)   { benchScale(b, 1000, 100, "") }
func BenchmarkScale10000r1000n(b *testing.B) { benchScale(b, 10000, 1000, "") }
func BenchmarkScale50000r2500n(b *testing.B) { benchScale(b, 50000, 2500, "") }
func BenchmarkScale150000r5000n(b *testing.B) {
	benchScale(b, 150000, 5000, "e2e_deploy_150000r_5000n")
}

// scaleRSSLimit ends a run whose processes (the cluster's and the benchmark's) hold more
// than this together: the machine may be shared. SKIFF_SCALE_RSS_LIMIT (a quantity:
// 20Gi) sets another on a machine of one's own.
const scaleRSSLimit = 14 << 30

// scaleListPeriod is how often the paged-list probe starts its lists (a protobuf list
// and a JSON list of every pod; at once if the last two took longer): 5 s, or
// SKIFF_SCALE_LIST_PERIOD (a duration; "off" runs no list probe, to price it).
const scaleListPeriod = 5 * time.Second

// scaleSettings reads the scale runs' variables: the memory limit and the list probe's
// period (0: no list probe).
func scaleSettings(b *testing.B) (rssLimit int64, listPeriod time.Duration) {
	rssLimit, listPeriod = scaleRSSLimit, scaleListPeriod
	if v := os.Getenv("SKIFF_SCALE_RSS_LIMIT"); v != "" {
		q, err := resource.ParseQuantity(v)
		if err != nil || q.Value() <= 0 {
			b.Fatalf("SKIFF_SCALE_RSS_LIMIT=%q: want a positive quantity, such as 20Gi", v)
		}
		rssLimit = q.Value()
	}
	switch v := os.Getenv("SKIFF_SCALE_LIST_PERIOD"); v {
	case "":
	case "off":
		listPeriod = 0
	default:
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			b.Fatalf("SKIFF_SCALE_LIST_PERIOD=%q: want a positive duration, such as 10s, or off", v)
		}
		listPeriod = d
	}
	return rssLimit, listPeriod
}

// scaleComponents are the processes of a scale run, in the order the figures print.
var scaleComponents = []string{"apiserver_n1", "apiserver_n2", "apiserver_n3", "controller_manager", "scheduler", "kubelets"}

func benchScale(b *testing.B, replicas, nodes int, alias string) {
	prefix := fmt.Sprintf("scale_%dr_%dn", replicas, nodes)
	figures := []string{prefix, prefix + "_s_per_1k_pods", prefix + "_mutate_p99", prefix + "_list_p99", prefix + "_list_protobuf_p99", prefix + "_watch_lag_p99"}
	if alias != "" {
		figures = append(figures, alias)
	}
	benchfig.Want(b, figures...)
	// Certificates: the CA, the servers', the components' and one per simulated node.
	names := make([]string, nodes)
	for i := range names {
		names[i] = fmt.Sprintf("sim-%d", i)
	}
	pkiDir := b.TempDir()
	if _, err := pki.InitDir(pkiDir, pki.InitOptions{Nodes: names}); err != nil {
		b.Fatal(err)
	}
	p := func(n string) string { return filepath.Join(pkiDir, n) }

	ports := freeport.Loopback(b, 9)
	var initial, apis []string
	for i := 0; i < 3; i++ {
		initial = append(initial, fmt.Sprintf("n%d=127.0.0.1:%d", i+1, ports[3+i]))
		apis = append(apis, fmt.Sprintf("127.0.0.1:%d", ports[i]))
	}
	dataDirs := []string{b.TempDir(), b.TempDir(), b.TempDir()}
	var procs []*proc
	for i := 0; i < 3; i++ {
		procs = append(procs, startScale(b, fmt.Sprintf("n%d", i+1), scaleComponents[i], "apiserver", "--name", fmt.Sprintf("n%d", i+1), "--data-dir", dataDirs[i],
			"--listen", apis[i], "--raft-listen", fmt.Sprintf("127.0.0.1:%d", ports[3+i]), "--initial-cluster", strings.Join(initial, ","),
			"--http-listen", fmt.Sprintf("127.0.0.1:%d", ports[6+i]), "--log-level", "warn",
			"--cluster-cidr", scaleClusterCIDR,
			"--tls-cert-file", p("apiserver.crt"), "--tls-key-file", p("apiserver.key"), "--client-ca-file", p(pki.CACertFile),
			"--peer-cert-file", p("apiserver.crt"), "--peer-key-file", p("apiserver.key"), "--peer-ca-file", p(pki.CACertFile)))
	}
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[6])
	as := func(name string) []string {
		return []string{"--server", strings.Join(apis, ","), "--ca-file", p(pki.CACertFile), "--cert-file", p(name + ".crt"), "--key-file", p(name + ".key")}
	}
	conn, err := client.Dial(apis, client.Options{TLS: apicluster.ClientTLS(b, pkiDir, "admin")})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	cs := client.NewClientset(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	waitfor.Condition(b, 2*time.Minute, "the API servers answering", func() (bool, string) {
		_, err := cs.Namespaces.Get(ctx, "", "default")
		return err == nil, fmt.Sprint(err)
	})
	procs = append(procs,
		startScale(b, "controller-manager", scaleComponents[3], append([]string{"controller-manager", "--log-level", "warn"}, as("controller-manager")...)...),
		startScale(b, "scheduler", scaleComponents[4], append([]string{"scheduler", "--log-level", "warn"}, as("scheduler")...)...),
		startScale(b, "kubelets", scaleComponents[5], append([]string{"kubelet", "--runtime", "sim", "--sim-nodes", fmt.Sprint(nodes), "--node-name", "sim",
			"--sim-cert-dir", pkiDir, "--kubelet-listen", "none", "--node-ip", "127.0.0.1", "--log-level", "warn"}, as("kubelet-sim-0")...)...))
	rssLimit, listPeriod := scaleSettings(b)
	rss := newRSSWatch(b, procs, rssLimit)
	defer rss.stop()

	waitfor.Condition(b, 30*time.Minute, fmt.Sprintf("%d nodes registered and Ready", nodes), func() (bool, string) {
		if err := rss.err(); err != nil {
			b.Fatal(err)
		}
		l, err := cs.Nodes.List(ctx, "", client.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		ready := 0
		for _, n := range l.Items {
			if nodeReady(n) {
				ready++
			}
		}
		return ready == nodes, fmt.Sprintf("%d of %d nodes Ready", ready, nodes)
	})

	// The baseline the per-pod figures grow from: the cluster with its nodes and no pods.
	baseRSS := rss.current()
	baseDisk := diskUsage(b, dataDirs)
	baseIndex := appliedIndex(b, metricsURL)

	var mu sync.Mutex
	done := map[string]bool{}
	allReady := make(chan struct{})
	note := func(p *corev1.Pod) {
		if p.Status.Phase != corev1.PodRunning || !ready(p) {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if !done[p.Name] {
			done[p.Name] = true
			if len(done) == replicas {
				close(allReady)
			}
		}
	}
	f := cache.NewFactory(cs, hclog.NewNullLogger())
	podInf := cache.InformerFor[*corev1.Pod](f, "default", client.ListOptions{LabelSelector: "bench=scale"})
	podInf.AddHandler(cache.Handler[*corev1.Pod]{OnAdd: note, OnUpdate: func(_, p *corev1.Pod) { note(p) }})
	f.Start(ctx)
	defer f.Wait()
	defer cancel() // the informers end with ctx: cancel first
	if !cache.WaitForSync(ctx, podInf) {
		b.Fatal("no sync")
	}

	probeCtx, stopProbes := context.WithCancel(ctx)
	var probes sync.WaitGroup
	mutate, lag := &latencies{}, &latencies{}
	lists, protobufLists := &latencies{}, &latencies{}
	probes.Add(2)
	go func() { defer probes.Done(); probeMutations(probeCtx, cs, mutate, lag) }()
	go func() { defer probes.Done(); probeWatchLag(probeCtx, cs, lag) }()
	if listPeriod > 0 {
		probes.Add(1)
		go func() {
			defer probes.Done()
			probePagedLists(probeCtx, b, &http.Client{Transport: &http.Transport{TLSClientConfig: apicluster.ClientTLS(b, pkiDir, "admin"),
				ForceAttemptHTTP2: true}}, "https://"+apis[0], listPeriod, lists, protobufLists)
		}()
	} else {
		b.Log("no paged-list probe (SKIFF_SCALE_LIST_PERIOD=off)")
	}
	defer func() { stopProbes(); probes.Wait() }()

	b.ResetTimer()
	startAt := time.Now()
	baseCPU := processesCPU(procs)
	cpuProfiles(b, procs) // begun
	var creates sync.WaitGroup
	for i := 0; i < replicas/1000; i++ {
		creates.Add(1)
		go func() {
			defer creates.Done()
			if _, err := cs.Deployments.Create(ctx, scaleDeployment(fmt.Sprintf("scale-%d", i), 1000)); err != nil {
				b.Error(err)
			}
		}()
	}
	creates.Wait()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for waiting := true; waiting; {
		select {
		case <-allReady:
			waiting = false
		case <-tick.C:
			if err := rss.err(); err != nil {
				mu.Lock()
				n := len(done)
				mu.Unlock()
				b.Fatalf("%v after %v, %d of %d pods Running and Ready", err, time.Since(startAt).Round(time.Second), n, replicas)
			}
		case <-ctx.Done():
			mu.Lock()
			n := len(done)
			mu.Unlock()
			b.Fatalf("%d of %d pods Running and Ready after %v", n, replicas, time.Since(startAt))
		}
	}
	elapsed := time.Since(startAt)
	endCPU := processesCPU(procs)
	cpuProfiles(b, procs) // ended, written
	b.StopTimer()
	stopProbes()
	probes.Wait()

	endRSS := rss.current()
	peak := rss.peaks()
	memoryByKind(b, procs)
	heapProfiles(b, procs)
	endDisk := diskUsage(b, dataDirs)
	endIndex := appliedIndex(b, metricsURL)

	pods := float64(replicas)
	benchfig.Report(prefix, elapsed.Seconds(), "s")
	if alias != "" {
		benchfig.Report(alias, elapsed.Seconds(), "s")
	}
	benchfig.Report(prefix+"_s_per_1k_pods", elapsed.Seconds()/pods*1000, "s")
	// A p99 of no samples is no figure (Percentile's 0 would read as the target met): a
	// probe that did not run, or whose every try failed, prints none and says so. The
	// lists that failed (a continue token expired: 410) are counted beside their p99.
	reportP99 := func(name string, l *latencies) {
		if l.n() == 0 {
			b.Logf("%s: no sample, no figure", name)
			return
		}
		benchfig.Report(name, l.p99(), "ms")
	}
	reportP99(prefix+"_mutate_p99", mutate)
	reportP99(prefix+"_list_p99", lists)
	reportP99(prefix+"_list_protobuf_p99", protobufLists)
	if listPeriod > 0 {
		benchfig.Report(prefix+"_list_failed", float64(lists.failures()), "lists")
		benchfig.Report(prefix+"_list_protobuf_failed", float64(protobufLists.failures()), "lists")
	}
	reportP99(prefix+"_watch_lag_p99", lag)
	b.Logf("probes: %d mutating calls, %d paged lists (%d JSON, %d protobuf), %d watch events", mutate.n(),
		lists.n()+protobufLists.n(), lists.n(), protobufLists.n(), lag.n())
	var total, members int64
	for i, name := range scaleComponents {
		total += peak[i]
		benchfig.Report(prefix+"_peak_rss_"+name, float64(peak[i])/(1<<20), "MiB")
		if i < 3 {
			members += endRSS[i] - baseRSS[i]
		} else {
			benchfig.Report(prefix+"_rss_per_pod_"+name, float64(endRSS[i]-baseRSS[i])/pods, "bytes")
		}
	}
	benchfig.Report(prefix+"_peak_rss_control_plane", float64(total)/(1<<20), "MiB")
	var cpu time.Duration
	for i, name := range scaleComponents {
		used := endCPU[i] - baseCPU[i]
		cpu += used
		benchfig.Report(prefix+"_cpu_ms_per_pod_"+name, float64(used.Microseconds())/1000/pods, "ms")
	}
	benchfig.Report(prefix+"_cpu_ms_per_pod_control_plane", float64(cpu.Microseconds())/1000/pods, "ms")
	bench := endCPU[len(procs)] - baseCPU[len(procs)]
	benchfig.Report(prefix+"_cpu_ms_per_pod_bench", float64(bench.Microseconds())/1000/pods, "ms")
	benchfig.Report(prefix+"_rss_per_pod_apiserver", float64(members)/3/pods, "bytes")
	var disk int64
	for i := range dataDirs {
		disk += endDisk[i] - baseDisk[i]
	}
	benchfig.Report(prefix+"_disk_per_pod_member", float64(disk)/3/pods, "bytes")
	benchfig.Report(prefix+"_raft_entries_per_pod", float64(endIndex-baseIndex)/pods, "entries")
	// Last: the run's figures are read and printed before it, so none counts the idle
	// time, and a hold that fails or is stopped loses none of them.
	idleCost(b, procs, ports[6:9])
}

// processesCPU is the CPU time each of procs has used so far, and this process's (the
// load and the probes) last.
func processesCPU(procs []*proc) []time.Duration {
	cpu := make([]time.Duration, 0, len(procs)+1)
	for _, p := range procs {
		cpu = append(cpu, benchfig.ProcessCPU(p.cmd.Process.Pid))
	}
	return append(cpu, benchfig.ProcessCPU(os.Getpid()))
}

// startScale starts one of a scale run's processes. With SKIFF_HEAP_PROFILE set, the
// process writes its heap profile to that name with its component's appended
// (FILE.apiserver_n1, ..., FILE.kubelets) when heapProfiles signals it. With
// SKIFF_SCALE_LOGS naming a directory, the process's output (its log, and the runtime's
// GODEBUG traces if the variable asks for them) is written to DIR/COMPONENT.log as it
// comes, so that a run can be watched, and kept however it ends.
func startScale(b *testing.B, name, component string, args ...string) *proc {
	cmd := exec.Command(filepath.Join(binDir, "skiff"), args...)
	if path := os.Getenv(heapsignal.Env); path != "" {
		cmd.Env = append(os.Environ(), heapsignal.Env+"="+path+"."+component) // the last one counts
	}
	if dir := os.Getenv("SKIFF_SCALE_LOGS"); dir != "" {
		f, err := os.Create(filepath.Join(dir, component+".log"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { f.Close() }) // after the process's end: cleanups run last first
		cmd.Stdout = f
	}
	return startCommand(b, name, cmd)
}

// idleCost, with SKIFF_SCALE_IDLE set to a duration, holds the cluster that long once
// every pod is Ready (nothing created, nothing changing: the nodes' heartbeats, the
// recorders' backlog, the controllers' resyncs) and logs each process's CPU over it and
// the calls the members served a second, by method and code, with the Raft entries a
// second: what a cluster of this size costs doing nothing (docs/performance.md, idle).
// The lines go to standard error: a benchmark's log keeps ten lines.
func idleCost(b *testing.B, procs []*proc, httpPorts []int) {
	v := os.Getenv("SKIFF_SCALE_IDLE")
	if v == "" {
		return
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		b.Fatalf("SKIFF_SCALE_IDLE=%q: want a positive duration, such as 60s", v)
	}
	counters := func() map[string]float64 {
		m := map[string]float64{}
		for _, port := range httpPorts {
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
			if err != nil {
				b.Fatal(err)
			}
			s := bufio.NewScanner(resp.Body)
			s.Buffer(nil, 1<<20)
			for s.Scan() {
				name, value, _ := strings.Cut(s.Text(), " ")
				if strings.HasPrefix(name, "skiff_apiserver_requests_total{") {
					f, _ := strconv.ParseFloat(value, 64)
					m[strings.TrimPrefix(name, "skiff_apiserver_requests_total")] += f
				} else if name == "skiff_raft_applied_index" {
					f, _ := strconv.ParseFloat(value, 64)
					m["raft entries"] = max(m["raft entries"], f)
				}
			}
			resp.Body.Close()
		}
		return m
	}
	beforeCPU, before := processesCPU(procs), counters()
	time.Sleep(d)
	afterCPU, after := processesCPU(procs), counters()
	for i, c := range scaleComponents {
		fmt.Fprintf(os.Stderr, "idle %v: %s %.3f cores\n", d, c, (afterCPU[i]-beforeCPU[i]).Seconds()/d.Seconds())
	}
	for _, k := range slices.Sorted(maps.Keys(after)) {
		if n := after[k] - before[k]; n > 0 {
			fmt.Fprintf(os.Stderr, "idle %v: %s %.1f a second\n", d, k, n/d.Seconds())
		}
	}
}

// cpuProfiles, if SKIFF_HEAP_PROFILE is set, signals every process of the run to begin
// a CPU profile, or to end the one begun and write it (SIGUSR1, see internal/heapsignal):
// called at the Deployments' creation and when every pod is Ready, it profiles each
// component's rollout into PREFIX.<component>.cpu (go tool pprof bin/skiff FILE). The
// profiles are written by the time heapProfiles has waited for the heap profiles, which
// each process writes after.
func cpuProfiles(b *testing.B, procs []*proc) {
	if os.Getenv(heapsignal.Env) == "" {
		return
	}
	for _, p := range procs {
		if err := p.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
			b.Fatal(err)
		}
	}
}

// heapProfiles has every process of the run write its heap profile (SIGUSR2, see
// internal/heapsignal) while the cluster still runs, and waits for each, if
// SKIFF_HEAP_PROFILE is set.
func heapProfiles(b *testing.B, procs []*proc) {
	path := os.Getenv(heapsignal.Env)
	if path == "" {
		return
	}
	for i, p := range procs {
		file := path + "." + scaleComponents[i]
		os.Remove(file)
		if err := p.cmd.Process.Signal(syscall.SIGUSR2); err != nil {
			b.Fatal(err)
		}
		waitfor.Condition(b, 2*time.Minute, "the heap profile of "+scaleComponents[i], func() (bool, string) {
			_, err := os.Stat(file)
			return err == nil, fmt.Sprint(err)
		})
		b.Logf("heap profile of %s written to %s", scaleComponents[i], file)
	}
}

// memoryByKind logs what each process's resident memory is made of at the end of the
// run (/proc/PID/status): anonymous (the Go heap, its garbage and the stacks), file
// pages (the binary, and bbolt's memory-mapped files on a member) and shared memory.
func memoryByKind(b *testing.B, procs []*proc) {
	for i, p := range procs {
		pid := p.cmd.Process.Pid
		b.Logf("%s: RSS %d MiB: anonymous %d, file %d, shared %d MiB", scaleComponents[i], procStatus(pid, "VmRSS:")>>20,
			procStatus(pid, "RssAnon:")>>20, procStatus(pid, "RssFile:")>>20, procStatus(pid, "RssShmem:")>>20)
	}
}

// scaleDeployment is a Deployment of n replicas of the pods every e2e benchmark runs.
func scaleDeployment(name string, n int32) *appsv1.Deployment {
	lbl := map[string]string{"app": name, "bench": "scale"}
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Spec: appsv1.DeploymentSpec{
		Replicas: ptr.To(n), Selector: &metav1.LabelSelector{MatchLabels: lbl},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbl}, Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "app", Image: "busybox", Command: []string{"sleep", "3600"},
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")}}}}}}}}
}

// latencies collects a probe's samples, and counts the tries that failed (which have
// no latency).
type latencies struct {
	mu     sync.Mutex
	d      []time.Duration
	failed int
}

func (l *latencies) add(d time.Duration) { l.mu.Lock(); l.d = append(l.d, d); l.mu.Unlock() }
func (l *latencies) fail()               { l.mu.Lock(); l.failed++; l.mu.Unlock() }
func (l *latencies) n() int              { l.mu.Lock(); defer l.mu.Unlock(); return len(l.d) }
func (l *latencies) failures() int       { l.mu.Lock(); defer l.mu.Unlock(); return l.failed }
func (l *latencies) p99() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return benchfig.Percentile(l.d, 0.99)
}

// writtenAt is the annotation in which the mutation probe stamps the time of its write.
const writtenAt = "bench.skiff.dev/written-at"

// probeMutations creates a ConfigMap and updates it, alternately, one call every
// 100 ms, each stamped with the time just before the call; a new ConfigMap every 50
// updates.
func probeMutations(ctx context.Context, cs *client.Clientset, calls, lag *latencies) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var cm *corev1.ConfigMap
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		at := time.Now()
		var err error
		if i%50 == 0 || cm == nil {
			cm, err = cs.ConfigMaps.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
				Name: fmt.Sprintf("scale-probe-%d", i), Namespace: "default", Labels: map[string]string{"bench": "probe"},
				Annotations: map[string]string{writtenAt: at.Format(time.RFC3339Nano)}}})
		} else {
			cm.Annotations[writtenAt] = at.Format(time.RFC3339Nano)
			cm, err = cs.ConfigMaps.Update(ctx, cm)
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			cm = nil // a failed call counts as what it took; start over with a new object
		}
		calls.add(time.Since(at))
	}
}

// probeWatchLag watches the probe's ConfigMaps and records, for each event, the time
// since its write began.
func probeWatchLag(ctx context.Context, cs *client.Clientset, lag *latencies) {
	for ctx.Err() == nil {
		w, err := cs.ConfigMaps.Watch(ctx, "default", client.WatchOptions{ListOptions: client.ListOptions{LabelSelector: "bench=probe"}})
		if err != nil {
			retryPause(ctx)
			continue
		}
		for {
			evs, err := w.Next()
			if err != nil {
				break
			}
			now := time.Now()
			for _, ev := range evs {
				if ev.Type != client.Added && ev.Type != client.Modified {
					continue
				}
				if at, err := time.Parse(time.RFC3339Nano, ev.Object.Annotations[writtenAt]); err == nil {
					lag.add(now.Sub(at))
				}
			}
		}
		w.Stop()
	}
}

// probePagedLists lists every pod through the REST API in pages of 500, as client-go's
// pager does, in protobuf (client-go's typed clients and informers: a built-in kind's
// list in Kubernetes' protobuf encoding) and then in JSON (kubectl get -o json), every
// period (or as soon as the previous two end, if they took longer), and records each
// list's time in protobufLists or jsonLists. One list runs at a time.
func probePagedLists(ctx context.Context, b *testing.B, hc *http.Client, base string, period time.Duration, jsonLists, protobufLists *latencies) {
	defer hc.CloseIdleConnections()
	tick := time.NewTicker(period)
	defer tick.Stop()
	most := 0
	defer func() { b.Logf("paged lists: at most %d pods", most) }()
	for {
		for _, protobuf := range []bool{true, false} {
			at := time.Now()
			items, err := listAllPods(ctx, hc, base, protobuf)
			if err != nil && ctx.Err() == nil {
				b.Logf("paged list (protobuf %v): %v", protobuf, err)
				if protobuf {
					protobufLists.fail()
				} else {
					jsonLists.fail()
				}
			} else if err == nil {
				if protobuf {
					protobufLists.add(time.Since(at))
				} else {
					jsonLists.add(time.Since(at))
				}
				most = max(most, items)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// clientGoAccept is the Accept header of client-go's typed clients for a built-in kind
// (gentype's PrefersProtobuf, rest.Request.UseProtobufAsDefault).
const clientGoAccept = "application/vnd.kubernetes.protobuf,application/json"

// listAllPods lists every pod in pages of 500, in protobuf as client-go asks (decoded
// into a PodList as client-go's protobuf serializer does) or in JSON, and returns how
// many there were.
func listAllPods(ctx context.Context, hc *http.Client, base string, protobuf bool) (int, error) {
	n := 0
	token := ""
	for {
		u := base + "/api/v1/pods?limit=500"
		if token != "" {
			u += "&continue=" + url.QueryEscape(token)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return n, err
		}
		req.Header.Set("Accept", "application/json")
		if protobuf {
			req.Header.Set("Accept", clientGoAccept)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return n, err
		}
		if resp.StatusCode != http.StatusOK {
			status, _ := io.ReadAll(io.LimitReader(resp.Body, 4096)) // the Status, with its message
			resp.Body.Close()
			return n, fmt.Errorf("page after %d pods: %s: %s", n, resp.Status, strings.TrimSpace(string(status)))
		}
		page, err := benchfig.DecodePodList(resp.Body, protobuf && resp.Header.Get("Content-Type") == kinds.ContentType)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			return n, fmt.Errorf("page after %d pods: %w", n, err)
		}
		n += len(page.Items)
		if token = page.Continue; token == "" {
			return n, nil
		}
	}
}

// rssWatch samples the processes' resident memory every second, keeps each one's peak
// and says once they pass a limit together.
type rssWatch struct {
	procs  []*proc
	limit  int64
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	peak    []int64
	tooMuch error
}

func newRSSWatch(b *testing.B, procs []*proc, limit int64) *rssWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := &rssWatch{procs: procs, limit: limit, cancel: cancel, done: make(chan struct{}), peak: make([]int64, len(procs))}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			now := w.current()
			total := selfRSS()
			w.mu.Lock()
			for i, v := range now {
				w.peak[i] = max(w.peak[i], v)
				total += v
			}
			if total > w.limit && w.tooMuch == nil {
				w.tooMuch = fmt.Errorf("the run's processes hold %d MiB together, over the %d MiB limit: aborted", total>>20, w.limit>>20)
			}
			w.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

func (w *rssWatch) stop() { w.cancel(); <-w.done }

func (w *rssWatch) err() error { w.mu.Lock(); defer w.mu.Unlock(); return w.tooMuch }

// current is each process's resident memory now, in bytes.
func (w *rssWatch) current() []int64 {
	out := make([]int64, len(w.procs))
	for i, p := range w.procs {
		out[i] = procStatus(p.cmd.Process.Pid, "VmRSS:")
	}
	return out
}

// peaks is each process's highest resident memory: the kernel's high-water mark, or the
// highest sample if that is higher (it never is).
func (w *rssWatch) peaks() []int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]int64, len(w.procs))
	for i, p := range w.procs {
		out[i] = max(w.peak[i], procStatus(p.cmd.Process.Pid, "VmHWM:"))
	}
	return out
}

func selfRSS() int64 { return procStatus(os.Getpid(), "VmRSS:") }

// procStatus reads a field in kB of /proc/PID/status, in bytes (0 if unreadable).
func procStatus(pid int, field string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), field); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// diskUsage is the space each directory's files take on disk (allocated blocks).
func diskUsage(b *testing.B, dirs []string) []int64 {
	out := make([]int64, len(dirs))
	for i, d := range dirs {
		filepath.WalkDir(d, func(path string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return nil
			}
			var st syscall.Stat_t
			if syscall.Stat(path, &st) == nil {
				out[i] += st.Blocks * 512
			}
			return nil
		})
	}
	return out
}

// appliedIndex reads a member's Raft applied index from its /metrics.
func appliedIndex(b *testing.B, url string) int64 {
	resp, err := http.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	s := bufio.NewScanner(resp.Body)
	s.Buffer(nil, 1<<20)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "skiff_raft_applied_index "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				b.Fatalf("skiff_raft_applied_index: %v", err)
			}
			return int64(v)
		}
	}
	b.Fatalf("no skiff_raft_applied_index in %s", url)
	return 0
}

// retryPause waits a second before a probe tries again, or until ctx ends.
func retryPause(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-time.After(time.Second):
	}
}

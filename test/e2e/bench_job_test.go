package e2e

import (
	"bytes"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/test/apicluster"
	benchfig "github.com/skiffhq/skiff/test/bench"
)

// BenchmarkE2EJob10000Completions: seconds from creating an Indexed Job of 10,000
// completions, parallelism 1,000, whose simulated pods exit at once, to its Complete
// condition, on 1,000 simulated nodes, the whole chain in one process (TLS, each
// component its own identity, as benchDeploy). Every pod is made, scheduled, run,
// counted through the tracking finalizer and released. The _insecure figure runs the same without TLS, authentication, authorization or
// limits, as the Deployment's does. Beside the time, _cpu is the process's CPU over the
// timed part (every component's: less moved by other work on the machine than the
// time), _raft_entries_per_pod the Raft entries the cluster committed meanwhile, per
// completion, and _events_refused the Event writes the members refused meanwhile as over
// the event rate limit (each a write the recorders make again later).
func BenchmarkE2EJob10000Completions(b *testing.B) {
	benchJob(b, "job_10000_completions", true, 10_000, 1000)
}
func BenchmarkE2EJob10000CompletionsInsecure(b *testing.B) {
	benchJob(b, "job_10000_completions_insecure", false, 10_000, 1000)
}

// BenchmarkE2EJob1000Completions is the same at a tenth of the size (1,000
// completions, parallelism 100, 100 nodes): quick enough to profile the Job's path
// while changing it.
func BenchmarkE2EJob1000Completions(b *testing.B) {
	benchJob(b, "job_1000_completions", true, 1000, 100)
}

// benchJob runs an Indexed Job of completions pods, parallelism of them at once, on
// parallelism simulated nodes.
func benchJob(b *testing.B, name string, secure bool, completions, parallelism int32) {
	benchfig.Want(b, name, name+"_rate", name+"_cpu", name+"_raft_entries_per_pod", name+"_events_refused")
	c, cs, ctx, stop := benchCluster(b, int(parallelism), secure)
	defer stop()
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "bench", Namespace: "default"}, Spec: batchv1.JobSpec{
		Completions: ptr.To(completions), Parallelism: ptr.To(parallelism), CompletionMode: ptr.To(batchv1.IndexedCompletion),
		Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{Name: "work", Image: "busybox", Command: []string{"sh", "-c", "exit 0"},
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")}}}}}}}}
	f := cache.NewFactory(cs, hclog.NewNullLogger())
	var status atomic.Pointer[batchv1.JobStatus]
	stages := watchStages(ctx, f, "default", func() string {
		if st := status.Load(); st != nil {
			return fmt.Sprintf("job: active %d, succeeded %d, uncounted %d", st.Active, st.Succeeded, len(st.UncountedTerminatedPods.Succeeded))
		}
		return ""
	})
	f.Start(ctx)
	defer func() { stop(); f.Wait() }() // the informers end with ctx: end it first
	b.ResetTimer()
	stages()
	cpu := benchfig.StartCPU()
	stopProfile := benchfig.StartCPUProfile(b)
	baseIndex, baseRefused := c.Server(0).Store().Revision(), eventsRefused(b, c)
	start := time.Now()
	if _, err := cs.Jobs.Create(ctx, job); err != nil {
		b.Fatal(err)
	}
	var last *batchv1.Job
	for {
		cur, err := cs.Jobs.Get(ctx, "default", "bench")
		if err == nil {
			last = cur
			status.Store(&cur.Status)
			if complete(cur) {
				break
			}
		}
		if ctx.Err() != nil {
			var log bytes.Buffer
			stages().Report(&log)
			b.Fatalf("not complete after %v: %+v\n%s", time.Since(start), last.Status, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	stopProfile()
	spent, entries, refused := cpu(), c.Server(0).Store().Revision()-baseIndex, eventsRefused(b, c)-baseRefused
	// To stderr, as the progress lines: a benchmark's log keeps its first 10 lines,
	// which the members' own logs fill.
	fmt.Fprintln(os.Stderr, "as a watcher saw the pods:")
	stages().Report(os.Stderr)
	if last.Status.Succeeded != completions || last.Status.CompletedIndexes != fmt.Sprintf("0-%d", completions-1) {
		b.Fatalf("status %+v", last.Status)
	}
	benchfig.Report(name, elapsed.Seconds(), "s")
	benchfig.Report(name+"_rate", float64(completions)/elapsed.Seconds(), "pods/s")
	benchfig.Report(name+"_cpu", spent.Seconds(), "s")
	benchfig.Report(name+"_raft_entries_per_pod", float64(entries)/float64(completions), "entries")
	benchfig.Report(name+"_events_refused", refused, "events")
	fmt.Fprintln(os.Stderr, "load average", benchfig.LoadAverage())
}

func complete(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// eventsRefused sums the members' skiff_apiserver_events_refused_total.
func eventsRefused(b *testing.B, c *apicluster.Cluster) float64 {
	var n float64
	for i := range c.Addrs() {
		mfs, err := c.Server(i).Gatherer().Gather()
		if err != nil {
			b.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "skiff_apiserver_events_refused_total" {
				for _, m := range mf.GetMetric() {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}

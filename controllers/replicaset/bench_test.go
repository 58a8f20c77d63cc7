package replicaset

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/client/record"
	"github.com/skiffhq/skiff/test/apicluster"
	benchfig "github.com/skiffhq/skiff/test/bench"
)

// BenchmarkRSScaleUp10k: seconds for a ReplicaSet scaled from 0 to 10,000 to have 10,000
// pods stored, on a 3-node cluster.
func BenchmarkRSScaleUp10k(b *testing.B) {
	benchfig.Want(b, "rs_scale_up_10k")
	const n = 10_000
	// As users run Skiff: TLS, the controller authenticated as the controller-manager,
	// the default limits.
	c := apicluster.Start(b, 3, apicluster.Options{HistorySize: 100_000, Certs: apicluster.Certs(b)})
	cs := client.NewClientset(c.Dial(b, "controller-manager", client.Options{}))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	f := cache.NewFactory(cs, hclog.NewNullLogger())
	rec := record.New(cs.Events, record.Config{Component: "replicaset-controller"})
	ctrl, err := New(cs, f, rec, DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	podInf := cache.InformerFor[*corev1.Pod](f, "", client.ListOptions{})
	f.Start(ctx)
	go rec.Run(ctx)
	go ctrl.Run(ctx)
	defer f.Wait()
	defer cancel()
	if !cache.WaitForSync(ctx, podInf) {
		b.Fatal("no sync")
	}
	rs := newRS("big", 0)
	if _, err := cs.ReplicaSets.Create(ctx, rs); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	for {
		cur, _ := cs.ReplicaSets.Get(ctx, "default", "big")
		cur.Spec.Replicas = ptr.To[int32](n)
		if _, err = cs.ReplicaSets.Update(ctx, cur); !client.IsConflict(err) {
			break
		}
	}
	if err != nil {
		b.Fatal(err)
	}
	for podInf.Lister().Len() < n {
		if ctx.Err() != nil {
			b.Fatalf("%d pods after %v", podInf.Lister().Len(), time.Since(start))
		}
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if got := podInf.Lister().Len(); got != n {
		b.Fatalf("%d pods, want %d", got, n)
	}
	benchfig.Report("rs_scale_up_10k", elapsed.Seconds(), "s")
}

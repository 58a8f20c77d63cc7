package apiserver_test

import (
	"context"
	"fmt"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/apiserver"
	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/test/apicluster"
)

// BenchmarkEventSweepHeap measures what the leader's sweep of expired events holds while
// it runs: 20,000 events, none expired, swept every 100 ms, and the live heap read after
// one collection after another for 3 s; the most above the least (between sweeps) is the
// sweep's (issue 26: a list of every event held them all at once).
func BenchmarkEventSweepHeap(b *testing.B) {
	const n = 20_000
	c := apicluster.Start(b, 1, apicluster.Options{Configure: func(cfg *apiserver.Config) {
		cfg.EventTTL, cfg.EventSweepInterval = time.Hour, 100*time.Millisecond
		cfg.EventRateLimit = apiserver.EventRateLimit{NodeQPS: 1e6, NodeBurst: 1e6, NamespaceQPS: 1e6, NamespaceBurst: 1e6} // made at once
	}})
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	events := client.For[*corev1.Event](conn)
	ctx := context.Background()
	now := time.Now()
	for i := 0; i < n; i += client.MaxCreateBatch {
		batch := make([]*corev1.Event, client.MaxCreateBatch)
		for j := range batch {
			name := fmt.Sprintf("scale-0-5d8f9c7b6-%05d", i+j)
			batch[j] = &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name + ".187e5f3a9c2b4d10"}, Type: corev1.EventTypeNormal,
				Reason: "Started", Message: "Started container app", Source: corev1.EventSource{Component: "kubelet", Host: "sim-17"},
				InvolvedObject: corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: "default", Name: name, UID: "0c7e8a52-4f1b-4b8e-9a57-000000000000"},
				FirstTimestamp: metav1.NewTime(now), LastTimestamp: metav1.NewTime(now), Count: 1}
		}
		if _, errs, err := events.CreateBatch(ctx, batch); err != nil || errs[0] != nil {
			b.Fatal(err, errs[0])
		}
	}
	live := func() int64 {
		runtime.GC()
		s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		metrics.Read(s)
		return int64(s[0].Value.Uint64())
	}
	var least, most int64
	for b.Loop() {
		least, most = live(), 0
		for end := time.Now().Add(3 * time.Second); time.Now().Before(end); {
			l := live()
			least, most = min(least, l), max(most, l)
		}
	}
	b.ReportMetric(float64(most-least)/n, "bytes/event")
}

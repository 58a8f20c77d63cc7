package apiserver_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/apiserver"
	"github.com/skiffhq/skiff/test/apicluster"
)

// BenchmarkRESTEvents: core/v1 Events over REST, the hot paths a second version over
// their storage (events.k8s.io/v1) must not slow — a list of 1,000 (JSON), and a watch
// from the current state (1,000 ADDED events read) — on one insecure member.
func BenchmarkRESTEvents(b *testing.B) {
	c := apicluster.Start(b, 1, apicluster.Options{Configure: func(cfg *apiserver.Config) {
		cfg.EventRateLimit.NamespaceQPS = 0 // the setup's 1,000 creates in a second
	}})
	rc := newREST(b, c.Addr(0), true)
	const base = "/api/v1/namespaces/default/events"
	n := 0
	create := func() {
		ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "e" + strconv.Itoa(n)}, Reason: "Bench", Message: "a message of some length, as the kubelet writes them",
			Type: "Normal", InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web-" + strconv.Itoa(n)},
			Source: corev1.EventSource{Component: "kubelet", Host: "w1"}, Count: 1}
		n++
		rc.want(rc.do("POST", base, "application/json", "", ev), 201, "create")
	}
	for range 1000 {
		create()
	}
	b.Run("list1000", func(b *testing.B) {
		for b.Loop() {
			rc.want(rc.do("GET", base, "", "", nil), 200, "list")
		}
	})
	b.Run("watch1000", func(b *testing.B) {
		for b.Loop() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			events := rc.watch(ctx, base+"?watch=1")
			for got := 0; got < 1000; got++ {
				select {
				case <-events:
				case <-ctx.Done():
					b.Fatal("watch ended")
				}
			}
			cancel()
		}
	})
}

package apiserver_test

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/apiserver"
	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

// TestEventsExpire: the leader deletes events last seen more than --event-ttl ago, and
// keeps the others.
func TestEventsExpire(t *testing.T) {
	c := apicluster.Start(t, 3, apicluster.Options{Configure: func(cfg *apiserver.Config) {
		cfg.EventTTL, cfg.EventSweepInterval = time.Hour, 50*time.Millisecond
	}})
	ctx := testCtx(t)
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	events := client.For[*corev1.Event](conn)
	at := func(name string, last time.Time) *corev1.Event {
		return &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}, Type: corev1.EventTypeNormal, Reason: "Tested",
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web"},
			FirstTimestamp: metav1.NewTime(last.Add(-time.Minute)), LastTimestamp: metav1.NewTime(last)}
	}
	now := time.Now()
	var old []string
	for i := range 150 { // more than one deleting transaction
		ev := at(fmt.Sprintf("old-%d", i), now.Add(-2*time.Hour))
		if i == 0 {
			// Happened long ago, and again just now: kept.
			ev = at("recurring", now)
			ev.FirstTimestamp = metav1.NewTime(now.Add(-3 * time.Hour))
		} else {
			old = append(old, ev.Name)
		}
		if _, err := events.Create(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := events.Create(ctx, at("recent", now.Add(-59*time.Minute))); err != nil {
		t.Fatal(err)
	}
	waitfor.Condition(t, 30*time.Second, "the expired events deleted", func() (bool, string) {
		l, err := events.List(ctx, "default", client.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		var names []string
		for _, ev := range l.Items {
			names = append(names, ev.Name)
		}
		return len(l.Items) == 2, fmt.Sprintf("%d events left: %.80v", len(l.Items), names)
	})
	for _, name := range []string{"recurring", "recent"} {
		if _, err := events.Get(ctx, "default", name); err != nil {
			t.Errorf("event %s: %v", name, err)
		}
	}
}

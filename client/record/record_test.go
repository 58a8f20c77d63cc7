package record_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/skiffhq/skiff/apiserver/apiservertest"
	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/record"
	corev1 "github.com/skiffhq/skiff/proto/core/v1"
)

func TestEventsAreAggregated(t *testing.T) {
	c := apiservertest.Start(t, 1, apiservertest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, _ := client.Dial(c.Addrs(), client.Options{})
	defer conn.Close()
	cs := client.NewClientset(conn)
	r := record.New(cs.Events, record.Config{Component: "test", Host: "h1"})
	rctx, rcancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { r.Run(rctx); close(done) }()

	pod := &corev1.Pod{Metadata: &corev1.ObjectMeta{Namespace: "default", Name: "p", Uid: "u1"}}
	node := &corev1.Node{Metadata: &corev1.ObjectMeta{Name: "w1", Uid: "u2"}}
	for i := 0; i < 300; i++ {
		r.Eventf(pod, record.Warning, "BackOff", "Back-off restarting failed container %s", "c")
	}
	r.Eventf(pod, record.Normal, "Scheduled", "Successfully assigned default/p to w1")
	r.Eventf(node, record.Normal, "NodeReady", "Node w1 status is now: NodeReady")

	for {
		l, err := cs.Events.List(ctx, "", client.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		counts := map[string]int32{}
		for _, ev := range l.Items {
			counts[ev.GetReason()] += ev.GetCount()
			if ev.GetSource().GetComponent() != "test" || ev.GetEventTime() == nil {
				t.Fatalf("event %v lacks its source or time", ev)
			}
		}
		if len(l.Items) == 3 && counts["BackOff"] == 300 && counts["Scheduled"] == 1 && counts["NodeReady"] == 1 {
			for _, ev := range l.Items {
				if ev.GetReason() == "NodeReady" && ev.GetMetadata().GetNamespace() != "default" {
					t.Errorf("node event in namespace %q", ev.GetMetadata().GetNamespace())
				}
			}
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("events: %d objects, counts %v", len(l.Items), counts)
		case <-time.After(50 * time.Millisecond):
		}
	}
	rcancel()
	<-done
}

func TestRecordingNeverBlocks(t *testing.T) {
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := dead.Addr().String()
	dead.Close()
	conn, _ := client.Dial([]string{addr}, client.Options{})
	defer conn.Close()
	r := record.New(client.For[*corev1.Event](conn), record.Config{Component: "test", MaxPending: 100})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	start := time.Now()
	for i := 0; i < 10000; i++ {
		r.Eventf(&corev1.Pod{Metadata: &corev1.ObjectMeta{Name: "p", Uid: "u"}}, record.Normal, "R", "message %d", i)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("recording 10,000 events with no server took %v", d)
	}
	cancel()
	<-done
}

func TestSimilarEventsAreCombined(t *testing.T) {
	c := apiservertest.Start(t, 1, apiservertest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, _ := client.Dial(c.Addrs(), client.Options{})
	defer conn.Close()
	cs := client.NewClientset(conn)
	r := record.New(cs.Events, record.Config{Component: "test"})
	rctx, rcancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { r.Run(rctx); close(done) }()
	defer func() { rcancel(); <-done }()

	rs := &corev1.ReplicaSet{Metadata: &corev1.ObjectMeta{Namespace: "default", Name: "web", Uid: "u1"}}
	for i := 0; i < 1000; i++ {
		r.Eventf(rs, record.Normal, "SuccessfulCreate", "Created pod: web-%d", i)
	}
	for {
		l, err := cs.Events.List(ctx, "", client.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		total, combined := int32(0), 0
		for _, ev := range l.Items {
			total += ev.GetCount()
			if ev.GetCount() > 1 {
				combined++
				if want := "(combined from similar events): Created pod: web-999"; ev.GetMessage() != want {
					t.Errorf("combined message %q, want %q", ev.GetMessage(), want)
				}
			}
		}
		if total == 1000 {
			if len(l.Items) != 11 || combined != 1 {
				t.Fatalf("%d events (%d combined) for 1000 similar ones; want 10 single and 1 combined", len(l.Items), combined)
			}
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("events: %d objects, count %d", len(l.Items), total)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

package apiserver_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/apiserver"
	"github.com/skiffhq/skiff/apiserver/flowcontrol"
	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

// tally counts a caller's outcomes.
type tally struct{ ok, refused, failed atomic.Int64 }

// note counts err: a refusal must say when to come back.
func (c *tally) note(t *testing.T, err error) {
	switch {
	case err == nil:
		c.ok.Add(1)
	case status.Code(err) == codes.ResourceExhausted:
		c.refused.Add(1)
		var delay *errdetails.RetryInfo
		for _, d := range status.Convert(err).Details() {
			if ri, ok := d.(*errdetails.RetryInfo); ok {
				delay = ri
			}
		}
		if delay == nil || delay.GetRetryDelay().AsDuration() < time.Second {
			t.Errorf("a refusal without a retry delay of at least 1s: %v", err)
		}
	default:
		c.failed.Add(1)
		t.Errorf("unexpected error: %v", err)
	}
}

// TestFloodDoesNotStarveTheCluster: an administrator sending far more requests at once
// than its priority level has seats is queued and refused, while the controller-manager's
// writes and the nodes' heartbeats, at their own levels, are never refused: every
// heartbeat of every node lands while the flood runs.
func TestFloodDoesNotStarveTheCluster(t *testing.T) {
	nodes := []string{"w1", "w2", "w3"}
	dir := apicluster.Certs(t, nodes...)
	c := apicluster.Start(t, 1, apicluster.Options{Certs: dir, Configure: func(cfg *apiserver.Config) {
		// 28 seats: the flood's level (global-default) gets 4 of them, and 50 of the
		// administrator's requests may wait.
		cfg.FlowControl.ConcurrencyLimit = 28
		for i, l := range cfg.FlowControl.Levels {
			if l.Name == flowcontrol.GlobalDefault {
				cfg.FlowControl.Levels[i].QueueLengthLimit = 50
			}
		}
	}})
	ctx := testCtx(t)
	addr := c.Addr(0)
	admin := dialSecure(t, addr, apicluster.ClientTLS(t, dir, "admin"), "")
	cm := dialSecure(t, addr, apicluster.ClientTLS(t, dir, "controller-manager"), "")
	waitfor.Condition(t, 30*time.Second, "namespace kube-node-lease", func() (bool, string) {
		_, err := admin.Get(ctx, &apiv1.GetRequest{Kind: "Namespace", Name: "kube-node-lease"})
		return err == nil, fmt.Sprint(err)
	})

	// The flood: 100 callers at once, each sending its next create as soon as the last
	// one is answered, retry delays ignored.
	const flooders = 100
	var flood tally
	floodCtx, stopFlood := context.WithCancel(ctx)
	var fwg sync.WaitGroup
	for i := 0; i < flooders; i++ {
		fwg.Add(1)
		go func() {
			defer fwg.Done()
			for n := 0; floodCtx.Err() == nil; n++ {
				obj := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("flood-%d-%d", i, n), Namespace: "default"}}
				_, err := admin.Create(floodCtx, &apiv1.CreateRequest{Object: wrap(t, obj)})
				if floodCtx.Err() == nil {
					flood.note(t, err)
				}
			}
		}()
	}
	defer func() { stopFlood(); fwg.Wait() }()
	// Wait until the flood is refused: the level is saturated.
	waitfor.Condition(t, 30*time.Second, "the flood refused", func() (bool, string) {
		return flood.refused.Load() > 0, fmt.Sprintf("%d answered", flood.ok.Load())
	})

	// Meanwhile the controller-manager writes 100 objects, 4 at a time, and every node
	// renews its Lease 10 times.
	var system tally
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < 25; n++ {
				obj := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%d-%d", w, n), Namespace: "default"}}
				_, err := cm.Create(ctx, &apiv1.CreateRequest{Object: wrap(t, obj)})
				system.note(t, err)
			}
		}()
	}
	renewed := make([]int, len(nodes))
	for i, node := range nodes {
		kubelet := dialSecure(t, addr, apicluster.ClientTLS(t, dir, "kubelet-"+node), "")
		wg.Add(1)
		go func() {
			defer wg.Done()
			lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: node, Namespace: "kube-node-lease"},
				Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(node), LeaseDurationSeconds: ptr.To(int32(40))}}
			got, err := kubelet.Create(ctx, &apiv1.CreateRequest{Object: wrap(t, lease)})
			system.note(t, err)
			if err != nil {
				return
			}
			for n := 0; n < 10; n++ {
				lease = unwrap[*coordinationv1.Lease](t, got)
				lease.Spec.RenewTime = ptr.To(metav1.NowMicro())
				got, err = kubelet.Update(ctx, &apiv1.UpdateRequest{Object: wrap(t, lease)})
				system.note(t, err)
				if err != nil {
					return
				}
				renewed[i]++
			}
		}()
	}
	wg.Wait()
	flooded := flood.ok.Load() + flood.refused.Load()
	stopFlood()
	fwg.Wait()

	t.Logf("flood: %d answered, %d refused; system: %d written", flood.ok.Load(), flood.refused.Load(), system.ok.Load())
	if system.refused.Load() != 0 || system.ok.Load() != 100+int64(len(nodes))*11 {
		t.Fatalf("the cluster's components: %d written, %d refused, %d failed; want %d written", system.ok.Load(), system.refused.Load(), system.failed.Load(), 100+len(nodes)*11)
	}
	for i, n := range renewed {
		if n != 10 {
			t.Errorf("node %s renewed its Lease %d times of 10", nodes[i], n)
		}
	}
	if flood.ok.Load() == 0 || flood.refused.Load() == 0 || flooded < flooders {
		t.Fatalf("the flood: %d answered, %d refused; want both", flood.ok.Load(), flood.refused.Load())
	}
}

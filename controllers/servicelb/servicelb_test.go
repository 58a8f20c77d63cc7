package servicelb

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

func node(name string, ready bool, addrs ...corev1.NodeAddress) *corev1.Node {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: corev1.NodeStatus{Addresses: addrs, Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: st}}}}
}

func internal(ip string) corev1.NodeAddress {
	return corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: ip}
}

func TestIngress(t *testing.T) {
	got := Ingress([]*corev1.Node{
		node("b", true, internal("10.0.0.12")),
		node("a", true, internal("10.0.0.2"), corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: "203.0.113.5"}),
		node("down", false, internal("10.0.0.3")),
		node("noaddr", true),
		node("c", true, internal("10.0.0.9")),
	})
	if fmt.Sprint(got) != "[{10.0.0.9  <nil> []} {10.0.0.12  <nil> []} {203.0.113.5  <nil> []}]" {
		t.Fatalf("ingress %v: want the ready nodes' external, else internal, addresses in order", got)
	}
}

// TestController: a LoadBalancer Service gets the Ready nodes' addresses, follows a node
// that becomes ready, and loses them when it is no longer a LoadBalancer.
func TestController(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cs := client.NewClientset(c.Dial(t, "admin", client.Options{}))
	f := cache.NewFactory(cs, nil)
	ctl, err := New(cs, f, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	f.Start(runCtx)
	done := make(chan struct{})
	go func() { defer close(done); ctl.Run(runCtx) }()
	defer func() { stop(); <-done; f.Wait() }()

	for _, n := range []*corev1.Node{node("w1", true, internal("10.0.0.1")), node("w2", false, internal("10.0.0.2"))} {
		created, err := cs.Nodes.Create(ctx, &corev1.Node{ObjectMeta: n.ObjectMeta})
		if err != nil {
			t.Fatal(err)
		}
		created.Status = n.Status
		if _, err := cs.Nodes.UpdateStatus(ctx, created); err != nil {
			t.Fatal(err)
		}
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}, Spec: corev1.ServiceSpec{
		Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80}}}}
	if _, err := cs.Services.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	ingress := func(want string) {
		t.Helper()
		waitfor.Condition(t, 10*time.Second, "ingress "+want, func() (bool, string) {
			s, err := cs.Services.Get(ctx, "default", "web")
			if err != nil {
				return false, err.Error()
			}
			var got []string
			for _, in := range s.Status.LoadBalancer.Ingress {
				got = append(got, in.IP)
			}
			return fmt.Sprint(got) == want, fmt.Sprint(got)
		})
	}
	ingress("[10.0.0.1]")
	w2, err := cs.Nodes.Get(ctx, "", "w2")
	if err != nil {
		t.Fatal(err)
	}
	w2.Status.Conditions[0].Status = corev1.ConditionTrue
	if _, err := cs.Nodes.UpdateStatus(ctx, w2); err != nil {
		t.Fatal(err)
	}
	ingress("[10.0.0.1 10.0.0.2]")
	// A load balancer of another class is that implementation's: no ingress points.
	other := svc.DeepCopy()
	other.Name, other.Spec.LoadBalancerClass = "other", new("example.com/internal-vip")
	if _, err := cs.Services.Create(ctx, other); err != nil {
		t.Fatal(err)
	}
	waitfor.Condition(t, 10*time.Second, "the class's Service in the cache", func() (bool, string) {
		_, ok := ctl.svcs.Get("default", "other")
		return ok, "not yet"
	})
	if _, err := ctl.Reconcile(ctx, "default/other"); err != nil {
		t.Fatal(err)
	}
	if o, err := cs.Services.Get(ctx, "default", "other"); err != nil || len(o.Status.LoadBalancer.Ingress) != 0 {
		t.Fatalf("a Service of another load balancer class: ingress %v, %v; want none", o.Status.LoadBalancer.Ingress, err)
	}
	s, err := cs.Services.Get(ctx, "default", "web")
	if err != nil {
		t.Fatal(err)
	}
	s.Spec.Type, s.Spec.ExternalTrafficPolicy, s.Spec.AllocateLoadBalancerNodePorts = corev1.ServiceTypeClusterIP, "", nil
	if _, err := cs.Services.Update(ctx, s); err != nil {
		t.Fatal(err)
	}
	ingress("[]")
}

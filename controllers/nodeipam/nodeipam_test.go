package nodeipam

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

func TestNthSubnet(t *testing.T) {
	cluster := netip.MustParsePrefix("10.42.0.0/16")
	for _, tc := range []struct {
		bits, i int
		want    string
	}{{24, 0, "10.42.0.0/24"}, {24, 1, "10.42.1.0/24"}, {24, 255, "10.42.255.0/24"}, {26, 5, "10.42.1.64/26"}} {
		if got := nthSubnet(cluster, tc.bits, tc.i); got.String() != tc.want {
			t.Errorf("nthSubnet(/%d, %d) = %s, want %s", tc.bits, tc.i, got, tc.want)
		}
	}
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		cidr string
		bits int
		ok   bool
	}{{"10.42.0.0/16", 24, true}, {"10.42.0.0/16", 8, false}, {"fd00::/64", 80, false}, {"x", 24, false}} {
		cfg := DefaultConfig()
		cfg.ClusterCIDR, cfg.NodeMaskSize = tc.cidr, tc.bits
		if err := cfg.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s /%d: %v", tc.cidr, tc.bits, err)
		}
	}
}

// start runs a controller (of its own, as each replica of the controller-manager has)
// until the test ends.
func start(t *testing.T, ctx context.Context, cs *client.Clientset) {
	f := cache.NewFactory(cs, nil)
	cfg := DefaultConfig()
	cfg.ClusterCIDR = "10.42.0.0/16"
	c, err := New(cs, f, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	f.Start(ctx)
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; f.Wait() })
}

func node(name string) *corev1.Node { return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}} }

// ranges waits until every node has a range and returns them by node.
func ranges(t *testing.T, ctx context.Context, cs *client.Clientset, n int) map[string]string {
	t.Helper()
	out := map[string]string{}
	waitfor.Condition(t, 30*time.Second, "every node has a podCIDR", func() (bool, string) {
		l, err := cs.Nodes.List(ctx, "", client.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		clear(out)
		for _, nd := range l.Items {
			if nd.Spec.PodCIDR == "" {
				return false, nd.Name + " has none"
			}
			if len(nd.Spec.PodCIDRs) != 1 || nd.Spec.PodCIDRs[0] != nd.Spec.PodCIDR {
				t.Fatalf("%s: podCIDRs %v, podCIDR %s", nd.Name, nd.Spec.PodCIDRs, nd.Spec.PodCIDR)
			}
			out[nd.Name] = nd.Spec.PodCIDR
		}
		return len(out) == n, fmt.Sprintf("%d of %d nodes", len(out), n)
	})
	return out
}

// TestTwoControllers: two controllers at once (a leader and the one that replaces it
// before it knows) give 30 nodes 30 different ranges of the cluster CIDR; a deleted
// node's range is given again.
func TestTwoControllers(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cs := client.NewClientset(c.Dial(t, "controller-manager", client.Options{}))
	admin := client.NewClientset(c.Dial(t, "admin", client.Options{}))
	start(t, ctx, cs)
	start(t, ctx, cs)
	const n = 30
	for i := range n {
		if _, err := admin.Nodes.Create(ctx, node(fmt.Sprintf("w%02d", i))); err != nil {
			t.Fatal(err)
		}
	}
	got := ranges(t, ctx, admin, n)
	cluster := netip.MustParsePrefix("10.42.0.0/16")
	seen := map[string]string{}
	for nd, cidr := range got {
		p := netip.MustParsePrefix(cidr)
		if p.Bits() != 24 || !cluster.Contains(p.Addr()) {
			t.Errorf("%s: %s is not a /24 of %s", nd, cidr, cluster)
		}
		if other, dup := seen[cidr]; dup {
			t.Errorf("%s and %s both have %s", nd, other, cidr)
		}
		seen[cidr] = nd
	}

	// The API server refuses a range another node has, and a change of a node's range.
	w0, err := admin.Nodes.Get(ctx, "", "w00")
	if err != nil {
		t.Fatal(err)
	}
	extra, err := admin.Nodes.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "extra"}, Spec: corev1.NodeSpec{PodCIDR: w0.Spec.PodCIDR}})
	if !client.IsInvalid(err) {
		t.Fatalf("a node created with w00's range %s: %v, %v", w0.Spec.PodCIDR, extra, err)
	}
	w0.Spec.PodCIDR, w0.Spec.PodCIDRs = "10.42.250.0/24", []string{"10.42.250.0/24"}
	if _, err := admin.Nodes.Update(ctx, w0); !client.IsInvalid(err) {
		t.Fatalf("w00's range changed: %v", err)
	}

	// A deleted node's range is free again: the next node gets it (the lowest free).
	if _, err := admin.Nodes.Delete(ctx, "", "w00", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Nodes.Create(ctx, node("w99")); err != nil {
		t.Fatal(err)
	}
	again := ranges(t, ctx, admin, n)
	if again["w99"] != got["w00"] {
		t.Fatalf("w99 got %s, want w00's freed %s", again["w99"], got["w00"])
	}
}

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
	"github.com/skiffhq/skiff/client/record"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

func TestNthSubnet(t *testing.T) {
	cluster := netip.MustParsePrefix("10.42.0.0/16")
	for _, tc := range []struct {
		bits, i int
		want    string
	}{{24, 0, "10.42.0.0/24"}, {24, 1, "10.42.1.0/24"}, {24, 255, "10.42.255.0/24"}, {26, 5, "10.42.1.64/26"}} {
		if got := newCIDRSet(cluster, tc.bits).nth(tc.i); got.String() != tc.want {
			t.Errorf("nth(/%d, %d) = %s, want %s", tc.bits, tc.i, got, tc.want)
		}
	}
}

// TestCIDRSet: occupy, release and allocate on a /22 cut into /24s (four ranges).
func TestCIDRSet(t *testing.T) {
	type op struct {
		do   string // "occupy", "release" or "allocate"
		cidr string // the range to occupy or release; the one allocate returns ("" when full)
	}
	for _, tc := range []struct {
		name string
		ops  []op
	}{
		{"lowest first", []op{{"allocate", "10.0.0.0/24"}, {"allocate", "10.0.1.0/24"}}},
		{"occupied skipped", []op{{"occupy", "10.0.0.0/24"}, {"occupy", "10.0.2.0/24"}, {"allocate", "10.0.1.0/24"}, {"allocate", "10.0.3.0/24"}, {"allocate", ""}}},
		{"full", []op{{"allocate", "10.0.0.0/24"}, {"allocate", "10.0.1.0/24"}, {"allocate", "10.0.2.0/24"}, {"allocate", "10.0.3.0/24"}, {"allocate", ""}}},
		{"released reused, lowest first", []op{{"allocate", "10.0.0.0/24"}, {"allocate", "10.0.1.0/24"}, {"allocate", "10.0.2.0/24"},
			{"release", "10.0.1.0/24"}, {"release", "10.0.0.0/24"}, {"allocate", "10.0.0.0/24"}, {"allocate", "10.0.1.0/24"}, {"allocate", "10.0.3.0/24"}}},
		{"full then released", []op{{"occupy", "10.0.0.0/22"}, {"allocate", ""}, {"release", "10.0.2.0/24"}, {"allocate", "10.0.2.0/24"}, {"allocate", ""}}},
		{"occupied twice, released once", []op{{"occupy", "10.0.0.0/24"}, {"occupy", "10.0.0.0/24"}, {"release", "10.0.0.0/24"}, {"allocate", "10.0.0.0/24"}}},
		{"smaller range occupies its /24", []op{{"occupy", "10.0.0.128/25"}, {"allocate", "10.0.1.0/24"}}},
		{"larger range occupies its /24s", []op{{"occupy", "10.0.0.0/23"}, {"allocate", "10.0.2.0/24"}}},
		{"ranges outside ignored", []op{{"occupy", "10.0.4.0/24"}, {"occupy", "fd00::/64"}, {"occupy", "9.0.0.0/8"}, {"release", "10.1.0.0/24"}, {"allocate", "10.0.0.0/24"}}},
		{"overlapping the cluster's end", []op{{"occupy", "10.0.3.0/24"}, {"occupy", "10.0.0.0/16"}, {"allocate", ""}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newCIDRSet(netip.MustParsePrefix("10.0.0.0/22"), 24)
			for i, o := range tc.ops {
				switch o.do {
				case "occupy":
					s.occupy(netip.MustParsePrefix(o.cidr))
				case "release":
					s.release(netip.MustParsePrefix(o.cidr))
				case "allocate":
					p, ok := s.allocate()
					if got := map[bool]string{true: p.String(), false: ""}[ok]; got != o.cidr {
						t.Fatalf("op %d: allocate = %q, want %q", i, got, o.cidr)
					}
				}
			}
		})
	}
}

// TestCIDRSetLarge: allocation past the first words of the bitmap, with a range freed
// far below and a cluster CIDR whose last word is not full.
func TestCIDRSetLarge(t *testing.T) {
	s := newCIDRSet(netip.MustParsePrefix("10.0.0.0/16"), 23) // 128 ranges: two words
	for i := range 128 {
		if p, ok := s.allocate(); !ok || p != s.nth(i) {
			t.Fatalf("allocation %d: %s %v, want %s", i, p, ok, s.nth(i))
		}
	}
	if p, ok := s.allocate(); ok {
		t.Fatalf("a full set gave %s", p)
	}
	s.release(s.nth(70))
	s.release(s.nth(3))
	for _, want := range []int{3, 70} {
		if p, ok := s.allocate(); !ok || p != s.nth(want) {
			t.Fatalf("after releases: %s %v, want %s", p, ok, s.nth(want))
		}
	}
	odd := newCIDRSet(netip.MustParsePrefix("10.0.0.0/25"), 30) // 32 ranges: half a word
	for range 32 {
		if _, ok := odd.allocate(); !ok {
			t.Fatal("a /25 holds 32 /30s")
		}
	}
	if p, ok := odd.allocate(); ok {
		t.Fatalf("a 33rd /30 of a /25: %s", p)
	}
}

func withCIDR(name, cidr string) *corev1.Node {
	n := node(name)
	n.Spec.PodCIDR, n.Spec.PodCIDRs = cidr, []string{cidr}
	return n
}

// TestAllocationPerNode: 5,000 nodes register one after another, some with ranges set by
// someone else; each allocation examines O(1) words of the bitmap (not every node or
// every range before it), no range is given twice, and deleted nodes' ranges (shown in
// the cache or only set by this controller) are given again.
func TestAllocationPerNode(t *testing.T) {
	const n = 5000
	u := newUsedRanges(netip.MustParsePrefix("10.0.0.0/8"), 24)
	owners := map[netip.Prefix]string{}
	for i := range n {
		name := fmt.Sprintf("n%04d", i)
		if i%10 == 9 { // set by someone else: the next range up
			nd := withCIDR(name, u.set.nth(u.set.next+1).String())
			u.seen(nil, nd)
			owners[u.set.nth(u.set.next+1)] = name
			continue
		}
		nd := node(name)
		u.seen(nil, nd)
		p, ok := u.allocate(name)
		if !ok {
			t.Fatalf("%s: no range", name)
		}
		if other, dup := owners[p]; dup {
			t.Fatalf("%s and %s both got %s", name, other, p)
		}
		owners[p] = name
		if i%2 == 0 { // the cache shows it
			u.seen(nd, withCIDR(name, p.String()))
		}
	}
	if u.set.probes > 2*n {
		t.Fatalf("%d allocations examined %d words of the bitmap: not O(1) each", n*9/10, u.set.probes)
	}
	// n0000's range was shown in the cache, n0001's only set by this controller.
	u.deleted(withCIDR("n0000", "10.0.0.0/24"))
	u.deleted(node("n0001"))
	for _, want := range []string{"10.0.0.0/24", "10.0.1.0/24"} {
		if p, ok := u.allocate("again"); !ok || p.String() != want {
			t.Fatalf("after deleting n0000 and n0001: %s %v, want %s", p, ok, want)
		}
	}
}

// A node deleted while its range is being written, its deletion seen before the write
// returns (with or without the range), has its range freed; a write that failed gives
// the range back, unless the cache shows another node with it.
func TestRangeOfNodeDeletedDuringWrite(t *testing.T) {
	first := netip.MustParsePrefix("10.0.0.0/24")
	for _, tc := range []struct {
		name  string
		steps func(u *usedRanges, p netip.Prefix)
		free  bool
	}{
		{"deleted before the cache showed the range", func(u *usedRanges, p netip.Prefix) { u.deleted(node("a")) }, true},
		{"deleted after the cache showed it", func(u *usedRanges, p netip.Prefix) {
			u.seen(node("a"), withCIDR("a", p.String()))
			u.deleted(withCIDR("a", p.String()))
		}, true},
		{"write failed", func(u *usedRanges, p netip.Prefix) { u.giveBack("a", p) }, true},
		{"write failed, another node shown with it", func(u *usedRanges, p netip.Prefix) {
			u.seen(nil, withCIDR("b", p.String()))
			u.giveBack("a", p)
		}, false},
		{"given", func(u *usedRanges, p netip.Prefix) {}, false},
	} {
		u := newUsedRanges(netip.MustParsePrefix("10.0.0.0/16"), 24)
		u.seen(nil, node("a"))
		p, ok := u.allocate("a")
		if !ok || p != first {
			t.Fatalf("%s: allocated %s %v", tc.name, p, ok)
		}
		tc.steps(u, p)
		next, _ := u.allocate("c")
		if free := next == first; free != tc.free {
			t.Errorf("%s: next range %s: first range free %v, want %v", tc.name, next, free, tc.free)
		}
	}
}

// BenchmarkPick gives 5,000 registering nodes their ranges (the cache showing each one
// after it got it).
func BenchmarkPick(b *testing.B) {
	const n = 5000
	nodes := make([]*corev1.Node, n)
	for i := range nodes {
		nodes[i] = node(fmt.Sprintf("n%04d", i))
	}
	for b.Loop() {
		u := newUsedRanges(netip.MustParsePrefix("10.0.0.0/8"), 24)
		for _, nd := range nodes {
			u.seen(nil, nd)
			p, ok := u.allocate(nd.Name)
			if !ok {
				b.Fatal("no range")
			}
			u.seen(nd, withCIDR(nd.Name, p.String()))
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

// start runs a controller on clusterCIDR (of its own, as each replica of the
// controller-manager has) until the test ends.
func start(t *testing.T, ctx context.Context, cs *client.Clientset, clusterCIDR string) {
	f := cache.NewFactory(cs, nil)
	rec := record.New(cs.Events, record.Config{Component: "controller-manager"})
	cfg := DefaultConfig()
	cfg.ClusterCIDR = clusterCIDR
	c, err := New(cs, f, rec, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	f.Start(ctx)
	done := make(chan struct{}, 2)
	go func() { c.Run(ctx); done <- struct{}{} }()
	go func() { rec.Run(ctx); done <- struct{}{} }()
	t.Cleanup(func() { cancel(); <-done; <-done; f.Wait() })
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

// cluster starts an API server for the test; it returns the test's context and
// clientsets of the controller-manager and of an admin.
func cluster(t *testing.T) (context.Context, *client.Clientset, *client.Clientset) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx, client.NewClientset(c.Dial(t, "controller-manager", client.Options{})), client.NewClientset(c.Dial(t, "admin", client.Options{}))
}

// TestTwoControllers: two controllers at once (a leader and the one that replaces it
// before it knows) give 30 nodes 30 different ranges of the cluster CIDR; a deleted
// node's range is given again.
func TestTwoControllers(t *testing.T) {
	ctx, cs, admin := cluster(t)
	start(t, ctx, cs, "10.42.0.0/16")
	start(t, ctx, cs, "10.42.0.0/16")
	const n = 30
	for i := range n {
		if _, err := admin.Nodes.Create(ctx, node(fmt.Sprintf("w%02d", i))); err != nil {
			t.Fatal(err)
		}
	}
	got := ranges(t, ctx, admin, n)
	clusterCIDR := netip.MustParsePrefix("10.42.0.0/16")
	seen := map[string]string{}
	for nd, cidr := range got {
		p := netip.MustParsePrefix(cidr)
		if p.Bits() != 24 || !clusterCIDR.Contains(p.Addr()) {
			t.Errorf("%s: %s is not a /24 of %s", nd, cidr, clusterCIDR)
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

// TestClusterCIDRFull: with the cluster CIDR's two /24s given, a third node gets none
// and an event CIDRNotAvailable, as Kubernetes reports it; a node deleted frees its
// range for it.
func TestClusterCIDRFull(t *testing.T) {
	ctx, cs, admin := cluster(t)
	start(t, ctx, cs, "10.42.0.0/23")
	for _, name := range []string{"a", "b"} {
		if _, err := admin.Nodes.Create(ctx, node(name)); err != nil {
			t.Fatal(err)
		}
	}
	got := ranges(t, ctx, admin, 2)
	if _, err := admin.Nodes.Create(ctx, node("c")); err != nil {
		t.Fatal(err)
	}
	waitfor.Condition(t, 30*time.Second, "an event CIDRNotAvailable about node c", func() (bool, string) {
		l, err := admin.Events.List(ctx, "", client.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		for _, e := range l.Items {
			if e.InvolvedObject.Kind == "Node" && e.InvolvedObject.Name == "c" && e.Reason == "CIDRNotAvailable" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d events, none", len(l.Items))
	})
	if nd, err := admin.Nodes.Get(ctx, "", "c"); err != nil || nd.Spec.PodCIDR != "" {
		t.Fatalf("node c in a full cluster CIDR: %v, %v", nd, err)
	}
	if _, err := admin.Nodes.Delete(ctx, "", "a", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// A change of c syncs it now rather than after its retries' growing delay (unless a
	// retry gave it the range meanwhile: then the change conflicts, and is not needed).
	err := client.RetryOnConflict(ctx, func() error {
		nd, err := admin.Nodes.Get(ctx, "", "c")
		if err != nil || nd.Spec.PodCIDR != "" {
			return err
		}
		nd.Labels = map[string]string{"touched": "true"}
		_, err = admin.Nodes.Update(ctx, nd)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if again := ranges(t, ctx, admin, 2); again["c"] != got["a"] {
		t.Fatalf("c got %q, want a's freed %s", again["c"], got["a"])
	}
}

package sim

import (
	"context"
	"fmt"
	"testing"

	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffhq/skiff/kubelet"
)

func TestNetwork(t *testing.T) {
	ctx := context.Background()
	n := NewNetwork()
	pod := func(i int) kubelet.PodRef {
		return kubelet.PodRef{UID: types.UID(fmt.Sprint("uid-", i)), Namespace: "default", Name: fmt.Sprint("p", i)}
	}
	// A /29: the network, the gateway (.1) and the broadcast (.7) are no pod's; 5 are.
	for i, want := range []string{"10.42.0.2", "10.42.0.3", "10.42.0.4", "10.42.0.5", "10.42.0.6"} {
		got, err := n.SetUp(ctx, pod(i), "10.42.0.0/29")
		if err != nil || got != want {
			t.Fatalf("pod %d: %s, %v; want %s", i, got, err, want)
		}
	}
	if _, err := n.SetUp(ctx, pod(9), "10.42.0.0/29"); err == nil {
		t.Fatal("a sixth pod got an address of a /29")
	}
	// Set up again: the same address.
	if got, _ := n.SetUp(ctx, pod(1), "10.42.0.0/29"); got != "10.42.0.3" {
		t.Fatalf("pod 1 again: %s", got)
	}
	// Torn down: its address is the next pod's.
	if err := n.TearDown(ctx, pod(1).UID); err != nil {
		t.Fatal(err)
	}
	if got, _ := n.SetUp(ctx, pod(9), "10.42.0.0/29"); got != "10.42.0.3" {
		t.Fatalf("after pod 1 went: %s, want its 10.42.0.3", got)
	}
	for _, bad := range []string{"", "x", "fd00::/64", "10.0.0.0/31"} {
		if _, err := n.SetUp(ctx, pod(20), bad); err == nil {
			t.Errorf("podCIDR %q accepted", bad)
		}
	}
}

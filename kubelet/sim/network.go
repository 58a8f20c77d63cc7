package sim

import (
	"context"
	"fmt"
	"net/netip"
	"sync"

	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffhq/skiff/kubelet"
)

// Network is a simulated pod network: it gives each pod an address of the node's
// podCIDR, as CNI's host-local IPAM does (the first host address is the bridge's
// gateway; pods get the lowest free one after it), without network namespaces, so that
// thousands of simulated nodes run in one process. Addresses live in memory: a
// simulated node's pods go with its process, as its containers do.
type Network struct {
	mu    sync.Mutex
	byUID map[types.UID]netip.Addr
	used  map[netip.Addr]types.UID
}

var _ kubelet.PodNetwork = (*Network)(nil)

// NewNetwork makes an empty simulated network.
func NewNetwork() *Network {
	return &Network{byUID: map[types.UID]netip.Addr{}, used: map[netip.Addr]types.UID{}}
}

// SetUp gives the pod the lowest free address of podCIDR after the gateway's.
func (n *Network) SetUp(_ context.Context, pod kubelet.PodRef, podCIDR string) (string, error) {
	p, err := netip.ParsePrefix(podCIDR)
	if err != nil || !p.Addr().Is4() || p.Bits() > 30 {
		return "", fmt.Errorf("podCIDR %q: not an IPv4 range with room for pods", podCIDR)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if a, ok := n.byUID[pod.UID]; ok {
		return a.String(), nil
	}
	gateway := p.Addr().Next()
	for a := gateway.Next(); p.Contains(a.Next()); a = a.Next() { // the last is the broadcast address
		if _, taken := n.used[a]; !taken {
			n.used[a], n.byUID[pod.UID] = pod.UID, a
			return a.String(), nil
		}
	}
	return "", fmt.Errorf("no address of %s is free", podCIDR)
}

// TearDown frees the pod's address.
func (n *Network) TearDown(_ context.Context, uid types.UID) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if a, ok := n.byUID[uid]; ok {
		delete(n.used, a)
		delete(n.byUID, uid)
	}
	return nil
}

// Addresses is how many addresses are given (tests).
func (n *Network) Addresses() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.byUID)
}

// SetUpPods are the pods with an address (kubelet.PodNetworkLister): a kubelet started
// again on the same network tears down those its node no longer has.
func (n *Network) SetUpPods() ([]types.UID, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]types.UID, 0, len(n.byUID))
	for uid := range n.byUID {
		out = append(out, uid)
	}
	return out, nil
}

package apiserver

import (
	"errors"
	"net"
	"slices"
	"testing"
)

// TestAPIServerAddrs: the kubernetes Service's endpoints are the members serving on the
// Service's target port, a loopback or unspecified address replaced by the host's (as
// kube-apiserver advertises itself), never a loopback address.
func TestAPIServerAddrs(t *testing.T) {
	host := func(net.IP) (net.IP, error) { return net.ParseIP("192.0.2.7"), nil }
	noHost := func(net.IP) (net.IP, error) { return nil, errors.New("no default route") }
	loopbackHost := func(net.IP) (net.IP, error) { return net.ParseIP("127.0.0.1"), nil }
	for _, tc := range []struct {
		name    string
		members map[string]string
		resolve func(net.IP) (net.IP, error)
		want    []string
	}{
		{"routable members, sorted", map[string]string{"n1": "10.0.0.2:6443", "n2": "10.0.0.1:6443"}, host, []string{"10.0.0.1", "10.0.0.2"}},
		{"another port is another server", map[string]string{"n1": "10.0.0.1:6443", "n2": "10.0.0.2:7443"}, host, []string{"10.0.0.1"}},
		{"loopback is the host's address", map[string]string{"n1": "127.0.0.1:6443"}, host, []string{"192.0.2.7"}},
		{"unspecified is the host's address", map[string]string{"n1": "0.0.0.0:6443"}, host, []string{"192.0.2.7"}},
		{"one host's address once", map[string]string{"n1": "127.0.0.1:6443", "n2": "0.0.0.0:6443", "n3": "192.0.2.7:6443"}, host, []string{"192.0.2.7"}},
		{"no host address", map[string]string{"n1": "127.0.0.1:6443", "n2": "10.0.0.1:6443"}, noHost, []string{"10.0.0.1"}},
		{"never loopback", map[string]string{"n1": "127.0.0.1:6443"}, loopbackHost, nil},
		{"IPv6 and names left out", map[string]string{"n1": "[2001:db8::1]:6443", "n2": "api.example:6443", "n3": "bad"}, host, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := apiServerAddrs(6443, tc.members, tc.resolve); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestKubernetesServiceHosts: the names and the address pods reach the API servers by
// (the kubernetes Service's), which their serving certificate must name.
func TestKubernetesServiceHosts(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    Networking
		want []string
		err  bool
	}{
		{name: "defaults", want: []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local", "10.43.0.1"}},
		{name: "a cluster's own", n: Networking{ServiceCIDR: "10.96.0.0/12", ClusterDomain: "skiff.internal"},
			want: []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc",
				"kubernetes.default.svc.skiff.internal", "10.96.0.1"}},
		{name: "invalid range", n: Networking{ServiceCIDR: "10.96.0.1/12"}, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := KubernetesServiceHosts(tc.n)
			if tc.err {
				if err == nil {
					t.Fatalf("got %v, want an error", got)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

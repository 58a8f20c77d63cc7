package kubelet

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A pod's /etc/resolv.conf as Kubernetes' kubelet forms it, for each dnsPolicy, with
// and without --cluster-dns, with dnsConfig merged in and the limits applied.
func TestFormPodDNS(t *testing.T) {
	host := filepath.Join(t.TempDir(), "resolv.conf")
	hostConf := "# the node's\nnameserver 192.0.2.53\nnameserver 192.0.2.54\nsearch old.example\nsearch corp.example. lab.example .\n" +
		"options timeout:2\noptions attempts:3 timeout:1\n"
	if err := os.WriteFile(host, []byte(hostConf), 0o644); err != nil {
		t.Fatal(err)
	}
	cluster := dnsSettings{clusterDNS: []string{"10.43.0.10"}, clusterDomain: "cluster.local", resolvConf: host}
	noCluster := dnsSettings{clusterDomain: "cluster.local", resolvConf: host}
	noHost := dnsSettings{clusterDomain: "cluster.local"}
	str := func(s string) *string { return &s }
	pod := func(policy corev1.DNSPolicy, hostNet bool, c *corev1.PodDNSConfig) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", UID: "u1"},
			Spec: corev1.PodSpec{DNSPolicy: policy, HostNetwork: hostNet, DNSConfig: c}}
	}
	hostFile := "search corp.example lab.example\nnameserver 192.0.2.53\nnameserver 192.0.2.54\noptions timeout:1 attempts:3\n"
	clusterFile := "search shop.svc.cluster.local svc.cluster.local cluster.local corp.example lab.example\nnameserver 10.43.0.10\noptions ndots:5\n"
	var manySearch []string
	for i := range 40 {
		manySearch = append(manySearch, fmt.Sprintf("d%d.example", i))
	}
	long := strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 63) + ".x" // 256
	var bigSearch []string                                                                                                                 // 20 domains of 120 characters: 2419 characters with the spaces
	for i := range 20 {
		bigSearch = append(bigSearch, fmt.Sprintf("%02d%s.example", i, strings.Repeat("e", 110)))
	}
	missingNode := "kubelet does not have ClusterDNS IP configured and cannot create Pod using \"ClusterFirst\" policy. Falling back to \"Default\" policy."
	for _, tc := range []struct {
		name   string
		pod    *corev1.Pod
		s      dnsSettings
		want   string
		events []dnsEvent
	}{
		{name: "ClusterFirst", pod: pod(corev1.DNSClusterFirst, false, nil), s: cluster, want: clusterFile},
		{name: "unset policy is ClusterFirst", pod: pod("", false, nil), s: cluster, want: clusterFile},
		{name: "ClusterFirst on the host network is Default", pod: pod(corev1.DNSClusterFirst, true, nil), s: cluster, want: hostFile},
		{name: "ClusterFirstWithHostNet", pod: pod(corev1.DNSClusterFirstWithHostNet, true, nil), s: cluster, want: clusterFile},
		{name: "ClusterFirstWithHostNet off the host network", pod: pod(corev1.DNSClusterFirstWithHostNet, false, nil), s: cluster, want: clusterFile},
		{name: "Default", pod: pod(corev1.DNSDefault, false, nil), s: cluster, want: hostFile},
		{name: "None", pod: pod(corev1.DNSNone, false, &corev1.PodDNSConfig{Nameservers: []string{"1.2.3.4"}, Searches: []string{"a.example"},
			Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: str("2")}, {Name: "edns0"}}}),
			s: cluster, want: "search a.example\nnameserver 1.2.3.4\noptions ndots:2 edns0\n"},
		{name: "None without dnsConfig", pod: pod(corev1.DNSNone, false, nil), s: cluster, want: ""},
		{name: "ClusterFirst without cluster DNS falls back to Default", pod: pod(corev1.DNSClusterFirst, false, nil), s: noCluster, want: hostFile,
			events: []dnsEvent{{node: true, reason: "MissingClusterDNS", message: missingNode},
				{reason: "MissingClusterDNS", message: `pod: "web_shop(u1)". ` + missingNode}}},
		{name: "Default without a node resolv.conf", pod: pod(corev1.DNSDefault, false, nil), s: noHost, want: "search .\nnameserver 127.0.0.1\n"},
		{name: "several cluster DNS servers", pod: pod(corev1.DNSClusterFirst, false, nil),
			s:    dnsSettings{clusterDNS: []string{"10.43.0.10", "10.43.0.11"}, clusterDomain: "k.test"},
			want: "search shop.svc.k.test svc.k.test k.test\nnameserver 10.43.0.10\nnameserver 10.43.0.11\noptions ndots:5\n"},
		{name: "dnsConfig merged into ClusterFirst", pod: pod(corev1.DNSClusterFirst, false, &corev1.PodDNSConfig{
			Nameservers: []string{"10.43.0.10", "1.1.1.1"}, Searches: []string{"svc.cluster.local", "extra.example"},
			Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: str("2")}, {Name: "single-request-reopen"}, {Name: "timeout", Value: str("")}}}),
			s: cluster,
			want: "search shop.svc.cluster.local svc.cluster.local cluster.local corp.example lab.example extra.example\n" +
				"nameserver 10.43.0.10\nnameserver 1.1.1.1\noptions ndots:2 single-request-reopen timeout\n"},
		{name: "dnsConfig merged into Default", pod: pod(corev1.DNSDefault, false, &corev1.PodDNSConfig{
			Options: []corev1.PodDNSConfigOption{{Name: "attempts", Value: str("5")}}}),
			s: cluster, want: "search corp.example lab.example\nnameserver 192.0.2.53\nnameserver 192.0.2.54\noptions timeout:1 attempts:5\n"},
		{name: "at most 3 nameservers", pod: pod(corev1.DNSClusterFirst, false, &corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1", "8.8.8.8", "9.9.9.9"}}),
			s: cluster, want: strings.Replace(clusterFile, "nameserver 10.43.0.10\n", "nameserver 10.43.0.10\nnameserver 1.1.1.1\nnameserver 8.8.8.8\n", 1),
			events: []dnsEvent{{reason: "DNSConfigForming", message: "Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: 10.43.0.10 1.1.1.1 8.8.8.8"}}},
		{name: "at most 32 search domains", pod: pod(corev1.DNSClusterFirst, false, &corev1.PodDNSConfig{Searches: manySearch}),
			s: cluster, want: "search shop.svc.cluster.local svc.cluster.local cluster.local corp.example lab.example " + strings.Join(manySearch[:27], " ") +
				"\nnameserver 10.43.0.10\noptions ndots:5\n",
			events: []dnsEvent{{reason: "DNSConfigForming", message: "Search Line limits were exceeded, some search paths have been omitted, the applied search line is: " +
				"shop.svc.cluster.local svc.cluster.local cluster.local corp.example lab.example " + strings.Join(manySearch[:27], " ")}}},
		{name: "no search domain beyond 253 characters", pod: pod(corev1.DNSNone, false, &corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1"}, Searches: []string{long, "ok.example"}}),
			s: cluster, want: "search ok.example\nnameserver 1.1.1.1\n",
			events: []dnsEvent{{reason: "DNSConfigForming", message: "Search Line limits were exceeded, some search paths have been omitted, the applied search line is: ok.example"}}},
		{name: "at most 2048 characters of search line", pod: pod(corev1.DNSNone, false, &corev1.PodDNSConfig{Searches: bigSearch}),
			s: cluster, want: "search " + strings.Join(bigSearch[:16], " ") + "\n",
			events: []dnsEvent{{reason: "DNSConfigForming", message: "Search Line limits were exceeded, some search paths have been omitted, the applied search line is: " + strings.Join(bigSearch[:16], " ")}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, events, err := formPodDNS(tc.pod, tc.s)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(d.bytes()); got != tc.want {
				t.Errorf("resolv.conf:\n%s\nwant:\n%s", got, tc.want)
			}
			if !slices.Equal(events, tc.events) {
				t.Errorf("events %+v, want %+v", events, tc.events)
			}
		})
	}
}

// The node's resolv.conf is read as Kubernetes reads it.
func TestParseResolvConf(t *testing.T) {
	d := parseResolvConf("; comment\n# comment\nnameserver 10.0.0.1\ndomain ignored.example\nnameserver\nsearch a.example\n  search b.example. c.example\noptions ndots:2 edns0\noptions ndots:3\nnameserver 10.0.0.2 extra\n")
	if want := []string{"10.0.0.1", "10.0.0.2"}; !slices.Equal(d.servers, want) {
		t.Errorf("servers %q, want %q", d.servers, want)
	}
	if want := []string{"b.example", "c.example"}; !slices.Equal(d.searches, want) {
		t.Errorf("searches %q, want %q", d.searches, want)
	}
	if want := []string{"ndots:3", "edns0"}; !slices.Equal(d.options, want) {
		t.Errorf("options %q, want %q", d.options, want)
	}
}

package kubelet

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/skiffhq/skiff/client/record"
)

// The limits of a pod's resolver configuration, Kubernetes' (derived from glibc's).
const (
	maxDNSNameservers     = 3
	maxDNSSearchPaths     = 32
	maxDNSSearchListChars = 2048
)

// defaultDNSOptions are the options of a pod that uses the cluster DNS, Kubernetes'.
var defaultDNSOptions = []string{"ndots:5"}

// podDNS is a pod's resolver configuration, what its /etc/resolv.conf says.
type podDNS struct {
	servers, searches, options []string
}

// bytes is the configuration as a resolv.conf, as containerd writes it for a pod.
func (d podDNS) bytes() []byte {
	var b bytes.Buffer
	if len(d.searches) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(d.searches, " "))
	}
	for _, s := range d.servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(d.options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(d.options, " "))
	}
	return b.Bytes()
}

// dnsEvent is an event the forming of a pod's DNS configuration records: about the
// pod, or (node) about the node.
type dnsEvent struct {
	node            bool
	reason, message string
}

// dnsSettings are the kubelet's settings a pod's DNS configuration is formed from.
type dnsSettings struct {
	// clusterDNS are the cluster DNS servers (--cluster-dns); clusterDomain is the
	// cluster's domain (--cluster-domain).
	clusterDNS    []string
	clusterDomain string
	// resolvConf is the node's resolver configuration file (--resolv-conf); "":
	// none, and pods that would use it resolve through 127.0.0.1 with search ".", as
	// Kubernetes' kubelet does.
	resolvConf string
}

// formPodDNS forms a pod's resolver configuration as Kubernetes' kubelet does
// (pkg/kubelet/network/dns):
//   - ClusterFirst (a pod not on the host's network) and ClusterFirstWithHostNet:
//     the cluster DNS servers alone, the search path <namespace>.svc.<domain>
//     svc.<domain> <domain> and then the node's, and options ndots:5. Without cluster
//     DNS servers the pod falls back to Default, with a MissingClusterDNS event
//     about the node and about the pod;
//   - Default (and ClusterFirst on the host's network): the node's configuration;
//   - None: nothing but the pod's dnsConfig.
//
// The pod's dnsConfig is then merged in: its nameservers and searches appended
// (duplicates omitted), its options overriding those of the same name. Beyond
// Kubernetes' limits (3 nameservers; 32 search domains, none longer than 253
// characters, 2048 characters in all) the excess is left out, with a
// DNSConfigForming event.
func formPodDNS(pod *corev1.Pod, s dnsSettings) (podDNS, []dnsEvent, error) {
	var events []dnsEvent
	var d podDNS
	if s.resolvConf != "" {
		data, err := os.ReadFile(s.resolvConf)
		if err != nil && !os.IsNotExist(err) {
			return podDNS{}, nil, fmt.Errorf("read the node's resolver configuration %s: %w", s.resolvConf, err)
		}
		d = parseResolvConf(string(data))
	}
	policy := pod.Spec.DNSPolicy
	if policy == corev1.DNSClusterFirst && pod.Spec.HostNetwork {
		policy = corev1.DNSDefault // Kubernetes' fallback for a pod on the host's network
	}
	switch policy {
	case corev1.DNSNone:
		d = podDNS{}
	case corev1.DNSDefault:
		d = hostDNS(d, s)
	default: // ClusterFirst, ClusterFirstWithHostNet (and unset, which the API server defaults to ClusterFirst)
		if len(s.clusterDNS) == 0 {
			msg := fmt.Sprintf("kubelet does not have ClusterDNS IP configured and cannot create Pod using %q policy. Falling back to %q policy.",
				corev1.DNSClusterFirst, corev1.DNSDefault)
			events = append(events, dnsEvent{node: true, reason: "MissingClusterDNS", message: msg},
				dnsEvent{reason: "MissingClusterDNS", message: fmt.Sprintf("pod: %q. %s", fmt.Sprintf("%s_%s(%s)", pod.Name, pod.Namespace, pod.UID), msg)})
			d = hostDNS(d, s)
			break
		}
		d.servers = append([]string(nil), s.clusterDNS...)
		if s.clusterDomain != "" {
			d.searches = omitDuplicates(append([]string{pod.Namespace + ".svc." + s.clusterDomain, "svc." + s.clusterDomain, s.clusterDomain}, d.searches...))
		}
		d.options = append([]string(nil), defaultDNSOptions...)
	}
	if c := pod.Spec.DNSConfig; c != nil {
		d.servers = omitDuplicates(append(d.servers, c.Nameservers...))
		d.searches = omitDuplicates(append(d.searches, c.Searches...))
		for _, o := range c.Options {
			opt := o.Name
			if o.Value != nil && *o.Value != "" {
				opt += ":" + *o.Value
			}
			d.options = setOption(d.options, opt)
		}
	}
	if len(d.servers) > maxDNSNameservers {
		d.servers = d.servers[:maxDNSNameservers]
		events = append(events, dnsEvent{reason: "DNSConfigForming", message: "Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: " + strings.Join(d.servers, " ")})
	}
	var exceeded bool
	if d.searches, exceeded = searchFitsLimits(d.searches); exceeded {
		events = append(events, dnsEvent{reason: "DNSConfigForming", message: "Search Line limits were exceeded, some search paths have been omitted, the applied search line is: " + strings.Join(d.searches, " ")})
	}
	return d, events, nil
}

// hostDNS is the configuration of a pod that uses the node's (Default): the node's,
// or without a node resolver configuration, 127.0.0.1 and search ".".
func hostDNS(d podDNS, s dnsSettings) podDNS {
	if s.resolvConf == "" {
		return podDNS{servers: []string{"127.0.0.1"}, searches: []string{"."}}
	}
	return d
}

// searchFitsLimits cuts a search path to Kubernetes' limits; exceeded says whether it
// had to.
func searchFitsLimits(search []string) (out []string, exceeded bool) {
	if len(search) > maxDNSSearchPaths {
		search, exceeded = search[:maxDNSSearchPaths], true
	}
	// Some resolvers (glibc 2.28) abort on a search domain beyond 253 characters.
	for _, s := range search {
		if len(s) > validation.DNS1123SubdomainMaxLength {
			exceeded = true
			continue
		}
		out = append(out, s)
	}
	for len(out) > 0 && len(strings.Join(out, " ")) > maxDNSSearchListChars {
		out, exceeded = out[:len(out)-1], true
	}
	return out, exceeded
}

// parseResolvConf reads a resolv.conf as Kubernetes' kubelet does: nameserver lines
// accumulate, the last search line wins (trailing dots dropped, "." left out), and
// options accumulate, a later one replacing an earlier one of its name.
func parseResolvConf(data string) podDNS {
	var d podDNS
	for _, line := range strings.Split(data, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "nameserver":
			d.servers = append(d.servers, f[1])
		case "search":
			d.searches = nil
			for _, s := range f[1:] {
				if s != "." {
					d.searches = append(d.searches, strings.TrimSuffix(s, "."))
				}
			}
		case "options":
			for _, o := range f[1:] {
				d.options = setOption(d.options, o)
			}
		}
	}
	return d
}

// setOption sets a resolver option ("ndots:5", "edns0"): it replaces the one of its
// name, else is appended.
func setOption(options []string, opt string) []string {
	name, _, _ := strings.Cut(opt, ":")
	for i, o := range options {
		if n, _, _ := strings.Cut(o, ":"); n == name {
			options = append([]string(nil), options...)
			options[i] = opt
			return options
		}
	}
	return append(options, opt)
}

func omitDuplicates(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// resolvConf is pod's /etc/resolv.conf, its events recorded.
func (k *Kubelet) resolvConf(pod *corev1.Pod) ([]byte, error) {
	d, events, err := formPodDNS(pod, dnsSettings{clusterDNS: k.cfg.ClusterDNS, clusterDomain: k.cfg.ClusterDomain, resolvConf: k.cfg.ResolvConf})
	if err != nil {
		return nil, err
	}
	for _, e := range events {
		if e.node {
			// Kubernetes' kubelet refers to its node by name, as the node's UID.
			k.rec.Event(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: k.cfg.NodeName, UID: types.UID(k.cfg.NodeName)}}, record.Warning, e.reason, e.message)
			continue
		}
		k.rec.Event(pod, record.Warning, e.reason, e.message)
	}
	return d.bytes(), nil
}

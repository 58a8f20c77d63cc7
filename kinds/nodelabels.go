package kinds

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// kubeletLabels are the labels under kubernetes.io and k8s.io a kubelet may set on its
// Node, as Kubernetes' kubelet may (k8s.io/kubelet's KubeletLabels).
var kubeletLabels = map[string]bool{
	corev1.LabelHostname:                true,
	corev1.LabelTopologyZone:            true,
	corev1.LabelTopologyRegion:          true,
	corev1.LabelFailureDomainBetaZone:   true,
	corev1.LabelFailureDomainBetaRegion: true,
	corev1.LabelInstanceType:            true,
	corev1.LabelInstanceTypeStable:      true,
	corev1.LabelOSStable:                true,
	corev1.LabelArchStable:              true,
	"beta.kubernetes.io/os":             true,
	"beta.kubernetes.io/arch":           true,
	corev1.LabelWindowsBuild:            true,
}

// KubeletMaySetNodeLabel is Kubernetes' rule for a kubelet's own labels: nothing under
// node-restriction.kubernetes.io/ (administrators use it to steer workloads to nodes
// that cannot claim it themselves); under kubernetes.io/ or k8s.io/ (and their
// subdomains) only the kubelet's own labels and the kubelet.kubernetes.io/ and
// node.kubernetes.io/ namespaces; anything else.
func KubeletMaySetNodeLabel(key string) bool {
	prefix, _, ok := strings.Cut(key, "/")
	if !ok {
		return true // no prefix: the user's own namespace
	}
	if prefix == corev1.LabelNamespaceNodeRestriction || strings.HasSuffix(prefix, "."+corev1.LabelNamespaceNodeRestriction) {
		return false
	}
	if !underKubernetesDomains(prefix) {
		return true
	}
	if kubeletLabels[key] {
		return true
	}
	for _, ns := range []string{corev1.LabelNamespaceSuffixKubelet, corev1.LabelNamespaceSuffixNode} {
		if prefix == ns || strings.HasSuffix(prefix, "."+ns) {
			return true
		}
	}
	return false
}

func underKubernetesDomains(prefix string) bool {
	for _, d := range []string{"kubernetes.io", "k8s.io"} {
		if prefix == d || strings.HasSuffix(prefix, "."+d) {
			return true
		}
	}
	return false
}

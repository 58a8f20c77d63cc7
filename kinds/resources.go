package kinds

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// IsNativeResource reports whether name is one of Kubernetes' own resources: unprefixed
// (cpu, memory, pods) or in the kubernetes.io domain.
func IsNativeResource(name corev1.ResourceName) bool {
	return !strings.Contains(string(name), "/") || strings.Contains(string(name), corev1.ResourceDefaultNamespacePrefix)
}

// IsExtendedResourceName reports whether name is an extended resource, one a node
// advertises and pods request by a domain-prefixed name outside kubernetes.io
// (example.com/dongle), by Kubernetes' rule: not native, not "requests."-prefixed, and a
// qualified name once quota's "requests." prefix is put in front of it. Extended
// resources are counted in whole units and cannot be overcommitted.
func IsExtendedResourceName(name corev1.ResourceName) bool {
	if IsNativeResource(name) || strings.HasPrefix(string(name), corev1.DefaultResourceRequestsPrefix) {
		return false
	}
	return len(validation.IsQualifiedName(corev1.DefaultResourceRequestsPrefix+string(name))) == 0
}

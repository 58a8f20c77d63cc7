package kubelet

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// masterService is the Service of the API servers, whose variables every pod gets
// (Kubernetes' masterServices), whatever its enableServiceLinks.
const masterService = "kubernetes"

// serviceEnv is the variables of services pod gets, from the kubelet's cache.
func (k *Kubelet) serviceEnv(pod *corev1.Pod) map[string]string {
	links := pod.Spec.EnableServiceLinks == nil || *pod.Spec.EnableServiceLinks
	var services []*corev1.Service
	if links {
		services = k.services.Lister().ListNamespace(pod.Namespace, labels.Everything())
	}
	if s, ok := k.services.Lister().Get(metav1.NamespaceDefault, masterService); ok {
		services = append(services, s)
	}
	return serviceEnv(services, pod.Namespace, links)
}

// serviceEnv is the variables Kubernetes' kubelet (getServiceEnvVarMap) gives a pod of
// namespace ns for services, the kubelet's cache of every Service: the default
// namespace's kubernetes Service always, and with enableServiceLinks each Service of ns
// (ns's own wins over default's of the same name). Only Services with a cluster IP
// count: neither headless ones nor ExternalName ones.
func serviceEnv(services []*corev1.Service, ns string, enableServiceLinks bool) map[string]string {
	picked := map[string]*corev1.Service{}
	for _, s := range services {
		if !serviceIPSet(s) {
			continue
		}
		switch {
		case s.Namespace == ns && enableServiceLinks:
			picked[s.Name] = s
		case s.Namespace == metav1.NamespaceDefault && s.Name == masterService:
			if _, ok := picked[s.Name]; !ok {
				picked[s.Name] = s
			}
		}
	}
	env := map[string]string{}
	for _, s := range picked {
		for _, v := range serviceVars(s) {
			env[v.Name] = v.Value
		}
	}
	return env
}

// serviceIPSet is Kubernetes' IsServiceIPSet.
func serviceIPSet(s *corev1.Service) bool {
	return s.Spec.ClusterIP != "" && s.Spec.ClusterIP != corev1.ClusterIPNone
}

// serviceVars are Kubernetes' envvars.FromServices for one Service: NAME_SERVICE_HOST,
// NAME_SERVICE_PORT (the first port), NAME_SERVICE_PORT_PORTNAME for each named port,
// and the Docker link variables (makeLinkVariables).
func serviceVars(s *corev1.Service) []corev1.EnvVar {
	if len(s.Spec.Ports) == 0 {
		return nil // validation refuses it for a Service with a cluster IP
	}
	prefix := envVarName(s.Name)
	port := prefix + "_SERVICE_PORT"
	out := []corev1.EnvVar{
		{Name: prefix + "_SERVICE_HOST", Value: s.Spec.ClusterIP},
		{Name: port, Value: strconv.Itoa(int(s.Spec.Ports[0].Port))},
	}
	for _, sp := range s.Spec.Ports {
		if sp.Name != "" {
			out = append(out, corev1.EnvVar{Name: port + "_" + envVarName(sp.Name), Value: strconv.Itoa(int(sp.Port))})
		}
	}
	for i, sp := range s.Spec.Ports {
		proto := string(corev1.ProtocolTCP)
		if sp.Protocol != "" {
			proto = string(sp.Protocol)
		}
		lower := strings.ToLower(proto)
		url := lower + "://" + net.JoinHostPort(s.Spec.ClusterIP, strconv.Itoa(int(sp.Port)))
		if i == 0 {
			out = append(out, corev1.EnvVar{Name: prefix + "_PORT", Value: url}) // Docker special-cases the first port
		}
		pp := fmt.Sprintf("%s_PORT_%d_%s", prefix, sp.Port, strings.ToUpper(proto))
		out = append(out,
			corev1.EnvVar{Name: pp, Value: url},
			corev1.EnvVar{Name: pp + "_PROTO", Value: lower},
			corev1.EnvVar{Name: pp + "_PORT", Value: strconv.Itoa(int(sp.Port))},
			corev1.EnvVar{Name: pp + "_ADDR", Value: s.Spec.ClusterIP})
	}
	return out
}

// envVarName is Kubernetes' makeEnvVariableName: upper case, '-' as '_'.
func envVarName(s string) string { return strings.ToUpper(strings.ReplaceAll(s, "-", "_")) }

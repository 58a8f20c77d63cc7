package kubelet

import (
	"context"
	"maps"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func svc(ns, name, ip string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.ServiceSpec{ClusterIP: ip, Ports: ports}}
}

// The variables of Services, as Kubernetes' envvars.FromServices names them, and which
// Services a pod gets (getServiceEnvVarMap).
func TestServiceEnv(t *testing.T) {
	services := []*corev1.Service{
		svc("app", "foo-bar", "1.2.3.4", corev1.ServicePort{Port: 8080, Protocol: corev1.ProtocolTCP}),
		svc("app", "super-duper", "9.8.7.6",
			corev1.ServicePort{Name: "u-d-p", Port: 8081, Protocol: corev1.ProtocolUDP},
			corev1.ServicePort{Name: "t-c-p", Port: 8082}), // no protocol: TCP
		svc("app", "v6", "2001:db8::1", corev1.ServicePort{Name: "http", Port: 80, Protocol: corev1.ProtocolSCTP}),
		svc("app", "headless", corev1.ClusterIPNone, corev1.ServicePort{Port: 80}),
		{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "external"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "example.com"}},
		svc("other", "elsewhere", "5.5.5.5", corev1.ServicePort{Port: 1}),
		svc("default", "kubernetes", "10.96.0.1", corev1.ServicePort{Name: "https", Port: 443, Protocol: corev1.ProtocolTCP}),
	}
	kubernetes := map[string]string{
		"KUBERNETES_SERVICE_HOST":       "10.96.0.1",
		"KUBERNETES_SERVICE_PORT":       "443",
		"KUBERNETES_SERVICE_PORT_HTTPS": "443",
		"KUBERNETES_PORT":               "tcp://10.96.0.1:443",
		"KUBERNETES_PORT_443_TCP":       "tcp://10.96.0.1:443",
		"KUBERNETES_PORT_443_TCP_PROTO": "tcp",
		"KUBERNETES_PORT_443_TCP_PORT":  "443",
		"KUBERNETES_PORT_443_TCP_ADDR":  "10.96.0.1",
	}
	app := map[string]string{
		"FOO_BAR_SERVICE_HOST":        "1.2.3.4",
		"FOO_BAR_SERVICE_PORT":        "8080",
		"FOO_BAR_PORT":                "tcp://1.2.3.4:8080",
		"FOO_BAR_PORT_8080_TCP":       "tcp://1.2.3.4:8080",
		"FOO_BAR_PORT_8080_TCP_PROTO": "tcp",
		"FOO_BAR_PORT_8080_TCP_PORT":  "8080",
		"FOO_BAR_PORT_8080_TCP_ADDR":  "1.2.3.4",

		"SUPER_DUPER_SERVICE_HOST":        "9.8.7.6",
		"SUPER_DUPER_SERVICE_PORT":        "8081",
		"SUPER_DUPER_SERVICE_PORT_U_D_P":  "8081",
		"SUPER_DUPER_SERVICE_PORT_T_C_P":  "8082",
		"SUPER_DUPER_PORT":                "udp://9.8.7.6:8081",
		"SUPER_DUPER_PORT_8081_UDP":       "udp://9.8.7.6:8081",
		"SUPER_DUPER_PORT_8081_UDP_PROTO": "udp",
		"SUPER_DUPER_PORT_8081_UDP_PORT":  "8081",
		"SUPER_DUPER_PORT_8081_UDP_ADDR":  "9.8.7.6",
		"SUPER_DUPER_PORT_8082_TCP":       "tcp://9.8.7.6:8082",
		"SUPER_DUPER_PORT_8082_TCP_PROTO": "tcp",
		"SUPER_DUPER_PORT_8082_TCP_PORT":  "8082",
		"SUPER_DUPER_PORT_8082_TCP_ADDR":  "9.8.7.6",

		"V6_SERVICE_HOST":       "2001:db8::1",
		"V6_SERVICE_PORT":       "80",
		"V6_SERVICE_PORT_HTTP":  "80",
		"V6_PORT":               "sctp://[2001:db8::1]:80",
		"V6_PORT_80_SCTP":       "sctp://[2001:db8::1]:80",
		"V6_PORT_80_SCTP_PROTO": "sctp",
		"V6_PORT_80_SCTP_PORT":  "80",
		"V6_PORT_80_SCTP_ADDR":  "2001:db8::1",
	}
	both := maps.Clone(app)
	maps.Copy(both, kubernetes)
	// A Service named kubernetes in the pod's namespace is the pod's.
	own := []*corev1.Service{svc("app", "kubernetes", "1.1.1.1", corev1.ServicePort{Port: 80}), services[len(services)-1]}
	for _, tc := range []struct {
		name     string
		services []*corev1.Service
		ns       string
		links    bool
		want     map[string]string
	}{
		{"links", services, "app", true, both},
		{"no links: the kubernetes service only", services, "app", false, kubernetes},
		{"another namespace", services, "empty", true, kubernetes},
		{"no services", nil, "app", true, map[string]string{}},
		{"own kubernetes service", own, "app", true, map[string]string{
			"KUBERNETES_SERVICE_HOST": "1.1.1.1", "KUBERNETES_SERVICE_PORT": "80", "KUBERNETES_PORT": "tcp://1.1.1.1:80",
			"KUBERNETES_PORT_80_TCP": "tcp://1.1.1.1:80", "KUBERNETES_PORT_80_TCP_PROTO": "tcp", "KUBERNETES_PORT_80_TCP_PORT": "80",
			"KUBERNETES_PORT_80_TCP_ADDR": "1.1.1.1"}},
		{"own kubernetes service, no links", own, "app", false, kubernetes},
	} {
		if got := serviceEnv(tc.services, tc.ns, tc.links); !maps.Equal(got, tc.want) {
			t.Errorf("%s:\n got %v\nwant %v", tc.name, got, tc.want)
		}
	}
}

// A container's own variables win over the services' ($(VAR) sees its own first), and
// the services' come after them, in name order.
func TestContainerEnvServiceLinks(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "p"}}
	c := &corev1.Container{Name: "c", Env: []corev1.EnvVar{
		{Name: "FOO_SERVICE_HOST", Value: "mine"},
		{Name: "URL", Value: "http://$(FOO_SERVICE_HOST):$(FOO_SERVICE_PORT)/"},
	}}
	services := map[string]string{"FOO_SERVICE_HOST": "1.2.3.4", "FOO_SERVICE_PORT": "80", "BAR_SERVICE_HOST": "5.6.7.8"}
	res, err := containerEnv(context.Background(), pod, c, nil, "10.0.0.1", "10.0.0.2", nil, services)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"FOO_SERVICE_HOST=mine", "URL=http://mine:80/", "BAR_SERVICE_HOST=5.6.7.8", "FOO_SERVICE_PORT=80"}
	if !slices.Equal(res.env, want) {
		t.Errorf("env %q, want %q", res.env, want)
	}
}

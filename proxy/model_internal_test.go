package proxy

import (
	"fmt"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// TestServicePortsPolicies: which endpoints a Service port has on every node and on
// the proxy's, for each traffic policy; the health check node port's count.
func TestServicePortsPolicies(t *testing.T) {
	type e struct {
		ip, node           string
		ready, terminating bool
	}
	mk := func(etp corev1.ServiceExternalTrafficPolicy, itp corev1.ServiceInternalTrafficPolicy, typ corev1.ServiceType) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
			Spec: corev1.ServiceSpec{Type: typ, ClusterIP: "10.43.0.5", ExternalTrafficPolicy: etp, InternalTrafficPolicy: &itp,
				HealthCheckNodePort: 32000, Ports: []corev1.ServicePort{{Name: "http", Port: 80, NodePort: 30080}}}}
	}
	for _, tc := range []struct {
		name                      string
		svc                       *corev1.Service
		eps                       []e
		internal, external, local string
		localReady                int
		healthCheck               uint16
	}{
		{"Cluster policies", mk(corev1.ServiceExternalTrafficPolicyCluster, corev1.ServiceInternalTrafficPolicyCluster, corev1.ServiceTypeNodePort),
			[]e{{"10.42.0.2", "a", true, false}, {"10.42.1.2", "b", true, false}},
			"[10.42.0.2:8080 10.42.1.2:8080]", "[10.42.0.2:8080 10.42.1.2:8080]", "[10.42.0.2:8080]", 1, 0},
		{"external Local", mk(corev1.ServiceExternalTrafficPolicyLocal, corev1.ServiceInternalTrafficPolicyCluster, corev1.ServiceTypeNodePort),
			[]e{{"10.42.0.2", "a", true, false}, {"10.42.1.2", "b", true, false}},
			"[10.42.0.2:8080 10.42.1.2:8080]", "[10.42.0.2:8080]", "[10.42.0.2:8080]", 1, 0},
		{"internal Local", mk(corev1.ServiceExternalTrafficPolicyCluster, corev1.ServiceInternalTrafficPolicyLocal, corev1.ServiceTypeNodePort),
			[]e{{"10.42.0.2", "a", true, false}, {"10.42.1.2", "b", true, false}},
			"[10.42.0.2:8080]", "[10.42.0.2:8080 10.42.1.2:8080]", "[10.42.0.2:8080]", 1, 0},
		{"no local endpoint", mk(corev1.ServiceExternalTrafficPolicyLocal, corev1.ServiceInternalTrafficPolicyLocal, corev1.ServiceTypeLoadBalancer),
			[]e{{"10.42.0.2", "a", false, false}, {"10.42.1.2", "b", true, false}, {"10.42.0.3", "", true, false}},
			"[]", "[]", "[]", 0, 32000},
		{"local terminating when none is ready", mk(corev1.ServiceExternalTrafficPolicyLocal, corev1.ServiceInternalTrafficPolicyCluster, corev1.ServiceTypeLoadBalancer),
			[]e{{"10.42.0.2", "a", false, true}, {"10.42.1.2", "b", true, false}},
			"[10.42.1.2:8080]", "[10.42.0.2:8080]", "[10.42.0.2:8080]", 0, 32000},
		{"health check only for a LoadBalancer", mk(corev1.ServiceExternalTrafficPolicyLocal, corev1.ServiceInternalTrafficPolicyCluster, corev1.ServiceTypeNodePort),
			[]e{{"10.42.0.2", "a", true, false}, {"10.42.0.4", "a", true, false}},
			"[10.42.0.2:8080 10.42.0.4:8080]", "[10.42.0.2:8080 10.42.0.4:8080]", "[10.42.0.2:8080 10.42.0.4:8080]", 2, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			es := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-1",
				Labels: map[string]string{discoveryv1.LabelServiceName: "web"}}, AddressType: discoveryv1.AddressTypeIPv4,
				Ports: []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080)}}}
			for _, x := range tc.eps {
				ep := discoveryv1.Endpoint{Addresses: []string{x.ip}, Conditions: discoveryv1.EndpointConditions{
					Ready: ptr.To(x.ready), Serving: ptr.To(x.ready || x.terminating), Terminating: ptr.To(x.terminating)}}
				if x.node != "" {
					ep.NodeName = ptr.To(x.node)
				}
				es.Endpoints = append(es.Endpoints, ep)
			}
			got, _ := servicePorts("a", []*corev1.Service{tc.svc}, []*discoveryv1.EndpointSlice{es}, nil)
			sp := got["default/web:http"]
			if sp == nil {
				t.Fatalf("no service port: %v", got)
			}
			str := func(eps []endpoint) string {
				s := make([]string, len(eps))
				for i, ep := range eps {
					s[i] = ep.String()
				}
				return fmt.Sprint(s)
			}
			if g := str(sp.internal()); g != tc.internal {
				t.Errorf("internal endpoints %s, want %s", g, tc.internal)
			}
			if g := str(sp.external()); g != tc.external {
				t.Errorf("external endpoints %s, want %s", g, tc.external)
			}
			if g := str(sp.local); g != tc.local {
				t.Errorf("local endpoints %s, want %s", g, tc.local)
			}
			if sp.localReady != tc.localReady || sp.healthCheckNodePort != tc.healthCheck {
				t.Errorf("local ready %d, health check node port %d; want %d, %d", sp.localReady, sp.healthCheckNodePort, tc.localReady, tc.healthCheck)
			}
		})
	}
}

// TestServicePortsCache: a Service whose object and slices are unchanged keeps its
// servicePorts (the same pointers); a new slice object makes them anew.
func TestServicePortsCache(t *testing.T) {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: corev1.ServiceSpec{ClusterIP: "10.43.0.5", Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}
	es := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-1",
		Labels: map[string]string{discoveryv1.LabelServiceName: "web"}}, AddressType: discoveryv1.AddressTypeIPv4,
		Ports:     []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080)}},
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.42.0.2"}}}}
	first, cache := servicePorts("a", []*corev1.Service{svc}, []*discoveryv1.EndpointSlice{es}, nil)
	again, cache := servicePorts("a", []*corev1.Service{svc}, []*discoveryv1.EndpointSlice{es}, cache)
	if first["default/web:http"] != again["default/web:http"] {
		t.Fatal("unchanged Service: its servicePort made anew")
	}
	es2 := es.DeepCopy()
	es2.Endpoints = append(es2.Endpoints, discoveryv1.Endpoint{Addresses: []string{"10.42.0.3"}})
	changed, _ := servicePorts("a", []*corev1.Service{svc}, []*discoveryv1.EndpointSlice{es2}, cache)
	sp := changed["default/web:http"]
	if sp == again["default/web:http"] || len(sp.endpoints) != 2 || !slices.ContainsFunc(sp.endpoints, func(e endpoint) bool { return e.String() == "10.42.0.3:8080" }) {
		t.Fatalf("changed slice: %+v, want a new servicePort with both endpoints", sp)
	}
}

// TestServicePortsMirrored: a Service without a selector gets the endpoints of the
// slices the mirroring controller makes of its Endpoints (only the ready condition
// set, as Kubernetes' mirror sets it).
func TestServicePortsMirrored(t *testing.T) {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "ext"},
		Spec: corev1.ServiceSpec{ClusterIP: "10.43.0.7", Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}
	es := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "ext-abcde",
		Labels: map[string]string{discoveryv1.LabelServiceName: "ext", discoveryv1.LabelManagedBy: "endpointslicemirroring-controller.k8s.io"}},
		AddressType: discoveryv1.AddressTypeIPv4, Ports: []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080)}},
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"192.0.2.1"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}},
			{Addresses: []string{"192.0.2.2"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(false)}}}}
	got, _ := servicePorts("a", []*corev1.Service{svc}, []*discoveryv1.EndpointSlice{es}, nil)
	sp := got["default/ext:http"]
	if sp == nil || len(sp.internal()) != 1 || sp.internal()[0].String() != "192.0.2.1:8080" {
		t.Fatalf("service port %+v, want the ready mirrored endpoint 192.0.2.1:8080", sp)
	}
}

package validation

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	nodev1 "k8s.io/api/node/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/kinds"
)

func runtimeClass(mut func(*nodev1.RuntimeClass)) *nodev1.RuntimeClass {
	rc := &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "kata"}, Handler: "kata"}
	if mut != nil {
		mut(rc)
	}
	return rc
}

func ingressClass(mut func(*networkingv1.IngressClassSpec)) *networkingv1.IngressClass {
	ic := &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "nginx"}, Spec: networkingv1.IngressClassSpec{Controller: "k8s.io/ingress-nginx"}}
	if mut != nil {
		mut(&ic.Spec)
	}
	return ic
}

func ingress(mut func(*networkingv1.Ingress)) *networkingv1.Ingress {
	prefix := networkingv1.PathTypePrefix
	ing := &networkingv1.Ingress{ObjectMeta: meta("web"), Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{
		Host: "web.example.com", IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
			Path: "/", PathType: &prefix, Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
				Name: "web", Port: networkingv1.ServiceBackendPort{Name: "http"}}}}}}}}}}}
	if mut != nil {
		mut(ing)
	}
	return ing
}

func firstPath(ing *networkingv1.Ingress) *networkingv1.HTTPIngressPath {
	return &ing.Spec.Rules[0].HTTP.Paths[0]
}

// TestValidatePassiveKinds: PodTemplate, RuntimeClass, IngressClass and Ingress are
// checked as Kubernetes checks them, in its words.
func TestValidatePassiveKinds(t *testing.T) {
	for _, tc := range []struct {
		name string
		obj  kinds.Object
		want []string
	}{
		{"pod template", &corev1.PodTemplate{ObjectMeta: meta("t"), Template: template()}, nil},
		{"pod template of any restart policy", &corev1.PodTemplate{ObjectMeta: meta("t"), Template: func() corev1.PodTemplateSpec {
			t := template()
			t.Spec.RestartPolicy = corev1.RestartPolicyNever
			return t
		}()}, nil},
		{"pod template without containers", &corev1.PodTemplate{ObjectMeta: meta("t")},
			[]string{"template.spec.containers: Required value"}},
		{"pod template labels", &corev1.PodTemplate{ObjectMeta: meta("t"), Template: func() corev1.PodTemplateSpec {
			t := template()
			t.Labels = map[string]string{"app": "a b"}
			return t
		}()}, []string{`template.metadata.labels: Invalid value: "a b"`}},

		{"runtime class", runtimeClass(func(rc *nodev1.RuntimeClass) {
			rc.Overhead = &nodev1.Overhead{PodFixed: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")}}
			rc.Scheduling = &nodev1.Scheduling{NodeSelector: map[string]string{"sandbox": "kata"},
				Tolerations: []corev1.Toleration{{Key: "sandbox", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}}
		}), nil},
		{"runtime class handler", runtimeClass(func(rc *nodev1.RuntimeClass) { rc.Handler = "Kata_1" }),
			[]string{`handler: Invalid value: "Kata_1": a lowercase RFC 1123 label must consist of`}},
		{"runtime class without handler", runtimeClass(func(rc *nodev1.RuntimeClass) { rc.Handler = "" }),
			[]string{`handler: Invalid value: "": a lowercase RFC 1123 label must consist of`}},
		{"runtime class overhead", runtimeClass(func(rc *nodev1.RuntimeClass) {
			rc.Overhead = &nodev1.Overhead{PodFixed: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("-1"), "pods": resource.MustParse("1")}}
		}), []string{"overhead.podFixed[cpu]: Invalid value: \"-1\": must be greater than or equal to 0",
			`overhead.podFixed[pods]: Invalid value: "pods": must be a standard resource for containers`}},
		{"runtime class duplicate toleration", runtimeClass(func(rc *nodev1.RuntimeClass) {
			t := corev1.Toleration{Key: "k", Operator: corev1.TolerationOpExists}
			rc.Scheduling = &nodev1.Scheduling{Tolerations: []corev1.Toleration{t, t}}
		}), []string{`scheduling.tolerations[1]: Duplicate value:`}},
		{"pod runtime class name and overhead", pod(func(p *corev1.Pod) {
			p.Spec.RuntimeClassName = new("Kata")
			p.Spec.Overhead = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("-1Mi")}
		}), []string{`spec.runtimeClassName: Invalid value: "Kata": a lowercase RFC 1123 subdomain`,
			`spec.overhead[memory]: Invalid value: "-1Mi": must be greater than or equal to 0`}},

		{"ingress class", ingressClass(nil), nil},
		{"ingress class controller", ingressClass(func(s *networkingv1.IngressClassSpec) { s.Controller = "nginx" }),
			[]string{`spec.controller: Invalid value: "nginx": must be a domain-prefixed path (such as "acme.io/foo")`}},
		{"ingress class namespaced parameters", ingressClass(func(s *networkingv1.IngressClassSpec) {
			s.Parameters = &networkingv1.IngressClassParametersReference{Kind: "P", Name: "p", Scope: new("Namespace")}
		}), []string{"spec.parameters.namespace: Required value: `parameters.scope` is set to 'Namespace'"}},
		{"ingress class cluster parameters", ingressClass(func(s *networkingv1.IngressClassSpec) {
			s.Parameters = &networkingv1.IngressClassParametersReference{Name: "p", Scope: new("Cluster"), Namespace: new("ns")}
		}), []string{"spec.parameters.kind: Required value: kind is required", "spec.parameters.namespace: Forbidden: `parameters.scope` is set to 'Cluster'"}},
		{"ingress class scope", ingressClass(func(s *networkingv1.IngressClassSpec) {
			s.Parameters = &networkingv1.IngressClassParametersReference{Kind: "P", Name: "p", Scope: new("Galaxy")}
		}), []string{`spec.parameters.scope: Unsupported value: "Galaxy": supported values: "Cluster", "Namespace"`}},

		{"ingress", ingress(nil), nil},
		{"ingress with nothing", ingress(func(i *networkingv1.Ingress) { i.Spec.Rules = nil }),
			[]string{"spec: Invalid value: null: either `defaultBackend` or `rules` must be specified"}},
		{"ingress host", ingress(func(i *networkingv1.Ingress) { i.Spec.Rules[0].Host = "10.0.0.1" }),
			[]string{`spec.rules[0].host: Invalid value: "10.0.0.1": must be a DNS name, not an IP address`}},
		{"ingress wildcard host", ingress(func(i *networkingv1.Ingress) { i.Spec.Rules[0].Host = "*.example.com" }), nil},
		{"ingress path", ingress(func(i *networkingv1.Ingress) { firstPath(i).Path = "/a/../b" }),
			[]string{`spec.rules[0].http.paths[0].path: Invalid value: "/a/../b": must not contain '/../'`}},
		{"ingress relative path", ingress(func(i *networkingv1.Ingress) { firstPath(i).Path = "a" }),
			[]string{`spec.rules[0].http.paths[0].path: Invalid value: "a": must be an absolute path`}},
		{"ingress path type", ingress(func(i *networkingv1.Ingress) { firstPath(i).PathType = nil }),
			[]string{"spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified"}},
		{"ingress backend port", ingress(func(i *networkingv1.Ingress) { firstPath(i).Backend.Service.Port.Number = 80 }),
			[]string{`spec.rules[0].http.paths[0].backend: Invalid value: "": cannot set both port name & port number`}},
		{"ingress no backend", ingress(func(i *networkingv1.Ingress) { firstPath(i).Backend.Service = nil }),
			[]string{`spec.rules[0].http.paths[0].backend: Invalid value: "": resource or service backend is required`}},
		{"ingress tls", ingress(func(i *networkingv1.Ingress) {
			i.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{"Web.example.com"}, SecretName: "web-tls"}}
		}), []string{`spec.tls[0].hosts[0]: Invalid value: "Web.example.com": a lowercase RFC 1123 subdomain`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkErrors(t, Validate(tc.obj), tc.want)
		})
	}
}

// TestValidatePassiveKindsUpdate: a RuntimeClass's handler and an IngressClass's
// controller are fixed; an Ingress's status is checked as its load balancer's.
func TestValidatePassiveKindsUpdate(t *testing.T) {
	rc := runtimeClass(func(rc *nodev1.RuntimeClass) { rc.Handler = "crun" })
	checkErrors(t, ValidateUpdate(runtimeClass(nil), rc), []string{`handler: Invalid value: "crun": field is immutable`})
	ic := ingressClass(func(s *networkingv1.IngressClassSpec) { s.Controller = "example.com/other" })
	checkErrors(t, ValidateUpdate(ingressClass(nil), ic), []string{`spec.controller: Invalid value: "example.com/other": field is immutable`})
	st := ingress(func(i *networkingv1.Ingress) {
		i.Status.LoadBalancer.Ingress = []networkingv1.IngressLoadBalancerIngress{{IP: "10.0.0.300"}, {Hostname: "10.0.0.1"}}
	})
	checkErrors(t, ValidateStatus(st), []string{`status.loadBalancer.ingress[0].ip: Invalid value: "10.0.0.300"`,
		`status.loadBalancer.ingress[1].hostname: Invalid value: "10.0.0.1": must be a DNS name, not an IP address`})
}

// TestDefaultIngressClassScope: parameters are cluster-scoped unless said otherwise.
func TestDefaultIngressClassScope(t *testing.T) {
	ic := ingressClass(func(s *networkingv1.IngressClassSpec) {
		s.Parameters = &networkingv1.IngressClassParametersReference{Kind: "P", Name: "p"}
	})
	Default(ic)
	if s := ic.Spec.Parameters.Scope; s == nil || *s != "Cluster" {
		t.Errorf("scope %v, want Cluster", s)
	}
}

package validation

import (
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	nodev1 "k8s.io/api/node/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/api/validation/path"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// The kinds Kubernetes stores for others to act on (PodTemplate, IngressClass, Ingress)
// and RuntimeClass, whose meaning the API server's admission and the kubelet give it:
// Kubernetes' validation of each (pkg/apis/core, node and networking validation).

// validatePodTemplateObject is Kubernetes' ValidatePodTemplate: a template of any restart
// policy (a controller's own validation narrows it, not the stored template's).
func validatePodTemplateObject(pt *corev1.PodTemplate) field.ErrorList {
	p := field.NewPath("template")
	errs := validateTemplateMeta(&pt.Template.ObjectMeta, p.Child("metadata"))
	errs = append(errs, validatePodSpec(&pt.Template.Spec, p.Child("spec"))...)
	if len(pt.Template.Spec.EphemeralContainers) > 0 {
		errs = append(errs, field.Forbidden(p.Child("spec", "ephemeralContainers"), "ephemeral containers not allowed in pod template"))
	}
	return errs
}

// validateOverhead is Kubernetes' check of a pod's or a RuntimeClass's overhead: a
// container's limits' rules.
func validateOverhead(overhead corev1.ResourceList, p *field.Path) field.ErrorList {
	errs := validateResourceList(overhead, p)
	var buf [resourceNamesOnStack]corev1.ResourceName
	for _, name := range resourceNames(overhead, buf[:0]) {
		errs = append(errs, validateContainerResource(name, overhead[name], p, true)...)
	}
	return errs
}

// validateRuntimeClass is Kubernetes' ValidateRuntimeClass: the handler is a DNS label
// (it names the runtime's configuration on the node).
func validateRuntimeClass(rc *nodev1.RuntimeClass) field.ErrorList {
	errs := invalidEach(field.NewPath("handler"), rc.Handler, apivalidation.NameIsDNSLabel(rc.Handler, false))
	if rc.Overhead != nil {
		errs = append(errs, validateOverhead(rc.Overhead.PodFixed, field.NewPath("overhead", "podFixed"))...)
	}
	if s := rc.Scheduling; s != nil {
		p := field.NewPath("scheduling")
		errs = append(errs, metav1validation.ValidateLabels(s.NodeSelector, p.Child("nodeSelector"))...)
		seen := map[corev1.Toleration]bool{}
		for i, t := range s.Tolerations {
			tp := p.Child("tolerations").Index(i)
			errs = append(errs, validateToleration(&s.Tolerations[i], tp)...)
			key := corev1.Toleration{Key: t.Key, Operator: t.Operator, Value: t.Value, Effect: t.Effect}
			if seen[key] {
				errs = append(errs, field.Duplicate(tp, t))
			}
			seen[key] = true
		}
	}
	return errs
}

func validateRuntimeClassUpdate(old, rc *nodev1.RuntimeClass) field.ErrorList {
	return apivalidation.ValidateImmutableField(rc.Handler, old.Handler, field.NewPath("handler"))
}

// maxIngressClassController is the longest controller name Kubernetes accepts.
const maxIngressClassController = 250

// ingressClassScopes are the scopes of an IngressClass's parameters.
var ingressClassScopes = []string{networkingv1.IngressClassParametersReferenceScopeCluster, networkingv1.IngressClassParametersReferenceScopeNamespace}

// defaultIngressClass is Kubernetes' SetDefaults_IngressClass: parameters are
// cluster-scoped unless said otherwise.
func defaultIngressClass(ic *networkingv1.IngressClass) {
	if ic.Spec.Parameters != nil && ic.Spec.Parameters.Scope == nil {
		ic.Spec.Parameters.Scope = new(networkingv1.IngressClassParametersReferenceScopeCluster)
	}
}

// validateIngressClass is Kubernetes' ValidateIngressClass.
func validateIngressClass(ic *networkingv1.IngressClass) field.ErrorList {
	p := field.NewPath("spec")
	var errs field.ErrorList
	if len(ic.Spec.Controller) > maxIngressClassController {
		errs = append(errs, field.TooLong(p.Child("controller"), "", maxIngressClassController))
	}
	errs = append(errs, utilvalidation.IsDomainPrefixedPath(p.Child("controller"), ic.Spec.Controller)...)
	params := ic.Spec.Parameters
	if params == nil {
		return errs
	}
	pp := p.Child("parameters")
	errs = append(errs, validateTypedLocalObjectReference(params.APIGroup, params.Kind, params.Name, pp)...)
	if params.Scope == nil {
		return append(errs, field.Required(pp.Child("scope"), ""))
	}
	switch scope := *params.Scope; scope {
	case networkingv1.IngressClassParametersReferenceScopeNamespace:
		if params.Namespace == nil {
			errs = append(errs, field.Required(pp.Child("namespace"), "`parameters.scope` is set to 'Namespace'"))
		} else {
			errs = append(errs, invalidEach(pp.Child("namespace"), *params.Namespace, apivalidation.ValidateNamespaceName(*params.Namespace, false))...)
		}
	case networkingv1.IngressClassParametersReferenceScopeCluster:
		if params.Namespace != nil {
			errs = append(errs, field.Forbidden(pp.Child("namespace"), "`parameters.scope` is set to 'Cluster'"))
		}
	default:
		errs = append(errs, field.NotSupported(pp.Child("scope"), scope, ingressClassScopes))
	}
	return errs
}

func validateIngressClassUpdate(old, ic *networkingv1.IngressClass) field.ErrorList {
	return apivalidation.ValidateImmutableField(ic.Spec.Controller, old.Spec.Controller, field.NewPath("spec", "controller"))
}

// validateTypedLocalObjectReference is Kubernetes' validateIngressTypedLocalObjectReference.
func validateTypedLocalObjectReference(group *string, kind, name string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if group != nil {
		errs = append(errs, invalidEach(p.Child("apiGroup"), *group, utilvalidation.IsDNS1123Subdomain(*group))...)
	}
	if kind == "" {
		errs = append(errs, field.Required(p.Child("kind"), "kind is required"))
	} else {
		errs = append(errs, invalidEach(p.Child("kind"), kind, path.IsValidPathSegmentName(kind))...)
	}
	if name == "" {
		errs = append(errs, field.Required(p.Child("name"), "name is required"))
	} else {
		errs = append(errs, invalidEach(p.Child("name"), name, path.IsValidPathSegmentName(name))...)
	}
	return errs
}

// IngressClassAnnotation is the class an Ingress named before spec.ingressClassName.
const IngressClassAnnotation = "kubernetes.io/ingress.class"

// Paths of an Ingress rule may not hold these (Kubernetes' invalidPathSequences and
// invalidPathSuffixes).
var (
	invalidPathSequences = []string{"//", "/./", "/../", "%2f", "%2F"}
	invalidPathSuffixes  = []string{"/..", "/."}
	pathTypes            = []networkingv1.PathType{networkingv1.PathTypeExact, networkingv1.PathTypeImplementationSpecific, networkingv1.PathTypePrefix}
)

// validateIngress is Kubernetes' ValidateIngressCreate (an update is held to the same
// rules).
func validateIngress(ing *networkingv1.Ingress) field.ErrorList {
	p := field.NewPath("spec")
	spec := &ing.Spec
	var errs field.ErrorList
	if len(spec.Rules) == 0 && spec.DefaultBackend == nil {
		errs = append(errs, field.Invalid(p, spec.Rules, "either `defaultBackend` or `rules` must be specified"))
	}
	if spec.DefaultBackend != nil {
		errs = append(errs, validateIngressBackend(spec.DefaultBackend, p.Child("defaultBackend"))...)
	}
	for i, rule := range spec.Rules {
		rp := p.Child("rules").Index(i)
		if rule.Host != "" {
			errs = append(errs, validateIngressHost(rule.Host, rp.Child("host"), true)...)
		}
		if rule.HTTP == nil {
			continue
		}
		hp := rp.Child("http")
		if len(rule.HTTP.Paths) == 0 {
			errs = append(errs, field.Required(hp.Child("paths"), ""))
		}
		for j := range rule.HTTP.Paths {
			errs = append(errs, validateIngressPath(&rule.HTTP.Paths[j], hp.Child("paths").Index(j))...)
		}
	}
	for i, tls := range spec.TLS {
		tp := p.Child("tls").Index(i)
		for j, host := range tls.Hosts {
			errs = append(errs, validateIngressHost(host, tp.Child("hosts").Index(j), false)...)
		}
		if tls.SecretName != "" {
			errs = append(errs, invalidEach(tp.Child("secretName"), tls.SecretName, apivalidation.NameIsDNSSubdomain(tls.SecretName, false))...)
		}
	}
	if spec.IngressClassName != nil {
		errs = append(errs, invalidEach(p.Child("ingressClassName"), *spec.IngressClassName, apivalidation.NameIsDNSSubdomain(*spec.IngressClassName, false))...)
		if class, ok := ing.Annotations[IngressClassAnnotation]; ok && class != *spec.IngressClassName {
			errs = append(errs, field.Invalid(field.NewPath("annotations").Child(IngressClassAnnotation), class, "must match `ingressClassName` when both are specified"))
		}
	}
	return errs
}

// validateIngressHost: a DNS name, or a wildcard one (*.example.com); a rule's host is
// not an IP address.
func validateIngressHost(host string, p *field.Path, rule bool) field.ErrorList {
	var errs field.ErrorList
	if _, err := netip.ParseAddr(host); rule && err == nil {
		errs = append(errs, field.Invalid(p, host, "must be a DNS name, not an IP address"))
	}
	if strings.Contains(host, "*") {
		return append(errs, invalidEach(p, host, utilvalidation.IsWildcardDNS1123Subdomain(host))...)
	}
	return append(errs, invalidEach(p, host, utilvalidation.IsDNS1123Subdomain(host))...)
}

func validateIngressPath(hp *networkingv1.HTTPIngressPath, p *field.Path) field.ErrorList {
	if hp.PathType == nil {
		return field.ErrorList{field.Required(p.Child("pathType"), "pathType must be specified")}
	}
	var errs field.ErrorList
	switch *hp.PathType {
	case networkingv1.PathTypeExact, networkingv1.PathTypePrefix:
		if !strings.HasPrefix(hp.Path, "/") {
			errs = append(errs, field.Invalid(p.Child("path"), hp.Path, "must be an absolute path"))
		}
		for _, seq := range invalidPathSequences {
			if strings.Contains(hp.Path, seq) {
				errs = append(errs, field.Invalid(p.Child("path"), hp.Path, fmt.Sprintf("must not contain '%s'", seq)))
			}
		}
		for _, suffix := range invalidPathSuffixes {
			if strings.HasSuffix(hp.Path, suffix) {
				errs = append(errs, field.Invalid(p.Child("path"), hp.Path, fmt.Sprintf("cannot end with '%s'", suffix)))
			}
		}
	case networkingv1.PathTypeImplementationSpecific:
		if hp.Path != "" && !strings.HasPrefix(hp.Path, "/") {
			errs = append(errs, field.Invalid(p.Child("path"), hp.Path, "must be an absolute path"))
		}
	default:
		errs = append(errs, oneOfChild(p, "pathType", *hp.PathType, pathTypes...)...)
	}
	return append(errs, validateIngressBackend(&hp.Backend, p.Child("backend"))...)
}

// validateIngressBackend: a Service (by name, and port by name or number) or another
// resource, not both.
func validateIngressBackend(b *networkingv1.IngressBackend, p *field.Path) field.ErrorList {
	switch {
	case b.Resource != nil && b.Service != nil:
		return field.ErrorList{field.Invalid(p, "", "cannot set both resource and service backends")}
	case b.Resource != nil:
		return validateTypedLocalObjectReference(b.Resource.APIGroup, b.Resource.Kind, b.Resource.Name, p.Child("resource"))
	case b.Service == nil:
		return field.ErrorList{field.Invalid(p, "", "resource or service backend is required")}
	}
	var errs field.ErrorList
	svc := b.Service
	if svc.Name == "" {
		errs = append(errs, field.Required(p.Child("service", "name"), ""))
	} else {
		errs = append(errs, invalidEach(p.Child("service", "name"), svc.Name, apivalidation.NameIsDNS1035Label(svc.Name, false))...)
	}
	port := p.Child("service", "port")
	switch {
	case svc.Port.Name != "" && svc.Port.Number != 0:
		errs = append(errs, field.Invalid(p, "", "cannot set both port name & port number"))
	case svc.Port.Name != "":
		errs = append(errs, invalidEach(port.Child("name"), svc.Port.Name, utilvalidation.IsValidPortName(svc.Port.Name))...)
	case svc.Port.Number != 0:
		errs = append(errs, invalidEach(port.Child("number"), svc.Port.Number, utilvalidation.IsValidPortNum(int(svc.Port.Number)))...)
	default:
		errs = append(errs, field.Required(p, "port name or number is required"))
	}
	return errs
}

// validateIngressStatus is Kubernetes' ValidateIngressLoadBalancerStatus.
func validateIngressStatus(st *networkingv1.IngressStatus, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, in := range st.LoadBalancer.Ingress {
		errs = append(errs, validateLoadBalancerPoint(in.IP, in.Hostname, p.Child("loadBalancer", "ingress").Index(i))...)
	}
	return errs
}

package validation

import (
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Service defaults, as Kubernetes'.
const (
	// DefaultClientIPTimeoutSeconds is sessionAffinityConfig.clientIP.timeoutSeconds
	// when sessionAffinity is ClientIP (3 hours).
	DefaultClientIPTimeoutSeconds = 10800
	// MaxClientIPTimeoutSeconds is the longest affinity (a day).
	MaxClientIPTimeoutSeconds = 86400
)

var (
	serviceTypes     = []corev1.ServiceType{corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeExternalName}
	sessionAffinites = []corev1.ServiceAffinity{corev1.ServiceAffinityClientIP, corev1.ServiceAffinityNone}
	trafficPolicies  = []corev1.ServiceExternalTrafficPolicy{corev1.ServiceExternalTrafficPolicyCluster, corev1.ServiceExternalTrafficPolicyLocal}
	internalPolicies = []corev1.ServiceInternalTrafficPolicy{corev1.ServiceInternalTrafficPolicyCluster, corev1.ServiceInternalTrafficPolicyLocal}
	ipFamilyPolicies = []corev1.IPFamilyPolicy{corev1.IPFamilyPolicySingleStack}
)

// ServiceNeedsClusterIP says a Service of this type has a cluster IP ("None" for a
// headless one): every type but ExternalName.
func ServiceNeedsClusterIP(svc *corev1.Service) bool {
	return svc.Spec.Type != corev1.ServiceTypeExternalName
}

// ServiceNeedsNodePorts says the Service's ports get node ports: NodePort, and
// LoadBalancer unless allocateLoadBalancerNodePorts is false.
func ServiceNeedsNodePorts(svc *corev1.Service) bool {
	switch svc.Spec.Type {
	case corev1.ServiceTypeNodePort:
		return true
	case corev1.ServiceTypeLoadBalancer:
		return svc.Spec.AllocateLoadBalancerNodePorts == nil || *svc.Spec.AllocateLoadBalancerNodePorts
	}
	return false
}

// ServiceNeedsHealthCheck says the Service has a health check node port: a
// LoadBalancer with externalTrafficPolicy Local (Kubernetes' NeedsHealthCheck).
func ServiceNeedsHealthCheck(svc *corev1.Service) bool {
	return svc.Spec.Type == corev1.ServiceTypeLoadBalancer && svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
}

// IsHeadless says the Service has no cluster IP: its DNS name resolves to its pods.
func IsHeadless(svc *corev1.Service) bool { return svc.Spec.ClusterIP == corev1.ClusterIPNone }

// defaultService fills what Kubernetes fills (SetDefaults_Service and the API server's
// service strategy). The cluster IP and node ports are the API server's allocation,
// not defaults.
func defaultService(svc *corev1.Service) {
	s := &svc.Spec
	if s.Type == "" {
		s.Type = corev1.ServiceTypeClusterIP
	}
	if s.SessionAffinity == "" {
		s.SessionAffinity = corev1.ServiceAffinityNone
	}
	if s.SessionAffinity == corev1.ServiceAffinityNone {
		// As Kubernetes' defaulting: a Service switched to None drops its ClientIP
		// configuration ("should be able to switch session affinity").
		s.SessionAffinityConfig = nil
	}
	if s.SessionAffinity == corev1.ServiceAffinityClientIP {
		if s.SessionAffinityConfig == nil {
			s.SessionAffinityConfig = &corev1.SessionAffinityConfig{}
		}
		if s.SessionAffinityConfig.ClientIP == nil {
			s.SessionAffinityConfig.ClientIP = &corev1.ClientIPConfig{}
		}
		if s.SessionAffinityConfig.ClientIP.TimeoutSeconds == nil {
			s.SessionAffinityConfig.ClientIP.TimeoutSeconds = new(int32(DefaultClientIPTimeoutSeconds))
		}
	}
	for i := range s.Ports {
		p := &s.Ports[i]
		if p.Protocol == "" {
			p.Protocol = corev1.ProtocolTCP
		}
		if p.TargetPort == (intstr.IntOrString{}) {
			p.TargetPort = intstr.FromInt32(p.Port)
		}
	}
	if s.Type == corev1.ServiceTypeNodePort || s.Type == corev1.ServiceTypeLoadBalancer {
		if s.ExternalTrafficPolicy == "" {
			s.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
		}
	}
	if s.Type == corev1.ServiceTypeLoadBalancer && s.AllocateLoadBalancerNodePorts == nil {
		s.AllocateLoadBalancerNodePorts = new(true)
	}
	if s.Type != corev1.ServiceTypeExternalName {
		if s.InternalTrafficPolicy == nil {
			s.InternalTrafficPolicy = new(corev1.ServiceInternalTrafficPolicyCluster)
		}
		if s.IPFamilyPolicy == nil {
			s.IPFamilyPolicy = new(corev1.IPFamilyPolicySingleStack)
		}
		if len(s.IPFamilies) == 0 {
			s.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
		}
		if s.ClusterIP != "" && len(s.ClusterIPs) == 0 {
			s.ClusterIPs = []string{s.ClusterIP}
		}
		if s.ClusterIP == "" && len(s.ClusterIPs) > 0 {
			s.ClusterIP = s.ClusterIPs[0]
		}
	}
}

// validateService is Kubernetes' ValidateService, for what Skiff supports: one IPv4
// cluster IP (or None), the four types, named and numbered ports.
func validateService(svc *corev1.Service) field.ErrorList {
	s := &svc.Spec
	p := field.NewPath("spec")
	var errs field.ErrorList
	errs = append(errs, oneOfChild(p, "type", s.Type, serviceTypes...)...)
	headless := IsHeadless(svc)

	if s.Type == corev1.ServiceTypeExternalName {
		if s.ClusterIP != "" || len(s.ClusterIPs) > 0 {
			errs = append(errs, field.Forbidden(p.Child("clusterIPs"), "may not be set for ExternalName services"))
		}
		name := strings.TrimSuffix(s.ExternalName, ".")
		if name == "" {
			errs = append(errs, field.Required(p.Child("externalName"), ""))
		} else {
			errs = append(errs, invalidEach(p.Child("externalName"), s.ExternalName, utilvalidation.IsDNS1123Subdomain(name))...)
		}
		if len(s.IPFamilies) > 0 {
			errs = append(errs, field.Forbidden(p.Child("ipFamilies"), "may not be set for ExternalName services"))
		}
		if s.IPFamilyPolicy != nil {
			errs = append(errs, field.Forbidden(p.Child("ipFamilyPolicy"), "may not be set for ExternalName services"))
		}
	} else {
		// externalName is not validated for the other types, as Kubernetes does not: an
		// ExternalName Service changed to another type may keep it (ignored).
		errs = append(errs, validateClusterIPs(s, p)...)
	}
	if len(s.Ports) == 0 && !headless && s.Type != corev1.ServiceTypeExternalName {
		errs = append(errs, field.Required(p.Child("ports"), ""))
	}
	if headless && (s.Type == corev1.ServiceTypeNodePort || s.Type == corev1.ServiceTypeLoadBalancer) {
		errs = append(errs, field.Invalid(p.Child("clusterIPs").Index(0), s.ClusterIP, fmt.Sprintf("may not be set to 'None' for %s services", s.Type)))
	}
	errs = append(errs, validateServicePorts(svc, p.Child("ports"))...)
	if s.Selector != nil && s.Type != corev1.ServiceTypeExternalName {
		errs = append(errs, metav1validation.ValidateLabels(s.Selector, p.Child("selector"))...)
	}

	errs = append(errs, oneOfChild(p, "sessionAffinity", s.SessionAffinity, sessionAffinites...)...)
	if s.SessionAffinity == corev1.ServiceAffinityClientIP {
		if c := s.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
			if t := *c.ClientIP.TimeoutSeconds; t <= 0 || t > MaxClientIPTimeoutSeconds {
				errs = append(errs, field.Invalid(p.Child("sessionAffinityConfig", "clientIP", "timeoutSeconds"), t,
					fmt.Sprintf("must be greater than 0 and less than %d", MaxClientIPTimeoutSeconds)))
			}
		}
	} else if s.SessionAffinityConfig != nil {
		errs = append(errs, field.Invalid(p.Child("sessionAffinityConfig"), s.SessionAffinityConfig,
			fmt.Sprintf("must not be set when session affinity is %s", s.SessionAffinity)))
	}

	external := s.Type == corev1.ServiceTypeNodePort || s.Type == corev1.ServiceTypeLoadBalancer
	if s.ExternalTrafficPolicy != "" {
		if !external {
			errs = append(errs, field.Invalid(p.Child("externalTrafficPolicy"), s.ExternalTrafficPolicy,
				"may only be set for externally-accessible services"))
		} else {
			errs = append(errs, oneOfChild(p, "externalTrafficPolicy", s.ExternalTrafficPolicy, trafficPolicies...)...)
		}
	}
	if s.HealthCheckNodePort != 0 {
		if !ServiceNeedsHealthCheck(svc) {
			errs = append(errs, field.Invalid(p.Child("healthCheckNodePort"), s.HealthCheckNodePort,
				"may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"))
		} else {
			errs = append(errs, invalidEach(p.Child("healthCheckNodePort"), s.HealthCheckNodePort, utilvalidation.IsValidPortNum(int(s.HealthCheckNodePort)))...)
		}
	}
	if s.InternalTrafficPolicy != nil {
		errs = append(errs, oneOfChild(p, "internalTrafficPolicy", *s.InternalTrafficPolicy, internalPolicies...)...)
	}
	if s.AllocateLoadBalancerNodePorts != nil && s.Type != corev1.ServiceTypeLoadBalancer {
		errs = append(errs, field.Forbidden(p.Child("allocateLoadBalancerNodePorts"), "may only be used when `type` is 'LoadBalancer'"))
	}
	if c := s.LoadBalancerClass; c != nil {
		if s.Type != corev1.ServiceTypeLoadBalancer {
			errs = append(errs, field.Forbidden(p.Child("loadBalancerClass"), "may only be used when `type` is 'LoadBalancer'"))
		} else {
			errs = append(errs, invalidEach(p.Child("loadBalancerClass"), *c, utilvalidation.IsQualifiedName(*c))...)
		}
	}
	for i, ip := range s.ExternalIPs {
		ep := p.Child("externalIPs").Index(i)
		errs = append(errs, validateIP(ip, ep)...)
		if a, err := netip.ParseAddr(ip); err == nil && (a.IsUnspecified() || a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsMulticast()) {
			errs = append(errs, field.Invalid(ep, ip, "may not be unspecified, loopback, link-local or multicast"))
		}
	}
	return errs
}

// validateClusterIPs checks clusterIP and clusterIPs: empty (allocate one), "None"
// (headless) or one IPv4 address, the same in both.
func validateClusterIPs(s *corev1.ServiceSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	ips := p.Child("clusterIPs")
	if len(s.ClusterIPs) > 1 {
		errs = append(errs, field.Invalid(ips, s.ClusterIPs, "may contain at most one address: Skiff's Services are single-stack IPv4"))
	}
	if len(s.ClusterIPs) > 0 && s.ClusterIP != s.ClusterIPs[0] {
		errs = append(errs, field.Invalid(ips, s.ClusterIPs, "element [0] must match clusterIP"))
	}
	if ip := s.ClusterIP; ip != "" && ip != corev1.ClusterIPNone {
		if more := validateIP(ip, ips.Index(0)); len(more) > 0 {
			errs = append(errs, more...)
		} else if a, _ := netip.ParseAddr(ip); !a.Is4() {
			errs = append(errs, field.Invalid(ips.Index(0), ip, "must be an IPv4 address: Skiff's Services are single-stack IPv4"))
		}
	}
	if s.IPFamilyPolicy != nil {
		errs = append(errs, oneOfChild(p, "ipFamilyPolicy", *s.IPFamilyPolicy, ipFamilyPolicies...)...)
	}
	for i, f := range s.IPFamilies {
		if f != corev1.IPv4Protocol {
			errs = append(errs, field.NotSupported(p.Child("ipFamilies").Index(i), f, []corev1.IPFamily{corev1.IPv4Protocol}))
		}
	}
	if len(s.IPFamilies) > 1 {
		errs = append(errs, field.TooMany(p.Child("ipFamilies"), len(s.IPFamilies), 1))
	}
	return errs
}

func validateServicePorts(svc *corev1.Service, p *field.Path) field.ErrorList {
	s := &svc.Spec
	var errs field.ErrorList
	names := map[string]bool{}
	type portProto struct {
		port  int32
		proto corev1.Protocol
	}
	ports, nodePorts := map[portProto]bool{}, map[portProto]bool{}
	nodePortsAllowed := s.Type == corev1.ServiceTypeNodePort || s.Type == corev1.ServiceTypeLoadBalancer
	for i := range s.Ports {
		sp := &s.Ports[i]
		pp := p.Index(i)
		if len(s.Ports) > 1 || sp.Name != "" {
			if sp.Name == "" {
				errs = append(errs, field.Required(pp.Child("name"), ""))
			} else {
				errs = append(errs, invalidEach(pp.Child("name"), sp.Name, utilvalidation.IsDNS1123Label(sp.Name))...)
				if names[sp.Name] {
					errs = append(errs, field.Duplicate(pp.Child("name"), sp.Name))
				}
				names[sp.Name] = true
			}
		}
		errs = append(errs, invalidEach(pp.Child("port"), sp.Port, utilvalidation.IsValidPortNum(int(sp.Port)))...)
		if sp.Protocol != "" {
			errs = append(errs, oneOfChild(pp, "protocol", sp.Protocol, protocols...)...)
		}
		errs = append(errs, validateTargetPort(sp.TargetPort, pp.Child("targetPort"))...)
		if sp.AppProtocol != nil {
			errs = append(errs, validateAppProtocol(*sp.AppProtocol, pp.Child("appProtocol"))...)
		}
		key := portProto{sp.Port, sp.Protocol}
		if ports[key] {
			errs = append(errs, field.Duplicate(pp, key))
		}
		ports[key] = true
		if sp.NodePort != 0 {
			if !nodePortsAllowed {
				errs = append(errs, field.Forbidden(pp.Child("nodePort"), "may not be used when `type` is 'ClusterIP'"))
			} else {
				errs = append(errs, invalidEach(pp.Child("nodePort"), sp.NodePort, utilvalidation.IsValidPortNum(int(sp.NodePort)))...)
			}
			np := portProto{sp.NodePort, sp.Protocol}
			if nodePorts[np] {
				errs = append(errs, field.Duplicate(pp.Child("nodePort"), sp.NodePort))
			}
			nodePorts[np] = true
		}
	}
	return errs
}

// validateTargetPort: a port number, or the name of a container's port (an IANA
// service name).
func validateTargetPort(tp intstr.IntOrString, p *field.Path) field.ErrorList {
	if tp.Type == intstr.String {
		if tp.StrVal == "" {
			return field.ErrorList{field.Required(p, "")}
		}
		return invalidEach(p, tp.StrVal, utilvalidation.IsValidPortName(tp.StrVal))
	}
	return invalidEach(p, tp.IntVal, utilvalidation.IsValidPortNum(int(tp.IntVal)))
}

// validateAppProtocol: an IANA service name or a domain-prefixed name (Kubernetes'
// rule for appProtocol).
func validateAppProtocol(v string, p *field.Path) field.ErrorList {
	return invalidEach(p, v, utilvalidation.IsQualifiedName(v))
}

// validateServiceUpdate is what may not change: the cluster IP once set, while the
// Service keeps one; the health check node port, while the Service keeps one.
func validateServiceUpdate(old, svc *corev1.Service) field.ErrorList {
	var errs field.ErrorList
	if ServiceNeedsClusterIP(old) && ServiceNeedsClusterIP(svc) && old.Spec.ClusterIP != "" {
		errs = append(errs, apivalidation.ValidateImmutableField(svc.Spec.ClusterIP, old.Spec.ClusterIP,
			field.NewPath("spec", "clusterIPs").Index(0))...)
	}
	// A LoadBalancer's class is set when it becomes one and kept (Kubernetes'
	// validateLoadBalancerClassField).
	if old.Spec.Type == corev1.ServiceTypeLoadBalancer && svc.Spec.Type == corev1.ServiceTypeLoadBalancer &&
		!ptrEqual(old.Spec.LoadBalancerClass, svc.Spec.LoadBalancerClass) {
		errs = append(errs, field.Invalid(field.NewPath("spec", "loadBalancerClass"), svc.Spec.LoadBalancerClass, "may not change once set"))
	}
	if ServiceNeedsHealthCheck(old) && ServiceNeedsHealthCheck(svc) && old.Spec.HealthCheckNodePort != 0 &&
		svc.Spec.HealthCheckNodePort != old.Spec.HealthCheckNodePort {
		errs = append(errs, field.Invalid(field.NewPath("spec", "healthCheckNodePort"), svc.Spec.HealthCheckNodePort,
			"cannot change healthCheckNodePort on loadBalancer service with externalTraffic=Local during update"))
	}
	return errs
}

// validateServiceStatus: the load balancer's ingress points are addresses.
func validateServiceStatus(st *corev1.ServiceStatus, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, in := range st.LoadBalancer.Ingress {
		ip := p.Child("loadBalancer", "ingress").Index(i)
		errs = append(errs, validateLoadBalancerPoint(in.IP, in.Hostname, ip)...)
		if in.IPMode != nil {
			errs = append(errs, oneOfChild(ip, "ipMode", *in.IPMode, corev1.LoadBalancerIPModeVIP, corev1.LoadBalancerIPModeProxy)...)
		}
	}
	// Its conditions are not validated, as Kubernetes' ValidateServiceStatusUpdate
	// validates none (a condition without lastTransitionTime is taken: "should complete
	// a service status lifecycle").
	return errs
}

// validateLoadBalancerPoint checks one of a load balancer's ingress points (a Service's
// or an Ingress's): an IP address, or a DNS name that is not an IP address.
func validateLoadBalancerPoint(ip, hostname string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if ip != "" {
		errs = append(errs, validateIP(ip, p.Child("ip"))...)
	}
	if hostname != "" {
		errs = append(errs, invalidEach(p.Child("hostname"), hostname, utilvalidation.IsDNS1123Subdomain(hostname))...)
		if _, err := netip.ParseAddr(hostname); err == nil {
			errs = append(errs, field.Invalid(p.Child("hostname"), hostname, "must be a DNS name, not an IP address"))
		}
	}
	return errs
}

// ptrEqual says whether a and b are both nil or point to equal values.
func ptrEqual[T comparable](a, b *T) bool {
	return a == b || a != nil && b != nil && *a == *b
}

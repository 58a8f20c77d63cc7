package validation

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Kubernetes' limits on an EndpointSlice.
const (
	MaxEndpointsPerSlice = 1000
	MaxPortsPerSlice     = 100
	maxAddresses         = 100
	maxZoneHints         = 8
)

var addressTypes = []discoveryv1.AddressType{discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6, discoveryv1.AddressTypeFQDN}

// validateEndpointSlice is Kubernetes' ValidateEndpointSlice.
func validateEndpointSlice(es *discoveryv1.EndpointSlice) field.ErrorList {
	var errs field.ErrorList
	at := field.NewPath("addressType")
	if es.AddressType == "" {
		errs = append(errs, field.Required(at, ""))
	} else {
		errs = append(errs, oneOf(at, es.AddressType, addressTypes...)...)
	}
	ep := field.NewPath("endpoints")
	if len(es.Endpoints) > MaxEndpointsPerSlice {
		errs = append(errs, field.TooMany(ep, len(es.Endpoints), MaxEndpointsPerSlice))
	}
	for i := range es.Endpoints {
		errs = append(errs, validateEndpoint(&es.Endpoints[i], es.AddressType, ep.Index(i))...)
	}
	pp := field.NewPath("ports")
	if len(es.Ports) > MaxPortsPerSlice {
		errs = append(errs, field.TooMany(pp, len(es.Ports), MaxPortsPerSlice))
	}
	names := map[string]bool{}
	for i, port := range es.Ports {
		p := pp.Index(i)
		if port.Name != nil {
			if n := *port.Name; n != "" {
				errs = append(errs, invalidEach(p.Child("name"), n, utilvalidation.IsDNS1123Label(n))...)
			}
			if names[*port.Name] {
				errs = append(errs, field.Duplicate(p.Child("name"), *port.Name))
			}
			names[*port.Name] = true
		}
		if port.Protocol != nil {
			errs = append(errs, oneOfChild(p, "protocol", *port.Protocol, protocols...)...)
		} else {
			errs = append(errs, field.Required(p.Child("protocol"), ""))
		}
		if port.Port != nil && *port.Port != 0 {
			errs = append(errs, invalidEach(p.Child("port"), *port.Port, utilvalidation.IsValidPortNum(int(*port.Port)))...)
		}
		if port.AppProtocol != nil {
			errs = append(errs, validateAppProtocol(*port.AppProtocol, p.Child("appProtocol"))...)
		}
	}
	return errs
}

func validateEndpoint(e *discoveryv1.Endpoint, t discoveryv1.AddressType, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	ap := p.Child("addresses")
	switch n := len(e.Addresses); {
	case n == 0:
		errs = append(errs, field.Required(ap, "must contain at least 1 address"))
	case n > maxAddresses:
		errs = append(errs, field.TooMany(ap, n, maxAddresses))
	}
	for i, a := range e.Addresses {
		errs = append(errs, validateEndpointAddress(a, t, ap.Index(i))...)
	}
	if e.Hostname != nil {
		errs = append(errs, invalidEach(p.Child("hostname"), *e.Hostname, utilvalidation.IsDNS1123Label(*e.Hostname))...)
	}
	if e.NodeName != nil {
		errs = append(errs, invalidEach(p.Child("nodeName"), *e.NodeName, apivalidation.NameIsDNSSubdomain(*e.NodeName, false))...)
	}
	if e.Zone != nil {
		errs = append(errs, metav1validation.ValidateLabels(map[string]string{"topology.kubernetes.io/zone": *e.Zone}, p.Child("zone"))...)
	}
	if h := e.Hints; h != nil && len(h.ForZones) > maxZoneHints {
		errs = append(errs, field.TooMany(p.Child("hints", "forZones"), len(h.ForZones), maxZoneHints))
	}
	if r := e.TargetRef; r != nil && r.Name == "" {
		errs = append(errs, field.Required(p.Child("targetRef", "name"), ""))
	}
	return errs
}

// validateEndpointAddress: an address of the slice's type, and not one that would let a
// Service reach the node itself (Kubernetes' ValidateEndpointIP).
func validateEndpointAddress(a string, t discoveryv1.AddressType, p *field.Path) field.ErrorList {
	switch t {
	case discoveryv1.AddressTypeFQDN:
		return utilvalidation.IsFullyQualifiedDomainName(p, a)
	}
	errs := validateIP(a, p)
	if len(errs) > 0 {
		return errs
	}
	ip, _ := netip.ParseAddr(a)
	if (t == discoveryv1.AddressTypeIPv4) != ip.Is4() {
		return field.ErrorList{field.Invalid(p, a, "must be an "+string(t)+" address")}
	}
	switch {
	case ip.IsUnspecified():
		errs = append(errs, field.Invalid(p, a, "may not be unspecified (0.0.0.0)"))
	case ip.IsLoopback():
		errs = append(errs, field.Invalid(p, a, "may not be in the loopback range (127.0.0.0/8, ::1/128)"))
	case ip.IsLinkLocalUnicast():
		errs = append(errs, field.Invalid(p, a, "may not be in the link-local range (169.254.0.0/16, fe80::/10)"))
	case ip.IsLinkLocalMulticast():
		errs = append(errs, field.Invalid(p, a, "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"))
	}
	return errs
}

// validateEndpoints is Kubernetes' ValidateEndpoints: each subset has an address, ready
// or not; each address an IP a Service may send to (as an EndpointSlice's), a hostname
// that is a DNS label, a node name that is a DNS subdomain; each port a number, a
// protocol, and a name when the subset has several.
func validateEndpoints(ep *corev1.Endpoints) field.ErrorList {
	var errs field.ErrorList
	for i, ss := range ep.Subsets {
		p := field.NewPath("subsets").Index(i)
		if len(ss.Addresses) == 0 && len(ss.NotReadyAddresses) == 0 {
			errs = append(errs, field.Required(p, "must specify `addresses` or `notReadyAddresses`"))
		}
		for j := range ss.Addresses {
			errs = append(errs, validateEndpointsAddress(&ss.Addresses[j], p.Child("addresses").Index(j))...)
		}
		for j := range ss.NotReadyAddresses {
			errs = append(errs, validateEndpointsAddress(&ss.NotReadyAddresses[j], p.Child("notReadyAddresses").Index(j))...)
		}
		for j, port := range ss.Ports {
			pp := p.Child("ports").Index(j)
			if port.Name == "" && len(ss.Ports) > 1 {
				errs = append(errs, field.Required(pp.Child("name"), ""))
			} else if port.Name != "" {
				errs = append(errs, invalidEach(pp.Child("name"), port.Name, utilvalidation.IsDNS1123Label(port.Name))...)
			}
			errs = append(errs, invalidEach(pp.Child("port"), port.Port, utilvalidation.IsValidPortNum(int(port.Port)))...)
			if port.Protocol == "" {
				errs = append(errs, field.Required(pp.Child("protocol"), ""))
			} else {
				errs = append(errs, oneOfChild(pp, "protocol", port.Protocol, protocols...)...)
			}
			if port.AppProtocol != nil {
				errs = append(errs, validateAppProtocol(*port.AppProtocol, pp.Child("appProtocol"))...)
			}
		}
	}
	return errs
}

func validateEndpointsAddress(a *corev1.EndpointAddress, p *field.Path) field.ErrorList {
	t := discoveryv1.AddressTypeIPv4
	if ip, err := netip.ParseAddr(a.IP); err == nil && ip.Is6() {
		t = discoveryv1.AddressTypeIPv6
	}
	errs := validateEndpointAddress(a.IP, t, p.Child("ip"))
	if a.Hostname != "" {
		errs = append(errs, invalidEach(p.Child("hostname"), a.Hostname, utilvalidation.IsDNS1123Label(a.Hostname))...)
	}
	if a.NodeName != nil {
		errs = append(errs, invalidEach(p.Child("nodeName"), *a.NodeName, apivalidation.NameIsDNSSubdomain(*a.NodeName, false))...)
	}
	return errs
}

package table

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"

	"github.com/skiffhq/skiff/kinds"
)

// The columns of Services, Endpoints, EndpointSlices, Ingresses and IngressClasses,
// ServiceCIDRs and IPAddresses, as Kubernetes' printers define them.
func init() {
	svcSpec := corev1.ServiceSpec{}.SwaggerDoc()
	service := typed[*corev1.Service]
	columns[kinds.Service] = []Column{nameCol,
		col("Type", "string", 0, svcSpec["type"], service(func(s *corev1.Service) any { return string(s.Spec.Type) })),
		col("Cluster-IP", "string", 0, svcSpec["clusterIP"], service(func(s *corev1.Service) any { return orNone(s.Spec.ClusterIP) })),
		col("External-IP", "string", 0, svcSpec["externalIPs"], service(func(s *corev1.Service) any { return serviceExternalIP(s) })),
		col("Port(s)", "string", 0, svcSpec["ports"], service(func(s *corev1.Service) any { return servicePorts(s.Spec.Ports) })),
		ageCol,
		col("Selector", "string", 1, svcSpec["selector"], service(func(s *corev1.Service) any {
			return orNone(labels.FormatLabels(s.Spec.Selector))
		})),
	}
	columns[kinds.Endpoints] = []Column{nameCol,
		col("Endpoints", "string", 0, corev1.Endpoints{}.SwaggerDoc()["subsets"], func(o kinds.Object, _ time.Time) any {
			return endpointsAddresses(o.(*corev1.Endpoints).Subsets)
		}),
		ageCol,
	}
	slice := typed[*discoveryv1.EndpointSlice]
	sliceDoc := discoveryv1.EndpointSlice{}.SwaggerDoc()
	columns[kinds.EndpointSlice] = []Column{nameCol,
		col("AddressType", "string", 0, sliceDoc["addressType"], slice(func(s *discoveryv1.EndpointSlice) any { return string(s.AddressType) })),
		col("Ports", "string", 0, sliceDoc["ports"], slice(func(s *discoveryv1.EndpointSlice) any { return slicePorts(s.Ports) })),
		col("Endpoints", "string", 0, sliceDoc["endpoints"], slice(func(s *discoveryv1.EndpointSlice) any { return sliceEndpoints(s.Endpoints) })),
		ageCol,
	}
	ingress := typed[*networkingv1.Ingress]
	columns[kinds.Ingress] = []Column{nameCol,
		col("Class", "string", 0, "The name of the IngressClass resource that should be used for additional configuration",
			ingress(func(in *networkingv1.Ingress) any { return ingressClass(in) })),
		col("Hosts", "string", 0, "Hosts that incoming requests are matched against before the ingress rule",
			ingress(func(in *networkingv1.Ingress) any { return ingressHosts(in.Spec.Rules) })),
		col("Address", "string", 0, "Address is a list containing ingress points for the load-balancer",
			ingress(func(in *networkingv1.Ingress) any { return ingressAddress(in.Status.LoadBalancer) })),
		col("Ports", "string", 0, "Ports of TLS configurations that open", ingress(func(in *networkingv1.Ingress) any {
			if len(in.Spec.TLS) > 0 {
				return "80, 443"
			}
			return "80"
		})),
		ageCol,
	}
	columns[kinds.IngressClass] = []Column{nameCol,
		col("Controller", "string", 0, "Controller that is responsible for handling this class", func(o kinds.Object, _ time.Time) any {
			return o.(*networkingv1.IngressClass).Spec.Controller
		}),
		col("Parameters", "string", 0, "A reference to a resource with additional parameters", func(o kinds.Object, _ time.Time) any {
			p := o.(*networkingv1.IngressClass).Spec.Parameters
			if p == nil {
				return "<none>"
			}
			kind := p.Kind
			if p.APIGroup != nil {
				kind += "." + *p.APIGroup
			}
			return kind + "/" + p.Name
		}),
		ageCol,
	}
	columns[kinds.ServiceCIDR] = []Column{nameCol,
		col("CIDRs", "string", 0, networkingv1.ServiceCIDRSpec{}.SwaggerDoc()["cidrs"], func(o kinds.Object, _ time.Time) any {
			return strings.Join(o.(*networkingv1.ServiceCIDR).Spec.CIDRs, ",")
		}),
		ageCol,
	}
	columns[kinds.IPAddress] = []Column{nameCol,
		col("ParentRef", "string", 0, networkingv1.IPAddressSpec{}.SwaggerDoc()["parentRef"], func(o kinds.Object, _ time.Time) any {
			return ipAddressParent(o.(*networkingv1.IPAddress).Spec.ParentRef)
		}),
	}
}

// ipAddressParent is kubectl's PARENTREF: resource.group[/namespace]/name, lower case.
func ipAddressParent(p *networkingv1.ParentReference) string {
	if p == nil {
		return "<none>"
	}
	s := strings.ToLower(schema.GroupResource{Group: p.Group, Resource: p.Resource}.String())
	if p.Namespace != "" {
		s += "/" + p.Namespace
	}
	return s + "/" + p.Name
}

// ingressClass is kubectl's CLASS: spec.ingressClassName.
func ingressClass(in *networkingv1.Ingress) string {
	if in.Spec.IngressClassName != nil {
		return *in.Spec.IngressClassName
	}
	return "<none>"
}

// ingressHosts is kubectl's HOSTS: the first three hosts the rules name and, when a
// rule follows them, how many rules beyond three there are; * when none names one.
func ingressHosts(rules []networkingv1.IngressRule) string {
	const max = 3
	var list []string
	more := false
	for _, r := range rules {
		if len(list) == max {
			more = true
		}
		if !more && r.Host != "" {
			list = append(list, r.Host)
		}
	}
	if len(list) == 0 {
		return "*"
	}
	out := strings.Join(list, ",")
	if more {
		out = fmt.Sprintf("%s + %d more...", out, len(rules)-max)
	}
	return out
}

// ingressAddress is kubectl's ADDRESS: the load balancer's IPs or else host names,
// sorted (whole: the API server's tables are wide ones, which Kubernetes does not cut).
func ingressAddress(st networkingv1.IngressLoadBalancerStatus) string {
	addrs := sets.New[string]()
	for _, in := range st.Ingress {
		if in.IP != "" {
			addrs.Insert(in.IP)
		} else if in.Hostname != "" {
			addrs.Insert(in.Hostname)
		}
	}
	return strings.Join(sets.List(addrs), ",")
}

// serviceExternalIP is kubectl's EXTERNAL-IP: an ExternalName Service's name, a load
// balancer's ingress points (<pending> until it has some), or the external IPs.
func serviceExternalIP(svc *corev1.Service) string {
	switch svc.Spec.Type {
	case corev1.ServiceTypeExternalName:
		return svc.Spec.ExternalName
	case corev1.ServiceTypeLoadBalancer:
		var ips []string
		for _, in := range svc.Status.LoadBalancer.Ingress {
			ips = append(ips, in.IP+in.Hostname)
		}
		ips = append(ips, svc.Spec.ExternalIPs...)
		if len(ips) == 0 {
			return "<pending>"
		}
		return strings.Join(ips, ",")
	}
	if len(svc.Spec.ExternalIPs) > 0 {
		return strings.Join(svc.Spec.ExternalIPs, ",")
	}
	return "<none>"
}

// servicePorts is kubectl's PORT(S): port[:nodePort]/protocol, comma-separated.
func servicePorts(ports []corev1.ServicePort) string {
	if len(ports) == 0 {
		return "<none>"
	}
	out := make([]string, len(ports))
	for i, p := range ports {
		out[i] = fmt.Sprintf("%d/%s", p.Port, p.Protocol)
		if p.NodePort > 0 {
			out[i] = fmt.Sprintf("%d:%d/%s", p.Port, p.NodePort, p.Protocol)
		}
	}
	return strings.Join(out, ",")
}

// slicePorts is kubectl's PORTS of an EndpointSlice: the port numbers, <unset> for a port
// without a number, <unset> when there are none.
func slicePorts(ports []discoveryv1.EndpointPort) string {
	if len(ports) == 0 {
		return "<unset>"
	}
	out := make([]string, len(ports))
	for i, p := range ports {
		out[i] = "<unset>"
		if p.Port != nil {
			out[i] = strconv.Itoa(int(*p.Port))
		}
	}
	return strings.Join(out, ",")
}

// endpointsAddresses is kubectl's ENDPOINTS of an Endpoints: the first three ready
// addresses, with each port (ip:port) or alone (a headless Service's subset without
// ports), and how many more; <none> without subsets.
func endpointsAddresses(subsets []corev1.EndpointSubset) string {
	if len(subsets) == 0 {
		return "<none>"
	}
	const max = 3
	var list []string
	count := 0
	for _, ss := range subsets {
		if len(ss.Ports) == 0 {
			count += len(ss.Addresses)
			for _, a := range ss.Addresses {
				if len(list) < max {
					list = append(list, a.IP)
				}
			}
			continue
		}
		for _, p := range ss.Ports {
			count += len(ss.Addresses)
			for _, a := range ss.Addresses {
				if len(list) < max {
					list = append(list, net.JoinHostPort(a.IP, strconv.Itoa(int(p.Port))))
				}
			}
		}
	}
	if count > max {
		return fmt.Sprintf("%s + %d more...", strings.Join(list, ","), count-max)
	}
	return strings.Join(list, ",")
}

// sliceEndpoints is kubectl's ENDPOINTS: the first three addresses and how many more.
func sliceEndpoints(eps []discoveryv1.Endpoint) string {
	var addrs []string
	for _, e := range eps {
		addrs = append(addrs, e.Addresses...)
	}
	if len(addrs) == 0 {
		return "<unset>"
	}
	if len(addrs) > 3 {
		return fmt.Sprintf("%s + %d more...", strings.Join(addrs[:3], ","), len(addrs)-3)
	}
	return strings.Join(addrs, ",")
}

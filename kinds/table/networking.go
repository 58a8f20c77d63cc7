package table

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/skiffhq/skiff/kinds"
)

// The columns of Services, Endpoints and EndpointSlices, as Kubernetes' printers define
// them.
func init() {
	svcSpec := corev1.ServiceSpec{}.SwaggerDoc()
	service := func(f func(*corev1.Service) any) func(kinds.Object, time.Time) any {
		return func(o kinds.Object, _ time.Time) any { return f(o.(*corev1.Service)) }
	}
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
	slice := func(f func(*discoveryv1.EndpointSlice) any) func(kinds.Object, time.Time) any {
		return func(o kinds.Object, _ time.Time) any { return f(o.(*discoveryv1.EndpointSlice)) }
	}
	sliceDoc := discoveryv1.EndpointSlice{}.SwaggerDoc()
	columns[kinds.EndpointSlice] = []Column{nameCol,
		col("AddressType", "string", 0, sliceDoc["addressType"], slice(func(s *discoveryv1.EndpointSlice) any { return string(s.AddressType) })),
		col("Ports", "string", 0, sliceDoc["ports"], slice(func(s *discoveryv1.EndpointSlice) any { return slicePorts(s.Ports) })),
		col("Endpoints", "string", 0, sliceDoc["endpoints"], slice(func(s *discoveryv1.EndpointSlice) any { return sliceEndpoints(s.Endpoints) })),
		ageCol,
	}
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

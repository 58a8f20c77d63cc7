package kinds

import corev1 "k8s.io/api/core/v1"

// HostPort is one port a pod holds on its node's addresses (a container's hostPort, or
// its containerPort under hostNetwork), as Kubernetes' NodePorts counts them for the
// scheduler and the kubelet's admission.
type HostPort struct {
	Protocol corev1.Protocol
	IP       string // "" or 0.0.0.0 means every address
	Port     int32
}

// HostPorts are the ports pod holds on its node: those of its containers and of its
// sidecars (restartable init containers, which run beside them); the protocol defaults
// to TCP.
func HostPorts(pod *corev1.Pod) []HostPort {
	var out []HostPort
	add := func(c *corev1.Container) {
		for _, p := range c.Ports {
			port := p.HostPort
			if port == 0 && pod.Spec.HostNetwork {
				port = p.ContainerPort // host network: the container port is the host's
			}
			if port <= 0 {
				continue
			}
			proto := p.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			out = append(out, HostPort{Protocol: proto, IP: p.HostIP, Port: port})
		}
	}
	for i := range pod.Spec.Containers {
		add(&pod.Spec.Containers[i])
	}
	for i := range pod.Spec.InitContainers {
		if c := &pod.Spec.InitContainers[i]; c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			add(c)
		}
	}
	return out
}

// Conflicts says whether two pods cannot both hold p and q: the same protocol and port,
// on the same address or where either binds every address.
func (p HostPort) Conflicts(q HostPort) bool {
	if p.Protocol != q.Protocol || p.Port != q.Port {
		return false
	}
	return p.IP == q.IP || p.wild() || q.wild()
}

func (p HostPort) wild() bool { return p.IP == "" || p.IP == "0.0.0.0" }

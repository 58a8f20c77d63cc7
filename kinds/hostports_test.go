package kinds

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// TestHostPorts: a pod's host ports are its containers' and sidecars' (not its init
// containers'), TCP by default, its container ports under hostNetwork; two conflict
// on the same protocol and port where their addresses overlap.
func TestHostPorts(t *testing.T) {
	pod := &corev1.Pod{Spec: corev1.PodSpec{
		Containers: []corev1.Container{{Ports: []corev1.ContainerPort{{ContainerPort: 80, HostPort: 8080}, {ContainerPort: 81}}}},
		InitContainers: []corev1.Container{
			{Ports: []corev1.ContainerPort{{ContainerPort: 82, HostPort: 8082}}},
			{RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways), Ports: []corev1.ContainerPort{{ContainerPort: 53, HostPort: 53, Protocol: corev1.ProtocolUDP, HostIP: "10.0.0.1"}}},
		}}}
	got := HostPorts(pod)
	want := []HostPort{{Protocol: corev1.ProtocolTCP, Port: 8080}, {Protocol: corev1.ProtocolUDP, IP: "10.0.0.1", Port: 53}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("host ports %v, want %v", got, want)
	}
	pod.Spec.HostNetwork = true
	if got := HostPorts(pod); len(got) != 3 || got[1] != (HostPort{Protocol: corev1.ProtocolTCP, Port: 81}) {
		t.Errorf("host network: %v", got)
	}

	tcp := func(ip string, port int32) HostPort {
		return HostPort{Protocol: corev1.ProtocolTCP, IP: ip, Port: port}
	}
	for _, tc := range []struct {
		a, b HostPort
		want bool
	}{
		{tcp("", 80), tcp("", 80), true},
		{tcp("", 80), tcp("10.0.0.1", 80), true},
		{tcp("0.0.0.0", 80), tcp("10.0.0.1", 80), true},
		{tcp("10.0.0.1", 80), tcp("10.0.0.1", 80), true},
		{tcp("10.0.0.1", 80), tcp("10.0.0.2", 80), false},
		{tcp("", 80), tcp("", 81), false},
		{tcp("", 80), HostPort{Protocol: corev1.ProtocolUDP, Port: 80}, false},
	} {
		if got := tc.a.Conflicts(tc.b); got != tc.want || tc.b.Conflicts(tc.a) != tc.want {
			t.Errorf("%v and %v conflict: %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

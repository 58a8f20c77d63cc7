package kinds

import "testing"

func TestKubeletMaySetNodeLabel(t *testing.T) {
	for _, tc := range []struct {
		key  string
		want bool
	}{
		{"disktype", true},
		{"example.com/gpu", true},
		{"kubernetes.io/hostname", true},
		{"topology.kubernetes.io/zone", true},
		{"node.kubernetes.io/instance-type", true},
		{"beta.kubernetes.io/arch", true},
		{"kubelet.kubernetes.io/custom", true},
		{"node.kubernetes.io/custom", true},
		{"team.node.kubernetes.io/x", true},
		{"node-restriction.kubernetes.io/fips", false},
		{"prod.node-restriction.kubernetes.io/fips", false},
		{"node-role.kubernetes.io/control-plane", false},
		{"kubernetes.io/role", false},
		{"k8s.io/anything", false},
		{"foo.k8s.io/anything", false},
		{"notkubernetes.io/x", true},
	} {
		if got := KubeletMaySetNodeLabel(tc.key); got != tc.want {
			t.Errorf("KubeletMaySetNodeLabel(%q) = %v, want %v", tc.key, got, tc.want)
		}
	}
}

package kubelet

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A failed container's output as its termination message (FallbackToLogsOnError): the
// last 80 lines as they were written, cut to the last 2048 bytes.
func TestLogTail(t *testing.T) {
	var many strings.Builder
	for i := range 100 {
		many.WriteString(strings.Repeat("x", i%10) + "\n")
	}
	long := strings.Repeat("y", 3000) + "\nend\n"
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", ""},
		{"lines", "starting\nlast words\n", "starting\nlast words\n"},
		{"no final newline", "a\nb", "a\nb"},
		{"80 lines", many.String(), strings.Join(strings.SplitAfter(many.String(), "\n")[20:100], "")},
		{"2048 bytes", long, long[len(long)-2048:]},
	} {
		if got := logTail([]byte(tc.in)); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// A pod's host name and /etc/hosts as Kubernetes' kubelet makes them: spec.hostname,
// else the pod's name (at most 63 characters); with a subdomain, the fully qualified
// name hostname.subdomain.namespace.svc.DOMAIN first on the pod's line.
func TestPodHostnameAndHosts(t *testing.T) {
	const head = "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" +
		"fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n"
	long := strings.Repeat("a", 62) + "-b"
	for _, tc := range []struct {
		name                  string
		pod                   corev1.PodSpec
		podName               string
		wantHostname, wantPod string
	}{
		{"pod name", corev1.PodSpec{}, "web-7d9f", "web-7d9f", "10.244.1.5\tweb-7d9f\n"},
		{"spec.hostname", corev1.PodSpec{Hostname: "box"}, "web-7d9f", "box", "10.244.1.5\tbox\n"},
		{"statefulset pod", corev1.PodSpec{Hostname: "web-0", Subdomain: "nginx"}, "web-0", "web-0",
			"10.244.1.5\tweb-0.nginx.shop.svc.cluster.local\tweb-0\n"},
		{"subdomain without hostname", corev1.PodSpec{Subdomain: "nginx"}, "web-1", "web-1",
			"10.244.1.5\tweb-1.nginx.shop.svc.cluster.local\tweb-1\n"},
		{"long pod name", corev1.PodSpec{}, long, strings.Repeat("a", 62), "10.244.1.5\t" + strings.Repeat("a", 62) + "\n"},
	} {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: tc.podName}, Spec: tc.pod}
		h := podHostname(pod)
		if h != tc.wantHostname {
			t.Errorf("%s: hostname %q, want %q", tc.name, h, tc.wantHostname)
		}
		if got := hostsFile(h, podDomain(pod, "cluster.local"), "10.244.1.5"); got != head+tc.wantPod {
			t.Errorf("%s: /etc/hosts\n%s\nwant\n%s", tc.name, got, head+tc.wantPod)
		}
	}
	// spec.hostAliases follow, under Kubernetes' comment.
	aliases := []corev1.HostAlias{{IP: "123.45.67.89", Hostnames: []string{"foo.local", "bar.local"}}, {IP: "::1", Hostnames: []string{"v6"}}}
	if got, want := hostAliases(aliases), "\n# Entries added by HostAliases.\n123.45.67.89\tfoo.local\tbar.local\n::1\tv6\n"; got != want {
		t.Errorf("host aliases %q, want %q", got, want)
	}
	if got := hostAliases(nil); got != "" {
		t.Errorf("no host aliases: %q", got)
	}
}

// TestSecuritySeccomp: seccompProfile RuntimeDefault asks for the runtime's default
// profile, from the pod's securityContext or the container's, which wins.
func TestSecuritySeccomp(t *testing.T) {
	profile := func(typ corev1.SeccompProfileType) *corev1.SeccompProfile { return &corev1.SeccompProfile{Type: typ} }
	for _, tc := range []struct {
		name           string
		pod, container *corev1.SeccompProfile
		want           bool
	}{
		{"none", nil, nil, false},
		{"pod", profile(corev1.SeccompProfileTypeRuntimeDefault), nil, true},
		{"container", nil, profile(corev1.SeccompProfileTypeRuntimeDefault), true},
		{"container unconfined wins", profile(corev1.SeccompProfileTypeRuntimeDefault), profile(corev1.SeccompProfileTypeUnconfined), false},
	} {
		spec := &corev1.PodSpec{SecurityContext: &corev1.PodSecurityContext{SeccompProfile: tc.pod}}
		c := &corev1.Container{Name: "c", SecurityContext: &corev1.SecurityContext{SeccompProfile: tc.container}}
		if got := security(spec, c).SeccompRuntimeDefault; got != tc.want {
			t.Errorf("%s: SeccompRuntimeDefault = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestSecuritySELinux: seLinuxOptions of the pod or of the container are seen.
func TestSecuritySELinux(t *testing.T) {
	level := &corev1.SELinuxOptions{Level: "s0"}
	for _, tc := range []struct {
		pod, container *corev1.SELinuxOptions
		want           bool
	}{{nil, nil, false}, {level, nil, true}, {nil, level, true}} {
		spec := &corev1.PodSpec{SecurityContext: &corev1.PodSecurityContext{SELinuxOptions: tc.pod}}
		c := &corev1.Container{Name: "c", SecurityContext: &corev1.SecurityContext{SELinuxOptions: tc.container}}
		if got := security(spec, c).SELinuxLabel; got != tc.want {
			t.Errorf("pod %v container %v: SELinuxLabel = %v", tc.pod, tc.container, got)
		}
	}
}

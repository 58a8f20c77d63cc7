package validation

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// TestPodErrorPathsAndWords: the paths of a pod's fields are made only for an error
// (a valid pod's validation makes few); the errors of invalid pods keep their paths and
// their words, as main had them before the paths became lazy.
func TestPodErrorPathsAndWords(t *testing.T) {
	q := resource.MustParse
	for _, tc := range []struct {
		name string
		edit func(*corev1.Pod)
		want string
	}{
		{"pull policy", func(p *corev1.Pod) { p.Spec.Containers[0].ImagePullPolicy = "Sometimes" }, "spec.containers[0].imagePullPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"IfNotPresent\", \"Never\""},
		{"restart policy", func(p *corev1.Pod) { p.Spec.RestartPolicy = "Maybe" }, "spec.restartPolicy: Unsupported value: \"Maybe\": supported values: \"Always\", \"Never\", \"OnFailure\""},
		{"dns policy", func(p *corev1.Pod) { p.Spec.DNSPolicy = "Nearby" }, "spec.dnsPolicy: Unsupported value: \"Nearby\": supported values: \"ClusterFirstWithHostNet\", \"ClusterFirst\", \"Default\", \"None\""},
		{"termination message policy", func(p *corev1.Pod) { p.Spec.Containers[0].TerminationMessagePolicy = "Tail" }, "spec.containers[0].terminationMessagePolicy: Unsupported value: \"Tail\": supported values: \"FallbackToLogsOnError\", \"File\""},
		{"port protocol", func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, Protocol: "ICMP"}}
		}, "spec.containers[0].ports[0].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\""},
		{"resources", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources = corev1.ResourceRequirements{
				Requests: corev1.ResourceList{"hugepages-2Mi": q("2Mi"), "foo": q("1"), "example.com/gpu": q("500m"), corev1.ResourceCPU: q("2"), "bad name!": q("1")},
				Limits:   corev1.ResourceList{corev1.ResourceCPU: q("1"), corev1.ResourceMemory: q("-1"), "example.com/gpu": q("1")}}
		}, "spec.containers[0].resources.limits[memory]: Invalid value: \"-1\": must be greater than or equal to 0\nspec.containers[0].resources.requests[bad name!]: Invalid value: \"bad name!\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')\nspec.containers[0].resources.requests[bad name!]: Invalid value: \"bad name!\": must be a standard resource for containers\nspec.containers[0].resources.requests[example.com/gpu]: Invalid value: \"500m\": must be an integer\nspec.containers[0].resources.requests[foo]: Invalid value: \"foo\": must be a standard resource for containers\nspec.containers[0].resources.requests[hugepages-2Mi]: Forbidden: not supported by Skiff\nspec.containers[0].resources.requests[cpu]: Invalid value: \"2\": must be less than or equal to cpu limit of 1\nspec.containers[0].resources.requests: Invalid value: \"500m\": must be equal to example.com/gpu limit of 1"},
		{"overhead", func(p *corev1.Pod) { p.Spec.Overhead = corev1.ResourceList{"foo": q("1")} }, "spec.overhead[foo]: Invalid value: \"foo\": must be a standard resource for containers"},
		{"env, mounts", func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: ""}, {Name: "A=B"}}
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "none", MountPath: "rel"}}
		}, "spec.containers[0].env[0].name: Required value\nspec.containers[0].env[1].name: Invalid value: \"A=B\": a valid environment variable name must consist only of printable ASCII characters other than '='\nspec.containers[0].volumeMounts[0].name: Not found: \"none\"\nspec.containers[0].volumeMounts[0].mountPath: Invalid value: \"rel\": must be an absolute path"},
		{"probes", func(p *corev1.Pod) {
			p.Spec.Containers[0].LivenessProbe = &corev1.Probe{PeriodSeconds: -1, ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}
			p.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "busybox", ReadinessProbe: &corev1.Probe{}}}
		}, "spec.initContainers[0].readinessProbe: Forbidden: may not be set for init containers without restartPolicy=Always\nspec.containers[0].livenessProbe.periodSeconds: Invalid value: -1: must be greater than or equal to 0"},
		{"security contexts", func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: "Custom"}}
			p.Spec.SecurityContext = &corev1.PodSecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeLocalhost}}
		}, "spec.containers[0].securityContext.seccompProfile.type: Unsupported value: \"Custom\": supported values: \"RuntimeDefault\", \"Unconfined\", \"Localhost\"\nspec.securityContext.seccompProfile.type: Forbidden: not supported by Skiff"},
		{"scheduling", func(p *corev1.Pod) {
			p.Spec.NodeSelector = map[string]string{"bad key!": "v"}
			p.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{MaxSkew: 0, WhenUnsatisfiable: "Never"}}
			p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{}}}
			p.Spec.Tolerations = []corev1.Toleration{{Key: "k", Operator: "Maybe"}}
		}, "spec.nodeSelector: Invalid value: \"bad key!\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')\nspec.tolerations[0].operator: Unsupported value: \"Maybe\": supported values: \"Equal\", \"Exists\"\nspec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms: Required value: must have at least one node selector term\nspec.topologySpreadConstraints[0].maxSkew: Invalid value: 0: must be greater than zero\nspec.topologySpreadConstraints[0].topologyKey: Required value: can not be empty\nspec.topologySpreadConstraints[0].whenUnsatisfiable: Unsupported value: \"Never\": supported values: \"DoNotSchedule\", \"ScheduleAnyway\""},
		{"lifecycle", func(p *corev1.Pod) {
			p.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{}}
		}, "spec.containers[0].lifecycle.preStop: Required value: must specify a handler type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := allocsPod()
			tc.edit(p)
			var got []string
			for _, e := range validateObject(p) {
				got = append(got, e.Error())
			}
			if s := strings.Join(got, "\n"); s != tc.want {
				t.Errorf("errors:\n%s\nwant:\n%s", s, tc.want)
			}
		})
	}
}

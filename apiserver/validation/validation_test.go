package validation

import (
	"errors"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"

	"github.com/skiffhq/skiff/kinds"
)

func meta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: "default"}
}

func podSpec() corev1.PodSpec {
	return corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx:1.27"}}}
}

// secret is a Secret of type typ (Opaque when empty) holding data.
func secret(typ corev1.SecretType, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: meta("s"), Type: typ}
	if typ == "" {
		s.Type = corev1.SecretTypeOpaque
	}
	for k, v := range data {
		if s.Data == nil {
			s.Data = map[string][]byte{}
		}
		s.Data[k] = []byte(v)
	}
	return s
}

func pod(mut func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: meta("web-1"), Spec: podSpec()}
	if mut != nil {
		mut(p)
	}
	return p
}

func template() corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}}, Spec: podSpec()}
}

func deployment(mut func(*appsv1.Deployment)) *appsv1.Deployment {
	d := &appsv1.Deployment{ObjectMeta: meta("web"), Spec: appsv1.DeploymentSpec{
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
		Template: template(),
	}}
	if mut != nil {
		mut(d)
	}
	return d
}

func replicaSet(mut func(*appsv1.ReplicaSet)) *appsv1.ReplicaSet {
	rs := &appsv1.ReplicaSet{ObjectMeta: meta("web-abc"), Spec: appsv1.ReplicaSetSpec{
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
		Template: template(),
	}}
	if mut != nil {
		mut(rs)
	}
	return rs
}

func pdb(mut func(*policyv1.PodDisruptionBudgetSpec)) *policyv1.PodDisruptionBudget {
	b := &policyv1.PodDisruptionBudget{ObjectMeta: meta("web"), Spec: policyv1.PodDisruptionBudgetSpec{
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}}
	mut(&b.Spec)
	return b
}

func node(spec corev1.NodeSpec) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w1"}, Spec: spec}
}

func num(n int) *intstr.IntOrString        { return new(intstr.FromInt32(int32(n))) }
func percent(s string) *intstr.IntOrString { return new(intstr.FromString(s)) }

func rolling(surge, unavail *intstr.IntOrString) appsv1.DeploymentStrategy {
	return appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: surge, MaxUnavailable: unavail}}
}

// checkErrors asserts err lists exactly the errors in want, each given by a prefix of
// its message (at least "path: Type").
func checkErrors(t *testing.T, err error, want []string) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("error %v (%T) is not an ErrorList; want %q", err, err, want)
	}
	used := make([]bool, len(list))
	for _, w := range want {
		found := false
		for i, e := range list {
			if !used[i] && strings.HasPrefix(e.Error(), w) {
				used[i], found = true, true
				break
			}
		}
		if !found {
			t.Errorf("missing error %q", w)
		}
	}
	for i, e := range list {
		if !used[i] {
			t.Errorf("unexpected error %q", e.Error())
		}
	}
}

func TestValidate(t *testing.T) {
	long := strings.Repeat("a", 254)
	for _, tc := range []struct {
		name string
		obj  kinds.Object
		want []string
	}{
		// Metadata.
		{"valid pod", pod(nil), nil},
		{"name uppercase", pod(func(p *corev1.Pod) { p.Name = "Web" }),
			[]string{`metadata.name: Invalid value: "Web": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character`}},
		{"name too long", pod(func(p *corev1.Pod) { p.Name = long }),
			[]string{`metadata.name: Invalid value: "` + long + `": must be no more than 253 characters`}},
		{"name missing", pod(func(p *corev1.Pod) { p.Name = "" }),
			[]string{"metadata.name: Required value: name or generateName is required"}},
		{"generateName", pod(func(p *corev1.Pod) { p.Name, p.GenerateName = "", "web-" }), nil},
		{"generateName invalid", pod(func(p *corev1.Pod) { p.Name, p.GenerateName = "", "Web_" }),
			[]string{`metadata.generateName: Invalid value: "Web_": a lowercase RFC 1123 subdomain`}},
		{"namespace invalid", pod(func(p *corev1.Pod) { p.Namespace = "a.b" }),
			[]string{`metadata.namespace: Invalid value: "a.b": must not contain dots`}},
		{"namespace empty", pod(func(p *corev1.Pod) { p.Namespace = "" }), nil},
		{"namespace on cluster-scoped", &corev1.Node{ObjectMeta: meta("n1")},
			[]string{"metadata.namespace: Forbidden: not allowed on this type"}},
		{"label key", pod(func(p *corev1.Pod) { p.Labels = map[string]string{"-bad": "x"} }),
			[]string{`metadata.labels: Invalid value: "-bad": name part must consist of`}},
		{"label value", pod(func(p *corev1.Pod) { p.Labels = map[string]string{"app": "a b"} }),
			[]string{`metadata.labels: Invalid value: "a b": a valid label must be an empty string or consist of`}},
		{"annotation key", pod(func(p *corev1.Pod) { p.Annotations = map[string]string{"a b": "any value at all"} }),
			[]string{`metadata.annotations: Invalid value: "a b"`}},
		{"annotations too large", pod(func(p *corev1.Pod) {
			p.Annotations = map[string]string{"big": strings.Repeat("x", 256*1024)}
		}), []string{"metadata.annotations: Too long: may not be more than 262144 bytes"}},
		{"owner reference fields", pod(func(p *corev1.Pod) { p.OwnerReferences = []metav1.OwnerReference{{}} }),
			[]string{"metadata.ownerReferences[0].apiVersion: Required value", "metadata.ownerReferences[0].kind: Required value",
				"metadata.ownerReferences[0].name: Required value", "metadata.ownerReferences[0].uid: Required value"}},
		{"two controllers", pod(func(p *corev1.Pod) {
			ref := func(n string) metav1.OwnerReference {
				return metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: n, UID: types.UID("u-" + n), Controller: new(true)}
			}
			p.OwnerReferences = []metav1.OwnerReference{ref("a"), ref("b")}
		}), []string{`metadata.ownerReferences: Invalid value: [{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"a","uid":"u-a","controller":true},` +
			`{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"b","uid":"u-b","controller":true}]: ` +
			`Only one reference can have Controller set to true. Found "true" in references for ReplicaSet/a and ReplicaSet/b`}},
		{"finalizer", pod(func(p *corev1.Pod) { p.Finalizers = []string{"a b"} }),
			[]string{`metadata.finalizers: Invalid value: "a b"`}},

		// Pod.
		{"no containers", pod(func(p *corev1.Pod) { p.Spec.Containers = nil }), []string{"spec.containers: Required value"}},
		{"no spec", pod(func(p *corev1.Pod) { p.Spec = corev1.PodSpec{} }), []string{"spec.containers: Required value"}},
		{"container name missing", pod(func(p *corev1.Pod) { p.Spec.Containers[0].Name = "" }),
			[]string{"spec.containers[0].name: Required value"}},
		{"container name invalid", pod(func(p *corev1.Pod) { p.Spec.Containers[0].Name = "web_1" }),
			[]string{`spec.containers[0].name: Invalid value: "web_1": a lowercase RFC 1123 label must consist of`}},
		{"container name with dots", pod(func(p *corev1.Pod) { p.Spec.Containers[0].Name = "web.1" }),
			[]string{`spec.containers[0].name: Invalid value: "web.1": must not contain dots`}},
		{"container name duplicate", pod(func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "web", Image: "x"})
		}), []string{`spec.containers[1].name: Duplicate value: "web"`}},
		{"image missing", pod(func(p *corev1.Pod) { p.Spec.Containers[0].Image = "" }),
			[]string{"spec.containers[0].image: Required value"}},
		{"image whitespace", pod(func(p *corev1.Pod) { p.Spec.Containers[0].Image = " nginx" }),
			[]string{`spec.containers[0].image: Invalid value: " nginx": must not have leading or trailing whitespace`}},
		{"pull policy", pod(func(p *corev1.Pod) { p.Spec.Containers[0].ImagePullPolicy = "Sometimes" }),
			[]string{`spec.containers[0].imagePullPolicy: Unsupported value: "Sometimes": supported values: "Always", "IfNotPresent", "Never"`}},
		{"restart policy", pod(func(p *corev1.Pod) { p.Spec.RestartPolicy = "Sometimes" }),
			[]string{`spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "Never", "OnFailure"`}},
		{"os linux", pod(func(p *corev1.Pod) { p.Spec.OS = &corev1.PodOS{Name: corev1.Linux} }), nil},
		{"seLinuxOptions", pod(func(p *corev1.Pod) {
			p.Spec.SecurityContext = &corev1.PodSecurityContext{SELinuxOptions: &corev1.SELinuxOptions{Level: "s0"}}
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{SELinuxOptions: &corev1.SELinuxOptions{Type: "spc_t"}}
		}), nil},
		{"seccomp runtime default", pod(func(p *corev1.Pod) {
			p.Spec.SecurityContext = &corev1.PodSecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}}
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}}
		}), nil},
		{"seccomp localhost and unknown", pod(func(p *corev1.Pod) {
			p.Spec.SecurityContext = &corev1.PodSecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeLocalhost}}
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: "Strict"}}
		}), []string{"spec.securityContext.seccompProfile.type: Forbidden: not supported by Skiff",
			`spec.containers[0].securityContext.seccompProfile.type: Unsupported value: "Strict": supported values: "RuntimeDefault", "Unconfined", "Localhost"`}},
		{"os windows", pod(func(p *corev1.Pod) { p.Spec.OS = &corev1.PodOS{Name: corev1.Windows} }),
			[]string{`spec.os.name: Unsupported value: "windows": supported values: "linux"`}},
		{"port zero", pod(func(p *corev1.Pod) { p.Spec.Containers[0].Ports = []corev1.ContainerPort{{}} }),
			[]string{"spec.containers[0].ports[0].containerPort: Required value"}},
		{"port range", pod(func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 70000, HostPort: -1}}
		}), []string{"spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
			"spec.containers[0].ports[0].hostPort: Invalid value: -1: must be between 1 and 65535, inclusive"}},
		{"port protocol", pod(func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, Protocol: "ICMP"}}
		}), []string{`spec.containers[0].ports[0].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"`}},
		{"port names", pod(func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 80}, {Name: "http", ContainerPort: 81},
				{Name: "Bad--", ContainerPort: 82}}
		}), []string{`spec.containers[0].ports[1].name: Duplicate value: "http"`,
			`spec.containers[0].ports[2].name: Invalid value: "Bad--": must contain only`,
			`spec.containers[0].ports[2].name: Invalid value: "Bad--": must not contain consecutive hyphens`,
			`spec.containers[0].ports[2].name: Invalid value: "Bad--": must not begin or end with a hyphen`}},
		{"host ip", pod(func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, HostIP: "nope"}}
		}), []string{`spec.containers[0].ports[0].hostIP: Invalid value: "nope": must be a valid IP address`}},
		{"resources valid", pod(func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources = corev1.ResourceRequirements{
				Requests: corev1.ResourceList{"cpu": resource.MustParse("250m"), "memory": resource.MustParse("64Mi")},
				Limits:   corev1.ResourceList{"cpu": resource.MustParse("1"), "memory": resource.MustParse("128Mi")}}
		}), nil},
		// A quantity that does not parse ("lots") no longer reaches validation: decoding
		// refuses it (TestTypesRefuse).
		{"resources bad name and quantity", pod(func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources = corev1.ResourceRequirements{
				Limits: corev1.ResourceList{"bad name": resource.MustParse("1"), "memory": resource.MustParse("-1")}}
		}), []string{`spec.containers[0].resources.limits[bad name]: Invalid value: "bad name": name part must consist of`,
			`spec.containers[0].resources.limits[bad name]: Invalid value: "bad name": must be a standard resource for containers`,
			`spec.containers[0].resources.limits[memory]: Invalid value: "-1": must be greater than or equal to 0`}},
		// Hugepages would be neither limited nor counted on the node: refused, never
		// accepted and ignored.
		{"hugepages", pod(func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources = corev1.ResourceRequirements{
				Requests: corev1.ResourceList{"memory": resource.MustParse("64Mi"), "hugepages-2Mi": resource.MustParse("4Mi")},
				Limits:   corev1.ResourceList{"memory": resource.MustParse("64Mi"), "hugepages-2Mi": resource.MustParse("4Mi")}}
		}), []string{"spec.containers[0].resources.limits[hugepages-2Mi]: Forbidden: not supported by Skiff",
			"spec.containers[0].resources.requests[hugepages-2Mi]: Forbidden: not supported by Skiff"}},
		{"requests over limits", pod(func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources = corev1.ResourceRequirements{
				Requests: corev1.ResourceList{"cpu": resource.MustParse("2")}, Limits: corev1.ResourceList{"cpu": resource.MustParse("500m")}}
		}), []string{`spec.containers[0].resources.requests[cpu]: Invalid value: "2": must be less than or equal to cpu limit of 500m`}},
		{"env names", pod(func(p *corev1.Pod) {
			// Kubernetes' relaxed rule: any printable ASCII but '=' (a digit first, a dash).
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "OK_1"}, {Name: ""}, {Name: "1-OK"}, {Name: "my.env-name"}, {Name: "BAD=1"}, {Name: "BAD\t"}}
		}), []string{"spec.containers[0].env[1].name: Required value",
			`spec.containers[0].env[4].name: Invalid value: "BAD=1": a valid environment variable name must consist only of printable ASCII characters other than '='`,
			`spec.containers[0].env[5].name: Invalid value: "BAD\t": a valid environment variable name must consist only of printable ASCII characters other than '='`}},
		{"host aliases", pod(func(p *corev1.Pod) {
			p.Spec.HostAliases = []corev1.HostAlias{{IP: "123.45.67.89", Hostnames: []string{"foo.local", "bar"}}, {IP: "1.2.3", Hostnames: []string{"Bad_Name"}}}
		}), []string{`spec.hostAliases[1].ip: Invalid value: "1.2.3": must be a valid IP address`,
			`spec.hostAliases[1].hostnames[0]: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain`}},
		{"toleration operator", pod(func(p *corev1.Pod) {
			p.Spec.Tolerations = []corev1.Toleration{{Key: "k", Operator: "Gt"}}
		}), []string{`spec.tolerations[0].operator: Unsupported value: "Gt": supported values: "Equal", "Exists"`}},
		{"toleration exists with value", pod(func(p *corev1.Pod) {
			p.Spec.Tolerations = []corev1.Toleration{{Key: "k", Operator: "Exists", Value: "v"}}
		}), []string{`spec.tolerations[0].operator: Invalid value: "v": value must be empty when ` + "`operator`" + ` is 'Exists'`}},
		{"toleration empty key needs exists", pod(func(p *corev1.Pod) {
			p.Spec.Tolerations = []corev1.Toleration{{Operator: "Equal"}, {Operator: "Exists"}}
		}), []string{`spec.tolerations[0].operator: Invalid value: "Equal": operator must be Exists when`}},
		{"toleration effect", pod(func(p *corev1.Pod) {
			p.Spec.Tolerations = []corev1.Toleration{{Key: "k", Value: "v", Effect: "Sometimes"}}
		}), []string{`spec.tolerations[0].effect: Unsupported value: "Sometimes": supported values: "", "NoExecute", "NoSchedule", "PreferNoSchedule"`}},
		{"toleration seconds need NoExecute", pod(func(p *corev1.Pod) {
			p.Spec.Tolerations = []corev1.Toleration{{Key: "k", Effect: "NoSchedule", TolerationSeconds: new(int64(5))},
				{Key: "k", Operator: "Exists", Effect: "NoExecute", TolerationSeconds: new(int64(5))}}
		}), []string{`spec.tolerations[0].effect: Invalid value: "NoSchedule": effect must be 'NoExecute'`}},
		{"toleration key", pod(func(p *corev1.Pod) {
			p.Spec.Tolerations = []corev1.Toleration{{Key: "bad key", Operator: "Exists"}}
		}), []string{`spec.tolerations[0].key: Invalid value: "bad key"`}},
		{"grace period", pod(func(p *corev1.Pod) { p.Spec.TerminationGracePeriodSeconds = new(int64(-1)) }),
			[]string{"spec.terminationGracePeriodSeconds: Invalid value: -1: must be greater than or equal to 0"}},
		{"node selector", pod(func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"disk": "fast ssd"} }),
			[]string{`spec.nodeSelector: Invalid value: "fast ssd"`}},
		{"node name", pod(func(p *corev1.Pod) { p.Spec.NodeName = "Node_1" }),
			[]string{`spec.nodeName: Invalid value: "Node_1"`}},

		// Volumes and mounts.
		{"volumes", pod(func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{
				{Name: "a", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: "Disk"}}},
				{Name: "a", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/../etc", Type: new(corev1.HostPathType("Dir"))}}},
				{Name: "none"},
				{Name: "two", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}, Secret: &corev1.SecretVolumeSource{SecretName: "s"}}},
				{Name: "cm", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					DefaultMode: new(int32(0o1000)), Items: []corev1.KeyToPath{{Key: "k", Path: "/abs"}, {Key: "k", Path: "..data"}}}}},
				{Name: "sec", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{}}},
				{Name: "dapi", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
					{Path: "n", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}},
					{Path: "l", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}},
					{Path: "c", ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.cpu"}}}}}},
				{Name: "proj", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
					{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "c"}, Items: []corev1.KeyToPath{{Key: "a", Path: "x"}}}},
					{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}, Items: []corev1.KeyToPath{{Key: "a", Path: "x"}}}}}}}},
				{Name: "pvc", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{}}},
			}
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "a", MountPath: "/a"}, {Name: "b", MountPath: "/a"},
				{Name: "cm", MountPath: "rel", SubPath: "../x"}}
		}), []string{
			`spec.volumes[0].emptyDir.medium: Unsupported value: "Disk": supported values: "", "Memory"`,
			`spec.volumes[1].name: Duplicate value: "a"`,
			`spec.volumes[1].hostPath.path: Invalid value: "/var/../etc": must not contain '..'`,
			`spec.volumes[1].hostPath.type: Unsupported value: "Dir"`,
			"spec.volumes[2]: Required value: must specify a volume type",
			"spec.volumes[3].secret: Forbidden: may not specify more than 1 volume type",
			"spec.volumes[4].configMap.name: Required value",
			"spec.volumes[4].configMap.defaultMode: Invalid value: 512: must be a number between 0 and 0777 (octal), both inclusive",
			`spec.volumes[4].configMap.items[0].path: Invalid value: "/abs": must be a relative path`,
			`spec.volumes[4].configMap.items[1].path: Invalid value: "..data": must not start with '..'`,
			"spec.volumes[5].secret.secretName: Required value",
			`spec.volumes[6].downwardAPI.items[0].fieldRef.fieldPath: Unsupported value: "spec.nodeName"`,
			"spec.volumes[6].downwardAPI.items[2].resourceFieldRef.containerName: Required value",
			`spec.volumes[7].projected.sources[1].secret.items[0].path: Invalid value: "x": conflicting duplicate paths`,
			"spec.volumes[8].persistentVolumeClaim.claimName: Required value",
			`spec.containers[0].volumeMounts[1].name: Not found: "b"`,
			`spec.containers[0].volumeMounts[1].mountPath: Invalid value: "/a": must be unique`,
			`spec.containers[0].volumeMounts[2].mountPath: Invalid value: "rel": must be an absolute path`,
			`spec.containers[0].volumeMounts[2].subPath: Invalid value: "../x": must not contain '..'`,
		}},
		// Env from references.
		{"env valueFrom", pod(func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{
				{Name: "A", Value: "x", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
				{Name: "B", ValueFrom: &corev1.EnvVarSource{}},
				{Name: "C", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{Key: "k"},
					SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}, Key: "bad key"}}},
				{Name: "D", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}}},
				{Name: "E", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.gpu"}}},
				{Name: "F", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}}},
			}
			p.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{Prefix: "1=X"}, {ConfigMapRef: &corev1.ConfigMapEnvSource{}}, {Prefix: "1-", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "ok"}}}}
		}), []string{
			"spec.containers[0].env[0].valueFrom: Invalid value: \"\": may not be specified when `value` is not empty",
			"spec.containers[0].env[1].valueFrom: Invalid value: \"\": must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
			"spec.containers[0].env[2].valueFrom.configMapKeyRef.name: Required value",
			`spec.containers[0].env[2].valueFrom.secretKeyRef.key: Invalid value: "bad key"`,
			"spec.containers[0].env[2].valueFrom: Invalid value: \"\": may not have more than one field specified at a time",
			`spec.containers[0].env[3].valueFrom.fieldRef.fieldPath: Unsupported value: "metadata.labels"`,
			`spec.containers[0].env[4].valueFrom.resourceFieldRef.resource: Unsupported value: "limits.gpu"`,
			`spec.containers[0].envFrom[0].prefix: Invalid value: "1=X"`,
			"spec.containers[0].envFrom[0]: Invalid value: \"\": must specify one of: `configMapRef` or `secretRef`",
			"spec.containers[0].envFrom[1].configMapRef.name: Required value",
		}},
		// Probes and hooks.
		{"probes", pod(func(p *corev1.Pod) {
			c := &p.Spec.Containers[0]
			c.LivenessProbe = &corev1.Probe{SuccessThreshold: 2, PeriodSeconds: -1}
			c.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{}, TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(80)}},
				TerminationGracePeriodSeconds: new(int64(5))}
			c.StartupProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromString("no_such"), Scheme: "FTP"}}}
			c.Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{}, PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 60}}}
			p.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "busybox:1", ReadinessProbe: &corev1.Probe{}}}
		}), []string{
			"spec.initContainers[0].readinessProbe: Forbidden: may not be set for init containers without restartPolicy=Always",
			"spec.containers[0].livenessProbe: Required value: must specify a handler type",
			"spec.containers[0].livenessProbe.periodSeconds: Invalid value: -1: must be greater than or equal to 0",
			"spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
			"spec.containers[0].readinessProbe.exec.command: Required value",
			"spec.containers[0].readinessProbe.tcpSocket: Forbidden: may not specify more than 1 handler type",
			"spec.containers[0].readinessProbe.terminationGracePeriodSeconds: Invalid value: 5: must not be set for readinessProbes",
			`spec.containers[0].startupProbe.httpGet.port: Invalid value: "no_such"`,
			`spec.containers[0].startupProbe.httpGet.scheme: Unsupported value: "FTP": supported values: "HTTP", "HTTPS"`,
			"spec.containers[0].lifecycle.postStart: Required value: must specify a handler type",
			"spec.containers[0].lifecycle.preStop.sleep.seconds: Invalid value: 60: must be greater than 0 and less than terminationGracePeriodSeconds (30)",
		}},
		// Sidecars: an init container with restartPolicy Always may have probes and
		// hooks (validated as an app container's); no other restartPolicy is taken.
		{"sidecars", pod(func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{
				{Name: "ok", Image: "busybox:1", RestartPolicy: new(corev1.ContainerRestartPolicyAlways),
					StartupProbe:   &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}},
					ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}},
					Lifecycle:      &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 1}}}},
				{Name: "bad", Image: "busybox:1", RestartPolicy: new(corev1.ContainerRestartPolicyAlways),
					LivenessProbe: &corev1.Probe{SuccessThreshold: 2, ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}},
				{Name: "never", Image: "busybox:1", RestartPolicy: new(corev1.ContainerRestartPolicy("Never")),
					StartupProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}},
			}
			p.Spec.Containers[0].RestartPolicy = new(corev1.ContainerRestartPolicyAlways)
		}), []string{
			"spec.initContainers[1].livenessProbe.successThreshold: Invalid value: 2: must be 1",
			`spec.initContainers[2].restartPolicy: Unsupported value: "Never": supported values: "Always"`,
			"spec.initContainers[2].startupProbe: Forbidden: may not be set for init containers without restartPolicy=Always",
			"spec.containers[0].restartPolicy: Forbidden: not supported by Skiff",
		}},
		// subPathExpr: a relative path, downwards, and not with subPath.
		{"subPathExpr", pod(func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{
				{Name: "v", MountPath: "/a", SubPathExpr: "$(POD_NAME)/logs"},
				{Name: "v", MountPath: "/b", SubPathExpr: "/$(POD_NAME)"},
				{Name: "v", MountPath: "/c", SubPathExpr: "$(A)/../x"},
				{Name: "v", MountPath: "/d", SubPath: "x", SubPathExpr: "$(A)"},
			}
		}), []string{
			`spec.containers[0].volumeMounts[1].subPathExpr: Invalid value: "/$(POD_NAME)": must be a relative path`,
			`spec.containers[0].volumeMounts[2].subPathExpr: Invalid value: "$(A)/../x": must not contain '..'`,
			`spec.containers[0].volumeMounts[3].subPathExpr: Invalid value: "$(A)": subPathExpr and subPath are mutually exclusive`,
		}},
		// Security contexts, DNS and the rest.
		{"security", pod(func(p *corev1.Pod) {
			p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: new(int64(-1)), FSGroup: new(int64(-2)),
				Sysctls: []corev1.Sysctl{{Name: "kernel.shm_rmid_forced", Value: "1"}, {Name: "net.ipv4.tcp_syncookies", Value: "1"},
					{Name: "vm.swappiness", Value: "1"}, {Name: "Bad..Name"}}}
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: new(true), AllowPrivilegeEscalation: new(false),
				Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN", "FLY"}}}
		}), []string{
			"spec.containers[0].securityContext: Invalid value: ",
			`spec.containers[0].securityContext.capabilities.add[1]: Invalid value: "FLY": not a Linux capability`,
			"spec.securityContext.runAsUser: Invalid value: -1: must be between 0 and 2147483647, inclusive",
			"spec.securityContext.fsGroup: Invalid value: -2: must be between 0 and 2147483647, inclusive",
			`spec.securityContext.sysctls[1].name: Forbidden: sysctl "net.ipv4.tcp_syncookies" not allowed with host net enabled`,
			`spec.securityContext.sysctls[3].name: Invalid value: "Bad..Name": must have at most 253 characters and match regex`,
		}},
		{"dns and names", pod(func(p *corev1.Pod) {
			p.Spec.DNSPolicy = "None"
			p.Spec.DNSConfig = &corev1.PodDNSConfig{Searches: []string{"ok.local", "bad_one"}, Options: []corev1.PodDNSConfigOption{{}}}
			p.Spec.Hostname, p.Spec.Subdomain = "Host", "sub.domain"
			p.Spec.ActiveDeadlineSeconds = new(int64(0))
			p.Spec.Containers[0].TerminationMessagePolicy = "Sometimes"
		}), []string{
			"spec.dnsConfig.nameservers: Required value: must provide at least one DNS nameserver when `dnsPolicy` is None",
			`spec.dnsConfig.searches[1]: Invalid value: "bad_one"`,
			"spec.dnsConfig.options[0]: Required value: Option.Name must not be empty",
			`spec.hostname: Invalid value: "Host"`,
			`spec.subdomain: Invalid value: "sub.domain"`,
			"spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 4294967295, inclusive",
			`spec.containers[0].terminationMessagePolicy: Unsupported value: "Sometimes": supported values: "FallbackToLogsOnError", "File"`,
		}},
		{"init containers share names with containers", pod(func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "web", Image: "busybox:1"}}
		}), []string{`spec.containers[0].name: Duplicate value: "web"`}},

		// Deployment.
		{"valid deployment", deployment(nil), nil},
		{"deployment defaulted", func() kinds.Object { d := deployment(nil); Default(d); return d }(), nil},
		{"deployment name", deployment(func(d *appsv1.Deployment) { d.Name = "Web" }),
			[]string{`metadata.name: Invalid value: "Web": a lowercase RFC 1123 subdomain must consist of`}},
		{"deployment replicas", deployment(func(d *appsv1.Deployment) { d.Spec.Replicas = new(int32(-1)) }),
			[]string{"spec.replicas: Invalid value: -1: must be greater than or equal to 0"}},
		{"deployment zero replicas", deployment(func(d *appsv1.Deployment) { d.Spec.Replicas = new(int32(0)) }), nil},
		{"selector missing", deployment(func(d *appsv1.Deployment) { d.Spec.Selector = nil }),
			[]string{"spec.selector: Required value"}},
		{"selector empty", deployment(func(d *appsv1.Deployment) { d.Spec.Selector = &metav1.LabelSelector{} }),
			[]string{`spec.selector: Invalid value: "": empty selector is invalid for deployment`}},
		{"selector mismatch", deployment(func(d *appsv1.Deployment) { d.Spec.Selector.MatchLabels["app"] = "db" }),
			[]string{`spec.selector: Invalid value: "app=db": selector does not match template labels`}},
		{"selector expressions match", deployment(func(d *appsv1.Deployment) {
			d.Spec.Selector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "app", Operator: "In", Values: []string{"web", "api"}}, {Key: "canary", Operator: "DoesNotExist"}}}
		}), nil},
		{"selector expressions mismatch", deployment(func(d *appsv1.Deployment) {
			d.Spec.Selector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "app", Operator: "In", Values: []string{"web", "api"}}, {Key: "tier", Operator: "Exists"}}}
		}), []string{`spec.selector: Invalid value: "app in (api,web),tier": selector does not match template labels`}},
		{"selector expressions invalid", deployment(func(d *appsv1.Deployment) {
			d.Spec.Selector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "app", Operator: "In"}, {Key: "a", Operator: "Exists", Values: []string{"x"}},
				{Key: "b", Operator: "Like"}, {Key: "bad key", Operator: "In", Values: []string{"bad value"}}}}
		}), []string{"spec.selector.matchExpressions[0].values: Required value",
			"spec.selector.matchExpressions[1].values: Forbidden",
			`spec.selector.matchExpressions[2].operator: Invalid value: "Like": not a valid selector operator`,
			`spec.selector.matchExpressions[3].key: Invalid value: "bad key"`,
			`spec.selector.matchExpressions[3].values[0]: Invalid value: "bad value"`}},
		{"selector matchLabels invalid", deployment(func(d *appsv1.Deployment) {
			d.Spec.Selector.MatchLabels = map[string]string{"app": "a b"}
		}), []string{`spec.selector.matchLabels: Invalid value: "a b"`}},
		{"template missing", deployment(func(d *appsv1.Deployment) { d.Spec.Template = corev1.PodTemplateSpec{} }),
			[]string{"spec.template: Required value"}},
		{"template image", deployment(func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "" }),
			[]string{"spec.template.spec.containers[0].image: Required value"}},
		{"template labels", deployment(func(d *appsv1.Deployment) { d.Spec.Template.Labels["x"] = "-" }),
			[]string{`spec.template.metadata.labels: Invalid value: "-"`}},
		{"template restart policy", deployment(func(d *appsv1.Deployment) { d.Spec.Template.Spec.RestartPolicy = "Never" }),
			[]string{`spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"`}},
		{"template restart policy unknown", deployment(func(d *appsv1.Deployment) { d.Spec.Template.Spec.RestartPolicy = "Sometimes" }),
			[]string{`spec.template.spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "Never", "OnFailure"`}},
		{"strategy type", deployment(func(d *appsv1.Deployment) { d.Spec.Strategy = appsv1.DeploymentStrategy{Type: "BlueGreen"} }),
			[]string{`spec.strategy.type: Unsupported value: "BlueGreen": supported values: "Recreate", "RollingUpdate"`}},
		{"recreate", deployment(func(d *appsv1.Deployment) { d.Spec.Strategy = appsv1.DeploymentStrategy{Type: "Recreate"} }), nil},
		{"recreate with rolling params", deployment(func(d *appsv1.Deployment) {
			d.Spec.Strategy = rolling(num(1), nil)
			d.Spec.Strategy.Type = "Recreate"
		}), []string{"spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"}},
		{"rolling ints and percents", deployment(func(d *appsv1.Deployment) {
			d.Spec.Strategy = rolling(num(2), percent("10%"))
		}), nil},
		{"rolling negative", deployment(func(d *appsv1.Deployment) {
			d.Spec.Strategy = rolling(num(-1), nil)
		}), []string{"spec.strategy.rollingUpdate.maxSurge: Invalid value: -1: must be greater than or equal to 0"}},
		// A fraction (1.5) no longer reaches validation: decoding refuses it (TestTypesRefuse).
		{"rolling bad string", deployment(func(d *appsv1.Deployment) {
			d.Spec.Strategy = rolling(percent("3"), &intstr.IntOrString{Type: 7})
		}), []string{`spec.strategy.rollingUpdate.maxSurge: Invalid value: "3": a valid percent string must be`,
			"spec.strategy.rollingUpdate.maxUnavailable: Invalid value: must be an integer or a percentage string"}},
		{"rolling over 100%", deployment(func(d *appsv1.Deployment) {
			d.Spec.Strategy = rolling(nil, percent("150%"))
		}), []string{`spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "150%": must not be greater than 100%`}},
		{"rolling overflowing percent", deployment(func(d *appsv1.Deployment) {
			d.Spec.Strategy = rolling(nil, percent("99999999999999999999%"))
		}), []string{`spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "99999999999999999999%": must not be greater than 100%`}},
		{"rolling both zero", deployment(func(d *appsv1.Deployment) {
			d.Spec.Strategy = rolling(percent("0%"), num(0))
		}), []string{"spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0"}},
		{"revision history", deployment(func(d *appsv1.Deployment) { d.Spec.RevisionHistoryLimit = new(int32(-1)) }),
			[]string{"spec.revisionHistoryLimit: Invalid value: -1: must be greater than or equal to 0"}},
		{"min ready", deployment(func(d *appsv1.Deployment) { d.Spec.MinReadySeconds = -1 }),
			[]string{"spec.minReadySeconds: Invalid value: -1: must be greater than or equal to 0"}},
		{"progress deadline", deployment(func(d *appsv1.Deployment) {
			d.Spec.MinReadySeconds, d.Spec.ProgressDeadlineSeconds = 10, new(int32(10))
		}), []string{"spec.progressDeadlineSeconds: Invalid value: 10: must be greater than minReadySeconds"}},
		{"progress deadline negative", deployment(func(d *appsv1.Deployment) { d.Spec.ProgressDeadlineSeconds = new(int32(-5)) }),
			[]string{"spec.progressDeadlineSeconds: Invalid value: -5: must be greater than or equal to 0"}},

		// ReplicaSet.
		{"valid replicaset", replicaSet(nil), nil},
		{"replicaset replicas", replicaSet(func(rs *appsv1.ReplicaSet) { rs.Spec.Replicas = new(int32(-1)) }),
			[]string{"spec.replicas: Invalid value: -1: must be greater than or equal to 0"}},
		{"replicaset selector empty", replicaSet(func(rs *appsv1.ReplicaSet) { rs.Spec.Selector = &metav1.LabelSelector{} }),
			[]string{`spec.selector: Invalid value: "": empty selector is invalid for replicaset`}},
		{"replicaset mismatch", replicaSet(func(rs *appsv1.ReplicaSet) { rs.Spec.Template.Labels = nil }),
			[]string{`spec.selector: Invalid value: "app=web": selector does not match template labels`}},
		{"replicaset template restart", replicaSet(func(rs *appsv1.ReplicaSet) { rs.Spec.Template.Spec.RestartPolicy = "OnFailure" }),
			[]string{`spec.template.spec.restartPolicy: Unsupported value: "OnFailure"`}},

		// Node.
		{"valid node", node(corev1.NodeSpec{Taints: []corev1.Taint{{Key: "dedicated", Value: "gpu", Effect: "NoSchedule"}},
			PodCIDR: "10.0.1.0/24"}), nil},
		{"node taints", node(corev1.NodeSpec{Taints: []corev1.Taint{
			{Key: "bad key", Effect: "NoSchedule"}, {Key: "k"}, {Key: "k", Effect: "Sometimes"},
			{Key: "d", Effect: "NoExecute"}, {Key: "d", Effect: "NoExecute"}}}),
			[]string{`spec.taints[0].key: Invalid value: "bad key"`, "spec.taints[1].effect: Required value",
				`spec.taints[2].effect: Unsupported value: "Sometimes": supported values: "NoExecute", "NoSchedule", "PreferNoSchedule"`,
				`spec.taints[4]: Duplicate value: {"key":"d","effect":"NoExecute"}: taints must be unique by key and effect pair`}},
		{"node taint key missing", node(corev1.NodeSpec{Taints: []corev1.Taint{{Effect: "NoSchedule"}}}),
			[]string{"spec.taints[0].key: Required value"}},
		{"node cidr", node(corev1.NodeSpec{PodCIDR: "10.0.1.0"}),
			[]string{`spec.podCIDR: Invalid value: "10.0.1.0": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)`}},

		// Namespace.
		{"valid namespace", &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}}, nil},
		{"namespace name is a label", &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team.a"}},
			[]string{`metadata.name: Invalid value: "team.a": must not contain dots`}},
		{"namespace name characters", &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team_a"}},
			[]string{`metadata.name: Invalid value: "team_a": a lowercase RFC 1123 label must consist of`}},
		{"namespace name length", &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: strings.Repeat("a", 64)}},
			[]string{"metadata.name: Invalid value: \"" + strings.Repeat("a", 64) + "\": must be no more than 63 characters"}},
		{"namespace finalizer", &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a"},
			Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{"kubernetes", "a b"}}},
			[]string{`spec.finalizers[1]: Invalid value: "a b"`}},

		// Lease.
		{"valid lease", &coordinationv1.Lease{ObjectMeta: meta("l"), Spec: coordinationv1.LeaseSpec{LeaseDurationSeconds: new(int32(15))}}, nil},
		{"lease duration", &coordinationv1.Lease{ObjectMeta: meta("l"),
			Spec: coordinationv1.LeaseSpec{LeaseDurationSeconds: new(int32(0)), LeaseTransitions: new(int32(-1))}},
			[]string{"spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
				"spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0"}},

		// Event.
		{"valid event", &corev1.Event{ObjectMeta: meta("web.1"), Type: "Normal",
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "web", Namespace: "default"}}, nil},
		{"event involved object", &corev1.Event{ObjectMeta: meta("e"), Type: "Loud", Count: -1,
			InvolvedObject: corev1.ObjectReference{Namespace: "Bad"}},
			[]string{`involvedObject.namespace: Invalid value: "Bad": a lowercase RFC 1123 label`,
				`type: Unsupported value: "Loud": supported values: "Normal", "Warning"`,
				"count: Invalid value: -1: must be greater than or equal to 0"}},
		{"event about nothing named", &corev1.Event{ObjectMeta: meta("e"), Type: "Normal"}, nil},
		{"event message of 1 KiB", &corev1.Event{ObjectMeta: meta("e"), Message: strings.Repeat("m", 1024),
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "web"}}, nil},
		{"event message over 1 KiB", &corev1.Event{ObjectMeta: meta("e"), Message: strings.Repeat("m", 1025),
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "web"}},
			[]string{"message: Too long: may not be more than 1024 bytes"}},

		// ConfigMap.
		{"valid configmap", &corev1.ConfigMap{ObjectMeta: meta("c"), Data: map[string]string{"app.conf": "x", "KEY_1": "y"},
			BinaryData: map[string][]byte{"blob": {1}}}, nil},
		{"configmap keys", &corev1.ConfigMap{ObjectMeta: meta("c"), Data: map[string]string{"a/b": "", "..x": "", strings.Repeat("k", 254): ""},
			BinaryData: map[string][]byte{"..x": nil}},
			[]string{`data[a/b]: Invalid value: "a/b": a valid config key must consist of alphanumeric characters`,
				`data[..x]: Invalid value: "..x": must not start with '..'`,
				"data[" + strings.Repeat("k", 254) + "]: Invalid value: \"" + strings.Repeat("k", 254) + "\": must be no more than 253 characters",
				`binaryData[..x]: Invalid value: "..x": must not start with '..'`,
				`binaryData[..x]: Invalid value: "..x": duplicate of key present in data`}},
		{"configmap too large", &corev1.ConfigMap{ObjectMeta: meta("c"), Data: map[string]string{"a": strings.Repeat("x", 1024*1024+1)}},
			[]string{"data: Too long: may not be more than 1048576 bytes"}},

		// Endpoints, in Kubernetes' words.
		{"valid endpoints", endpoints(func(ss *corev1.EndpointSubset) {}), nil},
		{"endpoints subset without addresses", endpoints(func(ss *corev1.EndpointSubset) { ss.Addresses = nil }),
			[]string{"subsets[0]: Required value: must specify `addresses` or `notReadyAddresses`"}},
		{"endpoints addresses", endpoints(func(ss *corev1.EndpointSubset) {
			ss.Addresses = []corev1.EndpointAddress{{IP: "127.0.0.1"}, {IP: "nope"}, {IP: "10.42.0.1", Hostname: "Web", NodeName: new("n_1")}}
			ss.NotReadyAddresses = []corev1.EndpointAddress{{IP: "169.254.1.1"}}
		}), []string{
			`subsets[0].addresses[0].ip: Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)`,
			`subsets[0].addresses[1].ip: Invalid value: "nope": must be a valid IP address`,
			`subsets[0].addresses[2].hostname: Invalid value: "Web": a lowercase RFC 1123 label`,
			`subsets[0].addresses[2].nodeName: Invalid value: "n_1": a lowercase RFC 1123 subdomain`,
			`subsets[0].notReadyAddresses[0].ip: Invalid value: "169.254.1.1": may not be in the link-local range (169.254.0.0/16, fe80::/10)`}},
		{"endpoints ports", endpoints(func(ss *corev1.EndpointSubset) {
			ss.Ports = []corev1.EndpointPort{{Port: 80, Protocol: "TCP"}, {Name: "Http", Port: 0, Protocol: "HTTP"}, {Name: "x", Port: 1}}
		}), []string{
			"subsets[0].ports[0].name: Required value",
			`subsets[0].ports[1].name: Invalid value: "Http": a lowercase RFC 1123 label`,
			"subsets[0].ports[1].port: Invalid value: 0: must be between 1 and 65535, inclusive",
			`subsets[0].ports[1].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"`,
			"subsets[0].ports[2].protocol: Required value"}},
		{"endpoints one port needs no name", endpoints(func(ss *corev1.EndpointSubset) { ss.Ports[0].Name = "" }), nil},
		{"endpoints targetRef fieldPath", endpoints(func(ss *corev1.EndpointSubset) {
			ss.Addresses[0].TargetRef = &corev1.ObjectReference{Kind: "Pod", Name: "p", FieldPath: "spec"}
		}), []string{"subsets[0].addresses[0].targetRef.fieldPath: Forbidden: not supported by Skiff"}},

		// Secret, with Kubernetes' rules per type.
		{"valid opaque secret", secret("", map[string]string{"username": "admin", "password": "s3cret"}), nil},
		{"secret keys", secret("", map[string]string{"a/b": "", "..x": ""}),
			[]string{`data[..x]: Invalid value: "..x": must not start with '..'`,
				`data[a/b]: Invalid value: "a/b": a valid config key must consist of alphanumeric characters`}},
		{"secret too large", secret("", map[string]string{"a": strings.Repeat("x", corev1.MaxSecretSize+1)}),
			[]string{"data: Too long: may not be more than 1048576 bytes"}},
		{"secret stringData keys", func() kinds.Object {
			s := secret("", nil)
			s.StringData = map[string]string{"bad key": "v"}
			return s
		}(), []string{`data[bad key]: Invalid value: "bad key": a valid config key must consist of alphanumeric characters`}},
		{"valid tls secret", secret(corev1.SecretTypeTLS, map[string]string{"tls.crt": "c", "tls.key": "k"}), nil},
		{"tls secret needs cert and key", secret(corev1.SecretTypeTLS, map[string]string{"ca.crt": "c"}),
			[]string{"data[tls.crt]: Required value", "data[tls.key]: Required value"}},
		{"tls secret from stringData", func() kinds.Object {
			s := secret(corev1.SecretTypeTLS, map[string]string{"tls.crt": "c"})
			s.StringData = map[string]string{"tls.key": "k"}
			return s
		}(), nil},
		{"valid dockerconfigjson", secret(corev1.SecretTypeDockerConfigJson, map[string]string{".dockerconfigjson": `{"auths":{}}`}), nil},
		{"dockerconfigjson required", secret(corev1.SecretTypeDockerConfigJson, map[string]string{".dockercfg": `{}`}),
			[]string{"data[.dockerconfigjson]: Required value"}},
		{"dockerconfigjson not json", secret(corev1.SecretTypeDockerConfigJson, map[string]string{".dockerconfigjson": `{"auths": hunter2`}),
			[]string{"data[.dockerconfigjson]: Invalid value: \"<secret contents redacted>\": invalid character 'h' looking for beginning of value"}},
		{"dockercfg not json", secret(corev1.SecretTypeDockercfg, map[string]string{".dockercfg": `[1`}),
			[]string{"data[.dockercfg]: Invalid value: \"<secret contents redacted>\": unexpected end of JSON input"}},
		{"basic-auth needs a username or a password", secret(corev1.SecretTypeBasicAuth, nil),
			[]string{"data[username]: Required value", "data[password]: Required value"}},
		{"basic-auth with an empty password", secret(corev1.SecretTypeBasicAuth, map[string]string{"password": ""}), nil},
		{"ssh-auth needs a key", secret(corev1.SecretTypeSSHAuth, map[string]string{"ssh-privatekey": ""}),
			[]string{"data[ssh-privatekey]: Required value"}},
		{"service-account-token names its account", secret(corev1.SecretTypeServiceAccountToken, nil),
			[]string{"metadata.annotations[kubernetes.io/service-account.name]: Required value"}},
		{"service-account-token", func() kinds.Object {
			s := secret(corev1.SecretTypeServiceAccountToken, nil)
			s.Annotations = map[string]string{corev1.ServiceAccountNameKey: "build-robot"}
			return s
		}(), nil},
		{"secret of a type of one's own", secret("example.com/api-key", map[string]string{"key": "k"}), nil},

		// ServiceAccount, and a pod's.
		{"valid service account", &corev1.ServiceAccount{ObjectMeta: meta("build-robot"), AutomountServiceAccountToken: new(false),
			ImagePullSecrets: []corev1.LocalObjectReference{{Name: "registry"}}}, nil},
		{"service account name", &corev1.ServiceAccount{ObjectMeta: meta("Build_Robot")},
			[]string{`metadata.name: Invalid value: "Build_Robot": a lowercase RFC 1123 subdomain`}},
		{"pod service account name", pod(func(p *corev1.Pod) { p.Spec.ServiceAccountName = "Robot" }),
			[]string{`spec.serviceAccountName: Invalid value: "Robot": a lowercase RFC 1123 subdomain`}},
		{"pod hostname and subdomain", pod(func(p *corev1.Pod) { p.Spec.Hostname, p.Spec.Subdomain = "web-0", "web" }), nil},
		{"pod hostname", pod(func(p *corev1.Pod) { p.Spec.Hostname = "Web.0" }),
			[]string{`spec.hostname: Invalid value: "Web.0": a lowercase RFC 1123 label must consist of`}},
		{"pod subdomain", pod(func(p *corev1.Pod) { p.Spec.Subdomain = "web_svc" }),
			[]string{`spec.subdomain: Invalid value: "web_svc": a lowercase RFC 1123 label must consist of`}},

		// PodDisruptionBudget.
		{"pdb minAvailable", pdb(func(s *policyv1.PodDisruptionBudgetSpec) { s.MinAvailable = num(2) }), nil},
		{"pdb maxUnavailable percent", pdb(func(s *policyv1.PodDisruptionBudgetSpec) { s.MaxUnavailable = percent("25%") }), nil},
		{"pdb neither, empty selector", pdb(func(s *policyv1.PodDisruptionBudgetSpec) { s.Selector = &metav1.LabelSelector{} }), nil},
		{"pdb no selector", pdb(func(s *policyv1.PodDisruptionBudgetSpec) { s.Selector, s.MinAvailable = nil, percent("100%") }), nil},
		{"pdb both", pdb(func(s *policyv1.PodDisruptionBudgetSpec) { s.MinAvailable, s.MaxUnavailable = num(1), num(1) }),
			[]string{`spec: Invalid value: {"minAvailable":1,"selector":{"matchLabels":{"app":"web"}},"maxUnavailable":1}: minAvailable and maxUnavailable cannot be both set`}},
		{"pdb negative", pdb(func(s *policyv1.PodDisruptionBudgetSpec) { s.MinAvailable = num(-1) }),
			[]string{"spec.minAvailable: Invalid value: -1: must be greater than or equal to 0"}},
		{"pdb over 100%", pdb(func(s *policyv1.PodDisruptionBudgetSpec) { s.MaxUnavailable = percent("101%") }),
			[]string{`spec.maxUnavailable: Invalid value: "101%": must not be greater than 100%`}},
		{"pdb not a percent", pdb(func(s *policyv1.PodDisruptionBudgetSpec) { s.MinAvailable = percent("half") }),
			[]string{`spec.minAvailable: Invalid value: "half": a valid percent string must be a numeric string followed by an ending '%'`}},
		{"pdb selector", pdb(func(s *policyv1.PodDisruptionBudgetSpec) {
			s.Selector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Near"}}}
		}), []string{`spec.selector.matchExpressions[0].operator: Invalid value: "Near": not a valid selector operator`}},
		{"pdb unhealthy policy", pdb(func(s *policyv1.PodDisruptionBudgetSpec) {
			s.UnhealthyPodEvictionPolicy = new(policyv1.UnhealthyPodEvictionPolicyType("Sometimes"))
		}), []string{`spec.unhealthyPodEvictionPolicy: Unsupported value: "Sometimes": supported values: "AlwaysAllow", "IfHealthyBudget"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkErrors(t, Validate(tc.obj), tc.want)
		})
	}
}

// TestAllProblemsReported: one object with several faults yields one error naming each,
// joined with "; ".
func TestAllProblemsReported(t *testing.T) {
	d := deployment(func(d *appsv1.Deployment) {
		d.Name = "Web"
		d.Spec.Replicas = new(int32(-1))
		d.Spec.Template.Spec.Containers[0].Image = ""
	})
	err := Validate(d)
	want := `metadata.name: Invalid value: "Web": ` + utilvalidation.IsDNS1123Subdomain("Web")[0] +
		"; spec.replicas: Invalid value: -1: must be greater than or equal to 0" +
		"; spec.template.spec.containers[0].image: Required value"
	if err == nil || err.Error() != want {
		t.Fatalf("got  %v\nwant %s", err, want)
	}
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatal("not an ErrorList")
	}
	if got := strings.Join(list.Paths(), ","); got != "metadata.name,spec.replicas,spec.template.spec.containers[0].image" {
		t.Errorf("Paths() = %s", got)
	}
}

// TestErrorOrderStable: problems found by iterating a map come out in one order.
func TestErrorOrderStable(t *testing.T) {
	p := pod(func(p *corev1.Pod) { p.Labels = map[string]string{"-a": "x y", "-b": "z w", "-c": "v u"} })
	first := Validate(p).Error()
	for range 20 {
		if got := Validate(p).Error(); got != first {
			t.Fatalf("order changed:\n%s\n%s", first, got)
		}
	}
}

func TestValidateUpdate(t *testing.T) {
	defaulted := func(o kinds.Object) kinds.Object { Default(o); return o }
	for _, tc := range []struct {
		name     string
		old, obj kinds.Object
		want     []string
	}{
		{"deployment scale", deployment(nil), deployment(func(d *appsv1.Deployment) { d.Spec.Replicas = new(int32(5)) }), nil},
		{"deployment selector immutable", deployment(nil), deployment(func(d *appsv1.Deployment) {
			d.Spec.Selector.MatchLabels["tier"] = "front"
			d.Spec.Template.Labels["tier"] = "front"
		}), []string{`spec.selector: Invalid value: {"matchLabels":{"app":"web","tier":"front"}}: field is immutable`}},
		{"replicaset selector immutable", replicaSet(nil), replicaSet(func(rs *appsv1.ReplicaSet) {
			rs.Spec.Selector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Exists"}}}
		}), []string{`spec.selector: Invalid value: {"matchExpressions":[{"key":"app","operator":"Exists"}]}: field is immutable`}},
		{"update still validates", replicaSet(nil), replicaSet(func(rs *appsv1.ReplicaSet) { rs.Spec.Replicas = new(int32(-2)) }),
			[]string{"spec.replicas: Invalid value: -2"}},
		{"pod image change", defaulted(pod(nil)), defaulted(pod(func(p *corev1.Pod) { p.Spec.Containers[0].Image = "nginx:1.28" })), nil},
		{"pod update against undefaulted", defaulted(pod(nil)), pod(func(p *corev1.Pod) { p.Spec.Containers[0].Image = "nginx:2" }), nil},
		{"pod labels change", pod(nil), pod(func(p *corev1.Pod) { p.Labels = map[string]string{"a": "b"} }), nil},
		{"pod toleration added", pod(func(p *corev1.Pod) {
			p.Spec.Tolerations = []corev1.Toleration{{Key: "a", Operator: "Exists"}}
		}), pod(func(p *corev1.Pod) {
			p.Spec.Tolerations = []corev1.Toleration{{Key: "a", Operator: "Exists"}, {Key: "b", Operator: "Exists"}}
		}), nil},
		{"pod toleration removed", pod(func(p *corev1.Pod) {
			p.Spec.Tolerations = []corev1.Toleration{{Key: "a", Operator: "Exists"}}
		}), pod(nil), []string{"spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`, `spec.initContainers[*].image`, `spec.activeDeadlineSeconds` and `spec.tolerations` (only additions to existing tolerations) (changed: spec.tolerations)"}},
		{"pod spec change", defaulted(pod(nil)), defaulted(pod(func(p *corev1.Pod) {
			p.Spec.RestartPolicy = "Never"
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "A"}}
		})), []string{"spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`, `spec.initContainers[*].image`, `spec.activeDeadlineSeconds` and `spec.tolerations` (only additions to existing tolerations) (changed: spec.containers[0].env, spec.restartPolicy)"}},
		{"pod container added", pod(nil), pod(func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "side", Image: "busybox"})
		}), []string{"spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`, `spec.initContainers[*].image`, `spec.activeDeadlineSeconds` and `spec.tolerations` (only additions to existing tolerations) (changed: spec.containers)"}},
		{"pod node name", pod(nil), pod(func(p *corev1.Pod) { p.Spec.NodeName = "w1" }),
			[]string{"spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`, `spec.initContainers[*].image`, `spec.activeDeadlineSeconds` and `spec.tolerations` (only additions to existing tolerations) (changed: spec.nodeName)"}},
		{"name immutable", pod(nil), pod(func(p *corev1.Pod) { p.Name = "other" }),
			[]string{`metadata.name: Invalid value: "other": field is immutable`}},
		{"namespace immutable", pod(nil), pod(func(p *corev1.Pod) { p.Namespace = "other" }),
			[]string{`metadata.namespace: Invalid value: "other": field is immutable`}},
		{"kind changed", pod(nil), replicaSet(nil), []string{`kind: Invalid value: "ReplicaSet": must be Pod, the kind of the stored object`}},
		{"node taints change", node(corev1.NodeSpec{}),
			node(corev1.NodeSpec{Unschedulable: true, Taints: []corev1.Taint{{Key: "k", Effect: "NoSchedule"}}}), nil},
		{"configmap mutable", &corev1.ConfigMap{ObjectMeta: meta("c"), Data: map[string]string{"a": "1"}},
			&corev1.ConfigMap{ObjectMeta: meta("c"), Data: map[string]string{"a": "2"}}, nil},
		{"configmap immutable", &corev1.ConfigMap{ObjectMeta: meta("c"), Data: map[string]string{"a": "1"}, Immutable: new(true)},
			&corev1.ConfigMap{ObjectMeta: meta("c"), Data: map[string]string{"a": "2"}, BinaryData: map[string][]byte{"b": {1}}},
			[]string{"immutable: Forbidden: field is immutable when `immutable` is set",
				"data: Forbidden: field is immutable when `immutable` is set",
				"binaryData: Forbidden: field is immutable when `immutable` is set"}},
		{"configmap immutable labels", &corev1.ConfigMap{ObjectMeta: meta("c"), Immutable: new(true)},
			&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "default", Labels: map[string]string{"a": "b"}},
				Immutable: new(true)}, nil},
		{"secret data changes", secret("", map[string]string{"a": "1"}), secret("", map[string]string{"a": "2"}), nil},
		{"secret type immutable", secret("", map[string]string{"a": "1"}), secret("example.com/other", map[string]string{"a": "1"}),
			[]string{`type: Invalid value: "example.com/other": field is immutable`}},
		{"secret immutable", func() kinds.Object {
			s := secret("", map[string]string{"a": "1"})
			s.Immutable = new(true)
			return s
		}(), secret("", map[string]string{"a": "2"}),
			[]string{"immutable: Forbidden: field is immutable when `immutable` is set",
				"data: Forbidden: field is immutable when `immutable` is set"}},
		{"secret immutable labels", func() kinds.Object {
			s := secret("", map[string]string{"a": "1"})
			s.Immutable = new(true)
			return s
		}(), func() kinds.Object {
			s := secret("", map[string]string{"a": "1"})
			s.Immutable, s.Labels = new(true), map[string]string{"a": "b"}
			return s
		}(), nil},
		{"pod service account immutable", defaulted(pod(func(p *corev1.Pod) { p.Spec.ServiceAccountName = "default" })),
			defaulted(pod(func(p *corev1.Pod) { p.Spec.ServiceAccountName = "robot" })),
			[]string{"spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`, `spec.initContainers[*].image`, `spec.activeDeadlineSeconds` and `spec.tolerations` (only additions to existing tolerations) (changed: spec.serviceAccountName, spec.serviceAccount)"}},
		{"deadline shortened", pod(func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = new(int64(60)) }),
			pod(func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = new(int64(30)) }), nil},
		{"deadline extended", pod(func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = new(int64(60)) }),
			pod(func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = new(int64(90)) }),
			[]string{"spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`, `spec.initContainers[*].image`, `spec.activeDeadlineSeconds` and `spec.tolerations` (only additions to existing tolerations) (changed: spec.activeDeadlineSeconds)"}},
		{"unsupported field on update", pod(nil), pod(func(p *corev1.Pod) { p.Spec.SchedulerName = "h" }),
			[]string{"spec.schedulerName: Forbidden: not supported by Skiff",
				"spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`, `spec.initContainers[*].image`, `spec.activeDeadlineSeconds` and `spec.tolerations` (only additions to existing tolerations) (changed: spec.schedulerName)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkErrors(t, ValidateUpdate(tc.old, tc.obj), tc.want)
		})
	}
}

func TestValidateStatus(t *testing.T) {
	for _, tc := range []struct {
		name string
		obj  kinds.Object
		want []string
	}{
		{"pod ok", pod(func(p *corev1.Pod) {
			p.Status = corev1.PodStatus{Phase: "Running", PodIP: "10.0.0.5",
				Conditions:        []corev1.PodCondition{{Type: "Ready", Status: "True"}},
				ContainerStatuses: []corev1.ContainerStatus{{Name: "web", RestartCount: 2}}}
		}), nil},
		{"pod bad", pod(func(p *corev1.Pod) {
			p.Status = corev1.PodStatus{Phase: "Sleeping", HostIP: "x",
				Conditions:        []corev1.PodCondition{{Status: "Maybe"}},
				ContainerStatuses: []corev1.ContainerStatus{{RestartCount: -1}}}
		}), []string{`status.phase: Unsupported value: "Sleeping"`, `status.conditions[0].type: Required value`,
			`status.conditions[0].status: Unsupported value: "Maybe": supported values: "False", "True", "Unknown"`,
			`status.hostIP: Invalid value: "x"`, "status.containerStatuses[0].name: Required value",
			"status.containerStatuses[0].restartCount: Invalid value: -1"}},
		{"pod status ignores spec", pod(func(p *corev1.Pod) { p.Spec = corev1.PodSpec{Hostname: "h"} }), nil},
		{"pod status not supported", pod(func(p *corev1.Pod) {
			p.Status = corev1.PodStatus{QOSClass: corev1.PodQOSBestEffort, PodIPs: []corev1.PodIP{{IP: "10.0.0.5"}}, ResourceClaimStatuses: []corev1.PodResourceClaimStatus{{Name: "gpu"}},
				ContainerStatuses: []corev1.ContainerStatus{{Name: "web", User: &corev1.ContainerUser{}}}}
		}), []string{"status.resourceClaimStatuses: Forbidden: not supported by Skiff",
			"status.containerStatuses[0].user: Forbidden: not supported by Skiff"}},
		{"pod status ips and qos", pod(func(p *corev1.Pod) {
			p.Status = corev1.PodStatus{QOSClass: "Best", PodIP: "10.0.0.5", PodIPs: []corev1.PodIP{{IP: "10.0.0.6"}, {IP: "x"}},
				InitContainerStatuses: []corev1.ContainerStatus{{RestartCount: -1}}}
		}), []string{`status.qosClass: Unsupported value: "Best": supported values: "BestEffort", "Burstable", "Guaranteed"`,
			`status.podIPs[0].ip: Invalid value: "10.0.0.6": must match status.podIP`,
			`status.podIPs[1].ip: Invalid value: "x"`, "status.initContainerStatuses[0].name: Required value",
			"status.initContainerStatuses[0].restartCount: Invalid value: -1"}},
		{"deployment counts", deployment(func(d *appsv1.Deployment) {
			d.Status = appsv1.DeploymentStatus{Replicas: -1, AvailableReplicas: -2, CollisionCount: new(int32(-1)),
				Conditions: []appsv1.DeploymentCondition{{Type: "Available", Status: "True"}}}
		}), []string{"status.replicas: Invalid value: -1", "status.availableReplicas: Invalid value: -2",
			"status.collisionCount: Invalid value: -1"}},
		{"replicaset counts", replicaSet(func(rs *appsv1.ReplicaSet) {
			rs.Status = appsv1.ReplicaSetStatus{ReadyReplicas: -1, ObservedGeneration: -1}
		}), []string{"status.observedGeneration: Invalid value: -1", "status.readyReplicas: Invalid value: -1"}},
		// A quantity that does not parse ("four") no longer reaches validation: decoding
		// refuses it (TestTypesRefuse).
		{"node capacity", &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w1"}, Status: corev1.NodeStatus{
			Capacity:    corev1.ResourceList{"cpu": resource.MustParse("4"), "memory": resource.MustParse("8Gi"), "pods": resource.MustParse("110")},
			Allocatable: corev1.ResourceList{"cpu": resource.MustParse("-4")},
			Conditions:  []corev1.NodeCondition{{Type: "Ready", Status: "Unknown"}}, Addresses: []corev1.NodeAddress{{Address: "10.0.0.1"}}}},
			[]string{`status.allocatable[cpu]: Invalid value: "-4": must be greater than or equal to 0`, "status.addresses[0].type: Required value"}},
		{"namespace phase", &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a"}, Status: corev1.NamespaceStatus{Phase: "Gone"}},
			[]string{`status.phase: Unsupported value: "Gone": supported values: "Active", "Terminating"`}},
		{"configmap has no status", &corev1.ConfigMap{ObjectMeta: meta("c")}, nil},
		{"job condition of its own type", &batchv1.Job{ObjectMeta: meta("pi"), Status: batchv1.JobStatus{
			Conditions: []batchv1.JobCondition{{Type: "StatusUpdate", Status: "True"}, {Status: "Maybe"}}}},
			[]string{"status.conditions[1].type: Required value", `status.conditions[1].status: Unsupported value: "Maybe"`}},
		{"namespace conditions", &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a"}, Status: corev1.NamespaceStatus{
			Phase: "Terminating", Conditions: []corev1.NamespaceCondition{{Type: corev1.NamespaceContentRemaining, Status: "Maybe"}}}},
			[]string{`status.conditions[0].status: Unsupported value: "Maybe"`}},
		{"pdb status", &policyv1.PodDisruptionBudget{ObjectMeta: meta("web"), Status: policyv1.PodDisruptionBudgetStatus{
			DisruptionsAllowed: -1, CurrentHealthy: 2, DesiredHealthy: 2, ExpectedPods: -3,
			Conditions: []metav1.Condition{{Type: policyv1.DisruptionAllowedCondition, Status: "False", Reason: policyv1.InsufficientPodsReason,
				LastTransitionTime: metav1.Now()}, {Type: "x", Status: "Yes"}}}},
			[]string{"status.disruptionsAllowed: Invalid value: -1", "status.expectedPods: Invalid value: -3",
				`status.conditions[1].status: Unsupported value: "Yes"`, "status.conditions[1].lastTransitionTime: Required value",
				"status.conditions[1].reason: Required value"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkErrors(t, ValidateStatus(tc.obj), tc.want)
		})
	}
}

func TestDefault(t *testing.T) {
	p := pod(func(p *corev1.Pod) {
		p.Spec.Containers = []corev1.Container{
			{Name: "a", Image: "nginx", Ports: []corev1.ContainerPort{{ContainerPort: 80}, {ContainerPort: 53, Protocol: "UDP"}}},
			{Name: "b", Image: "nginx:1.27"},
			{Name: "c", Image: "nginx:latest", ImagePullPolicy: "Never"},
		}
		p.Spec.Containers[1].Resources.Limits = corev1.ResourceList{"memory": resource.MustParse("64Mi")}
		p.Spec.Containers[1].ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(80)}}}
		p.Spec.Containers[1].Env = []corev1.EnvVar{{Name: "N", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}
		p.Spec.InitContainers = []corev1.Container{{Name: "i", Image: "busybox:1"}}
		p.Spec.Volumes = []corev1.Volume{{Name: "cm", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{}}},
			{Name: "h", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/x"}}}}
		p.Spec.Tolerations = []corev1.Toleration{{Key: "k", Value: "v"}, {Operator: "Exists"}}
	})
	Default(p)
	msg := func(c corev1.Container) corev1.Container {
		c.TerminationMessagePath, c.TerminationMessagePolicy = "/dev/termination-log", "File"
		return c
	}
	want := corev1.PodSpec{
		InitContainers: []corev1.Container{msg(corev1.Container{Name: "i", Image: "busybox:1", ImagePullPolicy: "IfNotPresent"})},
		Containers: []corev1.Container{
			msg(corev1.Container{Name: "a", Image: "nginx", ImagePullPolicy: "Always",
				Ports: []corev1.ContainerPort{{ContainerPort: 80, Protocol: "TCP"}, {ContainerPort: 53, Protocol: "UDP"}}}),
			msg(corev1.Container{Name: "b", Image: "nginx:1.27", ImagePullPolicy: "IfNotPresent",
				Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{"memory": resource.MustParse("64Mi")},
					Requests: corev1.ResourceList{"memory": resource.MustParse("64Mi")}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(80), Scheme: "HTTP"}},
					TimeoutSeconds: 1, PeriodSeconds: 10, SuccessThreshold: 1, FailureThreshold: 3},
				Env: []corev1.EnvVar{{Name: "N", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}}}}}),
			msg(corev1.Container{Name: "c", Image: "nginx:latest", ImagePullPolicy: "Never"}),
		},
		Volumes: []corev1.Volume{{Name: "cm", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{DefaultMode: new(int32(0o644))}}},
			{Name: "h", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/x", Type: new(corev1.HostPathUnset)}}}},
		RestartPolicy:                 "Always",
		TerminationGracePeriodSeconds: new(int64(30)),
		DNSPolicy:                     "ClusterFirst",
		EnableServiceLinks:            new(true),
		SecurityContext:               &corev1.PodSecurityContext{},
		Tolerations:                   []corev1.Toleration{{Key: "k", Operator: "Equal", Value: "v"}, {Operator: "Exists"}},
	}
	if !equality.Semantic.DeepEqual(p.Spec, want) {
		t.Errorf("pod spec defaults:\ngot  %+v\nwant %+v", p.Spec, want)
	}

	d := deployment(nil)
	Default(d)
	wantD := appsv1.DeploymentSpec{
		Replicas: new(int32(1)),
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}}, Spec: corev1.PodSpec{
			Containers:    []corev1.Container{msg(corev1.Container{Name: "web", Image: "nginx:1.27", ImagePullPolicy: "IfNotPresent"})},
			RestartPolicy: "Always", TerminationGracePeriodSeconds: new(int64(30)), DNSPolicy: "ClusterFirst",
			EnableServiceLinks: new(true), SecurityContext: &corev1.PodSecurityContext{}}},
		Strategy:                rolling(percent("25%"), percent("25%")),
		RevisionHistoryLimit:    new(int32(10)),
		ProgressDeadlineSeconds: new(int32(600)),
	}
	if !equality.Semantic.DeepEqual(d.Spec, wantD) {
		t.Errorf("deployment spec defaults:\ngot  %+v\nwant %+v", d.Spec, wantD)
	}

	rs := replicaSet(func(rs *appsv1.ReplicaSet) { rs.Spec.Selector = nil })
	Default(rs)
	if *rs.Spec.Replicas != 1 || rs.Spec.Selector != nil || rs.Spec.Template.Spec.RestartPolicy != "Always" ||
		rs.Spec.Template.Spec.Containers[0].ImagePullPolicy != "IfNotPresent" {
		t.Errorf("replicaset defaults: %+v", rs.Spec)
	}

	// A Secret is Opaque unless it says otherwise, and its stringData is written into
	// its data (winning over data's value of the same key), never kept.
	sec := secret("", map[string]string{"a": "from data", "b": "kept"})
	sec.Type = ""
	sec.StringData = map[string]string{"a": "from stringData", "c": "new"}
	Default(sec)
	if sec.Type != corev1.SecretTypeOpaque || sec.StringData != nil || len(sec.Data) != 3 ||
		string(sec.Data["a"]) != "from stringData" || string(sec.Data["b"]) != "kept" || string(sec.Data["c"]) != "new" {
		t.Errorf("secret defaults: type %q, data %q, stringData %q", sec.Type, sec.Data, sec.StringData)
	}
	only := &corev1.Secret{ObjectMeta: meta("s"), Type: corev1.SecretTypeTLS, StringData: map[string]string{"tls.crt": "c"}}
	Default(only)
	if only.Type != corev1.SecretTypeTLS || string(only.Data["tls.crt"]) != "c" {
		t.Errorf("secret of stringData only: %+v", only)
	}

	// serviceAccount is serviceAccountName's deprecated alias: either names the
	// account, and both say it once defaulted.
	for _, sp := range []corev1.PodSpec{{ServiceAccountName: "robot"}, {DeprecatedServiceAccount: "robot"},
		{ServiceAccountName: "robot", DeprecatedServiceAccount: "other"}} {
		p := pod(func(p *corev1.Pod) {
			p.Spec.ServiceAccountName, p.Spec.DeprecatedServiceAccount = sp.ServiceAccountName, sp.DeprecatedServiceAccount
		})
		Default(p)
		if p.Spec.ServiceAccountName != "robot" || p.Spec.DeprecatedServiceAccount != "robot" {
			t.Errorf("pod with %+v: serviceAccountName %q, serviceAccount %q", sp, p.Spec.ServiceAccountName, p.Spec.DeprecatedServiceAccount)
		}
	}

	// A missing template stays missing, for Validate to report.
	empty := deployment(func(d *appsv1.Deployment) { d.Spec.Template = corev1.PodTemplateSpec{} })
	Default(empty)
	checkErrors(t, Validate(empty), []string{"spec.template: Required value"})
}

func TestDefaultKeepsSetValues(t *testing.T) {
	d := deployment(func(d *appsv1.Deployment) {
		d.Spec.Replicas, d.Spec.RevisionHistoryLimit, d.Spec.ProgressDeadlineSeconds = new(int32(0)), new(int32(0)), new(int32(60))
		d.Spec.Strategy = rolling(num(0), nil)
	})
	Default(d)
	s := d.Spec
	if *s.Replicas != 0 || *s.RevisionHistoryLimit != 0 || *s.ProgressDeadlineSeconds != 60 {
		t.Errorf("explicit zeroes overwritten: %+v", s)
	}
	if *s.Strategy.RollingUpdate.MaxSurge != intstr.FromInt32(0) || *s.Strategy.RollingUpdate.MaxUnavailable != intstr.FromString("25%") {
		t.Errorf("rolling update: %+v", s.Strategy.RollingUpdate)
	}

	r := deployment(func(d *appsv1.Deployment) { d.Spec.Strategy = appsv1.DeploymentStrategy{Type: "Recreate"} })
	Default(r)
	if r.Spec.Strategy.RollingUpdate != nil {
		t.Errorf("Recreate got rolling update params: %+v", r.Spec.Strategy)
	}
	if err := Validate(r); err != nil {
		t.Errorf("defaulted Recreate deployment: %v", err)
	}
}

func TestDefaultIdempotent(t *testing.T) {
	for _, obj := range []kinds.Object{
		pod(func(p *corev1.Pod) { p.Spec.Tolerations = []corev1.Toleration{{Key: "k"}} }),
		pod(func(p *corev1.Pod) { p.Spec = corev1.PodSpec{} }),
		deployment(nil),
		deployment(func(d *appsv1.Deployment) { d.Spec = appsv1.DeploymentSpec{} }),
		deployment(func(d *appsv1.Deployment) { d.Spec.Template = corev1.PodTemplateSpec{} }),
		replicaSet(nil),
		replicaSet(func(rs *appsv1.ReplicaSet) { rs.Spec.Template.Spec = corev1.PodSpec{} }),
		&corev1.Node{}, &corev1.ConfigMap{}, &corev1.Namespace{}, &corev1.Event{}, &coordinationv1.Lease{},
		&corev1.Secret{StringData: map[string]string{"a": "b"}}, &corev1.ServiceAccount{},
	} {
		Default(obj)
		once := obj.DeepCopyObject()
		Default(obj)
		if !equality.Semantic.DeepEqual(once, obj) {
			t.Errorf("%s: second Default changed it:\n%+v\n%+v", kinds.Of(obj).Kind, once, obj)
		}
	}
}

func TestPullPolicyFor(t *testing.T) {
	for image, want := range map[string]corev1.PullPolicy{
		"nginx":                           corev1.PullAlways,
		"nginx:latest":                    corev1.PullAlways,
		"nginx:1.27":                      corev1.PullIfNotPresent,
		"localhost:5000/app":              corev1.PullAlways,
		"localhost:5000/app:v2":           corev1.PullIfNotPresent,
		"localhost:5000/app:latest":       corev1.PullAlways,
		"nginx@sha256:abcd":               corev1.PullIfNotPresent,
		"nginx:latest@sha256:abcd":        corev1.PullIfNotPresent,
		"registry.example.com/team/app":   corev1.PullAlways,
		"registry.example.com/team/app:1": corev1.PullIfNotPresent,
	} {
		if got := PullPolicyFor(image); got != want {
			t.Errorf("PullPolicyFor(%q) = %s, want %s", image, got, want)
		}
	}
}

// TestTypesRefuse: values the old messages let through to validation (a quantity that
// does not parse, a fractional or boolean maxSurge) cannot be held by Kubernetes' types:
// decoding refuses them, before validation runs.
func TestTypesRefuse(t *testing.T) {
	for _, doc := range []string{
		`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"i","resources":{"limits":{"cpu":"lots"}}}]}}`,
		`{"apiVersion":"v1","kind":"Node","metadata":{"name":"n"},"status":{"allocatable":{"cpu":"four"}}}`,
		`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"strategy":{"rollingUpdate":{"maxSurge":1.5}}}}`,
		`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"strategy":{"rollingUpdate":{"maxUnavailable":true}}}}`,
	} {
		if obj, err := kinds.DecodeManifest([]byte(doc)); err == nil {
			t.Errorf("decoded %s into %+v", doc, obj)
		}
	}
}

// endpoints is a valid Endpoints object, changed by f.
func endpoints(f func(*corev1.EndpointSubset)) *corev1.Endpoints {
	ep := &corev1.Endpoints{ObjectMeta: meta("web"), Subsets: []corev1.EndpointSubset{{
		Addresses: []corev1.EndpointAddress{{IP: "10.42.0.5", NodeName: new("w1"), TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: "web-1"}}},
		Ports:     []corev1.EndpointPort{{Name: "http", Port: 8080, Protocol: corev1.ProtocolTCP}}}}}
	f(&ep.Subsets[0])
	return ep
}

// TestDefaultEndpoints: an Endpoints port without a protocol is TCP, as in Kubernetes.
func TestDefaultEndpoints(t *testing.T) {
	ep := endpoints(func(ss *corev1.EndpointSubset) {
		ss.Ports = append(ss.Ports, corev1.EndpointPort{Name: "dns", Port: 53, Protocol: "UDP"})
	})
	ep.Subsets[0].Ports[0].Protocol = ""
	Default(ep)
	if p := ep.Subsets[0].Ports; p[0].Protocol != corev1.ProtocolTCP || p[1].Protocol != corev1.ProtocolUDP {
		t.Fatalf("ports %+v, want TCP then the UDP set", p)
	}
}

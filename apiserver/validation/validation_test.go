package validation

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	corev1 "github.com/skiffhq/skiff/proto/core/v1"
	"github.com/skiffhq/skiff/proto/kinds"
)

func meta(name string) *corev1.ObjectMeta {
	return &corev1.ObjectMeta{Name: name, Namespace: "default"}
}

func podSpec() *corev1.PodSpec {
	return &corev1.PodSpec{Containers: []*corev1.Container{{Name: "web", Image: "nginx:1.27"}}}
}

func pod(mut func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{Metadata: meta("web-1"), Spec: podSpec()}
	if mut != nil {
		mut(p)
	}
	return p
}

func template() *corev1.PodTemplateSpec {
	return &corev1.PodTemplateSpec{Metadata: &corev1.ObjectMeta{Labels: map[string]string{"app": "web"}}, Spec: podSpec()}
}

func deployment(mut func(*corev1.Deployment)) *corev1.Deployment {
	d := &corev1.Deployment{Metadata: meta("web"), Spec: &corev1.DeploymentSpec{
		Selector: &corev1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
		Template: template(),
	}}
	if mut != nil {
		mut(d)
	}
	return d
}

func replicaSet(mut func(*corev1.ReplicaSet)) *corev1.ReplicaSet {
	rs := &corev1.ReplicaSet{Metadata: meta("web-abc"), Spec: &corev1.ReplicaSetSpec{
		Selector: &corev1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
		Template: template(),
	}}
	if mut != nil {
		mut(rs)
	}
	return rs
}

func ptr32(v int32) *int32 { return &v }
func ptr64(v int64) *int64 { return &v }
func yes() *bool           { b := true; return &b }

func rolling(surge, unavail *structpb.Value) *corev1.DeploymentStrategy {
	return &corev1.DeploymentStrategy{Type: "RollingUpdate",
		RollingUpdate: &corev1.RollingUpdateDeployment{MaxSurge: surge, MaxUnavailable: unavail}}
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
		{"name uppercase", pod(func(p *corev1.Pod) { p.Metadata.Name = "Web" }),
			[]string{`metadata.name: Invalid value: "Web": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character`}},
		{"name too long", pod(func(p *corev1.Pod) { p.Metadata.Name = long }),
			[]string{`metadata.name: Invalid value: "` + long + `": must be no more than 253 characters`}},
		{"name missing", pod(func(p *corev1.Pod) { p.Metadata.Name = "" }),
			[]string{"metadata.name: Required value: name or generateName is required"}},
		{"generateName", pod(func(p *corev1.Pod) { p.Metadata.Name, p.Metadata.GenerateName = "", "web-" }), nil},
		{"generateName invalid", pod(func(p *corev1.Pod) { p.Metadata.Name, p.Metadata.GenerateName = "", "Web_" }),
			[]string{`metadata.generateName: Invalid value: "Web_": a lowercase RFC 1123 subdomain`}},
		{"namespace invalid", pod(func(p *corev1.Pod) { p.Metadata.Namespace = "a.b" }),
			[]string{`metadata.namespace: Invalid value: "a.b": a lowercase RFC 1123 label`}},
		{"namespace on cluster-scoped", &corev1.Node{Metadata: meta("n1")},
			[]string{"metadata.namespace: Forbidden: not allowed on this type"}},
		{"label key", pod(func(p *corev1.Pod) { p.Metadata.Labels = map[string]string{"-bad": "x"} }),
			[]string{`metadata.labels: Invalid value: "-bad": name part must consist of`}},
		{"label value", pod(func(p *corev1.Pod) { p.Metadata.Labels = map[string]string{"app": "a b"} }),
			[]string{`metadata.labels: Invalid value: "a b": must consist of`}},
		{"annotation key", pod(func(p *corev1.Pod) { p.Metadata.Annotations = map[string]string{"a b": "any value at all"} }),
			[]string{`metadata.annotations: Invalid value: "a b"`}},
		{"annotations too large", pod(func(p *corev1.Pod) {
			p.Metadata.Annotations = map[string]string{"big": strings.Repeat("x", 256*1024)}
		}), []string{"metadata.annotations: Too long: must have at most 262144 bytes"}},
		{"owner reference fields", pod(func(p *corev1.Pod) { p.Metadata.OwnerReferences = []*corev1.OwnerReference{{}} }),
			[]string{"metadata.ownerReferences[0].apiVersion: Required value", "metadata.ownerReferences[0].kind: Required value",
				"metadata.ownerReferences[0].name: Required value", "metadata.ownerReferences[0].uid: Required value"}},
		{"two controllers", pod(func(p *corev1.Pod) {
			ref := func(n string) *corev1.OwnerReference {
				return &corev1.OwnerReference{ApiVersion: "apps/v1", Kind: "ReplicaSet", Name: n, Uid: "u-" + n, Controller: yes()}
			}
			p.Metadata.OwnerReferences = []*corev1.OwnerReference{ref("a"), ref("b")}
		}), []string{"metadata.ownerReferences: Invalid value: only one reference can have controller set to true"}},
		{"finalizer", pod(func(p *corev1.Pod) { p.Metadata.Finalizers = []string{"a b"} }),
			[]string{`metadata.finalizers[0]: Invalid value: "a b"`}},

		// Pod.
		{"no containers", pod(func(p *corev1.Pod) { p.Spec.Containers = nil }), []string{"spec.containers: Required value"}},
		{"no spec", pod(func(p *corev1.Pod) { p.Spec = nil }), []string{"spec.containers: Required value"}},
		{"container name missing", pod(func(p *corev1.Pod) { p.Spec.Containers[0].Name = "" }),
			[]string{"spec.containers[0].name: Required value"}},
		{"container name invalid", pod(func(p *corev1.Pod) { p.Spec.Containers[0].Name = "web.1" }),
			[]string{`spec.containers[0].name: Invalid value: "web.1": a lowercase RFC 1123 label must consist of`}},
		{"container name duplicate", pod(func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, &corev1.Container{Name: "web", Image: "x"})
		}), []string{`spec.containers[1].name: Duplicate value: "web"`}},
		{"image missing", pod(func(p *corev1.Pod) { p.Spec.Containers[0].Image = "" }),
			[]string{"spec.containers[0].image: Required value"}},
		{"image whitespace", pod(func(p *corev1.Pod) { p.Spec.Containers[0].Image = " nginx" }),
			[]string{`spec.containers[0].image: Invalid value: " nginx": must not have leading or trailing whitespace`}},
		{"pull policy", pod(func(p *corev1.Pod) { p.Spec.Containers[0].ImagePullPolicy = "Sometimes" }),
			[]string{`spec.containers[0].imagePullPolicy: Unsupported value: "Sometimes": supported values: "Always", "IfNotPresent", "Never"`}},
		{"restart policy", pod(func(p *corev1.Pod) { p.Spec.RestartPolicy = "Sometimes" }),
			[]string{`spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "Never", "OnFailure"`}},
		{"port zero", pod(func(p *corev1.Pod) { p.Spec.Containers[0].Ports = []*corev1.ContainerPort{{}} }),
			[]string{"spec.containers[0].ports[0].containerPort: Required value"}},
		{"port range", pod(func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []*corev1.ContainerPort{{ContainerPort: 70000, HostPort: -1}}
		}), []string{"spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
			"spec.containers[0].ports[0].hostPort: Invalid value: -1: must be between 1 and 65535, inclusive"}},
		{"port protocol", pod(func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []*corev1.ContainerPort{{ContainerPort: 80, Protocol: "ICMP"}}
		}), []string{`spec.containers[0].ports[0].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"`}},
		{"port names", pod(func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []*corev1.ContainerPort{{Name: "http", ContainerPort: 80}, {Name: "http", ContainerPort: 81},
				{Name: "Bad--", ContainerPort: 82}}
		}), []string{`spec.containers[0].ports[1].name: Duplicate value: "http"`,
			`spec.containers[0].ports[2].name: Invalid value: "Bad--": must contain only`,
			`spec.containers[0].ports[2].name: Invalid value: "Bad--": must not contain consecutive hyphens`,
			`spec.containers[0].ports[2].name: Invalid value: "Bad--": must not begin or end with a hyphen`}},
		{"host ip", pod(func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []*corev1.ContainerPort{{ContainerPort: 80, HostIp: "nope"}}
		}), []string{`spec.containers[0].ports[0].hostIP: Invalid value: "nope"`}},
		{"resources valid", pod(func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources = &corev1.ResourceRequirements{
				Requests: map[string]string{"cpu": "250m", "memory": "64Mi"}, Limits: map[string]string{"cpu": "1", "memory": "128Mi"}}
		}), nil},
		{"resources bad quantity", pod(func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources = &corev1.ResourceRequirements{Limits: map[string]string{"cpu": "lots", "memory": "-1"}}
		}), []string{`spec.containers[0].resources.limits[cpu]: Invalid value: "lots": quantities must match`,
			`spec.containers[0].resources.limits[memory]: Invalid value: "-1": must be greater than or equal to 0`}},
		{"requests over limits", pod(func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources = &corev1.ResourceRequirements{
				Requests: map[string]string{"cpu": "2"}, Limits: map[string]string{"cpu": "500m"}}
		}), []string{`spec.containers[0].resources.requests[cpu]: Invalid value: "2": must be less than or equal to cpu limit of 500m`}},
		{"env names", pod(func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []*corev1.EnvVar{{Name: "OK_1"}, {Name: ""}, {Name: "1BAD"}, {Name: "my.env-name"}}
		}), []string{"spec.containers[0].env[1].name: Required value",
			`spec.containers[0].env[2].name: Invalid value: "1BAD": a valid environment variable name must consist of`}},
		{"toleration operator", pod(func(p *corev1.Pod) {
			p.Spec.Tolerations = []*corev1.Toleration{{Key: "k", Operator: "Gt"}}
		}), []string{`spec.tolerations[0].operator: Unsupported value: "Gt": supported values: "Equal", "Exists"`}},
		{"toleration exists with value", pod(func(p *corev1.Pod) {
			p.Spec.Tolerations = []*corev1.Toleration{{Key: "k", Operator: "Exists", Value: "v"}}
		}), []string{`spec.tolerations[0].operator: Invalid value: "v": value must be empty when ` + "`operator`" + ` is 'Exists'`}},
		{"toleration empty key needs exists", pod(func(p *corev1.Pod) {
			p.Spec.Tolerations = []*corev1.Toleration{{Operator: "Equal"}, {Operator: "Exists"}}
		}), []string{`spec.tolerations[0].operator: Invalid value: "Equal": operator must be Exists when`}},
		{"toleration effect", pod(func(p *corev1.Pod) {
			p.Spec.Tolerations = []*corev1.Toleration{{Key: "k", Value: "v", Effect: "Sometimes"}}
		}), []string{`spec.tolerations[0].effect: Unsupported value: "Sometimes": supported values: "", "NoExecute", "NoSchedule", "PreferNoSchedule"`}},
		{"toleration seconds need NoExecute", pod(func(p *corev1.Pod) {
			p.Spec.Tolerations = []*corev1.Toleration{{Key: "k", Effect: "NoSchedule", TolerationSeconds: ptr64(5)},
				{Key: "k", Operator: "Exists", Effect: "NoExecute", TolerationSeconds: ptr64(5)}}
		}), []string{`spec.tolerations[0].effect: Invalid value: "NoSchedule": effect must be 'NoExecute'`}},
		{"toleration key", pod(func(p *corev1.Pod) {
			p.Spec.Tolerations = []*corev1.Toleration{{Key: "bad key", Operator: "Exists"}}
		}), []string{`spec.tolerations[0].key: Invalid value: "bad key"`}},
		{"grace period", pod(func(p *corev1.Pod) { p.Spec.TerminationGracePeriodSeconds = ptr64(-1) }),
			[]string{"spec.terminationGracePeriodSeconds: Invalid value: -1: must be greater than or equal to 0"}},
		{"node selector", pod(func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"disk": "fast ssd"} }),
			[]string{`spec.nodeSelector: Invalid value: "fast ssd"`}},
		{"node name", pod(func(p *corev1.Pod) { p.Spec.NodeName = "Node_1" }),
			[]string{`spec.nodeName: Invalid value: "Node_1"`}},

		// Deployment.
		{"valid deployment", deployment(nil), nil},
		{"deployment defaulted", func() kinds.Object { d := deployment(nil); Default(d); return d }(), nil},
		{"deployment name", deployment(func(d *corev1.Deployment) { d.Metadata.Name = "Web" }),
			[]string{`metadata.name: Invalid value: "Web": a lowercase RFC 1123 subdomain must consist of`}},
		{"deployment replicas", deployment(func(d *corev1.Deployment) { d.Spec.Replicas = ptr32(-1) }),
			[]string{"spec.replicas: Invalid value: -1: must be greater than or equal to 0"}},
		{"deployment zero replicas", deployment(func(d *corev1.Deployment) { d.Spec.Replicas = ptr32(0) }), nil},
		{"selector missing", deployment(func(d *corev1.Deployment) { d.Spec.Selector = nil }),
			[]string{"spec.selector: Required value"}},
		{"selector empty", deployment(func(d *corev1.Deployment) { d.Spec.Selector = &corev1.LabelSelector{} }),
			[]string{`spec.selector: Invalid value: "": empty selector is invalid for deployment`}},
		{"selector mismatch", deployment(func(d *corev1.Deployment) { d.Spec.Selector.MatchLabels["app"] = "db" }),
			[]string{`spec.selector: Invalid value: "app=db": selector does not match template labels`}},
		{"selector expressions match", deployment(func(d *corev1.Deployment) {
			d.Spec.Selector = &corev1.LabelSelector{MatchExpressions: []*corev1.LabelSelectorRequirement{
				{Key: "app", Operator: "In", Values: []string{"web", "api"}}, {Key: "canary", Operator: "DoesNotExist"}}}
		}), nil},
		{"selector expressions invalid", deployment(func(d *corev1.Deployment) {
			d.Spec.Selector = &corev1.LabelSelector{MatchExpressions: []*corev1.LabelSelectorRequirement{
				{Key: "app", Operator: "In"}, {Key: "a", Operator: "Exists", Values: []string{"x"}},
				{Key: "b", Operator: "Like"}, {Key: "bad key", Operator: "In", Values: []string{"bad value"}}}}
		}), []string{"spec.selector.matchExpressions[0].values: Required value",
			"spec.selector.matchExpressions[1].values: Forbidden",
			`spec.selector.matchExpressions[2].operator: Unsupported value: "Like"`,
			`spec.selector.matchExpressions[3].key: Invalid value: "bad key"`,
			`spec.selector.matchExpressions[3].values[0]: Invalid value: "bad value"`}},
		{"selector matchLabels invalid", deployment(func(d *corev1.Deployment) {
			d.Spec.Selector.MatchLabels = map[string]string{"app": "a b"}
		}), []string{`spec.selector.matchLabels: Invalid value: "a b"`}},
		{"template missing", deployment(func(d *corev1.Deployment) { d.Spec.Template = nil }),
			[]string{"spec.template: Required value"}},
		{"template image", deployment(func(d *corev1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "" }),
			[]string{"spec.template.spec.containers[0].image: Required value"}},
		{"template labels", deployment(func(d *corev1.Deployment) { d.Spec.Template.Metadata.Labels["x"] = "-" }),
			[]string{`spec.template.metadata.labels: Invalid value: "-"`}},
		{"template restart policy", deployment(func(d *corev1.Deployment) { d.Spec.Template.Spec.RestartPolicy = "Never" }),
			[]string{`spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"`}},
		{"template restart policy unknown", deployment(func(d *corev1.Deployment) { d.Spec.Template.Spec.RestartPolicy = "Sometimes" }),
			[]string{`spec.template.spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "Never", "OnFailure"`}},
		{"strategy type", deployment(func(d *corev1.Deployment) { d.Spec.Strategy = &corev1.DeploymentStrategy{Type: "BlueGreen"} }),
			[]string{`spec.strategy.type: Unsupported value: "BlueGreen": supported values: "Recreate", "RollingUpdate"`}},
		{"recreate", deployment(func(d *corev1.Deployment) { d.Spec.Strategy = &corev1.DeploymentStrategy{Type: "Recreate"} }), nil},
		{"recreate with rolling params", deployment(func(d *corev1.Deployment) {
			d.Spec.Strategy = rolling(structpb.NewNumberValue(1), nil)
			d.Spec.Strategy.Type = "Recreate"
		}), []string{"spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"}},
		{"rolling ints and percents", deployment(func(d *corev1.Deployment) {
			d.Spec.Strategy = rolling(structpb.NewNumberValue(2), structpb.NewStringValue("10%"))
		}), nil},
		{"rolling negative", deployment(func(d *corev1.Deployment) {
			d.Spec.Strategy = rolling(structpb.NewNumberValue(-1), nil)
		}), []string{"spec.strategy.rollingUpdate.maxSurge: Invalid value: -1: must be greater than or equal to 0"}},
		{"rolling fraction", deployment(func(d *corev1.Deployment) {
			d.Spec.Strategy = rolling(structpb.NewNumberValue(1.5), nil)
		}), []string{"spec.strategy.rollingUpdate.maxSurge: Invalid value: 1.5: must be an integer or a percentage string"}},
		{"rolling bad string", deployment(func(d *corev1.Deployment) {
			d.Spec.Strategy = rolling(structpb.NewStringValue("3"), structpb.NewBoolValue(true))
		}), []string{`spec.strategy.rollingUpdate.maxSurge: Invalid value: "3": a valid percent string must be`,
			"spec.strategy.rollingUpdate.maxUnavailable: Invalid value: must be an integer or a percentage string"}},
		{"rolling over 100%", deployment(func(d *corev1.Deployment) {
			d.Spec.Strategy = rolling(nil, structpb.NewStringValue("150%"))
		}), []string{`spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "150%": must not be greater than 100%`}},
		{"rolling both zero", deployment(func(d *corev1.Deployment) {
			d.Spec.Strategy = rolling(structpb.NewStringValue("0%"), structpb.NewNumberValue(0))
		}), []string{"spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0"}},
		{"revision history", deployment(func(d *corev1.Deployment) { d.Spec.RevisionHistoryLimit = ptr32(-1) }),
			[]string{"spec.revisionHistoryLimit: Invalid value: -1: must be greater than or equal to 0"}},
		{"min ready", deployment(func(d *corev1.Deployment) { d.Spec.MinReadySeconds = -1 }),
			[]string{"spec.minReadySeconds: Invalid value: -1: must be greater than or equal to 0"}},
		{"progress deadline", deployment(func(d *corev1.Deployment) {
			d.Spec.MinReadySeconds, d.Spec.ProgressDeadlineSeconds = 10, ptr32(10)
		}), []string{"spec.progressDeadlineSeconds: Invalid value: 10: must be greater than minReadySeconds"}},
		{"progress deadline negative", deployment(func(d *corev1.Deployment) { d.Spec.ProgressDeadlineSeconds = ptr32(-5) }),
			[]string{"spec.progressDeadlineSeconds: Invalid value: -5: must be greater than or equal to 0"}},

		// ReplicaSet.
		{"valid replicaset", replicaSet(nil), nil},
		{"replicaset replicas", replicaSet(func(rs *corev1.ReplicaSet) { rs.Spec.Replicas = ptr32(-1) }),
			[]string{"spec.replicas: Invalid value: -1: must be greater than or equal to 0"}},
		{"replicaset selector empty", replicaSet(func(rs *corev1.ReplicaSet) { rs.Spec.Selector = &corev1.LabelSelector{} }),
			[]string{`spec.selector: Invalid value: "": empty selector is invalid for replicaset`}},
		{"replicaset mismatch", replicaSet(func(rs *corev1.ReplicaSet) { rs.Spec.Template.Metadata.Labels = nil }),
			[]string{`spec.selector: Invalid value: "app=web": selector does not match template labels`}},
		{"replicaset template restart", replicaSet(func(rs *corev1.ReplicaSet) { rs.Spec.Template.Spec.RestartPolicy = "OnFailure" }),
			[]string{`spec.template.spec.restartPolicy: Unsupported value: "OnFailure"`}},

		// Node.
		{"valid node", &corev1.Node{Metadata: &corev1.ObjectMeta{Name: "w1"}, Spec: &corev1.NodeSpec{
			Taints: []*corev1.Taint{{Key: "dedicated", Value: "gpu", Effect: "NoSchedule"}}, PodCidr: "10.0.1.0/24"}}, nil},
		{"node taints", &corev1.Node{Metadata: &corev1.ObjectMeta{Name: "w1"}, Spec: &corev1.NodeSpec{Taints: []*corev1.Taint{
			{Key: "bad key", Effect: "NoSchedule"}, {Key: "k"}, {Key: "k", Effect: "Sometimes"},
			{Key: "d", Effect: "NoExecute"}, {Key: "d", Effect: "NoExecute"}}}},
			[]string{`spec.taints[0].key: Invalid value: "bad key"`, "spec.taints[1].effect: Required value",
				`spec.taints[2].effect: Unsupported value: "Sometimes": supported values: "NoExecute", "NoSchedule", "PreferNoSchedule"`,
				`spec.taints[4]: Duplicate value: "d:NoExecute": taints must be unique by key and effect pair`}},
		{"node taint key missing", &corev1.Node{Metadata: &corev1.ObjectMeta{Name: "w1"}, Spec: &corev1.NodeSpec{
			Taints: []*corev1.Taint{{Effect: "NoSchedule"}}}}, []string{"spec.taints[0].key: Required value"}},
		{"node cidr", &corev1.Node{Metadata: &corev1.ObjectMeta{Name: "w1"}, Spec: &corev1.NodeSpec{PodCidr: "10.0.1.0"}},
			[]string{`spec.podCIDR: Invalid value: "10.0.1.0"`}},

		// Namespace.
		{"valid namespace", &corev1.Namespace{Metadata: &corev1.ObjectMeta{Name: "team-a"}}, nil},
		{"namespace name is a label", &corev1.Namespace{Metadata: &corev1.ObjectMeta{Name: "team.a"}},
			[]string{`metadata.name: Invalid value: "team.a": a lowercase RFC 1123 label must consist of`}},
		{"namespace name length", &corev1.Namespace{Metadata: &corev1.ObjectMeta{Name: strings.Repeat("a", 64)}},
			[]string{"metadata.name: Invalid value: \"" + strings.Repeat("a", 64) + "\": must be no more than 63 characters"}},
		{"namespace finalizer", &corev1.Namespace{Metadata: &corev1.ObjectMeta{Name: "a"}, Spec: &corev1.NamespaceSpec{Finalizers: []string{"a b"}}},
			[]string{`spec.finalizers[0]: Invalid value: "a b"`}},

		// Lease.
		{"valid lease", &corev1.Lease{Metadata: meta("l"), Spec: &corev1.LeaseSpec{LeaseDurationSeconds: ptr32(15)}}, nil},
		{"lease duration", &corev1.Lease{Metadata: meta("l"), Spec: &corev1.LeaseSpec{LeaseDurationSeconds: ptr32(0), LeaseTransitions: ptr32(-1)}},
			[]string{"spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
				"spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0"}},

		// Event.
		{"valid event", &corev1.Event{Metadata: meta("web.1"), Type: "Normal",
			InvolvedObject: &corev1.ObjectReference{Kind: "Pod", Name: "web", Namespace: "default"}}, nil},
		{"event involved object", &corev1.Event{Metadata: meta("e"), Type: "Loud", Count: -1},
			[]string{"involvedObject.kind: Required value", "involvedObject.name: Required value",
				`type: Unsupported value: "Loud": supported values: "Normal", "Warning"`,
				"count: Invalid value: -1: must be greater than or equal to 0"}},

		// ConfigMap.
		{"valid configmap", &corev1.ConfigMap{Metadata: meta("c"), Data: map[string]string{"app.conf": "x", "KEY_1": "y"},
			BinaryData: map[string][]byte{"blob": {1}}}, nil},
		{"configmap keys", &corev1.ConfigMap{Metadata: meta("c"), Data: map[string]string{"a/b": "", "..x": "", strings.Repeat("k", 254): ""},
			BinaryData: map[string][]byte{"..x": nil}},
			[]string{`data[a/b]: Invalid value: "a/b": a valid config key must consist of alphanumeric characters`,
				`data[..x]: Invalid value: "..x": must not start with '..'`,
				"data[" + strings.Repeat("k", 254) + "]: Invalid value: \"" + strings.Repeat("k", 254) + "\": must be no more than 253 characters",
				`binaryData[..x]: Invalid value: "..x": must not start with '..'`,
				`binaryData[..x]: Invalid value: "..x": duplicate of key present in data`}},
		{"configmap too large", &corev1.ConfigMap{Metadata: meta("c"), Data: map[string]string{"a": strings.Repeat("x", 1024*1024+1)}},
			[]string{"data: Too long: must have at most 1048576 bytes"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkErrors(t, Validate(tc.obj), tc.want)
		})
	}
}

// TestAllProblemsReported: one object with several faults yields one error naming each,
// joined with "; ".
func TestAllProblemsReported(t *testing.T) {
	d := deployment(func(d *corev1.Deployment) {
		d.Metadata.Name = "Web"
		d.Spec.Replicas = ptr32(-1)
		d.Spec.Template.Spec.Containers[0].Image = ""
	})
	err := Validate(d)
	want := `metadata.name: Invalid value: "Web": ` + dns1123SubdomainMsg +
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

func TestValidateUpdate(t *testing.T) {
	defaulted := func(o kinds.Object) kinds.Object { Default(o); return o }
	for _, tc := range []struct {
		name     string
		old, obj kinds.Object
		want     []string
	}{
		{"deployment scale", deployment(nil), deployment(func(d *corev1.Deployment) { d.Spec.Replicas = ptr32(5) }), nil},
		{"deployment selector immutable", deployment(nil), deployment(func(d *corev1.Deployment) {
			d.Spec.Selector.MatchLabels["tier"] = "front"
			d.Spec.Template.Metadata.Labels["tier"] = "front"
		}), []string{`spec.selector: Invalid value: "app=web,tier=front": field is immutable`}},
		{"replicaset selector immutable", replicaSet(nil), replicaSet(func(rs *corev1.ReplicaSet) {
			rs.Spec.Selector = &corev1.LabelSelector{MatchExpressions: []*corev1.LabelSelectorRequirement{{Key: "app", Operator: "Exists"}}}
		}), []string{`spec.selector: Invalid value: "app": field is immutable`}},
		{"update still validates", replicaSet(nil), replicaSet(func(rs *corev1.ReplicaSet) { rs.Spec.Replicas = ptr32(-2) }),
			[]string{"spec.replicas: Invalid value: -2"}},
		{"pod image change", defaulted(pod(nil)), defaulted(pod(func(p *corev1.Pod) { p.Spec.Containers[0].Image = "nginx:1.28" })), nil},
		{"pod update against undefaulted", defaulted(pod(nil)), pod(func(p *corev1.Pod) { p.Spec.Containers[0].Image = "nginx:2" }), nil},
		{"pod labels change", pod(nil), pod(func(p *corev1.Pod) { p.Metadata.Labels = map[string]string{"a": "b"} }), nil},
		{"pod toleration added", pod(func(p *corev1.Pod) {
			p.Spec.Tolerations = []*corev1.Toleration{{Key: "a", Operator: "Exists"}}
		}), pod(func(p *corev1.Pod) {
			p.Spec.Tolerations = []*corev1.Toleration{{Key: "a", Operator: "Exists"}, {Key: "b", Operator: "Exists"}}
		}), nil},
		{"pod toleration removed", pod(func(p *corev1.Pod) {
			p.Spec.Tolerations = []*corev1.Toleration{{Key: "a", Operator: "Exists"}}
		}), pod(nil), []string{"spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image` and `spec.tolerations` (only additions to existing tolerations) (changed: spec.tolerations)"}},
		{"pod spec change", defaulted(pod(nil)), defaulted(pod(func(p *corev1.Pod) {
			p.Spec.RestartPolicy = "Never"
			p.Spec.Containers[0].Env = []*corev1.EnvVar{{Name: "A"}}
		})), []string{"spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image` and `spec.tolerations` (only additions to existing tolerations) (changed: spec.containers[0].env, spec.restartPolicy)"}},
		{"pod container added", pod(nil), pod(func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, &corev1.Container{Name: "side", Image: "busybox"})
		}), []string{"spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image` and `spec.tolerations` (only additions to existing tolerations) (changed: spec.containers)"}},
		{"pod node name", pod(nil), pod(func(p *corev1.Pod) { p.Spec.NodeName = "w1" }),
			[]string{"spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image` and `spec.tolerations` (only additions to existing tolerations) (changed: spec.nodeName)"}},
		{"name immutable", pod(nil), pod(func(p *corev1.Pod) { p.Metadata.Name = "other" }),
			[]string{`metadata.name: Invalid value: "other": field is immutable`}},
		{"namespace immutable", pod(nil), pod(func(p *corev1.Pod) { p.Metadata.Namespace = "other" }),
			[]string{`metadata.namespace: Invalid value: "other": field is immutable`}},
		{"kind changed", pod(nil), replicaSet(nil), []string{`kind: Invalid value: "ReplicaSet": must be Pod`}},
		{"node taints change", &corev1.Node{Metadata: &corev1.ObjectMeta{Name: "w1"}},
			&corev1.Node{Metadata: &corev1.ObjectMeta{Name: "w1"}, Spec: &corev1.NodeSpec{Unschedulable: true,
				Taints: []*corev1.Taint{{Key: "k", Effect: "NoSchedule"}}}}, nil},
		{"configmap mutable", &corev1.ConfigMap{Metadata: meta("c"), Data: map[string]string{"a": "1"}},
			&corev1.ConfigMap{Metadata: meta("c"), Data: map[string]string{"a": "2"}}, nil},
		{"configmap immutable", &corev1.ConfigMap{Metadata: meta("c"), Data: map[string]string{"a": "1"}, Immutable: yes()},
			&corev1.ConfigMap{Metadata: meta("c"), Data: map[string]string{"a": "2"}, BinaryData: map[string][]byte{"b": {1}}},
			[]string{"immutable: Forbidden: field is immutable when `immutable` is set",
				"data: Forbidden: field is immutable when `immutable` is set",
				"binaryData: Forbidden: field is immutable when `immutable` is set"}},
		{"configmap immutable labels", &corev1.ConfigMap{Metadata: meta("c"), Immutable: yes()},
			&corev1.ConfigMap{Metadata: &corev1.ObjectMeta{Name: "c", Namespace: "default", Labels: map[string]string{"a": "b"}}, Immutable: yes()}, nil},
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
			p.Status = &corev1.PodStatus{Phase: "Running", PodIp: "10.0.0.5",
				Conditions:        []*corev1.PodCondition{{Type: "Ready", Status: "True"}},
				ContainerStatuses: []*corev1.ContainerStatus{{Name: "web", RestartCount: 2}}}
		}), nil},
		{"pod bad", pod(func(p *corev1.Pod) {
			p.Status = &corev1.PodStatus{Phase: "Sleeping", HostIp: "x",
				Conditions:        []*corev1.PodCondition{{Status: "Maybe"}},
				ContainerStatuses: []*corev1.ContainerStatus{{RestartCount: -1}}}
		}), []string{`status.phase: Unsupported value: "Sleeping"`, `status.conditions[0].type: Required value`,
			`status.conditions[0].status: Unsupported value: "Maybe": supported values: "False", "True", "Unknown"`,
			`status.hostIP: Invalid value: "x"`, "status.containerStatuses[0].name: Required value",
			"status.containerStatuses[0].restartCount: Invalid value: -1"}},
		{"pod status ignores spec", pod(func(p *corev1.Pod) { p.Spec = nil }), nil},
		{"deployment counts", deployment(func(d *corev1.Deployment) {
			d.Status = &corev1.DeploymentStatus{Replicas: -1, AvailableReplicas: -2, CollisionCount: ptr32(-1),
				Conditions: []*corev1.DeploymentCondition{{Type: "Available", Status: "True"}}}
		}), []string{"status.replicas: Invalid value: -1", "status.availableReplicas: Invalid value: -2",
			"status.collisionCount: Invalid value: -1"}},
		{"replicaset counts", replicaSet(func(rs *corev1.ReplicaSet) {
			rs.Status = &corev1.ReplicaSetStatus{ReadyReplicas: -1, ObservedGeneration: -1}
		}), []string{"status.observedGeneration: Invalid value: -1", "status.readyReplicas: Invalid value: -1"}},
		{"node capacity", &corev1.Node{Metadata: &corev1.ObjectMeta{Name: "w1"}, Status: &corev1.NodeStatus{
			Capacity: map[string]string{"cpu": "4", "memory": "8Gi", "pods": "110"}, Allocatable: map[string]string{"cpu": "four"},
			Conditions: []*corev1.NodeCondition{{Type: "Ready", Status: "Unknown"}}, Addresses: []*corev1.NodeAddress{{Address: "10.0.0.1"}}}},
			[]string{`status.allocatable[cpu]: Invalid value: "four"`, "status.addresses[0].type: Required value"}},
		{"namespace phase", &corev1.Namespace{Metadata: &corev1.ObjectMeta{Name: "a"}, Status: &corev1.NamespaceStatus{Phase: "Gone"}},
			[]string{`status.phase: Unsupported value: "Gone": supported values: "Active", "Terminating"`}},
		{"configmap has no status", &corev1.ConfigMap{Metadata: meta("c")}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkErrors(t, ValidateStatus(tc.obj), tc.want)
		})
	}
}

func TestDefault(t *testing.T) {
	p := pod(func(p *corev1.Pod) {
		p.Spec.Containers = []*corev1.Container{
			{Name: "a", Image: "nginx", Ports: []*corev1.ContainerPort{{ContainerPort: 80}, {ContainerPort: 53, Protocol: "UDP"}}},
			{Name: "b", Image: "nginx:1.27"},
			{Name: "c", Image: "nginx:latest", ImagePullPolicy: "Never"},
		}
		p.Spec.Tolerations = []*corev1.Toleration{{Key: "k", Value: "v"}, {Operator: "Exists"}}
	})
	Default(p)
	want := &corev1.PodSpec{
		Containers: []*corev1.Container{
			{Name: "a", Image: "nginx", ImagePullPolicy: "Always",
				Ports: []*corev1.ContainerPort{{ContainerPort: 80, Protocol: "TCP"}, {ContainerPort: 53, Protocol: "UDP"}}},
			{Name: "b", Image: "nginx:1.27", ImagePullPolicy: "IfNotPresent"},
			{Name: "c", Image: "nginx:latest", ImagePullPolicy: "Never"},
		},
		RestartPolicy:                 "Always",
		TerminationGracePeriodSeconds: ptr64(30),
		Tolerations:                   []*corev1.Toleration{{Key: "k", Operator: "Equal", Value: "v"}, {Operator: "Exists"}},
	}
	if !proto.Equal(p.Spec, want) {
		t.Errorf("pod spec defaults:\ngot  %v\nwant %v", p.Spec, want)
	}

	d := deployment(nil)
	Default(d)
	wantD := &corev1.DeploymentSpec{
		Replicas: ptr32(1),
		Selector: &corev1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
		Template: &corev1.PodTemplateSpec{Metadata: &corev1.ObjectMeta{Labels: map[string]string{"app": "web"}}, Spec: &corev1.PodSpec{
			Containers:    []*corev1.Container{{Name: "web", Image: "nginx:1.27", ImagePullPolicy: "IfNotPresent"}},
			RestartPolicy: "Always", TerminationGracePeriodSeconds: ptr64(30)}},
		Strategy:                rolling(structpb.NewStringValue("25%"), structpb.NewStringValue("25%")),
		RevisionHistoryLimit:    ptr32(10),
		ProgressDeadlineSeconds: ptr32(600),
	}
	if !proto.Equal(d.Spec, wantD) {
		t.Errorf("deployment spec defaults:\ngot  %v\nwant %v", d.Spec, wantD)
	}

	rs := replicaSet(func(rs *corev1.ReplicaSet) { rs.Spec.Selector = nil })
	Default(rs)
	if rs.Spec.GetReplicas() != 1 || rs.Spec.Selector != nil || rs.Spec.Template.Spec.GetRestartPolicy() != "Always" ||
		rs.Spec.Template.Spec.Containers[0].GetImagePullPolicy() != "IfNotPresent" {
		t.Errorf("replicaset defaults: %v", rs.Spec)
	}
}

func TestDefaultKeepsSetValues(t *testing.T) {
	d := deployment(func(d *corev1.Deployment) {
		d.Spec.Replicas, d.Spec.RevisionHistoryLimit, d.Spec.ProgressDeadlineSeconds = ptr32(0), ptr32(0), ptr32(60)
		d.Spec.Strategy = rolling(structpb.NewNumberValue(0), nil)
	})
	Default(d)
	s := d.Spec
	if s.GetReplicas() != 0 || s.GetRevisionHistoryLimit() != 0 || s.GetProgressDeadlineSeconds() != 60 {
		t.Errorf("explicit zeroes overwritten: %v", s)
	}
	if s.Strategy.RollingUpdate.MaxSurge.GetNumberValue() != 0 || s.Strategy.RollingUpdate.MaxUnavailable.GetStringValue() != "25%" {
		t.Errorf("rolling update: %v", s.Strategy)
	}

	r := deployment(func(d *corev1.Deployment) { d.Spec.Strategy = &corev1.DeploymentStrategy{Type: "Recreate"} })
	Default(r)
	if r.Spec.Strategy.RollingUpdate != nil {
		t.Errorf("Recreate got rolling update params: %v", r.Spec.Strategy)
	}
	if err := Validate(r); err != nil {
		t.Errorf("defaulted Recreate deployment: %v", err)
	}
}

func TestDefaultIdempotent(t *testing.T) {
	for _, obj := range []kinds.Object{
		pod(func(p *corev1.Pod) { p.Spec.Tolerations = []*corev1.Toleration{{Key: "k"}} }),
		pod(func(p *corev1.Pod) { p.Spec = nil }),
		deployment(nil),
		deployment(func(d *corev1.Deployment) { d.Spec = nil }),
		deployment(func(d *corev1.Deployment) { d.Spec.Template = nil }),
		replicaSet(nil),
		replicaSet(func(rs *corev1.ReplicaSet) { rs.Spec.Template.Spec = nil }),
		&corev1.Node{}, &corev1.ConfigMap{}, &corev1.Namespace{}, &corev1.Event{}, &corev1.Lease{},
	} {
		Default(obj)
		once := proto.Clone(obj)
		Default(obj)
		if !proto.Equal(once, obj) {
			t.Errorf("%s: second Default changed it:\n%v\n%v", kinds.Of(obj).Kind, once, obj)
		}
	}
}

func TestPullPolicyFor(t *testing.T) {
	for image, want := range map[string]string{
		"nginx":                           "Always",
		"nginx:latest":                    "Always",
		"nginx:1.27":                      "IfNotPresent",
		"localhost:5000/app":              "Always",
		"localhost:5000/app:v2":           "IfNotPresent",
		"localhost:5000/app:latest":       "Always",
		"nginx@sha256:abcd":               "IfNotPresent",
		"nginx:latest@sha256:abcd":        "IfNotPresent",
		"registry.example.com/team/app":   "Always",
		"registry.example.com/team/app:1": "IfNotPresent",
	} {
		if got := PullPolicyFor(image); got != want {
			t.Errorf("PullPolicyFor(%q) = %s, want %s", image, got, want)
		}
	}
}

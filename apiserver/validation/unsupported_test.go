package validation

import (
	"reflect"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiffhq/skiff/kinds"
)

const forbidden = ": Forbidden: not supported by Skiff"

func TestNotSupported(t *testing.T) {
	for _, tc := range []struct {
		name string
		obj  kinds.Object
		want []string
	}{
		{"deployment", deployment(func(d *appsv1.Deployment) {
			d.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationApply}} // server-side apply's
			ps := &d.Spec.Template.Spec
			ps.Containers[0].LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(80)}}}
			ps.Containers[0].Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(80)}}}
			ps.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{NFS: &corev1.NFSVolumeSource{Server: "nfs", Path: "/"}}}}
			ps.InitContainers = []corev1.Container{{Name: "init", Image: "busybox", RestartPolicy: new(corev1.ContainerRestartPolicyAlways),
				RestartPolicyRules: []corev1.ContainerRestartRule{{Action: corev1.ContainerRestartRuleActionRestart}}}}
		}), []string{
			"spec.template.spec.containers[0].lifecycle.preStop.tcpSocket" + forbidden,
			"spec.template.spec.initContainers[0].restartPolicyRules" + forbidden,
			"spec.template.spec.volumes[0].nfs" + forbidden,
		}},
		{"outermost field only", pod(func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{RunAsUser: new(int64(1000)), AppArmorProfile: &corev1.AppArmorProfile{Type: "Localhost", LocalhostProfile: new("p")}}
		}), []string{"spec.containers[0].securityContext.appArmorProfile" + forbidden}},
		{"inside supported lists", pod(func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "side", Image: "busybox",
				Env: []corev1.EnvVar{{Name: "A", Value: "1"}, {Name: "B", ValueFrom: &corev1.EnvVarSource{
					FileKeyRef: &corev1.FileKeySelector{VolumeName: "v", Path: "p", Key: "k"}}}},
				Resources: corev1.ResourceRequirements{Claims: []corev1.ResourceClaim{{Name: "gpu"}}}})
			p.Spec.Tolerations = []corev1.Toleration{{Key: "k", Operator: "Exists"}}
		}), []string{
			"spec.containers[1].env[1].valueFrom.fileKeyRef" + forbidden,
			"spec.containers[1].resources.claims" + forbidden,
		}},
		{"an empty struct is still set", pod(func(p *corev1.Pod) {
			p.Spec.SecurityContext = &corev1.PodSecurityContext{AppArmorProfile: &corev1.AppArmorProfile{}}
		}), []string{"spec.securityContext.appArmorProfile" + forbidden}},
		{"an empty list or map is not", pod(func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{}
			p.Spec.Overhead = corev1.ResourceList{}
		}), nil},
		{"a Kubernetes default Skiff does not apply", pod(func(p *corev1.Pod) {
			p.Spec.SchedulerName = "default-scheduler"
		}), []string{"spec.schedulerName" + forbidden}},
		{"metadata", pod(func(p *corev1.Pod) { p.SelfLink = "/api/v1/pods/web-1" }), []string{"metadata.selfLink" + forbidden}},
		{"status on create", pod(func(p *corev1.Pod) { p.Status.ResourceClaimStatuses = []corev1.PodResourceClaimStatus{{Name: "gpu"}} }),
			[]string{"status.resourceClaimStatuses" + forbidden}},
		{"deployment strategy and status", deployment(func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80}}
			d.Status.TerminatingReplicas = new(int32(1))
		}), []string{"status.terminatingReplicas" + forbidden}},
		{"replicaset template metadata", replicaSet(func(rs *appsv1.ReplicaSet) {
			rs.Spec.Template.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "m", Operation: metav1.ManagedFieldsOperationUpdate}}
		}), []string{"spec.template.metadata.managedFields" + forbidden}},
		{"node", node(corev1.NodeSpec{PodCIDR: "10.0.1.0/24", PodCIDRs: []string{"10.0.1.0/24"}, ConfigSource: &corev1.NodeConfigSource{}, Taints: []corev1.Taint{{Key: "k", Effect: "NoSchedule"}}}),
			[]string{"spec.configSource" + forbidden}},
		{"node status", &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w1"}, Status: corev1.NodeStatus{
			NodeInfo: corev1.NodeSystemInfo{KubeletVersion: "v1.37.2", SystemUUID: "u"}, DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: 10250}}}},
			[]string{"status.nodeInfo.systemUUID" + forbidden}},
		{"node phase", &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "e2e-fake-node"}, Spec: corev1.NodeSpec{Unschedulable: true},
			Status: corev1.NodeStatus{Phase: corev1.NodeRunning, Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "E2E"}}}},
			nil},
		{"lease", &coordinationv1.Lease{ObjectMeta: meta("l"), Spec: coordinationv1.LeaseSpec{HolderIdentity: new("a"), PreferredHolder: new("b")}},
			[]string{"spec.preferredHolder" + forbidden}},
		{"namespace", &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a", SelfLink: "/api/v1/namespaces/a"},
			Status: corev1.NamespaceStatus{Conditions: []corev1.NamespaceCondition{{Type: "NamespaceDeletionDiscoveryFailure", Status: "False"}}}},
			[]string{"metadata.selfLink" + forbidden}},
		{"poddisruptionbudget", &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "default",
			SelfLink: "/apis/policy/v1/namespaces/default/poddisruptionbudgets/a"},
			Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: num(1), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}},
			[]string{"metadata.selfLink" + forbidden}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkErrors(t, Validate(tc.obj), tc.want)
		})
	}
}

// TestSupportedFieldsAccepted: an object of each kind with every supported field set
// has nothing refused as not supported, and setting any one field the table leaves out
// is refused at its path.
func TestSupportedFieldsAccepted(t *testing.T) {
	for _, in := range kinds.All() {
		obj := in.New()
		for _, p := range supportedFields[in.Kind] {
			fillPath(reflect.ValueOf(obj).Elem(), strings.Split(p, "."))
		}
		if errs := checkSupported(obj, false); len(errs) > 0 {
			t.Errorf("%s with every supported field: %v", in.Kind, ErrorList(errs))
		}

		var unsupported [][]string
		eachUnsupported(supportChecks[in].all, reflect.TypeOf(obj).Elem(), nil, func(segs []string) { unsupported = append(unsupported, segs) })
		if len(unsupported) == 0 {
			t.Errorf("%s: no unsupported field found", in.Kind)
		}
		for _, segs := range unsupported {
			obj := in.New()
			fillPath(reflect.ValueOf(obj).Elem(), segs)
			want := strings.ReplaceAll(strings.Join(segs, "."), "[*]", "[0]")
			errs := checkSupported(obj, false)
			if len(errs) != 1 || errs[0].Error() != want+forbidden {
				t.Errorf("%s with %s set: got %v", in.Kind, want, ErrorList(errs))
			}
		}
	}
}

// TestFullObject: a realistic Deployment using every supported spec field is valid.
func TestFullObject(t *testing.T) {
	d := fullDeployment()
	Default(d)
	if err := Validate(d); err != nil {
		t.Fatal(err)
	}
}

func fullDeployment() *appsv1.Deployment {
	return deployment(func(d *appsv1.Deployment) {
		d.Labels = map[string]string{"app": "web"}
		d.Annotations = map[string]string{"example.com/owner": "team-a"}
		d.Finalizers = []string{"example.com/keep"}
		d.Spec.Replicas = new(int32(3))
		d.Spec.MinReadySeconds = 5
		d.Spec.Paused = true
		d.Spec.RevisionHistoryLimit = new(int32(4))
		d.Spec.ProgressDeadlineSeconds = new(int32(300))
		d.Spec.Strategy = rolling(num(1), percent("10%"))
		d.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"},
			MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: "In", Values: []string{"front"}}}}
		d.Spec.Template.Labels["tier"] = "front"
		d.Spec.Template.Annotations = map[string]string{"example.com/rev": "1"}
		d.Spec.Template.Spec = corev1.PodSpec{
			Containers: []corev1.Container{{
				Name: "web", Image: "nginx:1.27", ImagePullPolicy: corev1.PullIfNotPresent,
				Command: []string{"nginx"}, Args: []string{"-g", "daemon off;"}, WorkingDir: "/srv",
				Env:   []corev1.EnvVar{{Name: "MODE", Value: "prod"}},
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 80, HostPort: 8080, HostIP: "127.0.0.1", Protocol: corev1.ProtocolTCP}},
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{"cpu": resource.MustParse("100m"), "memory": resource.MustParse("64Mi")},
					Limits:   corev1.ResourceList{"cpu": resource.MustParse("1"), "memory": resource.MustParse("128Mi")}},
				EnvFrom: []corev1.EnvFromSource{{Prefix: "CFG_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "web"}}}},
				VolumeMounts: []corev1.VolumeMount{{Name: "conf", MountPath: "/etc/nginx/conf.d", ReadOnly: true},
					{Name: "cache", MountPath: "/var/cache/nginx"}, {Name: "conf", MountPath: "/etc/motd", SubPath: "motd"}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}},
					InitialDelaySeconds: 2, PeriodSeconds: 5},
				LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(80)}}},
				StartupProbe:  &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"cat", "/tmp/started"}}}, FailureThreshold: 30},
				Lifecycle:     &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 5}}},
				SecurityContext: &corev1.SecurityContext{RunAsNonRoot: new(true), ReadOnlyRootFilesystem: new(true), AllowPrivilegeEscalation: new(false),
					Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}, Add: []corev1.Capability{"NET_BIND_SERVICE"}}},
			}},
			InitContainers: []corev1.Container{{Name: "migrate", Image: "busybox:1.36", Command: []string{"sh", "-c", "echo ok"},
				Env: []corev1.EnvVar{{Name: "POD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
					{Name: "PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
						LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "password"}}}}}},
			Volumes: []corev1.Volume{
				{Name: "conf", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "web"}}}},
				{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: new(resource.MustParse("64Mi"))}}},
			},
			SecurityContext:               &corev1.PodSecurityContext{RunAsUser: new(int64(101)), RunAsGroup: new(int64(101)), FSGroup: new(int64(101))},
			ImagePullSecrets:              []corev1.LocalObjectReference{{Name: "regcred"}},
			DNSPolicy:                     corev1.DNSClusterFirst,
			HostNetwork:                   true,
			NodeSelector:                  map[string]string{"disk": "ssd"},
			RestartPolicy:                 corev1.RestartPolicyAlways,
			TerminationGracePeriodSeconds: new(int64(10)),
			Tolerations: []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "web",
				Effect: corev1.TaintEffectNoExecute, TolerationSeconds: new(int64(60))}},
		}
	})
}

func TestSupportedFieldsTable(t *testing.T) {
	for _, in := range kinds.All() {
		if _, err := compileKind(reflect.TypeOf(in.New()).Elem(), supportedFields[in.Kind]); err != nil {
			t.Errorf("%s: %v", in.Kind, err)
		}
	}
	deploymentType := reflect.TypeFor[appsv1.Deployment]()
	for _, tc := range []struct {
		paths []string
		want  string
	}{
		{[]string{"spec.template.spec.containers[*].nope"}, `spec.template.spec.containers[*].nope: v1.Container has no field "nope"`},
		{[]string{"spec.template.spec.containers.image"}, "spec.template.spec.containers: [*] marks a list"},
		{[]string{"spec.paused[*]"}, "spec.paused: [*] marks a list"},
		{[]string{"metadata.labels.app"}, "metadata.labels: a map[string]string has no fields to name"},
		{[]string{"spec.strategy.rollingUpdate.maxSurge.intVal"}, "spec.strategy.rollingUpdate.maxSurge: a intstr.IntOrString has no fields to name"},
		{[]string{"metadata.creationTimestamp.Time"}, "metadata.creationTimestamp: a v1.Time has no fields to name"},
		{[]string{"spec.paused", "spec.paused"}, "spec.paused: listed twice"},
		{[]string{"spec.strategy", "spec.strategy.type"}, "spec.strategy.type: a shorter path already covers it"},
		{[]string{"spec.strategy.type", "spec.strategy"}, "spec.strategy: listed twice, or covers longer paths"},
		{[]string{"spec..paused"}, "spec..paused: malformed path"},
		{[]string{"spec.selector.matchExpressions[*].key", "spec.selector.matchExpressions.operator"}, "written both with and without [*]"},
	} {
		_, err := compileKind(deploymentType, tc.paths)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got error %v, want %q", tc.paths, err, tc.want)
		}
	}
}

// eachUnsupported calls fn with the path of every field sc, the check of struct type t,
// refuses, "[*]" marking lists.
func eachUnsupported(sc *structCheck, t reflect.Type, at []string, fn func([]string)) {
	for _, f := range sc.fields {
		seg := f.name
		ft := t.FieldByIndex(f.index).Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Slice {
			seg += "[*]"
			ft = ft.Elem()
		}
		path := append(append([]string(nil), at...), seg)
		if f.under == nil {
			fn(append(path[:len(path)-1:len(path)-1], f.name))
			continue
		}
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		eachUnsupported(f.under, ft, path, fn)
	}
}

// fillPath sets the field segs names (JSON names, "[*]" for lists) in struct v to a
// non-zero value, creating what is on the way, and a list's element 0.
func fillPath(v reflect.Value, segs []string) {
	name, list := strings.CutSuffix(segs[0], "[*]")
	var fv reflect.Value
	for _, f := range jsonFields(v.Type()) {
		if f.name == name {
			fv = v.FieldByIndex(f.index)
		}
	}
	if !fv.IsValid() {
		panic("no field " + name + " in " + v.Type().String())
	}
	if list {
		if fv.Len() == 0 {
			fv.Set(reflect.MakeSlice(fv.Type(), 1, 1))
		}
		fv = fv.Index(0)
	}
	if len(segs) == 1 {
		fillValue(fv)
		return
	}
	if fv.Kind() == reflect.Pointer {
		if fv.IsNil() {
			fv.Set(reflect.New(fv.Type().Elem()))
		}
		fv = fv.Elem()
	}
	fillPath(fv, segs[1:])
}

// fillValue sets v to some non-zero value of its type.
func fillValue(v reflect.Value) {
	switch v.Type() {
	case reflect.TypeFor[metav1.Time]():
		v.Set(reflect.ValueOf(metav1.Now()))
		return
	case reflect.TypeFor[metav1.MicroTime]():
		v.Set(reflect.ValueOf(metav1.NowMicro()))
		return
	case reflect.TypeFor[resource.Quantity]():
		v.Set(reflect.ValueOf(resource.MustParse("1")))
		return
	case reflect.TypeFor[runtime.RawExtension]():
		v.Set(reflect.ValueOf(runtime.RawExtension{Raw: []byte("{}")}))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(1)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fillValue(v.Elem())
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fillValue(v.Index(0))
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fillValue(k)
		fillValue(e)
		v.SetMapIndex(k, e)
	case reflect.Struct:
		// One field is enough to make a struct non-zero, and avoids recursive types. A
		// struct without fields (an option that is its presence) is set by its pointer.
		if v.Type().NumField() == 0 {
			return
		}
		for _, f := range jsonFields(v.Type()) {
			fillValue(v.FieldByIndex(f.index))
			return
		}
		panic("cannot fill " + v.Type().String())
	}
}

func BenchmarkValidatePod(b *testing.B) {
	p := pod(nil)
	Default(p)
	b.ReportAllocs()
	for b.Loop() {
		if err := Validate(p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheckSupportedPod(b *testing.B) {
	p := pod(func(p *corev1.Pod) {
		p.Labels = map[string]string{"app": "web"}
		p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80}}
		p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "A", Value: "1"}}
		p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{"cpu": resource.MustParse("100m")}
		p.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.5",
			Conditions:        []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "web", Ready: true}}}
	})
	Default(p)
	b.ReportAllocs()
	for b.Loop() {
		if errs := checkSupported(p, false); len(errs) > 0 {
			b.Fatal(errs)
		}
	}
}

// TestManagedFieldsAcceptedOnEveryKind: server-side apply records managedFields on any
// kind's object (Helm applies ServiceAccounts, Secrets, ...), so no kind refuses them.
func TestManagedFieldsAcceptedOnEveryKind(t *testing.T) {
	for _, in := range kinds.All() {
		obj := in.New()
		obj.SetManagedFields([]metav1.ManagedFieldsEntry{{Manager: "helm", Operation: metav1.ManagedFieldsOperationApply}})
		if errs := checkSupported(obj, false); len(errs) > 0 {
			t.Errorf("%s with managedFields: %v", in.Kind, ErrorList(errs))
		}
	}
}

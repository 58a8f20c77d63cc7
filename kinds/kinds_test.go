package kinds

import (
	"bytes"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func samplePod() *corev1.Pod {
	grace := int64(5)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "default", UID: "u1", Generation: 1,
			CreationTimestamp: metav1.NewTime(time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)),
			Labels:            map[string]string{"app": "web"}, Annotations: map[string]string{"a": "b"}},
		Spec: corev1.PodSpec{NodeName: "w1", TerminationGracePeriodSeconds: &grace,
			Containers: []corev1.Container{{Name: "c", Image: "busybox:1.36",
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.42.0.5"},
	}
}

func samples() []Object {
	two := int32(2)
	return []Object{
		samplePod(),
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w1"}, Spec: corev1.NodeSpec{Unschedulable: true}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
			Spec: appsv1.DeploymentSpec{Replicas: &two, Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &intstr.IntOrString{Type: intstr.String, StrVal: "25%"}}}}},
		&appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "web-abc", Namespace: "default"}, Spec: appsv1.ReplicaSetSpec{Replicas: &two}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "default"}, Data: map[string]string{"k": "v"},
			BinaryData: map[string][]byte{"b": {0, 1, 2}}},
		&corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "e.1", Namespace: "default"}, Reason: "Started",
			EventTime: metav1.NewMicroTime(time.Date(2026, 12, 4, 10, 0, 0, 123456000, time.UTC))},
		&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "w1", Namespace: "kube-node-lease"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "default"}, Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{"k": []byte("v")}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "default"}},
		&policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
			Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: &intstr.IntOrString{Type: intstr.String, StrVal: "50%"},
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
			Status: policyv1.PodDisruptionBudgetStatus{DisruptionsAllowed: 1, CurrentHealthy: 3, DesiredHealthy: 2, ExpectedPods: 3}},
	}
}

func scheme(t testing.TB) *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, coordinationv1.AddToScheme, policyv1.AddToScheme} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// Encode writes exactly what apimachinery's protobuf serializer writes, so stored bytes
// are what application/vnd.kubernetes.protobuf carries; Decode reads it back.
func TestEncodeIsKubernetesProtobuf(t *testing.T) {
	s := scheme(t)
	ser := protobuf.NewSerializer(s, s)
	for _, obj := range samples() {
		in := Of(obj)
		got, err := Encode(obj)
		if err != nil {
			t.Fatal(err)
		}
		SetTypeMeta(obj)
		var want bytes.Buffer
		if err := ser.Encode(obj, &want); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Errorf("%s: Encode differs from apimachinery's serializer:\n got %x\nwant %x", in.Kind, got, want.Bytes())
		}
		back, err := Decode(got)
		if err != nil {
			t.Fatalf("%s: %v", in.Kind, err)
		}
		if Of(back) != in || back.GetName() != obj.GetName() || back.GetObjectKind().GroupVersionKind() != in.GroupVersionKind() {
			t.Errorf("%s: decoded %#v", in.Kind, back)
		}
		fromSer, _, err := ser.Decode(got, nil, nil)
		if err != nil || fromSer.(Object).GetName() != obj.GetName() {
			t.Errorf("%s: apimachinery cannot read Encode's bytes: %v", in.Kind, err)
		}
	}
}

func TestAppendWithResourceVersion(t *testing.T) {
	s := scheme(t)
	ser := protobuf.NewSerializer(s, s)
	for _, obj := range samples() {
		stored := MustEncode(obj)
		for _, rev := range []int64{1, 127, 1 << 40, math.MaxInt64} {
			out := AppendWithResourceVersion([]byte("prefix"), stored, rev)
			if !bytes.HasPrefix(out, []byte("prefix")) {
				t.Fatal("lost what it appended to")
			}
			out = out[len("prefix"):]
			if got, want := len(out), SizeWithResourceVersion(stored, rev); got != want {
				t.Errorf("%s at %d: appended %d bytes, SizeWithResourceVersion says %d", Of(obj).Kind, rev, got, want)
			}
			back, err := Decode(out)
			if err != nil {
				t.Fatal(err)
			}
			want := obj.DeepCopyObject().(Object)
			want.SetResourceVersion(back.GetResourceVersion())
			if back.GetResourceVersion() != strconv.FormatInt(rev, 10) {
				t.Errorf("%s: resourceVersion %q, want %d", Of(obj).Kind, back.GetResourceVersion(), rev)
			}
			if !bytes.Equal(MustEncode(back), MustEncode(want)) {
				t.Errorf("%s: the suffix changed more than resourceVersion", Of(obj).Kind)
			}
			// client-go reads it as the same object.
			fromSer, _, err := ser.Decode(out, nil, nil)
			if err != nil || fromSer.(Object).GetResourceVersion() != strconv.FormatInt(rev, 10) {
				t.Errorf("%s: apimachinery reads resourceVersion %v (%v)", Of(obj).Kind, fromSer, err)
			}
		}
	}
}

func TestDecodeRefusesOtherBytes(t *testing.T) {
	for _, data := range [][]byte{nil, []byte("{}"), []byte("k8s"), append(append([]byte{}, Magic...), 0xff, 0xff)} {
		if _, err := Decode(data); err == nil {
			t.Errorf("Decode(%q) succeeded", data)
		}
	}
	// A kind Skiff does not serve.
	unk := runtime.Unknown{TypeMeta: runtime.TypeMeta{APIVersion: "v1", Kind: "ComponentStatus"}, Raw: []byte{}}
	b, _ := unk.Marshal()
	if _, err := Decode(append(append([]byte{}, Magic...), b...)); err == nil || !strings.Contains(err.Error(), "ComponentStatus") {
		t.Errorf("a ComponentStatus decoded: %v", err)
	}
	// DecodeInto a different kind.
	if err := DecodeInto(MustEncode(samplePod()), &corev1.Node{}); err == nil {
		t.Error("a Pod decoded into a Node")
	}
}

func TestLookup(t *testing.T) {
	for name, want := range map[string]string{
		"pods": Pod, "po": Pod, "Pod": Pod, "deploy": Deployment, "deployments.apps": Deployment, "deployment.apps": Deployment,
		"deployments.v1.apps": Deployment, "rs": ReplicaSet, "leases.coordination.k8s.io": Lease, "NS": Namespace,
	} {
		in, ok := Lookup(name)
		if !ok || in.Kind != want {
			t.Errorf("Lookup(%q) = %v, want %s", name, in, want)
		}
	}
	if _, ok := Lookup("pods.apps"); ok {
		t.Error("pods.apps found")
	}
	// Names no kind has: longer than the lookup's buffer, and not ASCII (Unicode's
	// folding: "PODſ" lowers to "podſ", not "pods").
	for _, name := range []string{strings.Repeat("pods", 20), "PODſ", "pоds" /* a Cyrillic о */} {
		if in, ok := Lookup(name); ok {
			t.Errorf("Lookup(%q) = %s", name, in.Kind)
		}
	}
}

// TestLookupAllocatesNothing: every API request looks kinds up by name several times
// (authorization alone compares its resource with up to twenty kinds' plurals), and
// lowering each name into a new string was most of each lookup's cost.
func TestLookupAllocatesNothing(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() {
		MustLookup(Pod)
		MustLookup("deployments.apps")
		ForGroupVersionKind("v1", "ConfigMap")
	}); n != 0 {
		t.Errorf("%v allocations a lookup, want none", n)
	}
	if in := OfType[*appsv1.Deployment](); in.Kind != Deployment || in.APIVersion != "apps/v1" {
		t.Errorf("OfType = %+v", in)
	}
	if _, ok := ForGroupVersionKind("extensions/v1beta1", "Deployment"); ok {
		t.Error("an old apiVersion found")
	}
}

func TestSections(t *testing.T) {
	a := samplePod()
	b := a.DeepCopy()
	b.Status.Phase = corev1.PodPending
	if !SectionEqual(a, b, SpecSection) || SectionEqual(a, b, StatusSection) {
		t.Error("a status change shows in the wrong section")
	}
	b.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU] = resource.MustParse("0.1")
	if !SectionEqual(a, b, SpecSection) {
		t.Error("100m and 0.1 differ")
	}
	b.Spec.Containers[0].Image = "busybox:1.37"
	if SectionEqual(a, b, SpecSection) {
		t.Error("an image change is no spec change")
	}
	CopySection(b, a, StatusSection)
	if b.Status.Phase != corev1.PodRunning || b.Spec.Containers[0].Image != "busybox:1.37" {
		t.Error("CopySection(status) copied the wrong fields")
	}
	cm, cm2 := &corev1.ConfigMap{Data: map[string]string{"k": "v"}}, &corev1.ConfigMap{}
	CopySection(cm2, cm, SpecSection)
	if cm2.Data["k"] != "v" {
		t.Error("a ConfigMap's data is not its spec section")
	}
}

func TestDecodeManifest(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		want      []string // every problem, in order; nil for success
	}{
		{"ok", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n      containers:\n      - {name: c, image: i, resources: {requests: {cpu: 1, memory: 1.5Gi}}}\n", nil},
		{"json", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"k":"v"}}`, nil},
		{"unknown", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n      containers:\n      - {name: c, foo: 1}\n      - {name: d, bar: 1}\n",
			[]string{"spec.template.spec.containers[0].foo: unknown field", "spec.template.spec.containers[1].bar: unknown field"}},
		{"type", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: three}\n",
			[]string{"spec.replicas: expected int32, got string"}},
		{"kind", "apiVersion: v1\nkind: Widget\n", []string{"kind: Unsupported value"}},
		{"apiVersion", "apiVersion: extensions/v1beta1\nkind: Deployment\n", []string{`apiVersion: Unsupported value: "extensions/v1beta1"`}},
		{"no kind", "apiVersion: v1\n", []string{"kind: Required value"}},
		{"list", "- a\n- b\n", []string{"must be a mapping"}},
		{"duplicate", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: x, a: y}\n", []string{"not valid YAML"}},
		{"secret data", "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {username: YWRtaW4=, password: 'hunter2!'}\n",
			[]string{"data[password]: Invalid value: not base64: illegal base64 data at input byte 7"}},
		{"configmap binaryData", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"a":"not base64, fine"},"binaryData":{"b":"%%"}}`,
			[]string{"binaryData[b]: Invalid value: not base64: illegal base64 data at input byte 0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obj, err := DecodeManifest([]byte(tc.doc))
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if obj.GetObjectKind().GroupVersionKind().Kind == "" {
					t.Error("no kind set")
				}
				return
			}
			if err == nil {
				t.Fatalf("decoded %#v", obj)
			}
			var me *ManifestError
			if errors.As(err, &me) {
				if len(me.Problems) != len(tc.want) {
					t.Fatalf("problems %q, want %q", me.Problems, tc.want)
				}
				for i := range tc.want {
					if !strings.Contains(me.Problems[i], tc.want[i]) {
						t.Errorf("problem %q, want %q", me.Problems[i], tc.want[i])
					}
				}
				return
			}
			if !strings.Contains(err.Error(), tc.want[0]) {
				t.Errorf("error %q, want %q", err, tc.want[0])
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	for _, obj := range samples() {
		f.Add(MustEncode(obj))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		obj, err := Decode(data)
		if err != nil {
			return
		}
		// Whatever decodes encodes again and adds a resourceVersion.
		b, err := Encode(obj)
		if err != nil {
			t.Fatal(err)
		}
		if out := AppendWithResourceVersion(nil, b, 42); len(out) != SizeWithResourceVersion(b, 42) {
			t.Fatal("SizeWithResourceVersion disagrees")
		}
	})
}

// Whatever bytes the store holds, the size and the append agree: the API server sizes
// its buffers with one and writes with the other.
func FuzzAppendWithResourceVersion(f *testing.F) {
	for _, obj := range samples() {
		f.Add(MustEncode(obj), int64(7))
	}
	f.Add([]byte("k8s\x00\x12\x05abc"), int64(1))
	f.Fuzz(func(t *testing.T, stored []byte, rev int64) {
		if rev < 0 {
			rev = -rev
		}
		if out := AppendWithResourceVersion(nil, stored, rev); len(out) != SizeWithResourceVersion(stored, rev) {
			t.Fatalf("appended %d bytes, size says %d", len(out), SizeWithResourceVersion(stored, rev))
		}
	})
}

func FuzzDecodeManifest(f *testing.F) {
	f.Add([]byte("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: i}]}\n"))
	f.Add([]byte(`{"apiVersion":"apps/v1","kind":"Deployment","spec":{"replicas":"x"}}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		obj, err := DecodeManifest(doc)
		if err == nil {
			if _, err := Encode(obj); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func TestParseNames(t *testing.T) {
	p := samplePod()
	p.GenerateName = "web-"
	got, err := ParseNames(MustEncode(p))
	if err != nil || got != (ObjectNames{Name: "web-1", GenerateName: "web-", Namespace: "default"}) {
		t.Errorf("ParseNames = %+v, %v", got, err)
	}
	if got, err := ParseNames(AppendWithResourceVersion(nil, MustEncode(p), 9)); err != nil || got.Name != "web-1" {
		t.Errorf("with a resourceVersion: %+v, %v", got, err)
	}
	if _, err := ParseNames([]byte("junk")); err == nil {
		t.Error("junk parsed")
	}
}

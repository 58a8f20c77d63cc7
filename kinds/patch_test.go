package kinds

import (
	"encoding/json"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

func deployment(replicas int32, images ...string) *appsv1.Deployment {
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", ResourceVersion: "7"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}}}},
	}
	for i, img := range images {
		d.Spec.Template.Spec.Containers = append(d.Spec.Template.Spec.Containers,
			corev1.Container{Name: []string{"app", "sidecar"}[i], Image: img, ImagePullPolicy: corev1.PullIfNotPresent})
	}
	return d
}

// applied is what apply sends for a YAML manifest.
func applied(t *testing.T, manifest string) []byte {
	t.Helper()
	js, err := yaml.YAMLToJSON([]byte(manifest))
	if err != nil {
		t.Fatal(err)
	}
	out, err := AppliedConfiguration(js)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// stored is the object as the server holds it after an apply of manifest (its
// annotation set) and then the changes others made (change).
func stored(t *testing.T, manifest string, change func(*appsv1.Deployment)) *appsv1.Deployment {
	t.Helper()
	obj, err := DecodeManifest(applied(t, manifest))
	if err != nil {
		t.Fatal(err)
	}
	d := obj.(*appsv1.Deployment)
	d.Namespace, d.ResourceVersion = "default", "7"
	d.Spec.Template.Spec.Containers[0].ImagePullPolicy = corev1.PullIfNotPresent // a server default
	if change != nil {
		change(d)
	}
	return d
}

const webManifest = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {team: a}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: app, image: busybox:1.36}
`

// TestApplyPatch: kubectl's client-side apply, case by case.
func TestApplyPatch(t *testing.T) {
	for _, tc := range []struct {
		name     string
		current  *appsv1.Deployment
		manifest string
		want     string // the patch, "{}" for none
		check    func(*testing.T, *appsv1.Deployment)
	}{
		{
			name: "unchanged manifest, replicas scaled and a revision annotated by others",
			current: stored(t, webManifest, func(d *appsv1.Deployment) {
				d.Spec.Replicas = ptr.To[int32](3)
				d.Annotations["deployment.kubernetes.io/revision"] = "1"
			}),
			manifest: webManifest,
			want:     "{}",
		},
		{
			name:     "changed image, replicas kept",
			current:  stored(t, webManifest, func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To[int32](3) }),
			manifest: strings.Replace(webManifest, "busybox:1.36", "busybox:1.37", 1),
			check: func(t *testing.T, d *appsv1.Deployment) {
				c := d.Spec.Template.Spec.Containers[0]
				if *d.Spec.Replicas != 3 || c.Image != "busybox:1.37" || c.ImagePullPolicy != corev1.PullIfNotPresent {
					t.Errorf("replicas %d, container %+v", *d.Spec.Replicas, c)
				}
			},
		},
		{
			name: "a label removed from the manifest is removed; one added by others stays",
			current: stored(t, strings.Replace(webManifest, "{team: a}", "{team: a, tier: b}", 1),
				func(d *appsv1.Deployment) { d.Labels["added-by"] = "hand" }),
			manifest: strings.Replace(webManifest, "{team: a}", "{tier: b}", 1),
			check: func(t *testing.T, d *appsv1.Deployment) {
				if _, ok := d.Labels["team"]; ok || d.Labels["added-by"] != "hand" || d.Labels["tier"] != "b" {
					t.Errorf("labels %v", d.Labels)
				}
			},
		},
		{
			name:     "a container added merges by name",
			current:  stored(t, webManifest, nil),
			manifest: webManifest + "      - {name: sidecar, image: busybox:1.36}\n",
			check: func(t *testing.T, d *appsv1.Deployment) {
				cs := d.Spec.Template.Spec.Containers
				if len(cs) != 2 || cs[0].ImagePullPolicy != corev1.PullIfNotPresent || cs[1].Name != "sidecar" {
					t.Errorf("containers %+v", cs)
				}
			},
		},
		{
			name:     "replicas applied, then left out of the manifest: removed (the default comes back)",
			current:  stored(t, strings.Replace(webManifest, "spec:\n", "spec:\n  replicas: 4\n", 1), nil),
			manifest: webManifest,
			check: func(t *testing.T, d *appsv1.Deployment) {
				if d.Spec.Replicas != nil {
					t.Errorf("replicas %d, want unset", *d.Spec.Replicas)
				}
			},
		},
		{
			name: "no annotation (made by create): fields set, nothing removed",
			current: func() *appsv1.Deployment {
				d := deployment(5, "busybox:1.36")
				d.Labels = map[string]string{"x": "y"}
				return d
			}(),
			manifest: webManifest,
			check: func(t *testing.T, d *appsv1.Deployment) {
				if d.Labels["x"] != "y" || d.Labels["team"] != "a" || *d.Spec.Replicas != 5 || d.Annotations[LastAppliedAnnotation] == "" {
					t.Errorf("labels %v replicas %d annotations %v", d.Labels, *d.Spec.Replicas, d.Annotations)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			patch, _, err := ApplyPatch(tc.current, applied(t, tc.manifest))
			if err != nil {
				t.Fatal(err)
			}
			if tc.want != "" {
				if string(patch) != tc.want {
					t.Fatalf("patch %s, want %s", patch, tc.want)
				}
				return
			}
			if string(patch) == "{}" {
				t.Fatal("empty patch")
			}
			out, err := Patch(tc.current, StrategicMergePatch, patch)
			if err != nil {
				t.Fatalf("patch %s: %v", patch, err)
			}
			d := out.(*appsv1.Deployment)
			if d.ResourceVersion != "7" {
				t.Errorf("resourceVersion %q: the patched object must compare against the one read", d.ResourceVersion)
			}
			if d.Annotations[LastAppliedAnnotation] != lastApplied(t, tc.manifest) {
				t.Errorf("annotation %q", d.Annotations[LastAppliedAnnotation])
			}
			tc.check(t, d)
		})
	}
}

// lastApplied is the annotation apply writes for a manifest.
func lastApplied(t *testing.T, manifest string) string {
	var m map[string]any
	if err := json.Unmarshal(applied(t, manifest), &m); err != nil {
		t.Fatal(err)
	}
	return m["metadata"].(map[string]any)["annotations"].(map[string]any)[LastAppliedAnnotation].(string)
}

// TestAppliedConfiguration: the annotation is the manifest as kubectl encodes it: keys
// sorted, compact, a newline at the end, without the annotation itself.
func TestAppliedConfiguration(t *testing.T) {
	in := `{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"c","annotations":{"a":"b","` + LastAppliedAnnotation + `":"old"}},"data":{"n":"1.50"}}`
	out, err := AppliedConfiguration([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"apiVersion":"v1","data":{"n":"1.50"},"kind":"ConfigMap","metadata":{"annotations":{"a":"b"},"name":"c"}}` + "\n"
	if got := lastAppliedOf(t, out); got != want {
		t.Errorf("annotation\n%q\nwant\n%q", got, want)
	}
}

func lastAppliedOf(t *testing.T, js []byte) string {
	var m struct {
		Metadata struct{ Annotations map[string]string }
	}
	if err := json.Unmarshal(js, &m); err != nil {
		t.Fatal(err)
	}
	return m.Metadata.Annotations[LastAppliedAnnotation]
}

// TestPatch: each patch type, as kube-apiserver applies it, and what a patch may not do.
func TestPatch(t *testing.T) {
	two := deployment(1, "a:1", "b:1")
	for _, tc := range []struct {
		name    string
		pt      types.PatchType
		patch   string
		check   func(*appsv1.Deployment) bool
		wantErr string
	}{
		{"strategic merges containers by name", StrategicMergePatch, `{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"b:2"}]}}}}`,
			func(d *appsv1.Deployment) bool {
				cs := d.Spec.Template.Spec.Containers
				return len(cs) == 2 && cs[0].Image == "a:1" && cs[1].Image == "b:2"
			}, ""},
		{"strategic $patch: delete", StrategicMergePatch, `{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","$patch":"delete"}]}}}}`,
			func(d *appsv1.Deployment) bool { return len(d.Spec.Template.Spec.Containers) == 1 }, ""},
		{"merge replaces lists", MergePatch, `{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"b:2"}]}}}}`,
			func(d *appsv1.Deployment) bool {
				cs := d.Spec.Template.Spec.Containers
				return len(cs) == 1 && cs[0].Name == "sidecar"
			}, ""},
		{"merge null removes", MergePatch, `{"spec":{"replicas":null}}`,
			func(d *appsv1.Deployment) bool { return d.Spec.Replicas == nil }, ""},
		{"json patch", JSONPatch, `[{"op":"replace","path":"/spec/replicas","value":4},{"op":"add","path":"/metadata/labels","value":{"x":"y"}}]`,
			func(d *appsv1.Deployment) bool { return *d.Spec.Replicas == 4 && d.Labels["x"] == "y" }, ""},
		{"json patch test fails", JSONPatch, `[{"op":"test","path":"/spec/replicas","value":9}]`, nil, "apply JSON patch"},
		{"not a JSON patch", JSONPatch, `{"spec":{}}`, nil, "decode JSON patch"},
		{"unknown field", MergePatch, `{"spec":{"replicaz":2}}`, nil, "spec.replicaz: unknown field"},
		{"wrong type", StrategicMergePatch, `{"spec":{"replicas":"two"}}`, nil, "spec.replicas: expected int32, got string"},
		{"rename", MergePatch, `{"metadata":{"name":"other"}}`, nil, "metadata.name: Invalid value"},
		{"another kind", MergePatch, `{"kind":"ReplicaSet"}`, nil, "may not change the object's apiVersion and kind"},
		{"unknown type", "application/apply-patch+yaml", `{}`, nil, "patch type: Unsupported value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := two.DeepCopy()
			out, err := Patch(two, tc.pt, []byte(tc.patch))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(out.(*appsv1.Deployment)) {
				t.Errorf("patched: %+v", out.(*appsv1.Deployment).Spec)
			}
			if !equalJSON(t, before, two) {
				t.Error("Patch changed its argument")
			}
		})
	}
}

func equalJSON(t *testing.T, a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// TestTwoWayPatch: the patch between two versions of an object, as edit sends it.
func TestTwoWayPatch(t *testing.T) {
	a, b := deployment(1, "a:1"), deployment(2, "a:1")
	ja, _ := ObjectJSON(a)
	jb, _ := ObjectJSON(b)
	p, err := TwoWayPatch(Of(a), ja, jb)
	if err != nil || string(p) != `{"spec":{"replicas":2}}` {
		t.Fatalf("patch %s %v", p, err)
	}
}

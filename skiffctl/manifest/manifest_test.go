package manifest

import (
	"errors"
	"os"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/skiffhq/skiff/kinds"
)

func decodeFile(t *testing.T, name string) []Document {
	t.Helper()
	f, err := os.Open("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	docs, err := Decode(f, name)
	if err != nil {
		t.Fatal(err)
	}
	return docs
}

func TestNginxDeployment(t *testing.T) {
	docs := decodeFile(t, "nginx-deployment.yaml")
	if len(docs) != 1 {
		t.Fatalf("got %d documents, want 1", len(docs))
	}
	d, ok := docs[0].Object.(*appsv1.Deployment)
	if !ok {
		t.Fatalf("got %T, want a Deployment", docs[0].Object)
	}
	if d.Name != "nginx-deployment" || d.Spec.Replicas == nil || *d.Spec.Replicas != 3 ||
		d.Spec.Selector == nil || d.Spec.Selector.MatchLabels["app"] != "nginx" {
		t.Fatalf("decoded %v", d)
	}
	c := d.Spec.Template.Spec.Containers
	if len(c) != 1 || c[0].Image != "nginx:1.14.2" || len(c[0].Ports) != 1 || c[0].Ports[0].ContainerPort != 80 {
		t.Fatalf("containers %v", c)
	}
	if d.APIVersion != "apps/v1" || d.Kind != "Deployment" {
		t.Errorf("type meta %v", d.TypeMeta)
	}
}

func TestMultiDocument(t *testing.T) {
	docs := decodeFile(t, "multi.yaml")
	var got []string
	for _, d := range docs {
		got = append(got, kinds.Of(d.Object).Kind)
	}
	if strings.Join(got, ",") != "Namespace,ConfigMap,Pod" {
		t.Fatalf("kinds %v", got)
	}
	if docs[2].Index != 4 {
		t.Errorf("pod is document %d, want 4", docs[2].Index)
	}
	pod := docs[2].Object.(*corev1.Pod)
	res := pod.Spec.Containers[0].Resources
	// A numeric quantity (cpu: 1) is a quantity like any other.
	if cpu := res.Limits[corev1.ResourceCPU]; cpu.String() != "1" || cpu.MilliValue() != 1000 {
		t.Errorf("limits %v", res.Limits)
	}
	if mem := res.Requests[corev1.ResourceMemory]; mem.String() != "64Mi" {
		t.Errorf("requests %v", res.Requests)
	}
	if g := pod.Spec.TerminationGracePeriodSeconds; g == nil || *g != 5 {
		t.Errorf("grace %v", g)
	}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		want      []string
	}{
		{"unknown nested field", `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    spec:
      containers:
      - name: a
        image: b
        foo: 1
`, []string{`in.yaml: document 1 (Deployment "web"): `, "spec.template.spec.containers[0].foo: unknown field"}},
		// Type errors are encoding/json's: their paths have no list indices or map keys.
		{"wrong type", `
apiVersion: v1
kind: Pod
metadata: {name: p}
spec: {containers: [{name: a, image: b, ports: [{containerPort: eighty}]}]}
`, []string{"spec.containers.ports.containerPort: expected int32, got string"}},
		{"label value number", `
apiVersion: v1
kind: Pod
metadata: {name: p, labels: {version: 2}}
`, []string{"metadata.labels: expected string, got number"}},
		{"several problems", `
apiVersion: v1
kind: Pod
metadata: {name: p, bogus: x}
spec: {restartPolicy: Always, nope: true}
`, []string{"metadata.bogus: unknown field", "spec.nope: unknown field"}},
		{"list for a string", `
apiVersion: v1
kind: Pod
metadata: {name: p}
spec: {restartPolicy: [Always]}
`, []string{"spec.restartPolicy: expected v1.RestartPolicy, got array"}},
		{"fractional int", `
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: r}
spec: {replicas: 1.5}
`, []string{`(ReplicaSet "r")`, "spec.replicas", "1.5", "int32"}},
		{"out of range", `
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: r}
spec: {replicas: 3000000000}
`, []string{"spec.replicas", "3000000000", "int32"}},
		{"duplicate key", "apiVersion: v1\nkind: Pod\nmetadata: {name: a, name: b}\n", []string{`key "name" already set`}},
		{"missing kind", "apiVersion: v1\nmetadata: {name: x}\n", []string{"kind: Required value"}},
		{"missing apiVersion", "kind: Pod\n", []string{"apiVersion: Required value"}},
		{"unknown kind", "apiVersion: v1\nkind: ComponentStatus\n", []string{`kind: Unsupported value: "ComponentStatus"`}},
		{"wrong group", "apiVersion: extensions/v1beta1\nkind: Deployment\n", []string{`apiVersion: Unsupported value: "extensions/v1beta1": Deployment is served as "apps/v1"`}},
		{"not a mapping", "- a\n- b\n", []string{"a manifest must be a mapping"}},
		{"bad yaml", "apiVersion: v1\nkind: [\n", []string{"not valid YAML or JSON"}},
		{"bad timestamp", "apiVersion: v1\nkind: Pod\nmetadata: {creationTimestamp: yesterday}\n", []string{"in.yaml: document 1 (Pod):"}},
		{"second document", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\ndat: {}\n",
			[]string{`in.yaml: document 2 (ConfigMap "b"): dat: unknown field`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeBytes([]byte(tc.doc), "in.yaml")
			if err == nil {
				t.Fatal("decoded without error")
			}
			var me *Error
			if !errors.As(err, &me) {
				t.Fatalf("error %T is not a *manifest.Error", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestJSONInput(t *testing.T) {
	docs, err := DecodeBytes([]byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"k":"v"}}`), "-")
	if err != nil {
		t.Fatal(err)
	}
	if docs[0].Object.(*corev1.ConfigMap).Data["k"] != "v" {
		t.Fatalf("decoded %v", docs[0].Object)
	}
}

func TestRoundTrip(t *testing.T) {
	for _, name := range []string{"nginx-deployment.yaml", "multi.yaml"} {
		for _, d := range decodeFile(t, name) {
			for enc, fn := range map[string]func([]kinds.Object, bool) ([]byte, error){"yaml": YAML, "json": JSON} {
				out, err := fn([]kinds.Object{d.Object}, false)
				if err != nil {
					t.Fatal(err)
				}
				back, err := DecodeBytes(out, enc)
				if err != nil {
					t.Fatalf("%s of %s does not decode: %v\n%s", enc, name, err, out)
				}
				if !equality.Semantic.DeepEqual(back[0].Object, d.Object) {
					t.Errorf("%s round trip of %s changed it:\n%v\n%v", enc, name, d.Object, back[0].Object)
				}
				if strings.Contains(string(out), `"5"`) || strings.Contains(string(out), `'5'`) {
					t.Errorf("%s writes a 64-bit integer as a string:\n%s", enc, out)
				}
			}
		}
	}
}

// TestKubectlShape: the encoding is Kubernetes' JSON as kubectl prints it: apiVersion
// and kind set, keys sorted, quantities as strings, empty structs kept ({}), zero times
// left out (apimachinery's omitzero), JSON indented by four spaces, and a List whose
// metadata holds an empty resourceVersion.
func TestKubectlShape(t *testing.T) {
	d := decodeFile(t, "nginx-deployment.yaml")[0].Object.(*appsv1.Deployment)
	d.APIVersion, d.Kind = "", "" // the encoder sets them itself
	y, err := YAML([]kinds.Object{d}, false)
	if err != nil {
		t.Fatal(err)
	}
	want := `apiVersion: apps/v1
kind: Deployment
metadata:
  labels:
    app: nginx
  name: nginx-deployment
spec:
  replicas: 3
  selector:
    matchLabels:
      app: nginx
  strategy: {}
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
      - image: nginx:1.14.2
        name: nginx
        ports:
        - containerPort: 80
        resources: {}
status: {}
`
	if string(y) != want {
		t.Errorf("yaml:\n%s\nwant:\n%s", y, want)
	}
	if d.Kind != "" {
		t.Errorf("encoding changed the object: kind %q", d.Kind)
	}
	pod := decodeFile(t, "multi.yaml")[2].Object
	j, err := JSON([]kinds.Object{pod}, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"{\n    \"apiVersion\": \"v1\",\n    \"items\": [\n", `"cpu": "1"`, `"terminationGracePeriodSeconds": 5`,
		"\"kind\": \"List\",\n    \"metadata\": {\n        \"resourceVersion\": \"\"\n    }\n}\n"} {
		if !strings.Contains(string(j), w) {
			t.Errorf("json lacks %q:\n%s", w, j)
		}
	}
}

func TestListEncoding(t *testing.T) {
	docs := decodeFile(t, "multi.yaml")
	objs := []kinds.Object{docs[0].Object, docs[1].Object}
	out, err := YAML(objs, true)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "kind: List") || !strings.Contains(string(out), "kind: ConfigMap") {
		t.Fatalf("list:\n%s", out)
	}
	out, err = YAML(nil, true)
	if err != nil || string(out) != "apiVersion: v1\nitems: []\nkind: List\nmetadata:\n  resourceVersion: \"\"\n" {
		t.Fatalf("empty list: %v\n%s", err, out)
	}
}

func FuzzDecode(f *testing.F) {
	for _, name := range []string{"nginx-deployment.yaml", "multi.yaml"} {
		data, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("apiVersion: v1\nkind: Pod\nspec: {containers: [{name: a, ports: [{containerPort: 1e3}]}]}\n"))
	f.Add([]byte("---\n---\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		docs, err := DecodeBytes(data, "fuzz")
		if err != nil {
			return
		}
		for _, d := range docs {
			out, err := JSON([]kinds.Object{d.Object}, false)
			if err != nil {
				t.Fatalf("decoded object does not encode: %v", err)
			}
			back, err := DecodeBytes(out, "again")
			if err != nil {
				t.Fatalf("encoded object does not decode: %v\n%s", err, out)
			}
			if !equality.Semantic.DeepEqual(back[0].Object, d.Object) {
				t.Fatalf("round trip changed the object:\n%v\n%v", d.Object, back[0].Object)
			}
		}
	})
}

// TestDocumentNumbers: documents are numbered as YAML counts them: a file that starts
// with "---" starts its first document there; a failing document does not stop the
// others, and its error names the file, the number and the object.
func TestDocumentNumbers(t *testing.T) {
	data := "# leading comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\ndat: {}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: x}\n"
	docs, err := DecodeBytes([]byte(data), "in.yaml")
	if len(docs) != 2 || docs[0].Index != 1 || docs[1].Index != 3 || docs[1].Source != "in.yaml" {
		t.Fatalf("documents %+v", docs)
	}
	if err == nil || err.Error() != `in.yaml: document 2 (ConfigMap "b"): dat: unknown field` {
		t.Fatalf("error %v", err)
	}
	if string(docs[0].JSON) != `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}` {
		t.Errorf("JSON %s", docs[0].JSON)
	}
	if err := docs[0].SetNamespace("shop"); err != nil || docs[0].Object.GetNamespace() != "shop" ||
		string(docs[0].JSON) != `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"shop"}}` {
		t.Errorf("SetNamespace: %v %s", err, docs[0].JSON)
	}
	if err := docs[1].SetNamespace(""); err != nil || strings.Contains(string(docs[1].JSON), "namespace") {
		t.Errorf("SetNamespace(\"\"): %v %s", err, docs[1].JSON)
	}
	if e := docs[1].Fail(errors.New("boom")); e.Error() != `in.yaml: document 3 (ConfigMap "c"): boom` {
		t.Errorf("Fail: %v", e)
	}
}

// endless is input that never ends.
type endless struct{ read int64 }

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = '#'
	}
	e.read += int64(len(p))
	return len(p), nil
}

// TestDecodeRefusesHugeInput: more than MaxBytes is refused after reading just past
// the limit, not read whole.
func TestDecodeRefusesHugeInput(t *testing.T) {
	in := &endless{}
	_, err := Decode(in, "huge.yaml")
	if err == nil || !strings.Contains(err.Error(), "huge.yaml: more than 32 MiB of manifests") {
		t.Fatalf("got %v", err)
	}
	if in.read > MaxBytes+1<<20 {
		t.Fatalf("read %d bytes of endless input", in.read)
	}
}

package manifest

import (
	"errors"
	"os"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	corev1 "github.com/skiffhq/skiff/proto/core/v1"
	"github.com/skiffhq/skiff/proto/kinds"
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
	d, ok := docs[0].Object.(*corev1.Deployment)
	if !ok {
		t.Fatalf("got %T, want a Deployment", docs[0].Object)
	}
	if d.GetMetadata().GetName() != "nginx-deployment" || d.GetSpec().GetReplicas() != 3 ||
		d.GetSpec().GetSelector().GetMatchLabels()["app"] != "nginx" {
		t.Fatalf("decoded %v", d)
	}
	c := d.GetSpec().GetTemplate().GetSpec().GetContainers()
	if len(c) != 1 || c[0].GetImage() != "nginx:1.14.2" || c[0].GetPorts()[0].GetContainerPort() != 80 {
		t.Fatalf("containers %v", c)
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
	res := pod.GetSpec().GetContainers()[0].GetResources()
	if res.GetLimits()["cpu"] != "1" || res.GetRequests()["memory"] != "64Mi" {
		t.Errorf("resources %v: a numeric quantity must become a string", res)
	}
	if pod.GetSpec().GetTerminationGracePeriodSeconds() != 5 {
		t.Errorf("grace %d", pod.GetSpec().GetTerminationGracePeriodSeconds())
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
`, []string{`document 1 (Deployment "web")`, "spec.template.spec.containers[0].foo: unknown field"}},
		{"wrong type", `
apiVersion: v1
kind: Pod
metadata: {name: p}
spec: {containers: [{name: a, image: b, ports: [{containerPort: eighty}]}]}
`, []string{"spec.containers[0].ports[0].containerPort: expected an integer, got string eighty"}},
		{"label value number", `
apiVersion: v1
kind: Pod
metadata: {name: p, labels: {version: 2}}
`, []string{`metadata.labels["version"]: expected a string, got number 2`}},
		{"several problems", `
apiVersion: v1
kind: Pod
metadata: {name: p, bogus: x}
spec: {restartPolicy: [Always], nope: true}
`, []string{"metadata.bogus: unknown field", "spec.nope: unknown field", "spec.restartPolicy: expected a string, got list"}},
		{"fractional int", `
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: r}
spec: {replicas: 1.5}
`, []string{"spec.replicas: expected an integer, got 1.5"}},
		{"out of range", `
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: r}
spec: {replicas: 3000000000}
`, []string{"spec.replicas: integer 3000000000 out of range"}},
		{"missing kind", "apiVersion: v1\nmetadata: {name: x}\n", []string{"kind: Required value"}},
		{"missing apiVersion", "kind: Pod\n", []string{"apiVersion: Required value"}},
		{"unknown kind", "apiVersion: v1\nkind: Service\n", []string{`kind: Unsupported value: "Service"`}},
		{"wrong group", "apiVersion: extensions/v1beta1\nkind: Deployment\n", []string{`apiVersion: Unsupported value: "extensions/v1beta1": Deployment is served as "apps/v1"`}},
		{"not a mapping", "- a\n- b\n", []string{"a manifest must be a mapping"}},
		{"bad yaml", "apiVersion: v1\nkind: [\n", []string{"not valid YAML or JSON"}},
		{"bad timestamp", "apiVersion: v1\nkind: Pod\nmetadata: {creationTimestamp: yesterday}\n", []string{"in.yaml: document 1 (Pod):"}},
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
	if docs[0].Object.(*corev1.ConfigMap).GetData()["k"] != "v" {
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
				if !proto.Equal(back[0].Object, d.Object) {
					t.Errorf("%s round trip of %s changed it:\n%v\n%v", enc, name, d.Object, back[0].Object)
				}
				if strings.Contains(string(out), `"5"`) || strings.Contains(string(out), `'5'`) {
					t.Errorf("%s writes a 64-bit integer as a string:\n%s", enc, out)
				}
			}
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
			if !proto.Equal(back[0].Object, withTypeMeta(d.Object)) {
				t.Fatalf("round trip changed the object")
			}
		}
	})
}

func withTypeMeta(o kinds.Object) kinds.Object {
	o = proto.Clone(o).(kinds.Object)
	kinds.SetTypeMeta(o)
	return o
}

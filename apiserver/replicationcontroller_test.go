package apiserver_test

import (
	"strings"
	"testing"

	"google.golang.org/grpc/status"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/test/apicluster"
)

// TestRESTReplicationController: ReplicationControllers are served at core/v1's paths
// with Kubernetes' defaults (selector and labels from the template, one replica), its
// validation's words, the status and scale subresources (a map selector's Scale), and
// kubectl's table columns.
func TestRESTReplicationController(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	rc := newREST(t, c.Addr(0), true)

	core := decodeJSON[metav1.APIResourceList](t, rc.want(rc.do("GET", "/api/v1", "", "", nil), 200, "/api/v1").body)
	byName := map[string]metav1.APIResource{}
	for _, r := range core.APIResources {
		byName[r.Name] = r
	}
	if r := byName["replicationcontrollers"]; r.Kind != "ReplicationController" || !r.Namespaced || strings.Join(r.ShortNames, ",") != "rc" ||
		strings.Join(r.Categories, ",") != "all" {
		t.Errorf("replicationcontrollers = %+v", r)
	}
	if r := byName["replicationcontrollers/scale"]; r.Group != "autoscaling" || r.Kind != "Scale" {
		t.Errorf("replicationcontrollers/scale = %+v", r)
	}
	if _, ok := byName["replicationcontrollers/status"]; !ok {
		t.Error("no replicationcontrollers/status")
	}

	base := "/api/v1/namespaces/default/replicationcontrollers"
	lbl := map[string]string{"name": "web"}
	tmpl := &corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbl},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx:1.25"}}}}
	obj := &corev1.ReplicationController{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ReplicationController"},
		ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: corev1.ReplicationControllerSpec{Template: tmpl}}
	out := decodeJSON[corev1.ReplicationController](t, rc.want(rc.do("POST", base, "application/json", "", obj), 201, "create").body)
	if out.Spec.Selector["name"] != "web" || len(out.Spec.Selector) != 1 || out.Labels["name"] != "web" || out.Spec.Replicas == nil ||
		*out.Spec.Replicas != 1 || out.Generation != 1 || out.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		t.Errorf("defaults: selector %v labels %v replicas %v generation %d", out.Spec.Selector, out.Labels, out.Spec.Replicas, out.Generation)
	}

	for _, tc := range []struct {
		name string
		spec corev1.ReplicationControllerSpec
		want string
	}{
		{"no template", corev1.ReplicationControllerSpec{Selector: lbl}, "spec.template: Required value"},
		{"selector not matching", corev1.ReplicationControllerSpec{Selector: map[string]string{"name": "other"}, Template: tmpl},
			"spec.template.metadata.labels: Invalid value: {\"name\":\"web\"}: `selector` does not match template `labels`"},
		{"no selector, no labels", corev1.ReplicationControllerSpec{Template: &corev1.PodTemplateSpec{Spec: tmpl.Spec}}, "spec.selector: Required value"},
		{"deadline", corev1.ReplicationControllerSpec{Template: func() *corev1.PodTemplateSpec {
			t := tmpl.DeepCopy()
			t.Spec.ActiveDeadlineSeconds = new(int64(30))
			return t
		}()}, "spec.template.spec.activeDeadlineSeconds: Invalid value: 30: activeDeadlineSeconds in ReplicationController is not Supported"},
		{"negative replicas", corev1.ReplicationControllerSpec{Replicas: new(int32(-1)), Template: tmpl},
			"spec.replicas: Invalid value: -1: must be greater than or equal to 0"},
	} {
		bad := obj.DeepCopy()
		bad.Name, bad.Spec = "bad", tc.spec
		st := rc.want(rc.do("POST", base, "application/json", "", bad), 422, tc.name).status()
		if !strings.Contains(st.Message, tc.want) {
			t.Errorf("%s: %q, want it to say %q", tc.name, st.Message, tc.want)
		}
	}

	// The scale subresource, patched as the conformance test does (strategic merge).
	scale := decodeJSON[autoscalingv1.Scale](t, rc.want(rc.do("GET", base+"/web/scale", "", "", nil), 200, "get scale").body)
	if scale.Kind != "Scale" || scale.Spec.Replicas != 1 || scale.Status.Selector != "name=web" {
		t.Errorf("scale = %+v", scale)
	}
	rc.want(rc.do("PATCH", base+"/web/scale", "application/strategic-merge-patch+json", "", `{"spec":{"replicas":2}}`), 200, "patch scale")
	scale.Spec.Replicas, scale.ResourceVersion = 3, ""
	rc.want(rc.do("PUT", base+"/web/scale", "application/json", "", scale), 200, "put scale")
	out = decodeJSON[corev1.ReplicationController](t, rc.want(rc.do("GET", base+"/web", "", "", nil), 200, "get").body)
	if *out.Spec.Replicas != 3 {
		t.Errorf("after scale: replicas %d", *out.Spec.Replicas)
	}

	// Status: written alone, checked as Kubernetes checks it.
	rc.want(rc.do("PATCH", base+"/web/status", "application/merge-patch+json", "", `{"status":{"replicas":2,"readyReplicas":2}}`), 200, "status patch")
	st := rc.want(rc.do("PATCH", base+"/web/status", "application/merge-patch+json", "", `{"status":{"replicas":1,"readyReplicas":2}}`), 422, "bad status").status()
	if !strings.Contains(st.Message, "status.readyReplicas: Invalid value: 2: cannot be greater than status.replicas") {
		t.Errorf("bad status: %q", st.Message)
	}

	// Kubernetes' field selector of ReplicationControllers.
	l := decodeJSON[corev1.ReplicationControllerList](t, rc.want(rc.do("GET", base+"?fieldSelector=status.replicas%3D2", "", "", nil), 200, "by status.replicas").body)
	none := decodeJSON[corev1.ReplicationControllerList](t, rc.want(rc.do("GET", base+"?fieldSelector=status.replicas%3D3", "", "", nil), 200, "by status.replicas").body)
	if len(l.Items) != 1 || len(none.Items) != 0 {
		t.Errorf("status.replicas=2: %d items, =3: %d items", len(l.Items), len(none.Items))
	}

	tableAccept := "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
	tbl := decodeJSON[metav1.Table](t, rc.want(rc.do("GET", base, "", tableAccept, nil), 200, "table").body)
	var cols []string
	for _, cd := range tbl.ColumnDefinitions {
		cols = append(cols, cd.Name)
	}
	if strings.Join(cols, ",") != "Name,Desired,Current,Ready,Age,Containers,Images,Selector" || len(tbl.Rows) != 1 ||
		tbl.Rows[0].Cells[0] != "web" || tbl.Rows[0].Cells[1] != 3.0 || tbl.Rows[0].Cells[2] != 2.0 || tbl.Rows[0].Cells[7] != "name=web" {
		t.Errorf("table = %+v", tbl)
	}
}

// TestQuotaCountsReplicationControllers: a quota's replicationcontrollers (Kubernetes'
// name without count/) counts them, refusing one past its hard limit.
func TestQuotaCountsReplicationControllers(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cs := client.NewClientset(conn)
	ctx := testCtx(t)
	syncQuota(t, ctx, cs, "default", "q", resources("replicationcontrollers", "1"), resources("replicationcontrollers", "0"))
	lbl := map[string]string{"name": "a"}
	rc := &corev1.ReplicationController{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "default"},
		Spec: corev1.ReplicationControllerSpec{Selector: lbl, Template: &corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbl},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}}}
	if _, err := cs.ReplicationControllers.Create(ctx, rc); err != nil {
		t.Fatal(err)
	}
	q, err := cs.ResourceQuotas.Get(ctx, "default", "q")
	if err != nil {
		t.Fatal(err)
	}
	if want := resources("replicationcontrollers", "1"); !equality.Semantic.DeepEqual(q.Status.Used, want) {
		t.Errorf("used = %v, want %v", q.Status.Used, want)
	}
	rc.Name = "b"
	_, err = cs.ReplicationControllers.Create(ctx, rc)
	if want := `replicationcontrollers "b" is forbidden: exceeded quota: q, requested: replicationcontrollers=1, used: replicationcontrollers=1, limited: replicationcontrollers=1`; !client.IsForbidden(err) || status.Convert(err).Message() != want {
		t.Fatalf("a second ReplicationController: got %v, want %q", err, want)
	}
}

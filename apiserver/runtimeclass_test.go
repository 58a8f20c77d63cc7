package apiserver_test

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	nodev1 "k8s.io/api/node/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/apiserver"
	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/test/apicluster"
)

// TestRuntimeClassAdmission: a pod's RuntimeClass must exist; its overhead becomes the
// pod's, its node selector and tolerations are merged into the pod's, as Kubernetes'
// RuntimeClass admission does.
func TestRuntimeClassAdmission(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cs := client.NewClientset(conn)
	ctx := testCtx(t)
	overhead := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("120Mi")}
	for _, rc := range []*nodev1.RuntimeClass{
		{ObjectMeta: metav1.ObjectMeta{Name: "plain"}, Handler: "runc"},
		{ObjectMeta: metav1.ObjectMeta{Name: "kata"}, Handler: "kata", Overhead: &nodev1.Overhead{PodFixed: overhead},
			Scheduling: &nodev1.Scheduling{NodeSelector: map[string]string{"sandbox": "kata"},
				Tolerations: []corev1.Toleration{{Key: "sandbox", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}}},
	} {
		if _, err := cs.RuntimeClasses.Create(ctx, rc); err != nil {
			t.Fatal(err)
		}
	}
	pod := func(name string, class *string, edit func(*corev1.Pod)) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PodSpec{RuntimeClassName: class,
			Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
		if edit != nil {
			edit(p)
		}
		return p
	}

	_, err = cs.Pods.Create(ctx, pod("missing", new("nonexistent"), nil))
	if !client.IsForbidden(err) || !strings.Contains(err.Error(), `pod rejected: RuntimeClass "nonexistent" not found`) {
		t.Errorf("a missing class: %v, want Forbidden: pod rejected: RuntimeClass \"nonexistent\" not found", err)
	}
	if out, err := cs.Pods.Create(ctx, pod("plain", new("plain"), nil)); err != nil || out.Spec.Overhead != nil || out.Spec.NodeSelector != nil {
		t.Errorf("a class without overhead: %v, overhead %v, nodeSelector %v", err, out.Spec.Overhead, out.Spec.NodeSelector)
	}
	out, err := cs.Pods.Create(ctx, pod("kata", new("kata"), func(p *corev1.Pod) {
		p.Spec.NodeSelector = map[string]string{"disk": "ssd"}
		p.Spec.Tolerations = []corev1.Toleration{{Key: "sandbox", Operator: corev1.TolerationOpEqual, Value: "kata", Effect: corev1.TaintEffectNoSchedule},
			{Key: "other", Operator: corev1.TolerationOpExists}}
	}))
	if err != nil {
		t.Fatal(err)
	}
	if !equality.Semantic.DeepEqual(out.Spec.Overhead, overhead) {
		t.Errorf("overhead %v, want the class's %v", out.Spec.Overhead, overhead)
	}
	if want := map[string]string{"disk": "ssd", "sandbox": "kata"}; !equality.Semantic.DeepEqual(out.Spec.NodeSelector, want) {
		t.Errorf("nodeSelector %v, want %v", out.Spec.NodeSelector, want)
	}
	// The pod's Equal toleration is covered by the class's Exists one and goes.
	want := []corev1.Toleration{{Key: "other", Operator: corev1.TolerationOpExists},
		{Key: "sandbox", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
	if !equality.Semantic.DeepEqual(out.Spec.Tolerations, want) {
		t.Errorf("tolerations %v, want %v", out.Spec.Tolerations, want)
	}

	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		want string
	}{
		{"overhead of its own", pod("own", new("kata"), func(p *corev1.Pod) {
			p.Spec.Overhead = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}
		}), "pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead"},
		{"overhead without a class", pod("classless", nil, func(p *corev1.Pod) { p.Spec.Overhead = overhead }),
			"pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead"},
		{"overhead the class has not", pod("noclassoverhead", new("plain"), func(p *corev1.Pod) { p.Spec.Overhead = overhead }),
			"pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead"},
		{"a conflicting node selector", pod("conflict", new("kata"), func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"sandbox": "gvisor"} }),
			"conflict: runtimeClass.scheduling.nodeSelector[sandbox] = kata; pod.spec.nodeSelector[sandbox] = gvisor"},
	} {
		if _, err := cs.Pods.Create(ctx, tc.pod); !client.IsForbidden(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want Forbidden: %s", tc.name, err, tc.want)
		}
	}
	// The class's overhead, given as it is, is accepted.
	if _, err := cs.Pods.Create(ctx, pod("same", new("kata"), func(p *corev1.Pod) { p.Spec.Overhead = overhead.DeepCopy() })); err != nil {
		t.Errorf("the class's own overhead: %v", err)
	}
	// A class's handler is fixed.
	rc, err := cs.RuntimeClasses.Get(ctx, "", "plain")
	if err != nil {
		t.Fatal(err)
	}
	rc.Handler = "crun"
	if _, err := cs.RuntimeClasses.Update(ctx, rc); !client.IsInvalid(err) || !strings.Contains(err.Error(), "handler: Invalid value: \"crun\": field is immutable") {
		t.Errorf("changing the handler: %v", err)
	}
}

// TestIngressDefaultClass: an Ingress created without a class gets the IngressClass
// marked default (the newest of several); one naming a class, or the legacy annotation,
// keeps its own.
func TestIngressDefaultClass(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := testCtx(t)
	classes := client.For[*networkingv1.IngressClass](conn)
	ingresses := client.For[*networkingv1.Ingress](conn)
	ingress := func(name string, class *string, annotations map[string]string) *networkingv1.Ingress {
		return &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations}, Spec: networkingv1.IngressSpec{
			IngressClassName: class,
			DefaultBackend:   &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}}}}
	}
	out, err := ingresses.Create(ctx, ingress("before", nil, nil))
	if err != nil || out.Spec.IngressClassName != nil {
		t.Fatalf("without a default class: %v, class %v", err, out.Spec.IngressClassName)
	}
	isDefault := map[string]string{apiserver.IsDefaultIngressClassAnnotation: "true"}
	for _, ic := range []*networkingv1.IngressClass{
		{ObjectMeta: metav1.ObjectMeta{Name: "other"}, Spec: networkingv1.IngressClassSpec{Controller: "example.com/other"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "nginx", Annotations: isDefault}, Spec: networkingv1.IngressClassSpec{Controller: "k8s.io/ingress-nginx"}},
	} {
		if _, err := classes.Create(ctx, ic); err != nil {
			t.Fatal(err)
		}
	}
	if out, err = ingresses.Create(ctx, ingress("after", nil, nil)); err != nil || out.Spec.IngressClassName == nil || *out.Spec.IngressClassName != "nginx" {
		t.Errorf("with a default class: %v, class %v, want nginx", err, out.Spec.IngressClassName)
	}
	if out, err = ingresses.Create(ctx, ingress("own", new("other"), nil)); err != nil || *out.Spec.IngressClassName != "other" {
		t.Errorf("a class of its own: %v, class %v", err, out.Spec.IngressClassName)
	}
	legacy := map[string]string{"kubernetes.io/ingress.class": "other"}
	if out, err = ingresses.Create(ctx, ingress("legacy", nil, legacy)); err != nil || out.Spec.IngressClassName != nil {
		t.Errorf("the legacy annotation: %v, class %v, want none", err, out.Spec.IngressClassName)
	}
	if _, err = ingresses.Create(ctx, ingress("mismatch", new("nginx"), legacy)); !client.IsInvalid(err) ||
		!strings.Contains(err.Error(), "annotations.kubernetes.io/ingress.class: Invalid value: \"other\": must match `ingressClassName` when both are specified") {
		t.Errorf("annotation and class differing: %v", err)
	}
	// A status write keeps the spec; a spec write bumps the generation.
	out, err = ingresses.Get(ctx, "default", "after")
	if err != nil {
		t.Fatal(err)
	}
	out.Status.LoadBalancer.Ingress = []networkingv1.IngressLoadBalancerIngress{{IP: "10.0.0.9"}}
	if out, err = ingresses.UpdateStatus(ctx, out); err != nil || out.Generation != 1 || len(out.Status.LoadBalancer.Ingress) != 1 {
		t.Fatalf("status: %v, generation %d, status %v", err, out.Generation, out.Status)
	}
	out.Spec.DefaultBackend.Service.Port.Number = 8080
	out.Status = networkingv1.IngressStatus{}
	if out, err = ingresses.Update(ctx, out); err != nil || out.Generation != 2 || len(out.Status.LoadBalancer.Ingress) != 1 {
		t.Errorf("spec update: %v, generation %d, status %v (kept)", err, out.Generation, out.Status)
	}
}

// TestPodTemplateREST: core/v1 PodTemplates over the REST API, as Kubernetes'
// conformance tests use them: create, get, patch, replace, list by label, the Table
// kubectl prints, delete a collection.
func TestPodTemplateREST(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	rc := newREST(t, c.Addr(0), true)
	const base = "/api/v1/namespaces/default/podtemplates"
	template := func(name string) *corev1.PodTemplate {
		pt := &corev1.PodTemplate{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"podtemplate-static": "true"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "nginx", Image: "nginx:1.27"}}}}}
		kinds.SetTypeMeta(pt)
		return pt
	}
	for _, name := range []string{"one", "two", "three"} {
		rc.want(rc.do("POST", base, "application/json", "", template(name)), 201, "create "+name)
	}
	got := decodeJSON[corev1.PodTemplate](t, rc.want(rc.do("GET", base+"/one", "", "", nil), 200, "get").body)
	if got.Template.Spec.RestartPolicy != corev1.RestartPolicyAlways || got.Generation != 1 || got.Kind != "PodTemplate" {
		t.Errorf("stored template: restartPolicy %q, generation %d, kind %q", got.Template.Spec.RestartPolicy, got.Generation, got.Kind)
	}
	// A template's restart policy is any (a controller narrows it, not the template).
	never := template("never")
	never.Template.Spec.RestartPolicy = corev1.RestartPolicyNever
	rc.want(rc.do("POST", base, "application/json", "", never), 201, "create with restartPolicy Never")

	patched := decodeJSON[corev1.PodTemplate](t, rc.want(rc.do("PATCH", base+"/one", "application/merge-patch+json", "",
		`{"metadata":{"labels":{"podtemplate":"patched"}}}`), 200, "patch").body)
	if patched.Labels["podtemplate"] != "patched" || patched.Generation != 1 {
		t.Errorf("patched labels %v, generation %d", patched.Labels, patched.Generation)
	}
	patched.Template.Spec.TerminationGracePeriodSeconds = new(int64(5))
	replaced := decodeJSON[corev1.PodTemplate](t, rc.want(rc.do("PUT", base+"/one", "application/json", "", patched), 200, "replace").body)
	if *replaced.Template.Spec.TerminationGracePeriodSeconds != 5 || replaced.Generation != 2 {
		t.Errorf("replaced: grace %d, generation %d", *replaced.Template.Spec.TerminationGracePeriodSeconds, replaced.Generation)
	}
	bad := template("bad")
	bad.Template.Spec.Containers[0].Image = ""
	if st := rc.want(rc.do("POST", base, "application/json", "", bad), 422, "invalid").status(); !strings.Contains(st.Message,
		`PodTemplate "bad" is invalid: template.spec.containers[0].image: Required value`) {
		t.Errorf("invalid template: %s", st.Message)
	}

	table := decodeJSON[metav1.Table](t, rc.want(rc.do("GET", base+"?labelSelector=podtemplate-static%3Dtrue", "",
		"application/json;as=Table;g=meta.k8s.io;v=v1", nil), 200, "table").body)
	var cols []string
	for _, c := range table.ColumnDefinitions {
		cols = append(cols, c.Name)
	}
	if strings.Join(cols, ",") != "Name,Containers,Images,Pod Labels" || len(table.Rows) != 4 {
		t.Fatalf("table columns %v, %d rows", cols, len(table.Rows))
	}
	if cells := table.Rows[0].Cells; cells[0] != "never" || cells[1] != "nginx" || cells[2] != "nginx:1.27" || cells[3] != "app=never" {
		t.Errorf("first row %v", cells)
	}

	rc.want(rc.do("DELETE", base+"?labelSelector=podtemplate-static%3Dtrue", "", "", nil), 200, "delete collection")
	left := decodeJSON[corev1.PodTemplateList](t, rc.want(rc.do("GET", base, "", "", nil), 200, "list").body)
	if len(left.Items) != 0 {
		t.Errorf("%d templates left after deleting the collection", len(left.Items))
	}
}

package apiserver_test

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/test/apicluster"
)

// TestPriorityAdmission: the API server makes the two built-in classes; a pod's class
// gives it its priority and preemption policy, the global default's when it names none
// (0 without one); an unknown class, a priority or policy of the pod's own that differs,
// a second default, a built-in class's deletion are refused in Kubernetes' words.
func TestPriorityAdmission(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cs := client.NewClientset(conn)
	classes := client.For[*schedulingv1.PriorityClass](conn)
	ctx := testCtx(t)

	for name, value := range map[string]int32{"system-cluster-critical": 2000000000, "system-node-critical": 2000001000} {
		pc, err := classes.Get(ctx, "", name)
		if err != nil || pc.Value != value || pc.PreemptionPolicy == nil || *pc.PreemptionPolicy != corev1.PreemptLowerPriority {
			t.Fatalf("built-in class %s: %v, %+v", name, err, pc)
		}
	}
	pod := func(name, class string, edit func(*corev1.Pod)) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PodSpec{PriorityClassName: class,
			Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
		if edit != nil {
			edit(p)
		}
		return p
	}
	priorityOf := func(name, class string, edit func(*corev1.Pod)) (int32, corev1.PreemptionPolicy, string) {
		t.Helper()
		out, err := cs.Pods.Create(ctx, pod(name, class, edit))
		if err != nil {
			t.Fatalf("create pod %s: %v", name, err)
		}
		if out.Spec.Priority == nil {
			t.Fatalf("pod %s: no priority", name)
		}
		var policy corev1.PreemptionPolicy
		if out.Spec.PreemptionPolicy != nil {
			policy = *out.Spec.PreemptionPolicy
		}
		return *out.Spec.Priority, policy, out.Spec.PriorityClassName
	}

	if p, policy, class := priorityOf("none", "", nil); p != 0 || policy != "" || class != "" {
		t.Errorf("no class and no default: priority %d, policy %q, class %q; want 0, none", p, policy, class)
	}
	if p, policy, _ := priorityOf("critical", "system-cluster-critical", nil); p != 2000000000 || policy != corev1.PreemptLowerPriority {
		t.Errorf("system-cluster-critical: priority %d, policy %q", p, policy)
	}
	if _, err := classes.Create(ctx, &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "polite"}, Value: 500,
		PreemptionPolicy: new(corev1.PreemptNever)}); err != nil {
		t.Fatal(err)
	}
	if p, policy, _ := priorityOf("polite", "polite", nil); p != 500 || policy != corev1.PreemptNever {
		t.Errorf("polite: priority %d, policy %q", p, policy)
	}
	if p, _, _ := priorityOf("own-priority", "polite", func(p *corev1.Pod) { p.Spec.Priority = new(int32(500)) }); p != 500 {
		t.Errorf("a pod's own matching priority: %d", p)
	}

	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		want string
	}{
		{"unknown class", pod("unknown", "nonexistent", nil), `pods "unknown" is forbidden: no PriorityClass with name nonexistent was found`},
		{"own priority", pod("mine", "polite", func(p *corev1.Pod) { p.Spec.Priority = new(int32(7)) }),
			"the integer value of priority (7) must not be provided in pod spec; priority admission controller computed 500 from the given PriorityClass name"},
		{"own policy", pod("mine", "polite", func(p *corev1.Pod) { p.Spec.PreemptionPolicy = new(corev1.PreemptLowerPriority) }),
			"the string value of PreemptionPolicy (PreemptLowerPriority) must not be provided in pod spec; priority admission controller computed Never from the given PriorityClass name"},
	} {
		if _, err := cs.Pods.Create(ctx, tc.pod); !client.IsForbidden(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want Forbidden: %s", tc.name, err, tc.want)
		}
	}

	// The global default: pods naming no class get it; there is one.
	if _, err := classes.Create(ctx, &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "standard"}, Value: 100, GlobalDefault: true}); err != nil {
		t.Fatal(err)
	}
	if p, policy, class := priorityOf("defaulted", "", nil); p != 100 || policy != corev1.PreemptLowerPriority || class != "standard" {
		t.Errorf("the default class: priority %d, policy %q, class %q", p, policy, class)
	}
	_, err = classes.Create(ctx, &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "another"}, Value: 1, GlobalDefault: true})
	if want := "PriorityClass standard is already marked as default. Only one default can exist"; !client.IsForbidden(err) || !strings.Contains(err.Error(), want) {
		t.Errorf("a second default: %v, want Forbidden: %s", err, want)
	}
	polite, err := classes.Get(ctx, "", "polite")
	if err != nil {
		t.Fatal(err)
	}
	polite.GlobalDefault = true
	if _, err := classes.Update(ctx, polite); !client.IsForbidden(err) {
		t.Errorf("making a second class the default: %v, want Forbidden", err)
	}

	// An update of a pod that leaves its priority out keeps it.
	cur, err := cs.Pods.Get(ctx, "default", "polite")
	if err != nil {
		t.Fatal(err)
	}
	cur.Spec.Priority, cur.Spec.PreemptionPolicy = nil, nil
	cur.Labels = map[string]string{"updated": "yes"}
	if out, err := cs.Pods.Update(ctx, cur); err != nil || out.Spec.Priority == nil || *out.Spec.Priority != 500 {
		t.Errorf("update without the priority: %v, %+v", err, out)
	}

	_, err = classes.Delete(ctx, "", "system-node-critical", client.DeleteOptions{})
	if want := "this is a system priority class and cannot be deleted"; !client.IsForbidden(err) || !strings.Contains(err.Error(), want) {
		t.Errorf("deleting a built-in class: %v, want Forbidden: %s", err, want)
	}
}

// TestPriorityClassREST: PriorityClass over Kubernetes' REST API: discovery's short
// name, create, the Table's columns, the immutable value, delete.
func TestPriorityClassREST(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	rc := newREST(t, c.Addr(0), true)
	const base = "/apis/scheduling.k8s.io/v1/priorityclasses"
	disc := decodeJSON[metav1.APIResourceList](t, rc.want(rc.do("GET", "/apis/scheduling.k8s.io/v1", "", "", nil), 200, "discovery").body)
	found := false
	for _, r := range disc.APIResources {
		if r.Name == "priorityclasses" && !r.Namespaced && len(r.ShortNames) == 1 && r.ShortNames[0] == "pc" {
			found = true
		}
	}
	if !found {
		t.Errorf("discovery of scheduling.k8s.io/v1: %+v", disc.APIResources)
	}
	high := &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "high"}, Value: 1000, Description: "for the important"}
	kinds.SetTypeMeta(high)
	got := decodeJSON[schedulingv1.PriorityClass](t, rc.want(rc.do("POST", base, "application/json", "", high), 201, "create").body)
	if got.PreemptionPolicy == nil || *got.PreemptionPolicy != corev1.PreemptLowerPriority || got.Kind != "PriorityClass" {
		t.Errorf("created: %+v", got)
	}
	huge := &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "huge"}, Value: 1000000001}
	kinds.SetTypeMeta(huge)
	if st := rc.want(rc.do("POST", base, "application/json", "", huge), 422, "too high").status(); !strings.Contains(st.Message,
		`PriorityClass.scheduling.k8s.io "huge" is invalid: value: Forbidden: maximum allowed value of a user defined priority is 1000000000`) {
		t.Errorf("a class above a billion: %s", st.Message)
	}
	if st := rc.want(rc.do("PATCH", base+"/high", "application/merge-patch+json", "", `{"value":2000}`), 422, "value patched").status(); !strings.Contains(st.Message,
		"value: Forbidden: may not be changed in an update.") {
		t.Errorf("value patched: %s", st.Message)
	}
	table := decodeJSON[metav1.Table](t, rc.want(rc.do("GET", base, "", "application/json;as=Table;g=meta.k8s.io;v=v1", nil), 200, "table").body)
	var cols []string
	for _, c := range table.ColumnDefinitions {
		cols = append(cols, c.Name)
	}
	if strings.Join(cols, ",") != "Name,Value,Global-Default,Age,PreemptionPolicy" || len(table.Rows) != 3 {
		t.Fatalf("table columns %v, %d rows", cols, len(table.Rows))
	}
	if cells := table.Rows[0].Cells; cells[0] != "high" || cells[1] != float64(1000) || cells[2] != "false" || cells[4] != "PreemptLowerPriority" {
		t.Errorf("first row %v", cells)
	}
	rc.want(rc.do("DELETE", base+"/high", "", "", nil), 200, "delete")
	rc.want(rc.do("DELETE", base+"/system-cluster-critical", "", "", nil), 403, "delete a built-in class")
}

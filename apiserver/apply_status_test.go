package apiserver_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

// statusOwners are managers' entries as "operation subresource fields", by manager.
func statusOwners(entries []metav1.ManagedFieldsEntry) map[string]string {
	out := map[string]string{}
	for _, e := range entries {
		out[e.Manager] = fmt.Sprintf("%s %q %s", e.Operation, e.Subresource, e.FieldsV1.Raw)
	}
	return out
}

// TestRESTServerSideApplyStatus: an apply to the status subresource (kubectl apply
// --server-side --subresource=status, client-go's ApplyStatus) of a built-in kind and of
// a custom resource merges into the status alone, the spec it carries ignored and owned
// by no one; its manager's entry says subresource status; another manager's apply of the
// same status field is refused with 409 naming it until forced; an object that does not
// exist is not created.
func TestRESTServerSideApplyStatus(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	rc := newREST(t, c.Addr(0), true)
	const applyType = "application/apply-patch+yaml"

	dep := `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: %d
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx}]
`
	base := "/apis/apps/v1/namespaces/default/deployments/web"
	rc.want(rc.do("PATCH", base+"/status?fieldManager=ctrl-a", applyType, "", fmt.Sprintf(dep, 1)), 404, "a status apply to no deployment")
	rc.want(rc.do("PATCH", base+"?fieldManager=kubectl", applyType, "", fmt.Sprintf(dep, 1)), 201, "apply a deployment")
	// The status applied with a spec of 5 replicas, kubectl's 1: the spec is ignored, no
	// conflict with kubectl's, and its generation stays.
	status := func(cond string) string {
		return fmt.Sprintf(dep, 5) + "status:\n  observedGeneration: 1\n  conditions:\n  - {type: Available, status: %q, reason: " + cond + "}\n"
	}
	d := decodeJSON[appsv1.Deployment](t, rc.want(rc.do("PATCH", base+"/status?fieldManager=ctrl-a", applyType, "",
		fmt.Sprintf(status("MinimumReplicasAvailable"), "True")), 200, "ctrl-a applies the status").body)
	owners := statusOwners(d.ManagedFields)
	if *d.Spec.Replicas != 1 || d.Generation != 1 || d.Status.ObservedGeneration != 1 || len(d.Status.Conditions) != 1 ||
		d.Status.Conditions[0].Status != "True" || d.Status.Conditions[0].Reason != "MinimumReplicasAvailable" {
		t.Fatalf("after ctrl-a's status apply: replicas %d generation %d status %+v", *d.Spec.Replicas, d.Generation, d.Status)
	}
	if a := owners["ctrl-a"]; !strings.HasPrefix(a, `Apply "status" `) || !strings.Contains(a, `"f:observedGeneration":{}`) ||
		!strings.Contains(a, `"k:{\"type\":\"Available\"}"`) || strings.Contains(a, "f:spec") {
		t.Fatalf("ctrl-a's entry: %s", a)
	}
	if k := owners["kubectl"]; !strings.HasPrefix(k, `Apply "" `) || !strings.Contains(k, `"f:replicas":{}`) || strings.Contains(k, "f:status") {
		t.Fatalf("kubectl's entry: %s", k)
	}
	// ctrl-b's apply of the condition's status conflicts with ctrl-a's; forced, it takes it.
	wantApplyConflict(t, rc.want(rc.do("PATCH", base+"/status?fieldManager=ctrl-b", applyType, "",
		fmt.Sprintf(status("MinimumReplicasAvailable"), "False")), 409, "ctrl-b's conflicting status apply").status(),
		`.status.conditions[type="Available"].status`, "ctrl-a")
	d = decodeJSON[appsv1.Deployment](t, rc.want(rc.do("PATCH", base+"/status?fieldManager=ctrl-b&force=true", applyType, "",
		fmt.Sprintf(status("MinimumReplicasAvailable"), "False")), 200, "ctrl-b forces").body)
	owners = statusOwners(d.ManagedFields)
	if d.Status.Conditions[0].Status != "False" || !strings.Contains(owners["ctrl-b"], `"f:status":{}`) ||
		strings.Contains(owners["ctrl-a"], `"f:status":{}`) {
		t.Fatalf("after ctrl-b's forced apply: %+v %v", d.Status, owners)
	}
	// The main resource's apply does not touch the status, nor conflict with it.
	d = decodeJSON[appsv1.Deployment](t, rc.want(rc.do("PATCH", base+"?fieldManager=kubectl", applyType, "", fmt.Sprintf(dep, 2)), 200, "kubectl re-applies").body)
	if *d.Spec.Replicas != 2 || len(d.Status.Conditions) != 1 || d.Status.Conditions[0].Status != "False" {
		t.Fatalf("after kubectl's second apply: replicas %d status %+v", *d.Spec.Replicas, d.Status)
	}
	// A dry run writes nothing.
	rc.want(rc.do("PATCH", base+"/status?fieldManager=ctrl-b&dryRun=All", applyType, "", fmt.Sprintf(status("MinimumReplicasAvailable"), "True")), 200, "a dry-run status apply")
	if d := decodeJSON[appsv1.Deployment](t, rc.want(rc.do("GET", base, "", "", nil), 200, "get").body); d.Status.Conditions[0].Status != "False" {
		t.Fatalf("a dry run wrote the status: %+v", d.Status)
	}

	// A custom resource with a status subresource.
	crds := "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
	rc.want(rc.do("POST", crds, "application/json", "", gadgetCRD), 201, "create CRD")
	gbase := "/apis/example.com/v1/namespaces/default/gadgets"
	waitfor.Condition(t, 30*time.Second, "gadgets served", func() (bool, string) {
		r := rc.do("GET", gbase, "", "", nil)
		return r.code == 200, string(r.body)
	})
	gadget := func(replicas int, status string) string {
		return fmt.Sprintf("apiVersion: example.com/v1\nkind: Gadget\nmetadata:\n  name: g\nspec:\n  replicas: %d\n%s", replicas, status)
	}
	rc.want(rc.do("PATCH", gbase+"/g?fieldManager=alice", applyType, "", gadget(2, "")), 201, "apply a gadget")
	g := decodeJSON[crontabObject](t, rc.want(rc.do("PATCH", gbase+"/g/status?fieldManager=ctrl-a", applyType, "",
		gadget(7, "status: {ready: true}\n")), 200, "ctrl-a applies the gadget's status").body)
	owners = statusOwners(g.Metadata.ManagedFields)
	if g.Spec["replicas"] != float64(2) || g.Status["ready"] != true || g.Metadata.Generation != 1 ||
		owners["ctrl-a"] != `Apply "status" {"f:status":{"f:ready":{}}}` {
		t.Fatalf("after ctrl-a's status apply: spec %v status %v generation %d %v", g.Spec, g.Status, g.Metadata.Generation, owners)
	}
	wantApplyConflict(t, rc.want(rc.do("PATCH", gbase+"/g/status?fieldManager=ctrl-b", applyType, "",
		gadget(2, "status: {ready: false}\n")), 409, "ctrl-b's conflicting status apply").status(), ".status.ready", "ctrl-a")
	g = decodeJSON[crontabObject](t, rc.want(rc.do("PATCH", gbase+"/g/status?fieldManager=ctrl-b&force=true", applyType, "",
		gadget(2, "status: {ready: false}\n")), 200, "ctrl-b forces").body)
	owners = statusOwners(g.Metadata.ManagedFields)
	if g.Status["ready"] != false || owners["ctrl-b"] != `Apply "status" {"f:status":{"f:ready":{}}}` {
		t.Fatalf("after ctrl-b's forced apply: %v %v", g.Status, owners)
	}
	if _, ok := owners["ctrl-a"]; ok {
		t.Errorf("ctrl-a, owning nothing, still listed: %v", owners)
	}
}

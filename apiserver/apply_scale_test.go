package apiserver_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

// scaleApply is an applied autoscaling/v1 Scale of replicas.
func scaleApply(name string, replicas int) string {
	return fmt.Sprintf("apiVersion: autoscaling/v1\nkind: Scale\nmetadata: {name: %s}\nspec: {replicas: %d}\n", name, replicas)
}

// TestRESTServerSideApplyScale: an apply to the scale subresource (kubectl apply
// --server-side --subresource=scale, client-go's ApplyScale) of each scalable kind sets
// the replicas, and its manager's entry is on the parent object, at the parent's field
// (spec.replicas, a custom resource's specReplicasPath), with subresource scale; the
// parent's manager that set the replicas loses them to a forced apply, and an unforced
// one conflicts, 409 naming the field; fieldManager is required; an object that does not
// exist is 404; a kubectl scale (an update of the Scale) is tracked as Kubernetes tracks
// it; a dry run writes nothing.
func TestRESTServerSideApplyScale(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	rc := newREST(t, c.Addr(0), true)
	const applyType = "application/apply-patch+yaml"

	for _, k := range []struct{ kind, path, manifest string }{
		{"Deployment", "/apis/apps/v1/namespaces/default/deployments/web", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n" +
			"spec:\n  replicas: 1\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers: [{name: web, image: nginx}]\n"},
		{"ReplicaSet", "/apis/apps/v1/namespaces/default/replicasets/web", "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: web}\n" +
			"spec:\n  replicas: 1\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers: [{name: web, image: nginx}]\n"},
		{"StatefulSet", "/apis/apps/v1/namespaces/default/statefulsets/web", "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: web}\n" +
			"spec:\n  replicas: 1\n  serviceName: web\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers: [{name: web, image: nginx}]\n"},
		{"ReplicationController", "/api/v1/namespaces/default/replicationcontrollers/web", "apiVersion: v1\nkind: ReplicationController\nmetadata: {name: web}\n" +
			"spec:\n  replicas: 1\n  selector: {app: web}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers: [{name: web, image: nginx}]\n"},
	} {
		{ // rc fails the test itself: no subtests
			scale := k.path + "/scale"
			rc.want(rc.do("PATCH", scale+"?fieldManager=hpa", applyType, "", scaleApply("web", 3)), 404, "a scale apply to nothing")
			rc.want(rc.do("PATCH", k.path+"?fieldManager=kubectl", applyType, "", k.manifest), 201, "apply the "+k.kind)
			rc.want(rc.do("PATCH", scale, applyType, "", scaleApply("web", 3)), 400, "a scale apply without fieldManager")
			rc.want(rc.do("PATCH", scale+"?fieldManager=hpa", applyType, "", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n"), 400, "a scale apply of another kind")
			// kubectl's apply set the replicas: hpa's apply of others conflicts, naming
			// the field as the Scale has it.
			wantApplyConflict(t, rc.want(rc.do("PATCH", scale+"?fieldManager=hpa", applyType, "", scaleApply("web", 3)), 409,
				"an unforced scale apply").status(), ".spec.replicas", "kubectl")
			s := decodeJSON[autoscalingv1.Scale](t, rc.want(rc.do("PATCH", scale+"?fieldManager=hpa&force=true&dryRun=All", applyType, "", scaleApply("web", 4)), 200, "a forced dry run").body)
			if s.Spec.Replicas != 4 {
				t.Fatalf("dry run's scale = %+v", s.Spec)
			}
			if got := objectOwners(t, rc, k.path); got["hpa"] != "" || !strings.Contains(got["kubectl"], `"f:replicas":{}`) {
				t.Fatalf("a dry run wrote the managed fields: %v", got)
			}
			s = decodeJSON[autoscalingv1.Scale](t, rc.want(rc.do("PATCH", scale+"?fieldManager=hpa&force=true", applyType, "", scaleApply("web", 3)), 200, "a forced scale apply").body)
			if s.Spec.Replicas != 3 || s.Kind != "Scale" || s.APIVersion != "autoscaling/v1" {
				t.Fatalf("scale = %+v", s)
			}
			got := objectOwners(t, rc, k.path)
			if got["hpa"] != `Apply "scale" {"f:spec":{"f:replicas":{}}}` || strings.Contains(got["kubectl"], `"f:replicas"`) ||
				!strings.Contains(got["kubectl"], `"f:template"`) {
				t.Fatalf("after hpa's forced apply: %v", got)
			}
			if r := objectReplicas(t, rc, k.path); r != 3 {
				t.Fatalf("%s's replicas = %d, want 3", k.kind, r)
			}
			// kubectl's apply of the parent without replicas now conflicts with hpa's.
			wantApplyConflict(t, rc.want(rc.do("PATCH", k.path+"?fieldManager=kubectl", applyType, "", strings.Replace(k.manifest, "replicas: 1", "replicas: 5", 1)), 409,
				"kubectl's apply of other replicas").status(), ".spec.replicas", "hpa")
			// kubectl scale: an update of the Scale, tracked with subresource scale.
			rc.want(rc.do("PATCH", scale+"?fieldManager=kubectl-scale", "application/merge-patch+json", "", `{"spec":{"replicas":2}}`), 200, "kubectl scale")
			got = objectOwners(t, rc, k.path)
			if got["kubectl-scale"] != `Update "scale" {"f:spec":{"f:replicas":{}}}` || got["hpa"] != "" {
				t.Fatalf("after an update of the scale: %v", got)
			}
			if r := objectReplicas(t, rc, k.path); r != 2 {
				t.Fatalf("%s's replicas = %d, want 2", k.kind, r)
			}
			// hpa applies again: it conflicts with the update's manager.
			wantApplyConflict(t, rc.want(rc.do("PATCH", scale+"?fieldManager=hpa", applyType, "", scaleApply("web", 3)), 409,
				"hpa's apply after the update").status(), ".spec.replicas", "kubectl-scale")
		}
	}

	// A custom resource's scale at its CRD's specReplicasPath.
	crds := "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
	rc.want(rc.do("POST", crds, "application/json", "", crontabCRD), 201, "create CRD")
	base := "/apis/stable.example.com/v1/namespaces/default/crontabs"
	waitfor.Condition(t, 30*time.Second, "crontabs served", func() (bool, string) {
		r := rc.do("GET", base, "", "", nil)
		return r.code == 200, string(r.body)
	})
	ct := "apiVersion: stable.example.com/v1\nkind: CronTab\nmetadata: {name: a}\nspec: {cronSpec: '* * * * */5', image: busybox, replicas: 2}\n"
	rc.want(rc.do("PATCH", base+"/a?fieldManager=alice", applyType, "", ct), 201, "apply a crontab")
	wantApplyConflict(t, rc.want(rc.do("PATCH", base+"/a/scale?fieldManager=hpa", applyType, "", scaleApply("a", 5)), 409,
		"an unforced scale apply of the crontab").status(), ".spec.replicas", "alice")
	rc.want(rc.do("PATCH", base+"/a/scale?fieldManager=hpa&force=true", applyType, "", scaleApply("a", 5)), 200, "a forced scale apply of the crontab")
	cr := decodeJSON[crontabObject](t, rc.want(rc.do("GET", base+"/a", "", "", nil), 200, "get the crontab").body)
	got := statusOwners(cr.Metadata.ManagedFields)
	if cr.Spec["replicas"] != float64(5) || got["hpa"] != `Apply "scale" {"f:spec":{"f:replicas":{}}}` || strings.Contains(got["alice"], "f:replicas") {
		t.Fatalf("the crontab after hpa's apply: spec %v, owners %v", cr.Spec, got)
	}
}

// objectOwners are the managers' entries of the object at path (statusOwners' form).
func objectOwners(t *testing.T, rc *restClient, path string) map[string]string {
	t.Helper()
	obj := decodeJSON[metav1.PartialObjectMetadata](t, rc.want(rc.do("GET", path, "", "", nil), 200, "get "+path).body)
	return statusOwners(obj.ManagedFields)
}

// objectReplicas is spec.replicas of the scalable object at path.
func objectReplicas(t *testing.T, rc *restClient, path string) int32 {
	t.Helper()
	body := rc.want(rc.do("GET", path, "", "", nil), 200, "get "+path).body
	switch {
	case strings.Contains(path, "/replicationcontrollers/"):
		return *decodeJSON[corev1.ReplicationController](t, body).Spec.Replicas
	default:
		return *decodeJSON[appsv1.Deployment](t, body).Spec.Replicas // the same field in the apps kinds
	}
}

package apiserver_test

import (
	"testing"

	"google.golang.org/grpc/codes"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
	"github.com/skiffhq/skiff/test/apicluster"
)

// TestDryRun: a dry-run create, update or delete is defaulted, validated and admitted as
// the real one, answers with what would be stored, and stores nothing.
func TestDryRun(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	rc, _ := dial(t, c.Addr(0))
	ctx := testCtx(t)
	list := func() int {
		l, err := rc.List(ctx, &apiv1.ListRequest{Kind: "pods"})
		if err != nil {
			t.Fatal(err)
		}
		return len(l.GetItems())
	}
	// rev is the stored pod web's resourceVersion: the cluster's own revision moves with
	// the API server's own writes (its records, the system namespaces) at any time.
	rev := func() string {
		got, err := rc.Get(ctx, &apiv1.GetRequest{Kind: "pods", Name: "web"})
		if err != nil {
			t.Fatal(err)
		}
		return unwrap[*corev1.Pod](t, got).ResourceVersion
	}

	// Create: defaults and server-owned fields filled, nothing stored.
	out, err := rc.Create(ctx, &apiv1.CreateRequest{Object: wrap(t, pod("dry")), DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	p := unwrap[*corev1.Pod](t, out)
	if p.UID == "" || p.CreationTimestamp.IsZero() || p.ResourceVersion != "" || p.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		t.Errorf("dry-run create answered %+v", p)
	}
	if n := list(); n != 0 {
		t.Fatalf("dry-run create stored a pod (%d)", n)
	}
	// Invalid objects are refused as the real create refuses them.
	bad := pod("bad")
	bad.Spec.Containers[0].Image = ""
	_, err = rc.Create(ctx, &apiv1.CreateRequest{Object: wrap(t, bad), DryRun: true})
	wantCode(t, "dry-run create of an invalid pod", err, codes.InvalidArgument)

	created, err := rc.Create(ctx, &apiv1.CreateRequest{Object: wrap(t, pod("web"))})
	if err != nil {
		t.Fatal(err)
	}
	_, err = rc.Create(ctx, &apiv1.CreateRequest{Object: wrap(t, pod("web")), DryRun: true})
	wantCode(t, "dry-run create of a taken name", err, codes.AlreadyExists)
	before := rev()

	// Update: the answer has the change and a new generation, the store has neither.
	p = unwrap[*corev1.Pod](t, created)
	p.Labels["tier"] = "front"
	out, err = rc.Update(ctx, &apiv1.UpdateRequest{Object: wrap(t, p), DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if up := unwrap[*corev1.Pod](t, out); up.Labels["tier"] != "front" || up.ResourceVersion != p.ResourceVersion {
		t.Errorf("dry-run update answered labels %v resourceVersion %s", up.Labels, up.ResourceVersion)
	}
	got, err := rc.Get(ctx, &apiv1.GetRequest{Kind: "pods", Name: "web"})
	if err != nil {
		t.Fatal(err)
	}
	if g := unwrap[*corev1.Pod](t, got); g.Labels["tier"] != "" || rev() != before {
		t.Errorf("dry-run update stored: labels %v", g.Labels)
	}
	p.Spec.Containers[0].Image = ""
	_, err = rc.Update(ctx, &apiv1.UpdateRequest{Object: wrap(t, p), DryRun: true})
	wantCode(t, "dry-run update to an invalid pod", err, codes.InvalidArgument)

	// Delete: the answer is the object, still there afterwards.
	out, err = rc.Delete(ctx, &apiv1.DeleteRequest{Kind: "pods", Name: "web", DryRun: true})
	if err != nil || unwrap[*corev1.Pod](t, out).Name != "web" {
		t.Fatalf("dry-run delete: %v", err)
	}
	if n := list(); n != 1 || rev() != before {
		t.Fatalf("dry-run delete deleted (%d pods)", n)
	}
	_, err = rc.Delete(ctx, &apiv1.DeleteRequest{Kind: "pods", Name: "nope", DryRun: true})
	wantCode(t, "dry-run delete of a missing pod", err, codes.NotFound)

	// A deployment's dry-run create records no Stored event.
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "d"}, Spec: appsv1.DeploymentSpec{
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}}}
	if _, err := rc.Create(ctx, &apiv1.CreateRequest{Object: wrap(t, d), DryRun: true}); err != nil {
		t.Fatal(err)
	}
	evs, err := rc.List(ctx, &apiv1.ListRequest{Kind: "events"})
	if err != nil || len(evs.GetItems()) != 0 {
		t.Fatalf("dry-run create recorded %d events (%v)", len(evs.GetItems()), err)
	}
}

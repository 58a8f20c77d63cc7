package disruption

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/client/record"
	"github.com/skiffhq/skiff/controllers/deployment"
	"github.com/skiffhq/skiff/controllers/internal/fakekubelet"
	"github.com/skiffhq/skiff/controllers/replicaset"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

var now = time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)

// testPod is a pod of controller rs (none when ""), ready or not.
func testPod(name, rs string, ready bool) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"app": "web"}}}
	if rs != "" {
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs, UID: types.UID("uid-" + rs), Controller: ptr.To(true)}}
	}
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	p.Status = corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}}
	return p
}

func deleting(p *corev1.Pod) *corev1.Pod {
	p.DeletionTimestamp = ptr.To(metav1.NewTime(now))
	return p
}

func budget(min, maxUnavail *intstr.IntOrString, disrupted map[string]metav1.Time) *policyv1.PodDisruptionBudget {
	return &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", Generation: 3},
		Spec:   policyv1.PodDisruptionBudgetSpec{MinAvailable: min, MaxUnavailable: maxUnavail, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
		Status: policyv1.PodDisruptionBudgetStatus{DisruptedPods: disrupted}}
}

// scales: ReplicaSets a and b belong to Deployment web (4 replicas); c stands alone (2).
func scales(_ string, ref *metav1.OwnerReference) (types.UID, int32, bool) {
	switch ref.Name {
	case "a", "b":
		return "uid-web", 4, true
	case "c":
		return "uid-c", 2, true
	}
	return "", 0, false
}

func TestStatus(t *testing.T) {
	count, pct := func(n int32) *intstr.IntOrString { return ptr.To(intstr.FromInt32(n)) }, func(s string) *intstr.IntOrString { return ptr.To(intstr.FromString(s)) }
	recent, old := metav1.NewTime(now.Add(-time.Minute)), metav1.NewTime(now.Add(-3*time.Minute))
	for _, tc := range []struct {
		name      string
		pdb       *policyv1.PodDisruptionBudget
		pods      []*corev1.Pod
		want      policyv1.PodDisruptionBudgetStatus
		recheck   time.Time
		unmanaged []string
		err       string
	}{
		{name: "minAvailable count", pdb: budget(count(2), nil, nil),
			pods: []*corev1.Pod{testPod("p1", "a", true), testPod("p2", "a", true), testPod("p3", "a", true)},
			want: policyv1.PodDisruptionBudgetStatus{ExpectedPods: 3, DesiredHealthy: 2, CurrentHealthy: 3, DisruptionsAllowed: 1}},
		{name: "unready and deleting pods are not healthy", pdb: budget(count(2), nil, nil),
			pods: []*corev1.Pod{testPod("p1", "a", true), testPod("p2", "a", false), deleting(testPod("p3", "a", true))},
			want: policyv1.PodDisruptionBudgetStatus{ExpectedPods: 3, DesiredHealthy: 2, CurrentHealthy: 1}},
		{name: "evicted pods stay out until seen going, or for the deletion timeout",
			pdb:  budget(count(1), nil, map[string]metav1.Time{"p1": recent, "p2": old, "p3": recent, "gone": recent}),
			pods: []*corev1.Pod{testPod("p1", "a", true), testPod("p2", "a", true), deleting(testPod("p3", "a", true)), testPod("p4", "a", true)},
			want: policyv1.PodDisruptionBudgetStatus{ExpectedPods: 4, DesiredHealthy: 1, CurrentHealthy: 2, DisruptionsAllowed: 1,
				DisruptedPods: map[string]metav1.Time{"p1": recent}},
			recheck: recent.Add(2 * time.Minute)},
		{name: "maxUnavailable percent of the Deployment's scale", pdb: budget(nil, pct("50%"), nil),
			pods: []*corev1.Pod{testPod("p1", "a", true), testPod("p2", "b", true), testPod("p3", "b", true)},
			want: policyv1.PodDisruptionBudgetStatus{ExpectedPods: 4, DesiredHealthy: 2, CurrentHealthy: 3, DisruptionsAllowed: 1}},
		{name: "minAvailable percent rounds up, over two controllers", pdb: budget(pct("50%"), nil, nil),
			pods: []*corev1.Pod{testPod("p1", "a", true), testPod("p2", "c", true), testPod("p3", "c", true)},
			want: policyv1.PodDisruptionBudgetStatus{ExpectedPods: 6, DesiredHealthy: 3, CurrentHealthy: 3}},
		{name: "unmanaged pods count as healthy, expected by no one", pdb: budget(nil, count(1), nil),
			pods:      []*corev1.Pod{testPod("p1", "c", true), testPod("bare", "", true)},
			want:      policyv1.PodDisruptionBudgetStatus{ExpectedPods: 2, DesiredHealthy: 1, CurrentHealthy: 2, DisruptionsAllowed: 1},
			unmanaged: []string{"bare"}},
		{name: "a controller of unknown scale", pdb: budget(pct("50%"), nil, nil),
			pods: []*corev1.Pod{testPod("p1", "x", true)}, err: `found no controllers for pod "p1"`},
		{name: "no pods: nothing allowed", pdb: budget(count(0), nil, nil),
			want: policyv1.PodDisruptionBudgetStatus{}},
		{name: "maxUnavailable 0", pdb: budget(nil, count(0), nil),
			pods: []*corev1.Pod{testPod("p1", "c", true), testPod("p2", "c", true)},
			want: policyv1.PodDisruptionBudgetStatus{ExpectedPods: 2, DesiredHealthy: 2, CurrentHealthy: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, recheck, unmanaged, err := Status(tc.pdb, tc.pods, scales, now, 2*time.Minute)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.want.ObservedGeneration = 3
			if !equality.Semantic.DeepEqual(st, tc.want) {
				t.Errorf("status\n %+v\nwant\n %+v", st, tc.want)
			}
			if !recheck.Equal(tc.recheck) {
				t.Errorf("recheck %v, want %v", recheck, tc.recheck)
			}
			if strings.Join(unmanaged, ",") != strings.Join(tc.unmanaged, ",") {
				t.Errorf("unmanaged %v, want %v", unmanaged, tc.unmanaged)
			}
		})
	}
}

// TestBudgetFollowsItsPods runs the controller with the Deployment and ReplicaSet
// controllers: a budget's status follows the Deployment's pods, an eviction takes a
// disruption, and the budget allows one again once a replacement is ready.
func TestBudgetFollowsItsPods(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cs := client.NewClientset(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	f := cache.NewFactory(cs, hclog.NewNullLogger())
	rec := record.New(cs.Events, record.Config{Component: "controller-manager"})
	dc, err := deployment.New(cs, f, rec, deployment.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	rc, err := replicaset.New(cs, f, rec, replicaset.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctrl, err := New(cs, f, rec, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	f.Start(ctx)
	done := make(chan struct{}, 5)
	for _, run := range []func(context.Context) error{dc.Run, rc.Run, ctrl.Run} {
		go func() { run(ctx); done <- struct{}{} }()
	}
	go func() { rec.Run(ctx); done <- struct{}{} }()
	go func() { fakekubelet.Run(ctx, cs); done <- struct{}{} }()
	defer func() {
		cancel()
		f.Wait()
		for range 5 {
			<-done
		}
	}()

	lbl := map[string]string{"app": "web"}
	if _, err := cs.Deployments.Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](3), Selector: &metav1.LabelSelector{MatchLabels: lbl},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbl},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "busybox:1"}}}}}}); err != nil {
		t.Fatal(err)
	}
	for _, b := range []*policyv1.PodDisruptionBudget{
		{ObjectMeta: metav1.ObjectMeta{Name: "min", Namespace: "default"},
			Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr.To(intstr.FromInt32(2)), Selector: &metav1.LabelSelector{MatchLabels: lbl}}},
		// Selecting nothing, for now.
		{ObjectMeta: metav1.ObjectMeta{Name: "max", Namespace: "default"},
			Spec: policyv1.PodDisruptionBudgetSpec{MaxUnavailable: ptr.To(intstr.FromString("50%")), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "none"}}}},
	} {
		if _, err := cs.PDBs.Create(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	status := func(name string, want policyv1.PodDisruptionBudgetStatus, cond metav1.ConditionStatus) func() (bool, string) {
		return func() (bool, string) {
			b, err := cs.PDBs.Get(ctx, "default", name)
			if err != nil {
				return false, err.Error()
			}
			st := b.Status
			cnd := apimeta.FindStatusCondition(st.Conditions, policyv1.DisruptionAllowedCondition)
			return st.ObservedGeneration == b.Generation && st.ExpectedPods == want.ExpectedPods && st.DesiredHealthy == want.DesiredHealthy &&
					st.CurrentHealthy == want.CurrentHealthy && st.DisruptionsAllowed == want.DisruptionsAllowed && cnd != nil && cnd.Status == cond,
				fmt.Sprintf("%+v", st)
		}
	}
	waitfor.Condition(t, time.Minute, "budget min: 3 healthy, 2 desired, 1 allowed",
		status("min", policyv1.PodDisruptionBudgetStatus{ExpectedPods: 3, DesiredHealthy: 2, CurrentHealthy: 3, DisruptionsAllowed: 1}, metav1.ConditionTrue))
	waitfor.Condition(t, time.Minute, "budget max: no pods, nothing allowed",
		status("max", policyv1.PodDisruptionBudgetStatus{}, metav1.ConditionFalse))

	// Point "max" at the Deployment: 50% of 3 rounds up to 2 unavailable.
	b, err := cs.PDBs.Get(ctx, "default", "max")
	if err != nil {
		t.Fatal(err)
	}
	b.Spec.Selector = &metav1.LabelSelector{MatchLabels: lbl}
	if _, err := cs.PDBs.Update(ctx, b); err != nil {
		t.Fatal(err)
	}
	waitfor.Condition(t, time.Minute, "budget max follows its new selector",
		status("max", policyv1.PodDisruptionBudgetStatus{ExpectedPods: 3, DesiredHealthy: 1, CurrentHealthy: 3, DisruptionsAllowed: 2}, metav1.ConditionTrue))
	if _, err := cs.PDBs.Delete(ctx, "default", "max", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	// An eviction takes min's one disruption; the replacement gives it back.
	pods, err := cs.Pods.List(ctx, "default", client.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	victim := pods.Items[0]
	if _, err := conn.Evict(ctx, "default", victim.Name, client.EvictOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Evict(ctx, "default", pods.Items[1].Name, client.EvictOptions{}); !client.IsTooManyRequests(err) {
		// The replacement may already be ready: then the budget allows one again.
		if err != nil {
			t.Fatalf("second eviction: %v", err)
		}
	}
	waitfor.Condition(t, time.Minute, "budget min allows one again with the replacements ready",
		status("min", policyv1.PodDisruptionBudgetStatus{ExpectedPods: 3, DesiredHealthy: 2, CurrentHealthy: 3, DisruptionsAllowed: 1}, metav1.ConditionTrue))
}

// TestScaleOfReplicationController: a pod of a ReplicationController is expected at its
// replicas, as a ReplicaSet's; a reference to one of another uid is not.
func TestScaleOfReplicationController(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cs := client.NewClientset(conn)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	lbl := map[string]string{"name": "legacy"}
	rc, err := cs.ReplicationControllers.Create(ctx, &corev1.ReplicationController{ObjectMeta: metav1.ObjectMeta{Name: "legacy", Namespace: "default"},
		Spec: corev1.ReplicationControllerSpec{Replicas: ptr.To[int32](5), Selector: lbl, Template: &corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: lbl}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	f := cache.NewFactory(cs, hclog.NewNullLogger())
	ctrl, err := New(cs, f, record.New(cs.Events, record.Config{Component: "controller-manager"}), DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	f.Start(ctx)
	defer func() { cancel(); f.Wait() }()
	if !cache.WaitForSync(ctx, ctrl.synced...) {
		t.Fatal("caches not synced")
	}
	ref := metav1.NewControllerRef(rc, corev1.SchemeGroupVersion.WithKind("ReplicationController"))
	waitfor.Condition(t, 30*time.Second, "the ReplicationController's scale", func() (bool, string) {
		uid, n, ok := ctrl.scaleOf("default", ref)
		return ok && uid == rc.UID && n == 5, fmt.Sprint(uid, n, ok)
	})
	ref.UID = "another"
	if _, _, ok := ctrl.scaleOf("default", ref); ok {
		t.Error("a reference to another uid has a scale")
	}
}

package deployment

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/client/record"
	"github.com/skiffhq/skiff/controllers/internal/fakekubelet"
	"github.com/skiffhq/skiff/controllers/replicaset"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

func dep(replicas int32, surge, unavailable *intstr.IntOrString) *appsv1.Deployment {
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: appsv1.DeploymentSpec{Replicas: ptr.To(replicas),
		Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
			RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: surge, MaxUnavailable: unavailable}}}}
}

func rs(name string, spec, current, available int32) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To(spec)},
		Status: appsv1.ReplicaSetStatus{Replicas: current, AvailableReplicas: available}}
}

func num(n int32) *intstr.IntOrString  { return ptr.To(intstr.FromInt32(n)) }
func str(s string) *intstr.IntOrString { return ptr.To(intstr.FromString(s)) }

func TestFenceposts(t *testing.T) {
	for _, tc := range []struct {
		replicas          int32
		surge, unav       *intstr.IntOrString
		wantSurge, wantUn int32
	}{
		{10, nil, nil, 3, 2}, // 25% of 10: surge rounds up, unavailable down
		{3, nil, nil, 1, 0},
		{1, nil, nil, 1, 0},
		{5, num(0), num(0), 0, 1}, // both zero: one unavailable
		{10, str("50%"), num(2), 5, 2},
		{4, num(1), str("30%"), 1, 1},
	} {
		s, u, err := resolveFenceposts(dep(tc.replicas, tc.surge, tc.unav))
		if err != nil || s != tc.wantSurge || u != tc.wantUn {
			t.Errorf("replicas %d surge %v unavailable %v: got %d, %d, %v; want %d, %d", tc.replicas, tc.surge, tc.unav, s, u, err, tc.wantSurge, tc.wantUn)
		}
	}
	if _, _, err := resolveFenceposts(dep(3, str("many"), nil)); err == nil {
		t.Error("a bad maxSurge resolved")
	}
	// A string that is not a percentage is refused, as Kubernetes' intstr refuses it (and
	// its validation before it): with Skiff's own types "1" was read as the count 1.
	if _, _, err := resolveFenceposts(dep(4, str("1"), nil)); err == nil {
		t.Error(`maxSurge "1" resolved`)
	}
}

func TestRollingStep(t *testing.T) {
	one, zero := num(1), num(0)
	for _, tc := range []struct {
		name  string
		d     *appsv1.Deployment
		newRS *appsv1.ReplicaSet
		old   []*appsv1.ReplicaSet
		want  map[string]int32
	}{
		{"fresh deployment scales the new set to replicas", dep(3, nil, nil), rs("new", 0, 0, 0), nil, map[string]int32{"new": 3}},
		{"surge first", dep(3, one, zero), rs("new", 0, 0, 0), []*appsv1.ReplicaSet{rs("old", 3, 3, 3)}, map[string]int32{"new": 1}},
		{"no scale-down while the new pod is unavailable", dep(3, one, zero), rs("new", 1, 1, 0), []*appsv1.ReplicaSet{rs("old", 3, 3, 3)}, map[string]int32{}},
		{"scale down once it is available", dep(3, one, zero), rs("new", 1, 1, 1), []*appsv1.ReplicaSet{rs("old", 3, 3, 3)}, map[string]int32{"old": 2}},
		{"unhealthy old replicas go first, beyond availability", dep(3, zero, one), rs("new", 3, 3, 0), []*appsv1.ReplicaSet{rs("old", 2, 2, 0)}, map[string]int32{}},
		{"scale the new set down when over", dep(2, nil, nil), rs("new", 5, 5, 5), nil, map[string]int32{"new": 2}},
		{"max unavailable lets old go at once", dep(4, zero, num(2)), rs("new", 0, 0, 0), []*appsv1.ReplicaSet{rs("old", 4, 4, 4)}, map[string]int32{"old": 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			steps, err := RollingStep(tc.d, tc.newRS, tc.old)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]int32{}
			for _, s := range steps {
				got[s.RS.Name] = s.Replicas
			}
			if len(got) != len(tc.want) {
				t.Fatalf("steps %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Fatalf("steps %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestRecreateStep(t *testing.T) {
	d := dep(3, nil, nil)
	d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	if s := RecreateStep(d, rs("new", 0, 0, 0), []*appsv1.ReplicaSet{rs("old", 3, 3, 3)}); len(s) != 1 || s[0].Replicas != 0 || s[0].RS.Name != "old" {
		t.Fatalf("first step %v: old must go to 0", s)
	}
	if s := RecreateStep(d, rs("new", 0, 0, 0), []*appsv1.ReplicaSet{rs("old", 0, 2, 0)}); len(s) != 0 {
		t.Fatalf("step %v while old pods still run", s)
	}
	if s := RecreateStep(d, rs("new", 0, 0, 0), []*appsv1.ReplicaSet{rs("old", 0, 0, 0)}); len(s) != 1 || s[0].Replicas != 3 {
		t.Fatalf("step %v: new must go to 3", s)
	}
}

func TestTemplateHash(t *testing.T) {
	a := &corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox:1"}}}}
	b := a.DeepCopy()
	b.Spec.Containers[0].Image = "busybox:2"
	if TemplateHash(a, 0) != TemplateHash(a.DeepCopy(), 0) {
		t.Fatal("hash not stable")
	}
	if TemplateHash(a, 0) == TemplateHash(b, 0) || TemplateHash(a, 0) == TemplateHash(a, 1) {
		t.Fatal("hash does not separate templates or collision counts")
	}
	// Maps hash in key order, whatever order they were filled in; a quantity hashes in
	// its canonical form (Go randomises map iteration: a hash over it would differ here).
	labelled := func(keys ...string) *corev1.PodTemplateSpec {
		t := a.DeepCopy()
		t.Labels = map[string]string{}
		for _, k := range keys {
			t.Labels[k] = "v-" + k
		}
		t.Spec.Containers[0].Resources.Requests = corev1.ResourceList{
			corev1.ResourceMemory: resource.MustParse("64Mi"), corev1.ResourceCPU: resource.MustParse("0.5")}
		return t
	}
	want := TemplateHash(labelled("a", "b", "c", "d", "e", "f", "g", "h"), 0)
	for range 20 {
		tmpl := labelled("h", "g", "f", "e", "d", "c", "b", "a")
		tmpl.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU] = resource.MustParse("500m")
		if got := TemplateHash(tmpl, 0); got != want {
			t.Fatalf("the same template hashed %s, then %s", want, got)
		}
	}
}

func TestTemplateEqual(t *testing.T) {
	d := &corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox:1"}}}}
	rs := d.DeepCopy()
	rs.Labels[PodTemplateHashLabel] = TemplateHash(d, 0)
	rs.Spec.Containers[0].Args = []string{} // empty is none
	if !templateEqual(rs, d) {
		t.Error("a ReplicaSet's template differs from its Deployment's by its hash label")
	}
	rs.Spec.Containers[0].Image = "busybox:2"
	if templateEqual(rs, d) {
		t.Error("templates with different images are equal")
	}
}

// TestOrdering: with whole-second creationTimestamps, old ReplicaSets are ordered by
// revision, and ties of creation time are broken by name, as Kubernetes does.
func TestOrdering(t *testing.T) {
	at := metav1.NewTime(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	mk := func(name, rev string, created metav1.Time) *appsv1.ReplicaSet {
		r := rs(name, 0, 0, 0)
		r.Annotations = map[string]string{RevisionAnnotation: rev}
		r.CreationTimestamp = created
		return r
	}
	names := func(rss []*appsv1.ReplicaSet) string {
		var out []string
		for _, r := range rss {
			out = append(out, r.Name)
		}
		return fmt.Sprint(out)
	}
	later := metav1.NewTime(at.Add(time.Second))
	rss := []*appsv1.ReplicaSet{mk("web-c", "3", at), mk("web-z", "2", at), mk("web-b", "2", at), mk("web-a", "1", later)}
	sortOldestFirst(rss)
	if got := names(rss); got != "[web-a web-b web-z web-c]" {
		t.Errorf("oldest first: %s, want by revision, then name", got)
	}
	sortByCreation(rss)
	if got := names(rss); got != "[web-b web-c web-z web-a]" {
		t.Errorf("by creation: %s, want by creationTimestamp, then name", got)
	}
}

func TestProgressDeadline(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	d := dep(3, nil, nil)
	d.Spec.ProgressDeadlineSeconds = ptr.To[int32](60)
	d.Status = appsv1.DeploymentStatus{UpdatedReplicas: 1, Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing,
		Status: corev1.ConditionTrue, Reason: "ReplicaSetUpdated", LastUpdateTime: metav1.NewTime(now.Add(-61 * time.Second))}}}
	st, _ := Status(d, rs("web-1", 3, 1, 0), nil, false, now)
	var p *appsv1.DeploymentCondition
	for i := range st.Conditions {
		if st.Conditions[i].Type == appsv1.DeploymentProgressing {
			p = &st.Conditions[i]
		}
	}
	if p == nil || p.Status != corev1.ConditionFalse || p.Reason != "ProgressDeadlineExceeded" {
		t.Fatalf("progressing %v, want ProgressDeadlineExceeded", p)
	}
	d.Status.Conditions[0].LastUpdateTime = metav1.NewTime(now.Add(-20 * time.Second))
	if _, requeue := Status(d, rs("web-1", 3, 1, 0), nil, false, now); requeue != 40*time.Second {
		t.Fatalf("requeue %v, want 40s to the deadline", requeue)
	}
}

// startControllers runs the Deployment and ReplicaSet controllers and a fake kubelet
// against a fresh cluster.
func startControllers(t *testing.T) (*client.Clientset, context.Context) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cs := client.NewClientset(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	f := cache.NewFactory(cs, hclog.NewNullLogger())
	rec := record.New(cs.Events, record.Config{Component: "deployment-controller"})
	dc, err := New(cs, f, rec, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	rc, err := replicaset.New(cs, f, rec, replicaset.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	f.Start(ctx)
	done := make(chan struct{}, 4)
	for _, run := range []func(){func() { rec.Run(ctx) }, func() { dc.Run(ctx) }, func() { rc.Run(ctx) }, func() { fakekubelet.Run(ctx, cs) }} {
		go func() { run(); done <- struct{}{} }()
	}
	t.Cleanup(func() {
		cancel()
		f.Wait()
		for i := 0; i < 4; i++ {
			<-done
		}
		conn.Close()
	})
	return cs, ctx
}

// updateDeployment changes default/name by change, again on a conflict.
func updateDeployment(ctx context.Context, t *testing.T, cs *client.Clientset, name string, change func(*appsv1.Deployment)) {
	t.Helper()
	for {
		cur, err := cs.Deployments.Get(ctx, "default", name)
		if err != nil {
			t.Fatal(err)
		}
		change(cur)
		if _, err = cs.Deployments.Update(ctx, cur); err == nil {
			return
		} else if !client.IsConflict(err) {
			t.Fatal(err)
		}
	}
}

func TestRollout(t *testing.T) {
	cs, ctx := startControllers(t)
	lbl := map[string]string{"app": "web"}
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}, Spec: appsv1.DeploymentSpec{
		Replicas: ptr.To[int32](4), Selector: &metav1.LabelSelector{MatchLabels: lbl},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbl},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "busybox:1"}}}}}}
	if _, err := cs.Deployments.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	rolledOut := func(image string) func() (bool, error) {
		return func() (bool, error) {
			cur, err := cs.Deployments.Get(ctx, "default", "web")
			if err != nil {
				return false, err
			}
			st := cur.Status
			ok := st.ObservedGeneration == cur.Generation && st.UpdatedReplicas == 4 && st.Replicas == 4 && st.AvailableReplicas == 4
			for _, c := range st.Conditions {
				if c.Type == appsv1.DeploymentProgressing {
					ok = ok && c.Reason == "NewReplicaSetAvailable"
				}
			}
			return ok && cur.Spec.Template.Spec.Containers[0].Image == image, nil
		}
	}
	waitfor.ConditionErr(t, time.Minute, "first rollout", rolledOut("busybox:1"))
	rss, _ := cs.ReplicaSets.List(ctx, "default", client.ListOptions{})
	if len(rss.Items) != 1 {
		t.Fatalf("%d replicasets", len(rss.Items))
	}
	first := rss.Items[0]
	hash := first.Labels[PodTemplateHashLabel]
	if ref := metav1.GetControllerOf(first); first.Name != "web-"+hash || first.Annotations[RevisionAnnotation] != "1" || ref == nil || ref.Name != "web" {
		t.Fatalf("replicaset %v", first.ObjectMeta)
	}

	// Scaling is not a rollout.
	update := func(change func(*appsv1.Deployment)) { t.Helper(); updateDeployment(ctx, t, cs, "web", change) }
	update(func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To[int32](6) })
	waitfor.ConditionErr(t, time.Minute, "scaled", func() (bool, error) {
		rs, err := cs.ReplicaSets.Get(ctx, "default", first.Name)
		return err == nil && *rs.Spec.Replicas == 6 && rs.Status.Replicas == 6, err
	})
	update(func(d *appsv1.Deployment) {
		d.Spec.Replicas = ptr.To[int32](4)
		d.Spec.Template.Spec.Containers[0].Image = "busybox:2"
	})
	waitfor.ConditionErr(t, time.Minute, "second rollout", rolledOut("busybox:2"))
	rss, _ = cs.ReplicaSets.List(ctx, "default", client.ListOptions{})
	revs := map[string]int32{}
	for _, rs := range rss.Items {
		revs[rs.Annotations[RevisionAnnotation]] = *rs.Spec.Replicas
	}
	if len(revs) != 2 || revs["1"] != 0 || revs["2"] != 4 {
		t.Fatalf("replicasets by revision %v: want old at 0 and new at 4", revs)
	}
	got, _ := cs.Deployments.Get(ctx, "default", "web")
	if got.Annotations[RevisionAnnotation] != "2" {
		t.Errorf("deployment revision %q", got.Annotations[RevisionAnnotation])
	}

	// Roll back: the first ReplicaSet comes back as revision 3.
	update(func(cur *appsv1.Deployment) {
		cur.Spec.Template = *d.Spec.Template.DeepCopy()
	})
	waitfor.ConditionErr(t, time.Minute, "rollback", rolledOut("busybox:1"))
	back, err := cs.ReplicaSets.Get(ctx, "default", first.Name)
	if err != nil {
		t.Fatal(err)
	}
	if back.Annotations[RevisionAnnotation] != "3" || *back.Spec.Replicas != 4 {
		t.Fatalf("rolled-back replicaset: revision %q replicas %d", back.Annotations[RevisionAnnotation], *back.Spec.Replicas)
	}
}

// TestRollingUpdateBounds checks every observed state of the pods during a rollout: never
// more than replicas+maxSurge active pods, never fewer than replicas-maxUnavailable ready
// ones. Pausing holds the rollout back until resumed.
func TestRollingUpdateBounds(t *testing.T) {
	cs, ctx := startControllers(t)
	const replicas, surge, unavailable = 6, 2, 1
	lbl := map[string]string{"app": "bounded"}
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "bounded", Namespace: "default"}, Spec: appsv1.DeploymentSpec{
		Replicas: ptr.To[int32](replicas), Selector: &metav1.LabelSelector{MatchLabels: lbl},
		Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{
			MaxSurge: num(surge), MaxUnavailable: num(unavailable)}},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbl},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "busybox:1"}}}}}}
	if _, err := cs.Deployments.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	complete := func(image string) func() (bool, error) {
		return func() (bool, error) {
			cur, err := cs.Deployments.Get(ctx, "default", "bounded")
			if err != nil {
				return false, err
			}
			st := cur.Status
			return st.ObservedGeneration == cur.Generation && st.UpdatedReplicas == replicas &&
				st.Replicas == replicas && st.AvailableReplicas == replicas &&
				cur.Spec.Template.Spec.Containers[0].Image == image, nil
		}
	}
	waitfor.ConditionErr(t, time.Minute, "first rollout", complete("busybox:1"))
	update := func(change func(*appsv1.Deployment)) { t.Helper(); updateDeployment(ctx, t, cs, "bounded", change) }

	// Paused: a template change creates no ReplicaSet.
	update(func(d *appsv1.Deployment) { d.Spec.Paused = true })
	update(func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "busybox:2" })
	waitfor.ConditionErr(t, time.Minute, "paused observed", func() (bool, error) {
		cur, err := cs.Deployments.Get(ctx, "default", "bounded")
		return err == nil && cur.Status.ObservedGeneration == cur.Generation, err
	})
	if l, _ := cs.ReplicaSets.List(ctx, "default", client.ListOptions{}); len(l.Items) != 1 {
		t.Fatalf("%d replicasets while paused, want 1", len(l.Items))
	}

	// Watch every pod change from here on and check the bounds on each state.
	list, err := cs.Pods.List(ctx, "default", client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pods := map[string]*corev1.Pod{}
	for _, p := range list.Items {
		pods[p.Name] = p
	}
	w, err := cs.Pods.Watch(ctx, "default", client.WatchOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	violation := make(chan string, 1)
	states := 0
	go func() {
		defer close(violation)
		for {
			evs, err := w.Next()
			if err != nil {
				return // stopped
			}
			for _, ev := range evs {
				if ev.Type == client.Deleted {
					delete(pods, ev.Object.Name)
				} else {
					pods[ev.Object.Name] = ev.Object
				}
			}
			active, ready := 0, 0
			for _, p := range pods {
				if replicaset.IsActive(p) {
					active++
					if replicaset.IsReady(p) {
						ready++
					}
				}
			}
			states++
			if active > replicas+surge {
				violation <- fmt.Sprintf("state %d: %d active pods > replicas+maxSurge %d", states, active, replicas+surge)
				return
			}
			if ready < replicas-unavailable {
				violation <- fmt.Sprintf("state %d: %d ready pods < replicas-maxUnavailable %d", states, ready, replicas-unavailable)
				return
			}
		}
	}()
	update(func(d *appsv1.Deployment) { d.Spec.Paused = false })
	waitfor.ConditionErr(t, time.Minute, "rollout after resume", complete("busybox:2"))
	w.Stop()
	if v, ok := <-violation; ok {
		t.Fatal(v)
	}
	t.Logf("bounds held over %d observed states", states)
}

// annotated is rs as the controller last wrote it for a Deployment of desired replicas
// and maxReplicas (replicas+maxSurge), at revision rev.
func annotated(r *appsv1.ReplicaSet, rev, desired, maxReplicas int) *appsv1.ReplicaSet {
	r.Annotations = map[string]string{RevisionAnnotation: fmt.Sprint(rev),
		DesiredReplicasAnnotation: fmt.Sprint(desired), MaxReplicasAnnotation: fmt.Sprint(maxReplicas)}
	return r
}

// TestProportionalScaling is Kubernetes' conformance test "deployment should support
// proportional scaling" (testProportionalScalingDeployment) at the controller's
// decision: 10 replicas, maxSurge 3, maxUnavailable 2, a rollout stuck with the old
// ReplicaSet at 8 and the new one at 5 (none available), then resized to 30. The 33
// replicas+maxSurge are shared 8:5 — 20 and 13 — not all 20 added to the new one.
func TestProportionalScaling(t *testing.T) {
	steps := func(d *appsv1.Deployment, newRS *appsv1.ReplicaSet, old ...*appsv1.ReplicaSet) map[string]int32 {
		t.Helper()
		if !IsScalingEvent(d, newRS, old) {
			t.Fatalf("resize to %d is not a scaling event", wantReplicas(d))
		}
		got := map[string]int32{}
		for _, s := range ScaleStep(d, newRS, old) {
			got[s.RS.Name] = s.Replicas
		}
		return got
	}
	for _, tc := range []struct {
		name       string
		replicas   int32
		first, sec int32 // the old and the new ReplicaSets' sizes before
		want       map[string]int32
	}{
		{"conformance: 10 to 30", 30, 8, 5, map[string]int32{"first": 20, "second": 13}},
		// 13 to 8 removes 5: 8*8/13 = 4.9 → 5 and 5*8/13 = 3.1 → 3.
		{"down: 10 to 5", 5, 8, 5, map[string]int32{"first": 5, "second": 3}},
		// 13 to 14: 8*14/13 = 8.6 → 9 takes the one there is; the new one keeps 5.
		{"one more: 10 to 11", 11, 8, 5, map[string]int32{"first": 9, "second": 5}},
		{"to zero", 0, 8, 5, map[string]int32{"first": 0, "second": 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := dep(tc.replicas, num(3), num(2))
			first := annotated(rs("first", tc.first, tc.first, tc.first), 1, 10, 13)
			second := annotated(rs("second", tc.sec, tc.sec, 0), 2, 10, 13)
			got := steps(d, second, first)
			if len(got) != len(tc.want) {
				t.Fatalf("steps %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Fatalf("steps %v, want %v", got, tc.want)
				}
			}
		})
	}
	// The sizes reached, with the annotations written, are no longer a scaling event.
	d := dep(30, num(3), num(2))
	first := annotated(rs("first", 20, 20, 20), 1, 30, 33)
	second := annotated(rs("second", 13, 13, 0), 2, 30, 33)
	if IsScalingEvent(d, second, []*appsv1.ReplicaSet{first}) {
		t.Fatal("settled sizes are a scaling event")
	}
	// Without the annotations (ReplicaSets written before they were kept) nothing is
	// known of a resize: the rollout step goes on.
	plain := dep(30, num(3), num(2))
	if IsScalingEvent(plain, rs("second", 5, 5, 0), []*appsv1.ReplicaSet{rs("first", 8, 8, 8)}) {
		t.Fatal("a scaling event from ReplicaSets without annotations")
	}
}

// TestProportionalScalingRollout runs the conformance scenario through the controllers:
// a rollout stuck on an image that never becomes ready (8 old, 5 new), then resized
// from 10 to 30, ends with the old ReplicaSet at 20 and the new at 13.
func TestProportionalScalingRollout(t *testing.T) {
	cs, ctx := startControllers(t)
	lbl := map[string]string{"app": "prop"}
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "prop", Namespace: "default"}, Spec: appsv1.DeploymentSpec{
		Replicas: ptr.To[int32](10), Selector: &metav1.LabelSelector{MatchLabels: lbl},
		Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{
			MaxSurge: num(3), MaxUnavailable: num(2)}},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbl},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "busybox:1"}}}}}}
	if _, err := cs.Deployments.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	waitfor.ConditionErr(t, time.Minute, "first rollout", func() (bool, error) {
		cur, err := cs.Deployments.Get(ctx, "default", "prop")
		return err == nil && cur.Status.ObservedGeneration == cur.Generation && cur.Status.AvailableReplicas == 10 && cur.Status.UpdatedReplicas == 10, err
	})
	update := func(change func(*appsv1.Deployment)) { t.Helper(); updateDeployment(ctx, t, cs, "prop", change) }
	// sizes are the ReplicaSets' spec.replicas by image.
	sizes := func() (map[string]int32, error) {
		l, err := cs.ReplicaSets.List(ctx, "default", client.ListOptions{})
		if err != nil {
			return nil, err
		}
		out := map[string]int32{}
		for _, rs := range l.Items {
			out[rs.Spec.Template.Spec.Containers[0].Image] = *rs.Spec.Replicas
		}
		return out, nil
	}
	update(func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "webserver:404" })
	waitfor.ConditionErr(t, time.Minute, "rollout stuck at 8 old and 5 new", func() (bool, error) {
		s, err := sizes()
		return err == nil && s["busybox:1"] == 8 && s["webserver:404"] == 5, err
	})
	update(func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To[int32](30) })
	var last map[string]int32
	waitfor.ConditionErr(t, time.Minute, "resized in proportion to 20 old and 13 new", func() (bool, error) {
		s, err := sizes()
		last = s
		return err == nil && s["busybox:1"] == 20 && s["webserver:404"] == 13, err
	})
	t.Logf("sizes %v", last)
}

package deployment

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/client/record"
	"github.com/skiffhq/skiff/controllers/internal/fakekubelet"
	"github.com/skiffhq/skiff/controllers/replicaset"
	corev1 "github.com/skiffhq/skiff/proto/core/v1"
	"github.com/skiffhq/skiff/proto/kinds"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

func dep(replicas int32, surge, unavailable *structpb.Value) *corev1.Deployment {
	return &corev1.Deployment{Metadata: &corev1.ObjectMeta{Name: "web"}, Spec: &corev1.DeploymentSpec{Replicas: proto.Int32(replicas),
		Strategy: &corev1.DeploymentStrategy{Type: "RollingUpdate", RollingUpdate: &corev1.RollingUpdateDeployment{MaxSurge: surge, MaxUnavailable: unavailable}}}}
}

func rs(name string, spec, current, available int32) *corev1.ReplicaSet {
	return &corev1.ReplicaSet{Metadata: &corev1.ObjectMeta{Name: name}, Spec: &corev1.ReplicaSetSpec{Replicas: proto.Int32(spec)},
		Status: &corev1.ReplicaSetStatus{Replicas: current, AvailableReplicas: available}}
}

func TestFenceposts(t *testing.T) {
	for _, tc := range []struct {
		replicas          int32
		surge, unav       *structpb.Value
		wantSurge, wantUn int32
	}{
		{10, nil, nil, 3, 2}, // 25% of 10: surge rounds up, unavailable down
		{3, nil, nil, 1, 0},
		{1, nil, nil, 1, 0},
		{5, structpb.NewNumberValue(0), structpb.NewNumberValue(0), 0, 1}, // both zero: one unavailable
		{10, structpb.NewStringValue("50%"), structpb.NewNumberValue(2), 5, 2},
		{4, structpb.NewStringValue("1"), structpb.NewStringValue("30%"), 1, 1},
	} {
		s, u, err := resolveFenceposts(dep(tc.replicas, tc.surge, tc.unav))
		if err != nil || s != tc.wantSurge || u != tc.wantUn {
			t.Errorf("replicas %d surge %v unavailable %v: got %d, %d, %v; want %d, %d", tc.replicas, tc.surge, tc.unav, s, u, err, tc.wantSurge, tc.wantUn)
		}
	}
	if _, _, err := resolveFenceposts(dep(3, structpb.NewStringValue("many"), nil)); err == nil {
		t.Error("a bad maxSurge resolved")
	}
}

func TestRollingStep(t *testing.T) {
	one, zero := structpb.NewNumberValue(1), structpb.NewNumberValue(0)
	for _, tc := range []struct {
		name  string
		d     *corev1.Deployment
		newRS *corev1.ReplicaSet
		old   []*corev1.ReplicaSet
		want  map[string]int32
	}{
		{"fresh deployment scales the new set to replicas", dep(3, nil, nil), rs("new", 0, 0, 0), nil, map[string]int32{"new": 3}},
		{"surge first", dep(3, one, zero), rs("new", 0, 0, 0), []*corev1.ReplicaSet{rs("old", 3, 3, 3)}, map[string]int32{"new": 1}},
		{"no scale-down while the new pod is unavailable", dep(3, one, zero), rs("new", 1, 1, 0), []*corev1.ReplicaSet{rs("old", 3, 3, 3)}, map[string]int32{}},
		{"scale down once it is available", dep(3, one, zero), rs("new", 1, 1, 1), []*corev1.ReplicaSet{rs("old", 3, 3, 3)}, map[string]int32{"old": 2}},
		{"unhealthy old replicas go first, beyond availability", dep(3, zero, one), rs("new", 3, 3, 0), []*corev1.ReplicaSet{rs("old", 2, 2, 0)}, map[string]int32{}},
		{"scale the new set down when over", dep(2, nil, nil), rs("new", 5, 5, 5), nil, map[string]int32{"new": 2}},
		{"max unavailable lets old go at once", dep(4, zero, structpb.NewNumberValue(2)), rs("new", 0, 0, 0), []*corev1.ReplicaSet{rs("old", 4, 4, 4)}, map[string]int32{"old": 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			steps, err := RollingStep(tc.d, tc.newRS, tc.old)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]int32{}
			for _, s := range steps {
				got[s.RS.GetMetadata().GetName()] = s.Replicas
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
	d.Spec.Strategy = &corev1.DeploymentStrategy{Type: "Recreate"}
	if s := RecreateStep(d, rs("new", 0, 0, 0), []*corev1.ReplicaSet{rs("old", 3, 3, 3)}); len(s) != 1 || s[0].Replicas != 0 || s[0].RS.GetMetadata().GetName() != "old" {
		t.Fatalf("first step %v: old must go to 0", s)
	}
	if s := RecreateStep(d, rs("new", 0, 0, 0), []*corev1.ReplicaSet{rs("old", 0, 2, 0)}); len(s) != 0 {
		t.Fatalf("step %v while old pods still run", s)
	}
	if s := RecreateStep(d, rs("new", 0, 0, 0), []*corev1.ReplicaSet{rs("old", 0, 0, 0)}); len(s) != 1 || s[0].Replicas != 3 {
		t.Fatalf("step %v: new must go to 3", s)
	}
}

func TestTemplateHash(t *testing.T) {
	a := &corev1.PodTemplateSpec{Spec: &corev1.PodSpec{Containers: []*corev1.Container{{Name: "c", Image: "busybox:1"}}}}
	b := proto.Clone(a).(*corev1.PodTemplateSpec)
	b.Spec.Containers[0].Image = "busybox:2"
	if TemplateHash(a, 0) != TemplateHash(proto.Clone(a).(*corev1.PodTemplateSpec), 0) {
		t.Fatal("hash not stable")
	}
	if TemplateHash(a, 0) == TemplateHash(b, 0) || TemplateHash(a, 0) == TemplateHash(a, 1) {
		t.Fatal("hash does not separate templates or collision counts")
	}
}

func TestProgressDeadline(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	d := dep(3, nil, nil)
	d.Spec.ProgressDeadlineSeconds = proto.Int32(60)
	d.Status = &corev1.DeploymentStatus{UpdatedReplicas: 1, Conditions: []*corev1.DeploymentCondition{{Type: "Progressing", Status: "True",
		Reason: "ReplicaSetUpdated", LastUpdateTime: timestamppb.New(now.Add(-61 * time.Second))}}}
	st, _ := Status(d, rs("web-1", 3, 1, 0), nil, false, now)
	var p *corev1.DeploymentCondition
	for _, c := range st.GetConditions() {
		if c.GetType() == "Progressing" {
			p = c
		}
	}
	if p.GetStatus() != "False" || p.GetReason() != "ProgressDeadlineExceeded" {
		t.Fatalf("progressing %v, want ProgressDeadlineExceeded", p)
	}
	d.Status.Conditions[0].LastUpdateTime = timestamppb.New(now.Add(-20 * time.Second))
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

func TestRollout(t *testing.T) {
	cs, ctx := startControllers(t)
	lbl := map[string]string{"app": "web"}
	d := &corev1.Deployment{Metadata: &corev1.ObjectMeta{Name: "web", Namespace: "default"}, Spec: &corev1.DeploymentSpec{
		Replicas: proto.Int32(4), Selector: &corev1.LabelSelector{MatchLabels: lbl},
		Template: &corev1.PodTemplateSpec{Metadata: &corev1.ObjectMeta{Labels: lbl},
			Spec: &corev1.PodSpec{Containers: []*corev1.Container{{Name: "web", Image: "busybox:1"}}}}}}
	if _, err := cs.Deployments.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	rolledOut := func(image string) func() (bool, error) {
		return func() (bool, error) {
			cur, err := cs.Deployments.Get(ctx, "default", "web")
			if err != nil {
				return false, err
			}
			st := cur.GetStatus()
			ok := st.GetObservedGeneration() == cur.GetMetadata().GetGeneration() && st.GetUpdatedReplicas() == 4 && st.GetReplicas() == 4 && st.GetAvailableReplicas() == 4
			for _, c := range st.GetConditions() {
				if c.GetType() == "Progressing" {
					ok = ok && c.GetReason() == "NewReplicaSetAvailable"
				}
			}
			return ok && cur.GetSpec().GetTemplate().GetSpec().GetContainers()[0].GetImage() == image, nil
		}
	}
	waitfor.ConditionErr(t, time.Minute, "first rollout", rolledOut("busybox:1"))
	rss, _ := cs.ReplicaSets.List(ctx, "default", client.ListOptions{})
	if len(rss.Items) != 1 {
		t.Fatalf("%d replicasets", len(rss.Items))
	}
	first := rss.Items[0]
	hash := first.GetMetadata().GetLabels()[PodTemplateHashLabel]
	if first.GetMetadata().GetName() != "web-"+hash || first.GetMetadata().GetAnnotations()[RevisionAnnotation] != "1" || kinds.ControllerOf(first).GetName() != "web" {
		t.Fatalf("replicaset %v", first.GetMetadata())
	}

	// Scaling is not a rollout.
	update := func(change func(*corev1.Deployment)) {
		t.Helper()
		for {
			cur, err := cs.Deployments.Get(ctx, "default", "web")
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
	update(func(d *corev1.Deployment) { d.Spec.Replicas = proto.Int32(6) })
	waitfor.ConditionErr(t, time.Minute, "scaled", func() (bool, error) {
		rs, err := cs.ReplicaSets.Get(ctx, "default", first.GetMetadata().GetName())
		return rs.GetSpec().GetReplicas() == 6 && rs.GetStatus().GetReplicas() == 6, err
	})
	update(func(d *corev1.Deployment) {
		d.Spec.Replicas = proto.Int32(4)
		d.Spec.Template.Spec.Containers[0].Image = "busybox:2"
	})
	waitfor.ConditionErr(t, time.Minute, "second rollout", rolledOut("busybox:2"))
	rss, _ = cs.ReplicaSets.List(ctx, "default", client.ListOptions{})
	revs := map[string]int32{}
	for _, rs := range rss.Items {
		revs[rs.GetMetadata().GetAnnotations()[RevisionAnnotation]] = rs.GetSpec().GetReplicas()
	}
	if len(revs) != 2 || revs["1"] != 0 || revs["2"] != 4 {
		t.Fatalf("replicasets by revision %v: want old at 0 and new at 4", revs)
	}
	got, _ := cs.Deployments.Get(ctx, "default", "web")
	if got.GetMetadata().GetAnnotations()[RevisionAnnotation] != "2" {
		t.Errorf("deployment revision %q", got.GetMetadata().GetAnnotations()[RevisionAnnotation])
	}

	// Roll back: the first ReplicaSet comes back as revision 3.
	update(func(cur *corev1.Deployment) {
		cur.Spec.Template = proto.Clone(d.Spec.Template).(*corev1.PodTemplateSpec)
	})
	waitfor.ConditionErr(t, time.Minute, "rollback", rolledOut("busybox:1"))
	back, _ := cs.ReplicaSets.Get(ctx, "default", first.GetMetadata().GetName())
	if back.GetMetadata().GetAnnotations()[RevisionAnnotation] != "3" || back.GetSpec().GetReplicas() != 4 {
		t.Fatalf("rolled-back replicaset: revision %q replicas %d", back.GetMetadata().GetAnnotations()[RevisionAnnotation], back.GetSpec().GetReplicas())
	}
}

// TestRollingUpdateBounds checks every observed state of the pods during a rollout: never
// more than replicas+maxSurge active pods, never fewer than replicas-maxUnavailable ready
// ones. Pausing holds the rollout back until resumed.
func TestRollingUpdateBounds(t *testing.T) {
	cs, ctx := startControllers(t)
	const replicas, surge, unavailable = 6, 2, 1
	lbl := map[string]string{"app": "bounded"}
	d := &corev1.Deployment{Metadata: &corev1.ObjectMeta{Name: "bounded", Namespace: "default"}, Spec: &corev1.DeploymentSpec{
		Replicas: proto.Int32(replicas), Selector: &corev1.LabelSelector{MatchLabels: lbl},
		Strategy: &corev1.DeploymentStrategy{Type: "RollingUpdate", RollingUpdate: &corev1.RollingUpdateDeployment{
			MaxSurge: structpb.NewNumberValue(surge), MaxUnavailable: structpb.NewNumberValue(unavailable)}},
		Template: &corev1.PodTemplateSpec{Metadata: &corev1.ObjectMeta{Labels: lbl},
			Spec: &corev1.PodSpec{Containers: []*corev1.Container{{Name: "web", Image: "busybox:1"}}}}}}
	if _, err := cs.Deployments.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	complete := func(image string) func() (bool, error) {
		return func() (bool, error) {
			cur, err := cs.Deployments.Get(ctx, "default", "bounded")
			st := cur.GetStatus()
			return st.GetObservedGeneration() == cur.GetMetadata().GetGeneration() && st.GetUpdatedReplicas() == replicas &&
				st.GetReplicas() == replicas && st.GetAvailableReplicas() == replicas &&
				cur.GetSpec().GetTemplate().GetSpec().GetContainers()[0].GetImage() == image, err
		}
	}
	waitfor.ConditionErr(t, time.Minute, "first rollout", complete("busybox:1"))
	update := func(change func(*corev1.Deployment)) {
		t.Helper()
		for {
			cur, err := cs.Deployments.Get(ctx, "default", "bounded")
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

	// Paused: a template change creates no ReplicaSet.
	update(func(d *corev1.Deployment) { d.Spec.Paused = true })
	update(func(d *corev1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "busybox:2" })
	waitfor.ConditionErr(t, time.Minute, "paused observed", func() (bool, error) {
		cur, err := cs.Deployments.Get(ctx, "default", "bounded")
		return cur.GetStatus().GetObservedGeneration() == cur.GetMetadata().GetGeneration(), err
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
		pods[p.GetMetadata().GetName()] = p
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
					delete(pods, ev.Object.GetMetadata().GetName())
				} else {
					pods[ev.Object.GetMetadata().GetName()] = ev.Object
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
	update(func(d *corev1.Deployment) { d.Spec.Paused = false })
	waitfor.ConditionErr(t, time.Minute, "rollout after resume", complete("busybox:2"))
	w.Stop()
	if v, ok := <-violation; ok {
		t.Fatal(v)
	}
	t.Logf("bounds held over %d observed states", states)
}

package replicaset

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/client/record"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func testPod(name string, mut func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(t0)}}
	if mut != nil {
		mut(p)
	}
	return p
}

func ready(since time.Time) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Spec.NodeName = "n"
		p.Status.Phase = corev1.PodRunning
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(since)}}
	}
}

func TestRankForDeletion(t *testing.T) {
	pods := []*corev1.Pod{
		testPod("ready-old", ready(t0.Add(-time.Hour))),
		testPod("ready-new", ready(t0.Add(-time.Minute))),
		testPod("running-not-ready", func(p *corev1.Pod) { p.Spec.NodeName = "n"; p.Status.Phase = corev1.PodRunning }),
		testPod("pending-bound", func(p *corev1.Pod) { p.Spec.NodeName = "n"; p.Status.Phase = corev1.PodPending }),
		testPod("unscheduled", nil),
	}
	rankForDeletion(pods)
	want := []string{"unscheduled", "pending-bound", "running-not-ready", "ready-new", "ready-old"}
	for i, p := range pods {
		if p.Name != want[i] {
			t.Fatalf("position %d: %s, want order %v", i, p.Name, want)
		}
	}
}

func TestStatus(t *testing.T) {
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Generation: 4},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](3), MinReadySeconds: 30,
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}}}}}
	labelled := func(p *corev1.Pod) { p.Labels = map[string]string{"app": "web"} }
	pods := []*corev1.Pod{
		testPod("a", func(p *corev1.Pod) { ready(t0.Add(-time.Minute))(p); labelled(p) }),
		testPod("b", ready(t0.Add(-10*time.Second))),
		testPod("c", nil),
	}
	st, requeue := Status(rs, pods, nil, t0)
	if st.Replicas != 3 || st.ReadyReplicas != 2 || st.AvailableReplicas != 1 || st.FullyLabeledReplicas != 1 || st.ObservedGeneration != 4 {
		t.Fatalf("status %v", st)
	}
	if requeue != 20*time.Second {
		t.Errorf("requeue %v, want 20s (when b becomes available)", requeue)
	}
	st, _ = Status(rs, pods[:1], errors.New("quota"), t0)
	if len(st.Conditions) != 1 || st.Conditions[0].Reason != "FailedCreate" {
		t.Errorf("conditions %v", st.Conditions)
	}
	// A later failure leaves the condition as it is: the status does not change, so
	// it does not wake the ReplicaSet before its back-off.
	rs.Status = st
	again, _ := Status(rs, pods[:1], errors.New(`pods "web-x2" is forbidden: exceeded quota`), t0.Add(time.Minute))
	if !equality.Semantic.DeepEqual(again.Conditions, st.Conditions) {
		t.Errorf("conditions changed on a second failure: %v", again.Conditions)
	}
	rs.Status = again
	if ok, _ := Status(rs, pods[:1], nil, t0); len(ok.Conditions) != 0 {
		t.Errorf("conditions %v after a sync without failure", ok.Conditions)
	}
}

// newClientset is a client of a fresh single-node cluster, closed with the test.
func newClientset(t *testing.T) *client.Clientset {
	return client.NewClientset(apicluster.Start(t, 1, apicluster.Options{}).Dial(t, "admin", client.Options{}))
}

// start runs the ReplicaSet and ReplicationController controllers against a fresh
// single-node cluster.
func start(t *testing.T) (*client.Clientset, context.Context) {
	t.Helper()
	cs := newClientset(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	f := cache.NewFactory(cs, hclog.NewNullLogger())
	rec := record.New(cs.Events, record.Config{Component: "replicaset-controller"})
	ctrl, err := New(cs, f, rec, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	rcs, err := NewReplicationController(cs, f, rec, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	f.Start(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { rec.Run(ctx) })
	wg.Go(func() { ctrl.Run(ctx) })
	wg.Go(func() { rcs.Run(ctx) })
	t.Cleanup(func() { cancel(); f.Wait(); wg.Wait() })
	return cs, ctx
}

func newRS(name string, replicas int32) *appsv1.ReplicaSet {
	lbl := map[string]string{"app": name}
	return &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To(replicas), Selector: &metav1.LabelSelector{MatchLabels: lbl},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbl},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}}}
}

func ownedPods(ctx context.Context, cs *client.Clientset, rs *appsv1.ReplicaSet) ([]*corev1.Pod, error) {
	l, err := cs.Pods.List(ctx, "default", client.ListOptions{})
	if err != nil {
		return nil, err
	}
	var out []*corev1.Pod
	for _, p := range l.Items {
		if metav1.IsControlledBy(p, rs) && p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

func TestReplicaSetLifecycle(t *testing.T) {
	cs, ctx := start(t)
	// Count every pod ever created, to prove the controller never over-creates.
	w, err := cs.Pods.Watch(ctx, "default", client.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var added atomic.Int32
	go func() {
		for {
			evs, err := w.Next()
			if err != nil {
				return
			}
			for _, ev := range evs {
				if ev.Type == client.Added {
					added.Add(1)
				}
			}
		}
	}()
	defer w.Stop()

	rs, err := cs.ReplicaSets.Create(ctx, newRS("web", 20))
	if err != nil {
		t.Fatal(err)
	}
	waitfor.ConditionErr(t, 30*time.Second, "20 pods and status", func() (bool, error) {
		pods, err := ownedPods(ctx, cs, rs)
		if err != nil {
			return false, err
		}
		cur, err := cs.ReplicaSets.Get(ctx, "default", "web")
		return len(pods) == 20 && cur.Status.Replicas == 20 && cur.Status.ObservedGeneration == cur.Generation, err
	})
	pods, _ := ownedPods(ctx, cs, rs)
	for _, p := range pods {
		if len(p.Name) != len("web-")+5 || p.Name[:4] != "web-" {
			t.Errorf("pod name %q, want web-<5 chars>", p.Name)
		}
	}
	if n := added.Load(); n > 20 {
		t.Fatalf("%d pods created for 20 replicas", n)
	}

	// Scale down: unscheduled pods go first; exactly 15 deleted.
	cur, _ := cs.ReplicaSets.Get(ctx, "default", "web")
	cur.Spec.Replicas = ptr.To[int32](5)
	if _, err := cs.ReplicaSets.Update(ctx, cur); err != nil {
		t.Fatal(err)
	}
	waitfor.ConditionErr(t, 30*time.Second, "5 pods", func() (bool, error) {
		pods, err := ownedPods(ctx, cs, rs)
		return len(pods) == 5, err
	})

	// An orphan with matching labels is adopted and, as a surplus, deleted: the newest
	// pod goes first. creationTimestamps are whole seconds, so the orphan may tie with the
	// ReplicaSet's pods, and then the name decides (the greater first): it is named to
	// come first either way.
	orphan := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "zz-orphan", Namespace: "default", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
	if _, err := cs.Pods.Create(ctx, orphan); err != nil {
		t.Fatal(err)
	}
	waitfor.ConditionErr(t, 30*time.Second, "orphan adopted then removed as surplus, 5 left", func() (bool, error) {
		_, err := cs.Pods.Get(ctx, "default", orphan.Name)
		pods, lerr := ownedPods(ctx, cs, rs)
		return client.IsNotFound(err) && len(pods) == 5, lerr
	})

	// A pod whose labels stop matching is released and replaced.
	pods, _ = ownedPods(ctx, cs, rs)
	released := pods[0]
	released.Labels = map[string]string{"app": "debug"}
	if _, err := cs.Pods.Update(ctx, released); err != nil {
		t.Fatal(err)
	}
	waitfor.ConditionErr(t, 30*time.Second, "released and replaced", func() (bool, error) {
		p, err := cs.Pods.Get(ctx, "default", released.Name)
		if err != nil {
			return false, err
		}
		pods, err := ownedPods(ctx, cs, rs)
		return metav1.GetControllerOf(p) == nil && len(pods) == 5, err
	})

	// Events say what happened.
	waitfor.ConditionErr(t, 30*time.Second, "events", func() (bool, error) {
		l, err := cs.Events.List(ctx, "default", client.ListOptions{FieldSelector: "involvedObject.uid=" + string(rs.UID)})
		if err != nil {
			return false, err
		}
		reasons := map[string]bool{}
		for _, e := range l.Items {
			reasons[e.Reason] = true
		}
		return reasons["SuccessfulCreate"] && reasons["SuccessfulDelete"], nil
	})
}

func newRC(name string, replicas int32) *corev1.ReplicationController {
	lbl := map[string]string{"name": name}
	return &corev1.ReplicationController{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.ReplicationControllerSpec{Replicas: ptr.To(replicas), Selector: lbl,
			Template: &corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbl},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}}}
}

// TestReplicationController: the ReplicaSet controller serves ReplicationControllers —
// it adopts a matching orphan on creation, makes the pods it misses with the
// ReplicationController as their controller, scales up and down, releases a pod whose
// labels stop matching and replaces it, writes the status in the ReplicationController's
// type and records its events on it. The ReplicaSet controller running beside it leaves
// its pods alone.
func TestReplicationController(t *testing.T) {
	cs, ctx := start(t)
	orphan := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "pod-adoption", Namespace: "default", Labels: map[string]string{"name": "legacy"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
	if _, err := cs.Pods.Create(ctx, orphan); err != nil {
		t.Fatal(err)
	}
	rc, err := cs.ReplicationControllers.Create(ctx, newRC("legacy", 3))
	if err != nil {
		t.Fatal(err)
	}
	owned := func() ([]*corev1.Pod, error) {
		l, err := cs.Pods.List(ctx, "default", client.ListOptions{})
		if err != nil {
			return nil, err
		}
		var out []*corev1.Pod
		for _, p := range l.Items {
			ref := metav1.GetControllerOf(p)
			if ref != nil && ref.UID == rc.UID && p.DeletionTimestamp == nil {
				if ref.Kind != "ReplicationController" || ref.APIVersion != "v1" || ref.Name != "legacy" || !ptr.Deref(ref.BlockOwnerDeletion, false) {
					t.Fatalf("pod %s: owner reference %+v", p.Name, ref)
				}
				out = append(out, p)
			}
		}
		return out, nil
	}
	status := func(replicas int32) func() (bool, error) {
		return func() (bool, error) {
			pods, err := owned()
			if err != nil {
				return false, err
			}
			cur, err := cs.ReplicationControllers.Get(ctx, "default", "legacy")
			return len(pods) == int(replicas) && cur.Status.Replicas == replicas && cur.Status.FullyLabeledReplicas == replicas &&
				cur.Status.ObservedGeneration == cur.Generation, err
		}
	}
	waitfor.ConditionErr(t, 30*time.Second, "the orphan adopted, 2 pods made, the status counting 3", status(3))
	if p, err := cs.Pods.Get(ctx, "default", orphan.Name); err != nil || !metav1.IsControlledBy(p, rc) {
		t.Fatalf("the orphan was not adopted: %v", err)
	}

	scale := func(n int32) {
		t.Helper()
		// The controller writes the status meanwhile: an update may lose to it.
		if err := client.RetryOnConflict(ctx, func() error {
			cur, err := cs.ReplicationControllers.Get(ctx, "default", "legacy")
			if err != nil {
				return err
			}
			cur.Spec.Replicas = ptr.To(n)
			_, err = cs.ReplicationControllers.Update(ctx, cur)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	scale(5)
	waitfor.ConditionErr(t, 30*time.Second, "scaled up to 5", status(5))
	scale(2)
	waitfor.ConditionErr(t, 30*time.Second, "scaled down to 2", status(2))

	pods, err := owned()
	if err != nil {
		t.Fatal(err)
	}
	released := pods[0]
	released.Labels = map[string]string{"name": "debug"}
	if _, err := cs.Pods.Update(ctx, released); err != nil {
		t.Fatal(err)
	}
	waitfor.ConditionErr(t, 30*time.Second, "released and replaced", func() (bool, error) {
		p, err := cs.Pods.Get(ctx, "default", released.Name)
		if err != nil {
			return false, err
		}
		ok, err := status(2)()
		return ok && metav1.GetControllerOf(p) == nil, err
	})
	// No ReplicaSet claimed anything, and the events are the ReplicationController's.
	waitfor.ConditionErr(t, 30*time.Second, "events on the ReplicationController", func() (bool, error) {
		l, err := cs.Events.List(ctx, "default", client.ListOptions{FieldSelector: "involvedObject.uid=" + string(rc.UID)})
		if err != nil {
			return false, err
		}
		reasons := map[string]bool{}
		for _, e := range l.Items {
			reasons[e.Reason] = reasons[e.Reason] || e.InvolvedObject.Kind == "ReplicationController"
		}
		return reasons["SuccessfulCreate"] && reasons["SuccessfulDelete"], nil
	})
}

// TestReplicaSetCreatesInBatches: the pods of a slow-start batch are made by one
// CreateBatch call, which the server commits in one transaction, so that seven replicas
// come in three revisions (batches of 1, 2 and 4), not seven.
func TestReplicaSetCreatesInBatches(t *testing.T) {
	cs, ctx := start(t)
	before, err := cs.Pods.List(ctx, "default", client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := cs.Pods.Watch(ctx, "default", client.WatchOptions{ListOptions: client.ListOptions{LabelSelector: "app=batched"},
		ResourceVersion: before.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	const n = 7
	if _, err := cs.ReplicaSets.Create(ctx, newRS("batched", n)); err != nil {
		t.Fatal(err)
	}
	revisions := map[string]int{}
	for added := 0; added < n; {
		evs, err := w.Next()
		if err != nil {
			t.Fatalf("watch pods: %v (%d created)", err, added)
		}
		for _, ev := range evs {
			if ev.Type == client.Added {
				revisions[ev.ResourceVersion]++
				added++
			}
		}
	}
	if len(revisions) != 3 {
		t.Fatalf("%d pods created in %d revisions (pods per revision: %v); want 3 (batches of 1, 2, 4)", n, len(revisions), revisions)
	}
}

// A sync claims from the ReplicaSet's own pods and its namespace's orphans only (the
// pod cache's owner and orphan indexes), not from every pod of the namespace: a pod
// another controller controls, or one of another namespace, is not read.
func TestCandidatesAreOwnPodsAndOrphans(t *testing.T) {
	cs := newClientset(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	f := cache.NewFactory(cs, hclog.NewNullLogger())
	ctrl, err := New(cs, f, record.New(cs.Events, record.Config{Component: "replicaset-controller"}), DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.Namespaces.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "other"}}); err != nil {
		t.Fatal(err)
	}
	mine, err := cs.ReplicaSets.Create(ctx, newRS("mine", 0))
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := cs.ReplicaSets.Create(ctx, newRS("theirs", 0))
	if err != nil {
		t.Fatal(err)
	}
	pod := func(name, ns string, refs ...metav1.OwnerReference) {
		t.Helper()
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": "web"}, OwnerReferences: refs},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
		if _, err := cs.Pods.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	plain := kinds.NewControllerRef(mine)
	plain.Controller = nil
	pod("controlled", "default", kinds.NewControllerRef(mine))
	pod("named", "default", plain) // an orphan naming it as a plain owner: once
	pod("orphan", "default")
	pod("theirs", "default", kinds.NewControllerRef(theirs))
	pod("elsewhere", "other")
	fctx, stop := context.WithCancel(ctx)
	f.Start(fctx)
	t.Cleanup(func() { stop(); f.Wait() })
	var got []string
	waitfor.Condition(t, 30*time.Second, "the candidates", func() (bool, string) {
		got = got[:0]
		for _, p := range ctrl.candidates(mine) {
			got = append(got, p.Name)
		}
		slices.Sort(got)
		return slices.Equal(got, []string{"controlled", "named", "orphan"}), fmt.Sprint(got)
	})
}

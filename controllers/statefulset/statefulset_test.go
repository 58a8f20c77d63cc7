package statefulset_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/client/record"
	"github.com/skiffhq/skiff/controllers/statefulset"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

func start(t *testing.T) (*client.Clientset, context.Context) {
	t.Helper()
	c := apicluster.Start(t, 1, apicluster.Options{})
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	cs := client.NewClientset(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	f := cache.NewFactory(cs, hclog.NewNullLogger())
	rec := record.New(cs.Events, record.Config{Component: "statefulset-controller"})
	ctrl, err := statefulset.New(cs, f, rec, statefulset.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	f.Start(ctx)
	done := make(chan struct{}, 2)
	go func() { rec.Run(ctx); done <- struct{}{} }()
	go func() { ctrl.Run(ctx); done <- struct{}{} }()
	t.Cleanup(func() { cancel(); f.Wait(); <-done; <-done })
	return cs, ctx
}

// pods lists the set's live pods as "name:image", by name.
func pods(ctx context.Context, cs *client.Clientset) (string, error) {
	l, err := cs.Pods.List(ctx, "default", client.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		return "", err
	}
	var out []string
	for _, p := range l.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p.Name+":"+p.Spec.Containers[0].Image)
		}
	}
	slices.Sort(out)
	return strings.Join(out, " "), nil
}

// ready marks a pod Running and Ready, as its kubelet would.
func ready(t *testing.T, ctx context.Context, cs *client.Clientset, name string) {
	t.Helper()
	waitfor.ConditionErr(t, 30*time.Second, name+" ready", func() (bool, error) {
		p, err := cs.Pods.Get(ctx, "default", name)
		if client.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		p.Status = corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{
			{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}}}
		_, err = cs.Pods.UpdateStatus(ctx, p)
		return err == nil, nil
	})
}

// update changes the set, again on a conflict with the controller's status writes.
func update(t *testing.T, ctx context.Context, cs *client.Clientset, change func(*appsv1.StatefulSet)) {
	t.Helper()
	waitfor.ConditionErr(t, 30*time.Second, "update the set", func() (bool, error) {
		cur, err := cs.StatefulSets.Get(ctx, "default", "web")
		if err != nil {
			return false, err
		}
		change(cur)
		_, err = cs.StatefulSets.Update(ctx, cur)
		if client.IsConflict(err) {
			return false, nil
		}
		return err == nil, err
	})
}

func TestStatefulSetInOrderWithClaims(t *testing.T) {
	cs, ctx := start(t)
	want := func(what, pods_ string) {
		t.Helper()
		waitfor.ConditionErr(t, 30*time.Second, what, func() (bool, error) {
			got, err := pods(ctx, cs)
			return got == pods_, err
		})
	}
	lbl := map[string]string{"app": "web"}
	set := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}, Spec: appsv1.StatefulSetSpec{
		Replicas: new(int32(3)), ServiceName: "web", Selector: &metav1.LabelSelector{MatchLabels: lbl},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbl}, Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "c", Image: "web:1"}}}},
		VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"}, Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}},
		PersistentVolumeClaimRetentionPolicy: &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
			WhenDeleted: appsv1.RetainPersistentVolumeClaimRetentionPolicyType, WhenScaled: appsv1.DeletePersistentVolumeClaimRetentionPolicyType}}}
	if _, err := cs.StatefulSets.Create(ctx, set); err != nil {
		t.Fatal(err)
	}
	// In order: each pod is made only once the one before is Running and Ready.
	want("web-0 alone", "web-0:web:1")
	p0, err := cs.Pods.Get(ctx, "default", "web-0")
	if err != nil {
		t.Fatal(err)
	}
	if p0.Spec.Hostname != "web-0" || p0.Spec.Subdomain != "web" || p0.Labels[statefulset.PodNameLabel] != "web-0" ||
		p0.Labels[statefulset.PodIndexLabel] != "0" || len(p0.Spec.Volumes) != 1 || p0.Spec.Volumes[0].PersistentVolumeClaim.ClaimName != "data-web-0" {
		t.Fatalf("web-0's identity or volume: %+v %+v", p0.Labels, p0.Spec)
	}
	if _, err := cs.PersistentVolumeClaims.Get(ctx, "default", "data-web-0"); err != nil {
		t.Fatalf("web-0's claim: %v", err)
	}
	ready(t, ctx, cs, "web-0")
	want("web-1 after web-0 is ready", "web-0:web:1 web-1:web:1")
	ready(t, ctx, cs, "web-1")
	want("web-2 after web-1 is ready", "web-0:web:1 web-1:web:1 web-2:web:1")
	ready(t, ctx, cs, "web-2")

	// A pod deleted comes back with the same name and the same claim.
	old, _ := cs.Pods.Get(ctx, "default", "web-1")
	if _, err := cs.Pods.Delete(ctx, "default", "web-1", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitfor.ConditionErr(t, 30*time.Second, "web-1 made again", func() (bool, error) {
		p, err := cs.Pods.Get(ctx, "default", "web-1")
		if client.IsNotFound(err) {
			return false, nil
		}
		return err == nil && p.UID != old.UID && p.Spec.Volumes[0].PersistentVolumeClaim.ClaimName == "data-web-1", err
	})
	ready(t, ctx, cs, "web-1")

	// A rolling update with a partition of 2 updates web-2 only.
	update(t, ctx, cs, func(cur *appsv1.StatefulSet) {
		cur.Spec.Template.Spec.Containers[0].Image = "web:2"
		cur.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{Partition: new(int32(2))}
	})
	want("web-2 updated", "web-0:web:1 web-1:web:1 web-2:web:2")
	ready(t, ctx, cs, "web-2")
	// Partition 0: the others follow, highest first.
	update(t, ctx, cs, func(cur *appsv1.StatefulSet) {
		cur.Spec.UpdateStrategy.RollingUpdate.Partition = new(int32(0))
	})
	want("web-1 updated", "web-0:web:1 web-1:web:2 web-2:web:2")
	ready(t, ctx, cs, "web-1")
	want("web-0 updated", "web-0:web:2 web-1:web:2 web-2:web:2")
	ready(t, ctx, cs, "web-0")
	waitfor.ConditionErr(t, 30*time.Second, "the update revision current", func() (bool, error) {
		s, err := cs.StatefulSets.Get(ctx, "default", "web")
		st := s.Status
		return st.CurrentRevision == st.UpdateRevision && st.UpdatedReplicas == 3 && st.ReadyReplicas == 3 && st.CurrentReplicas == 3, err
	})

	// Scaling down removes the highest ordinal first, and the next only once it is gone
	// (a finalizer holds each pod while the test looks); whenScaled Delete gives the
	// claims of the pods scaled away to them (the garbage collector deletes them with the
	// pod).
	hold := func(name string, on bool) {
		t.Helper()
		waitfor.ConditionErr(t, 30*time.Second, "finalizer of "+name, func() (bool, error) {
			p, err := cs.Pods.Get(ctx, "default", name)
			if err != nil {
				return false, err
			}
			p.Finalizers = nil
			if on {
				p.Finalizers = []string{"test.skiff.dev/hold"}
			}
			_, err = cs.Pods.Update(ctx, p)
			return err == nil, nil
		})
	}
	hold("web-1", true)
	hold("web-2", true)
	update(t, ctx, cs, func(cur *appsv1.StatefulSet) {
		cur.Spec.Replicas = new(int32(1))
	})
	want("web-2 terminating", "web-0:web:2 web-1:web:2")
	if p1, _ := cs.Pods.Get(ctx, "default", "web-1"); p1.DeletionTimestamp != nil {
		t.Fatal("web-1 deleted while web-2 was still there")
	}
	hold("web-2", false)
	want("web-1 terminating once web-2 is gone", "web-0:web:2")
	hold("web-1", false)
	for _, name := range []string{"data-web-1", "data-web-2"} {
		c, err := cs.PersistentVolumeClaims.Get(ctx, "default", name)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.OwnerReferences) != 1 || c.OwnerReferences[0].Kind != "Pod" {
			t.Errorf("claim %s: owners %+v, want its pod", name, c.OwnerReferences)
		}
	}
	c0, _ := cs.PersistentVolumeClaims.Get(ctx, "default", "data-web-0")
	if len(c0.OwnerReferences) != 0 {
		t.Errorf("claim data-web-0 of a pod in range: owners %+v", c0.OwnerReferences)
	}
}

package namespace

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/client/record"
	"github.com/skiffhq/skiff/controllers/deployment"
	"github.com/skiffhq/skiff/controllers/replicaset"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/kubelet"
	"github.com/skiffhq/skiff/kubelet/sim"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

// cluster is an API server with the Deployment, ReplicaSet and namespace controllers, and
// a kubelet on the simulated runtime for node w1.
type cluster struct {
	cs  *client.Clientset
	ctx context.Context
}

func start(t *testing.T) cluster {
	c := apicluster.Start(t, 1, apicluster.Options{})
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cs := client.NewClientset(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
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
	cfg := DefaultConfig()
	cfg.FinalizerEstimate = 2 * time.Second
	nc, err := New(cs, f, cfg)
	if err != nil {
		t.Fatal(err)
	}
	kcfg := kubelet.DefaultConfig()
	kcfg.NodeName, kcfg.NodeIP, kcfg.RelistPeriod = "w1", "127.0.0.1", 50*time.Millisecond
	kcfg.RootDir = t.TempDir() // not the host's /var/lib/skiff/kubelet
	k, err := kubelet.New(cs, sim.New(sim.Config{}), kcfg)
	if err != nil {
		t.Fatal(err)
	}
	f.Start(ctx)
	var wg sync.WaitGroup
	for _, run := range []func(context.Context) error{dc.Run, rc.Run, nc.Run} {
		wg.Go(func() { run(ctx) })
	}
	wg.Go(func() { rec.Run(ctx) })
	wg.Go(func() { k.Run(ctx) })
	t.Cleanup(func() { cancel(); f.Wait(); wg.Wait(); conn.Close() })
	return cluster{cs, ctx}
}

func (c cluster) namespace(t *testing.T, name string) {
	t.Helper()
	if _, err := c.cs.Namespaces.Create(c.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
}

// TestNamespaceDeletionFinishes: a namespace holding a Deployment whose pods run on a
// node, and a ConfigMap, is emptied and goes; its pods were stopped by their kubelet.
func TestNamespaceDeletionFinishes(t *testing.T) {
	c := start(t)
	c.namespace(t, "team")
	lbl := map[string]string{"app": "web"}
	if _, err := c.cs.Deployments.Create(c.ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "team"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](2), Selector: &metav1.LabelSelector{MatchLabels: lbl},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbl},
				Spec: corev1.PodSpec{NodeName: "w1", Containers: []corev1.Container{{Name: "web", Image: "busybox:1"}}}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.cs.ConfigMaps.Create(c.ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: "team"},
		Data: map[string]string{"a": "1"}}); err != nil {
		t.Fatal(err)
	}
	waitfor.Condition(t, time.Minute, "two pods running on w1", func() (bool, string) {
		l, err := c.cs.Pods.List(c.ctx, "team", client.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		running := 0
		for _, p := range l.Items {
			if p.Status.Phase == corev1.PodRunning {
				running++
			}
		}
		return running == 2, fmt.Sprintf("%d of %d pods running", running, len(l.Items))
	})

	// In the foreground, as `skiffctl delete namespace team --cascade=foreground` does.
	if _, err := c.cs.Namespaces.Delete(c.ctx, "", "team", client.DeleteOptions{PropagationPolicy: "Foreground"}); err != nil {
		t.Fatal(err)
	}
	waitfor.Condition(t, time.Minute, "namespace team gone", func() (bool, string) {
		ns, err := c.cs.Namespaces.Get(c.ctx, "", "team")
		if client.IsNotFound(err) {
			return true, ""
		}
		if err != nil {
			return false, err.Error()
		}
		return false, fmt.Sprintf("%s: %+v", ns.Status.Phase, ns.Status.Conditions)
	})
	for _, info := range kinds.All() {
		if !info.Namespaced {
			continue
		}
		l, err := client.ForKind(c.cs.Conn, info).List(c.ctx, "team", client.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Items) > 0 {
			t.Errorf("%d %s left in the deleted namespace", len(l.Items), info.Plural)
		}
	}
	// default and kube-system cannot be deleted at all (the controller would empty them).
	for _, ns := range []string{"default", "kube-system"} {
		if err := c.cs.Conn.EnsureNamespace(c.ctx, ns); err != nil {
			t.Fatal(err)
		}
		if _, err := c.cs.Namespaces.Delete(c.ctx, "", ns, client.DeleteOptions{}); !client.IsForbidden(err) ||
			!strings.Contains(err.Error(), "this namespace may not be deleted") {
			t.Fatalf("deleting namespace %s: %v", ns, err)
		}
	}
}

// TestNamespaceHeldByAFinalizer: an object held by a finalizer nobody removes keeps its
// namespace Terminating, and the namespace's conditions say which kind and which
// finalizer; once the finalizer goes, so does the namespace.
func TestNamespaceHeldByAFinalizer(t *testing.T) {
	c := start(t)
	c.namespace(t, "held")
	if _, err := c.cs.ConfigMaps.Create(c.ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "keep", Namespace: "held",
		Finalizers: []string{"example.com/hold"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.cs.ConfigMaps.Create(c.ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: "held"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.cs.Namespaces.Delete(c.ctx, "", "held", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	want := map[corev1.NamespaceConditionType]corev1.NamespaceCondition{
		corev1.NamespaceDeletionDiscoveryFailure: {Status: corev1.ConditionFalse, Reason: "ResourcesDiscovered"},
		corev1.NamespaceDeletionGVParsingFailure: {Status: corev1.ConditionFalse, Reason: "ParsedGroupVersions"},
		corev1.NamespaceDeletionContentFailure:   {Status: corev1.ConditionFalse, Reason: "ContentDeleted"},
		corev1.NamespaceContentRemaining: {Status: corev1.ConditionTrue, Reason: "SomeResourcesRemain",
			Message: "Some resources are remaining: configmaps. has 1 resource instances"},
		corev1.NamespaceFinalizersRemaining: {Status: corev1.ConditionTrue, Reason: "SomeFinalizersRemain",
			Message: "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"},
	}
	waitfor.Condition(t, time.Minute, "namespace held Terminating, its conditions naming what holds it", func() (bool, string) {
		ns, err := c.cs.Namespaces.Get(c.ctx, "", "held")
		if err != nil {
			return false, err.Error()
		}
		if ns.Status.Phase != corev1.NamespaceTerminating || len(ns.Status.Conditions) != len(want) {
			return false, fmt.Sprintf("%s %+v", ns.Status.Phase, ns.Status.Conditions)
		}
		for _, got := range ns.Status.Conditions {
			w, ok := want[got.Type]
			if !ok || got.Status != w.Status || got.Reason != w.Reason || w.Message != "" && got.Message != w.Message {
				return false, fmt.Sprintf("%+v", ns.Status.Conditions)
			}
		}
		return true, ""
	})
	if _, err := c.cs.ConfigMaps.Get(c.ctx, "held", "other"); !client.IsNotFound(err) {
		t.Fatalf("the other ConfigMap was not deleted: %v", err)
	}
	cm, err := c.cs.ConfigMaps.Get(c.ctx, "held", "keep")
	if err != nil || cm.DeletionTimestamp == nil {
		t.Fatalf("the held ConfigMap: %v %v", cm, err)
	}

	cm.Finalizers = nil
	if _, err := c.cs.ConfigMaps.Update(c.ctx, cm); err != nil {
		t.Fatal(err)
	}
	waitfor.ConditionErr(t, time.Minute, "namespace held gone", func() (bool, error) {
		_, err := c.cs.Namespaces.Get(c.ctx, "", "held")
		if client.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
}

// TestNamespacePodsGoFirst: the pods of a namespace being deleted go before its other
// objects (Kubernetes' OrderedNamespaceDeletion): while a pod held by a finalizer
// remains, the ConfigMap beside it is kept, and the conditions name the pod; once the
// pod goes, so do the ConfigMap and the namespace.
func TestNamespacePodsGoFirst(t *testing.T) {
	c := start(t)
	c.namespace(t, "ordered")
	pod, err := c.cs.Pods.Create(c.ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "test-pod", Namespace: "ordered",
		Finalizers: []string{"e2e.example.com/finalizer"}},
		Spec: corev1.PodSpec{NodeName: "w1", Containers: []corev1.Container{{Name: "c", Image: "pause:3"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.cs.ConfigMaps.Create(c.ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: "ordered"},
		Data: map[string]string{"key": "value"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.cs.Namespaces.Delete(c.ctx, "", "ordered", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// The controller has looked at the namespace more than once (FinalizerEstimate is
	// 2 s) when the pod, stopped by its kubelet, is held by its finalizer alone.
	waitfor.Condition(t, time.Minute, "the pod held by its finalizer, named in the namespace's conditions", func() (bool, string) {
		ns, err := c.cs.Namespaces.Get(c.ctx, "", "ordered")
		if err != nil {
			return false, err.Error()
		}
		for _, cond := range ns.Status.Conditions {
			if cond.Type == corev1.NamespaceFinalizersRemaining && cond.Status == corev1.ConditionTrue &&
				cond.Message == "Some content in the namespace has finalizers remaining: e2e.example.com/finalizer in 1 resource instances" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%s %+v", ns.Status.Phase, ns.Status.Conditions)
	})
	if pod, err = c.cs.Pods.Get(c.ctx, "ordered", "test-pod"); err != nil || pod.DeletionTimestamp == nil {
		t.Fatalf("the pod is not being deleted: %v %v", pod, err)
	}
	if _, err := c.cs.ConfigMaps.Get(c.ctx, "ordered", "settings"); err != nil {
		t.Fatalf("the ConfigMap went before the pod: %v", err)
	}

	pod.Finalizers = nil
	if _, err := c.cs.Pods.Update(c.ctx, pod); err != nil {
		t.Fatal(err)
	}
	waitfor.ConditionErr(t, time.Minute, "namespace ordered gone", func() (bool, error) {
		_, err := c.cs.Namespaces.Get(c.ctx, "", "ordered")
		if client.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
}

// TestSetConditions: a condition's transition time moves only when its status does.
func TestSetConditions(t *testing.T) {
	t0, t1 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC), time.Date(2026, 12, 5, 10, 1, 0, 0, time.UTC)
	ns := &corev1.Namespace{}
	remain := []corev1.NamespaceCondition{{Type: corev1.NamespaceContentRemaining, Status: corev1.ConditionTrue, Reason: "SomeResourcesRemain", Message: "a"}}
	if !setConditions(ns, remain, t0) || len(ns.Status.Conditions) != 5 {
		t.Fatalf("first set: %+v", ns.Status.Conditions)
	}
	if setConditions(ns, remain, t1) {
		t.Fatal("setting the same conditions changed them")
	}
	remain[0].Message = "b"
	if !setConditions(ns, remain, t1) {
		t.Fatal("a new message is a change")
	}
	got := ns.Status.Conditions[3]
	if got.Type != corev1.NamespaceContentRemaining || got.Message != "b" || !got.LastTransitionTime.Time.Equal(t0) {
		t.Fatalf("message change: %+v", got)
	}
	if !setConditions(ns, nil, t1) {
		t.Fatal("clearing is a change")
	}
	got = ns.Status.Conditions[3]
	if got.Status != corev1.ConditionFalse || got.Reason != "ContentRemoved" || !got.LastTransitionTime.Time.Equal(t1) {
		t.Fatalf("cleared: %+v", got)
	}
}

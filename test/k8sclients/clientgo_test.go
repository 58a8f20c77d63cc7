package k8sclients

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	autoscalingv1ac "k8s.io/client-go/applyconfigurations/autoscaling/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/skiffhq/skiff/pki"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

// clientset is client-go's typed client of one API server, as the admin.
func clientset(t testing.TB, dir, addr string) *kubernetes.Clientset {
	t.Helper()
	cfg := &rest.Config{Host: "https://" + addr, UserAgent: "k8sclients-test", QPS: -1, Timeout: 30 * time.Second,
		TLSClientConfig: rest.TLSClientConfig{CAFile: filepath.Join(dir, pki.CACertFile),
			CertFile: filepath.Join(dir, "admin.crt"), KeyFile: filepath.Join(dir, "admin.key")}}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func deployment(name string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx:1.25"}}}}}}
}

func pod(name string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "informer"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox:1.36"}}}}
}

// TestTypedClientConflict: client-go's typed client creates, reads and updates; an
// update from a stale resourceVersion is a conflict apierrors.IsConflict recognises, and
// a missing object IsNotFound.
func TestTypedClientConflict(t *testing.T) {
	dir := apicluster.Certs(t)
	c := apicluster.Start(t, 1, apicluster.Options{Certs: dir})
	cs := clientset(t, dir, c.Addr(0))
	ctx := ctxT(t, time.Minute)
	deps := cs.AppsV1().Deployments("default")
	created, err := deps.Create(ctx, deployment("web", 1), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a, b := created.DeepCopy(), created.DeepCopy()
	a.Spec.Replicas = ptr(int32(2))
	if _, err := deps.Update(ctx, a, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	b.Spec.Replicas = ptr(int32(3))
	_, err = deps.Update(ctx, b, metav1.UpdateOptions{})
	if !apierrors.IsConflict(err) {
		t.Fatalf("stale update: %v, want a conflict", err)
	}
	if _, err := deps.Create(ctx, deployment("web", 1), metav1.CreateOptions{}); !apierrors.IsAlreadyExists(err) {
		t.Errorf("create twice: %v", err)
	}
	if _, err := deps.Get(ctx, "nope", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("get missing: %v", err)
	}
	bad := deployment("bad", -1)
	if _, err := deps.Create(ctx, bad, metav1.CreateOptions{}); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.replicas") {
		t.Errorf("invalid create: %v", err)
	}
	scale, err := deps.GetScale(ctx, "web", metav1.GetOptions{})
	if err != nil || scale.Spec.Replicas != 2 {
		t.Fatalf("get scale: %+v %v", scale, err)
	}
	scale.Spec.Replicas = 5
	if _, err := deps.UpdateScale(ctx, "web", scale, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update scale: %v", err)
	}
	if got, _ := deps.Get(ctx, "web", metav1.GetOptions{}); *got.Spec.Replicas != 5 {
		t.Errorf("after scale: %d replicas", *got.Spec.Replicas)
	}
}

// TestTypedClientApplyScale: client-go's ApplyScale (a server-side apply to the scale
// subresource) of a Deployment another manager applied replicas to conflicts until
// forced; then the Deployment's replicas are the Scale's and its managedFields give them
// to the Scale's manager, with subresource scale.
func TestTypedClientApplyScale(t *testing.T) {
	dir := apicluster.Certs(t)
	c := apicluster.Start(t, 1, apicluster.Options{Certs: dir})
	cs := clientset(t, dir, c.Addr(0))
	ctx := ctxT(t, time.Minute)
	deps := cs.AppsV1().Deployments("default")
	labels := map[string]string{"app": "web"}
	dep := appsv1ac.Deployment("web", "default").WithSpec(appsv1ac.DeploymentSpec().WithReplicas(1).
		WithSelector(metav1ac.LabelSelector().WithMatchLabels(labels)).
		WithTemplate(corev1ac.PodTemplateSpec().WithLabels(labels).
			WithSpec(corev1ac.PodSpec().WithContainers(corev1ac.Container().WithName("web").WithImage("nginx:1.25")))))
	if _, err := deps.Apply(ctx, dep, metav1.ApplyOptions{FieldManager: "deployer"}); err != nil {
		t.Fatal(err)
	}
	scale := autoscalingv1ac.Scale().WithSpec(autoscalingv1ac.ScaleSpec().WithReplicas(4))
	_, err := deps.ApplyScale(ctx, "web", scale, metav1.ApplyOptions{FieldManager: "autoscaler"})
	if !apierrors.IsConflict(err) || !strings.Contains(err.Error(), `conflict with "deployer"`) || !strings.Contains(err.Error(), ".spec.replicas") {
		t.Fatalf("an unforced ApplyScale: %v, want a conflict with deployer's .spec.replicas", err)
	}
	got, err := deps.ApplyScale(ctx, "web", scale, metav1.ApplyOptions{FieldManager: "autoscaler", Force: true})
	if err != nil || got.Spec.Replicas != 4 {
		t.Fatalf("a forced ApplyScale: %+v %v", got, err)
	}
	d, err := deps.Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var entry string
	for _, e := range d.ManagedFields {
		if e.Manager == "autoscaler" {
			entry = fmt.Sprintf("%s %s %s %s", e.Operation, e.APIVersion, e.Subresource, e.FieldsV1.Raw)
		}
	}
	if *d.Spec.Replicas != 4 || entry != `Apply apps/v1 scale {"f:spec":{"f:replicas":{}}}` {
		t.Fatalf("the deployment after ApplyScale: %d replicas, the autoscaler's entry %q", *d.Spec.Replicas, entry)
	}
}

// TestWatchResumesFromBookmark: a watch that allows bookmarks gets one while idle; a new
// watch from its resourceVersion sees exactly what changed after it.
func TestWatchResumesFromBookmark(t *testing.T) {
	dir := apicluster.Certs(t)
	c := apicluster.Start(t, 1, apicluster.Options{Certs: dir})
	cs := clientset(t, dir, c.Addr(0))
	ctx := ctxT(t, time.Minute)
	cms := cs.CoreV1().ConfigMaps("default")
	first, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "before"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: first.ResourceVersion, AllowWatchBookmarks: true})
	if err != nil {
		t.Fatal(err)
	}
	var bookmark string
	for ev := range w.ResultChan() {
		if ev.Type == watch.Bookmark {
			bookmark = ev.Object.(*corev1.ConfigMap).ResourceVersion
			break
		}
	}
	w.Stop()
	if bookmark == "" {
		t.Fatal("no bookmark")
	}
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "after"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	w, err = cms.Watch(ctx, metav1.ListOptions{ResourceVersion: bookmark})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	ev := <-w.ResultChan()
	if cm, ok := ev.Object.(*corev1.ConfigMap); ev.Type != watch.Added || !ok || cm.Name != "after" {
		t.Fatalf("resumed watch's first event = %s %+v", ev.Type, ev.Object)
	}
}

// TestInformerThroughLeaderLoss: SharedInformers on pods and deployments, connected to
// the leader, keep a correct cache while the leader stops, the others carry on (writes
// go to them) and it comes back: at the end their caches equal a list.
func TestInformerThroughLeaderLoss(t *testing.T) {
	dir := apicluster.Certs(t)
	c := apicluster.Start(t, 3, apicluster.Options{Certs: dir})
	leader := c.Leader()
	other := (leader + 1) % 3
	ctx := ctxT(t, 3*time.Minute)
	watched := clientset(t, dir, c.Addr(leader))
	writer := clientset(t, dir, c.Addr(other))
	factory := informers.NewSharedInformerFactory(watched, 0)
	pods, deps := factory.Core().V1().Pods().Informer(), factory.Apps().V1().Deployments().Informer()
	stop := make(chan struct{})
	defer close(stop)
	factory.Start(stop)
	if !cache.WaitForCacheSync(ctx.Done(), pods.HasSynced, deps.HasSynced) {
		t.Fatal("informers never synced")
	}
	create := func(from, to int) {
		for i := from; i < to; i++ {
			if _, err := writer.CoreV1().Pods("default").Create(ctx, pod(fmt.Sprintf("p%d", i)), metav1.CreateOptions{}); err != nil {
				t.Fatalf("create p%d: %v", i, err)
			}
		}
	}
	create(0, 10)
	if _, err := writer.AppsV1().Deployments("default").Create(ctx, deployment("d1", 1), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c.Stop(leader)
	waitfor.Condition(t, time.Minute, "a new leader", func() (bool, string) {
		_, err := writer.CoreV1().Pods("default").Create(ctx, pod("p10"), metav1.CreateOptions{})
		return err == nil || apierrors.IsAlreadyExists(err), fmt.Sprint(err)
	})
	create(11, 20)
	if err := writer.CoreV1().Pods("default").Delete(ctx, "p3", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := writer.AppsV1().Deployments("default").Create(ctx, deployment("d2", 1), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c.Restart(leader)
	names := func(objs []any) string {
		var out []string
		for _, o := range objs {
			m := o.(metav1.Object)
			out = append(out, m.GetName()+"@"+m.GetResourceVersion())
		}
		sort.Strings(out)
		return strings.Join(out, ",")
	}
	waitfor.Condition(t, 2*time.Minute, "the informers' caches equal a list", func() (bool, string) {
		pl, err := writer.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		dl, err := writer.AppsV1().Deployments("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		var wantPods, wantDeps []any
		for i := range pl.Items {
			wantPods = append(wantPods, &pl.Items[i])
		}
		for i := range dl.Items {
			wantDeps = append(wantDeps, &dl.Items[i])
		}
		gotP, gotD := names(pods.GetStore().List()), names(deps.GetStore().List())
		return gotP == names(wantPods) && gotD == names(wantDeps) && len(wantPods) == 19,
			fmt.Sprintf("pods: cache %s, list %s; deployments: cache %s, list %s", gotP, names(wantPods), gotD, names(wantDeps))
	})
}

func ptr[T any](v T) *T { return &v }

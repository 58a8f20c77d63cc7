package resourcequota

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

func rl(kv ...string) corev1.ResourceList {
	out := corev1.ResourceList{}
	for i := 0; i < len(kv); i += 2 {
		out[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return out
}

// TestUsage: the controller copies spec.hard to status.hard and computes status.used
// from what is stored (objects created before the quota too: they were never charged),
// and gives back what goes: a deleted pod at once, a deleted ConfigMap at the resync.
func TestUsage(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cs := client.NewClientset(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	for i := range 3 {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprint("p", i), Namespace: "default"},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox",
				Resources: corev1.ResourceRequirements{Requests: rl("cpu", "250m", "memory", "64Mi"), Limits: rl("memory", "128Mi")}}}}}
		if i == 2 {
			p.Status.Phase = corev1.PodSucceeded // finished: uses nothing
		}
		p, err := cs.Pods.Create(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			p.Status.Phase = corev1.PodSucceeded
			if _, err := cs.Pods.UpdateStatus(ctx, p); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := cs.Pods.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "best-effort", Namespace: "default"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := cs.ConfigMaps.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprint("cm", i), Namespace: "default"}}); err != nil {
			t.Fatal(err)
		}
	}
	class := "fast"
	if _, err := cs.PersistentVolumeClaims.Create(ctx, &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: "default"},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, StorageClassName: &class,
			Resources: corev1.VolumeResourceRequirements{Requests: rl("storage", "3Gi")}}}); err != nil {
		t.Fatal(err)
	}
	hard := rl("pods", "10", "requests.cpu", "4", "memory", "1Gi", "limits.memory", "2Gi", "count/configmaps", "5", "count/deployments.apps", "2",
		"persistentvolumeclaims", "4", "requests.storage", "100Gi", "fast.storageclass.storage.k8s.io/requests.storage", "10Gi")
	if _, err := cs.ResourceQuotas.Create(ctx, &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "q", Namespace: "default"},
		Spec: corev1.ResourceQuotaSpec{Hard: hard}}); err != nil {
		t.Fatal(err)
	}
	// A scoped quota counts only the pods of its scope.
	if _, err := cs.ResourceQuotas.Create(ctx, &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "be", Namespace: "default"},
		Spec: corev1.ResourceQuotaSpec{Hard: rl("pods", "5"), Scopes: []corev1.ResourceQuotaScope{corev1.ResourceQuotaScopeBestEffort}}}); err != nil {
		t.Fatal(err)
	}

	f := cache.NewFactory(cs, hclog.NewNullLogger())
	cfg := DefaultConfig()
	cfg.ResyncPeriod = 500 * time.Millisecond
	ctrl, err := New(cs, f, cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.Start(ctx)
	go ctrl.Run(ctx)

	quotaStatus := func(name string, hard, want corev1.ResourceList) func() (bool, string) {
		return func() (bool, string) {
			q, err := cs.ResourceQuotas.Get(ctx, "default", name)
			if err != nil {
				return false, err.Error()
			}
			return equality.Semantic.DeepEqual(q.Status.Hard, hard) && equality.Semantic.DeepEqual(q.Status.Used, want),
				fmt.Sprintf("hard %v, used %v", q.Status.Hard, q.Status.Used)
		}
	}
	status := func(want corev1.ResourceList) func() (bool, string) { return quotaStatus("q", hard, want) }
	waitfor.Condition(t, time.Minute, "the scoped quota's status", quotaStatus("be", rl("pods", "5"), rl("pods", "1")))
	waitfor.Condition(t, time.Minute, "the quota's status", status(rl("pods", "3", "requests.cpu", "500m", "memory", "128Mi",
		"limits.memory", "256Mi", "count/configmaps", "2", "count/deployments.apps", "0",
		"persistentvolumeclaims", "1", "requests.storage", "3Gi", "fast.storageclass.storage.k8s.io/requests.storage", "3Gi")))

	if _, err := cs.Pods.Delete(ctx, "default", "p0", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.ConfigMaps.Delete(ctx, "default", "cm0", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.PersistentVolumeClaims.Delete(ctx, "default", "data", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitfor.Condition(t, time.Minute, "the usage given back", status(rl("pods", "2", "requests.cpu", "250m", "memory", "64Mi",
		"limits.memory", "128Mi", "count/configmaps", "1", "count/deployments.apps", "0",
		"persistentvolumeclaims", "0", "requests.storage", "0", "fast.storageclass.storage.k8s.io/requests.storage", "0")))
}

func TestConfigValidate(t *testing.T) {
	cfg := Config{}
	if err := cfg.Validate(); err == nil {
		t.Fatal("an empty config is valid")
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestReplenishOnDelete: a deleted object of a kind the controller-manager watches (a
// Deployment, a Service), or of those the controller watches itself (a Secret, a
// ConfigMap), gives back what it used at once, not at the next resync.
func TestReplenishOnDelete(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cs := client.NewClientset(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	hard := rl("count/deployments.apps", "3", "count/configmaps", "3")
	if _, err := cs.ResourceQuotas.Create(ctx, &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "q", Namespace: "default"},
		Spec: corev1.ResourceQuotaSpec{Hard: hard}}); err != nil {
		t.Fatal(err)
	}
	f := cache.NewFactory(cs, hclog.NewNullLogger())
	cfg := DefaultConfig()
	cfg.ResyncPeriod = time.Hour // longer than the test: only a delete's replenishment can give back
	ctrl, err := New(cs, f, cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.Start(ctx)
	go ctrl.Run(ctx)
	used := func(want corev1.ResourceList) func() (bool, string) {
		return func() (bool, string) {
			q, err := cs.ResourceQuotas.Get(ctx, "default", "q")
			if err != nil {
				return false, err.Error()
			}
			return equality.Semantic.DeepEqual(q.Status.Used, want), fmt.Sprintf("used %v", q.Status.Used)
		}
	}
	waitfor.Condition(t, time.Minute, "the quota synced", used(rl("count/deployments.apps", "0", "count/configmaps", "0")))
	lbl := map[string]string{"app": "web"}
	if _, err := cs.Deployments.Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: lbl}, Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: lbl}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}}}); err != nil {
		t.Fatal(err)
	}
	waitfor.Condition(t, time.Minute, "the deployment charged", used(rl("count/deployments.apps", "1", "count/configmaps", "0")))
	if _, err := cs.Deployments.Delete(ctx, "default", "web", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitfor.Condition(t, time.Minute, "the deployment given back", used(rl("count/deployments.apps", "0", "count/configmaps", "0")))

	// The other kinds' quota: a Service, a Secret, a ConfigMap, in a namespace of their
	// own (default has the kubernetes Service).
	if _, err := cs.Namespaces.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "others"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.ResourceQuotas.Create(ctx, &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "others", Namespace: "others"},
		Spec: corev1.ResourceQuotaSpec{Hard: rl("services", "3", "secrets", "3", "configmaps", "3")}}); err != nil {
		t.Fatal(err)
	}
	others := func(svcs, secrets, cms string) func() (bool, string) {
		return func() (bool, string) {
			q, err := cs.ResourceQuotas.Get(ctx, "others", "others")
			if err != nil {
				return false, err.Error()
			}
			want := rl("services", svcs, "secrets", secrets, "configmaps", cms)
			return equality.Semantic.DeepEqual(q.Status.Used, want), fmt.Sprintf("used %v", q.Status.Used)
		}
	}
	waitfor.Condition(t, time.Minute, "the other quota synced", others("0", "0", "0"))
	if _, err := cs.Services.Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "svc", Namespace: "others"},
		Spec: corev1.ServiceSpec{Selector: lbl, Ports: []corev1.ServicePort{{Port: 80}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.Secrets.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "others"}, StringData: map[string]string{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.ConfigMaps.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm", Namespace: "others"}}); err != nil {
		t.Fatal(err)
	}
	waitfor.Condition(t, time.Minute, "the three charged", others("1", "1", "1"))
	if _, err := cs.Services.Delete(ctx, "others", "svc", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.Secrets.Delete(ctx, "others", "s", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.ConfigMaps.Delete(ctx, "others", "cm", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitfor.Condition(t, time.Minute, "the three given back", others("0", "0", "0"))
}

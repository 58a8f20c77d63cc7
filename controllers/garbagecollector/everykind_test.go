package garbagecollector

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

func ownedBy(o kinds.Object) []metav1.OwnerReference {
	in := kinds.Of(o)
	return []metav1.OwnerReference{{APIVersion: in.APIVersion, Kind: in.Kind, Name: o.GetName(), UID: o.GetUID(), BlockOwnerDeletion: ptr.To(true)}}
}

func configMap(t *testing.T, ctx context.Context, cs *client.Clientset, ns, name string, owners []metav1.OwnerReference) *corev1.ConfigMap {
	t.Helper()
	cm, err := cs.ConfigMaps.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, OwnerReferences: owners},
		Data: map[string]string{"k": "v"}})
	if err != nil {
		t.Fatalf("create configmap %s: %v", name, err)
	}
	return cm
}

// TestEveryKindBackground: a ConfigMap and a Secret owned by a Deployment, kinds no
// controller caches, are collected when it is deleted (before, they were never).
func TestEveryKindBackground(t *testing.T) {
	cs, ctx := setup(t)
	d, _, _ := tree(t, ctx, cs, "web")
	configMap(t, ctx, cs, "default", "web-config", ownedBy(d))
	if _, err := cs.Secrets.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "web-secret", Namespace: "default", OwnerReferences: ownedBy(d)},
		StringData: map[string]string{"password": "x"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.Deployments.Delete(ctx, "default", "web", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitfor.ConditionErr(t, 30*time.Second, "configmap collected", gone(ctx, cs.ConfigMaps, "web-config"))
	waitfor.ConditionErr(t, 30*time.Second, "secret collected", gone(ctx, cs.Secrets, "web-secret"))
}

// TestEveryKindForeground: a ConfigMap deleted in the foreground waits for its
// dependents, a Pod and a ConfigMap that block it, and goes after them.
func TestEveryKindForeground(t *testing.T) {
	cs, ctx := setup(t)
	owner := configMap(t, ctx, cs, "default", "fg-owner", nil)
	configMap(t, ctx, cs, "default", "fg-dep", ownedBy(owner))
	if _, err := cs.Pods.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "fg-pod", Namespace: "default", OwnerReferences: ownedBy(owner)},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}); err != nil {
		t.Fatal(err)
	}
	o, err := cs.ConfigMaps.Delete(ctx, "default", "fg-owner", client.DeleteOptions{PropagationPolicy: "Foreground"})
	if err != nil {
		t.Fatal(err)
	}
	if o.DeletionTimestamp == nil {
		t.Fatal("foreground delete removed the owner at once")
	}
	waitfor.ConditionErr(t, 30*time.Second, "owner deleted", gone(ctx, cs.ConfigMaps, "fg-owner"))
	// It went last: its blocking dependents were gone before.
	if _, err := cs.ConfigMaps.Get(ctx, "default", "fg-dep"); !client.IsNotFound(err) {
		t.Fatalf("owner went before its configmap: %v", err)
	}
	if _, err := cs.Pods.Get(ctx, "default", "fg-pod"); !client.IsNotFound(err) {
		t.Fatalf("owner went before its pod: %v", err)
	}
}

// TestEveryKindOrphan: a ConfigMap deleted with propagationPolicy Orphan leaves its
// dependent Service, whose ownerReference is removed (before, the owner kept its orphan
// finalizer forever: no dependent the collector followed named it).
func TestEveryKindOrphan(t *testing.T) {
	cs, ctx := setup(t)
	owner := configMap(t, ctx, cs, "default", "or-owner", nil)
	if _, err := cs.Services.Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "or-svc", Namespace: "default", OwnerReferences: ownedBy(owner)},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.ConfigMaps.Delete(ctx, "default", "or-owner", client.DeleteOptions{PropagationPolicy: "Orphan"}); err != nil {
		t.Fatal(err)
	}
	waitfor.ConditionErr(t, 30*time.Second, "owner deleted once its service is orphaned", gone(ctx, cs.ConfigMaps, "or-owner"))
	svc, err := cs.Services.Get(ctx, "default", "or-svc")
	if err != nil {
		t.Fatalf("orphaned service deleted: %v", err)
	}
	if len(svc.OwnerReferences) != 0 {
		t.Fatalf("orphaned service still owned: %v", svc.OwnerReferences)
	}
	if svc.Spec.Ports[0].Port != 80 {
		t.Fatalf("orphaning changed the service's spec: %v", svc.Spec)
	}
}

// TestClusterScopedOwner: a ClusterRole owns a namespaced ConfigMap, which goes with it.
func TestClusterScopedOwner(t *testing.T) {
	cs, ctx := setup(t)
	roles := client.For[*rbacv1.ClusterRole](cs.Conn)
	role, err := roles.Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "owner-role"}})
	if err != nil {
		t.Fatal(err)
	}
	configMap(t, ctx, cs, "default", "of-role", ownedBy(role))
	if _, err := roles.Delete(ctx, "", "owner-role", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitfor.ConditionErr(t, 30*time.Second, "configmap owned by a clusterrole collected", gone(ctx, cs.ConfigMaps, "of-role"))
}

// TestOwnerInAnotherNamespace: a namespaced owner must be in its dependent's namespace.
// A ConfigMap naming one in another namespace has no owner there, so it is collected,
// and a cluster-scoped ClusterRole naming a ConfigMap is left alone; both get
// Kubernetes' OwnerRefInvalidNamespace event.
func TestOwnerInAnotherNamespace(t *testing.T) {
	cs, ctx := setup(t)
	if err := cs.Conn.EnsureNamespace(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	owner := configMap(t, ctx, cs, "other", "elsewhere", nil)
	configMap(t, ctx, cs, "default", "cross", ownedBy(owner))
	waitfor.ConditionErr(t, 30*time.Second, "configmap owned across namespaces collected", gone(ctx, cs.ConfigMaps, "cross"))
	if _, err := cs.ConfigMaps.Get(ctx, "other", "elsewhere"); err != nil {
		t.Fatalf("the owner in the other namespace: %v", err)
	}
	want := `ownerRef [v1/ConfigMap, namespace: default, name: elsewhere, uid: ` + string(owner.UID) + `] does not exist in namespace "default"`
	waitForEvent(t, ctx, cs, "cross", want)

	roles := client.For[*rbacv1.ClusterRole](cs.Conn)
	if _, err := roles.Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "owned-role", OwnerReferences: ownedBy(owner)}}); err != nil {
		t.Fatal(err)
	}
	want = `ownerRef [v1/ConfigMap, namespace: , name: elsewhere, uid: ` + string(owner.UID) + `] does not exist in namespace ""`
	waitForEvent(t, ctx, cs, "owned-role", want)
	if _, err := roles.Get(ctx, "", "owned-role"); err != nil {
		t.Fatalf("a cluster-scoped dependent of a namespaced kind was collected: %v", err)
	}
}

// waitForEvent waits for the OwnerRefInvalidNamespace event about the object named
// (events about cluster-scoped objects are in default).
func waitForEvent(t *testing.T, ctx context.Context, cs *client.Clientset, name, message string) {
	t.Helper()
	waitfor.Condition(t, 30*time.Second, "OwnerRefInvalidNamespace event about "+name, func() (bool, string) {
		l, err := cs.Events.List(ctx, "default", client.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, e := range l.Items {
			if e.InvolvedObject.Name == name {
				if e.Reason == "OwnerRefInvalidNamespace" && e.Type == corev1.EventTypeWarning && e.Message == message {
					return true, ""
				}
				seen = append(seen, e.Reason+": "+e.Message)
			}
		}
		return false, "events: " + strings.Join(seen, "; ")
	})
}

// TestAuthorizedAsControllerManager: in a cluster with TLS and RBAC, the collector as
// the controller-manager (its certificate) orphans a Service and a Role, kinds the
// built-in rules do not let it update: Kubernetes' system:controller:generic-garbage-collector
// role, bound to the controller-manager, does.
func TestAuthorizedAsControllerManager(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{Certs: apicluster.Certs(t)})
	admin := client.NewClientset(c.Dial(t, "admin", client.Options{}))
	runCollector(t, client.NewClientset(c.Dial(t, "controller-manager", client.Options{})))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	owner := configMap(t, ctx, admin, "default", "owner", nil)
	if _, err := admin.Services.Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "svc", Namespace: "default", OwnerReferences: ownedBy(owner)},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}); err != nil {
		t.Fatal(err)
	}
	roles := client.For[*rbacv1.Role](admin.Conn)
	if _, err := roles.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "role", Namespace: "default", OwnerReferences: ownedBy(owner)},
		Rules: []rbacv1.PolicyRule{{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"secrets"}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.ConfigMaps.Delete(ctx, "default", "owner", client.DeleteOptions{PropagationPolicy: "Orphan"}); err != nil {
		t.Fatal(err)
	}
	waitfor.ConditionErr(t, 30*time.Second, "owner deleted once its dependents are orphaned", gone(ctx, admin.ConfigMaps, "owner"))
	svc, err := admin.Services.Get(ctx, "default", "svc")
	if err != nil || len(svc.OwnerReferences) != 0 {
		t.Fatalf("service: %v, %v", svc, err)
	}
	role, err := roles.Get(ctx, "default", "role")
	if err != nil || len(role.OwnerReferences) != 0 {
		t.Fatalf("role: %v, %v", role, err)
	}
}

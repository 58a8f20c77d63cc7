package apiserver_test

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/test/apicluster"
)

func podWithAccount(ns, name, account string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.PodSpec{ServiceAccountName: account, Containers: []corev1.Container{{Name: "c", Image: "busybox:1.36"}}}}
	if strings.HasSuffix(name, "-") {
		p.Name, p.GenerateName = "", name
	}
	return p
}

// TestServiceAccountAdmission: a new pod runs as the account it names, which must exist,
// or as its namespace's "default"; it gets the account's image pull secrets when it has
// none. Every member answers the same, however far behind its state is.
func TestServiceAccountAdmission(t *testing.T) {
	c := apicluster.Start(t, 3, apicluster.Options{ServiceAccountAdmission: true})
	ctx := testCtx(t)
	conns := make([]*client.Clientset, 3)
	for i := range conns {
		conn, err := client.Dial([]string{c.Addr(i)}, client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conns[i] = client.NewClientset(conn)
	}
	cs := conns[0]
	if _, err := cs.Namespaces.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}}); err != nil {
		t.Fatal(err)
	}

	// A missing account is refused, in Kubernetes' words.
	for _, name := range []string{"p1", "web-"} {
		_, err := cs.Pods.Create(ctx, podWithAccount("team", name, "robot"))
		want := `pods "` + name + `" is forbidden: error looking up service account team/robot: serviceaccount "robot" not found`
		if !client.IsForbidden(err) || !strings.Contains(err.Error(), want) {
			t.Errorf("pod %s of a missing account: %v\nwant %s", name, err, want)
		}
	}

	// Made on one member, it admits pods on the others at once; its pull secrets come
	// with it unless the pod has its own.
	if _, err := conns[1].ServiceAccounts.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "robot"},
		ImagePullSecrets: []corev1.LocalObjectReference{{Name: "regcred"}}}); err != nil {
		t.Fatal(err)
	}
	p1, err := conns[2].Pods.Create(ctx, podWithAccount("team", "p1", "robot"))
	if err != nil {
		t.Fatal(err)
	}
	if p1.Spec.ServiceAccountName != "robot" || p1.Spec.DeprecatedServiceAccount != "robot" ||
		len(p1.Spec.ImagePullSecrets) != 1 || p1.Spec.ImagePullSecrets[0].Name != "regcred" {
		t.Errorf("pod of robot: account %q/%q, pull secrets %v", p1.Spec.ServiceAccountName, p1.Spec.DeprecatedServiceAccount, p1.Spec.ImagePullSecrets)
	}
	own := podWithAccount("team", "p2", "")
	own.Spec.DeprecatedServiceAccount = "robot" // the deprecated field names it alone
	own.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "mine"}}
	p2, err := cs.Pods.Create(ctx, own)
	if err != nil {
		t.Fatal(err)
	}
	if p2.Spec.ServiceAccountName != "robot" || len(p2.Spec.ImagePullSecrets) != 1 || p2.Spec.ImagePullSecrets[0].Name != "mine" {
		t.Errorf("pod with its own pull secrets: account %q, pull secrets %v", p2.Spec.ServiceAccountName, p2.Spec.ImagePullSecrets)
	}
	// Updates are not admitted again: the account stays.
	p2.Spec.Containers[0].Image = "busybox:1.37"
	if p2, err = cs.Pods.Update(ctx, p2); err != nil || p2.Spec.ServiceAccountName != "robot" {
		t.Fatalf("update: %v %v", p2, err)
	}

	// No account named: the namespace's default, which a create waits for a little (the
	// controller-manager makes it just after the namespace).
	start := time.Now()
	_, err = cs.Pods.Create(ctx, podWithAccount("team", "p3", ""))
	if !client.IsForbidden(err) || !strings.Contains(err.Error(), `error looking up service account team/default: serviceaccount "default" not found`) {
		t.Errorf("pod in a namespace without a default account: %v", err)
	}
	if waited := time.Since(start); waited < time.Second {
		t.Errorf("refused after %v, without waiting for the default account", waited)
	}
	created := make(chan error, 1)
	go func() {
		p, err := conns[1].Pods.Create(ctx, podWithAccount("team", "p3", ""))
		if err == nil && p.Spec.ServiceAccountName != "default" {
			t.Errorf("p3's account: %q", p.Spec.ServiceAccountName)
		}
		created <- err
	}()
	if _, err := conns[2].ServiceAccounts.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "default"}}); err != nil {
		t.Fatal(err)
	}
	if err := <-created; err != nil {
		t.Errorf("a pod waiting for its namespace's default account: %v", err)
	}
}

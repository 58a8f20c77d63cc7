package serviceaccount

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

// TestDefaultAccountInEveryNamespace: every namespace, those the API server makes and
// new ones, gets a "default" ServiceAccount, made again when deleted; so a pod that
// names no account is admitted, as the default one.
func TestDefaultAccountInEveryNamespace(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{ServiceAccountAdmission: true})
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cs := client.NewClientset(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	f := cache.NewFactory(cs, hclog.NewNullLogger())
	ctrl, err := New(cs, f, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	f.Start(ctx)
	done := make(chan struct{})
	go func() { ctrl.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); f.Wait(); <-done; conn.Close() })

	if _, err := cs.Namespaces.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}}); err != nil {
		t.Fatal(err)
	}
	hasDefault := func(ns string) {
		t.Helper()
		waitfor.Condition(t, 30*time.Second, "service account "+ns+"/default", func() (bool, string) {
			_, err := cs.ServiceAccounts.Get(ctx, ns, DefaultName)
			return err == nil, "get: " + errString(err)
		})
	}
	for _, ns := range []string{"default", "kube-system", "kube-node-lease", "team"} {
		hasDefault(ns)
	}
	pod, err := cs.Pods.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "p"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox:1.36"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if pod.Spec.ServiceAccountName != "default" || pod.Spec.DeprecatedServiceAccount != "default" {
		t.Errorf("pod's account: %q / %q", pod.Spec.ServiceAccountName, pod.Spec.DeprecatedServiceAccount)
	}

	// Deleted, it comes back.
	old, _ := cs.ServiceAccounts.Get(ctx, "team", DefaultName)
	if _, err := cs.ServiceAccounts.Delete(ctx, "team", DefaultName, client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitfor.Condition(t, 30*time.Second, "team/default made again", func() (bool, string) {
		sa, err := cs.ServiceAccounts.Get(ctx, "team", DefaultName)
		return err == nil && sa.UID != old.UID, "get: " + errString(err)
	})
}

func errString(err error) string {
	if err == nil {
		return "found"
	}
	return err.Error()
}

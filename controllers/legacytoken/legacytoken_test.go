package legacytoken

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/pki"
	"github.com/skiffhq/skiff/pki/serviceaccount"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

// TestController: a token Secret of an existing account gets its token, ca.crt,
// namespace and the account's uid, and the token authenticates as the account; a Secret
// naming no account is deleted; the account deleted, its Secret goes and the token is
// refused.
func TestController(t *testing.T) {
	dir := apicluster.Certs(t)
	c := apicluster.Start(t, 1, apicluster.Options{Certs: dir})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cs := client.NewClientset(c.Dial(t, "controller-manager", client.Options{}))
	admin := client.NewClientset(c.Dial(t, "admin", client.Options{}))
	key, err := serviceaccount.LoadSigningKey(filepath.Join(dir, serviceaccount.SigningKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(filepath.Join(dir, pki.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	f := cache.NewFactory(cs, nil)
	cfg := DefaultConfig()
	cfg.SigningKey, cfg.RootCA = key, ca
	ctl, err := New(cs, f, cfg)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	f.Start(runCtx)
	done := make(chan struct{})
	go func() { defer close(done); ctl.Run(runCtx) }()
	defer func() { stop(); <-done; f.Wait() }()

	sa, err := admin.ServiceAccounts.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "robot", Namespace: "default"}})
	if err != nil {
		t.Fatal(err)
	}
	tokenSecret := func(name, account string) {
		t.Helper()
		if _, err := admin.Secrets.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default",
			Annotations: map[string]string{corev1.ServiceAccountNameKey: account}}, Type: corev1.SecretTypeServiceAccountToken}); err != nil {
			t.Fatal(err)
		}
	}
	tokenSecret("robot-token", "robot")
	tokenSecret("ghost-token", "ghost")
	var secret *corev1.Secret
	waitfor.Condition(t, 20*time.Second, "the token secret filled", func() (bool, string) {
		s, err := admin.Secrets.Get(ctx, "default", "robot-token")
		if err != nil {
			return false, err.Error()
		}
		secret = s
		return len(s.Data[corev1.ServiceAccountTokenKey]) > 0, "no token yet"
	})
	if !bytes.Equal(secret.Data[corev1.ServiceAccountRootCAKey], ca) || string(secret.Data[corev1.ServiceAccountNamespaceKey]) != "default" ||
		secret.Annotations[corev1.ServiceAccountUIDKey] != string(sa.UID) {
		t.Errorf("filled secret: data keys %v, annotations %v", len(secret.Data), secret.Annotations)
	}
	gone := func(name string) {
		t.Helper()
		waitfor.Condition(t, 20*time.Second, name+" deleted", func() (bool, string) {
			_, err := admin.Secrets.Get(ctx, "default", name)
			return client.IsNotFound(err), "still there"
		})
	}
	gone("ghost-token")

	// The token is the account: authenticated, and refused by authorization alone.
	robot := client.NewClientset(c.Dial(t, "", client.Options{PerRPCCredentials: client.BearerToken(secret.Data[corev1.ServiceAccountTokenKey])}))
	if _, err := robot.Pods.List(ctx, "default", client.ListOptions{}); !client.IsForbidden(err) ||
		!strings.Contains(err.Error(), `user "system:serviceaccount:default:robot" cannot list pods`) {
		t.Fatalf("the legacy token's request: %v", err)
	}

	if _, err := admin.ServiceAccounts.Delete(ctx, "default", "robot", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	gone("robot-token")
	waitfor.Condition(t, 20*time.Second, "the token refused", func() (bool, string) {
		_, err := robot.Pods.List(ctx, "default", client.ListOptions{})
		return status.Code(err) == codes.Unauthenticated, status.Convert(err).Message()
	})
}

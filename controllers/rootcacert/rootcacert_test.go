package rootcacert

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/pki"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

// newCA is a CA certificate, PEM.
func newCA(t *testing.T, name string) []byte {
	t.Helper()
	ca, err := pki.NewCA(name, time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	return ca.CertPEM()
}

// TestRootCAInEveryNamespace: every namespace, those the API server makes and new ones,
// gets kube-root-ca.crt with the CA and Kubernetes' description; changed, its data is
// put back; deleted, it is made again; and when the CA file changes (a CA rotation's
// steps), every namespace's is updated to the new bundle, without a restart.
func TestRootCAInEveryNamespace(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cs := client.NewClientset(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	f := cache.NewFactory(cs, hclog.NewNullLogger())
	oldCA := newCA(t, "old-ca")
	caFile := filepath.Join(t.TempDir(), pki.CACertFile)
	if err := pki.WriteFile(caFile, oldCA, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.RootCAFile, cfg.CheckInterval = caFile, 100*time.Millisecond
	ctrl, err := New(cs, f, cfg)
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
	published := func(ns string, want []byte, unlike *corev1.ConfigMap) *corev1.ConfigMap {
		t.Helper()
		var cm *corev1.ConfigMap
		waitfor.Condition(t, 30*time.Second, "config map "+ns+"/"+ConfigMapName+" with the CA", func() (bool, string) {
			cm, err = cs.ConfigMaps.Get(ctx, ns, ConfigMapName)
			if err != nil {
				return false, err.Error()
			}
			if unlike != nil && cm.ResourceVersion == unlike.ResourceVersion {
				return false, "not changed yet"
			}
			ok := cm.Data[DataKey] == string(want) && len(cm.Data) == 1 && cm.Annotations[DescriptionAnnotation] == Description
			return ok, "data " + cm.Data[DataKey] + ", annotations " + cm.Annotations[DescriptionAnnotation]
		})
		return cm
	}
	namespaces := []string{"default", "kube-system", "kube-node-lease", "team"}
	for _, ns := range namespaces {
		published(ns, oldCA, nil)
	}

	// Changed, its data comes back.
	cm := published("team", oldCA, nil)
	cm.Data = map[string]string{DataKey: "not the CA", "extra": "x"}
	changed, err := cs.ConfigMaps.Update(ctx, cm)
	if err != nil {
		t.Fatal(err)
	}
	published("team", oldCA, changed)

	// Deleted, it is made again.
	old, _ := cs.ConfigMaps.Get(ctx, "team", ConfigMapName)
	if _, err := cs.ConfigMaps.Delete(ctx, "team", ConfigMapName, client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitfor.Condition(t, 30*time.Second, "team/"+ConfigMapName+" made again", func() (bool, string) {
		cm, err := cs.ConfigMaps.Get(ctx, "team", ConfigMapName)
		if err != nil {
			return false, err.Error()
		}
		return cm.UID != old.UID && cm.Data[DataKey] == string(oldCA), "the old one"
	})

	// A CA rotation: both CAs (rotate-ca add), then the new one alone (drop). Every
	// namespace gets each bundle; a file that does not load meanwhile changes nothing.
	newCA := newCA(t, "new-ca")
	both := append(append([]byte{}, oldCA...), newCA...)
	for _, bundle := range [][]byte{both, []byte("not PEM"), newCA} {
		if err := pki.WriteFile(caFile, bundle, 0o644); err != nil {
			t.Fatal(err)
		}
		want := bundle
		if string(bundle) == "not PEM" {
			want = both
		}
		for _, ns := range namespaces {
			published(ns, want, nil)
		}
	}
}

// TestConfigNeedsTheCA: without a CA file there is nothing to publish, and New says so;
// nor with one that holds no certificate.
func TestConfigNeedsTheCA(t *testing.T) {
	if err := DefaultConfig().Validate(); err == nil {
		t.Fatal("a config without a CA file is valid")
	}
	cfg := DefaultConfig()
	cfg.RootCAFile, cfg.Workers = "ca.crt", 0
	if err := cfg.Validate(); err == nil {
		t.Fatal("a config without workers is valid")
	}
	bad := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(bad, []byte("not PEM"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg = DefaultConfig()
	cfg.RootCAFile = bad
	if _, err := New(nil, nil, cfg); err == nil {
		t.Fatal("a CA file without a certificate is taken")
	}
}

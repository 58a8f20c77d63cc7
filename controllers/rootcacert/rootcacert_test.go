package rootcacert

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

const testCA = "-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n"

// TestRootCAInEveryNamespace: every namespace, those the API server makes and new ones,
// gets kube-root-ca.crt with the CA and Kubernetes' description; changed, its data is
// put back; deleted, it is made again.
func TestRootCAInEveryNamespace(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cs := client.NewClientset(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	f := cache.NewFactory(cs, hclog.NewNullLogger())
	cfg := DefaultConfig()
	cfg.RootCA = []byte(testCA)
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
	published := func(ns string, unlike *corev1.ConfigMap) *corev1.ConfigMap {
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
			ok := cm.Data[DataKey] == testCA && len(cm.Data) == 1 && cm.Annotations[DescriptionAnnotation] == Description
			return ok, "data " + cm.Data[DataKey] + ", annotations " + cm.Annotations[DescriptionAnnotation]
		})
		return cm
	}
	for _, ns := range []string{"default", "kube-system", "kube-node-lease", "team"} {
		published(ns, nil)
	}

	// Changed, its data comes back.
	cm := published("team", nil)
	cm.Data = map[string]string{DataKey: "not the CA", "extra": "x"}
	changed, err := cs.ConfigMaps.Update(ctx, cm)
	if err != nil {
		t.Fatal(err)
	}
	published("team", changed)

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
		return cm.UID != old.UID && cm.Data[DataKey] == testCA, "the old one"
	})
}

// TestConfigNeedsTheCA: without a CA there is nothing to publish, and New says so.
func TestConfigNeedsTheCA(t *testing.T) {
	if err := DefaultConfig().Validate(); err == nil {
		t.Fatal("a config without a CA is valid")
	}
	cfg := DefaultConfig()
	cfg.RootCA, cfg.Workers = []byte(testCA), 0
	if err := cfg.Validate(); err == nil {
		t.Fatal("a config without workers is valid")
	}
}

package k8sclients

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v4/pkg/action"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"helm.sh/helm/v4/pkg/kube"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes"
)

// helmChart is the chart `helm create demo` writes (Helm's chartutil.Create), whole:
// its Deployment (with its HTTP liveness and readiness probes), Service and
// ServiceAccount, the Ingress, HTTPRoute and HorizontalPodAutoscaler its default values
// leave out, its test Pod (a `helm test` hook, not installed) and NOTES.txt; and a
// ConfigMap of the test's, so that an upgrade changes data too.
func helmChart(t *testing.T) *chart.Chart {
	t.Helper()
	dir, err := chartutil.Create("demo", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tpl := filepath.Join(dir, "templates")
	for _, f := range []string{"deployment.yaml", "service.yaml", "serviceaccount.yaml", "tests/test-connection.yaml"} {
		if _, err := os.Stat(filepath.Join(tpl, f)); err != nil {
			t.Fatalf("helm create wrote no %s: %v", f, err)
		}
	}
	const configMap = `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "demo.fullname" . }}
  labels:
    {{- include "demo.labels" . | nindent 4 }}
data:
  greeting: {{ .Values.greeting | quote }}
`
	if err := os.WriteFile(filepath.Join(tpl, "configmap.yaml"), []byte(configMap), 0o644); err != nil {
		t.Fatal(err)
	}
	ch, err := loader.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// values are the chart's values for a release (helm install --set ...).
func values(greeting string, replicas, port int) map[string]any {
	return map[string]any{"greeting": greeting, "replicaCount": replicas, "service": map[string]any{"port": port}}
}

// helmConfig is Helm's action configuration for namespace ns of the cluster of
// kubeconfig, its releases in Secrets (its default driver).
func helmConfig(t *testing.T, kubeconfig, ns string) *action.Configuration {
	t.Helper()
	flags := genericclioptions.NewConfigFlags(false)
	cacheDir := t.TempDir()
	flags.KubeConfig, flags.Namespace, flags.CacheDir = &kubeconfig, &ns, &cacheDir
	cfg := action.NewConfiguration()
	if err := cfg.Init(flags, ns, "secret"); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestHelm: Helm's Go SDK (helm.sh/helm/v4) installs a chart made by `helm create`,
// waits for its Deployment to be ready, upgrades it with new values, rolls it back and
// uninstalls it, against skiff up: applying on the server (server-side apply, Helm 4's
// default) and on the client (its three-way merge, `helm --server-side=false`).
func TestHelm(t *testing.T) {
	for _, serverSide := range []bool{true, false} {
		name := "client-side"
		if serverSide {
			name = "server-side"
		}
		t.Run(name, func(t *testing.T) { testHelm(t, serverSide) })
	}
}

func testHelm(t *testing.T, serverSide bool) {
	s := startSkiff(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cfg := helmConfig(t, s.kubeconfig, "default")
	ch := helmChart(t)
	restCfg, err := cfg.RESTClientGetter.ToRESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(restCfg)

	install := action.NewInstall(cfg)
	install.ReleaseName, install.Namespace = "demo", "default"
	install.ServerSideApply = serverSide
	install.WaitStrategy, install.Timeout = kube.StatusWatcherStrategy, 2*time.Minute
	rel, err := install.RunWithContext(ctx, ch, values("hello", 2, 80))
	if err != nil {
		t.Fatalf("helm install: %v", err)
	}
	if r := rel.(*releasev1.Release); r.Info.Status != "deployed" || r.Version != 1 {
		t.Fatalf("install: release %s version %d", r.Info.Status, r.Version)
	}
	check := func(step, greeting string, replicas, port int32) {
		t.Helper()
		cm, err := cs.CoreV1().ConfigMaps("default").Get(ctx, "demo", metav1.GetOptions{})
		if err != nil || cm.Data["greeting"] != greeting || cm.Labels["app.kubernetes.io/managed-by"] != "Helm" {
			t.Fatalf("%s: configmap demo: %v %v", step, cm, err)
		}
		d, err := cs.AppsV1().Deployments("default").Get(ctx, "demo", metav1.GetOptions{})
		if err != nil || *d.Spec.Replicas != replicas || d.Annotations["meta.helm.sh/release-name"] != "demo" {
			t.Fatalf("%s: deployment demo: %v %v", step, d, err)
		}
		if d.Spec.Template.Spec.ServiceAccountName != "demo" {
			t.Fatalf("%s: deployment demo runs as %q", step, d.Spec.Template.Spec.ServiceAccountName)
		}
		if c := d.Spec.Template.Spec.Containers[0]; c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.LivenessProbe == nil {
			t.Fatalf("%s: deployment demo's container has not the chart's probes: %+v", step, c)
		}
		if _, err := cs.CoreV1().ServiceAccounts("default").Get(ctx, "demo", metav1.GetOptions{}); err != nil {
			t.Fatalf("%s: serviceaccount demo: %v", step, err)
		}
		// The Service (ClusterIP, its port from the values) sends its port to the pods'
		// port named http.
		svc, err := cs.CoreV1().Services("default").Get(ctx, "demo", metav1.GetOptions{})
		if err != nil || svc.Spec.Type != "ClusterIP" || svc.Spec.ClusterIP == "" || len(svc.Spec.Ports) != 1 ||
			svc.Spec.Ports[0].Port != port || svc.Spec.Ports[0].TargetPort.String() != "http" ||
			svc.Spec.Selector["app.kubernetes.io/instance"] != "demo" {
			t.Fatalf("%s: service demo: %v %v", step, svc, err)
		}
		// Applied on the server, the fields are Helm's, as managedFields say.
		if applied := len(d.ManagedFields) > 0 && d.ManagedFields[0].Operation == metav1.ManagedFieldsOperationApply; applied != serverSide {
			t.Fatalf("%s: deployment demo's managedFields %+v (server-side %v)", step, d.ManagedFields, serverSide)
		}
	}
	check("install", "hello", 2, 80)
	// The status watcher waited for the rollout: the Deployment's pods are ready.
	if d, _ := cs.AppsV1().Deployments("default").Get(ctx, "demo", metav1.GetOptions{}); d.Status.ReadyReplicas != 2 {
		t.Fatalf("install --wait returned with %d ready replicas of 2", d.Status.ReadyReplicas)
	}
	// The chart's test Pod, a `helm test` hook, is not installed.
	if _, err := cs.CoreV1().Pods("default").Get(ctx, "demo-test-connection", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the chart's test pod was installed: %v", err)
	}

	upgrade := action.NewUpgrade(cfg)
	upgrade.Namespace, upgrade.ServerSideApply = "default", strconv.FormatBool(serverSide)
	upgrade.WaitStrategy, upgrade.Timeout = kube.StatusWatcherStrategy, 2*time.Minute
	if _, err := upgrade.RunWithContext(ctx, "demo", ch, values("bonjour", 3, 8080)); err != nil {
		t.Fatalf("helm upgrade: %v", err)
	}
	check("upgrade", "bonjour", 3, 8080)

	rollback := action.NewRollback(cfg)
	rollback.Version, rollback.ServerSideApply = 1, strconv.FormatBool(serverSide)
	rollback.WaitStrategy, rollback.Timeout = kube.StatusWatcherStrategy, 2*time.Minute
	if err := rollback.Run("demo"); err != nil {
		t.Fatalf("helm rollback: %v", err)
	}
	check("rollback", "hello", 2, 80)

	history, err := action.NewHistory(cfg).Run("demo")
	if err != nil {
		t.Fatal(err)
	}
	var statuses []string
	for _, h := range history {
		r := h.(*releasev1.Release)
		statuses = append(statuses, string(r.Info.Status))
	}
	if strings.Join(statuses, ",") != "superseded,superseded,deployed" {
		t.Fatalf("helm history: %v", statuses)
	}
	// Helm keeps its releases in Secrets of type helm.sh/release.v1, labelled owner=helm.
	rels, err := cs.CoreV1().Secrets("default").List(ctx, metav1.ListOptions{LabelSelector: "owner=helm,name=demo"})
	if err != nil || len(rels.Items) != 3 || rels.Items[0].Type != "helm.sh/release.v1" {
		t.Fatalf("release records: %v %v", rels, err)
	}

	uninstall := action.NewUninstall(cfg)
	uninstall.WaitStrategy, uninstall.Timeout = kube.StatusWatcherStrategy, 2*time.Minute
	if _, err := uninstall.Run("demo"); err != nil {
		t.Fatalf("helm uninstall: %v", err)
	}
	if _, err := cs.AppsV1().Deployments("default").Get(ctx, "demo", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("after uninstall: deployment demo: %v", err)
	}
	if _, err := cs.CoreV1().ConfigMaps("default").Get(ctx, "demo", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("after uninstall: configmap demo: %v", err)
	}
	if _, err := cs.CoreV1().ServiceAccounts("default").Get(ctx, "demo", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("after uninstall: serviceaccount demo: %v", err)
	}
	if _, err := cs.CoreV1().Services("default").Get(ctx, "demo", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("after uninstall: service demo: %v", err)
	}
	if rels, err := cs.CoreV1().Secrets("default").List(ctx, metav1.ListOptions{LabelSelector: "owner=helm,name=demo"}); err != nil || len(rels.Items) != 0 {
		t.Fatalf("release records after uninstall: %v %v", rels, err)
	}
}

package skiffctl_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/skiffctl"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/version"
)

// run runs skiffctl in process against servers and returns its exit code and outputs.
func run(t *testing.T, servers string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := skiffctl.Execute(ctx, skiffctl.Streams{In: strings.NewReader(stdin), Out: &out, Err: &errb}, append([]string{"--server", servers}, args...))
	return code, out.String(), errb.String()
}

func must(t *testing.T, servers string, args ...string) string {
	t.Helper()
	code, out, errs := run(t, servers, "", args...)
	if code != 0 {
		t.Fatalf("skiffctl %s: exit %d: %s", strings.Join(args, " "), code, errs)
	}
	return out
}

func fails(t *testing.T, servers string, stdin string, want string, args ...string) {
	t.Helper()
	code, out, errs := run(t, servers, stdin, args...)
	if code == 0 {
		t.Fatalf("skiffctl %s succeeded: %s", strings.Join(args, " "), out)
	}
	if !strings.HasPrefix(errs, "Error: ") || !strings.Contains(errs, want) {
		t.Fatalf("skiffctl %s: stderr %q, want \"Error: ...%s...\"", strings.Join(args, " "), errs, want)
	}
}

func contains(t *testing.T, what, got string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("%s: %q does not contain %q", what, got, w)
		}
	}
}

func TestCommands(t *testing.T) {
	c := apicluster.Start(t, 3, apicluster.Options{})
	s := strings.Join(c.Addrs(), ",")
	example := filepath.Join("..", "examples", "nginx-deployment.yaml")

	contains(t, "apply", must(t, s, "apply", "-f", example), "deployment.apps/nginx-deployment created")
	contains(t, "apply again", must(t, s, "apply", "-f", example), "deployment.apps/nginx-deployment unchanged")
	contains(t, "get", must(t, s, "get", "deploy"), "NAME", "READY", "nginx-deployment", "0/3")
	contains(t, "get wide", must(t, s, "get", "deployments", "-o", "wide"), "busybox", "app=nginx")
	contains(t, "get yaml", must(t, s, "get", "deployment", "nginx-deployment", "-o", "yaml"),
		"apiVersion: apps/v1", "kind: Deployment", "replicas: 3", "resourceVersion:")
	contains(t, "get json", must(t, s, "get", "deploy/nginx-deployment", "-o", "json"), `"kind": "Deployment"`)
	contains(t, "get name", must(t, s, "get", "deploy", "-o", "name"), "deployment.apps/nginx-deployment")
	contains(t, "get -A", must(t, s, "get", "deploy", "-A"), "NAMESPACE", "default")
	// kind.group forms, as kubectl takes them.
	contains(t, "get kind.group", must(t, s, "get", "deployments.apps"), "NAME", "nginx-deployment")
	contains(t, "get kind.group name", must(t, s, "get", "deployment.apps", "nginx-deployment", "-o", "name"), "deployment.apps/nginx-deployment")
	contains(t, "get kind.group/name", must(t, s, "get", "deployments.v1.apps/nginx-deployment"), "nginx-deployment", "0/3")
	contains(t, "describe", must(t, s, "describe", "deployment", "nginx-deployment"),
		"Name:", "nginx-deployment", "Selector:", "app=nginx", "Events:")

	contains(t, "scale", must(t, s, "scale", "deployment", "nginx-deployment", "--replicas", "5"), "scaled")
	contains(t, "after scale", must(t, s, "get", "deploy", "nginx-deployment", "-o", "yaml"), "replicas: 5")
	contains(t, "set image", must(t, s, "set", "image", "deployment/nginx-deployment", "nginx=busybox:1.36"), "image updated")
	contains(t, "after set image", must(t, s, "get", "deploy", "nginx-deployment", "-o", "yaml"), "image: busybox:1.36")
	contains(t, "pause", must(t, s, "rollout", "pause", "deployment/nginx-deployment"), "paused")
	contains(t, "apply changed", must(t, s, "apply", "-f", example), "configured")

	// A manifest from stdin, several documents, then delete -f.
	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: v}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n"
	code, out, errs := run(t, s, cm, "create", "-f", "-")
	if code != 0 {
		t.Fatalf("create -f -: %s", errs)
	}
	contains(t, "create", out, "configmap/a created", "configmap/b created")
	fails(t, s, cm, `configmaps "a" already exists`, "create", "-f", "-")
	contains(t, "get cm", must(t, s, "get", "cm"), "a ", "b ")
	// Several kinds at once: one table per kind that has objects, each object named
	// KIND/NAME; yaml is one List.
	if got := must(t, s, "get", "deploy,po,cm"); !strings.Contains(got, "deployment.apps/nginx-deployment") ||
		!strings.Contains(got, "\n\nNAME ") || !strings.Contains(got, "configmap/a ") || strings.Contains(got, "pod/") {
		t.Errorf("get deploy,po,cm:\n%s", got)
	}
	contains(t, "get all", must(t, s, "get", "all"), "deployment.apps/nginx-deployment")
	contains(t, "get KIND/NAME of two kinds", must(t, s, "get", "deploy/nginx-deployment", "cm/b"), "deployment.apps/nginx-deployment", "configmap/b")
	contains(t, "get deploy,cm yaml", must(t, s, "get", "deploy,cm", "-o", "yaml"), "kind: List", "kind: Deployment", "kind: ConfigMap", "name: b")
	fails(t, s, "", "only specify a single resource type", "get", "deploy,cm", "-w")
	code, out, _ = run(t, s, cm, "delete", "-f", "-")
	if code != 0 {
		t.Fatal("delete -f - failed")
	}
	contains(t, "delete -f", out, "configmap/a deleted", "configmap/b deleted")

	// Errors: a clear "Error: ..." line and a non-zero exit.
	fails(t, s, "", `deployment "web" not found`, "get", "deployment", "web")
	fails(t, s, "", `deployment "web" not found`, "delete", "deployment", "web")
	fails(t, s, "", `deployment "web" not found`, "describe", "deploy", "web")
	fails(t, s, "", `doesn't have a resource type "widgets"`, "get", "widgets")
	bad := "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  template:\n    spec:\n      containers:\n      - {name: a, image: b, foo: 1}\n"
	fails(t, s, bad, "spec.template.spec.containers[0].foo: unknown field", "apply", "-f", "-")
	invalid := "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replicas: -1\n  selector: {matchLabels: {app: x}}\n  template:\n    metadata: {labels: {app: other}}\n    spec: {containers: [{name: a}]}\n"
	fails(t, s, invalid, "spec.replicas: Invalid value: -1: must be greater than or equal to 0", "apply", "-f", "-")
	fails(t, s, invalid, "spec.template.spec.containers[0].image: Required value", "apply", "-f", "-")
	fails(t, s, invalid, "selector does not match template labels", "apply", "-f", "-")
	contains(t, "defaults", must(t, s, "get", "deploy", "nginx-deployment", "-o", "yaml"),
		"restartPolicy: Always", "imagePullPolicy: IfNotPresent", "revisionHistoryLimit: 10", "progressDeadlineSeconds: 600", "maxSurge: 25%")
	fails(t, s, "", "--output: Unsupported value", "get", "pods", "-o", "xml")
	fails(t, s, "", "--cascade: Unsupported value", "delete", "deploy", "x", "--cascade", "sideways")

	// Empty lists say so on stderr.
	code, _, errs = run(t, s, "", "get", "pods")
	if code != 0 || !strings.Contains(errs, "No resources found in default namespace.") {
		t.Errorf("get pods on an empty namespace: %d %q", code, errs)
	}

	// Cluster verbs.
	contains(t, "cluster status", must(t, s, "cluster", "status"), "cluster: ", "leader:", "NAME", "leader", "follower", "VERSION", version.Version, "DB SIZE", "IN USE", "KiB")
	contains(t, "cluster defrag", must(t, s, "cluster", "defrag"), "defragmented", "DB SIZE")
	if out := must(t, s, "cluster", "alarm", "list"); out != "" {
		t.Errorf("cluster alarm list with no alarm: %q", out)
	}
	contains(t, "cluster alarm disarm", must(t, s, "cluster", "alarm", "disarm"), "alarm disarmed")
	if code, _, errs := run(t, s, "", "cluster", "snapshots"); code != 0 || !strings.Contains(errs, "No snapshots found.") {
		t.Errorf("cluster snapshots with none taken: %d %q", code, errs)
	}
	file := filepath.Join(t.TempDir(), "snap.db")
	contains(t, "snapshot", must(t, s, "cluster", "snapshot", "save", file), "Snapshot saved at", "revision")
	if st, err := os.Stat(file); err != nil || st.Size() == 0 {
		t.Fatalf("snapshot file: %v", err)
	}

	// No controllers run here: the trace shows the Deployment stored and the rest not yet.
	contains(t, "trace", must(t, s, "trace", "deployment", "nginx-deployment"), "deployment default/nginx-deployment", "Deployment stored", "(not yet)")
	contains(t, "trace json", must(t, s, "trace", "deployment/nginx-deployment", "-o", "json"), `"step": 1`, `"title": "Deployment stored"`)
	fails(t, s, "", `deployment "nope" not found`, "trace", "deployment", "nope")
	contains(t, "delete", must(t, s, "delete", "deploy", "nginx-deployment"), "deployment.apps/nginx-deployment deleted")
}

// TestExamplesApply applies every manifest in examples/ and Kubernetes' own
// nginx-deployment.yaml, unchanged.
func TestExamplesApply(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	files, _ := filepath.Glob("../examples/*.yaml")
	files = append(files, "manifest/testdata/nginx-deployment.yaml")
	if len(files) < 4 {
		t.Fatalf("found only %v", files)
	}
	for _, f := range files {
		if f == "manifest/testdata/nginx-deployment.yaml" {
			must(t, c.Addr(0), "delete", "deployment", "nginx-deployment") // the example has the same name
		}
		out := must(t, c.Addr(0), "apply", "-f", f)
		if !strings.Contains(out, " created") {
			t.Errorf("apply %s: %s", f, out)
		}
	}
}

func TestGetWatch(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cms := client.For[*corev1.ConfigMap](conn)
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "first", Namespace: "default"}}); err != nil {
		t.Fatal(err)
	}

	var out syncBuffer
	wctx, stop := context.WithCancel(ctx)
	done := make(chan int)
	go func() {
		done <- skiffctl.Execute(wctx, skiffctl.Streams{In: strings.NewReader(""), Out: &out, Err: &out}, []string{"--server", c.Addr(0), "get", "cm", "-w"})
	}()
	waitFor(t, func() bool { return strings.Contains(out.String(), "first") })
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "second", Namespace: "default"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return strings.Contains(out.String(), "second") })
	stop()
	if code := <-done; code != 0 {
		t.Fatalf("get -w ended with %d: %s", code, out.String())
	}
	if n := strings.Count(out.String(), "NAME"); n != 1 {
		t.Errorf("header printed %d times:\n%s", n, out.String())
	}
}

// TestSecureCluster: skiffctl finds its credentials in the client config, and a
// command the identity may not run says who cannot do what.
func TestSecureCluster(t *testing.T) {
	dir := apicluster.Certs(t, "w1")
	c := apicluster.Start(t, 1, apicluster.Options{Certs: dir})
	cfg := filepath.Join(t.TempDir(), "config")
	write := func(cert string) {
		err := client.WriteConfigFile(cfg, client.ConfigFile{Servers: []string{c.Addr(0)}, CAFile: filepath.Join(dir, "ca.crt"),
			CertFile: filepath.Join(dir, cert+".crt"), KeyFile: filepath.Join(dir, cert+".key")})
		if err != nil {
			t.Fatal(err)
		}
	}
	run := func(args ...string) (string, string, int) {
		var out, errb bytes.Buffer
		code := skiffctl.Execute(context.Background(), skiffctl.Streams{In: strings.NewReader(""), Out: &out, Err: &errb}, append([]string{"--config", cfg}, args...))
		return out.String(), errb.String(), code
	}
	write("admin")
	if out, errs, code := run("cluster", "status"); code != 0 || !strings.Contains(out, "n1") {
		t.Fatalf("admin: %s %s", out, errs)
	}
	write("kubelet-w1")
	_, errs, code := run("get", "pods", "-A")
	if code == 0 || !strings.Contains(errs, `Error: user "system:node:w1" cannot list pods in all namespaces`) {
		t.Fatalf("kubelet lists all pods: %q", errs)
	}
	// Without the config's CA the same command cannot reach the TLS server.
	var errb bytes.Buffer
	code = skiffctl.Execute(context.Background(), skiffctl.Streams{In: strings.NewReader(""), Out: &bytes.Buffer{}, Err: &errb},
		[]string{"--server", c.Addr(0), "--ca-file", filepath.Join(dir, "ca.crt"), "get", "pods"})
	if code == 0 || !strings.Contains(errb.String(), "no client certificate or bearer token") {
		t.Fatalf("no credentials: %q", errb.String())
	}
}

// TestConfigKubeconfig: skiffctl prints a kubeconfig of its servers and credentials.
func TestConfigKubeconfig(t *testing.T) {
	code, out, errOut := run(t, "10.0.0.1:7443,10.0.0.2:7443", "", "config", "kubeconfig", "--ca-file", "/pki/ca.crt", "--token", "secret")
	if code != 0 {
		t.Fatalf("config kubeconfig: %d %s", code, errOut)
	}
	for _, want := range []string{"current-context: skiff\n", "server: https://10.0.0.1:7443", "name: skiff-2", "server: https://10.0.0.2:7443",
		"certificate-authority: /pki/ca.crt", "token: secret"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubeconfig lacks %q:\n%s", want, out)
		}
	}
}

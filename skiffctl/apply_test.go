package skiffctl_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/test/apicluster"
)

const webDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {team: a, tier: front}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: app, image: busybox:1.36}
`

func getDeployment(t *testing.T, conn *client.Conn, name string) *appsv1.Deployment {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := client.For[*appsv1.Deployment](conn).Get(ctx, "default", name)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func dial(t *testing.T, c *apicluster.Cluster) *client.Conn {
	t.Helper()
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// applyStdin runs apply -f - on manifest and returns its output.
func applyStdin(t *testing.T, s, manifest string, args ...string) string {
	t.Helper()
	code, out, errs := run(t, s, manifest, append([]string{"apply", "-f", "-"}, args...)...)
	if code != 0 {
		t.Fatalf("apply: exit %d: %s", code, errs)
	}
	return out
}

// TestApplyMerges: apply is kubectl's three-way merge, exactly as the issue describes
// it: replicas set by scale survive a re-apply of a manifest without replicas, an
// unchanged manifest reports "unchanged" and writes nothing (a controller's revision
// annotation stays), a field removed from the manifest is removed.
func TestApplyMerges(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	s, conn := c.Addr(0), dial(t, c)

	contains(t, "first apply", applyStdin(t, s, webDeployment), "deployment.apps/web created")
	d := getDeployment(t, conn, "web")
	if d.Annotations[kinds.LastAppliedAnnotation] == "" {
		t.Fatalf("no %s annotation: %v", kinds.LastAppliedAnnotation, d.Annotations)
	}
	must(t, s, "scale", "deployment", "web", "--replicas", "3")
	must(t, s, "annotate", "deployment", "web", "deployment.kubernetes.io/revision=1") // as the controller does
	before := getDeployment(t, conn, "web")

	contains(t, "re-apply", applyStdin(t, s, webDeployment), "deployment.apps/web unchanged")
	after := getDeployment(t, conn, "web")
	if after.ResourceVersion != before.ResourceVersion {
		t.Errorf("an unchanged manifest wrote: resourceVersion %s -> %s", before.ResourceVersion, after.ResourceVersion)
	}
	if *after.Spec.Replicas != 3 || after.Annotations["deployment.kubernetes.io/revision"] != "1" {
		t.Errorf("re-apply lost replicas (%d) or the revision annotation (%v)", *after.Spec.Replicas, after.Annotations)
	}

	// A changed manifest: the change is made, fields never applied stay, a field
	// removed from the manifest goes.
	changed := strings.Replace(strings.Replace(webDeployment, "busybox:1.36", "busybox:1.37", 1), "{team: a, tier: front}", "{team: a}", 1)
	contains(t, "changed apply", applyStdin(t, s, changed), "deployment.apps/web configured")
	d = getDeployment(t, conn, "web")
	if d.Spec.Template.Spec.Containers[0].Image != "busybox:1.37" || *d.Spec.Replicas != 3 ||
		d.Labels["tier"] != "" || d.Labels["team"] != "a" || d.Annotations["deployment.kubernetes.io/revision"] != "1" {
		t.Errorf("after a changed apply: image %s replicas %d labels %v annotations %v",
			d.Spec.Template.Spec.Containers[0].Image, *d.Spec.Replicas, d.Labels, d.Annotations)
	}
	// Replicas applied and later left out of the manifest are the manifest's no more.
	withReplicas := strings.Replace(changed, "spec:\n", "spec:\n  replicas: 5\n", 1)
	applyStdin(t, s, withReplicas)
	if d = getDeployment(t, conn, "web"); *d.Spec.Replicas != 5 {
		t.Fatalf("replicas %d, want 5", *d.Spec.Replicas)
	}
	applyStdin(t, s, changed)
	if d = getDeployment(t, conn, "web"); *d.Spec.Replicas != 1 {
		t.Errorf("replicas %d after removing them from the manifest, want the default 1", *d.Spec.Replicas)
	}

	// An object made by create gets the annotation on its first apply, with a warning.
	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: made}\ndata: {a: b}\n"
	if code, _, errs := run(t, s, cm, "create", "-f", "-"); code != 0 {
		t.Fatal(errs)
	}
	code, out, errs := run(t, s, strings.Replace(cm, "a: b", "a: c", 1), "apply", "-f", "-")
	if code != 0 || !strings.Contains(out, "configmap/made configured") || !strings.Contains(errs, "Warning: resource configmaps/made is missing the kubectl.kubernetes.io/last-applied-configuration annotation") {
		t.Errorf("apply over create: %d %q %q", code, out, errs)
	}
	// create --save-config keeps the configuration for apply.
	if code, _, errs := run(t, s, strings.Replace(cm, "made", "saved", 1), "create", "--save-config", "-f", "-"); code != 0 {
		t.Fatal(errs)
	}
	code, out, errs = run(t, s, strings.Replace(cm, "made", "saved", 1), "apply", "-f", "-")
	if code != 0 || !strings.Contains(out, "configmap/saved unchanged") || errs != "" {
		t.Errorf("apply after create --save-config: %d %q %q", code, out, errs)
	}
}

// TestApplyRetriesConflicts: twelve concurrent applies of one object, each changing it,
// all succeed: a write that loses the race is retried on the object read again.
func TestApplyRetriesConflicts(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	s, conn := c.Addr(0), dial(t, c)
	applyStdin(t, s, webDeployment)
	var wg sync.WaitGroup
	errs := make([]string, 12)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := strings.Replace(webDeployment, "{team: a, tier: front}", fmt.Sprintf("{team: a, tier: front, writer: w%d}", i), 1)
			if code, _, e := run(t, s, m, "apply", "-f", "-"); code != 0 {
				errs[i] = e
			}
			// scale and label, read-modify-writes too, race the applies.
			if code, _, e := run(t, s, "", "scale", "deployment", "web", "--replicas", fmt.Sprint(i+1)); code != 0 {
				errs[i] += e
			}
			if code, _, e := run(t, s, "", "label", "deployment", "web", fmt.Sprintf("l%d=x", i)); code != 0 {
				errs[i] += e
			}
		}()
	}
	wg.Wait()
	for i, e := range errs {
		if e != "" {
			t.Errorf("writer %d failed: %s", i, e)
		}
	}
	if d := getDeployment(t, conn, "web"); len(d.Labels) != 2+1+12 {
		t.Errorf("labels %v: every label written must be there", d.Labels)
	}
}

// TestApplyFiles: every -f, directories (-R for their subdirectories), standard input;
// every valid document is applied, each failure is reported with its file, document
// and object, and the exit status is non-zero.
func TestApplyFiles(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	s := c.Addr(0)
	dir := t.TempDir()
	cm := func(name string) string { return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: " + name + "}\n" }
	write := func(rel, content string) string {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a := write("a.yaml", cm("a"))
	b := write("b.yml", cm("b"))
	write("notes.txt", "not a manifest")
	write("sub/c.json", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}`)

	out := must(t, s, "apply", "-f", a, "-f", b)
	contains(t, "apply -f A -f B", out, "configmap/a created", "configmap/b created")
	out = must(t, s, "apply", "-f", dir)
	contains(t, "apply -f DIR", out, "configmap/a unchanged", "configmap/b unchanged")
	if strings.Contains(out, "configmap/c") {
		t.Errorf("-f DIR without -R read a subdirectory: %s", out)
	}
	contains(t, "apply -f DIR -R", must(t, s, "apply", "-f", dir, "-R"), "configmap/c created")
	code, out, _ := run(t, s, cm("d"), "apply", "-f", a, "-f", "-")
	if code != 0 || !strings.Contains(out, "configmap/d created") {
		t.Errorf("apply -f FILE -f -: %d %s", code, out)
	}

	// A file starting with ---, a document that does not decode, one the server refuses:
	// the others are applied, each failure is named.
	multi := write("multi.yaml", "---\n"+cm("m1")+"---\n"+cm("m2")+"dat: {}\n---\n"+
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Bad_Name}\n---\n"+cm("m4"))
	code, out, errs := run(t, s, "", "apply", "-f", multi, "-f", filepath.Join(dir, "missing.yaml"))
	if code == 0 {
		t.Fatal("apply with failing documents exited 0")
	}
	contains(t, "multi-document apply", out, "configmap/m1 created", "configmap/m4 created")
	contains(t, "multi-document errors", errs,
		"Error: "+multi+`: document 2 (ConfigMap "m2"): dat: unknown field`,
		"Error: "+multi+`: document 3 (ConfigMap "Bad_Name"): ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value`,
		`Error: the path "`+filepath.Join(dir, "missing.yaml")+`" does not exist`)
	if n := strings.Count(errs, "Error: "); n != 3 {
		t.Errorf("%d errors reported, want 3:\n%s", n, errs)
	}

	// create and delete -f go on past failures the same way.
	code, out, errs = run(t, s, "", "create", "-f", a, "-f", filepath.Join(dir, "sub"))
	if code == 0 || !strings.Contains(errs, a+`: document 1 (ConfigMap "a"): configmaps "a" already exists`) {
		t.Errorf("create: %d %q %q", code, out, errs)
	}
	code, out, errs = run(t, s, "", "delete", "-f", multi)
	if code == 0 || !strings.Contains(out, "configmap/m1 deleted") || !strings.Contains(out, "configmap/m4 deleted") ||
		!strings.Contains(errs, `document 3 (ConfigMap "Bad_Name"): configmap "Bad_Name" not found`) {
		t.Errorf("delete -f: %d %q %q", code, out, errs)
	}
}

// TestDryRun: --dry-run=client prints what would be done, --dry-run=server has the
// server check it; neither changes anything.
func TestDryRun(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	s, conn := c.Addr(0), dial(t, c)
	for _, mode := range []string{"client", "server"} {
		suffix := map[string]string{"client": " (dry run)", "server": " (server dry run)"}[mode]
		contains(t, "apply "+mode, applyStdin(t, s, webDeployment, "--dry-run="+mode), "deployment.apps/web created"+suffix)
		code, out, _ := run(t, s, webDeployment, "create", "-f", "-", "--dry-run="+mode, "-o", "yaml")
		if code != 0 || !strings.Contains(out, "name: web") {
			t.Errorf("create --dry-run=%s -o yaml: %d %s", mode, code, out)
		}
		fails(t, s, "", `deployment "web" not found`, "get", "deploy", "web")
	}
	// The server checks what the client does not: a dry run of an invalid object fails.
	invalid := strings.Replace(webDeployment, "spec:\n", "spec:\n  replicas: -1\n", 1)
	fails(t, s, invalid, "spec.replicas: Invalid value: -1", "apply", "-f", "-", "--dry-run=server")
	if code, _, _ := run(t, s, invalid, "apply", "-f", "-", "--dry-run=client"); code != 0 {
		t.Error("a client dry run checked what only the server does")
	}

	applyStdin(t, s, webDeployment)
	before := getDeployment(t, conn, "web")
	changed := strings.Replace(webDeployment, "busybox:1.36", "busybox:1.37", 1)
	for _, mode := range []string{"client", "server"} {
		contains(t, "apply changed "+mode, applyStdin(t, s, changed, "--dry-run="+mode), "deployment.apps/web configured")
		contains(t, "delete "+mode, must(t, s, "delete", "deploy", "web", "--dry-run="+mode), "deployment.apps/web deleted")
	}
	code, out, _ := run(t, s, changed, "apply", "-f", "-", "--dry-run=server", "-o", "yaml")
	if code != 0 || !strings.Contains(out, "image: busybox:1.37") || !strings.Contains(out, "generation: 2") {
		t.Errorf("apply --dry-run=server -o yaml shows what the server would store: %s", out)
	}
	if after := getDeployment(t, conn, "web"); after.ResourceVersion != before.ResourceVersion {
		t.Errorf("a dry run wrote: %s -> %s", before.ResourceVersion, after.ResourceVersion)
	}
	fails(t, s, "", `--dry-run`, "delete", "deploy", "web", "--dry-run=maybe")
}

// TestReplace: replace sets the manifest's spec and metadata, keeping what the server
// owns; the object must exist.
func TestReplace(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	s, conn := c.Addr(0), dial(t, c)
	applyStdin(t, s, webDeployment)
	must(t, s, "scale", "deploy", "web", "--replicas", "4")
	code, out, errs := run(t, s, strings.Replace(webDeployment, "busybox:1.36", "busybox:1.37", 1), "replace", "-f", "-")
	if code != 0 || !strings.Contains(out, "deployment.apps/web replaced") {
		t.Fatalf("replace: %d %s %s", code, out, errs)
	}
	d := getDeployment(t, conn, "web")
	if d.Spec.Template.Spec.Containers[0].Image != "busybox:1.37" || *d.Spec.Replicas != 1 || d.Annotations[kinds.LastAppliedAnnotation] != "" {
		t.Errorf("replace is a replacement: image %s replicas %d annotations %v", d.Spec.Template.Spec.Containers[0].Image, *d.Spec.Replicas, d.Annotations)
	}
	fails(t, s, strings.Replace(webDeployment, "name: web", "name: nope", 1), `deployment "nope" not found`, "replace", "-f", "-")
}

package skiffctl_test

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiffhq/skiff/test/apicluster"
)

// TestLabelAnnotate: kubectl's label and annotate: KEY=VALUE, KEY-, --overwrite, -l,
// --all, and its messages.
func TestLabelAnnotate(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	s, conn := c.Addr(0), dial(t, c)
	applyStdin(t, s, webDeployment)

	contains(t, "label", must(t, s, "label", "deployment", "web", "env=prod"), "deployment.apps/web labeled")
	fails(t, s, "", "'env' already has a value (prod), and --overwrite is false", "label", "deploy/web", "env=dev")
	must(t, s, "label", "deploy/web", "env=dev", "--overwrite")
	contains(t, "unlabel", must(t, s, "label", "deploy", "web", "tier-"), "deployment.apps/web unlabeled")
	code, out, errs := run(t, s, "", "label", "deploy", "web", "nope-")
	if code != 0 || !strings.Contains(out, "deployment.apps/web not labeled") || !strings.Contains(errs, `label "nope" not found.`) {
		t.Errorf("removing a missing label: %d %q %q", code, out, errs)
	}
	d := getDeployment(t, conn, "web")
	if d.Labels["env"] != "dev" || d.Labels["tier"] != "" || d.Labels["team"] != "a" {
		t.Errorf("labels %v", d.Labels)
	}
	fails(t, s, "", "invalid label spec", "label", "deploy", "web", "bad key=x")
	fails(t, s, "", "at least one label update is required", "label", "deploy", "web")
	fails(t, s, "", `deployment "nope" not found`, "label", "deploy", "nope", "a=b")

	contains(t, "annotate", must(t, s, "annotate", "deploy", "web", "note=hello world"), "deployment.apps/web annotated")
	fails(t, s, "", "--overwrite is false but found the following declared annotation(s): 'note' already has a value (hello world)",
		"annotate", "deploy", "web", "note=x")
	must(t, s, "annotate", "deploy", "web", "note-")
	if d := getDeployment(t, conn, "web"); d.Annotations["note"] != "" {
		t.Errorf("annotations %v", d.Annotations)
	}

	// By selector and --all.
	for _, n := range []string{"one", "two", "three"} {
		must(t, s, "create", "configmap", n, "--from-literal=k=v")
	}
	must(t, s, "label", "cm", "one", "two", "pick=yes")
	out = must(t, s, "label", "cm", "-l", "pick=yes", "done=true")
	if !strings.Contains(out, "configmap/one labeled") || !strings.Contains(out, "configmap/two labeled") || strings.Contains(out, "three") {
		t.Errorf("label -l: %s", out)
	}
	contains(t, "annotate --all", must(t, s, "annotate", "cm", "--all", "a=b"), "configmap/one annotated", "configmap/three annotated")
	contains(t, "get -l", must(t, s, "get", "cm", "-l", "done=true", "-o", "name"), "configmap/one", "configmap/two")
}

// TestPatch: the three patch types, and "patched (no change)".
func TestPatch(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	s, conn := c.Addr(0), dial(t, c)
	applyStdin(t, s, webDeployment)

	contains(t, "strategic", must(t, s, "patch", "deployment", "web", "-p", `{"spec":{"template":{"spec":{"containers":[{"name":"side","image":"busybox:1.36"}]}}}}`),
		"deployment.apps/web patched")
	if d := getDeployment(t, conn, "web"); len(d.Spec.Template.Spec.Containers) != 2 {
		t.Errorf("a strategic patch merges containers by name: %v", d.Spec.Template.Spec.Containers)
	}
	must(t, s, "patch", "deploy/web", "--type", "merge", "-p", `{"spec":{"replicas":4},"metadata":{"labels":{"tier":null}}}`)
	if d := getDeployment(t, conn, "web"); *d.Spec.Replicas != 4 || d.Labels["tier"] != "" {
		t.Errorf("merge patch: replicas %d labels %v", *d.Spec.Replicas, d.Labels)
	}
	must(t, s, "patch", "deploy/web", "--type=json", "-p", `[{"op":"remove","path":"/spec/template/spec/containers/1"}]`)
	if d := getDeployment(t, conn, "web"); len(d.Spec.Template.Spec.Containers) != 1 {
		t.Errorf("json patch: %v", d.Spec.Template.Spec.Containers)
	}
	contains(t, "no change", must(t, s, "patch", "deploy", "web", "-p", "spec: {replicas: 4}"), "deployment.apps/web patched (no change)")
	fails(t, s, "", "spec.replicas: Invalid value: -1", "patch", "deploy", "web", "-p", `{"spec":{"replicas":-1}}`)
	fails(t, s, "", "spec.replicaz: unknown field", "patch", "deploy", "web", "-p", `{"spec":{"replicaz":1}}`)
	fails(t, s, "", "--type: Unsupported value", "patch", "deploy", "web", "--type", "xml", "-p", "{}")
}

// editor writes a shell script that edits its file argument with sed expressions, one
// per call (the last repeats), counting its calls in a file beside it.
func editor(t *testing.T, seds ...string) string {
	t.Helper()
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("#!/bin/sh\nset -e\nn=$(cat " + dir + "/calls 2>/dev/null || echo 0)\nn=$((n+1))\necho $n > " + dir + "/calls\ncp \"$1\" " + dir + "/seen.$n\ncase $n in\n")
	for i, s := range seds {
		pat := "*"
		if i < len(seds)-1 {
			pat = string(rune('1' + i))
		}
		b.WriteString(pat + ") sed -i -e '" + s + "' \"$1\" ;;\n")
	}
	b.WriteString("esac\n")
	p := filepath.Join(dir, "editor.sh")
	if err := os.WriteFile(p, []byte(b.String()), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func seen(t *testing.T, ed string, n int) string {
	b, err := os.ReadFile(filepath.Join(filepath.Dir(ed), "seen."+string(rune('0'+n))))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestEdit: edit runs $EDITOR on the object's YAML and saves the change; an invalid
// change reopens the file with the error at its top; no change cancels. Not parallel:
// it sets KUBE_EDITOR.
func TestEdit(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	s, conn := c.Addr(0), dial(t, c)
	applyStdin(t, s, webDeployment)

	t.Setenv("KUBE_EDITOR", editor(t, "s/image: busybox:1.36/image: busybox:1.37/"))
	contains(t, "edit", must(t, s, "edit", "deployment", "web"), "deployment.apps/web edited")
	if d := getDeployment(t, conn, "web"); d.Spec.Template.Spec.Containers[0].Image != "busybox:1.37" {
		t.Errorf("image %s", d.Spec.Template.Spec.Containers[0].Image)
	}

	// An invalid value: reopened with the error; the second save fixes it.
	ed := editor(t, "s/^  replicas: 1$/  replicas: -1/", "s/^  replicas: -1$/  replicas: 2/")
	t.Setenv("KUBE_EDITOR", ed)
	code, out, errs := run(t, s, "", "edit", "deploy/web")
	if code != 0 || !strings.Contains(out, "deployment.apps/web edited") {
		t.Fatalf("edit with a fix: %d %q %q", code, out, errs)
	}
	second := seen(t, ed, 2)
	contains(t, "reopened file", second, "# Please edit the object below", `# deployments.apps "web" was not valid:`,
		"# * spec.replicas: Invalid value: -1: must be greater than or equal to 0", "  replicas: -1")
	if d := getDeployment(t, conn, "web"); *d.Spec.Replicas != 2 {
		t.Errorf("replicas %d", *d.Spec.Replicas)
	}

	// Saved again unchanged after an error: cancelled, the changes kept in a file.
	t.Setenv("KUBE_EDITOR", editor(t, "s/^  replicas: 2$/  replicas: -3/", "s/nothing//"))
	fails(t, s, "", "Edit cancelled, no valid changes were saved.", "edit", "deploy", "web")
	// No change at all.
	t.Setenv("KUBE_EDITOR", editor(t, "s/nothing//"))
	code, _, errs = run(t, s, "", "edit", "deploy", "web")
	if code != 0 || !strings.Contains(errs, "Edit cancelled, no changes made.") {
		t.Errorf("edit without change: %d %q", code, errs)
	}
	// A misspelled field names its path.
	ed = editor(t, "s/^  replicas: 2$/  replicaz: 2/", "s/nothing//")
	t.Setenv("KUBE_EDITOR", ed)
	run(t, s, "", "edit", "deploy", "web")
	contains(t, "reopened after unknown field", seen(t, ed, 2), "# * spec.replicaz: unknown field")
}

// TestDiff: diff compares the live object with what apply would store (a server dry
// run), exits 1 on differences and 0 without.
func TestDiff(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	s := c.Addr(0)
	code, out, errs := run(t, s, webDeployment, "diff", "-f", "-")
	if code != 1 || !strings.Contains(out, "+  name: web") || !strings.Contains(out, "+    tier: front") {
		t.Fatalf("diff of a new object: %d %q %q", code, out, errs)
	}
	applyStdin(t, s, webDeployment)
	if code, out, errs := run(t, s, webDeployment, "diff", "-f", "-"); code != 0 || out != "" {
		t.Errorf("diff of an applied manifest: %d %q %q", code, out, errs)
	}
	code, out, _ = run(t, s, strings.Replace(webDeployment, "busybox:1.36", "busybox:1.37", 1), "diff", "-f", "-")
	if code != 1 || !strings.Contains(out, "-      - image: busybox:1.36") || !strings.Contains(out, "+      - image: busybox:1.37") ||
		!strings.Contains(out, "-  generation: 1") || !strings.Contains(out, "+  generation: 2") {
		t.Errorf("diff of a change: %d\n%s", code, out)
	}
	if code, _, errs := run(t, s, strings.Replace(webDeployment, "spec:\n", "spec:\n  replicas: -1\n", 1), "diff", "-f", "-"); code != 2 ||
		!strings.Contains(errs, "spec.replicas: Invalid value") {
		t.Errorf("diff of an invalid manifest: %d %q", code, errs)
	}

	// A Secret's values are masked, as kubectl masks them (its data; the last-applied
	// annotation, which kubectl leaves as it is, holds only what the manifest has);
	// --show-secret shows them.
	must(t, s, "create", "secret", "generic", "creds", "--from-literal=user=admin", "--from-literal=password=old-pw", "--from-literal=gone=bye")
	b64 := func(v string) string { return base64.StdEncoding.EncodeToString([]byte(v)) }
	creds := fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\ndata: {user: %s, password: %s, added: %s}\n",
		b64("admin"), b64("new-pw"), b64("hi"))
	code, out, errs = run(t, s, creds, "diff", "-f", "-")
	if code != 1 {
		t.Fatalf("diff of a Secret: %d %q %q", code, out, errs)
	}
	contains(t, "diff of a Secret", out, "-  password: '*** (before)'", "+  password: '*** (after)'", "+  added: '***'", "   gone: '***'", "   user: '***'")
	for _, v := range []string{"old-pw", b64("old-pw"), b64("bye")} {
		if strings.Contains(out, v) {
			t.Errorf("diff of a Secret shows %q:\n%s", v, out)
		}
	}
	_, out, _ = run(t, s, creds, "diff", "-f", "-", "--show-secret")
	contains(t, "diff --show-secret", out, "-  password: "+b64("old-pw"), "   gone: "+b64("bye"))
}

// TestCreateAndRun: create's subcommands and run build the objects kubectl's do.
func TestCreateAndRun(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	s := c.Addr(0)
	contains(t, "create namespace", must(t, s, "create", "namespace", "shop"), "namespace/shop created")
	contains(t, "create deployment", must(t, s, "create", "deployment", "web", "-n", "shop", "--image=docker.io/library/busybox:1.36", "--replicas=2", "--port=80", "--", "sleep", "3600"),
		"deployment.apps/web created")
	contains(t, "the deployment", must(t, s, "get", "deploy", "web", "-n", "shop", "-o", "yaml"),
		"app: web", "replicas: 2", "name: busybox", "image: docker.io/library/busybox:1.36", "containerPort: 80", "- sleep")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.conf"), []byte("x=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "env"), []byte("# comment\nA=1\nB=2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	contains(t, "create configmap", must(t, s, "create", "configmap", "settings", "--from-literal=mode=fast",
		"--from-file="+filepath.Join(dir, "app.conf")), "configmap/settings created")
	contains(t, "the config map", must(t, s, "get", "cm", "settings", "-o", "yaml"), "mode: fast", "app.conf: |")
	contains(t, "create configmap from an env file", must(t, s, "create", "configmap", "env", "--from-env-file="+filepath.Join(dir, "env")),
		"configmap/env created")
	contains(t, "the env config map", must(t, s, "get", "cm", "env", "-o", "yaml"), "A: \"1\"", "B: \"2\"")
	// kubectl's rule: an env file is the whole of the data.
	fails(t, s, "", "from-env-file cannot be combined with from-file or from-literal", "create", "configmap", "x",
		"--from-literal=mode=fast", "--from-env-file="+filepath.Join(dir, "env"))
	fails(t, s, "", "--from-literal: invalid literal source", "create", "configmap", "x", "--from-literal=novalue")
	contains(t, "create --dry-run -o yaml", must(t, s, "create", "ns", "later", "--dry-run=client", "-o", "yaml"), "kind: Namespace", "name: later")
	fails(t, s, "", `namespace "later" not found`, "get", "ns", "later")

	contains(t, "run", must(t, s, "run", "box", "--image=busybox:1.36", "--restart=Never", "--env=A=1", "--", "sleep", "60"), "pod/box created")
	contains(t, "the pod", must(t, s, "get", "pod", "box", "-o", "yaml"), "run: box", "name: box", "restartPolicy: Never", "- sleep", "name: A")
	contains(t, "run --command", must(t, s, "run", "cmd", "--image=busybox:1.36", "--command", "--", "sh", "-c", "true"), "pod/cmd created")
	contains(t, "the command", must(t, s, "get", "pod", "cmd", "-o", "jsonpath={.spec.containers[0].command}"), `["sh","-c","true"]`)
}

// TestCreateJob: create job runs an image, or a cron job's template now, owned by it.
func TestCreateJob(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	s := c.Addr(0)
	contains(t, "create job --image", must(t, s, "create", "job", "once", "--image=busybox:1.36", "--", "echo", "hi"), "job.batch/once created")
	contains(t, "the job", must(t, s, "get", "job", "once", "-o", "yaml"), "name: once", "restartPolicy: Never", "- echo", "completions: 1")
	cron := `apiVersion: batch/v1
kind: CronJob
metadata: {name: backup}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    metadata: {labels: {team: ops}, annotations: {note: nightly}}
    spec:
      backoffLimit: 2
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: dump, image: busybox:1.36, command: [sh, -c, "echo dump"]}]
`
	if code, _, errs := run(t, s, cron, "apply", "-f", "-"); code != 0 {
		t.Fatalf("apply the cron job: %s", errs)
	}
	contains(t, "create job --from", must(t, s, "create", "job", "backup-now", "--from=cronjob/backup"), "job.batch/backup-now created")
	contains(t, "the job from the cron job", must(t, s, "get", "job", "backup-now", "-o", "yaml"),
		"cronjob.kubernetes.io/instantiate: manual", "note: nightly", "team: ops", "kind: CronJob", "name: backup", "controller: true",
		"backoffLimit: 2", "restartPolicy: OnFailure", "echo dump")
	fails(t, s, "", `cronjob "nope" not found`, "create", "job", "x", "--from=cronjob/nope")
	fails(t, s, "", "from must be an existing cronjob", "create", "job", "x", "--from=deployment/web")
	fails(t, s, "", "either --image or --from must be specified", "create", "job", "x")
	contains(t, "get jobs,cronjobs", must(t, s, "get", "jobs,cronjobs"), "job.batch/backup-now", "cronjob.batch/backup", "0 3 * * *")
}

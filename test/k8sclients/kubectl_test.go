package k8sclients

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/skiffhq/skiff/kubelet"
	"github.com/skiffhq/skiff/skiffctl"
	"github.com/skiffhq/skiff/test/freeport"
	"github.com/skiffhq/skiff/test/waitfor"
	"github.com/skiffhq/skiff/up"
)

// kubectl is built once, from k8s.io/kubectl at the version go.mod pins, with the
// version it would carry as a release.
var (
	buildOnce   sync.Once
	kubectlPath string
	buildErr    error
)

func kubectlBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "skiff-k8sclients-")
		if err != nil {
			buildErr = err
			return
		}
		kubectlPath = filepath.Join(dir, "kubectl")
		var ldflags []string
		for _, v := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
			ldflags = append(ldflags, "-X "+v+".gitVersion=v1.37.2 -X "+v+".gitMajor=1 -X "+v+".gitMinor=37 -X "+v+".gitTreeState=clean")
		}
		cmd := exec.Command("go", "build", "-o", kubectlPath, "-ldflags", strings.Join(ldflags, " "), "./cmd/kubectl")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build kubectl: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return kubectlPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if kubectlPath != "" {
		os.RemoveAll(filepath.Dir(kubectlPath))
	}
	os.Exit(code)
}

// skiff is a skiff up (one API server, controllers, scheduler, a kubelet of simulated
// containers) running in this process, and kubectl pointed at it.
type skiff struct {
	t          *testing.T
	kubeconfig string
	home       string
	kubectl    string
	addr       string
	config     string // skiffctl's client config
}

// startSkiff runs skiff up until the test ends.
func startSkiff(t *testing.T) *skiff { return startSkiffWith(t, nil) }

// startSkiffWith runs skiff up, its config changed by configure (nil: none).
func startSkiffWith(t *testing.T, configure func(*up.Config)) *skiff {
	t.Helper()
	bin := kubectlBinary(t)
	dir := t.TempDir()
	cfg := up.DefaultConfig()
	cfg.DataDir = filepath.Join(dir, "up")
	cfg.Listen = freeBlock(t)
	cfg.Runtime = up.RuntimeSim
	cfg.ClientConfig = filepath.Join(dir, "config")
	cfg.Kubelet = kubelet.DefaultConfig()
	cfg.Kubelet.NodeName, cfg.Kubelet.NodeIP = "k8sclients-w1", "127.0.0.1"
	cfg.Out = &bytes.Buffer{}
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: testWriter{t}})
	if configure != nil {
		configure(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- up.Run(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("skiff up: %v", err)
		}
	})
	s := &skiff{t: t, kubeconfig: filepath.Join(dir, "kubeconfig"), home: filepath.Join(dir, "home"), kubectl: bin, addr: cfg.Listen, config: cfg.ClientConfig}
	waitfor.Condition(t, 2*time.Minute, "skiff up serving kubectl, with its node", func() (bool, string) {
		out, err := s.run("get", "nodes", "--no-headers")
		return err == nil && strings.Contains(out, "k8sclients-w1") && strings.Contains(out, " Ready"), out
	})
	return s
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// freeBlock finds a free API port whose Raft port (port+100) is free too.
func freeBlock(t *testing.T) string {
	return fmt.Sprintf("127.0.0.1:%d", freeport.Spaced(t, "127.0.0.1", 0, 100)) // skiff up's API and Raft ports
}

// run runs kubectl and returns its standard output (and its error output on failure).
func (s *skiff) run(args ...string) (string, error) {
	return s.runEnv(nil, "", args...)
}

func (s *skiff) runEnv(env []string, stdin string, args ...string) (string, error) {
	out, errOut, err := s.runStreams(env, stdin, args...)
	if err != nil {
		return out + errOut, fmt.Errorf("kubectl %s: %v: %s%s", strings.Join(args, " "), err, out, errOut)
	}
	return out, nil
}

// runStreams runs kubectl and returns its standard output and error output apart.
func (s *skiff) runStreams(env []string, stdin string, args ...string) (string, string, error) {
	return s.runStreamsWith(s.kubectl, env, stdin, args...)
}

// runStreamsWith runs a program (one that runs kubectl) in kubectl's environment.
func (s *skiff) runStreamsWith(program string, env []string, stdin string, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, program, args...)
	cmd.Env = s.env(env)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// env is kubectl's environment: this cluster's kubeconfig, and more.
func (s *skiff) env(more []string) []string {
	return append(append(os.Environ(), "KUBECONFIG="+s.kubeconfig, "HOME="+s.home), more...)
}

// must runs kubectl and fails the test if it fails.
func (s *skiff) must(args ...string) string {
	s.t.Helper()
	out, err := s.run(args...)
	if err != nil {
		s.t.Fatal(err)
	}
	return out
}

// wantOut runs kubectl and checks its output matches re.
func (s *skiff) wantOut(re string, args ...string) string {
	s.t.Helper()
	out := s.must(args...)
	if !regexp.MustCompile(re).MatchString(out) {
		s.t.Fatalf("kubectl %s:\n%s\nwant it to match %s", strings.Join(args, " "), out, re)
	}
	return out
}

const webManifest = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
spec:
  replicas: %d
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: %s
`

// TestKubectlStartsTheChain is the chain's step 1 as Kubernetes users take it: kubectl
// create sends an HTTP POST, and skiffctl trace names it.
func TestKubectlStartsTheChain(t *testing.T) {
	s := startSkiff(t)
	s.wantOut(`^deployment.apps/nginx-deployment created\n$`, "create", "-f", "../../examples/nginx-deployment.yaml")
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if code := skiffctl.Execute(ctx, skiffctl.Streams{In: strings.NewReader(""), Out: &out, Err: &errb},
		[]string{"--config", s.config, "trace", "deployment", "nginx-deployment"}); code != 0 {
		t.Fatalf("skiffctl trace: %s", errb.String())
	}
	if !strings.Contains(out.String(), " by HTTP POST from kubectl/v1.37.2\n") {
		t.Errorf("skiffctl trace does not name kubectl's POST:\n%s", out.String())
	}
}

// TestKubectl drives kubectl through a Deployment's life against skiff up.
func TestKubectl(t *testing.T) {
	s := startSkiff(t)
	dir := t.TempDir()
	manifest := filepath.Join(dir, "web.yaml")
	write := func(replicas int, image string) {
		if err := os.WriteFile(manifest, []byte(fmt.Sprintf(webManifest, replicas, image)), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	s.wantOut(`(?m)^deployments\s+deploy\s+apps/v1\s+true\s+Deployment$`, "api-resources")
	s.wantOut(`(?m)^pods\s+po\s+v1\s+true\s+Pod$`, "api-resources", "--api-group=")
	s.wantOut(`FIELD:\s+strategy <DeploymentStrategy>`, "explain", "deployment.spec.strategy")
	// A review, only ever created, is documented too (its POST operation and model).
	s.wantOut(`FIELD:\s+resourceAttributes <ResourceAttributes>`, "explain", "selfsubjectaccessreview.spec.resourceAttributes")

	write(2, "nginx:1.25")
	s.wantOut(`^deployment.apps/web created\n$`, "create", "-f", manifest)
	s.wantOut(`successfully rolled out`, "rollout", "status", "deployment/web", "--timeout=90s")
	s.wantOut(`(?m)^NAME\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+AGE\s+CONTAINERS\s+IMAGES\s+SELECTOR\nweb\s+2/2\s+2\s+2\s+\S+\s+web\s+nginx:1.25\s+app=web$`,
		"get", "deployment", "web", "-o", "wide")
	s.wantOut(`(?m)^web-[a-z0-9]+-[a-z0-9]{5}\s+1/1\s+Running\s+0\s+\S+\s+127\.0\.0\.1\s+k8sclients-w1\s+<none>\s+<none>$`, "get", "pods", "-o", "wide")
	s.wantOut(`(?m)^  replicas: 2$`, "get", "deploy", "web", "-o", "yaml")
	s.wantOut(`"kind": "Deployment"`, "get", "deploy", "web", "-o", "json")
	s.wantOut(`^2$`, "get", "deploy", "web", "-o", "jsonpath={.spec.replicas}")
	s.wantOut(`^deployment.apps/web\n$`, "get", "deploy", "-o", "name")
	s.wantOut(`(?s)deployment.apps/web.*replicaset.apps/web-`, "get", "all", "-A")

	// Client-side apply, twice, with a change.
	write(3, "nginx:1.25")
	s.wantOut(`deployment.apps/web configured`, "apply", "-f", manifest)
	s.wantOut(`^3$`, "get", "deploy", "web", "-o", "jsonpath={.spec.replicas}")
	s.wantOut(`deployment.apps/web unchanged`, "apply", "-f", manifest)

	// Server-side apply: created, changed, a field another manager set (kubectl scale, an
	// Update by "kubectl", its user agent, of the scale subresource) is a conflict until
	// forced.
	api := filepath.Join(dir, "api.yaml")
	writeAPI := func(replicas int) {
		m := strings.ReplaceAll(fmt.Sprintf(webManifest, replicas, "nginx:1.25"), "web", "api")
		if err := os.WriteFile(api, []byte(m), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeAPI(1)
	s.wantOut(`^deployment.apps/api serverside-applied\n$`, "apply", "--server-side", "-f", api)
	writeAPI(2)
	s.wantOut(`^deployment.apps/api serverside-applied\n$`, "apply", "--server-side", "-f", api)
	s.wantOut(`^2 kubectl$`, "get", "deploy", "api", "-o", "jsonpath={.spec.replicas} {.metadata.managedFields[0].manager}")
	s.wantOut(`deployment.apps/api scaled`, "scale", "deployment/api", "--replicas=3")
	writeAPI(1)
	if out, err := s.run("apply", "--server-side", "-f", api); err == nil || !strings.Contains(out, `Apply failed with 1 conflict: conflict with "kubectl" with subresource "scale" using apps/v1: .spec.replicas`) {
		t.Fatalf("apply over kubectl scale's replicas: %v\n%s", err, out)
	}
	s.wantOut(`^deployment.apps/api serverside-applied\n$`, "apply", "--server-side", "--force-conflicts", "-f", api)
	s.wantOut(`^1$`, "get", "deploy", "api", "-o", "jsonpath={.spec.replicas}")
	s.wantOut(`deployment.apps "api" deleted`, "delete", "-f", api)

	// Watch while scaling.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	w := exec.CommandContext(ctx, s.kubectl, "get", "deployment", "web", "-w")
	w.Env = append(os.Environ(), "KUBECONFIG="+s.kubeconfig, "HOME="+s.home)
	var wout lockedBuffer
	w.Stdout, w.Stderr = &wout, &wout
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	waitfor.Condition(t, time.Minute, "get -w lists the deployment", func() (bool, string) {
		return strings.Contains(wout.String(), "web"), wout.String()
	})
	s.wantOut(`deployment.apps/web scaled`, "scale", "deployment/web", "--replicas=4")
	waitfor.Condition(t, time.Minute, "get -w shows the new scale", func() (bool, string) {
		return regexp.MustCompile(`(?m)^web\s+\d/4\s`).MatchString(wout.String()), wout.String()
	})
	cancel()
	w.Wait()
	s.wantOut(`successfully rolled out`, "rollout", "status", "deployment/web", "--timeout=90s")
	s.wantOut(`(?s)Name:\s+web.*Replicas:\s+4 desired \| 4 updated \| 4 total \| 4 available \| 0 unavailable.*Events:`, "describe", "deployment", "web")

	// A new image, its history, back and forth.
	s.wantOut(`deployment.apps/web image updated`, "set", "image", "deployment/web", "web=nginx:1.27")
	s.wantOut(`successfully rolled out`, "rollout", "status", "deployment/web", "--timeout=90s")
	s.wantOut(`(?m)^1\s+<none>\n2\s+<none>`, "rollout", "history", "deployment/web")
	s.wantOut(`deployment.apps/web rolled back`, "rollout", "undo", "deployment/web")
	s.wantOut(`successfully rolled out`, "rollout", "status", "deployment/web", "--timeout=90s")
	s.wantOut(`^nginx:1.25$`, "get", "deploy", "web", "-o", "jsonpath={.spec.template.spec.containers[0].image}")
	s.wantOut(`deployment.apps/web restarted`, "rollout", "restart", "deployment/web")
	s.wantOut(`successfully rolled out`, "rollout", "status", "deployment/web", "--timeout=90s")

	// Labels, annotations, the three patches, edit.
	s.wantOut(`deployment.apps/web labeled`, "label", "deployment", "web", "tier=front")
	s.wantOut(`deployment.apps/web annotated`, "annotate", "deployment", "web", "owner=team-a")
	s.wantOut(`^front team-a$`, "get", "deploy", "web", "-o", `jsonpath={.metadata.labels.tier} {.metadata.annotations.owner}`)
	s.wantOut(`deployment.apps/web patched`, "patch", "deployment", "web", "--type", "strategic", "-p",
		`{"spec":{"template":{"spec":{"containers":[{"name":"web","imagePullPolicy":"IfNotPresent"}]}}}}`)
	s.wantOut(`deployment.apps/web patched`, "patch", "deployment", "web", "--type", "merge", "-p", `{"spec":{"minReadySeconds":1}}`)
	s.wantOut(`deployment.apps/web patched`, "patch", "deployment", "web", "--type", "json", "-p", `[{"op":"replace","path":"/spec/replicas","value":2}]`)
	s.wantOut(`^2 1 IfNotPresent nginx:1.25$`, "get", "deploy", "web", "-o",
		`jsonpath={.spec.replicas} {.spec.minReadySeconds} {.spec.template.spec.containers[0].imagePullPolicy} {.spec.template.spec.containers[0].image}`)
	if _, err := s.runEnv([]string{"KUBE_EDITOR=sed -i s/minReadySeconds:\\ 1/minReadySeconds:\\ 3/"}, "", "edit", "deployment", "web"); err != nil {
		t.Fatal(err)
	}
	s.wantOut(`^3$`, "get", "deploy", "web", "-o", "jsonpath={.spec.minReadySeconds}")
	if out, err := s.run("get", "deploy", "nope"); err == nil || !strings.Contains(out, `Error from server (NotFound): deployments.apps "nope" not found`) {
		t.Errorf("get a missing deployment: %v %s", err, out)
	}

	// Logs of a pod.
	s.wantOut(`successfully rolled out`, "rollout", "status", "deployment/web", "--timeout=90s")
	name := strings.TrimSpace(strings.Split(s.must("get", "pods", "-l", "app=web", "-o", "name"), "\n")[0])
	out := s.must("logs", name)
	if strings.TrimSpace(out) == "" {
		t.Errorf("kubectl logs %s: no output", name)
	}
	s.wantOut(`.`, "logs", name, "--tail=1", "-c", "web")
	// --timestamps prefixes each line with its RFC 3339 time; --since and --since-time
	// keep what was written since; --limit-bytes cuts the output.
	first := strings.SplitAfter(out, "\n")[0]
	s.wantOut(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z `+regexp.QuoteMeta(first), "logs", name, "--timestamps")
	s.wantOut(`^`+regexp.QuoteMeta(out)+`$`, "logs", name, "--since=1h")
	s.wantOut(`^`+regexp.QuoteMeta(out)+`$`, "logs", name, "--since-time="+time.Now().Add(-time.Hour).UTC().Format(time.RFC3339))
	s.wantOut(`^$`, "logs", name, "--since-time="+time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	s.wantOut(`^`+regexp.QuoteMeta(out[:7])+`$`, "logs", name, "--limit-bytes=7")

	// logs -f follows: the stream stays open while the container runs (still open once
	// the output came and another request was answered), and ends when the container
	// exits.
	fctx, fcancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer fcancel()
	f := exec.CommandContext(fctx, s.kubectl, "logs", "-f", name)
	f.Env = append(os.Environ(), "KUBECONFIG="+s.kubeconfig, "HOME="+s.home)
	var fout lockedBuffer
	f.Stdout, f.Stderr = &fout, &fout
	if err := f.Start(); err != nil {
		t.Fatal(err)
	}
	followed := make(chan error, 1)
	go func() { followed <- f.Wait() }()
	waitfor.Condition(t, time.Minute, "logs -f prints the container's output", func() (bool, string) {
		return strings.Contains(fout.String(), "started"), fout.String()
	})
	s.wantOut(`(?m)^web-\S+\s+1/1\s+Running`, "get", name, "--no-headers")
	select {
	case err := <-followed:
		t.Fatalf("logs -f ended before the container did: %v\n%s", err, fout.String())
	default:
	}
	s.wantOut(`pod "`+strings.TrimPrefix(name, "pod/")+`" deleted`, "delete", name, "--wait=false")
	if err := <-followed; err != nil {
		t.Fatalf("logs -f: %v\n%s", err, fout.String())
	}
	s.wantOut(`successfully rolled out`, "rollout", "status", "deployment/web", "--timeout=90s")

	// auth can-i: a SelfSubjectAccessReview (kubectl exits 0 on yes).
	s.wantOut(`^yes\n$`, "auth", "can-i", "create", "deployments")
	s.wantOut(`^yes\n$`, "auth", "can-i", "delete", "nodes/k8sclients-w1")

	// cordon, then drain: the pods are evicted (pods/eviction) and, with the only node
	// unschedulable, their replacements wait.
	s.wantOut(`^node/k8sclients-w1 cordoned\n$`, "cordon", "k8sclients-w1")
	s.wantOut(`(?m)^k8sclients-w1\s+Ready,SchedulingDisabled\s`, "get", "nodes")
	s.wantOut(`(?s)evicting pod default/web-.*pod/web-[a-z0-9-]+ evicted.*node/k8sclients-w1 drained`, "drain", "k8sclients-w1", "--timeout=90s")
	waitfor.Condition(t, time.Minute, "the replacements wait for a schedulable node", func() (bool, string) {
		out, _ := s.run("get", "pods", "-l", "app=web", "--no-headers")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		return len(lines) == 2 && strings.Count(out, "Pending") == 2, out
	})
	s.wantOut(`^node/k8sclients-w1 uncordoned\n$`, "uncordon", "k8sclients-w1")
	s.wantOut(`successfully rolled out`, "rollout", "status", "deployment/web", "--timeout=90s")

	s.wantOut(`deployment.apps "web" deleted`, "delete", "-f", manifest)
	s.wantOut(`^$`, "get", "deploy", "-o", "name")
}

// lockedBuffer is a buffer a process writes while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

const rcManifest = `apiVersion: v1
kind: ReplicationController
metadata:
  name: legacy
spec:
  replicas: 2
  template:
    metadata:
      labels:
        name: legacy
    spec:
      containers:
      - name: web
        image: nginx:1.25
`

// TestKubectlReplicationController: kubectl's create -f, get, scale (the scale
// subresource), describe, get all and delete of a ReplicationController, whose selector
// the server defaults from its template.
func TestKubectlReplicationController(t *testing.T) {
	s := startSkiff(t)
	manifest := filepath.Join(t.TempDir(), "rc.yaml")
	if err := os.WriteFile(manifest, []byte(rcManifest), 0o644); err != nil {
		t.Fatal(err)
	}
	s.wantOut(`(?m)^replicationcontrollers\s+rc\s+v1\s+true\s+ReplicationController$`, "api-resources", "--api-group=")
	s.wantOut(`^replicationcontroller/legacy created\n$`, "create", "-f", manifest)
	s.wantOut(`^name=legacy 2$`, "get", "rc", "legacy", "-o", "jsonpath=name={.spec.selector.name} {.spec.replicas}")
	waitfor.Condition(t, 90*time.Second, "2 replicas ready", func() (bool, string) {
		out, err := s.run("get", "rc", "legacy")
		return err == nil && regexp.MustCompile(`(?m)^NAME\s+DESIRED\s+CURRENT\s+READY\s+AGE\nlegacy\s+2\s+2\s+2\s+\S+$`).MatchString(out), out
	})
	s.wantOut(`^replicationcontroller/legacy scaled\n$`, "scale", "rc", "legacy", "--replicas=3")
	waitfor.Condition(t, 90*time.Second, "3 replicas ready", func() (bool, string) {
		out, err := s.run("get", "rc", "legacy", "-o", "wide", "--no-headers")
		return err == nil && regexp.MustCompile(`^legacy\s+3\s+3\s+3\s+\S+\s+web\s+nginx:1.25\s+name=legacy\n$`).MatchString(out), out
	})
	s.wantOut(`(?s)Selector:\s+name=legacy.*Replicas:\s+3 current / 3 desired.*Pods Status:\s+3 Running`, "describe", "rc", "legacy")
	s.wantOut(`(?m)^replicationcontroller/legacy\s+3\s+3\s+3\s`, "get", "all")
	s.wantOut(`replicationcontroller "legacy" deleted`, "delete", "rc", "legacy")
	waitfor.Condition(t, 90*time.Second, "its pods gone", func() (bool, string) {
		out, err := s.run("get", "pods", "-l", "name=legacy", "--no-headers")
		return err == nil && strings.TrimSpace(out) == "", out
	})
}

const eventV1Manifest = `apiVersion: events.k8s.io/v1
kind: Event
metadata:
  name: web.v1
eventTime: "2026-12-05T21:00:00.000000Z"
reportingController: example.com/tester
reportingInstance: tester-1
action: Check
reason: Checked
type: Warning
note: checked through events.k8s.io
regarding:
  kind: Pod
  namespace: default
  name: web-0
`

// TestKubectlEventsV1: kubectl reaches events.k8s.io/v1 Events, which are core/v1's
// seen through the other version.
func TestKubectlEventsV1(t *testing.T) {
	s := startSkiff(t)
	manifest := filepath.Join(t.TempDir(), "event.yaml")
	if err := os.WriteFile(manifest, []byte(eventV1Manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	s.wantOut(`(?m)^events\s+ev\s+events.k8s.io/v1\s+true\s+Event$`, "api-resources", "--api-group=events.k8s.io")
	s.wantOut(`^event.events.k8s.io/web.v1 created\n$`, "create", "-f", manifest)
	s.wantOut(`(?m)^LAST SEEN\s+TYPE\s+REASON\s+OBJECT\s+MESSAGE\n\S+\s+Warning\s+Checked\s+pod/web-0\s+checked through events.k8s.io$`,
		"get", "events.v1.events.k8s.io", "--field-selector", "regarding.name=web-0")
	s.wantOut(`^checked through events.k8s.io example.com/tester$`, "get", "events", "web.v1", "-o", "jsonpath={.message} {.reportingComponent}")
	s.wantOut(`^checked through events.k8s.io Check$`, "get", "events.events.k8s.io", "web.v1", "-o", "jsonpath={.note} {.action}")
	s.wantOut(`^event.events.k8s.io/web.v1 patched\n$`, "patch", "events.events.k8s.io", "web.v1", "--type", "strategic",
		"-p", `{"series":{"count":2,"lastObservedTime":"2026-12-05T21:01:00.000000Z"}}`)
	s.wantOut(`^2$`, "get", "events", "web.v1", "-o", "jsonpath={.series.count}")
	s.wantOut(`event.events.k8s.io "web.v1" deleted`, "delete", "events.events.k8s.io", "web.v1")
	if out, err := s.run("get", "events", "web.v1"); err == nil || !strings.Contains(out, `"web.v1" not found`) {
		t.Errorf("deleted event through core/v1: %v %s", err, out)
	}
}

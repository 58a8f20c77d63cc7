package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/test/freeport"
	"github.com/skiffhq/skiff/test/waitfor"
)

// TestSecureCluster: certificates from `skiff certs init`, three API servers with mutual
// TLS for clients and peers, and every component with its own certificate run a
// Deployment; a kubelet's certificate cannot read another node's pods; a cluster started
// without TLS refuses to run unless told --insecure.
func TestSecureCluster(t *testing.T) {
	t.Parallel() // a cluster of its own, mostly waiting: see harness_test.go
	pkiDir := t.TempDir()
	p := func(n string) string { return filepath.Join(pkiDir, n) }
	initOut := start(t, "certs init", "certs", "init", "--dir", pkiDir, "--nodes", "w1,w2", "--hosts", "127.0.0.1")
	select {
	case <-initOut.done:
	case <-time.After(60 * time.Second):
		t.Fatal("certs init did not finish")
	}
	if _, err := os.Stat(p("kubelet-w2.crt")); err != nil {
		t.Fatalf("certs init: %v\n%s", err, initOut.out.String())
	}

	ports := freeport.Loopback(t, 6)
	var initial, apis []string
	for i := 0; i < 3; i++ {
		initial = append(initial, fmt.Sprintf("n%d=127.0.0.1:%d", i+1, ports[3+i]))
		apis = append(apis, fmt.Sprintf("127.0.0.1:%d", ports[i]))
	}
	dataDirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	args := func(i int) []string {
		return []string{"apiserver", "--name", fmt.Sprintf("n%d", i+1), "--data-dir", dataDirs[i], "--listen", apis[i],
			"--raft-listen", fmt.Sprintf("127.0.0.1:%d", ports[3+i]), "--initial-cluster", strings.Join(initial, ","), "--log-level", "warn"}
	}

	// Without TLS: refused, saying why.
	plain := start(t, "insecure n1", args(0)...)
	select {
	case <-plain.done:
	case <-time.After(60 * time.Second):
		t.Fatal("an apiserver without TLS kept running")
	}
	if !strings.Contains(plain.out.String(), "refusing to run a cluster of several members without TLS") || !strings.Contains(plain.out.String(), "--insecure") {
		t.Fatalf("no clear refusal:\n%s", plain.out.String())
	}

	tlsFlags := []string{"--tls-cert-file", p("apiserver.crt"), "--tls-key-file", p("apiserver.key"), "--client-ca-file", p("ca.crt"),
		"--peer-cert-file", p("apiserver.crt"), "--peer-key-file", p("apiserver.key"), "--peer-ca-file", p("ca.crt"),
		"--encryption-key-file", p("encryption.yaml")}
	for i := 0; i < 3; i++ {
		start(t, fmt.Sprintf("n%d", i+1), append(args(i), tlsFlags...)...)
	}
	s := strings.Join(apis, ",")
	as := func(name string) []string {
		return []string{"--server", s, "--ca-file", p("ca.crt"), "--cert-file", p(name + ".crt"), "--key-file", p(name + ".key")}
	}
	admin := func(args ...string) (string, string, error) { return ctl(s, append(as("admin")[2:], args...)...) }
	waitfor.Condition(t, 60*time.Second, "a leader", func() (bool, string) {
		out, errs, err := admin("cluster", "status")
		return err == nil && strings.Count(out, "follower") == 2, out + errs
	})
	if _, errs, err := ctl(s, "get", "pods"); err == nil || !strings.Contains(errs, "Error") {
		t.Fatalf("skiffctl without TLS reached the cluster: %s", errs)
	}

	start(t, "controller-manager", append([]string{"controller-manager", "--log-level", "warn"}, as("controller-manager")...)...)
	start(t, "scheduler", append([]string{"scheduler", "--log-level", "warn"}, as("scheduler")...)...)
	for _, n := range []string{"w1", "w2"} {
		start(t, "kubelet-"+n, append([]string{"kubelet", "--node-name", n, "--runtime", "sim", "--log-level", "warn",
			"--node-ip", "127.0.0.1", "--kubelet-listen", "127.0.0.1:0"}, as("kubelet-"+n)...)...)
	}
	waitfor.Condition(t, 60*time.Second, "two Ready nodes", func() (bool, string) {
		out, errs, err := admin("get", "nodes", "--no-headers")
		return err == nil && strings.Count(out, " Ready ") == 2, out + errs
	})
	if out, errs, err := admin("apply", "-f", "../../examples/nginx-deployment.yaml"); err != nil {
		t.Fatalf("apply: %v %s %s", err, out, errs)
	}
	waitfor.Condition(t, 90*time.Second, "3 pods running", func() (bool, string) {
		out, errs, err := admin("get", "pods", "--no-headers")
		return err == nil && strings.Count(out, "Running") == 3, out + errs
	})

	// Secrets: stored encrypted with the key certs init made, read back in plaintext by
	// whoever may, and by no kubelet whose pods do not use them.
	canary := fmt.Sprintf("e2e-canary-%d", time.Now().UnixNano())
	if out, errs, err := admin("create", "secret", "generic", "db", "--from-literal=password="+canary); err != nil || !strings.Contains(out, "secret/db created") {
		t.Fatalf("create secret: %v %s %s", err, out, errs)
	}
	if out, errs, err := admin("get", "secret", "db", "-o", "yaml"); err != nil || !strings.Contains(out, base64.StdEncoding.EncodeToString([]byte(canary))) {
		t.Fatalf("get secret -o yaml: %v %s %s", err, out, errs)
	}
	if _, errs, err := ctl(s, append(as("kubelet-w1")[2:], "get", "secret", "db")...); err == nil ||
		!strings.Contains(errs, `user "system:node:w1" cannot get secrets "default/db": no relationship found between node 'w1' and this object`) {
		t.Fatalf("kubelet w1 read a secret no pod of its uses: %v %s", err, errs)
	}
	for _, d := range dataDirs {
		filepath.WalkDir(d, func(path string, e os.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return nil
			}
			if b, err := os.ReadFile(path); err == nil && bytes.Contains(b, []byte(canary)) {
				t.Errorf("a Secret's plaintext is in %s", path)
			}
			return nil
		})
	}

	// A kubelet's certificate sees only its own node's pods.
	_, errs, err := ctl(s, append(as("kubelet-w1")[2:], "get", "pods")...)
	if err == nil || !strings.Contains(errs, `user "system:node:w1" cannot list pods`) {
		t.Fatalf("kubelet w1 listed all pods: %s", errs)
	}

	// Logs come from the kubelets over mutual TLS; a kubelet may not read another node's.
	out, errs, err := admin("get", "pods", "-o", "json")
	var list struct {
		Items []struct {
			Metadata struct{ Name string }
			Spec     struct{ NodeName string }
		}
	}
	if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list.Items) == 0 {
		t.Fatalf("get pods: %v %s", err, errs)
	}
	pod, node := list.Items[0].Metadata.Name, list.Items[0].Spec.NodeName
	if out, errs, err := admin("logs", pod); err != nil || !strings.Contains(out, "sim: container nginx started") {
		t.Fatalf("admin: skiffctl logs %s: %v %q %s", pod, err, out, errs)
	}
	other := map[string]string{"w1": "w2", "w2": "w1"}[node]
	_, errs, err = ctl(s, append(as("kubelet-" + other)[2:], "logs", pod)...)
	if err == nil || !strings.Contains(errs, fmt.Sprintf(`user "system:node:%s" cannot get pods/log`, other)) {
		t.Fatalf("kubelet %s read the logs of pod %s on %s: %v %s", other, pod, node, err, errs)
	}
}

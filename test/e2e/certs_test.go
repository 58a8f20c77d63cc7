package e2e

import (
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/pki"
	"github.com/skiffhq/skiff/test/freeport"
	"github.com/skiffhq/skiff/test/waitfor"
)

// certCluster is a TLS cluster laid out as on separate machines: the CA where `skiff
// certs init` ran, each member's directory (its serving certificate, and copies of
// ca.crt and ca.key to renew with), the components' directory (ca.crt and their
// certificates, which only they renew, through the API servers), and the test's admin
// directory.
type certCluster struct {
	t                  *testing.T
	pki, comps, admin  string
	members            []string
	servers            string
	apiservers, others []*proc
}

// copyFiles copies names from dir src to each of dsts.
func copyFiles(t *testing.T, src string, names []string, dsts ...string) {
	t.Helper()
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(src, n))
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range dsts {
			if err := pki.WriteFile(filepath.Join(d, n), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// startCertCluster starts n API servers renewing their certificates from the CA, a
// controller-manager, a scheduler, a kubelet w1 and a kubelet of two simulated nodes
// s-0 and s-1, with leaves of validity (the test's admin: a day).
func startCertCluster(t *testing.T, n int, validity string) *certCluster {
	c := &certCluster{t: t, pki: t.TempDir(), comps: t.TempDir(), admin: t.TempDir()}
	initOut := start(t, "certs init", "certs", "init", "--dir", c.pki, "--nodes", "w1,s,s-0,s-1", "--hosts", "127.0.0.1", "--validity", validity)
	select {
	case <-initOut.done:
	case <-time.After(60 * time.Second):
		t.Fatal("certs init did not finish")
	}
	if !initOut.cmd.ProcessState.Success() {
		t.Fatalf("certs init: %s", initOut.out.String())
	}
	for range n {
		c.members = append(c.members, t.TempDir())
	}
	copyFiles(t, c.pki, []string{"ca.crt", "ca.key", "apiserver.crt", "apiserver.key", "encryption.yaml"}, c.members...)
	var comps []string
	for _, name := range []string{"controller-manager", "scheduler", "kubelet-w1", "kubelet-s", "kubelet-s-0", "kubelet-s-1"} {
		comps = append(comps, name+".crt", name+".key")
	}
	copyFiles(t, c.pki, append(comps, "ca.crt"), c.comps)
	copyFiles(t, c.pki, []string{"ca.crt"}, c.admin)
	ca, err := pki.LoadCA(c.pki)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := ca.Issue(pki.Request{CommonName: pki.UserAdmin, Organization: []string{pki.GroupAdmin}, Client: true, Validity: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := admin.Write(c.admin, "admin"); err != nil {
		t.Fatal(err)
	}

	ports := freeport.Loopback(t, 2*n)
	var initial, apis []string
	for i := range n {
		initial = append(initial, fmt.Sprintf("n%d=127.0.0.1:%d", i+1, ports[n+i]))
		apis = append(apis, fmt.Sprintf("127.0.0.1:%d", ports[i]))
	}
	c.servers = strings.Join(apis, ",")
	for i, dir := range c.members {
		p := func(n string) string { return filepath.Join(dir, n) }
		c.apiservers = append(c.apiservers, start(t, fmt.Sprintf("n%d", i+1), "apiserver", "--name", fmt.Sprintf("n%d", i+1),
			"--data-dir", t.TempDir(), "--listen", apis[i], "--raft-listen", fmt.Sprintf("127.0.0.1:%d", ports[n+i]),
			"--initial-cluster", strings.Join(initial, ","), "--log-level", "warn",
			"--tls-cert-file", p("apiserver.crt"), "--tls-key-file", p("apiserver.key"), "--client-ca-file", p("ca.crt"),
			"--peer-cert-file", p("apiserver.crt"), "--peer-key-file", p("apiserver.key"), "--peer-ca-file", p("ca.crt"),
			"--cluster-signing-cert-file", p("ca.crt"), "--cluster-signing-key-file", p("ca.key"),
			"--encryption-key-file", p("encryption.yaml")))
	}
	waitfor.Condition(t, 60*time.Second, "a leader", func() (bool, string) {
		out, errs, err := c.ctl("cluster", "status")
		return err == nil && strings.Count(out, "follower") == n-1 && strings.Contains(out, "leader"), out + errs
	})
	as := func(name string) []string {
		return []string{"--server", c.servers, "--ca-file", filepath.Join(c.comps, "ca.crt"),
			"--cert-file", filepath.Join(c.comps, name+".crt"), "--key-file", filepath.Join(c.comps, name+".key"), "--log-level", "warn"}
	}
	c.others = append(c.others,
		start(t, "controller-manager", append([]string{"controller-manager"}, as("controller-manager")...)...),
		start(t, "scheduler", append([]string{"scheduler"}, as("scheduler")...)...),
		start(t, "kubelet-w1", append([]string{"kubelet", "--node-name", "w1", "--runtime", "sim", "--node-ip", "127.0.0.1",
			"--kubelet-listen", "127.0.0.1:0"}, as("kubelet-w1")...)...),
		start(t, "kubelet-s", append([]string{"kubelet", "--node-name", "s", "--runtime", "sim", "--sim-nodes", "2",
			"--sim-cert-dir", c.comps, "--node-ip", "127.0.0.1", "--kubelet-listen", "127.0.0.1:0"}, as("kubelet-s")...)...))
	c.waitPods(3, 3)
	return c
}

// ctl runs skiffctl as the test's admin.
func (c *certCluster) ctl(args ...string) (string, string, error) {
	p := func(n string) string { return filepath.Join(c.admin, n) }
	return ctl(c.servers, append([]string{"--ca-file", p("ca.crt"), "--cert-file", p("admin.crt"), "--key-file", p("admin.key")}, args...)...)
}

// waitPods scales the example Deployment to replicas and waits for its pods to run, on
// nodes Ready nodes.
func (c *certCluster) waitPods(replicas, nodes int) {
	c.t.Helper()
	if out, errs, err := c.ctl("apply", "-f", "../../examples/nginx-deployment.yaml"); err != nil {
		c.t.Fatalf("apply: %v %s %s", err, out, errs)
	}
	if out, errs, err := c.ctl("scale", "deployment", "nginx-deployment", "--replicas", fmt.Sprint(replicas)); err != nil {
		c.t.Fatalf("scale: %v %s %s", err, out, errs)
	}
	waitfor.Condition(c.t, 2*time.Minute, fmt.Sprintf("%d Ready nodes and %d pods running", nodes, replicas), func() (bool, string) {
		out, errs, err := c.ctl("get", "nodes,pods", "--no-headers")
		return err == nil && strings.Count(out, " Ready ") == nodes && strings.Count(out, "Running") == replicas, out + errs
	})
}

// load writes a ConfigMap as the admin every 50 ms until stopped, and returns the
// writes that failed. The admin's client renews its certificate as components do.
func (c *certCluster) load() (stop func() (writes int, failed []string)) {
	c.t.Helper()
	p := func(n string) string { return filepath.Join(c.admin, n) }
	settings := client.Settings{Server: c.servers, CAFile: p("ca.crt"), CertFile: p("admin.crt"), KeyFile: p("admin.key")}
	servers, opts, err := client.Resolve(settings, client.Options{UserAgent: "certs-test"})
	if err != nil {
		c.t.Fatal(err)
	}
	conn, err := client.Dial(servers, opts)
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		m := &client.CertificateManager{Conn: conn, CertFile: p("admin.crt"), KeyFile: p("admin.key"), CAFile: p("ca.crt"), CheckInterval: time.Second}
		m.Run(ctx)
	}()
	var writes int
	var failed []string
	go func() {
		defer wg.Done()
		cms := client.For[*corev1.ConfigMap](conn)
		for i := 0; ctx.Err() == nil; i++ {
			wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
			_, err := cms.Create(wctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprint("load-", i)}})
			wcancel()
			if ctx.Err() != nil {
				return
			}
			writes++
			if err != nil {
				failed = append(failed, fmt.Sprintf("%s: write %d: %v", time.Now().Format(time.TimeOnly), i, err))
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return func() (int, []string) {
		cancel()
		wg.Wait()
		conn.Close()
		return writes, failed
	}
}

// serials reads the serial number of each certificate file.
func serials(t *testing.T, files []string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, f := range files {
		certs, err := pki.ReadCerts(f)
		if err != nil {
			continue // mid-replacement
		}
		out[f] = certs[0].SerialNumber.String()
	}
	return out
}

// noRefusals fails the test if a component logged a refused call or a failed renewal.
func (c *certCluster) noRefusals() {
	c.t.Helper()
	for _, p := range append(append([]*proc(nil), c.apiservers...), c.others...) {
		for _, line := range strings.Split(p.out.String(), "\n") {
			// Not about a certificate: a node's event about a pod already deleted (a
			// scale-down's Killing) is refused by node restriction, as Kubernetes'.
			if strings.Contains(line, "may not record events about") && strings.Contains(line, "no such pod") {
				continue
			}
			for _, bad := range []string{"Unauthenticated", "PermissionDenied", "renewal failed", "certificate check failed", "bad certificate", "expired"} {
				if strings.Contains(line, bad) {
					c.t.Errorf("%s: %s", p.name, line)
				}
			}
		}
	}
}

// TestComponentsRenewCertificates: in a cluster whose certificates live 20 s, an API
// server renews its own from the CA, and the controller-manager, the scheduler, a
// kubelet and two simulated nodes renew theirs through it (each for its own identity);
// the cluster outlives its certificates three times over with no refused call: every
// write of a steady load succeeds, no component logs a refusal, and the Deployment
// scales onto the three nodes afterwards.
func TestComponentsRenewCertificates(t *testing.T) {
	t.Parallel() // a cluster of its own, mostly waiting: see harness_test.go
	const life = 20 * time.Second
	c := startCertCluster(t, 1, life.String())
	began := time.Now()
	stop := c.load()
	var files []string
	for _, name := range []string{"controller-manager", "scheduler", "kubelet-w1", "kubelet-s", "kubelet-s-0", "kubelet-s-1"} {
		files = append(files, filepath.Join(c.comps, name+".crt"))
	}
	files = append(files, filepath.Join(c.members[0], "apiserver.crt"))
	seen := map[string]map[string]bool{}
	waitfor.Condition(t, 5*time.Minute, "every certificate renewed three times, over three lifetimes", func() (bool, string) {
		done := time.Since(began) > 3*life
		var got []string
		for f, s := range serials(t, files) {
			if seen[f] == nil {
				seen[f] = map[string]bool{}
			}
			seen[f][s] = true
			done = done && len(seen[f]) >= 4
			got = append(got, fmt.Sprintf("%s: %d", filepath.Base(f), len(seen[f])-1))
		}
		return done, strings.Join(got, ", ")
	})
	c.waitPods(5, 3)
	writes, failed := stop()
	if len(failed) > 0 {
		t.Errorf("%d of %d writes failed:\n%s", len(failed), writes, strings.Join(failed, "\n"))
	}
	t.Logf("%d writes over the renewals, none refused", writes)
	c.noRefusals()
	for _, f := range files {
		certs, err := pki.ReadCerts(f)
		if err != nil {
			t.Fatal(err)
		}
		if got := certs[0].NotAfter.Sub(certs[0].NotBefore); got != life {
			t.Errorf("%s: renewed for %v, want the %v it had", f, got, life)
		}
		if !hasUsage(certs[0], x509.ExtKeyUsageClientAuth) {
			t.Errorf("%s: renewed without client usage", f)
		}
	}
}

func hasUsage(c *x509.Certificate, u x509.ExtKeyUsage) bool {
	for _, have := range c.ExtKeyUsage {
		if have == u {
			return true
		}
	}
	return false
}

// notSignedBy says which of files are not (yet) signed by ca.
func notSignedBy(t *testing.T, ca *x509.Certificate, files []string) []string {
	t.Helper()
	var out []string
	for _, f := range files {
		certs, err := pki.ReadCerts(f)
		if err != nil || certs[0].CheckSignatureFrom(ca) != nil {
			out = append(out, filepath.Base(filepath.Dir(f))+"/"+filepath.Base(f))
		}
	}
	return out
}

// TestRotateCA follows docs/operations.md's runbook "Rotate the CA" on a cluster of three
// API servers, a controller-manager, a scheduler and three kubelets' nodes, each with its
// own copies of the files, under a steady write load: skiff certs rotate-ca add, ca.crt
// copied everywhere; switch, ca.crt and ca.key copied, every member and component
// re-issued its own certificates by the new CA; drop, ca.crt copied. No write is
// refused, no component logs a refusal, and the cluster keeps scheduling afterwards.
func TestRotateCA(t *testing.T) {
	t.Parallel() // a cluster of its own, mostly waiting: see harness_test.go
	c := startCertCluster(t, 3, "8760h")
	oldCA := t.TempDir()
	copyFiles(t, c.admin, []string{"admin.crt", "admin.key"}, oldCA) // the old CA's, for the end
	stop := c.load()
	everywhere := append([]string{c.comps, c.admin}, c.members...)
	rotate := func(step string) {
		t.Helper()
		p := start(t, "rotate-ca "+step, "certs", "rotate-ca", step, "--dir", c.pki)
		select {
		case <-p.done:
		case <-time.After(60 * time.Second):
			t.Fatalf("certs rotate-ca %s did not finish", step)
		}
		if !p.cmd.ProcessState.Success() {
			t.Fatalf("certs rotate-ca %s: %s", step, p.out.String())
		}
	}

	rotate("add")
	copyFiles(t, c.pki, []string{"ca.crt"}, everywhere...)
	// Everyone reads ca.crt at its next handshake: let new connections be made with it.
	c.waitPods(4, 3)

	rotate("switch")
	copyFiles(t, c.pki, []string{"ca.key", "ca.crt"}, c.members...)
	copyFiles(t, c.pki, []string{"ca.crt"}, c.comps, c.admin)
	ca, err := pki.LoadCA(c.pki)
	if err != nil {
		t.Fatal(err)
	}
	var leaves []string
	for _, name := range []string{"controller-manager", "scheduler", "kubelet-w1", "kubelet-s", "kubelet-s-0", "kubelet-s-1"} {
		leaves = append(leaves, filepath.Join(c.comps, name+".crt"))
	}
	for _, m := range c.members {
		leaves = append(leaves, filepath.Join(m, "apiserver.crt"))
	}
	leaves = append(leaves, filepath.Join(c.admin, "admin.crt"))
	waitfor.Condition(t, 4*time.Minute, "every certificate re-issued by the new CA", func() (bool, string) {
		old := notSignedBy(t, ca.Cert, leaves)
		return len(old) == 0, "still the old CA's: " + strings.Join(old, ", ")
	})
	// Connections opened with the old certificates close once their calls had time to
	// finish (client.Options.RetireAfter, 30 s); the scale proves new ones work.
	c.waitPods(5, 3)

	rotate("drop")
	copyFiles(t, c.pki, []string{"ca.crt"}, everywhere...)
	c.waitPods(2, 3)
	writes, failed := stop()
	if len(failed) > 0 {
		t.Errorf("%d of %d writes failed:\n%s", len(failed), writes, strings.Join(failed, "\n"))
	}
	t.Logf("%d writes over the rotation, none refused", writes)
	c.noRefusals()
	// After the drop, a client of the old CA is refused.
	if out, errs, err := ctl(c.servers, "--ca-file", filepath.Join(c.pki, "ca.crt"), "--cert-file", filepath.Join(oldCA, "admin.crt"),
		"--key-file", filepath.Join(oldCA, "admin.key"), "get", "pods"); err == nil {
		t.Fatalf("a certificate of the dropped CA was accepted: %s", out)
	} else {
		t.Logf("a certificate of the dropped CA: %s", errs)
	}
}

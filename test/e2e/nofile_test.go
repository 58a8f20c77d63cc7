package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/test/freeport"
	"github.com/skiffhq/skiff/test/waitfor"
)

// TestFloodUnderLowFileLimit: an API server whose file limit is low (2,048, as on hosts
// that keep the common soft limit of 1,024 or a unit's LimitNOFILE) and that is flooded
// with idle connections from one loopback address — more than its file limit — neither
// runs out of files nor keeps an administrator out: connections in their handshake take at
// most half of the connections it allows below its file limit, and a new one pushes out
// the oldest of them.
func TestFloodUnderLowFileLimit(t *testing.T) {
	if _, err := exec.LookPath("prlimit"); err != nil {
		t.Skip("prlimit (util-linux) is not installed")
	}
	pkiDir := t.TempDir()
	p := func(n string) string { return filepath.Join(pkiDir, n) }
	init := start(t, "certs init", "certs", "init", "--dir", pkiDir, "--hosts", "127.0.0.1")
	select {
	case <-init.done:
	case <-time.After(60 * time.Second):
		t.Fatal("certs init did not finish")
	}
	ports := freeport.Loopback(t, 2)
	api := fmt.Sprintf("127.0.0.1:%d", ports[0])
	srv := startCommand(t, "apiserver", exec.Command("prlimit", "--nofile=2048:2048", "--", filepath.Join(binDir, "skiff"),
		"apiserver", "--name", "n1", "--data-dir", t.TempDir(), "--listen", api,
		"--raft-listen", fmt.Sprintf("127.0.0.1:%d", ports[1]), "--log-level", "info",
		"--tls-cert-file", p("apiserver.crt"), "--tls-key-file", p("apiserver.key"), "--client-ca-file", p("ca.crt"),
		"--peer-cert-file", p("apiserver.crt"), "--peer-key-file", p("apiserver.key"), "--peer-ca-file", p("ca.crt")))
	admin := func(args ...string) (string, string, error) {
		return ctl(api, append([]string{"--ca-file", p("ca.crt"), "--cert-file", p("admin.crt"), "--key-file", p("admin.key")}, args...)...)
	}
	waitfor.Condition(t, 60*time.Second, "the API server answering", func() (bool, string) {
		out, errs, err := admin("get", "namespaces")
		return err == nil, out + errs
	})
	limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", srv.cmd.Process.Pid))
	if err != nil || !strings.Contains(string(limits), "Max open files            2048                 2048") {
		t.Fatalf("the API server's file limit is not 2048: %v\n%s", err, limits)
	}

	// 3,000 idle connections, no TLS byte sent, kept open by this process.
	attacker := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 10 * time.Second}
	var flood []net.Conn
	t.Cleanup(func() {
		for _, c := range flood {
			c.Close()
		}
	})
	for range 3000 {
		c, err := attacker.Dial("tcp", api)
		if err != nil {
			t.Fatalf("flood: %v", err)
		}
		flood = append(flood, c)
	}
	began := time.Now()
	out, errs, err := admin("get", "namespaces", "--request-timeout", "5s")
	if err != nil || !strings.Contains(out, "default") {
		t.Fatalf("an administrator's call during the flood: %v\n%s%s\n--- API server ---\n%s", err, out, errs, lastLines(srv.out.String(), 40))
	}
	t.Logf("answered in %v during a flood of 3,000 idle connections under a file limit of 2,048", time.Since(began))
	if log := srv.out.String(); strings.Contains(log, "too many open files") {
		t.Fatalf("the API server ran out of files:\n%s", lastLines(log, 40))
	}
}

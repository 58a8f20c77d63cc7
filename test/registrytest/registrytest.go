// Package registrytest runs a private image registry for tests: Debian's docker-registry
// (distribution 2.x) on a free loopback port, plain HTTP, storing under a temporary
// directory. Without the binary (`make deps` installs it) the test is skipped, saying why.
package registrytest

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Binary is where Debian's docker-registry package installs the registry.
const Binary = "/usr/bin/docker-registry"

// Start starts a registry for t and returns its address, 127.0.0.1:PORT. It stops at
// t's cleanup.
func Start(t testing.TB) string {
	t.Helper()
	return StartOn(t, "127.0.0.1")
}

// StartOn starts a registry listening on a free port of ip and returns its address,
// IP:PORT.
func StartOn(t testing.TB, ip string) string {
	t.Helper()
	bin := Binary
	if _, err := os.Stat(bin); err != nil {
		if bin, err = exec.LookPath("docker-registry"); err != nil {
			t.Skipf("docker-registry is not installed (make deps installs Debian's docker-registry package)")
		}
	}
	dir := t.TempDir()
	// A free port: the kernel picks one, the registry takes it over. Another process
	// could grab it in between; the start then fails and says so.
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	config := fmt.Sprintf(`version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, filepath.Join(dir, "data"), addr)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	cmd := exec.Command(bin, "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("registry log:\n%s", log.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return addr
			}
		}
		select {
		case <-exited:
			t.Fatalf("registry exited at start:\n%s", log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry did not answer at %s within 30s (%v):\n%s", addr, err, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

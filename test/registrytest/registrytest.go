// Package registrytest runs a private image registry for tests: Debian's docker-registry
// (distribution 2.x) on a free loopback port, plain HTTP, storing under a temporary
// directory. Without the binary (`make deps` installs it) the test is skipped, saying why.
package registrytest

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/deathsig"
)

// Binary is where Debian's docker-registry package installs the registry.
const Binary = "/usr/bin/docker-registry"

// Start starts a registry for t and returns its address, 127.0.0.1:PORT. It stops at
// t's cleanup.
func Start(t testing.TB) string {
	t.Helper()
	return StartOn(t, "127.0.0.1")
}

// The login of a registry started with StartWithAuth: User and Password, the password
// as the registry's htpasswd file holds it (bcrypt).
const (
	User         = "skiff"
	Password     = "s3cret"
	passwordHash = "$2a$04$ql4FeLofd5DadYppR998zeX2gTl68.w6t6SWye/bvmIPTPDS5caXK"
)

// StartWithAuth starts a registry on 127.0.0.1 that asks for basic authentication
// (User, Password) and returns its address.
func StartWithAuth(t testing.TB) string {
	t.Helper()
	return start(t, "127.0.0.1", true)
}

// StartOn starts a registry listening on a free port of ip and returns its address,
// IP:PORT.
func StartOn(t testing.TB, ip string) string {
	t.Helper()
	return start(t, ip, false)
}

func start(t testing.TB, ip string, auth bool) string {
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
	if auth {
		htpasswd := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(htpasswd, []byte(User+":"+passwordHash+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		config += fmt.Sprintf("auth:\n  htpasswd:\n    realm: skiff-test\n    path: %s\n", htpasswd)
	}
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	cmd := exec.Command(bin, "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = &log, &log
	done, err := deathsig.Start(cmd)
	if err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	exited := make(chan struct{})
	go func() { <-done; close(exited) }()
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
			if resp.StatusCode == http.StatusOK || (auth && resp.StatusCode == http.StatusUnauthorized) {
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

// PushArchive pushes the one image of an OCI image archive (an oci-layout tar, as
// kubelet/containerd's BusyboxArchive makes) to the registry at addr as repo:tag, over
// plain HTTP, with the login when user is not empty: the registry API's blob uploads
// and manifest put, nothing else needed.
func PushArchive(t testing.TB, addr, user, password string, archive []byte, repo, tag string) {
	t.Helper()
	files := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(archive))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = b
	}
	type desc struct {
		MediaType string `json:"mediaType"`
		Digest    string `json:"digest"`
	}
	var index struct{ Manifests []desc }
	if err := json.Unmarshal(files["index.json"], &index); err != nil || len(index.Manifests) != 1 {
		t.Fatalf("archive index: %v (%d manifests)", err, len(index.Manifests))
	}
	blob := func(d string) []byte { return files["blobs/sha256/"+strings.TrimPrefix(d, "sha256:")] }
	manifest := blob(index.Manifests[0].Digest)
	var m struct {
		Config desc
		Layers []desc
	}
	if err := json.Unmarshal(manifest, &m); err != nil {
		t.Fatal(err)
	}
	do := func(method, url, contentType string, body []byte) *http.Response {
		req, err := http.NewRequest(method, url, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		if user != "" {
			req.SetBasicAuth(user, password)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			t.Fatalf("%s %s: %s", method, url, resp.Status)
		}
		return resp
	}
	base := "http://" + addr + "/v2/" + repo
	for _, d := range append(m.Layers, m.Config) {
		loc := do(http.MethodPost, base+"/blobs/uploads/", "", nil).Header.Get("Location")
		if !strings.HasPrefix(loc, "http") {
			loc = "http://" + addr + loc
		}
		sep := "?"
		if strings.Contains(loc, "?") {
			sep = "&"
		}
		do(http.MethodPut, loc+sep+"digest="+d.Digest, "application/octet-stream", blob(d.Digest))
	}
	do(http.MethodPut, base+"/manifests/"+tag, index.Manifests[0].MediaType, manifest)
}

package ui

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestStaticIsFresh fails when the committed page (static/) was not rebuilt from web/:
// run `make ui`. The hash of the sources, which build.mjs records, is checked always (no
// Node needed); where esbuild is installed (make ui-tools), the page is rebuilt into a
// temporary directory and compared byte for byte too.
func TestStaticIsFresh(t *testing.T) {
	files := []string{"web/build.mjs", "web/package-lock.json", "web/package.json"}
	src, err := filepath.Glob("web/src/*")
	if err != nil || len(src) == 0 {
		t.Fatalf("no page sources in web/src: %v", err)
	}
	files = append(files, src...)
	sort.Strings(files)
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		h.Write([]byte(strings.TrimPrefix(f, "web/") + "\n"))
		h.Write(b)
	}
	recorded, err := os.ReadFile("static/sources.sha256")
	if err != nil {
		t.Fatalf("static/sources.sha256: %v: run make ui", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); strings.TrimSpace(string(recorded)) != got {
		t.Fatalf("static/ was built from other sources than web/ holds (hash %s, web/ hashes to %s): run make ui", strings.TrimSpace(string(recorded)), got)
	}

	if _, err := os.Stat("web/node_modules/esbuild"); err != nil {
		t.Logf("esbuild is not installed (make ui-tools installs it): the page was not rebuilt to compare")
		return
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Logf("no node: the page was not rebuilt to compare")
		return
	}
	out := t.TempDir()
	cmd := exec.Command("node", "build.mjs", out)
	cmd.Dir = "web"
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("node build.mjs: %v\n%s", err, b)
	}
	built, _ := os.ReadDir(out)
	committed, _ := os.ReadDir("static")
	if len(built) != len(committed) {
		t.Errorf("static/ holds %d files, the build makes %d: run make ui", len(committed), len(built))
	}
	for _, e := range built {
		want, _ := os.ReadFile(filepath.Join(out, e.Name()))
		got, err := os.ReadFile(filepath.Join("static", e.Name()))
		if err != nil {
			t.Errorf("static/%s is not committed: run make ui", e.Name())
		} else if !bytes.Equal(got, want) {
			t.Errorf("static/%s is stale: run make ui", e.Name())
		}
	}
}

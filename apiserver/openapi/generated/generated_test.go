package generated

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGeneratedDefinitionsAreFresh runs this package's go:generate line into a temporary
// directory and compares the result with the committed file: run `make openapi` when it
// fails.
func TestGeneratedDefinitionsAreFresh(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	for _, line := range strings.Split(string(src), "\n") {
		if rest, ok := strings.CutPrefix(line, "//go:generate go "); ok {
			args = strings.Fields(rest)
		}
	}
	if len(args) == 0 {
		t.Fatal("doc.go has no go:generate line")
	}
	out := t.TempDir()
	header, _ := filepath.Abs("../../../hack/boilerplate.go.txt")
	for i := range args {
		switch {
		case i > 0 && args[i-1] == "--output-dir":
			args[i] = out
		case i > 0 && args[i-1] == "--go-header-file":
			args[i] = header
		}
	}
	cmd := exec.Command("go", args...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	want, err := os.ReadFile(filepath.Join(out, "zz_generated.openapi.go"))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile("zz_generated.openapi.go")
	if !bytes.Equal(got, want) {
		t.Errorf("zz_generated.openapi.go is stale: run make openapi")
	}
}

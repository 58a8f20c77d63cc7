package proto_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGeneratedCodeIsFresh regenerates the Go code from the .proto sources into a
// temporary directory and compares it with the committed files: run `make proto` when it
// fails.
func TestGeneratedCodeIsFresh(t *testing.T) {
	tools, _ := filepath.Abs("../bin/tools")
	os.Setenv("PATH", tools+string(os.PathListSeparator)+os.Getenv("PATH"))
	for _, tool := range []string{"protoc", "protoc-gen-go", "protoc-gen-go-grpc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (make tools installs it): cannot check the generated code", tool)
		}
	}
	var sources []string
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(path, ".proto") {
			sources = append(sources, path)
		}
		return err
	})
	if err != nil || len(sources) == 0 {
		t.Fatalf("no .proto sources found: %v", err)
	}
	out := t.TempDir()
	args := append([]string{"-I", ".", "--go_out=" + out, "--go_opt=paths=source_relative",
		"--go-grpc_out=" + out, "--go-grpc_opt=paths=source_relative"}, sources...)
	if b, err := exec.Command("protoc", args...).CombinedOutput(); err != nil {
		t.Fatalf("protoc: %v\n%s", err, b)
	}
	generated := 0
	err = filepath.WalkDir(out, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		generated++
		rel, _ := filepath.Rel(out, path)
		want, _ := os.ReadFile(path)
		got, rerr := os.ReadFile(rel)
		if rerr != nil {
			t.Errorf("%s is not committed: run make proto", rel)
		} else if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run make proto", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	committed, _ := filepath.Glob("*/*/*.pb.go")
	if len(committed) != generated {
		t.Errorf("%d generated files are committed, protoc makes %d: remove the stale ones", len(committed), generated)
	}
}

package main

import (
	"bytes"
	"flag"
	"os"
	"testing"

	"github.com/skiffhq/skiff/skiffctl"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite docs/cli-skiff.md")

// TestCLIReference keeps docs/cli-skiff.md, generated from the command tree, current.
func TestCLIReference(t *testing.T) {
	got := skiffctl.Reference(rootCmd(), "skiff reference")
	// Defaults that depend on the machine are written as placeholders.
	host, _ := os.Hostname()
	home, _ := os.UserHomeDir()
	got = bytes.ReplaceAll(got, []byte(home), []byte("$HOME"))
	if host != "" {
		got = bytes.ReplaceAll(got, []byte(`"`+host), []byte(`"HOSTNAME`))
	}
	const path = "../../docs/cli-skiff.md"
	if *updateDocs {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("%s is stale: run go test ./cmd/skiff -run TestCLIReference -update-docs", path)
	}
}

package skiffctl

import (
	"bytes"
	"flag"
	"os"
	"testing"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite docs/cli.md")

// TestCLIReference keeps docs/cli.md, generated from the command tree, current.
func TestCLIReference(t *testing.T) {
	got := Reference(NewCommand(StdStreams()), "skiffctl reference")
	const path = "../docs/cli.md"
	if *updateDocs {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("%s is stale: run go test ./skiffctl -run TestCLIReference -update-docs", path)
	}
}

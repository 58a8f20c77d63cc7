package store

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// TestMakePrivate: a data dir made beforehand 0755 with files 0644 (and an executable
// 0755 file) ends 0700 and 0600 throughout; what was stricter stays so.
func TestMakePrivate(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "snapshots", "1-2-3")
	for _, d := range []string{dir, sub} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]os.FileMode{
		filepath.Join(dir, "state.db"):      0o644,
		filepath.Join(sub, "state.bin"):     0o755,
		filepath.Join(dir, "raft.db"):       0o600,
		filepath.Join(dir, "owner-only.ro"): 0o400,
	}
	for f, mode := range files {
		if err := os.WriteFile(f, []byte("x"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(f, mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := makePrivate(dir, hclog.NewNullLogger()); err != nil {
		t.Fatal(err)
	}
	want := map[string]os.FileMode{dir: 0o700, filepath.Join(dir, "snapshots"): 0o700, sub: 0o700,
		filepath.Join(dir, "state.db"): 0o600, filepath.Join(sub, "state.bin"): 0o600,
		filepath.Join(dir, "raft.db"): 0o600, filepath.Join(dir, "owner-only.ro"): 0o400}
	for p, mode := range want {
		info, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != mode {
			t.Errorf("%s: %#o, want %#o", p, info.Mode().Perm(), mode)
		}
	}
}

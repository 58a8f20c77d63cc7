package store

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"
)

// makePrivate makes the data directory the server's alone, as etcd does its own: the
// directories in it 0700 and the files 0600. The state, the Raft log and the snapshots
// hold every object, Secrets among them; a directory made beforehand with the usual
// 0755, or files an older release or another tool made 0644, would let any user of the
// machine read them. What it had to change it says once, in one line.
func makePrivate(dir string, log hclog.Logger) error {
	var fixed []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil // not ours to change; what it points at is checked where it is
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if info.Mode().Perm()&^want == 0 {
			return nil
		}
		if err := os.Chmod(path, info.Mode().Perm()&want); err != nil {
			return fmt.Errorf("data dir %s: make %s private: %w", dir, path, err)
		}
		fixed = append(fixed, fmt.Sprintf("%s (was %#o)", path, info.Mode().Perm()))
		return nil
	})
	if err != nil {
		return fmt.Errorf("data dir %s: %w", dir, err)
	}
	if len(fixed) > 0 {
		log.Warn("data dir was readable by other users; made it private (directories 0700, files 0600)", "dir", dir, "changed", len(fixed), "first", fixed[0])
	}
	return nil
}

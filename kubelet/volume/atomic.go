package volume

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/apimachinery/pkg/types"
)

// The atomic writer's own names in a volume, as Kubernetes' (its users' paths may not
// start with "..", which validation enforces).
const (
	dataDirName    = "..data"
	newDataDirName = "..data_tmp"
)

// writeAtomic makes dir hold exactly files (paths relative to dir), on a tmpfs when
// secret, and returns dir. Content that did not change is not rewritten. See the
// package comment for the layout. With Config.SkipContent nothing is written.
func (m *Manager) writeAtomic(uid types.UID, dir string, secret bool, files map[string]file, fsGroup *int64) (string, error) {
	if m.cfg.SkipContent {
		return dir, nil
	}
	sum := digest(files, fsGroup)
	m.mu.Lock()
	same := m.written[uid][dir] == sum
	m.mu.Unlock()
	if same {
		return dir, nil
	}
	if err := m.writeAtomicDir(dir, secret, files, fsGroup); err != nil {
		return "", err
	}
	m.mu.Lock()
	if m.written[uid] == nil {
		m.written[uid] = map[string]contentDigest{}
	}
	m.written[uid][dir] = sum
	m.mu.Unlock()
	return dir, nil
}

// contentDigest identifies a volume's content: its files' paths, modes and data, and
// the fsGroup they were given.
type contentDigest [sha256.Size]byte

func digest(files map[string]file, fsGroup *int64) contentDigest {
	h := sha256.New()
	var n [8]byte
	put := func(v uint64) {
		binary.BigEndian.PutUint64(n[:], v)
		h.Write(n[:])
	}
	if fsGroup != nil {
		put(1)
		put(uint64(*fsGroup))
	} else {
		put(0)
	}
	for _, rel := range slices.Sorted(maps.Keys(files)) {
		f := files[rel]
		put(uint64(len(rel)))
		h.Write([]byte(rel))
		put(uint64(f.mode))
		put(uint64(len(f.data)))
		h.Write(f.data)
	}
	var d contentDigest
	h.Sum(d[:0])
	return d
}

// writeAtomicDir is writeAtomic without the memory of what it wrote: it compares with
// what dir holds.
func (m *Manager) writeAtomicDir(dir string, secret bool, files map[string]file, fsGroup *int64) error {
	fresh, err := makeDir(dir)
	if err != nil {
		return err
	}
	if fresh {
		// Any user of the pod reads the volume, as its files and the directories of its
		// content; in Kubernetes, its directory is world-writable (the emptyDir its
		// writer wraps) and mounted read-only.
		if err := os.Chmod(dir, 0o755); err != nil {
			return err
		}
	}
	if secret {
		if err := m.mountTmpfs(dir, "mode=0755"); err != nil {
			return err
		}
	}
	// A directory just made holds nothing: what looks for old content is skipped (a
	// pod's first write is most of what its volumes cost a busy node).
	dataLink := filepath.Join(dir, dataDirName)
	old := ""
	if !fresh {
		if old, err = os.Readlink(dataLink); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if old != "" && sameContent(filepath.Join(dir, old), files) {
			return nil
		}
	}
	// 1. The new content, in a directory of its own.
	ts, err := os.MkdirTemp(dir, time.Now().UTC().Format("..2006_01_02_15_04_05."))
	if err != nil {
		return err
	}
	if err := os.Chmod(ts, 0o755); err != nil {
		return err
	}
	for rel, f := range files {
		p := filepath.Join(ts, rel)
		if strings.Contains(rel, "/") {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
		}
		if err := writeFile(p, f, fsGroup); err != nil {
			return err
		}
	}
	// 2. ..data now points at it: a new link renamed over the old one, so that a reader
	// sees the old content or the new. A fresh volume has no reader yet (its pod's
	// containers start once SetUp returns): its link is made in place.
	if fresh {
		if err := os.Symlink(filepath.Base(ts), dataLink); err != nil {
			return err
		}
	} else {
		tmpLink := filepath.Join(dir, newDataDirName)
		os.Remove(tmpLink)
		if err := os.Symlink(filepath.Base(ts), tmpLink); err != nil {
			return err
		}
		if err := os.Rename(tmpLink, dataLink); err != nil {
			return err
		}
	}
	// 3. The user's paths: a link for each top-level name, through ..data.
	want := map[string]bool{}
	for rel := range files {
		top, _, _ := strings.Cut(rel, "/")
		want[top] = true
	}
	for top := range want {
		link := filepath.Join(dir, top)
		if err := os.Symlink(filepath.Join(dataDirName, top), link); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
	}
	if fresh {
		return nil
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, "..") || want[name] {
			continue
		}
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("remove %s: %w", name, err)
		}
	}
	// 4. The old content goes.
	if old != "" {
		if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
			return err
		}
	}
	return nil
}

// writeFile writes f at p with its mode exactly (the umask does not apply) and, with
// fsGroup, that group, which also reads it. It works on the descriptor: os.WriteFile
// and os.Chmod cost twice the system calls (the runtime poller's four fcntl, a second
// path walk), and a pod's first volumes are most of what it costs a busy node.
func writeFile(p string, f file, fsGroup *int64) error {
	fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC, uint32(f.mode.Perm()))
	if err != nil {
		return &os.PathError{Op: "open", Path: p, Err: err}
	}
	fail := func(op string, err error) error {
		unix.Close(fd)
		return &os.PathError{Op: op, Path: p, Err: err}
	}
	for data := f.data; len(data) > 0; {
		n, err := unix.Write(fd, data)
		if err == unix.EINTR {
			continue
		}
		if err == nil && n == 0 {
			err = io.ErrShortWrite
		}
		if err != nil {
			return fail("write", err)
		}
		data = data[n:]
	}
	perm := uint32(f.mode.Perm())
	if fsGroup != nil {
		if err := unix.Fchown(fd, -1, int(*fsGroup)); err != nil {
			return fail("chown", err)
		}
		perm |= 0o040 // the group reads what fsGroup gives it
	}
	if err := unix.Fchmod(fd, perm); err != nil { // open's mode passes the umask
		return fail("chmod", err)
	}
	if err := unix.Close(fd); err != nil {
		return &os.PathError{Op: "close", Path: p, Err: err}
	}
	return nil
}

// sameContent tells whether dir holds exactly files, with their data and modes.
func sameContent(dir string, files map[string]file) bool {
	n := 0
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		f, ok := files[rel]
		if !ok {
			return errors.New("extra")
		}
		got, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(got, f.data) {
			return errors.New("changed")
		}
		if fi, err := d.Info(); err != nil || fi.Mode().Perm()&^0o040 != f.mode.Perm()&^0o040 {
			return errors.New("mode")
		}
		n++
		return nil
	})
	return err == nil && n == len(files)
}

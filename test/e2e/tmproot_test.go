package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// A test process's temporary files live under roots named for its pid: TMPDIR (so every
// t.TempDir and b.TempDir, and the temporary files of the processes it starts) and the
// simulated nodes' memory directory in /dev/shm. A process killed before its cleanups
// ran (a benchmark stopped by `timeout`, a test binary's -timeout panic) leaves them;
// the next test process removes the roots of processes that no longer exist, unmounting
// what is still mounted under them first. Benchmarks' roots hold GiBs (three members'
// state of 50,000 pods, in /dev/shm a memory filesystem): left behind, they filled the
// disk and the memory of the machine the next runs measured on.
const (
	tmpRootPrefix = "skiff-e2e-"   // in os.TempDir()
	shmRootPrefix = "skiff-bench-" // in /dev/shm
)

// rootName is this process's root's name with prefix.
func rootName(prefix string) string { return fmt.Sprintf("%s%d-", prefix, os.Getpid()) }

// reapRoots removes the roots with prefix in parent of processes that no longer exist,
// and returns their paths.
func reapRoots(parent, prefix string) []string {
	entries, err := os.ReadDir(parent)
	if err != nil {
		return nil
	}
	var reaped []string
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok || !e.IsDir() {
			continue
		}
		pidText, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid <= 0 || alive(pid) {
			continue
		}
		dir := filepath.Join(parent, e.Name())
		detachMounts(dir) // what stays mounted fails the removal below
		if os.RemoveAll(dir) == nil {
			reaped = append(reaped, dir)
		}
	}
	return reaped
}

// detachMounts detaches every mount at or under dir, the deepest first (a pod's tmpfs
// volumes a killed kubelet left), so that dir can be removed; the errors of those it
// could not, joined.
func detachMounts(dir string) error {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	var points []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		// The mount point is the fifth field, spaces and the like octal-escaped (\040).
		if f := strings.Fields(sc.Text()); len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			points = append(points, f[4])
		}
	}
	slices.Sort(points)
	var errs []error
	for _, p := range slices.Backward(points) {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

package jepsen

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	utilversion "k8s.io/apimachinery/pkg/util/version"

	"github.com/skiffhq/skiff/version"
)

// previousCommit is the previous release the upgrade nemesis starts its cluster at: the
// last landing of main before this release's (it speaks this release's wire and writes
// state format 2, which this release reads). Move it forward at each release.
const previousCommit = "02c0435"

// errNoHistory: the checkout has no git history holding the previous release.
var errNoHistory = errors.New("no git history")

var (
	previousOnce sync.Once
	previousBin  string
	previousErr  error
)

// previousRelease returns `skiff` built from previousCommit, stamped one minor version
// below this build (so the members' skew check sees two releases and accepts them).
// It is built once, from `git archive` of the commit, into a cache every checkout of the
// machine shares (${XDG_CACHE_HOME:-~/.cache}/skiff/previous/COMMIT-VERSION/, as
// test/tools/build-seaweedfs.sh caches SeaweedFS), and reused by later runs: the first
// build takes minutes on a loaded machine, which CI's fresh clone would otherwise pay at
// every run. Without the binary there and without the commit in the git history (no .git,
// or a shallow clone) the test is skipped, saying so and how to get it: the rolling
// upgrade needs the previous release's source, which only the history holds.
func previousRelease(t *testing.T) string {
	t.Helper()
	previousOnce.Do(func() { previousBin, previousErr = buildPrevious(previousCommit, t.Logf) })
	if errors.Is(previousErr, errNoHistory) {
		t.Skipf("SKIPPED: the rolling upgrade from the previous release (commit %s) needs it in the git history: %v", previousCommit, previousErr)
	}
	if previousErr != nil {
		t.Fatalf("the previous release (commit %s) for the rolling upgrade: %v", previousCommit, previousErr)
	}
	return previousBin
}

func buildPrevious(commit string, logf func(string, ...any)) (string, error) {
	stamp, err := previousVersion(version.Version)
	if err != nil {
		return "", err
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("the cache of the previous release: %w", err)
	}
	dir := filepath.Join(cache, "skiff", "previous", commit+"-"+stamp)
	bin := filepath.Join(dir, "skiff")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		return "", fmt.Errorf("%w: git rev-parse --show-toplevel: %v: the upgrade test builds the previous release from the git history; run it in a git checkout", errNoHistory, err)
	}
	root := strings.TrimSpace(string(top))
	if out, err := exec.Command("git", "-C", root, "rev-parse", "--verify", "--quiet", commit+"^{commit}").Output(); err != nil || len(out) == 0 {
		return "", fmt.Errorf("%w: commit %s is not in this checkout's git history (a shallow clone?): `git fetch --unshallow` or `git fetch origin %s` brings it", errNoHistory, commit, commit)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	src, err := os.MkdirTemp(filepath.Dir(dir), "src-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(src)
	logf("building the previous release %s (%s) into %s: minutes on a loaded machine, once", commit, stamp, dir)
	archive := exec.Command("sh", "-c", `git -C "$1" archive "$2" | tar -x -C "$3"`, "sh", root, commit, src)
	if out, err := archive.CombinedOutput(); err != nil {
		return "", fmt.Errorf("git archive %s: %v: %s", commit, err, out)
	}
	tmp := filepath.Join(src, "skiff.bin")
	build := exec.Command("go", "build", "-buildvcs=false", "-ldflags", "-X github.com/skiffhq/skiff/version.Version="+stamp, "-o", tmp, "./cmd/skiff")
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s: %v: %s", commit, err, out)
	}
	// Renamed into place whole, so a concurrent run never finds half a binary.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", err
	}
	return bin, nil
}

// previousVersion is the release one minor version below v, with the commit it is built
// from: v0.1.0 gives v0.0.0-02c0435.
func previousVersion(v string) (string, error) {
	cur, err := utilversion.ParseGeneric(v)
	if err != nil {
		return "", fmt.Errorf("this build's version %q: %w", v, err)
	}
	if cur.Minor() == 0 {
		// v1.0.0's previous release is the last v0 one, which no stamp of this major can
		// say: the same minor, which the skew check accepts as well.
		return fmt.Sprintf("v%d.0.0-%s", cur.Major(), previousCommit), nil
	}
	return fmt.Sprintf("v%d.%d.0-%s", cur.Major(), cur.Minor()-1, previousCommit), nil
}

func TestPreviousVersion(t *testing.T) {
	for _, tc := range []struct{ v, want string }{
		{"v0.1.0", "v0.0.0-" + previousCommit},
		{"v0.3.2", "v0.2.0-" + previousCommit},
		{"v1.0.0", "v1.0.0-" + previousCommit},
	} {
		if got, err := previousVersion(tc.v); err != nil || got != tc.want {
			t.Errorf("previousVersion(%q) = %q, %v; want %q", tc.v, got, err, tc.want)
		}
	}
	if _, err := previousVersion("dev"); err == nil {
		t.Error("previousVersion(\"dev\"): no error")
	}
}

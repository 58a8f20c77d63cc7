package skiffctl_test

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/skiffhq/skiff/test/waitfor"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits, with the tests' shared helper, for cond; a minute, as a loaded 2-core
// machine can take that long to start a cluster and its kubelet.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	waitfor.Condition(t, time.Minute, "condition", func() (bool, string) { return cond(), "not yet" })
}

// TestMain keeps the user's ~/.skiff/config out of the tests.
func TestMain(m *testing.M) {
	os.Setenv("SKIFF_CONFIG", filepath.Join(os.TempDir(), "skiff-ctl-test-no-config"))
	os.Exit(m.Run())
}

package skiffctl_test

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
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

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 20s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestMain keeps the user's ~/.skiff/config out of the tests.
func TestMain(m *testing.M) {
	os.Setenv("SKIFF_CONFIG", filepath.Join(os.TempDir(), "skiff-ctl-test-no-config"))
	os.Exit(m.Run())
}

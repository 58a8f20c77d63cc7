package bench

import (
	"bytes"
	"runtime/pprof"
	"strings"
	"testing"
)

// TestLabel: a goroutine started inside Label carries the component's label in the
// profiles (here the goroutine profile, which prints goroutines' labels).
func TestLabel(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	started := make(chan struct{})
	Label("kubelet", func() {
		go func() {
			close(started)
			<-release
		}()
	})
	<-started
	var buf bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&buf, 1); err != nil {
		t.Fatal(err)
	}
	if want := `"component":"kubelet"`; !strings.Contains(buf.String(), want) {
		t.Errorf("no goroutine labelled %s:\n%s", want, buf.String())
	}
}

package up

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// component is a fake component: it runs until its context ends, or fails with fail
// when told to, or returns nil at once when quick.
type component struct {
	quick   bool
	fail    chan error
	mu      *sync.Mutex
	log     *[]string
	name    string
	stopErr error // returned once stopped, as a component cut off mid-call does
}

func (c component) run(ctx context.Context) error {
	if c.quick {
		return nil
	}
	select {
	case err := <-c.fail:
		return err
	case <-ctx.Done():
		c.mu.Lock()
		*c.log = append(*c.log, c.name+" stopped")
		c.mu.Unlock()
		return c.stopErr
	}
}

type fixture struct {
	mu  sync.Mutex
	log []string
	out bytes.Buffer
}

func (f *fixture) component(name string) component {
	return component{name: name, fail: make(chan error, 1), mu: &f.mu, log: &f.log, stopErr: errors.New("connection closed")}
}

func (f *fixture) hook(name string) func() {
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.log = append(f.log, name)
	}
}

// events returns the log with the components' stops, which come first in any order,
// sorted.
func (f *fixture) events() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := slices.Clone(f.log)
	n := 0
	for n < len(out) && strings.HasSuffix(out[n], " stopped") {
		n++
	}
	slices.Sort(out[:n])
	return out
}

// TestGroupFirstFailureStopsTheRest: the first component to fail is the group's error,
// named; the others stop; then the hooks run, the last registered first.
func TestGroupFirstFailureStopsTheRest(t *testing.T) {
	f := &fixture{}
	g := newGroup(context.Background())
	a, b, c := f.component("a"), f.component("b"), f.component("c")
	g.run("a", a.run)
	g.run("b", b.run)
	g.run("c", c.run)
	g.onStopped(f.hook("then: the private containerd"))
	g.onStopped(f.hook("then: its containers"))
	b.fail <- errors.New("disk full")

	err := g.wait(&f.out)
	if err == nil || err.Error() != "b: disk full" {
		t.Fatalf("error %v, want b: disk full", err)
	}
	g.stop()
	want := []string{"a stopped", "c stopped", "then: its containers", "then: the private containerd"}
	if got := f.events(); !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
	if f.out.Len() != 0 {
		t.Errorf("a failure said %q", f.out.String())
	}
	g.stop() // a second stop does nothing
	if got := f.events(); len(got) != len(want) {
		t.Fatalf("a second stop ran the hooks again: %q", got)
	}
}

// TestGroupNilReturnStopsNothing: a component that returns nil leaves the others
// running; the parent context ending stops them, and the errors they return then are
// not failures.
func TestGroupNilReturnStopsNothing(t *testing.T) {
	f := &fixture{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g := newGroup(ctx)
	quick, a := f.component("quick"), f.component("a")
	quick.quick = true
	done := make(chan struct{})
	g.run("quick", func(ctx context.Context) error { defer close(done); return quick.run(ctx) })
	g.run("a", a.run)
	g.onStopped(f.hook("hook"))
	<-done
	select {
	case <-g.ctx.Done():
		t.Fatal("a component that returned nil stopped the group")
	case <-time.After(50 * time.Millisecond):
	}

	cancel()
	if err := g.wait(&f.out); err != nil {
		t.Fatalf("error %v after the parent ended", err)
	}
	if f.out.String() != "Stopping...\n" {
		t.Errorf("said %q, want Stopping...", f.out.String())
	}
	g.stop()
	if got, want := f.events(), []string{"a stopped", "hook"}; !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
}

// TestGroupStopBeforeWait: stopping a group that could not start everything (Run
// returns early) stops what did start, then runs the hooks.
func TestGroupStopBeforeWait(t *testing.T) {
	f := &fixture{}
	g := newGroup(context.Background())
	a := f.component("a")
	g.run("a", a.run)
	g.onStopped(f.hook("hook"))
	g.stop()
	if got, want := f.events(), []string{"a stopped", "hook"}; !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
}

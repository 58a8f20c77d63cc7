package workers

import (
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiffhq/skiff/test/waitfor"
)

// TestDo: a function runs to its end on a worker, which then serves the next; beyond
// max busy workers a function runs on its caller's goroutine; a panic reaches the
// caller; closing stop ends idle workers.
func TestDo(t *testing.T) {
	stop := make(chan struct{})
	p := New(1, time.Hour, stop)

	ran := false
	p.Do(func() { ran = true })
	if !ran || p.Running() != 1 {
		t.Fatalf("first function: ran %v, %d workers", ran, p.Running())
	}
	p.Do(func() {}) // the idle worker takes it: no second worker
	if n := p.Running(); n != 1 {
		t.Fatalf("%d workers after a second function, want the first reused", n)
	}

	// The one worker busy: another function runs on its caller's goroutine.
	hold, held := make(chan struct{}), make(chan struct{})
	go p.Do(func() { close(held); <-hold })
	<-held
	inline := false
	p.Do(func() { inline = true })
	if !inline || p.Running() != 1 {
		t.Fatalf("with the worker busy: ran %v, %d workers (max 1)", inline, p.Running())
	}
	close(hold)

	func() {
		defer func() {
			if v := recover(); v != "boom" {
				t.Errorf("recovered %v, want the function's panic", v)
			}
		}()
		p.Do(func() { panic("boom") })
		t.Error("Do returned after a panic")
	}()

	close(stop)
	waitfor.Condition(t, 10*time.Second, "workers end once stopped", func() (bool, string) {
		return p.Running() == 0, ""
	})
}

// TestGo: Go returns at once and its function runs on a worker, the same one for the
// functions that follow it; with every worker busy a function still runs, on a
// goroutine of its own, without waiting for a worker; workers end after idle.
func TestGo(t *testing.T) {
	p := New(2, time.Hour, nil)
	var wg sync.WaitGroup
	run := func(f func()) {
		wg.Add(1)
		p.Go(func() { defer wg.Done(); f() })
	}
	// One after another: a worker that has finished one takes the next. (The caller can
	// be quicker than the worker back at its wait, and start a second: of twenty, most
	// are on one goroutine.)
	ids := map[string]int{}
	for range 20 {
		run(func() { ids[goroutine()]++ })
		wg.Wait()
	}
	if most := slices.Max(slices.Collect(maps.Values(ids))); most < 10 || p.Running() > 2 {
		t.Fatalf("twenty functions one after another ran on goroutines %v, %d workers: want one worker reused", ids, p.Running())
	}

	hold := make(chan struct{})
	var started sync.WaitGroup
	started.Add(3)
	for range 3 { // three at once on a pool of two: the third on its own goroutine
		run(func() { started.Done(); <-hold })
	}
	started.Wait() // none waited for a worker to be free
	if n := p.Running(); n != 2 {
		t.Fatalf("%d workers with three functions running, want the pool's 2", n)
	}
	close(hold)
	wg.Wait()
}

// TestIdleWorkersEnd: a worker without work ends after the pool's idle time.
func TestIdleWorkersEnd(t *testing.T) {
	p := New(4, 20*time.Millisecond, nil)
	done := make(chan struct{})
	p.Go(func() { close(done) })
	<-done
	waitfor.Condition(t, 10*time.Second, "workers end after idle", func() (bool, string) {
		return p.Running() == 0, fmt.Sprint(p.Running(), " workers")
	})
}

// goroutine is the calling goroutine's number, from its stack's first line.
func goroutine() string {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	id, _, _ := strings.Cut(strings.TrimPrefix(string(buf), "goroutine "), " ")
	return id
}

// TestNilPool: a nil Pool runs functions as if there were none.
func TestNilPool(t *testing.T) {
	var p *Pool
	ran := false
	p.Do(func() { ran = true })
	if !ran {
		t.Fatal("Do on a nil pool did not run its function")
	}
	done := make(chan struct{})
	p.Go(func() { close(done) })
	<-done
}

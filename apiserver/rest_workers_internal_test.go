package apiserver

import (
	"testing"
	"time"

	"github.com/skiffhq/skiff/test/waitfor"
)

// TestRESTWorkers: a request runs to its end on a worker, which then serves the next;
// beyond max busy workers a request runs on its caller's goroutine; a panic reaches the
// caller (where net/http recovers it); closing stop ends idle workers.
func TestRESTWorkers(t *testing.T) {
	stop := make(chan struct{})
	p := newRESTWorkers(1, time.Hour, stop)

	ran := false
	p.do(func() { ran = true })
	if !ran || p.running.Load() != 1 {
		t.Fatalf("first request: ran %v, %d workers", ran, p.running.Load())
	}
	p.do(func() {}) // the idle worker takes it: no second worker
	if n := p.running.Load(); n != 1 {
		t.Fatalf("%d workers after a second request, want the first reused", n)
	}

	// The one worker busy: another request runs on its caller's goroutine.
	hold, held := make(chan struct{}), make(chan struct{})
	go p.do(func() { close(held); <-hold })
	<-held
	inline := false
	p.do(func() { inline = true })
	if !inline || p.running.Load() != 1 {
		t.Fatalf("with the worker busy: ran %v, %d workers (max 1)", inline, p.running.Load())
	}
	close(hold)

	func() {
		defer func() {
			if v := recover(); v != "boom" {
				t.Errorf("recovered %v, want the request's panic", v)
			}
		}()
		p.do(func() { panic("boom") })
		t.Error("do returned after a panic")
	}()

	close(stop)
	waitfor.Condition(t, 10*time.Second, "workers end once stopped", func() (bool, string) {
		return p.running.Load() == 0, ""
	})
}

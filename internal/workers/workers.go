// Package workers runs functions on goroutines kept for the next one. A goroutine's
// stack starts small and grows, copied at each doubling, to the depth its work needs;
// a request's path through an API server (decoding, admission, the store, Raft) or a
// kubelet's call to one (gRPC, TLS) needs several doublings, so a goroutine started
// for each request, timer or burst of work pays them each time. A worker has grown its
// stack once: it waits a while for the next function before it ends, so a busy process
// keeps as many as its work needs at once, and an idle one none.
//
// gRPC's server does the same for its calls (grpc.NumStreamWorkers), but a worker that
// serves a watch holds it for the watch's life: a member with a hundred watches had no
// worker left for the calls.
package workers

import (
	"sync/atomic"
	"time"
)

// Pool runs functions on its workers: at most max at once, each ending after idle
// without work or when stop is closed. Beyond max busy workers a function runs on a
// goroutine of its own (Go) or its caller's (Do), as it would without a pool. A nil
// Pool runs every function so.
type Pool struct {
	work    chan func()
	running atomic.Int32
	max     int32
	idle    time.Duration
	stop    <-chan struct{}
}

// New makes a pool of at most max workers (each a goroutine with its grown stack),
// each ending after idle without work, or when stop is closed (nil: never).
func New(max int32, idle time.Duration, stop <-chan struct{}) *Pool {
	return &Pool{work: make(chan func()), max: max, idle: idle, stop: stop}
}

// Do runs f on a worker, or on the caller's goroutine when every worker is busy and
// there are max of them, and returns when f has. A panic in f is raised again here, on
// the caller's goroutine (where net/http or gRPC's recovery sees it).
func (p *Pool) Do(f func()) {
	if p == nil {
		f()
		return
	}
	done := make(chan any, 1)
	job := func() {
		defer func() { done <- recover() }()
		f()
	}
	if !p.start(job) {
		job()
	}
	if v := <-done; v != nil {
		panic(v)
	}
}

// Go runs f on a worker, or on a goroutine of its own when every worker is busy and
// there are max of them, and returns at once. f's owner waits for it as it would for
// a goroutine of its own.
func (p *Pool) Go(f func()) {
	if p == nil || !p.start(f) {
		go f()
	}
}

// start hands f to an idle worker, or to a new one if there are fewer than max; false
// if neither.
func (p *Pool) start(f func()) bool {
	select {
	case p.work <- f: // an idle worker took it
		return true
	default:
	}
	if p.running.Add(1) > p.max {
		p.running.Add(-1)
		return false
	}
	go p.loop(f)
	return true
}

func (p *Pool) loop(f func()) {
	defer p.running.Add(-1)
	t := time.NewTimer(p.idle)
	defer t.Stop()
	for {
		f()
		t.Reset(p.idle)
		select {
		case f = <-p.work:
		case <-t.C:
			return
		case <-p.stop:
			return
		}
	}
}

// Running is how many workers there are, busy or idle.
func (p *Pool) Running() int { return int(p.running.Load()) }

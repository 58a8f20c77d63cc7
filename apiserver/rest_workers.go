package apiserver

import (
	"sync/atomic"
	"time"
)

// restWorkers run the REST API's writes on long-lived goroutines, as gRPC's server does
// its calls (grpc.NumStreamWorkers): net/http starts a goroutine for every HTTP/2
// request, whose stack then grows, copied at each doubling, to the depth of a write's
// path (decoding, admission, the store, Raft) — 5% of a create's CPU in
// http_create_pod_c100. A worker's stack has grown once. Workers are started as
// requests need them, at most max at a time (beyond, a request runs on its own
// goroutine), and end after idle without work, or when stop is closed.
// restMaxWorkers bounds the workers (their stacks: a few MiB at most); restWorkerIdle
// is how long one waits for work before it ends.
const (
	restMaxWorkers = 256
	restWorkerIdle = 30 * time.Second
)

type restWorkers struct {
	work    chan func()
	running atomic.Int32
	max     int32
	idle    time.Duration
	stop    <-chan struct{}
}

func newRESTWorkers(max int32, idle time.Duration, stop <-chan struct{}) *restWorkers {
	return &restWorkers{work: make(chan func()), max: max, idle: idle, stop: stop}
}

// do runs f on a worker, or on the caller's goroutine when every worker is busy and
// there are max of them, and returns when f has. A panic in f is raised again here, on
// the request's goroutine, where net/http recovers it.
func (p *restWorkers) do(f func()) {
	done := make(chan any, 1)
	job := func() {
		defer func() { done <- recover() }()
		f()
	}
	select {
	case p.work <- job: // an idle worker took it
	default:
		if p.running.Add(1) <= p.max {
			go p.loop(job)
		} else {
			p.running.Add(-1)
			job()
		}
	}
	if v := <-done; v != nil {
		panic(v)
	}
}

func (p *restWorkers) loop(job func()) {
	defer p.running.Add(-1)
	t := time.NewTimer(p.idle)
	defer t.Stop()
	for {
		job()
		t.Reset(p.idle)
		select {
		case job = <-p.work:
		case <-t.C:
			return
		case <-p.stop:
			return
		}
	}
}

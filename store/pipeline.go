package store

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// pipelineTransport is Raft's TCP transport with its pipelined replication made safe to
// fail (hashicorp/raft#612, open in v1.7.3). A leader replicates to a follower through a
// pipeline: one goroutine sends appends, another (pipelineDecode) reads their responses
// and returns at the first refused one. The pipeline's own decoder then blocks handing
// the next response to no reader, so the sender blocks in its next send, and the
// replication goroutine, which closes the pipeline only after that send, never does: the
// follower, still sent heartbeats, gets no entry again and never calls an election. A
// follower refuses an append whose entries it cannot store, so a full disk left it
// behind for good.
//
// safePipeline reads the responses itself and hands them on until a refused one; after
// it, it drops the rest (nothing reads them) and refuses further sends, which makes Raft
// close the pipeline and go back to one append at a time, as it does on any pipeline error.
type pipelineTransport struct {
	*raft.NetworkTransport
}

// What Raft asks of a transport beyond raft.Transport, kept through the embedding.
var (
	_ raft.WithPreVote = (*pipelineTransport)(nil)
	_ raft.WithClose   = (*pipelineTransport)(nil)
)

func (t *pipelineTransport) AppendEntriesPipeline(id raft.ServerID, target raft.ServerAddress) (raft.AppendPipeline, error) {
	p, err := t.NetworkTransport.AppendEntriesPipeline(id, target)
	if err != nil {
		return nil, err
	}
	return newSafePipeline(p), nil
}

// errPipelineRefused is what a send on a pipeline returns once the follower refused an
// append on it.
var errPipelineRefused = errors.New("the follower refused an append: pipeline closing")

type safePipeline struct {
	raft.AppendPipeline
	out     chan raft.AppendFuture
	refused atomic.Bool
	closing chan struct{}
	once    sync.Once
	done    chan struct{}
}

func newSafePipeline(p raft.AppendPipeline) *safePipeline {
	sp := &safePipeline{AppendPipeline: p, out: make(chan raft.AppendFuture), closing: make(chan struct{}), done: make(chan struct{})}
	go sp.forward()
	return sp
}

// forward hands the responses on (Consumer) until Raft stops reading them: after a
// refused append (a failed response, or one of a newer term; pipelineDecode returns at
// either) or Close.
func (p *safePipeline) forward() {
	defer close(p.done)
	in := p.AppendPipeline.Consumer()
	for {
		select {
		case f := <-in:
			if p.refused.Load() {
				continue
			}
			if resp := f.Response(); f.Error() != nil || !resp.Success || resp.Term > f.Request().Term {
				p.refused.Store(true)
			}
			select {
			case p.out <- f:
			case <-p.closing:
				return
			}
		case <-p.closing:
			return
		}
	}
}

func (p *safePipeline) AppendEntries(args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) (raft.AppendFuture, error) {
	if p.refused.Load() {
		return nil, errPipelineRefused
	}
	return p.AppendPipeline.AppendEntries(args, resp)
}

func (p *safePipeline) Consumer() <-chan raft.AppendFuture { return p.out }

func (p *safePipeline) Close() error {
	err := p.AppendPipeline.Close()
	p.once.Do(func() { close(p.closing) })
	<-p.done
	return err
}

package store

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/skiffhq/skiff/test/waitfor"
)

// TestPipelineEndsAtARefusedAppend: once a follower refuses an append sent through a
// replication pipeline, and Raft's decoder stops reading (as pipelineDecode does), the
// sends that follow fail instead of blocking forever (hashicorp/raft#612): the failure
// makes Raft close the pipeline and replicate one append at a time again.
func TestPipelineEndsAtARefusedAppend(t *testing.T) {
	follower, err := raft.NewTCPTransport("127.0.0.1:0", nil, 2, 5*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	stopServing, served := make(chan struct{}), make(chan struct{})
	go func() { // a follower whose log refuses every append (a full disk)
		defer close(served)
		for {
			select {
			case rpc := <-follower.Consumer():
				rpc.Respond(&raft.AppendEntriesResponse{Term: 1, Success: false}, nil)
			case <-stopServing:
				return
			}
		}
	}()
	leaderNet, err := raft.NewTCPTransport("127.0.0.1:0", nil, 2, 5*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	leader := &pipelineTransport{leaderNet}
	p, err := leader.AppendEntriesPipeline("f", follower.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}

	// Raft's pipelineDecode: read the responses until the first refused append.
	go func() {
		for f := range p.Consumer() {
			if !f.Response().Success {
				return
			}
		}
	}()
	// Raft's pipelineSend, at its worst: sends go on after the decoder returned.
	var sendErr error
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for i := uint64(1); ; i++ {
			req := &raft.AppendEntriesRequest{Term: 1, PrevLogEntry: i - 1, PrevLogTerm: 1,
				Entries: []*raft.Log{{Index: i, Term: 1, Type: raft.LogCommand, Data: []byte("x")}}}
			if _, sendErr = p.AppendEntries(req, new(raft.AppendEntriesResponse)); sendErr != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		p.Close() // ends a send blocked in the pipeline
		<-sent
		close(stopServing)
		<-served
		leader.Close()
		follower.Close()
	})
	waitfor.Condition(t, 30*time.Second, "a send to fail after the follower refused an append", func() (bool, string) {
		select {
		case <-sent:
			return true, ""
		default:
			return false, "the sender is still sending, or blocked in a send"
		}
	})
	if !errors.Is(sendErr, errPipelineRefused) {
		t.Fatalf("the send failed with %v, want %v", sendErr, errPipelineRefused)
	}
}

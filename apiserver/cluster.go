package apiserver

import (
	"context"
	"errors"
	"io"

	"google.golang.org/grpc/codes"

	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
	"github.com/skiffhq/skiff/proto/kinds"
	"github.com/skiffhq/skiff/store"
)

// memberKind is where each API server records its API address in the store, so that any
// member can say where the others serve. It is not an API kind: clients cannot reach it.
const memberKind = "skiff.member"

// cluster implements the Cluster service.
type cluster struct {
	apiv1.UnimplementedClusterServer
	store *store.Store
}

var memberInfo = &kinds.Info{Kind: "Member", Plural: "members"}

func (c *cluster) Status(ctx context.Context, _ *apiv1.ClusterStatusRequest) (*apiv1.ClusterStatus, error) {
	st, err := c.store.Status()
	if err != nil {
		return nil, storeError(memberInfo, "", err)
	}
	apiAddrs := map[string]string{}
	recs, _, err := c.store.List(ctx, memberKind, store.ListOptions{Stale: true})
	if err == nil {
		for _, r := range recs {
			apiAddrs[r.Name] = string(r.Value)
		}
	}
	out := &apiv1.ClusterStatus{
		Leader:   st.LeaderID,
		Term:     st.Term,
		Revision: st.Revision,
		Self: &apiv1.MemberStatus{
			Name: st.ID, State: st.State, CommitIndex: st.CommitIndex, AppliedIndex: st.AppliedIndex,
			SnapshotIndex: st.SnapshotIndex, LastLogIndex: st.LastLogIndex,
		},
	}
	for _, m := range st.Members {
		out.Members = append(out.Members, &apiv1.Member{
			Name: m.ID, RaftAddress: m.Address, ApiAddress: apiAddrs[m.ID], Suffrage: m.Suffrage, Leader: m.Leader,
		})
	}
	return out, nil
}

func (c *cluster) AddMember(ctx context.Context, req *apiv1.AddMemberRequest) (*apiv1.ClusterStatus, error) {
	if req.GetName() == "" || req.GetRaftAddress() == "" {
		return nil, badRequest("add member: name and raft address are required")
	}
	if err := c.store.AddVoter(ctx, req.GetName(), req.GetRaftAddress()); err != nil {
		return nil, storeError(memberInfo, req.GetName(), err)
	}
	if req.GetApiAddress() != "" {
		recordMember(ctx, c.store, req.GetName(), req.GetApiAddress())
	}
	return c.Status(ctx, nil)
}

func (c *cluster) RemoveMember(ctx context.Context, req *apiv1.RemoveMemberRequest) (*apiv1.ClusterStatus, error) {
	if req.GetName() == "" {
		return nil, badRequest("remove member: name is required")
	}
	if err := c.store.RemoveServer(ctx, req.GetName()); err != nil {
		return nil, storeError(memberInfo, req.GetName(), err)
	}
	_, err := c.store.Txn(ctx, store.Op{Type: store.Delete, Key: store.Key{Kind: memberKind, Name: req.GetName()}})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, storeError(memberInfo, req.GetName(), err)
	}
	return c.Status(ctx, nil)
}

func (c *cluster) TransferLeader(ctx context.Context, req *apiv1.TransferLeaderRequest) (*apiv1.ClusterStatus, error) {
	if err := c.store.TransferLeadership(ctx, req.GetName()); err != nil {
		return nil, storeError(memberInfo, req.GetName(), err)
	}
	return c.Status(ctx, nil)
}

// Snapshot streams this node's state in chunks; the last carries its revision.
func (c *cluster) Snapshot(_ *apiv1.SnapshotRequest, stream apiv1.Cluster_SnapshotServer) error {
	w := &chunkWriter{send: func(b []byte) error { return stream.Send(&apiv1.SnapshotChunk{Data: b}) }}
	rev, err := c.store.Backup(w)
	if err == nil {
		err = w.flush()
	}
	if err != nil {
		return statusError(codes.Internal, "SnapshotFailed", nil, "snapshot: %v", err)
	}
	return stream.Send(&apiv1.SnapshotChunk{Revision: rev})
}

// chunkWriter cuts a stream into 1 MiB messages.
type chunkWriter struct {
	buf  []byte
	send func([]byte) error
}

var _ io.Writer = (*chunkWriter)(nil)

func (w *chunkWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		room := 1<<20 - len(w.buf)
		take := min(room, len(p))
		w.buf = append(w.buf, p[:take]...)
		p = p[take:]
		if len(w.buf) == 1<<20 {
			if err := w.flush(); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

func (w *chunkWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	err := w.send(w.buf)
	w.buf = nil
	return err
}

// recordMember writes a member's API address (create or update).
func recordMember(ctx context.Context, s *store.Store, name, apiAddr string) error {
	k := store.Key{Kind: memberKind, Name: name}
	_, err := s.Txn(ctx, store.Op{Type: store.Create, Key: k, Value: []byte(apiAddr)})
	if errors.Is(err, store.ErrAlreadyExists) {
		_, err = s.Txn(ctx, store.Op{Type: store.Update, Key: k, Value: []byte(apiAddr)})
	}
	return err
}

package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/hashicorp/raft"

	storev1 "github.com/skiffhq/skiff/proto/store/v1"
)

// Member is one server in the Raft configuration.
type Member struct {
	ID       string
	Address  string
	Suffrage string // Voter, Nonvoter, Staging
	Leader   bool
	// Version is the Skiff release the member runs, as it said on its last peer
	// connection with this one ("" when there was none yet).
	Version string
}

// Status is this node's view of the cluster.
type Status struct {
	ID            string
	State         string // Leader, Follower, Candidate, Shutdown
	LeaderID      string
	LeaderAddress string
	Term          uint64
	CommitIndex   uint64
	AppliedIndex  uint64 // last index handed to the state machine
	LastLogIndex  uint64
	SnapshotIndex uint64
	// Revision is the state machine's revision: the last entry it has applied.
	Revision int64
	Members  []Member
	// ClusterID names the cluster ("" until this member knows it); Alarms are the raised
	// alarms (NOSPACE).
	ClusterID string
	Alarms    []string
}

// LeaderID is the ID of the leader as this node knows it, "" when it knows none.
func (s *Store) LeaderID() string {
	_, id := s.raft.LeaderWithID()
	return string(id)
}

// Status reports this node's view of the cluster.
func (s *Store) Status() (Status, error) {
	addr, id := s.raft.LeaderWithID()
	st := Status{
		ID:            s.cfg.ID,
		State:         s.raft.State().String(),
		LeaderID:      string(id),
		LeaderAddress: string(addr),
		Term:          s.raft.CurrentTerm(),
		CommitIndex:   s.raft.CommitIndex(),
		AppliedIndex:  s.raft.AppliedIndex(),
		LastLogIndex:  s.raft.LastIndex(),
		Revision:      s.fsm.applied.Load(),
		ClusterID:     s.ClusterID(),
		Alarms:        s.Alarms(),
	}
	st.SnapshotIndex, _ = strconv.ParseUint(s.raft.Stats()["last_snapshot_index"], 10, 64)
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return st, fmt.Errorf("read configuration: %w", err)
	}
	for _, srv := range f.Configuration().Servers {
		st.Members = append(st.Members, Member{
			ID: string(srv.ID), Address: string(srv.Address), Suffrage: srv.Suffrage.String(), Leader: srv.ID == id,
			Version: s.memberVersion(string(srv.ID)),
		})
	}
	return st, nil
}

// AddVoter adds a server as a voting member (or updates its address). The server must
// be running with an empty data directory and no initial cluster, so it waits to be
// added. Forwarded to the leader.
func (s *Store) AddVoter(ctx context.Context, id, address string) error {
	if id == "" || address == "" {
		return fmt.Errorf("add voter: %w: id and address are required", ErrInvalid)
	}
	return s.changeMembership(ctx, storev1.MembershipRequest_ADD_VOTER, id, address)
}

// RemoveServer removes a member. Removing the leader makes it step down after the
// change commits. Forwarded to the leader.
func (s *Store) RemoveServer(ctx context.Context, id string) error {
	if id == "" {
		return fmt.Errorf("remove server: %w: id is required", ErrInvalid)
	}
	return s.changeMembership(ctx, storev1.MembershipRequest_REMOVE, id, "")
}

// TransferLeadership hands leadership to the member id, or to the most up-to-date
// follower when id is empty. Forwarded to the leader.
func (s *Store) TransferLeadership(ctx context.Context, id string) error {
	return s.changeMembership(ctx, storev1.MembershipRequest_TRANSFER_LEADERSHIP, id, "")
}

func (s *Store) changeMembership(ctx context.Context, action storev1.MembershipRequest_Action, id, address string) error {
	for attempt := 0; ; attempt++ {
		leaderID, leaderAddr, err := s.leader(ctx)
		if err != nil {
			return err
		}
		if leaderID == s.cfg.ID {
			err = s.changeMembershipLocal(action, id, address)
		} else {
			err = s.forwardMembership(ctx, leaderAddr, action, id, address)
		}
		var nl *NotLeaderError
		if errors.As(err, &nl) && attempt < 3 {
			continue
		}
		return err
	}
}

func (s *Store) changeMembershipLocal(action storev1.MembershipRequest_Action, id, address string) error {
	const timeout = 10 * time.Second
	var f raft.Future
	switch action {
	case storev1.MembershipRequest_ADD_VOTER:
		if !s.isMember(id) {
			if err := s.checkJoin(context.Background(), address); err != nil {
				return fmt.Errorf("add member %s at %s: %w", id, address, err)
			}
		}
		f = s.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(address), 0, timeout)
	case storev1.MembershipRequest_REMOVE:
		if !s.isMember(id) {
			return fmt.Errorf("remove server %s: %w", id, &PreconditionError{Err: ErrNotFound, Key: Key{Kind: "Member", Name: id}})
		}
		f = s.raft.RemoveServer(raft.ServerID(id), 0, timeout)
	case storev1.MembershipRequest_TRANSFER_LEADERSHIP:
		if id == "" {
			f = s.raft.LeadershipTransfer()
			break
		}
		if id == s.cfg.ID {
			return nil // already leads
		}
		addr, ok := s.memberAddress(id)
		if !ok {
			return fmt.Errorf("transfer leadership to %s: %w", id, &PreconditionError{Err: ErrNotFound, Key: Key{Kind: "Member", Name: id}})
		}
		f = s.raft.LeadershipTransferToServer(raft.ServerID(id), raft.ServerAddress(addr))
	default:
		return fmt.Errorf("membership: %w: unknown action %v", ErrInvalid, action)
	}
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) {
			a, i := s.raft.LeaderWithID()
			return &NotLeaderError{LeaderID: string(i), LeaderAddress: string(a)}
		}
		return fmt.Errorf("%s %s: %w", action, id, err)
	}
	return nil
}

func (s *Store) memberAddress(id string) (string, bool) {
	f := s.raft.GetConfiguration()
	if f.Error() != nil {
		return "", false
	}
	for _, srv := range f.Configuration().Servers {
		if string(srv.ID) == id {
			return string(srv.Address), true
		}
	}
	return "", false
}

// IsMember says whether id is in the Raft configuration as this node last saw it.
func (s *Store) IsMember(id string) bool { return s.isMember(id) }

func (s *Store) isMember(id string) bool {
	_, ok := s.memberAddress(id)
	return ok
}

func (s *Store) forwardMembership(ctx context.Context, addr string, action storev1.MembershipRequest_Action, id, address string) error {
	cc, err := s.peers.get(addr)
	if err != nil {
		return fmt.Errorf("forward %s to leader %s: %w: %v", action, addr, ErrNoLeader, err)
	}
	resp, err := storev1.NewPeerClient(cc).ChangeMembership(ctx, &storev1.MembershipRequest{Action: action, Id: id, Address: address})
	if err != nil {
		return fmt.Errorf("forward %s to leader %s: %w: %v", action, addr, ErrIndeterminate, err)
	}
	return errorFromProto(resp.GetError())
}

// peerService is the store's peer gRPC service: what followers ask of the leader.
type peerService struct {
	storev1.UnimplementedPeerServer
	s *Store
}

func (p *peerService) Forward(ctx context.Context, req *storev1.ForwardRequest) (*storev1.TxnResult, error) {
	if _, _, err := decodeCommand(req.GetCommand(), p.s.cfg.MaxObjectSize); err != nil {
		return &storev1.TxnResult{Error: errorToProto(err)}, nil
	}
	if p.s.raft.State() != raft.Leader {
		a, i := p.s.raft.LeaderWithID()
		return &storev1.TxnResult{Error: errorToProto(&NotLeaderError{LeaderID: string(i), LeaderAddress: string(a)})}, nil
	}
	res, err := p.s.applyLocal(ctx, req.GetCommand())
	if err != nil {
		return &storev1.TxnResult{Error: errorToProto(err)}, nil
	}
	return resultToProto(res), nil
}

func (p *peerService) ReadIndex(ctx context.Context, _ *storev1.ReadIndexRequest) (*storev1.ReadIndexResponse, error) {
	idx, err := p.s.readIndex.get(ctx)
	if err == nil && p.s.raft.State() != raft.Leader {
		// This node's batcher may have asked another leader; only a leader answers peers.
		a, i := p.s.raft.LeaderWithID()
		err = &NotLeaderError{LeaderID: string(i), LeaderAddress: string(a)}
	}
	return &storev1.ReadIndexResponse{Index: idx, Error: errorToProto(err)}, nil
}

func (p *peerService) ChangeMembership(ctx context.Context, req *storev1.MembershipRequest) (*storev1.MembershipResponse, error) {
	if p.s.raft.State() != raft.Leader {
		a, i := p.s.raft.LeaderWithID()
		return &storev1.MembershipResponse{Error: errorToProto(&NotLeaderError{LeaderID: string(i), LeaderAddress: string(a)})}, nil
	}
	err := p.s.changeMembershipLocal(req.GetAction(), req.GetId(), req.GetAddress())
	return &storev1.MembershipResponse{Error: errorToProto(err)}, nil
}

package apiserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
	"github.com/skiffhq/skiff/store"
	"github.com/skiffhq/skiff/version"
)

// memberKind is where each API server records its API address in the store, so that any
// member can say where the others serve. It is not an API kind: clients cannot reach it.
const memberKind = "skiff.member"

// cluster implements the Cluster service.
type cluster struct {
	apiv1.UnimplementedClusterServer
	store   *store.Store
	members *memberAddrs
	// certs are this member's certificates; renews says whether it renews them.
	certs      func() []CertStatus
	renews     bool
	sign       func(context.Context, *apiv1.CertificateSigningRequest) (*apiv1.CertificateSigningRequest, error)
	networking *networking
}

// memberAddrs reads the members' recorded API addresses, cached until a member record
// changes.
type memberAddrs struct {
	store *store.Store
	mu    sync.Mutex
	rev   int64             // the revision addrs reflects
	addrs map[string]string // member name -> API address; never modified once built
}

// get returns the addresses by member name; the map must not be modified.
func (m *memberAddrs) get() map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.addrs != nil && m.store.LastChange(memberKind) <= m.rev {
		return m.addrs
	}
	recs, rev, err := m.store.List(context.Background(), memberKind, store.ListOptions{Stale: true})
	if err != nil {
		return m.addrs // closing: the last known addresses will do
	}
	addrs := make(map[string]string, len(recs))
	for _, r := range recs {
		addrs[r.Name] = string(r.Value)
	}
	m.addrs, m.rev = addrs, rev
	return addrs
}

// leaderHint is the unary interceptor with which a member that is not the leader names
// the leader's API address (client.LeaderHeader) in its replies to Resources calls, so
// that clients send writes to the leader rather than through this member; and refuses
// at once a call sent to it as the leader (client.ExpectLeaderHeader) when it no longer
// is, so that the client does not wait here through an election.
func (m *memberAddrs) leaderHint() grpc.UnaryServerInterceptor {
	prefix := "/" + apiv1.Resources_ServiceDesc.ServiceName + "/"
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if !strings.HasPrefix(info.FullMethod, prefix) {
			return handler(ctx, req)
		}
		id := m.store.LeaderID()
		if id == m.store.ID() {
			return handler(ctx, req)
		}
		if addr := m.get()[id]; id != "" && addr != "" {
			// Fails only when the reply is already sent, which a unary handler has not
			// begun yet.
			_ = grpc.SetHeader(ctx, metadata.Pairs(client.LeaderHeader, addr))
		}
		if md, _ := metadata.FromIncomingContext(ctx); len(md.Get(client.ExpectLeaderHeader)) > 0 {
			leader := id
			if leader == "" {
				leader = "none known"
			}
			return nil, statusError(codes.Unavailable, ReasonUnavailable, nil,
				"%s is not the leader (leader: %s); nothing was done: send the request to the leader", m.store.ID(), leader)
		}
		return handler(ctx, req)
	}
}

var memberInfo = &kinds.Info{Kind: "Member", Plural: "members"}

func (c *cluster) Status(ctx context.Context, req *apiv1.ClusterStatusRequest) (*apiv1.ClusterStatus, error) {
	st, err := c.store.Status()
	if err != nil {
		return nil, storeError(memberInfo, "", err)
	}
	apiAddrs := c.members.get()
	out := &apiv1.ClusterStatus{
		Leader:    st.LeaderID,
		Term:      st.Term,
		Revision:  st.Revision,
		ClusterId: st.ClusterID,
		Alarms:    st.Alarms,
		Self: &apiv1.MemberStatus{
			Name: st.ID, State: st.State, CommitIndex: st.CommitIndex, AppliedIndex: st.AppliedIndex,
			SnapshotIndex: st.SnapshotIndex, LastLogIndex: st.LastLogIndex, Version: version.Version,
		},
	}
	if plan, err := c.networking.get(ctx, c.store); err == nil {
		out.Networking = plan.proto()
	}
	for _, m := range st.Members {
		out.Members = append(out.Members, &apiv1.Member{
			Name: m.ID, RaftAddress: m.Address, ApiAddress: apiAddrs[m.ID], Suffrage: m.Suffrage, Leader: m.Leader, Version: m.Version,
		})
	}
	if req.GetSizes() {
		c.usage(ctx, out.Members)
	}
	return out, nil
}

// usage fills in each member's state file sizes, asking them all at once; a member that
// does not answer within a few seconds gets the reason instead.
func (c *cluster) usage(ctx context.Context, members []*apiv1.Member) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, m := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u, err := c.store.MemberUsage(ctx, m.Name)
			if err != nil {
				m.Error = err.Error()
				return
			}
			m.DbSize, m.DbSizeInUse = u.Size, u.InUse
		}()
	}
	wg.Wait()
}

// Defragment compacts the named members' state files (every member's when none is
// named), one after the other, so that the cluster keeps a quorum that applies writes.
func (c *cluster) Defragment(ctx context.Context, req *apiv1.DefragmentRequest) (*apiv1.ClusterStatus, error) {
	names := req.GetNames()
	if len(names) == 0 {
		st, err := c.store.Status()
		if err != nil {
			return nil, storeError(memberInfo, "", err)
		}
		for _, m := range st.Members {
			names = append(names, m.ID)
		}
	}
	for _, name := range names {
		if _, err := c.store.Defragment(ctx, name); err != nil {
			return nil, storeError(memberInfo, name, fmt.Errorf("defragment: %w", err))
		}
	}
	return c.Status(ctx, &apiv1.ClusterStatusRequest{Sizes: true})
}

// ListSnapshots lists the scheduled snapshots in every member's directory.
func (c *cluster) ListSnapshots(ctx context.Context, _ *apiv1.ListSnapshotsRequest) (*apiv1.SnapshotList, error) {
	files, errs := c.store.ListBackups(ctx)
	if at := c.store.RemoteBackupsAt(); at != "" {
		remote, err := c.store.RemoteBackups(ctx)
		if err != nil {
			errs[at] = err
		}
		files = append(files, remote...)
	}
	out := &apiv1.SnapshotList{}
	for _, f := range files {
		out.Snapshots = append(out.Snapshots, &apiv1.SnapshotFile{Member: f.Member, Path: f.Path, ClusterId: f.Meta.Cluster,
			Revision: f.Meta.Revision, Version: f.Meta.Version, CreatedUnix: f.Meta.Created.Unix(), Size: f.Size, Sha256: f.Meta.SHA256})
	}
	for name, err := range errs {
		out.Errors = append(out.Errors, name+": "+err.Error())
	}
	sort.Strings(out.Errors)
	return out, nil
}

// Certificates describes this member's own certificates as of its last check.
func (c *cluster) Certificates(context.Context, *apiv1.CertificatesRequest) (*apiv1.CertificateList, error) {
	out := &apiv1.CertificateList{Member: c.store.ID()}
	for _, st := range c.certs() {
		ce := &apiv1.Certificate{Name: st.Name, File: st.File, Subject: st.Subject, Renews: c.renews, Renewals: st.Renewals, Error: st.Error}
		if !st.NotAfter.IsZero() {
			ce.NotBeforeUnix, ce.NotAfterUnix, ce.RenewAtUnix = st.NotBefore.Unix(), st.NotAfter.Unix(), st.RenewAt.Unix()
		}
		out.Certificates = append(out.Certificates, ce)
	}
	return out, nil
}

// CreateCertificateSigningRequest renews the caller's own certificate.
func (c *cluster) CreateCertificateSigningRequest(ctx context.Context, req *apiv1.CertificateSigningRequest) (*apiv1.CertificateSigningRequest, error) {
	return c.sign(ctx, req)
}

// DisarmAlarm clears the NOSPACE alarm. A member still over its quota raises it again
// at the next write it takes.
func (c *cluster) DisarmAlarm(ctx context.Context, _ *apiv1.DisarmAlarmRequest) (*apiv1.ClusterStatus, error) {
	if err := c.store.DisarmAlarm(ctx); err != nil {
		return nil, storeError(memberInfo, "", err)
	}
	return c.Status(ctx, nil)
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

// RemoveMember removes a member and its address record. The record goes first, while
// the member is still in the configuration: once removed, a member asked to remove
// itself (the leader, or a follower that forwards the change) finds no leader to take
// its write. Should the removal fail, the record is written back.
func (c *cluster) RemoveMember(ctx context.Context, req *apiv1.RemoveMemberRequest) (*apiv1.ClusterStatus, error) {
	name := req.GetName()
	if name == "" {
		return nil, badRequest("remove member: name is required")
	}
	addr := c.members.get()[name]
	_, err := c.store.Txn(ctx, store.Op{Type: store.Delete, Key: store.Key{Kind: memberKind, Name: name}})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, storeError(memberInfo, name, err)
	}
	if err := c.store.RemoveServer(ctx, name); err != nil {
		if addr != "" && c.store.IsMember(name) {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			rerr := recordMember(rctx, c.store, name, addr)
			cancel()
			if rerr != nil {
				err = fmt.Errorf("%w (and its API address %s could not be recorded again: %v)", err, addr, rerr)
			}
		}
		return nil, storeError(memberInfo, name, err)
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

package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	storev1 "github.com/skiffhq/skiff/proto/store/v1"
)

// peerStreamWorkers is how many goroutines serve the peer API's calls (forwarded
// writes and reads from followers); more arrive in goroutines of their own.
const peerStreamWorkers = 64

// Store is one node of the replicated object store.
type Store struct {
	cfg  Config
	log  hclog.Logger
	raft *raft.Raft
	fsm  *fsm
	hist *history

	mux        *peerMux
	peerServer *grpc.Server
	peers      *peerClients
	logs       *logFile
	logBytes   *logBytes
	logCache   *logCache
	transport  *pipelineTransport

	// leaderChanged is closed and replaced when the known leader changes.
	leaderMu      sync.Mutex
	leaderChanged chan struct{}

	readIndex *indexBatcher
	// readBarriers counts the linearizable reads: each waited for a read index.
	readBarriers atomic.Int64
	// lateWrites counts the writes not proposed because their caller had given up.
	lateWrites atomic.Int64
	// hadState says the node found Raft state on disk when it opened.
	hadState bool

	ident *identity
	// running is set once Raft is started (the peer port serves before).
	running atomic.Bool
	// handingOver: a leadership transfer for a full disk is under way.
	handingOver atomic.Bool
	// registering holds the incarnations being recorded, by member name.
	registerMu  sync.Mutex
	registering map[string]string
	// peerVersions is the release each peer said it runs, by member name (skew.go).
	peerVersions sync.Map
	// raising is held while the NOSPACE alarm is being raised.
	raising sync.Mutex
	// backupMu is held while a scheduled snapshot is written.
	backupMu sync.Mutex
	// backupStatus is how the scheduled snapshots have gone (backup.go).
	backupStatusMu sync.Mutex
	backupStatus   BackupStatus

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed atomic.Bool
}

// Open starts a node: it opens (or creates) its data directory, restores the latest
// snapshot, bootstraps the initial cluster if this is the node's first start, and joins
// Raft. It returns without waiting for a leader (see WaitLeader).
func Open(cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir %s: %w", cfg.Dir, err)
	}
	log := cfg.Logger.Named("store")
	if err := makePrivate(cfg.Dir, log); err != nil {
		return nil, err
	}
	s := &Store{cfg: cfg, log: log, leaderChanged: make(chan struct{}), registering: map[string]string{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	ok := false
	defer func() {
		if !ok {
			s.shutdown()
		}
	}()

	var err error
	if s.ident, err = loadIdentity(cfg.Dir, cfg.ID, log); err != nil {
		return nil, err
	}
	s.hist = newHistory(cfg.HistorySize, 0)
	s.hist.maxBytes, s.hist.ttl = cfg.HistoryBytes, cfg.HistoryTTL
	if s.fsm, err = openFSM(filepath.Join(cfg.Dir, "state.db"), cfg.MmapSize, cfg.MaxObjectSize, cfg.IndexedFields, s.hist, s.ident, log.Named("fsm")); err != nil {
		return nil, err
	}
	s.fsm.stop, s.fsm.onDiskFull, s.fsm.mapped.threshold = s.ctx.Done(), s.handOverForDisk, cfg.ReleaseMappedBytes
	// The log is fsynced on every commit. Its freelist is rebuilt on open rather than
	// written with each commit (a page write saved per batch), and it is mapped large up
	// front so that growing it rarely remaps under load.
	logPath := filepath.Join(cfg.Dir, "raft.db")
	logs, err := openLog(logPath, cfg.MmapSize)
	if err != nil {
		return nil, damaged(cfg, fmt.Errorf("open raft log %s: %w", logPath, err))
	}
	if s.logs, err = newLogFile(logs, logPath, cfg.ReleaseMappedBytes, log.Named("raftlog")); err != nil {
		logs.Close()
		return nil, err
	}
	s.logBytes = newLogBytes(s.logs, cfg.TrailingLogBytes, cfg.SnapshotLogBytes)
	s.logCache = newLogCache(s.logBytes, cfg.LogCacheEntries, cfg.LogCacheBytes, cfg.LogCacheTTL)
	logStore := s.logCache
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, cfg.SnapshotsRetained, log.Named("snapshots"))
	if err != nil {
		return nil, fmt.Errorf("open snapshot store in %s: %w", cfg.Dir, err)
	}

	ln := cfg.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return nil, fmt.Errorf("listen on peer address %s: %w", cfg.Listen, err)
		}
	}
	advertise, err := net.ResolveTCPAddr("tcp", cfg.Advertise)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("resolve advertise address %s: %w", cfg.Advertise, err)
	}
	if advertise.Port == 0 { // listening on :0 (tests): advertise the port we got
		advertise.Port = ln.Addr().(*net.TCPAddr).Port
		s.cfg.Advertise = advertise.String()
	}
	s.mux = newPeerMux(ln, cfg.PeerTLS, log.Named("peer"), s.hello, s.checkPeer)
	s.peers = &peerClients{mux: s.mux, conns: map[string]*grpc.ClientConn{}}
	s.transport = &pipelineTransport{raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  &raftStream{subListener: s.mux.raft, advertise: advertise},
		MaxPool: 4,
		Timeout: 10 * time.Second,
		Logger:  log.Named("transport"),
	})}
	// Forwarded writes are served on long-lived workers, as the API's are: a new
	// goroutine per call grows its stack again to a write's depth each time.
	s.peerServer = grpc.NewServer(grpc.NumStreamWorkers(peerStreamWorkers))
	storev1.RegisterPeerServer(s.peerServer, &peerService{s: s})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.peerServer.Serve(s.mux.peer)
	}()

	notify := make(chan bool, 16)
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.CommitTimeout
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.TrailingLogs = cfg.TrailingLogs
	rc.MaxAppendEntries = cfg.MaxAppendEntries
	rc.BatchApplyCh = true
	rc.NotifyCh = notify
	rc.Logger = log.Named("raft")
	if err := raft.ValidateConfig(rc); err != nil {
		return nil, fmt.Errorf("raft config: %w", err)
	}

	existing, err := raft.HasExistingState(logStore, s.logs, snaps)
	if err != nil {
		return nil, fmt.Errorf("inspect raft state in %s: %w", cfg.Dir, err)
	}
	if !existing && len(cfg.InitialCluster) > 0 {
		var conf raft.Configuration
		for _, m := range cfg.InitialCluster {
			conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(m.ID), Address: raft.ServerAddress(m.Address)})
		}
		if err := raft.BootstrapCluster(rc, logStore, s.logs, snaps, s.transport, conf); err != nil {
			return nil, fmt.Errorf("bootstrap cluster: %w", err)
		}
		log.Info("bootstrapped new cluster", "members", len(conf.Servers))
	}

	if s.raft, err = raft.NewRaft(rc, s.fsm, logStore, s.logs, snaps, s.transport); err != nil {
		if p := s.fsm.restoreErr.Load(); p != nil && errors.Is(*p, errNewerFormat) {
			return nil, fmt.Errorf("member %s cannot start on its data directory %s: %w", cfg.ID, cfg.Dir, *p)
		}
		return nil, damaged(cfg, fmt.Errorf("start raft from the data in %s: %w", cfg.Dir, err))
	}
	s.running.Store(true)
	s.readIndex = newIndexBatcher(s.ctx, &s.wg, s.fetchReadIndex)
	observations := make(chan raft.Observation, 16)
	observer := raft.NewObserver(observations, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	s.raft.RegisterObserver(observer)
	s.wg.Add(4)
	go s.expireMemory()
	go s.compactByBytes()
	go s.watchLeadership(notify)
	go func() {
		defer s.wg.Done()
		defer s.raft.DeregisterObserver(observer)
		for {
			select {
			case <-observations:
				s.signalLeaderChange()
			case <-s.ctx.Done():
				return
			}
		}
	}()
	if cfg.Backups.Interval > 0 {
		s.wg.Add(1)
		go s.runBackups()
	}
	s.hadState = existing
	ok = true
	cluster, uid := s.ident.get()
	log.Info("store open", "id", cfg.ID, "peer", s.cfg.Advertise, "existing_state", existing, "cluster", orUnnamed(cluster), "incarnation", uid)
	return s, nil
}

// handOverForDisk is called while the state file cannot take committed entries for a
// full disk. A leader in that state can acknowledge nothing, and its Raft loop soon
// blocks behind the waiting state machine while its heartbeats still hold the others
// back from an election: it hands leadership to a follower instead, so the cluster goes
// on without it.
func (s *Store) handOverForDisk() {
	if !s.running.Load() || s.raft.State() != raft.Leader || !s.handingOver.CompareAndSwap(false, true) {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.handingOver.Store(false)
		err := s.raft.LeadershipTransfer().Error()
		s.log.Warn("disk full: handing leadership over to another member", "error", err)
	}()
}

// Close leaves Raft (without leaving the cluster: a restart rejoins) and releases
// everything. Watchers get ErrClosed.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	return s.shutdown()
}

func (s *Store) shutdown() error {
	var errs []error
	s.cancel()
	if s.raft != nil {
		if err := s.raft.Shutdown().Error(); err != nil {
			errs = append(errs, fmt.Errorf("shut down raft: %w", err))
		}
	}
	if s.hist != nil {
		s.hist.close()
	}
	if s.peerServer != nil {
		s.peerServer.Stop()
	}
	if s.peers != nil {
		s.peers.close()
	}
	if s.transport != nil {
		s.transport.Close()
	}
	if s.mux != nil {
		s.mux.close()
	}
	s.wg.Wait()
	if s.logs != nil {
		if err := s.logs.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close raft log: %w", err))
		}
	}
	if s.fsm != nil {
		if err := s.fsm.close(); err != nil {
			errs = append(errs, fmt.Errorf("close state file: %w", err))
		}
	}
	return errors.Join(errs...)
}

// expireMemory gives back, once a second, the events and log entries older than their
// TTL (HistoryTTL, LogCacheTTL), the state file's and the Raft log's pages mapped by a
// burst of writes (mapped.go) and the state file's free pages once deletes leave it
// mostly free (quota.go): an idle node holds nothing of a burst it served.
func (s *Store) expireMemory() {
	defer s.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case now := <-t.C:
			s.hist.expire(now)
			s.logCache.expire(now)
			if n, err := s.fsm.mapped.ifQuiet(); err != nil {
				s.log.Warn("cannot release the state file's mapped pages", "error", err)
			} else if n > 0 {
				s.log.Debug("released the state file's mapped pages", "mapping_bytes", n)
			}
			if _, err := s.logs.mapped.ifQuiet(); err != nil {
				s.log.Warn("cannot release the raft log's mapped pages", "error", err)
			}
			if _, _, err := s.fsm.defragIfFree(s.cfg.DefragFreeBytes, now); err != nil {
				s.log.Warn("cannot defragment the state file", "error", err)
			}
		case <-s.ctx.Done():
			return
		}
	}
}

// HadState reports whether the node found Raft state in its directory when it opened:
// false on a node's first start, which is when a joining node must be added.
func (s *Store) HadState() bool { return s.hadState }

// ID is this node's ID.
func (s *Store) ID() string { return s.cfg.ID }

// PeerAddress is the address peers reach this node at.
func (s *Store) PeerAddress() string { return s.cfg.Advertise }

// Revision is the latest revision applied on this node (a stale read).
func (s *Store) Revision() int64 { return s.fsm.applied.Load() }

// testHookLeaderNotify, when set (by tests), runs before watchLeadership handles a
// leadership notification: a test can hold a new leader before it appends its mark.
var testHookLeaderNotify atomic.Pointer[func(id string, leader bool)]

// watchLeadership appends a leader mark each time this node becomes leader: Raft's own
// no-op never reaches the state machine, and a leader serves read indexes only once an
// entry of its term is applied here (see leaderReadIndex).
func (s *Store) watchLeadership(notify <-chan bool) {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case leader := <-notify:
			if hook := testHookLeaderNotify.Load(); hook != nil {
				(*hook)(s.cfg.ID, leader)
			}
			s.signalLeaderChange()
			if !leader {
				continue
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.markLeadership()
			}()
		}
	}
}

// IsLeader reports whether this node leads now. Work that only the leader does waits
// for LeaderChanged and asks again.
func (s *Store) IsLeader() bool { return s.raft.State() == raft.Leader }

// LeaderChanged returns a channel closed at the next change of leader this node sees
// (another node elected, this one elected or stepping down).
func (s *Store) LeaderChanged() <-chan struct{} {
	s.leaderMu.Lock()
	defer s.leaderMu.Unlock()
	return s.leaderChanged
}

// Sync waits until this node has applied every write committed before the call, as a
// linearizable read does first: what it then reads locally is current.
func (s *Store) Sync(ctx context.Context) error { return s.readBarrier(ctx, ReadOptions{}) }

func (s *Store) signalLeaderChange() {
	s.leaderMu.Lock()
	close(s.leaderChanged)
	s.leaderChanged = make(chan struct{})
	s.leaderMu.Unlock()
}

// leader returns the current leader's ID and address, waiting (until ctx ends or
// WriteTimeout passes) while there is none.
func (s *Store) leader(ctx context.Context) (id, addr string, err error) {
	deadline := time.NewTimer(s.cfg.WriteTimeout)
	defer deadline.Stop()
	for {
		s.leaderMu.Lock()
		changed := s.leaderChanged
		s.leaderMu.Unlock()
		a, i := s.raft.LeaderWithID()
		if i != "" {
			return string(i), string(a), nil
		}
		select {
		case <-changed:
		case <-deadline.C:
			return "", "", fmt.Errorf("find leader: %w", errNoLeaderFound)
		case <-ctx.Done():
			return "", "", fmt.Errorf("find leader: %w (%v)", ErrNoLeader, ctx.Err())
		case <-s.ctx.Done():
			return "", "", ErrClosed
		}
	}
}

// WaitLeader blocks until the cluster has a leader that can serve reads.
func (s *Store) WaitLeader(ctx context.Context) error {
	for {
		_, err := s.readIndex.get(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || errors.Is(err, ErrClosed) {
			return err
		}
		s.leaderMu.Lock()
		changed := s.leaderChanged
		s.leaderMu.Unlock()
		select {
		case <-changed:
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Txn commits a transaction: all its operations or none. On a follower it is forwarded
// to the leader. It returns once the transaction is committed and applied on the node
// that applied it, with a *PreconditionError if a precondition failed, or ErrNoLeader
// (nothing written), ErrIndeterminate (may have been written), ErrInvalid, ErrTooLarge.
func (s *Store) Txn(ctx context.Context, ops ...Op) (*TxnResult, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if len(ops) == 0 {
		return nil, fmt.Errorf("transaction: %w: no operations", ErrInvalid)
	}
	for i, op := range ops {
		if err := op.validate(s.cfg.MaxObjectSize); err != nil {
			return nil, fmt.Errorf("operation %d: %w", i, err)
		}
	}
	cmd, err := encodeTxn(ops)
	if err != nil {
		return nil, fmt.Errorf("encode transaction: %w", err)
	}
	if len(cmd) > s.cfg.MaxTxnSize {
		return nil, fmt.Errorf("transaction: %w: %d bytes, the limit is %d", ErrTooLarge, len(cmd), s.cfg.MaxTxnSize)
	}
	if err := s.checkSpace(ctx, ops, len(cmd)); err != nil {
		return nil, fmt.Errorf("transaction: %w", err)
	}
	return s.apply(ctx, cmd)
}

// apply commits a command here if this node leads, or forwards it to the leader. A
// command whose caller has already given up (its deadline passed while it waited) is
// not proposed: nothing is written, and the caller's retry, if any, is the only write.
// Under overload this keeps late calls from being done twice (the late one and its
// retry, which then conflicts).
func (s *Store) apply(ctx context.Context, cmd []byte) (*TxnResult, error) {
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			s.lateWrites.Add(1)
			return nil, fmt.Errorf("not committed: %w", err)
		}
		id, addr, err := s.leader(ctx)
		if err != nil {
			return nil, err
		}
		if id == s.cfg.ID {
			res, err := s.applyLocal(ctx, cmd)
			var nl *NotLeaderError
			if errors.As(err, &nl) && attempt < 3 {
				continue // lost leadership before the entry was taken: nothing was written
			}
			return res, err
		}
		res, err := s.forward(ctx, addr, cmd)
		var nl *NotLeaderError
		if errors.As(err, &nl) && attempt < 3 {
			continue // the peer was no longer leader and wrote nothing
		}
		return res, err
	}
}

func (s *Store) applyLocal(ctx context.Context, cmd []byte) (*TxnResult, error) {
	f := s.raft.Apply(cmd, s.cfg.WriteTimeout)
	done := make(chan struct{})
	var ferr error
	go func() {
		ferr = f.Error()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %v while committing", ErrIndeterminate, ctx.Err())
	case <-s.ctx.Done():
		return nil, fmt.Errorf("%w: the store closed while committing", ErrIndeterminate)
	}
	switch {
	case ferr == nil:
	case errors.Is(ferr, raft.ErrNotLeader), errors.Is(ferr, raft.ErrLeadershipTransferInProgress):
		a, i := s.raft.LeaderWithID()
		return nil, &NotLeaderError{LeaderID: string(i), LeaderAddress: string(a)}
	case errors.Is(ferr, raft.ErrEnqueueTimeout):
		return nil, fmt.Errorf("commit: %w: leader too busy to take the write", ErrNoLeader)
	default:
		// ErrLeadershipLost, ErrRaftShutdown and anything else after the entry was taken:
		// it may still commit (under a new leader, or when this node restarts).
		return nil, fmt.Errorf("commit: %w: %v", ErrIndeterminate, ferr)
	}
	out := f.Response().(*txnOutcome)
	return out.result, out.err
}

// forward sends a command to the leader's peer service. It gives up as soon as this node
// sees the leadership move away from that peer: a paused or cut-off leader would otherwise
// hold the call until the client's deadline, long after a new leader took over.
func (s *Store) forward(ctx context.Context, addr string, cmd []byte) (*TxnResult, error) {
	cc, err := s.peers.get(addr)
	if err != nil {
		return nil, fmt.Errorf("forward to leader %s: %w: %v", addr, ErrNoLeader, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	moved := make(chan struct{})
	go func() {
		for {
			s.leaderMu.Lock()
			changed := s.leaderChanged
			s.leaderMu.Unlock()
			if a, _ := s.raft.LeaderWithID(); string(a) != addr {
				close(moved)
				cancel()
				return
			}
			select {
			case <-changed:
			case <-ctx.Done():
				return
			}
		}
	}()
	resp, err := storev1.NewPeerClient(cc).Forward(ctx, &storev1.ForwardRequest{Command: cmd})
	if err != nil {
		select {
		case <-moved:
			return nil, fmt.Errorf("forward to leader %s: %w: leadership moved while the write was in flight", addr, ErrIndeterminate)
		default:
		}
		if neverSent(err) {
			return nil, fmt.Errorf("forward to leader %s: %w: %v", addr, ErrNoLeader, err)
		}
		return nil, fmt.Errorf("forward to leader %s: %w: %v", addr, ErrIndeterminate, err)
	}
	if resp.GetError() != nil {
		return nil, errorFromProto(resp.GetError())
	}
	return resultFromProto(resp), nil
}

// neverSent reports whether a failed call cannot have reached its server: gRPC could not
// connect at all (the leader's process is gone), so nothing was written.
func neverSent(err error) bool {
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.Unavailable {
		return false
	}
	msg := strings.ToLower(st.Message())
	return strings.Contains(msg, "connection refused") || strings.Contains(msg, "error while dialing")
}

// ReadOptions chooses the consistency of a read.
type ReadOptions struct {
	// Stale reads this node's state as it is, without confirming it is current: cheaper,
	// but it may miss writes acknowledged elsewhere.
	Stale bool
	// MinRevision, for a stale read, first waits until this node has applied that
	// revision: the read is then no older than it (Kubernetes' NotOlderThan).
	MinRevision int64
}

// ListOptions selects the objects of a List.
type ListOptions struct {
	// Stale reads this node's state without a read barrier (see ReadOptions).
	Stale bool
	// MinRevision, for a stale list, waits until this node has applied that revision.
	MinRevision int64
	// Revision, when set, lists the objects as they were at that revision: the current
	// state with the changes since undone from the watch history (the state as of a
	// revision is never stored). A revision the history no longer reaches back to fails
	// with a *CompactedError; one this node has not applied yet is waited for.
	Revision int64
	// After, when set, lists only the objects whose namespace and name sort after its
	// Namespace and Name: the next page of a list that stopped there.
	After Key
	// Limit, when positive, stops the list after that many objects; ListResult.More
	// says whether more followed.
	Limit int
	// CountRemaining, with a Limit and neither IndexField nor Predicate, counts the
	// objects after a full page in ListResult.Remaining (Kubernetes' remainingItemCount,
	// which it gives only for a list without selectors): the rest of the kind's (or the
	// namespace's) keys are read, not their values.
	CountRemaining bool
	// Namespace, when set, limits the list to one namespace.
	Namespace string
	// IndexField and IndexValue, when IndexField is set, list only objects whose
	// Fields[IndexField] equals IndexValue, through the field index when the field is
	// indexed (Config.IndexedFields), else by a scan.
	IndexField, IndexValue string
	// Name, when set, lists only objects of that name: with a Namespace, or of a kind
	// whose objects have none, the one key is read; across namespaces the kind's keys
	// are (their values only where the name matches).
	Name string
	// Predicate, when set, keeps only the objects it accepts.
	Predicate func(*Object) bool
	// ValuesOnly, without an IndexField, leaves the listed objects' Labels and Fields
	// nil, for a caller that reads neither, nor does its Predicate: a list of 150,000
	// pods does not build 300,000 maps. (An object changed since a past Revision, read
	// from the history, may still carry them.)
	ValuesOnly bool
}

// Get reads one object. Linearizable unless opts.Stale: it reflects every write
// acknowledged before the call, whichever node acknowledged it. It returns a
// *PreconditionError wrapping ErrNotFound when the object does not exist.
func (s *Store) Get(ctx context.Context, k Key, opts ReadOptions) (Object, error) {
	if err := s.readBarrier(ctx, opts); err != nil {
		return Object{}, err
	}
	obj, _, err := s.fsm.get(k)
	return obj, err
}

// GetLocal reads one object from this node's state as it is (a stale read, like
// ReadOptions.Stale) and returns the revision the read reflects, or a *PreconditionError
// wrapping ErrNotFound, with that revision, when the object does not exist.
func (s *Store) GetLocal(k Key) (Object, int64, error) {
	if s.closed.Load() {
		return Object{}, 0, ErrClosed
	}
	return s.fsm.get(k)
}

// LastChange is the revision of the latest change to any object of kind that this node
// has applied (or of the latest snapshot it restored, which may change anything). What a
// GetLocal of that kind returned at revision r is still this node's state while
// LastChange(kind) <= r: callers cache rarely changing kinds with it.
func (s *Store) LastChange(kind string) int64 { return s.fsm.lastChange(kind) }

// ListResult is one list: its objects in (namespace, name) order, the revision it
// reflects, and whether Limit cut it short.
type ListResult struct {
	Objects  []Object
	Revision int64
	More     bool
	// Remaining, when More and ListOptions.CountRemaining, is how many objects follow.
	Remaining int64
}

// List reads the objects of a kind in one consistent snapshot and returns the revision
// it reflects: a watch after that revision sees every later change.
func (s *Store) List(ctx context.Context, kind string, opts ListOptions) ([]Object, int64, error) {
	res, err := s.ListPage(ctx, kind, opts)
	return res.Objects, res.Revision, err
}

// ListPage is List with its whole result: a page of a list at one revision is listed
// with Revision set to the first page's revision and After to its last object.
func (s *Store) ListPage(ctx context.Context, kind string, opts ListOptions) (ListResult, error) {
	barrier := ReadOptions{Stale: opts.Stale, MinRevision: opts.MinRevision}
	if opts.Revision != 0 {
		// A past state is rebuilt from this node's history: wait until it has the
		// revision, not for the leader's.
		barrier = ReadOptions{Stale: true, MinRevision: opts.Revision}
	}
	if err := s.readBarrier(ctx, barrier); err != nil {
		return ListResult{}, err
	}
	return s.fsm.list(ctx, kind, opts)
}

// readBarrier waits until this node has applied everything committed before the call.
func (s *Store) readBarrier(ctx context.Context, opts ReadOptions) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if opts.Stale {
		if opts.MinRevision > 0 {
			if err := s.hist.waitApplied(ctx, opts.MinRevision); err != nil {
				return fmt.Errorf("wait for revision %d: %w", opts.MinRevision, err)
			}
		}
		return nil
	}
	s.readBarriers.Add(1)
	idx, err := s.leaderReadIndexWait(ctx)
	if err != nil {
		return err
	}
	if err := s.hist.waitApplied(ctx, int64(idx)); err != nil {
		return fmt.Errorf("wait for revision %d: %w", idx, err)
	}
	return nil
}

// leaderReadIndexWait gets a read index, waiting out a change of leader as a write waits
// for a leader: a round refused because the member asked is no longer the leader, the
// new one has not applied an entry of its term yet, or the round timed out while
// leadership moved, is asked again when the leader changes (or after a short pause), for
// up to WriteTimeout after the first refusal. Only then is the read refused (ErrNoLeader:
// 503 through the REST API). A member that found no leader at all has already waited
// WriteTimeout for one, and refuses at once as before. A linearizable read is safe to
// ask again: nothing was read yet.
func (s *Store) leaderReadIndexWait(ctx context.Context) (uint64, error) {
	idx, err := s.readIndex.get(ctx)
	if !retryReadIndex(ctx, err) {
		return idx, err
	}
	wait, cancel := context.WithTimeout(ctx, s.cfg.WriteTimeout)
	defer cancel()
	for {
		s.leaderMu.Lock()
		changed := s.leaderChanged
		s.leaderMu.Unlock()
		pause := time.NewTimer(50 * time.Millisecond)
		select {
		case <-changed:
		case <-pause.C:
		case <-wait.Done():
		case <-s.ctx.Done():
		}
		pause.Stop()
		if wait.Err() != nil && ctx.Err() == nil {
			return 0, err // the last refusal stands
		}
		idx, again := s.readIndex.get(wait)
		if again == nil || !retryReadIndex(ctx, again) {
			return idx, again
		}
		if wait.Err() == nil {
			err = again
		}
	}
}

// retryReadIndex reports whether a read index refused with err is worth asking again:
// leadership was moving, and the caller still waits.
func retryReadIndex(ctx context.Context, err error) bool {
	return err != nil && ctx.Err() == nil && !errors.Is(err, errNoLeaderFound) &&
		(errors.Is(err, ErrNoLeader) || errors.Is(err, ErrNotLeader) || errors.Is(err, context.DeadlineExceeded))
}

// ReadBarriers is how many linearizable reads this node has served since it opened:
// each waited for a read index (a heartbeat round of the leader's) and for this node's
// apply to reach it.
func (s *Store) ReadBarriers() int64 { return s.readBarriers.Load() }

// LateWrites is how many writes this node did not propose (nor forward) because their
// caller's context had ended while they waited.
func (s *Store) LateWrites() int64 { return s.lateWrites.Load() }

// fetchReadIndex asks the leader (itself, or over the peer link) for a read index.
func (s *Store) fetchReadIndex(ctx context.Context) (uint64, error) {
	id, addr, err := s.leader(ctx)
	if err != nil {
		return 0, err
	}
	if id == s.cfg.ID {
		return s.leaderReadIndex(ctx)
	}
	cc, err := s.peers.get(addr)
	if err != nil {
		return 0, fmt.Errorf("read index from %s: %w: %v", id, ErrNoLeader, err)
	}
	resp, err := storev1.NewPeerClient(cc).ReadIndex(ctx, &storev1.ReadIndexRequest{})
	if err != nil {
		return 0, fmt.Errorf("read index from %s: %w: %v", id, ErrNoLeader, err)
	}
	if resp.GetError() != nil {
		err := errorFromProto(resp.GetError())
		if errors.Is(err, ErrIndeterminate) {
			// The leader's round failed for a reason of no class (its own wait timed
			// out): a read index is no write, so nothing is indeterminate; asked again.
			err = fmt.Errorf("read index from %s: %w: %v", id, ErrNoLeader, err)
		}
		return 0, err
	}
	return resp.GetIndex(), nil
}

// markLeadership appends a leader mark and retries while this node still leads a term
// with no entry applied: without one, it would refuse reads for the rest of its term.
func (s *Store) markLeadership() {
	for attempt := 0; ; attempt++ {
		term := s.raft.CurrentTerm()
		if s.raft.State() != raft.Leader || s.fsm.appliedTerm.Load() == term {
			return
		}
		f := s.raft.Apply(encodeLeaderMark(s.cfg.ID), s.cfg.WriteTimeout)
		// Raft never answers a future still queued when it shuts down: wait for the
		// store's end too, or Close would wait for this forever.
		err := awaitFuture(s.ctx, s.ctx, f)
		if err == nil {
			s.log.Info("leader mark applied", "term", term, "revision", f.Index())
			s.establishIdentity()
			return
		}
		if s.ctx.Err() != nil {
			return
		}
		s.log.Warn("leader mark not applied", "term", term, "attempt", attempt+1, "error", err)
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(s.cfg.HeartbeatTimeout):
		}
	}
}

// leaderReadIndex is the read index protocol's leader side (Raft thesis 6.4): the
// commit index, confirmed by a heartbeat round that this node still leads.
//
// A new leader learns which entries of earlier terms are committed only when it commits
// one of its own term, so until an entry of its term is applied here its commit index
// may miss a write its predecessor acknowledged: it refuses until then (its leader mark
// is that entry). The term must also stay the same from the check to the heartbeat's
// answer: a node that lost and regained leadership meanwhile is a new leader again.
func (s *Store) leaderReadIndex(ctx context.Context) (uint64, error) {
	term := s.raft.CurrentTerm()
	if s.raft.State() != raft.Leader {
		a, i := s.raft.LeaderWithID()
		return 0, &NotLeaderError{LeaderID: string(i), LeaderAddress: string(a)}
	}
	if s.fsm.appliedTerm.Load() != term {
		return 0, fmt.Errorf("read index: %w: new leader not ready yet (no entry of term %d applied)", ErrNoLeader, term)
	}
	idx := s.raft.CommitIndex()
	if err := awaitFuture(ctx, s.ctx, s.raft.VerifyLeader()); err != nil {
		return 0, fmt.Errorf("read index: %w: %v", ErrNoLeader, err)
	}
	if now := s.raft.CurrentTerm(); now != term {
		return 0, fmt.Errorf("read index: %w: term changed from %d to %d during the read", ErrNoLeader, term, now)
	}
	return idx, nil
}

// awaitFuture waits for a Raft future, the caller's context, or the store's shutdown:
// a future the leader loop took just before Raft shut down may never be answered.
func awaitFuture(ctx, storeCtx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-storeCtx.Done():
		return ErrClosed
	}
}

// Watch starts a watch. See WatchOptions and Watcher.Next.
func (s *Store) Watch(opts WatchOptions) (*Watcher, error) {
	if opts.Kind == "" {
		return nil, fmt.Errorf("watch: %w: kind is required", ErrInvalid)
	}
	return s.hist.watch(opts, s.cfg.MaxWatchLag)
}

// Backup streams a consistent copy of this node's state (as of its latest applied
// revision, which it returns) in the state file's format.
func (s *Store) Backup(w io.Writer) (int64, error) {
	return s.fsm.writeTo(w)
}

// indexBatcher shares one read-index round among all reads waiting when it starts.
// A read that arrives while a round is in flight waits for the next one: the index of
// a round that started before the read could miss a write acknowledged just before it.
type indexBatcher struct {
	ctx     context.Context
	wg      *sync.WaitGroup
	fetch   func(context.Context) (uint64, error)
	mu      sync.Mutex
	waiting []chan indexResult
	running bool
}

type indexResult struct {
	idx uint64
	err error
}

func newIndexBatcher(ctx context.Context, wg *sync.WaitGroup, fetch func(context.Context) (uint64, error)) *indexBatcher {
	return &indexBatcher{ctx: ctx, wg: wg, fetch: fetch}
}

func (b *indexBatcher) get(ctx context.Context) (uint64, error) {
	ch := make(chan indexResult, 1)
	b.mu.Lock()
	b.waiting = append(b.waiting, ch)
	if !b.running {
		b.running = true
		b.wg.Add(1)
		go b.loop()
	}
	b.mu.Unlock()
	select {
	case r := <-ch:
		return r.idx, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func (b *indexBatcher) loop() {
	defer b.wg.Done()
	for {
		b.mu.Lock()
		batch := b.waiting
		b.waiting = nil
		if len(batch) == 0 || b.ctx.Err() != nil {
			b.running = false
			b.mu.Unlock()
			for _, ch := range batch {
				ch <- indexResult{err: ErrClosed}
			}
			return
		}
		b.mu.Unlock()
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		idx, err := b.fetch(ctx)
		cancel()
		for _, ch := range batch {
			ch <- indexResult{idx: idx, err: err}
		}
	}
}

package store

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	storev1 "github.com/skiffhq/skiff/proto/store/v1"
)

// Cluster identity.
//
// Holding the CA's certificate proves that a peer belongs to some Skiff cluster of that
// CA, not to this one. So every cluster has an ID, made by its first leader (the members
// bootstrap separately, from the same list, and a random ID must be chosen once) and kept
// in the replicated state; each member also keeps it in its data directory (the identity
// file), with the random UID of its own incarnation (made with the directory). Every peer
// connection starts with both sides saying who they are (peerHello); a side refuses a
// peer of another cluster, and the cluster refuses an incarnation it removed, so a member
// that comes back from the dead with its old data cannot rejoin (wiped and added again,
// it is a new incarnation and joins). A member that knows no ID yet (its first start)
// accepts any peer: it learns its cluster's ID from the first state it applies. A
// snapshot of another cluster is refused at install, and a join (AddVoter) dials the new
// member first and refuses one that belongs to another cluster.
//
// The replicated state records, in the members bucket, each member's current incarnation
// (the leader records those it meets on the peer port); when a configuration change
// leaves a member out, its incarnation moves to the removed bucket.

var (
	bucketMembers = []byte("members") // member name -> incarnation UID
	bucketRemoved = []byte("removed") // incarnation UID -> member name
	keyCluster    = []byte("cluster")
)

// identityFile is the name of the identity file in a data directory.
const identityFile = "identity"

// identity is this member's: its cluster's ID (once known) and its incarnation.
type identity struct {
	path   string
	member string
	log    hclog.Logger

	mu      sync.Mutex
	cluster string
	uid     string
}

type identityOnDisk struct {
	Cluster string `json:"cluster,omitempty"`
	Member  string `json:"member"`
	UID     string `json:"uid"`
}

// loadIdentity reads dir's identity file, or makes a new incarnation when there is none.
func loadIdentity(dir, member string, log hclog.Logger) (*identity, error) {
	id := &identity{path: filepath.Join(dir, identityFile), member: member, log: log}
	b, err := os.ReadFile(id.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		id.uid = randomID(16)
		if err := id.save(); err != nil {
			return nil, err
		}
		return id, nil
	case err != nil:
		return nil, fmt.Errorf("read identity %s: %w", id.path, err)
	}
	var d identityOnDisk
	if err := json.Unmarshal(b, &d); err != nil || d.UID == "" {
		return nil, fmt.Errorf("identity %s is damaged (%v): remove the member, wipe its data directory and add it again", id.path, err)
	}
	if d.Member != member {
		return nil, fmt.Errorf("data directory %s belongs to member %s, not %s", dir, d.Member, member)
	}
	id.cluster, id.uid = d.Cluster, d.UID
	return id, nil
}

func (id *identity) save() error {
	b, _ := json.Marshal(identityOnDisk{Cluster: id.cluster, Member: id.member, UID: id.uid})
	tmp := id.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("write identity %s: %w", id.path, err)
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, id.path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write identity %s: %w", id.path, err)
	}
	return nil
}

func (id *identity) get() (cluster, uid string) {
	id.mu.Lock()
	defer id.mu.Unlock()
	return id.cluster, id.uid
}

// learn records the cluster's ID, read from the applied state.
func (id *identity) learn(cluster string) {
	id.mu.Lock()
	defer id.mu.Unlock()
	if cluster == "" || cluster == id.cluster {
		return
	}
	if id.cluster != "" {
		// Connections and snapshot installs are checked, so this takes a data directory
		// edited by hand: keep the ID the member has, and say so.
		id.log.Error("the applied state names another cluster than this member's data directory; keeping the directory's",
			"state", cluster, "member", id.cluster)
		return
	}
	id.cluster = cluster
	if err := id.save(); err != nil {
		id.log.Error("cannot record the cluster ID", "cluster", cluster, "error", err)
		return
	}
	id.log.Info("member of cluster", "cluster", cluster)
}

func randomID(n int) string {
	b := make([]byte, n/2)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("store: no randomness: %v", err))
	}
	return hex.EncodeToString(b)
}

// peerHello is what each side of a peer connection says first, after the protocol byte.
type peerHello struct {
	Cluster string `json:"cluster,omitempty"` // "" while the member knows none
	Member  string `json:"member,omitempty"`
	UID     string `json:"uid,omitempty"`
	// Version is the Skiff release the member runs (skew.go).
	Version string `json:"version,omitempty"`
	// Refused, in a reply, says why the dialing side was refused.
	Refused string `json:"refused,omitempty"`
}

const maxHello = 4 << 10

func writeHello(w io.Writer, h peerHello) error {
	b, _ := json.Marshal(h)
	buf := make([]byte, 4, 4+len(b))
	binary.BigEndian.PutUint32(buf, uint32(len(b)))
	_, err := w.Write(append(buf, b...))
	return err
}

func readHello(r io.Reader) (peerHello, error) {
	var h peerHello
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return h, err
	}
	size := binary.BigEndian.Uint32(n[:])
	if size > maxHello {
		return h, fmt.Errorf("peer hello of %d bytes: not a Skiff peer of this version", size)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(r, b); err != nil {
		return h, err
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return h, fmt.Errorf("decode peer hello: %w", err)
	}
	return h, nil
}

// RefusedError is a peer connection refused for the identity one side presented.
type RefusedError struct{ Reason string }

func (e *RefusedError) Error() string { return e.Reason }

// hello is what this member says of itself on the peer port.
func (s *Store) hello() peerHello {
	cluster, uid := s.ident.get()
	return peerHello{Cluster: cluster, Member: s.cfg.ID, UID: uid, Version: s.cfg.Version}
}

// checkPeer accepts or refuses a peer by what it said of itself.
func (s *Store) checkPeer(h peerHello) error {
	own, _ := s.ident.get()
	if err := checkSkew(s.cfg.ID, s.cfg.Version, h.Member, h.Version); err != nil {
		return err
	}
	if h.Member != "" && h.Version != "" {
		s.peerVersions.Store(h.Member, h.Version)
	}
	if own != "" && h.Cluster != "" && h.Cluster != own {
		return &RefusedError{Reason: fmt.Sprintf("member %s belongs to cluster %s, but member %s belongs to cluster %s: members of different clusters never talk (check the peer addresses)",
			orUnnamed(h.Member), h.Cluster, s.cfg.ID, own)}
	}
	if h.UID != "" {
		if name, removed := s.fsm.removedIncarnation(h.UID); removed {
			return &RefusedError{Reason: fmt.Sprintf("member %s of cluster %s (incarnation %s) was removed from cluster %s: to bring it back, wipe its data directory and add it again",
				name, orUnnamed(h.Cluster), h.UID, own)}
		}
	}
	s.noteIncarnation(h)
	return nil
}

func orUnnamed(s string) string {
	if s == "" {
		return "(none yet)"
	}
	return s
}

// noteIncarnation has the leader record a member's incarnation it has not recorded yet.
func (s *Store) noteIncarnation(h peerHello) {
	if h.Member == "" || h.UID == "" || !s.running.Load() || s.raft.State() != raft.Leader || !s.isMember(h.Member) {
		return
	}
	if s.fsm.incarnation(h.Member) == h.UID {
		return
	}
	s.registerMu.Lock()
	if s.registering[h.Member] == h.UID {
		s.registerMu.Unlock()
		return
	}
	s.registering[h.Member] = h.UID
	s.registerMu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() {
			s.registerMu.Lock()
			delete(s.registering, h.Member)
			s.registerMu.Unlock()
		}()
		cmd, _ := proto.Marshal(&storev1.Command{Command: &storev1.Command_MemberIncarnation{
			MemberIncarnation: &storev1.MemberIncarnation{Name: h.Member, Uid: h.UID}}})
		if err := awaitFuture(s.ctx, s.ctx, s.raft.Apply(cmd, s.cfg.WriteTimeout)); err != nil {
			s.log.Debug("record member incarnation", "member", h.Member, "error", err)
		}
	}()
}

// establishIdentity, run by a leader whose mark is applied, names the cluster if its
// state has no ID yet and records the leader's own incarnation.
func (s *Store) establishIdentity() {
	if s.fsm.clusterID() == "" {
		cmd, _ := proto.Marshal(&storev1.Command{Command: &storev1.Command_ClusterIdentity{
			ClusterIdentity: &storev1.ClusterIdentity{Id: randomID(16)}}})
		if err := awaitFuture(s.ctx, s.ctx, s.raft.Apply(cmd, s.cfg.WriteTimeout)); err != nil {
			s.log.Warn("cluster ID not recorded; the next leader will", "error", err)
			return
		}
	}
	s.noteIncarnation(s.hello())
}

// ClusterID is the ID of this member's cluster, "" until it knows it.
func (s *Store) ClusterID() string {
	c, _ := s.ident.get()
	return c
}

// checkJoin dials a member about to be added, so that one of another cluster is refused
// before it enters the configuration. A member that cannot be reached is not refused
// (it may not be started yet): Raft reaches it later, through the same check.
func (s *Store) checkJoin(ctx context.Context, address string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := s.mux.dial(ctx, address, protoPeer)
	var re *RefusedError
	if errors.As(err, &re) {
		return fmt.Errorf("%w: %v", ErrRefused, err)
	}
	if err == nil {
		conn.Close()
	}
	return nil
}

// The replicated side, applied by the state machine.

func (f *fsm) clusterID() string {
	if p := f.cluster.Load(); p != nil {
		return *p
	}
	return ""
}

// incarnation is the recorded incarnation of member name, "" when none is.
func (f *fsm) incarnation(name string) string {
	var uid string
	f.view(func(tx *bbolt.Tx) error {
		uid = string(tx.Bucket(bucketMembers).Get([]byte(name)))
		return nil
	})
	return uid
}

// removedIncarnation says whether incarnation uid was removed, and of which member.
func (f *fsm) removedIncarnation(uid string) (string, bool) {
	var name []byte
	f.view(func(tx *bbolt.Tx) error {
		if v := tx.Bucket(bucketRemoved).Get([]byte(uid)); v != nil {
			name = append([]byte{}, v...)
		}
		return nil
	})
	return string(name), name != nil
}

// applyIdentity applies a ClusterIdentity or MemberIncarnation command.
func applyIdentity(tx *bbolt.Tx, cmd *storev1.Command) error {
	switch c := cmd.Command.(type) {
	case *storev1.Command_ClusterIdentity:
		meta := tx.Bucket(bucketMeta)
		if meta.Get(keyCluster) != nil || c.ClusterIdentity.GetId() == "" {
			return nil // named once: a later leader's proposal lost the race
		}
		return meta.Put(keyCluster, []byte(c.ClusterIdentity.GetId()))
	case *storev1.Command_MemberIncarnation:
		name, uid := c.MemberIncarnation.GetName(), c.MemberIncarnation.GetUid()
		if name == "" || uid == "" || tx.Bucket(bucketRemoved).Get([]byte(uid)) != nil {
			return nil
		}
		return tx.Bucket(bucketMembers).Put([]byte(name), []byte(uid))
	}
	return nil
}

// applyConfiguration moves the incarnations of members a configuration leaves out to
// the removed bucket.
func applyConfiguration(tx *bbolt.Tx, data []byte) error {
	conf := raft.DecodeConfiguration(data)
	in := map[string]bool{}
	for _, srv := range conf.Servers {
		in[string(srv.ID)] = true
	}
	members := tx.Bucket(bucketMembers)
	var gone [][2][]byte
	members.ForEach(func(k, v []byte) error {
		if !in[string(k)] {
			gone = append(gone, [2][]byte{append([]byte{}, k...), append([]byte{}, v...)})
		}
		return nil
	})
	for _, g := range gone {
		if err := members.Delete(g[0]); err != nil {
			return err
		}
		if err := tx.Bucket(bucketRemoved).Put(g[1], g[0]); err != nil {
			return err
		}
	}
	return nil
}

// checkSnapshotFormat refuses a state file (a snapshot being installed) of a format this
// release cannot read, before it replaces the member's state.
func checkSnapshotFormat(path string) error {
	db, err := bbolt.Open(path, 0o400, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return err
	}
	defer db.Close()
	return db.View(func(tx *bbolt.Tx) error {
		_, err := readStateFormat(tx)
		return err
	})
}

// snapshotCluster reads the cluster ID a state file (a snapshot being installed) holds.
func snapshotCluster(path string) (string, error) {
	db, err := bbolt.Open(path, 0o400, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return "", err
	}
	defer db.Close()
	var id string
	err = db.View(func(tx *bbolt.Tx) error {
		if meta := tx.Bucket(bucketMeta); meta != nil {
			id = string(meta.Get(keyCluster))
		}
		return nil
	})
	return id, err
}

package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	storev1 "github.com/skiffhq/skiff/proto/store/v1"
)

// Bounded disk, as etcd bounds it.
//
// The state file never shrinks by itself: bbolt reuses the pages deletes free but keeps
// the file as large as it ever was. A quota (Config.QuotaBytes) bounds it. A write
// (create or update) that finds the state file of the member it reaches at the quota is
// refused with ErrNoSpace, and that member raises the NOSPACE alarm in the replicated
// state; while the alarm is raised every member refuses every create and update at
// apply, deterministically, and accepts deletes, so the space can be freed. Freed pages
// return to the disk only by defragmentation (Defragment: the state file compacted into
// a new one, online, blocking this member's applies meanwhile, one member at a time).
// The alarm then stays until an administrator disarms it (DisarmAlarm, `skiffctl cluster
// alarm disarm`); a member still over its quota raises it again at the next write.

var keyAlarmNoSpace = []byte("alarm.nospace")

// applyAlarm applies an Alarm command.
func applyAlarm(tx *bbolt.Tx, cmd *storev1.Command) error {
	c, ok := cmd.Command.(*storev1.Command_Alarm)
	if !ok || c.Alarm.GetType() != storev1.Alarm_NOSPACE {
		return nil
	}
	meta := tx.Bucket(bucketMeta)
	if !c.Alarm.GetRaise() {
		return meta.Delete(keyAlarmNoSpace)
	}
	if meta.Get(keyAlarmNoSpace) != nil {
		return nil // raised already: keep the first member's name
	}
	return meta.Put(keyAlarmNoSpace, []byte(c.Alarm.GetMember()))
}

// loadMeta refreshes what the state's meta bucket says that readers need without a
// transaction: the cluster ID, the alarm, the file's size.
func (f *fsm) loadMeta(tx *bbolt.Tx) {
	meta := tx.Bucket(bucketMeta)
	if v := meta.Get(keyCluster); v != nil && f.clusterID() != string(v) {
		id := string(v)
		f.cluster.Store(&id)
		f.ident.learn(id)
	}
	if v := meta.Get(keyAlarmNoSpace); v != nil {
		if p := f.noSpace.Load(); p == nil || *p != string(v) {
			by := string(v)
			f.noSpace.Store(&by)
		}
	} else {
		f.noSpace.Store(nil)
	}
	f.size.Store(tx.Size())
}

// Usage is a state file's size and the part of it its data uses.
type Usage struct {
	Size, InUse int64
}

func (f *fsm) usage() (Usage, error) {
	s, err := f.acquire()
	if err != nil {
		return Usage{}, err
	}
	defer s.release()
	return usageOf(s.db)
}

func usageOf(db *bbolt.DB) (Usage, error) {
	var u Usage
	err := db.View(func(tx *bbolt.Tx) error {
		u.Size = tx.Size()
		return nil
	})
	st := db.Stats()
	u.InUse = u.Size - int64(st.FreePageN+st.PendingPageN)*int64(db.Info().PageSize)
	return u, err
}

// defragment compacts the state file into a new one that then takes its place. Applies
// wait meanwhile (as etcd's defrag blocks writes); reads go on against the old file, and
// those under way when it is replaced finish on it (statedb.go).
func (f *fsm) defragment() (before, after Usage, err error) {
	f.applyMu.Lock()
	defer f.applyMu.Unlock()
	began := time.Now()
	if before, err = f.usage(); err != nil {
		return before, after, err
	}
	tmp := f.path + ".defrag"
	os.Remove(tmp)
	dst, err := bbolt.Open(tmp, 0o600, &bbolt.Options{Timeout: time.Second, NoSync: true, NoGrowSync: true, NoFreelistSync: true, FreelistType: bbolt.FreelistMapType})
	if err != nil {
		return before, after, fmt.Errorf("defragment: create %s: %w", tmp, err)
	}
	src, err := f.acquire()
	if err != nil {
		dst.Close()
		os.Remove(tmp)
		return before, after, fmt.Errorf("defragment: %w", err)
	}
	err = bbolt.Compact(dst, src.db, defragTxBytes)
	src.release()
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return before, after, fmt.Errorf("defragment %s: %w", f.path, err)
	}
	if _, err := f.replace(tmp); err != nil {
		return before, after, fmt.Errorf("defragment: %w", err)
	}
	after, err = f.usage()
	f.log.Info("state file defragmented", "before", before.Size, "after", after.Size, "took", time.Since(began))
	return before, after, err
}

// Defragmentation when deletes leave the state file mostly free. bbolt keeps the id of
// every free page of the file in memory (its freelist's cache and spans, about 30 bytes a
// page), for as long as the file has them: after 300 MiB of objects written and deleted,
// the state file's 77,000 free pages held 2.3 MiB of heap (a member idle at 17 MiB),
// until writes reused them. A member therefore defragments its state file by itself once
// deletes have stopped (its free bytes did not grow for defragQuiet) and the file has at
// least Config.DefragFreeBytes free and more free than in use: the copy, which holds this
// member's applies meanwhile, is then of less than what it gives back, heap and disk.
// The wait keeps it from copying what a burst of deletes is about to free: a copy reads
// the objects in use through bbolt's map and buffers defragTxBytes of them, which in the
// middle of 300 MiB of deletes made the member's largest RSS 60 MiB larger.

// defragQuiet is how long the state file's free bytes must not have grown before the
// member defragments it by itself.
const defragQuiet = 10 * time.Second

// defragTxBytes bounds the bytes of objects one transaction of a defragmentation copies
// (and holds in memory until it commits).
const defragTxBytes = 4 << 20

// defragIfFree defragments the state file if it has at least threshold bytes free, more
// than it uses, and its free bytes have not grown for defragQuiet before now (the deletes
// are over). The store calls it once a second. It reports whether it defragmented.
func (f *fsm) defragIfFree(threshold int64, now time.Time) (bool, Usage, error) {
	if threshold <= 0 {
		return false, Usage{}, nil
	}
	u, err := f.usage()
	if err != nil {
		return false, u, err
	}
	free := u.Size - u.InUse
	if free > f.freeSeen {
		f.freeGrew = now
	}
	f.freeSeen = free
	if now.Sub(f.freeGrew) < defragQuiet || free < threshold || free <= u.InUse {
		return false, u, nil
	}
	_, after, err := f.defragment()
	f.freeSeen = after.Size - after.InUse
	return err == nil, after, err
}

// Usage reports this member's state file sizes.
func (s *Store) Usage() (Usage, error) {
	if s.closed.Load() {
		return Usage{}, ErrClosed
	}
	return s.fsm.usage()
}

// MemberUsage reports the state file sizes of a member, asking it over the peer link.
func (s *Store) MemberUsage(ctx context.Context, id string) (Usage, error) {
	if id == s.cfg.ID {
		return s.Usage()
	}
	addr, ok := s.memberAddress(id)
	if !ok {
		return Usage{}, &PreconditionError{Err: ErrNotFound, Key: Key{Kind: "Member", Name: id}}
	}
	cc, err := s.peers.get(addr)
	if err != nil {
		return Usage{}, fmt.Errorf("usage of %s: %w", id, err)
	}
	resp, err := storev1.NewPeerClient(cc).Usage(ctx, &storev1.UsageRequest{})
	if err != nil {
		return Usage{}, fmt.Errorf("usage of %s: %w", id, err)
	}
	return Usage{Size: resp.GetDbSize(), InUse: resp.GetDbSizeInUse()}, errorFromProto(resp.GetError())
}

// Defragment compacts member id's state file (this member's, or another's over the peer
// link) and returns its sizes after.
func (s *Store) Defragment(ctx context.Context, id string) (Usage, error) {
	if s.closed.Load() {
		return Usage{}, ErrClosed
	}
	if id == "" || id == s.cfg.ID {
		_, after, err := s.fsm.defragment()
		return after, err
	}
	addr, ok := s.memberAddress(id)
	if !ok {
		return Usage{}, &PreconditionError{Err: ErrNotFound, Key: Key{Kind: "Member", Name: id}}
	}
	cc, err := s.peers.get(addr)
	if err != nil {
		return Usage{}, fmt.Errorf("defragment %s: %w", id, err)
	}
	resp, err := storev1.NewPeerClient(cc).Defragment(ctx, &storev1.DefragmentRequest{})
	if err != nil {
		return Usage{}, fmt.Errorf("defragment %s: %w", id, err)
	}
	return Usage{Size: resp.GetDbSize(), InUse: resp.GetDbSizeInUse()}, errorFromProto(resp.GetError())
}

func (p *peerService) Usage(context.Context, *storev1.UsageRequest) (*storev1.UsageResponse, error) {
	u, err := p.s.Usage()
	return &storev1.UsageResponse{DbSize: u.Size, DbSizeInUse: u.InUse, Error: errorToProto(err)}, nil
}

func (p *peerService) Defragment(context.Context, *storev1.DefragmentRequest) (*storev1.UsageResponse, error) {
	u, err := p.s.Defragment(context.Background(), p.s.cfg.ID)
	return &storev1.UsageResponse{DbSize: u.Size, DbSizeInUse: u.InUse, Error: errorToProto(err)}, nil
}

// Alarms lists the raised alarms ("NOSPACE"), as this member has applied them.
func (s *Store) Alarms() []string {
	if p := s.fsm.noSpace.Load(); p != nil {
		return []string{"NOSPACE"}
	}
	return nil
}

// DisarmAlarm clears the NOSPACE alarm for the whole cluster.
func (s *Store) DisarmAlarm(ctx context.Context) error {
	_, err := s.apply(ctx, encodeAlarm(false, s.cfg.ID))
	if err != nil {
		return fmt.Errorf("disarm alarm: %w", err)
	}
	return nil
}

func encodeAlarm(raise bool, member string) []byte {
	b, _ := proto.Marshal(&storev1.Command{Command: &storev1.Command_Alarm{Alarm: &storev1.Alarm{Type: storev1.Alarm_NOSPACE, Raise: raise, Member: member}}})
	return b
}

// checkSpace refuses a write of size bytes (with creates or updates) when the NOSPACE
// alarm is raised or this member's state file is at its quota; in the latter case it
// raises the alarm.
func (s *Store) checkSpace(ctx context.Context, ops []Op, size int) error {
	writes := false
	for _, op := range ops {
		writes = writes || op.Type != Delete
	}
	if !writes {
		return nil
	}
	if by := s.fsm.noSpace.Load(); by != nil {
		return fmt.Errorf("%w: the cluster's NOSPACE alarm is raised (by member %s): only deletes are accepted; free space (delete objects, then skiffctl cluster defrag) and disarm it (skiffctl cluster alarm disarm)", ErrNoSpace, *by)
	}
	if used := s.fsm.size.Load(); used+int64(size) > s.cfg.QuotaBytes {
		s.raiseNoSpace(ctx)
		return fmt.Errorf("%w: the state file of member %s is %d bytes and the quota (--quota-backend-bytes) is %d: only deletes are accepted; the NOSPACE alarm is raised", ErrNoSpace, s.cfg.ID, used, s.cfg.QuotaBytes)
	}
	return nil
}

// raiseNoSpace raises the NOSPACE alarm before the refused write returns, so that what
// the writer sees next (the cluster status) shows it. One writer raises it at a time;
// the others are refused at once.
func (s *Store) raiseNoSpace(ctx context.Context) {
	if !s.raising.TryLock() {
		return
	}
	defer s.raising.Unlock()
	if s.fsm.noSpace.Load() != nil {
		return
	}
	s.log.Warn("state file at its quota: raising the NOSPACE alarm", "size", s.fsm.size.Load(), "quota", s.cfg.QuotaBytes)
	if _, err := s.apply(ctx, encodeAlarm(true, s.cfg.ID)); err != nil && !errors.Is(err, ErrClosed) {
		s.log.Warn("raise NOSPACE alarm", "error", err)
	}
}

package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	"github.com/skiffhq/skiff/internal/failpoint"
	storev1 "github.com/skiffhq/skiff/proto/store/v1"
)

// The state machine's bbolt layout:
//
//	objects: kind \0 namespace \0 name          -> storev1.Record
//	index:   kind \0 field \0 value \0 ns \0 name -> (empty)
//	meta:    "revision"                           -> big-endian uint64, last applied Raft index
//	         "indexes"                            -> the indexed fields the index bucket holds
//	         "cluster"                            -> the cluster's ID (identity.go)
//	         "alarm.nospace"                      -> the member that raised NOSPACE (quota.go)
//	members: member name                          -> its current incarnation's UID
//	removed: incarnation UID                      -> the name of the member it was
//
// Object keys sort by kind, then namespace, then name, so a list is one prefix scan.
var (
	bucketObjects = []byte("objects")
	bucketIndex   = []byte("index")
	bucketMeta    = []byte("meta")
	keyRevision   = []byte("revision")
	keyIndexes    = []byte("indexes")
)

// indexSpec is the fields the index holds, by kind; nil holds every field of every kind.
type indexSpec map[string]map[string]bool

func newIndexSpec(fields map[string][]string) indexSpec {
	if fields == nil {
		return nil
	}
	s := indexSpec{}
	for kind, fs := range fields {
		s[kind] = map[string]bool{}
		for _, f := range fs {
			s[kind][f] = true
		}
	}
	return s
}

func (s indexSpec) has(kind, field string) bool { return s == nil || s[kind][field] }

// String is the spec's canonical form, stored with the index it describes.
func (s indexSpec) String() string {
	if s == nil {
		return "*"
	}
	var all []string
	for kind, fs := range s {
		for f := range fs {
			all = append(all, kind+"\x00"+f)
		}
	}
	sort.Strings(all)
	return strings.Join(all, "\n")
}

func objectKey(k Key) []byte {
	b := make([]byte, 0, len(k.Kind)+len(k.Namespace)+len(k.Name)+2)
	b = append(b, k.Kind...)
	b = append(b, 0)
	b = append(b, k.Namespace...)
	b = append(b, 0)
	return append(b, k.Name...)
}

func parseObjectKey(b []byte) Key {
	parts := bytes.SplitN(b, []byte{0}, 3)
	return Key{Kind: string(parts[0]), Namespace: string(parts[1]), Name: string(parts[2])}
}

// listPrefix is the key prefix of every object of kind (in namespace, when set).
func listPrefix(kind, namespace string) []byte {
	b := append([]byte(kind), 0)
	if namespace != "" {
		b = append(b, namespace...)
		b = append(b, 0)
	}
	return b
}

func indexPrefix(kind, field, value string) []byte {
	b := make([]byte, 0, len(kind)+len(field)+len(value)+3)
	b = append(b, kind...)
	b = append(b, 0)
	b = append(b, field...)
	b = append(b, 0)
	b = append(b, value...)
	return append(b, 0)
}

func indexKey(k Key, field, value string) []byte {
	b := indexPrefix(k.Kind, field, value)
	b = append(b, k.Namespace...)
	b = append(b, 0)
	return append(b, k.Name...)
}

// fsm is the replicated state machine: objects in bbolt plus the in-memory watch history.
// Raft calls ApplyBatch, Snapshot and Restore from one goroutine; reads come from any.
type fsm struct {
	log           hclog.Logger
	path          string
	mmapSize      int
	maxObjectSize int
	indexes       indexSpec

	// state is the open state file (statedb.go); readers acquire it, Restore and
	// defragment replace it.
	state atomic.Pointer[stateDB]

	// applied is the last Raft index applied (the store's current revision).
	applied atomic.Int64
	// appliedTerm is the Raft term of the last entry applied. A leader whose term this is
	// has applied every entry committed before its term (read indexes rely on it).
	appliedTerm atomic.Uint64
	// entries counts the log entries applied since the node started (restores excluded).
	entries atomic.Int64
	batches atomic.Int64
	hist    *history
	// past are the changes the pages of lists at past revisions undo (pastlist.go).
	past pastLists
	// maps is the label and field maps the objects' events share (share.go); only
	// the apply uses it.
	maps mapTable

	// changed maps a kind to the revision of the latest applied change to one of its
	// objects (*atomic.Int64); reset is the revision of the latest snapshot restore,
	// which may have changed anything. Together they say whether what a reader learned
	// of a kind at some revision still holds, without a read transaction.
	changed sync.Map
	reset   atomic.Int64

	// ident is this member's identity; cluster the ID the state holds.
	ident   *identity
	cluster atomic.Pointer[string]
	// noSpace names the member that raised the NOSPACE alarm; nil while it is not raised.
	noSpace atomic.Pointer[string]
	// mapped counts the bytes of the state file's pages written, and of the objects
	// replaced or deleted, since the store last released its mapping of the file
	// (mapped.go).
	mapped mappedPages
	// freeSeen is the state file's free bytes as defragIfFree last saw them, freeGrew
	// when it last saw them grow (that goroutine's own).
	freeSeen int64
	freeGrew time.Time
	// size is the state file's size as of the last applied batch (quota.go).
	size atomic.Int64
	// restoreErr is why the last snapshot install was refused (a newer format): Raft
	// logs it only, and a member that cannot start says it (store.go).
	restoreErr atomic.Pointer[error]
	// applyMu is held by whatever changes the state file (apply, restore, defragment).
	applyMu sync.Mutex
	// stop is closed when the store shuts down: an apply waiting for disk space gives up.
	stop <-chan struct{}
	// onDiskFull, when set, is called each time an apply finds the disk full.
	onDiskFull func()
}

func openFSM(path string, mmapSize, maxObjectSize int, indexes map[string][]string, hist *history, ident *identity, log hclog.Logger) (*fsm, error) {
	// The state machine is rebuilt from the latest snapshot and the log on every start,
	// so the file need not be durable: start from an empty one and never fsync it, not
	// even when it grows (a grow-sync of a large file stalls apply for tens of ms).
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove old state file %s: %w", path, err)
	}
	f := &fsm{log: log, path: path, mmapSize: mmapSize, maxObjectSize: maxObjectSize, indexes: newIndexSpec(indexes), hist: hist, ident: ident}
	f.mapped.release = f.releaseMapped
	db, rev, err := f.openDB(path)
	if err != nil {
		return nil, err
	}
	f.state.Store(newStateDB(db))
	f.applied.Store(rev)
	return f, nil
}

func (f *fsm) openDB(path string) (*bbolt.DB, int64, error) {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout:         time.Second,
		NoSync:          true,
		NoGrowSync:      true,
		NoFreelistSync:  true,
		FreelistType:    bbolt.FreelistMapType,
		InitialMmapSize: f.mmapSize,
	})
	if err != nil {
		return nil, 0, fmt.Errorf("open state file %s: %w", path, err)
	}
	var rev int64
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bucketObjects, bucketIndex, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		from, err := migrateState(tx) // an empty file is a state of format 1
		if err != nil {
			return err
		}
		if from != stateFormat && tx.Bucket(bucketMeta).Get(keyRevision) != nil {
			f.log.Info("state migrated to this release's format", "from", from, "to", stateFormat)
		}
		if v := tx.Bucket(bucketMeta).Get(keyRevision); len(v) == 8 {
			rev = int64(binary.BigEndian.Uint64(v))
		}
		f.loadMeta(tx)
		// A snapshot taken by a node indexing other fields (another version) gets its
		// index rebuilt for this node's fields.
		if spec := f.indexes.String(); string(tx.Bucket(bucketMeta).Get(keyIndexes)) != spec {
			if err := f.rebuildIndex(tx); err != nil {
				return err
			}
			return tx.Bucket(bucketMeta).Put(keyIndexes, []byte(spec))
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, 0, fmt.Errorf("initialise state file %s: %w", path, err)
	}
	return db, rev, nil
}

var _ raft.BatchingFSM = (*fsm)(nil)

// txnOutcome is what ApplyBatch returns for a transaction, through the ApplyFuture.
type txnOutcome struct {
	result *TxnResult
	err    error
}

func (f *fsm) Apply(l *raft.Log) interface{} { return f.ApplyBatch([]*raft.Log{l})[0] }

// ApplyBatch applies committed entries in one bbolt write transaction, then publishes
// their events to the watch history. Preconditions are checked here, so concurrent
// writers are ordered by the log and exactly one of two racing writers wins.
func (f *fsm) ApplyBatch(logs []*raft.Log) []interface{} {
	f.applyMu.Lock()
	defer f.applyMu.Unlock()
	failpoint.Inject(fpBeforeApply)
	out := make([]interface{}, len(logs))
	var events []Event
	var last int64
	var err error
	allocated := f.pagesWritten()
	for full := 0; ; full++ {
		events = events[:0]
		if err = f.db().Update(func(tx *bbolt.Tx) error { return f.applyTx(tx, logs, out, &events, &last) }); !errors.Is(err, syscall.ENOSPC) {
			break
		}
		// A full disk: bbolt rolled the batch back, its state file is as before. A
		// committed entry cannot be skipped, so the member waits for space, applying
		// nothing (its reads wait too), and retries; a leader hands leadership over
		// (onDiskFull) and the others go on.
		if full == 0 {
			f.log.Error("disk full: cannot apply committed entries until space is freed; retrying", "path", f.path, "first", logs[0].Index, "error", err)
		}
		if f.onDiskFull != nil {
			f.onDiskFull()
		}
		select {
		case <-f.stop:
			for i := range out {
				out[i] = &txnOutcome{err: ErrClosed}
			}
			return out
		case <-time.After(time.Second):
		}
	}
	if err != nil {
		// The state machine cannot skip a committed entry and stay identical to its peers.
		f.log.Error("apply committed entries failed; stopping", "first", logs[0].Index, "last", last, "error", err)
		panic(fmt.Sprintf("store: apply entries %d..%d: %v", logs[0].Index, last, err))
	}
	failpoint.Inject(fpAfterCommit)
	// What the batch mapped (mapped.go): the pages it wrote, which it copied from the
	// pages they replace, and the objects it replaced or deleted, read for their events.
	touched := f.pagesWritten() - allocated
	for i := range events {
		f.noteChange(events[i].Object.Kind, events[i].Revision)
		if events[i].Prev != nil {
			touched += int64(len(events[i].Prev.Value))
		}
	}
	if _, err := f.mapped.add(touched); err != nil {
		f.log.Warn("cannot release the state file's mapped pages", "error", err)
	}
	f.applied.Store(last)
	f.appliedTerm.Store(logs[len(logs)-1].Term)
	f.entries.Add(int64(len(logs)))
	f.batches.Add(1)
	f.hist.append(events, last)
	return out
}

// pagesWritten is the bytes of pages the state file's write transactions have written
// since it was opened.
func (f *fsm) pagesWritten() int64 {
	st := f.db().Stats()
	return st.TxStats.GetPageAlloc()
}

// applyTx applies logs in tx, setting each entry's outcome in out, its events in events
// and the last index in last.
func (f *fsm) applyTx(tx *bbolt.Tx, logs []*raft.Log, out []interface{}, events *[]Event, last *int64) error {
	w := writer{tx: tx, objects: tx.Bucket(bucketObjects), index: tx.Bucket(bucketIndex), indexes: f.indexes, hist: f.hist, maps: &f.maps,
		noSpace: tx.Bucket(bucketMeta).Get(keyAlarmNoSpace) != nil}
	for i, l := range logs {
		*last = int64(l.Index)
		if l.Type == raft.LogConfiguration {
			// A configuration change changes no object; it retires the members it drops.
			if err := applyConfiguration(tx, l.Data); err != nil {
				return fmt.Errorf("configuration at %d: %w", l.Index, err)
			}
			continue
		}
		if l.Type != raft.LogCommand {
			continue
		}
		cmd, ops, err := decodeCommand(l.Data, f.maxObjectSize)
		switch {
		case err != nil:
			out[i] = &txnOutcome{err: err}
		case ops == nil: // leader mark, cluster identity, member incarnation, alarm
			if err := applyIdentity(tx, cmd); err != nil {
				return fmt.Errorf("entry %d: %w", l.Index, err)
			}
			if err := applyAlarm(tx, cmd); err != nil {
				return fmt.Errorf("entry %d: %w", l.Index, err)
			}
			w.noSpace = tx.Bucket(bucketMeta).Get(keyAlarmNoSpace) != nil
			out[i] = &txnOutcome{result: &TxnResult{Revision: *last}}
		default:
			res, evs, err := w.apply(*last, ops)
			out[i] = &txnOutcome{result: res, err: err}
			*events = append(*events, evs...)
		}
	}
	var rev [8]byte
	binary.BigEndian.PutUint64(rev[:], uint64(*last))
	if err := tx.Bucket(bucketMeta).Put(keyRevision, rev[:]); err != nil {
		return err
	}
	failpoint.Inject(fpApplyCommit)
	f.loadMeta(tx)
	return nil
}

// writer applies transactions inside one bbolt write transaction.
type writer struct {
	tx             *bbolt.Tx
	objects, index *bbolt.Bucket
	indexes        indexSpec
	// noSpace: the NOSPACE alarm is raised, and only deletes are applied.
	noSpace bool
	// hist, when set, lends the objects its events hold (share); maps are the label
	// and field maps in use.
	hist *history
	maps *mapTable
}

// rebuildIndex replaces the index bucket with one of f.indexes' fields.
func (f *fsm) rebuildIndex(tx *bbolt.Tx) error {
	if err := tx.DeleteBucket(bucketIndex); err != nil {
		return fmt.Errorf("drop index: %w", err)
	}
	index, err := tx.CreateBucket(bucketIndex)
	if err != nil {
		return fmt.Errorf("create index: %w", err)
	}
	return tx.Bucket(bucketObjects).ForEach(func(k, v []byte) error {
		key := parseObjectKey(k)
		var r storev1.Record
		if err := proto.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("decode %s: %w", key, err)
		}
		for field, value := range r.GetFields() {
			if f.indexes.has(key.Kind, field) {
				if err := index.Put(indexKey(key, field, value), nil); err != nil {
					return fmt.Errorf("index %s %s: %w", key, field, err)
				}
			}
		}
		return nil
	})
}

type change struct {
	key       Key
	prev, obj *Object // prev nil: created; obj nil: deleted
}

func (w *writer) get(k Key) (*Object, error) {
	v := w.objects.Get(objectKey(k))
	if v == nil {
		return nil, nil
	}
	o, err := decodeRecord(k, v)
	if err != nil {
		return nil, err
	}
	w.share(&o)
	return &o, nil
}

// apply checks every precondition of a transaction against the state including the
// transaction's own earlier operations, and writes nothing unless all hold.
func (w *writer) apply(rev int64, ops []Op) (*TxnResult, []Event, error) {
	if w.noSpace {
		for i, op := range ops {
			if op.Type != Delete {
				return nil, nil, fmt.Errorf("operation %d: %s %s: %w: the cluster's NOSPACE alarm is raised; only deletes are accepted until an administrator disarms it (skiffctl cluster alarm disarm)", i, op.Type, op.Key, ErrNoSpace)
			}
		}
	}
	pending := make(map[Key]*Object, len(ops)) // state after earlier ops of this txn; nil = deleted
	changes := make([]change, 0, len(ops))
	res := &TxnResult{Revision: rev, Objects: make([]Object, len(ops))}
	for i, op := range ops {
		cur, seen := pending[op.Key]
		if !seen {
			var err error
			if cur, err = w.get(op.Key); err != nil {
				return nil, nil, err
			}
		}
		fail := func(class error, detail string) (*TxnResult, []Event, error) {
			pe := &PreconditionError{Err: class, Op: i, Key: op.Key, Detail: detail}
			if cur != nil {
				pe.CurrentRevision = cur.ModRevision
			}
			return nil, nil, pe
		}
		if op.Type == Create {
			if cur != nil {
				return fail(ErrAlreadyExists, "")
			}
		} else {
			if cur == nil {
				return fail(ErrNotFound, "")
			}
			if op.IfRevision != 0 && op.IfRevision != cur.ModRevision {
				return fail(ErrConflict, fmt.Sprintf("resourceVersion %d does not match", op.IfRevision))
			}
			if op.IfUID != "" && op.IfUID != cur.UID {
				return fail(ErrConflict, fmt.Sprintf("uid %s does not match %s", op.IfUID, cur.UID))
			}
		}
		var next *Object
		switch op.Type {
		case Create:
			next = &Object{Key: op.Key, Value: op.Value, UID: op.UID, Labels: w.maps.intern(op.Labels), Fields: w.maps.intern(op.Fields),
				CreateRevision: rev, ModRevision: rev}
			res.Objects[i] = *next
		case Update:
			next = &Object{Key: op.Key, Value: op.Value, UID: cur.UID, Labels: w.sameMap(op.Labels, cur.Labels), Fields: w.sameMap(op.Fields, cur.Fields),
				CreateRevision: cur.CreateRevision, ModRevision: rev}
			res.Objects[i] = *next
		case Delete:
			gone := *cur
			gone.ModRevision = rev
			res.Objects[i] = gone
		}
		changes = append(changes, change{key: op.Key, prev: cur, obj: next})
		pending[op.Key] = next
	}
	events := make([]Event, 0, len(changes))
	for _, c := range changes {
		if err := w.write(c); err != nil {
			return nil, nil, err
		}
		switch {
		case c.prev == nil:
			events = append(events, Event{Type: Added, Revision: rev, Object: *c.obj})
		case c.obj == nil:
			gone := *c.prev
			gone.ModRevision = rev
			events = append(events, Event{Type: Deleted, Revision: rev, Object: gone, Prev: c.prev})
		default:
			events = append(events, Event{Type: Modified, Revision: rev, Object: *c.obj, Prev: c.prev})
		}
	}
	return res, events, nil
}

func (w *writer) write(c change) error {
	k := objectKey(c.key)
	if c.prev != nil {
		for field, value := range c.prev.Fields {
			if !w.indexes.has(c.key.Kind, field) || c.obj != nil && c.obj.Fields[field] == value {
				continue
			}
			if err := w.index.Delete(indexKey(c.key, field, value)); err != nil {
				return fmt.Errorf("unindex %s %s: %w", c.key, field, err)
			}
		}
	}
	if c.obj == nil {
		if err := w.objects.Delete(k); err != nil {
			return fmt.Errorf("delete %s: %w", c.key, err)
		}
		return nil
	}
	for field, value := range c.obj.Fields {
		if !w.indexes.has(c.key.Kind, field) || c.prev != nil && c.prev.Fields[field] == value {
			continue
		}
		if err := w.index.Put(indexKey(c.key, field, value), nil); err != nil {
			return fmt.Errorf("index %s %s: %w", c.key, field, err)
		}
	}
	if err := w.objects.Put(k, encodeRecord(c.obj)); err != nil {
		return fmt.Errorf("put %s: %w", c.key, err)
	}
	return nil
}

func (f *fsm) noteChange(kind string, rev int64) {
	v, ok := f.changed.Load(kind)
	if !ok {
		v, _ = f.changed.LoadOrStore(kind, new(atomic.Int64))
	}
	v.(*atomic.Int64).Store(rev) // only the apply goroutine writes: revisions only grow
}

// lastChange is the revision of the latest change to an object of kind applied on this
// node (or of the latest restore, whichever is later).
func (f *fsm) lastChange(kind string) int64 {
	rev := f.reset.Load()
	if v, ok := f.changed.Load(kind); ok {
		rev = max(rev, v.(*atomic.Int64).Load())
	}
	return rev
}

// view runs fn in a read transaction on the current state file.
func (f *fsm) view(fn func(tx *bbolt.Tx) error) error {
	s, err := f.acquire()
	if err != nil {
		return err
	}
	defer s.release()
	return s.db.View(fn)
}

func readRevision(tx *bbolt.Tx) int64 {
	if v := tx.Bucket(bucketMeta).Get(keyRevision); len(v) == 8 {
		return int64(binary.BigEndian.Uint64(v))
	}
	return 0
}

// get reads one object and the revision the read reflects.
func (f *fsm) get(k Key) (Object, int64, error) {
	var obj Object
	var rev int64
	err := f.view(func(tx *bbolt.Tx) error {
		rev = readRevision(tx)
		v := tx.Bucket(bucketObjects).Get(objectKey(k))
		if v == nil {
			return &PreconditionError{Err: ErrNotFound, Key: k}
		}
		var err error
		obj, err = decodeRecord(k, v)
		return err
	})
	return obj, rev, err
}

// list reads the objects of a kind in one consistent read, with the revision it
// reflects: the current state, or the state as of opts.Revision, rebuilt from the
// current state and the watch history. A page costs what it reads after opts.After
// (and, for a past revision, a pass over the history since it), never a scan from the
// kind's first object; only counting the remaining objects reads the keys to the end.
func (f *fsm) list(ctx context.Context, kind string, opts ListOptions) (ListResult, error) {
	var out ListResult
	err := f.view(func(tx *bbolt.Tx) error {
		out = ListResult{Revision: readRevision(tx)}
		var afterKey []byte
		if opts.After != (Key{}) {
			afterKey = objectKey(Key{Kind: kind, Namespace: opts.After.Namespace, Name: opts.After.Name})
		}
		after := func(k []byte) bool { return afterKey == nil || bytes.Compare(k, afterKey) > 0 }
		// ahead are, for a past revision, the objects changed since that sort after
		// opts.After, in key order, with their state then (nil: absent then); those
		// keys are read from it, not from bbolt.
		var ahead []undoneChange
		if opts.Revision != 0 && opts.Revision < out.Revision {
			if err := f.hist.waitApplied(ctx, out.Revision); err != nil {
				return err
			}
			u, err := f.past.take(f.hist, kind, opts.Namespace, opts.Revision, out.Revision, afterKey, time.Now())
			if err != nil {
				return err
			}
			defer u.mu.Unlock()
			ahead, out.Revision = u.ahead, opts.Revision
		}
		field, value, pred := opts.IndexField, opts.IndexValue, opts.Predicate
		match := func(o *Object) bool {
			if opts.Namespace != "" && o.Namespace != opts.Namespace || opts.Name != "" && o.Name != opts.Name {
				return false
			}
			if field != "" && o.Fields[field] != value {
				return false
			}
			return pred == nil || pred(o)
		}
		// count: once the page is full, the objects after it are counted (every one
		// matches: no field, no predicate; the namespace is the scan's prefix).
		count := opts.CountRemaining && field == "" && pred == nil
		maps := !opts.ValuesOnly || field != ""
		full := func() bool { return opts.Limit > 0 && len(out.Objects) == opts.Limit }
		// take adds o when it matches; it returns false when the page is full and one
		// more object was found (and the rest is not counted).
		take := func(o *Object) bool {
			if !match(o) {
				return true
			}
			if full() {
				out.More = true
				if count {
					out.Remaining++
				}
				return count
			}
			out.Objects = append(out.Objects, *o)
			return true
		}
		// past feeds the changed objects that sort before k (all of them for nil) and
		// existed then.
		past := func(k []byte) bool {
			for len(ahead) > 0 && (k == nil || bytes.Compare(ahead[0].key, k) < 0) {
				o := ahead[0].then
				ahead = ahead[1:]
				if o != nil && !take(o) {
					return false
				}
			}
			return true
		}
		current := func(k, v []byte) (bool, error) {
			if !past(k) {
				return false, nil
			}
			if !after(k) {
				return true, nil
			}
			if len(ahead) > 0 && bytes.Equal(ahead[0].key, k) {
				// Changed since: read as it was then, if it was.
				o := ahead[0].then
				ahead = ahead[1:]
				return o == nil || take(o), nil
			}
			if count && full() {
				out.More = true
				out.Remaining++
				return true, nil
			}
			o, err := decodeRecordMaps(parseObjectKey(k), v, maps)
			if err != nil {
				return false, err
			}
			return take(&o), nil
		}
		objects := tx.Bucket(bucketObjects)
		if field != "" && f.indexes.has(kind, field) {
			prefix := indexPrefix(kind, field, value)
			base := len(prefix)
			if opts.Namespace != "" {
				prefix = append(append(prefix, opts.Namespace...), 0)
			}
			start := prefix
			if opts.After != (Key{}) {
				start = append(append(append(indexPrefix(kind, field, value), opts.After.Namespace...), 0), opts.After.Name...)
			}
			c := tx.Bucket(bucketIndex).Cursor()
			for ik, _ := c.Seek(start); ik != nil && bytes.HasPrefix(ik, prefix); ik, _ = c.Next() {
				nsName := bytes.SplitN(ik[base:], []byte{0}, 2)
				k := objectKey(Key{Kind: kind, Namespace: string(nsName[0]), Name: string(nsName[1])})
				v := objects.Get(k)
				if v == nil {
					return fmt.Errorf("index entry %s %s=%s names a missing object", parseObjectKey(k), field, value)
				}
				if more, err := current(k, v); err != nil || !more {
					return err
				}
			}
			past(nil)
			return nil
		}
		prefix := listPrefix(kind, opts.Namespace)
		start := prefix
		if afterKey != nil {
			start = afterKey
		}
		c := objects.Cursor()
		if opts.Name != "" {
			return listName(c, kind, opts, prefix, current, past)
		}
		for k, v := c.Seek(start); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if count && full() && len(ahead) == 0 {
				// The page is done and nothing after it changed since the list's
				// revision: what is left is counted from its keys alone.
				for ; k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
					out.More = true
					out.Remaining++
				}
				return nil
			}
			if more, err := current(k, v); err != nil || !more {
				return err
			}
		}
		past(nil)
		return nil
	})
	return out, err
}

// listName feeds list's current the objects named opts.Name among the keys under
// prefix: the one key when the namespace is known (given, or the kind's objects have
// none: its first key has an empty namespace), else every key whose name matches, the
// others skipped unread. Then past feeds the rest of the objects changed since.
func listName(c *bbolt.Cursor, kind string, opts ListOptions, prefix []byte, current func(k, v []byte) (bool, error), past func([]byte) bool) error {
	namespaced := opts.Namespace == ""
	if namespaced {
		k, _ := c.Seek(prefix)
		namespaced = k != nil && bytes.HasPrefix(k, prefix) && k[len(prefix)] != 0
	}
	if !namespaced {
		key := objectKey(Key{Kind: kind, Namespace: opts.Namespace, Name: opts.Name})
		if k, v := c.Seek(key); bytes.Equal(k, key) {
			if more, err := current(k, v); err != nil || !more {
				return err
			}
		}
		past(nil)
		return nil
	}
	name := []byte(opts.Name)
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		rest := k[len(prefix):] // namespace, NUL, name
		if i := bytes.IndexByte(rest, 0); i < 0 || !bytes.Equal(rest[i+1:], name) {
			continue
		}
		if more, err := current(k, v); err != nil || !more {
			return err
		}
	}
	past(nil)
	return nil
}

// Snapshot captures the state as of now; Persist streams bbolt's consistent copy of it
// while later entries keep applying.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	s, err := f.acquire()
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	tx, err := s.db.Begin(false)
	if err != nil {
		s.release()
		return nil, fmt.Errorf("snapshot: begin read: %w", err)
	}
	return &fsmSnapshot{tx: tx, release: s.release}, nil
}

type fsmSnapshot struct {
	tx      *bbolt.Tx
	release func()
	once    sync.Once
}

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	failpoint.Inject(fpBeforeSnapshotPersist)
	if _, err := s.tx.WriteTo(sink); err != nil {
		sink.Cancel()
		return fmt.Errorf("snapshot: write state: %w", err)
	}
	if err := sink.Close(); err != nil {
		return err
	}
	failpoint.Inject(fpAfterSnapshotPersist)
	return nil
}

func (s *fsmSnapshot) Release() {
	s.once.Do(func() {
		s.tx.Rollback()
		s.release()
	})
}

// writeTo streams a consistent copy of the state (for backups) and returns its revision.
func (f *fsm) writeTo(w io.Writer) (int64, error) {
	var rev int64
	err := f.view(func(tx *bbolt.Tx) error {
		rev = readRevision(tx)
		_, err := tx.WriteTo(w)
		return err
	})
	return rev, err
}

// Restore replaces the state with a snapshot: the stream goes to a new file that then
// takes the old one's place. Watchers whose position the snapshot skips over get
// ErrCompacted.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	f.applyMu.Lock()
	defer f.applyMu.Unlock()
	failpoint.Inject(fpBeforeRestore)
	tmp := f.path + ".restore"
	file, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("restore: create %s: %w", tmp, err)
	}
	if _, err := io.Copy(file, rc); err != nil {
		file.Close()
		os.Remove(tmp)
		return fmt.Errorf("restore: write %s: %w", tmp, err)
	}
	if err := file.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("restore: close %s: %w", tmp, err)
	}
	if err := checkSnapshotFormat(tmp); err != nil {
		f.restoreErr.Store(&err)
		os.Remove(tmp)
		f.log.Error("snapshot install refused", "error", err)
		return fmt.Errorf("restore: %w", err)
	}
	if own, _ := f.ident.get(); own != "" {
		theirs, err := snapshotCluster(tmp)
		if err == nil && theirs != "" && theirs != own {
			err = fmt.Errorf("%w: the snapshot is of cluster %s, and this member (%s) belongs to cluster %s", ErrRefused, theirs, f.ident.member, own)
		}
		if err != nil {
			os.Remove(tmp)
			f.log.Info("snapshot install refused", "error", err)
			return fmt.Errorf("restore: %w", err)
		}
	}
	// Reads under way (a Raft snapshot being persisted among them) finish on the old
	// file: the restore does not wait for them (statedb.go).
	rev, err := f.replace(tmp)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	failpoint.Inject(fpAfterRestore)
	f.applied.Store(rev)
	f.reset.Store(rev)
	f.hist.reset(rev)
	f.log.Info("restored state from snapshot", "revision", rev)
	return nil
}

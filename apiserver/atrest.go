package apiserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/skiffhq/skiff/apiserver/encryption"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/store"
)

// Values at rest. The store keeps what the API server gives it and never looks inside:
// for Secrets that is the object's encoding encrypted with the primary key of the
// encryption key file (package encryption), so the store's files, its Raft log, its
// snapshots and backups hold ciphertext only. Every path between a handler and the store
// goes through atRest: writes seal, reads open. Every other kind's stored bytes are its
// encoding, and open hands them back as they are, so lists and watches of those kinds
// keep streaming stored bytes without a copy (storedObject, encodeWatchResponse).
//
// The key file is read again when it changes (Config.EncryptionKeyReload), and the
// leader re-encrypts, through ordinary compare-and-swap writes, every stored value that
// is not under the primary key (reencryptor): rotating a key is making a new one the
// primary, and the old one may go once the leader reports every value re-encrypted.

// atRest seals and opens stored values.
type atRest struct {
	keys atomic.Pointer[encryption.Transformer] // nil: no key file, values unencrypted
}

// transforms reports whether values of the kind are encrypted at rest.
func (a *atRest) transforms(info *kinds.Info) bool { return info.Kind == kinds.Secret }

func valuePath(info *kinds.Info, k store.Key) string {
	return encryption.Path(info.Plural, k.Namespace, k.Name)
}

// seal is what to store for plain, the encoding of the object at k.
func (a *atRest) seal(info *kinds.Info, k store.Key, plain []byte) ([]byte, error) {
	if !a.transforms(info) {
		return plain, nil
	}
	return a.keys.Load().Seal(valuePath(info, k), plain)
}

// open is the encoding of the object whose stored value is stored: stored itself for a
// kind that is not encrypted.
func (a *atRest) open(info *kinds.Info, k store.Key, stored []byte) ([]byte, error) {
	if !a.transforms(info) {
		return stored, nil
	}
	return a.keys.Load().Open(valuePath(info, k), stored)
}

// openObject is o with its value opened. o is the store's and stays untouched.
func (a *atRest) openObject(info *kinds.Info, o store.Object) (store.Object, error) {
	v, err := a.open(info, o.Key, o.Value)
	o.Value = v
	return o, err
}

// decodeStored is a stored object of a list, opened and decoded; an error names it.
func (r *resources) decodeStored(info *kinds.Info, o store.Object) (kinds.Object, error) {
	rec, err := r.atRest.openObject(info, o)
	if err != nil {
		return nil, storeError(info, o.Name, err)
	}
	obj, err := decode(info, &rec)
	if err != nil {
		return nil, storeError(info, o.Name, err)
	}
	return obj, nil
}

// openEvents are evs with their objects' values opened: a copy, when the kind is
// encrypted, for the store's events are shared.
func (a *atRest) openEvents(info *kinds.Info, evs []store.Event) ([]store.Event, error) {
	if !a.transforms(info) {
		return evs, nil
	}
	out := make([]store.Event, len(evs))
	for i, ev := range evs {
		if ev.Type != store.Bookmark {
			var err error
			if ev.Object, err = a.openObject(info, ev.Object); err != nil {
				return nil, err
			}
		}
		ev.Prev = nil
		out[i] = ev
	}
	return out, nil
}

// keyFile is the encryption key file as last read, reloaded when it changes.
type keyFile struct {
	path   string
	atRest *atRest
	log    hclog.Logger
	data   []byte // what the file held when last loaded
}

// load reads the file and, when it changed and is valid, makes its keys current. It
// reports whether they changed.
func (f *keyFile) load() (bool, error) {
	data, err := os.ReadFile(f.path)
	if err != nil {
		return false, fmt.Errorf("encryption key file: %w", err)
	}
	if f.data != nil && bytes.Equal(data, f.data) {
		return false, nil
	}
	c, err := encryption.Parse(data)
	if err != nil {
		return false, fmt.Errorf("encryption key file %s: %w", f.path, err)
	}
	t, err := encryption.NewTransformer(c)
	if err != nil {
		return false, fmt.Errorf("encryption key file %s: %w", f.path, err)
	}
	if fi, err := os.Stat(f.path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		f.log.Warn("the encryption key file is readable by others than its owner: make it mode 0600", "file", f.path, "mode", fi.Mode().Perm())
	}
	f.data = data
	f.atRest.keys.Store(t)
	return true, nil
}

// watch reloads the file every interval until ctx ends, and calls changed after each
// change of keys. A file that became invalid is reported and the keys stay as they were.
func (f *keyFile) watch(ctx context.Context, interval time.Duration, changed func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ok, err := f.load()
		if err != nil {
			f.log.Error("cannot reload the encryption key file; keeping the keys loaded before", "error", err)
			continue
		}
		if ok {
			f.log.Info("encryption keys reloaded", "file", f.path, "primary", f.atRest.keys.Load().Primary())
			changed()
		}
	}
}

// reencryptor, on the leader, rewrites every stored value of an encrypted kind that is
// not under the primary key: a pass over the kind, then its watch for values written
// otherwise (by a member with other keys); again from the start when the keys change or
// the watch falls behind. A rewrite is a compare-and-swap on the value's revision: a
// value changed meanwhile is left to the watch, which sees its new version.
type reencryptor struct {
	store  *store.Store
	atRest *atRest
	log    hclog.Logger
	// keysChanged is signalled (without blocking) when the key file's keys change.
	keysChanged chan struct{}
	// done counts the values rewritten; unreadable is how many the last pass could not
	// read (a key missing here).
	done       func()
	unreadable func(n int)
}

func newReencryptor(s *store.Store, a *atRest, log hclog.Logger, done func(), unreadable func(int)) *reencryptor {
	return &reencryptor{store: s, atRest: a, log: log.Named("reencrypt"), keysChanged: make(chan struct{}, 1), done: done, unreadable: unreadable}
}

// keysReloaded tells the loop to start again with the new keys.
func (e *reencryptor) keysReloaded() {
	select {
	case e.keysChanged <- struct{}{}:
	default:
	}
}

// run works while this node leads, until ctx ends.
func (e *reencryptor) run(ctx context.Context) {
	for ctx.Err() == nil {
		changed := e.store.LeaderChanged()
		if !e.store.IsLeader() {
			select {
			case <-changed:
			case <-ctx.Done():
			}
			continue
		}
		lctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { e.lead(lctx) })
		select {
		case <-changed:
		case <-ctx.Done():
		}
		cancel()
		wg.Wait()
	}
}

// lead passes over every encrypted kind, then follows their changes, until ctx ends.
func (e *reencryptor) lead(ctx context.Context) {
	for _, info := range kinds.All() {
		if e.atRest.transforms(info) {
			// One kind is encrypted today; a second would get a loop of its own.
			e.follow(ctx, info)
			return
		}
	}
}

// follow keeps the values of one kind under the primary key.
func (e *reencryptor) follow(ctx context.Context, info *kinds.Info) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		select {
		case <-e.keysChanged: // this pass reads the new keys
		default:
		}
		err := e.pass(ctx, info)
		if err == nil || ctx.Err() != nil {
			backoff = 100 * time.Millisecond
			continue
		}
		e.log.Warn("re-encryption pass failed; retrying", "kind", info.Kind, "error", err, "in", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// pass lists the kind, rewrites what is stale, then watches for more until the keys
// change (nil) or the watch fails.
func (e *reencryptor) pass(ctx context.Context, info *kinds.Info) error {
	objs, rev, err := e.store.List(ctx, info.Kind, store.ListOptions{})
	if err != nil {
		return err
	}
	primary := e.atRest.keys.Load().Primary()
	rewritten, unreadable := 0, 0
	for i := range objs {
		done, err := e.rewrite(ctx, info, &objs[i])
		switch {
		case errors.Is(err, encryption.ErrTransform):
			unreadable++
		case err != nil:
			return err
		case done:
			rewritten++
		}
	}
	e.unreadable(unreadable)
	switch {
	case unreadable > 0:
		e.log.Error("stored values this member cannot read, and so cannot re-encrypt: give it the keys they were written with",
			"kind", info.Kind, "count", unreadable, "primary", primary)
	case rewritten > 0:
		e.log.Info("re-encrypted every stored value with the primary key", "kind", info.Kind, "count", rewritten, "primary", primary)
	}
	w, err := e.store.Watch(store.WatchOptions{Kind: info.Kind, After: rev})
	if err != nil {
		return err
	}
	defer w.Close()
	// The watch ends when the keys change: the next pass reads the new ones.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-e.keysChanged:
			cancel()
		case <-wctx.Done():
		}
	}()
	for {
		evs, err := w.Next(wctx)
		if err != nil {
			if wctx.Err() != nil {
				return nil
			}
			return err
		}
		for i := range evs {
			if evs[i].Type != store.Added && evs[i].Type != store.Modified {
				continue
			}
			if _, err := e.rewrite(ctx, info, &evs[i].Object); err != nil && !errors.Is(err, encryption.ErrTransform) {
				return err
			}
		}
	}
}

// rewrite stores o's value under the primary key, unless it is already, and reports
// whether it did.
func (e *reencryptor) rewrite(ctx context.Context, info *kinds.Info, o *store.Object) (bool, error) {
	keys := e.atRest.keys.Load()
	if keys.Current(o.Value) {
		return false, nil
	}
	plain, err := e.atRest.open(info, o.Key, o.Value)
	if err != nil {
		e.log.Warn("cannot re-encrypt", "object", o.Key.String(), "error", err)
		return false, err
	}
	value, err := keys.Seal(valuePath(info, o.Key), plain)
	if err != nil {
		return false, err
	}
	_, err = e.store.Txn(ctx, store.Op{Type: store.Update, Key: o.Key, Value: value, Labels: o.Labels, Fields: o.Fields,
		IfRevision: o.ModRevision, IfUID: o.UID})
	switch {
	case errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrNotFound):
		return false, nil // changed or gone meanwhile: its new version is the watch's
	case err != nil:
		return false, fmt.Errorf("re-encrypt %s: %w", o.Key, err)
	}
	e.log.Debug("re-encrypted", "object", o.Key.String(), "from", encryption.KeyOf(o.Value), "to", keys.Primary())
	e.done()
	return true, nil
}

package store

import (
	"bytes"
	"slices"
	"sync"
	"time"
)

// A page of a list at a past revision is the current state with the changes since that
// revision undone: each object changed since is read as it was then (its state before
// its first change after the revision, nil when it did not exist). A list's pages come
// one after another, each starting where the last ended, while writes go on; the
// changes a list's pages undo are kept between them (pastLists), extended with the
// events applied since the page before and cut at the page's start, so that a page
// reads the events since the page before and walks the changes after its start in key
// order, instead of reading every event since the list's revision and sorting what
// they changed, page after page.

// pastListIdle is how long a list's undone changes are kept after its last page.
const pastListIdle = time.Minute

// pastListsKept is how many lists' undone changes are kept at most; the least recently
// used goes first.
const pastListsKept = 16

// pastLists are the undone changes of the lists at past revisions under way.
type pastLists struct {
	mu    sync.Mutex
	lists map[pastListKey]*undone
}

type pastListKey struct {
	kind, namespace string
	rev             int64
}

// undone are one list's changes since its revision, as far as its pages have read the
// history; mu is held while a page reads them.
type undone struct {
	mu sync.Mutex
	// to is the revision up to which the history's events are in.
	to int64
	// seen holds every object changed in (rev, to]: only its first change says what it
	// was at rev.
	seen map[Key]struct{}
	// floor is the object key the last page started after: the changes up to it are
	// dropped, and a page from further back reads the history again.
	floor []byte
	// ahead are the changes after floor in key order, each with the object's state at
	// rev.
	ahead []undoneChange
	used  time.Time
}

type undoneChange struct {
	key  []byte // objectKey
	then *Object
}

// take returns, locked, the undone changes of the list of kind (in namespace) at rev for
// a page after the object key after, read by a transaction at revision to; the caller
// unlocks it once the page is read.
func (p *pastLists) take(h *history, kind, namespace string, rev, to int64, after []byte, now time.Time) (*undone, error) {
	k := pastListKey{kind: kind, namespace: namespace, rev: rev}
	p.mu.Lock()
	if p.lists == nil {
		p.lists = map[pastListKey]*undone{}
	}
	u := p.lists[k]
	if u == nil {
		u = &undone{to: rev, seen: map[Key]struct{}{}}
		p.lists[k] = u
	}
	u.used = now // under p.mu: eviction reads it
	p.evict(now, k)
	p.mu.Unlock()

	u.mu.Lock()
	if to < u.to || bytes.Compare(after, u.floor) < 0 {
		// A page from further back than the last (a retried page's own start is not), or
		// read on an older state: the history again from rev.
		u.to, u.seen, u.floor, u.ahead = rev, map[Key]struct{}{}, nil, nil
	}
	var fresh []undoneChange
	err := h.changes(kind, rev, u.to, to, func(key Key, prev *Object) {
		if _, ok := u.seen[key]; ok {
			return
		}
		u.seen[key] = struct{}{}
		if ok := objectKey(key); bytes.Compare(ok, after) > 0 {
			fresh = append(fresh, undoneChange{key: ok, then: prev})
		}
	})
	if err != nil {
		u.mu.Unlock()
		p.mu.Lock()
		if p.lists[k] == u {
			delete(p.lists, k)
		}
		p.mu.Unlock()
		return nil, err
	}
	u.to = max(u.to, to)
	skip, _ := slices.BinarySearchFunc(u.ahead, after, func(c undoneChange, k []byte) int {
		if bytes.Compare(c.key, k) > 0 {
			return 1
		}
		return -1
	})
	u.ahead, u.floor = u.ahead[skip:], after
	if len(fresh) > 0 {
		slices.SortFunc(fresh, func(a, b undoneChange) int { return bytes.Compare(a.key, b.key) })
		merged := make([]undoneChange, 0, len(u.ahead)+len(fresh))
		i, j := 0, 0
		for i < len(u.ahead) && j < len(fresh) {
			if bytes.Compare(u.ahead[i].key, fresh[j].key) < 0 {
				merged, i = append(merged, u.ahead[i]), i+1
			} else {
				merged, j = append(merged, fresh[j]), j+1
			}
		}
		u.ahead = append(append(merged, u.ahead[i:]...), fresh[j:]...)
	}
	return u, nil
}

// evict drops the lists idle for pastListIdle, and the least recently used beyond
// pastListsKept, but not keep. p.mu is held.
func (p *pastLists) evict(now time.Time, keep pastListKey) {
	for k, u := range p.lists {
		if k != keep && now.Sub(u.used) > pastListIdle {
			delete(p.lists, k)
		}
	}
	for len(p.lists) > pastListsKept {
		var oldest pastListKey
		first := true
		for k, u := range p.lists {
			if k != keep && (first || u.used.Before(p.lists[oldest].used)) {
				oldest, first = k, false
			}
		}
		delete(p.lists, oldest)
	}
}

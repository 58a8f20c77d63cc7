package store

import (
	"fmt"
	"os"
	"sync"

	"go.etcd.io/bbolt"
)

// stateDB is one open state file and the reads that use it. Restore and defragment put
// a new file in the current one's place without waiting for those reads: they finish on
// the file they began on, which is closed when the last of them ends.
//
// Waiting for them could be forever. A Raft snapshot reads from Snapshot until Release,
// and between the two hashicorp/raft's snapshot goroutine asks its main goroutine for the
// configuration; a follower's main goroutine installing a snapshot waits meanwhile for
// Restore. When both requests queue behind an apply that waits for disk space, the state
// machine's goroutine can take the snapshot and then restore: the restore waited for the
// snapshot's read (bbolt's Close waits for every read transaction), the snapshot for the
// main goroutine, and that for the restore.
type stateDB struct {
	db *bbolt.DB

	mu      sync.Mutex
	readers int
	retired bool // replaced (or the store closed): closed once readers is 0
	closed  chan struct{}
	err     error // Close's, set before closed is
}

func newStateDB(db *bbolt.DB) *stateDB {
	return &stateDB{db: db, closed: make(chan struct{})}
}

// acquire returns the current state file, which stays open until release.
func (f *fsm) acquire() (*stateDB, error) {
	for {
		s := f.state.Load()
		if s == nil {
			return nil, ErrClosed
		}
		s.mu.Lock()
		if !s.retired {
			s.readers++
			s.mu.Unlock()
			return s, nil
		}
		s.mu.Unlock()
		// Replaced since the load: its successor is current already.
	}
}

func (s *stateDB) release() {
	s.mu.Lock()
	s.readers--
	last := s.retired && s.readers == 0
	s.mu.Unlock()
	if last {
		s.close()
	}
}

// retire closes s once no read uses it: now, or when the last one ends. s must no longer
// be current (acquire does not return a retired file).
func (s *stateDB) retire() {
	s.mu.Lock()
	s.retired = true
	idle := s.readers == 0
	s.mu.Unlock()
	if idle {
		s.close()
	}
}

func (s *stateDB) close() {
	s.err = s.db.Close()
	close(s.closed)
}

// close closes the state file once the reads under way end.
func (f *fsm) close() error {
	s := f.state.Swap(nil)
	if s == nil {
		return nil
	}
	s.retire()
	<-s.closed
	return s.err
}

// db is the current state file, for the holder of applyMu (nothing replaces it meanwhile)
// that writes to it.
func (f *fsm) db() *bbolt.DB { return f.state.Load().db }

// replace moves the state file at tmp into the state file's place, opens it and makes it
// current; reads under way finish on the old one. It returns the new file's revision. The
// caller holds applyMu. On an error the old file stays current (the state is rebuilt on
// the next start anyway).
func (f *fsm) replace(tmp string) (int64, error) {
	if err := os.Rename(tmp, f.path); err != nil {
		os.Remove(tmp)
		return 0, fmt.Errorf("replace %s: %w", f.path, err)
	}
	db, rev, err := f.openDB(f.path)
	if err != nil {
		return 0, err
	}
	if old := f.state.Swap(newStateDB(db)); old != nil {
		old.retire()
	}
	return rev, nil
}

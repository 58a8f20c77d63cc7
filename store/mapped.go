package store

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"golang.org/x/sys/unix"
)

// bbolt reads its file through a shared, read-only memory map. Every page a member
// reads stays mapped into the process and counts in its RSS for as long as the map
// lives, though the object on it is gone and the page free: the previous object of each
// delete and update (read for its watch event), and the objects next to each one written
// (a leaf page of bbolt holds up to four values larger than a page, and a write copies
// its whole leaf to a new one, reading the others through the map). After 300 MiB of
// objects written and deleted, the state file's pages made 420 MiB of a member's RSS;
// after 300 MiB merely written, 304-318 MiB, and the Raft log's file (whose appends copy
// the entries before them the same way) 153 MiB. The store therefore drops its mapping
// of each file's pages (MADV_DONTNEED) once ReleaseMappedBytes have been written to the
// file (or, for the state file, objects replaced or deleted) since it last did, right
// after the write that took it there, so that the files' share of the RSS stays within
// about that much each whatever is written; and once writes stop. On a shared file
// mapping that only unmaps them from the process: the pages stay in the kernel's page
// cache, which reclaims them under memory pressure, and a later read maps them again
// with a minor fault, without I/O.

// releaseMappedAfter is the default of Config.ReleaseMappedBytes.
const releaseMappedAfter = 64 << 20

// mappedPages counts what a file's writes mapped into the process since its mapping was
// last released, and releases it.
type mappedPages struct {
	threshold int64 // Config.ReleaseMappedBytes; 0: never
	release   func() (int64, error)
	touched   atomic.Int64
	// seen is touched as ifQuiet last saw it (the caller's goroutine's own).
	seen int64
}

// add counts n bytes mapped and releases the mapping if that takes the count to the
// threshold. The writer calls it after each write, in a state where the file cannot be
// remapped.
func (m *mappedPages) add(n int64) (int64, error) {
	if m.touched.Add(n) < m.threshold || m.threshold <= 0 {
		return 0, nil
	}
	return m.releaseNow()
}

// ifQuiet releases the mapping if something was mapped since it was last released and
// nothing since the previous call (the writes are over: what they read is given back
// too). The store calls it once a second. It returns the bytes of the mapping it
// released (0 if it did nothing).
func (m *mappedPages) ifQuiet() (int64, error) {
	touched := m.touched.Load()
	quiet := touched > 0 && touched == m.seen
	m.seen = touched
	if m.threshold <= 0 || !quiet {
		return 0, nil
	}
	return m.releaseNow()
}

func (m *mappedPages) releaseNow() (int64, error) {
	m.touched.Add(-m.touched.Load())
	return m.release()
}

// releaseMapped drops the process's mapping of the state file's pages and returns the
// length of the mapping.
func (f *fsm) releaseMapped() (int64, error) {
	s, err := f.acquire()
	if err != nil {
		return 0, err
	}
	defer s.release()
	// A read transaction holds bbolt's mmap lock shared: the file cannot be remapped
	// (which needs it exclusive) while the map is advised, so the range is the map's.
	tx, err := s.db.Begin(false)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	start := s.db.Info().Data
	var length int
	if err := eachMapping(func(lo, hi uintptr, _ []string) bool {
		if lo == start {
			length = int(hi - lo)
		}
		return length == 0
	}); err != nil {
		return 0, err
	}
	if length == 0 {
		return 0, fmt.Errorf("no mapping at %#x in /proc/self/maps", start)
	}
	return int64(length), dropMapped(start, length)
}

// logFile is the Raft log's file (raft-boltdb, the log and the stable store), whose
// mapped pages are released as the state file's are. raft-boltdb does not give its
// bbolt handle out, so logFile finds the map in /proc/self/maps by the file's device
// and inode, and keeps it from moving while it releases it by holding every write off
// (only a write can grow the file and so remap it).
type logFile struct {
	*raftboltdb.BoltStore
	dev, ino uint64
	log      hclog.Logger
	// remap is held shared by every write and exclusively by a release.
	remap  sync.RWMutex
	mapped mappedPages
	// written is the bytes of pages the file's writes had written when mapped last
	// counted them.
	written atomic.Int64
}

var (
	_ raft.LogStore    = (*logFile)(nil)
	_ raft.StableStore = (*logFile)(nil)
)

func newLogFile(store *raftboltdb.BoltStore, path string, releaseAfter int64, log hclog.Logger) (*logFile, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	l := &logFile{BoltStore: store, dev: st.Dev, ino: st.Ino, log: log}
	l.mapped = mappedPages{threshold: releaseAfter, release: l.release}
	l.written.Store(l.pagesWritten())
	return l, nil
}

// write runs fn, a write to the file, and counts the pages it wrote (copied from those
// they replace, read through the map).
func (l *logFile) write(fn func() error) error {
	l.remap.RLock()
	err := fn()
	n := l.pagesWritten()
	n -= l.written.Swap(n) // concurrent writers may swap out of order: the sum holds
	l.remap.RUnlock()
	if _, rerr := l.mapped.add(n); rerr != nil {
		l.log.Warn("cannot release the raft log's mapped pages", "error", rerr)
	}
	return err
}

func (l *logFile) pagesWritten() int64 {
	st := l.BoltStore.Stats()
	return st.TxStats.GetPageAlloc()
}

func (l *logFile) StoreLog(log *raft.Log) error { return l.StoreLogs([]*raft.Log{log}) }

func (l *logFile) StoreLogs(logs []*raft.Log) error {
	return l.write(func() error { return l.BoltStore.StoreLogs(logs) })
}

func (l *logFile) DeleteRange(min, max uint64) error {
	return l.write(func() error { return l.BoltStore.DeleteRange(min, max) })
}

func (l *logFile) Set(k, v []byte) error {
	return l.write(func() error { return l.BoltStore.Set(k, v) })
}

func (l *logFile) SetUint64(k []byte, v uint64) error {
	return l.write(func() error { return l.BoltStore.SetUint64(k, v) })
}

func (l *logFile) Close() error {
	l.remap.Lock()
	defer l.remap.Unlock()
	return l.BoltStore.Close()
}

// release drops the process's mapping of the file's pages, with every write held off.
func (l *logFile) release() (int64, error) {
	l.remap.Lock()
	defer l.remap.Unlock()
	var start uintptr
	var length int
	if err := eachMapping(func(lo, hi uintptr, f []string) bool {
		if len(f) < 5 {
			return true
		}
		major, minor, ok := strings.Cut(f[3], ":")
		maj, err1 := strconv.ParseUint(major, 16, 32)
		min, err2 := strconv.ParseUint(minor, 16, 32)
		ino, err3 := strconv.ParseUint(f[4], 10, 64)
		if ok && err1 == nil && err2 == nil && err3 == nil && ino == l.ino && unix.Mkdev(uint32(maj), uint32(min)) == l.dev {
			start, length = lo, int(hi-lo)
			return false
		}
		return true
	}); err != nil || length == 0 {
		return 0, err // not mapped (closed): nothing to release
	}
	return int64(length), dropMapped(start, length)
}

// dropMapped drops the process's pages of the file mapping at start.
func dropMapped(start uintptr, length int) error {
	// The raw call: bbolt gives the map's address as a uintptr, which is not memory of
	// Go's to make a slice of.
	if _, _, errno := unix.Syscall(unix.SYS_MADVISE, start, uintptr(length), unix.MADV_DONTNEED); errno != 0 {
		return fmt.Errorf("release mapped pages at %#x: %w", start, errno)
	}
	return nil
}

// eachMapping calls fn with each of the process's memory mappings (from /proc/self/maps:
// its range and the line's fields) until fn returns false.
func eachMapping(fn func(lo, hi uintptr, fields []string) bool) error {
	m, err := os.Open("/proc/self/maps")
	if err != nil {
		return err
	}
	defer m.Close()
	sc := bufio.NewScanner(m)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		l, err1 := strconv.ParseUint(lo, 16, 64)
		h, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 == nil && err2 == nil && h > l && !fn(uintptr(l), uintptr(h), fields) {
			return nil
		}
	}
	return sc.Err()
}

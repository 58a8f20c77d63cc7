package store

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// bbolt reads its file through a shared, read-only memory map. Every page a member
// reads — the previous object of each delete and update, for its watch event — stays
// mapped into the process and counts in its RSS for as long as the map lives, though
// the object is gone and the page free: after 300 MiB of objects written and deleted,
// the state file's pages made 420 MiB of a member's RSS. The store therefore drops its
// mapping of those pages (MADV_DONTNEED) once ReleaseMappedBytes of objects have been
// deleted or replaced since it last did, and once deletes stop. On a shared file mapping that only unmaps them
// from the process: the pages stay in the kernel's page cache, which reclaims them under
// memory pressure, and a later read maps them again with a minor fault, without I/O.

// releaseMappedAfter is the default of Config.ReleaseMappedBytes.
const releaseMappedAfter = 64 << 20

// releaseMapped drops the process's mapping of the state file's pages if at least
// threshold bytes of objects were deleted or replaced since it last did, or if some
// were and none since its previous call (the deletes are over: what they read is given
// back too). The store calls it once a second. It returns the bytes it unmapped (0 if
// it did nothing).
func (f *fsm) releaseMapped(threshold int64) (int64, error) {
	freed := f.freed.Load()
	quiet := freed > 0 && freed == f.freedSeen
	f.freedSeen = freed
	if threshold <= 0 || (freed < threshold && !quiet) {
		return 0, nil
	}
	f.freed.Add(-freed)
	f.freedSeen = 0
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
	length, err := mappingLength(start)
	if err != nil {
		return 0, err
	}
	// The raw call: bbolt gives the map's address as a uintptr, which is not memory of
	// Go's to make a slice of.
	if _, _, errno := unix.Syscall(unix.SYS_MADVISE, start, uintptr(length), unix.MADV_DONTNEED); errno != 0 {
		return 0, fmt.Errorf("release the state file's mapped pages: %w", errno)
	}
	return int64(length), nil
}

// mappingLength returns the length of the process's memory mapping that starts at addr,
// from /proc/self/maps.
func mappingLength(addr uintptr) (int, error) {
	m, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0, err
	}
	defer m.Close()
	sc := bufio.NewScanner(m)
	for sc.Scan() {
		rng, _, _ := strings.Cut(sc.Text(), " ")
		lo, hi, ok := strings.Cut(rng, "-")
		if !ok {
			continue
		}
		l, err1 := strconv.ParseUint(lo, 16, 64)
		h, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 == nil && err2 == nil && uintptr(l) == addr && h > l {
			return int(h - l), nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no mapping at %#x in /proc/self/maps", addr)
}

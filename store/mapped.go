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
// reads stays mapped into the process and counts in its RSS for as long as the map
// lives, though the object on it is gone and the page free: the previous object of each
// delete and update (read for its watch event), and the objects next to each one written
// (a leaf page of bbolt holds up to four objects larger than a page, and a write copies
// its whole leaf to a new one, reading the others through the map). After 300 MiB of
// objects written and deleted, the state file's pages made 420 MiB of a member's RSS;
// after 300 MiB merely written, 318 MiB. The store therefore drops its mapping of those
// pages (MADV_DONTNEED) once ReleaseMappedBytes of objects have been written, replaced or
// deleted since it last did (right after the batch that took it there, so that writes
// alone keep the state file's share of the RSS within a few times that), and once writes
// stop. On a shared file mapping that only unmaps them from the process: the pages stay
// in the kernel's page cache, which reclaims them under memory pressure, and a later read
// maps them again with a minor fault, without I/O.

// releaseMappedAfter is the default of Config.ReleaseMappedBytes.
const releaseMappedAfter = 64 << 20

// releaseIfOver releases the mapping if at least releaseAfter bytes of objects were
// written, replaced or deleted since it was last released. The apply calls it after each
// batch, with applyMu held.
func (f *fsm) releaseIfOver() {
	if f.releaseAfter <= 0 || f.touched.Load() < f.releaseAfter {
		return
	}
	if n, err := f.releaseMapped(); err != nil {
		f.log.Warn("cannot release the state file's mapped pages", "error", err)
	} else {
		f.log.Debug("released the state file's mapped pages", "mapping_bytes", n)
	}
}

// releaseIfQuiet releases the mapping if objects were written since it was last
// released and none since the previous call (the writes are over: what they read is
// given back too). The store calls it once a second. It returns the bytes it unmapped
// (0 if it did nothing).
func (f *fsm) releaseIfQuiet() (int64, error) {
	touched := f.touched.Load()
	quiet := touched > 0 && touched == f.touchedSeen
	f.touchedSeen = touched
	if f.releaseAfter <= 0 || !quiet {
		return 0, nil
	}
	return f.releaseMapped()
}

// releaseMapped drops the process's mapping of the state file's pages and returns the
// length of the mapping.
func (f *fsm) releaseMapped() (int64, error) {
	f.touched.Add(-f.touched.Load())
	f.mu.RLock()
	defer f.mu.RUnlock()
	// A read transaction holds bbolt's mmap lock shared: the file cannot be remapped
	// (which needs it exclusive) while the map is advised, so the range is the map's.
	tx, err := f.db.Begin(false)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	start := f.db.Info().Data
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

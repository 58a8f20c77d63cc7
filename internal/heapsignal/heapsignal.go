// Package heapsignal writes a process's heap profile when the process is sent SIGUSR2,
// to the file SKIFF_HEAP_PROFILE names. It is for measuring what a running component
// holds (the scale benchmarks signal each of their `skiff` processes once the pods are
// Running); without the variable nothing is installed and SIGUSR2 keeps Go's default.
package heapsignal

import (
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"sync"
	"syscall"
)

// Env names the file the heap profile is written to (go tool pprof
// -sample_index=inuse_space BINARY FILE). It is the variable the in-process benchmarks
// read too (test/bench.WriteHeapProfile).
const Env = "SKIFF_HEAP_PROFILE"

// Start writes the heap profile to path, after a collection, each time the process
// is sent SIGUSR2, until stop is called; an empty path installs nothing. The profile
// is written beside path and renamed to it, so a reader that finds the file finds it
// whole. Errors go to logf: a profile that cannot be written must not stop the process.
func Start(path string, logf func(format string, args ...any)) (stop func()) {
	if path == "" {
		return func() {}
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR2)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			case <-sig:
				if err := write(path); err != nil {
					logf("heap profile: %v", err)
				}
			}
		}
	}()
	return func() {
		signal.Stop(sig)
		close(done)
		wg.Wait()
	}
}

func write(path string) error {
	runtime.GC()
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	return os.Rename(tmp, path)
}

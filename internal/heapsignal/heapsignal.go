// Package heapsignal writes a process's heap profile when the process is sent SIGUSR2,
// to the file SKIFF_HEAP_PROFILE names, and every goroutine's stack beside it
// (FILE.goroutines). It is for measuring what a running component holds (the scale
// benchmarks signal each of their `skiff` processes once the pods are Running), and for
// seeing what a running component waits on without ending it, as SIGQUIT would. SIGUSR1
// sent twice takes a CPU profile of the time between (FILE.cpu): where a component's
// CPU goes in a run of separate processes. Without the variable nothing is installed and
// SIGUSR1 and SIGUSR2 keep Go's defaults.
package heapsignal

import (
	"fmt"
	"io"
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

// Start writes the heap profile to path, after a collection, and the goroutines'
// stacks to path.goroutines (GoroutinesSuffix), each time the process is sent SIGUSR2,
// until stop is called; an empty path installs nothing. Each file is written beside its
// name and renamed to it, the heap profile last, so a reader that finds the profile
// finds both whole. SIGUSR1 starts a CPU profile, and the next SIGUSR1 ends it and
// writes it to path.cpu (CPUSuffix): the process's own Go stacks over a window the
// sender chooses (a system-wide perf recording loses them below a stack's growth and in
// inlined code). Errors go to logf: a profile that cannot be written must not stop the
// process.
func Start(path string, logf func(format string, args ...any)) (stop func()) {
	if path == "" {
		return func() {}
	}
	sig := make(chan os.Signal, 2) // a CPU profile's end and a heap profile's request
	signal.Notify(sig, syscall.SIGUSR2, syscall.SIGUSR1)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var cpu *cpuProfile
		defer func() {
			if cpu != nil {
				if err := cpu.end(); err != nil {
					logf("CPU profile: %v", err)
				}
			}
		}()
		for {
			select {
			case <-done:
				return
			case s := <-sig:
				var err error
				switch {
				case s == syscall.SIGUSR2:
					if err = write(path); err != nil {
						logf("heap profile: %v", err)
					}
				case cpu == nil:
					if cpu, err = startCPU(path + CPUSuffix); err != nil {
						logf("CPU profile: %v", err)
					}
				default:
					err, cpu = cpu.end(), nil
					if err != nil {
						logf("CPU profile: %v", err)
					}
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

// CPUSuffix is appended to the heap profile's name for the CPU profile SIGUSR1 takes.
const CPUSuffix = ".cpu"

// cpuProfile is a CPU profile being taken, into a temporary file beside path.
type cpuProfile struct {
	path string
	f    *os.File
}

func startCPU(path string) (*cpuProfile, error) {
	f, err := os.Create(path + ".tmp")
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("start: %w", err)
	}
	return &cpuProfile{path: path, f: f}, nil
}

// end stops the profile and renames it to its path, whole.
func (p *cpuProfile) end() error {
	pprof.StopCPUProfile()
	if err := p.f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", p.f.Name(), err)
	}
	return os.Rename(p.f.Name(), p.path)
}

// GoroutinesSuffix is appended to the heap profile's name for the goroutines' stacks
// (pprof's goroutine profile at debug level 2: as a crash prints them, with how long
// each has waited; pprof writes at most 64 MiB of them, about 60,000 goroutines).
const GoroutinesSuffix = ".goroutines"

func write(path string) error {
	if err := writeFile(path+GoroutinesSuffix, func(f io.Writer) error {
		return pprof.Lookup("goroutine").WriteTo(f, 2)
	}); err != nil {
		return err
	}
	runtime.GC()
	return writeFile(path, pprof.WriteHeapProfile)
}

// writeFile writes path through a temporary file renamed to it.
func writeFile(path string, fill func(io.Writer) error) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err := fill(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	return os.Rename(tmp, path)
}

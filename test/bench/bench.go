// Package bench prints benchmark figures in the form INTERFACE.md defines,
// `BENCH <name> <value> <unit>`, and selects benchmarks by the names of the figures they
// print: `make bench BENCH=store_create` sets SKIFF_BENCH, and every benchmark whose
// figures all fail to match it skips before it starts a cluster.
package bench

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Env is the environment variable holding the figure-name regexp.
const Env = "SKIFF_BENCH"

var (
	once    sync.Once
	pattern *regexp.Regexp
	badExpr error
)

func selected() (*regexp.Regexp, error) {
	once.Do(func() {
		if expr := os.Getenv(Env); expr != "" {
			pattern, badExpr = regexp.Compile(expr)
		}
	})
	return pattern, badExpr
}

// Want skips b unless one of figures matches SKIFF_BENCH (or it is unset). Call it first.
func Want(b testing.TB, figures ...string) {
	b.Helper()
	re, err := selected()
	if err != nil {
		b.Fatalf("%s: %v", Env, err)
	}
	if re == nil {
		return
	}
	for _, f := range figures {
		if re.MatchString(f) {
			return
		}
	}
	b.Skipf("no figure of %v matches %s=%q", figures, Env, re)
}

// Report prints one figure.
func Report(name string, value float64, unit string) {
	fmt.Printf("BENCH %s %.6g %s\n", name, value, unit)
}

// StartCPU starts counting the CPU time (user and system) of this process, which in a
// benchmark holds everything measured; the function it returns reads the time so far.
// CPU time says what a figure costs even when other work shares the machine.
func StartCPU() func() time.Duration {
	start := cpuTime()
	return func() time.Duration { return cpuTime() - start }
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// LoadAverage is the machine's load averages over 1, 5 and 15 minutes, as uptime prints
// them: a figure timed on a machine other work shares is quoted with it.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}

// Percentile returns the p-th (0..1) percentile of d in milliseconds; it sorts d.
func Percentile(d []time.Duration, p float64) float64 {
	if len(d) == 0 {
		return 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return float64(d[int(float64(len(d)-1)*p)].Microseconds()) / 1000
}

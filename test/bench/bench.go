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
	"strconv"
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

// ProcessCPU is the CPU time (user and system) process pid has used so far, read from
// /proc/PID/stat (its utime and stime, in the kernel's clock ticks of 1/100 s); 0 if the
// process is gone or the file cannot be read.
func ProcessCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command's name, in parentheses, may hold spaces: count fields after it.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 { // utime and stime are the 14th and 15th fields, the 12th and 13th after the name
		return 0
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(utime+stime) * (time.Second / clockTicks)
}

// clockTicks is the kernel's USER_HZ, the unit of /proc/PID/stat's times: 100 on every
// Linux architecture Go supports.
const clockTicks = 100

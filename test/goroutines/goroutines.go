// Package goroutines counts a test process's goroutines by the code they run, for tests
// of what a component keeps running: other tests' goroutines, still winding down, and
// the runtime's do not count.
package goroutines

import (
	"runtime"
	"strings"
)

// Running counts the goroutines with a frame of their own (not only the "created by"
// line) containing code, such as "kubelet.(*prober)." or "workqueue.Serve".
func Running(code string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			count := 0
			for _, g := range strings.Split(string(buf[:n]), "\n\n") {
				if strings.Contains(strings.Split(g, "\ncreated by ")[0], code) {
					count++
				}
			}
			return count
		}
		buf = make([]byte, 2*len(buf))
	}
}

// Within reports whether the calling goroutine has a frame containing code, such as
// "workers.(*Pool).loop": whether it runs inside that code.
func Within(code string) bool {
	buf := make([]byte, 64<<10)
	buf = buf[:runtime.Stack(buf, false)]
	return strings.Contains(strings.Split(string(buf), "\ncreated by ")[0], code)
}

//go:build failpoints

package failpoint

import (
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

// Enabled says whether this build has failpoints: it does, with the failpoints tag.
const Enabled = true

var armed = sync.OnceValue(func() map[string]action {
	spec := os.Getenv(EnvVar)
	points, err := parse(spec)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s=%q: %v\n", EnvVar, spec, err)
		os.Exit(2)
	}
	if len(points) > 0 {
		names := make([]string, 0, len(points))
		for name := range points {
			names = append(names, name)
		}
		sort.Strings(names)
		fmt.Fprintf(os.Stderr, "failpoints armed: %s\n", strings.Join(names, ", "))
	}
	return points
})

// Inject acts as SKIFF_FAILPOINTS says for the point name, if it names it.
func Inject(name string) {
	a, ok := armed()[name]
	if !ok || (a.prob < 1 && rand.Float64() >= a.prob) {
		return
	}
	switch a.kind {
	case "crash":
		fmt.Fprintf(os.Stderr, "failpoint %s: crash (exit %d)\n", name, ExitCode)
		os.Exit(ExitCode)
	case "panic":
		panic("failpoint " + name)
	case "delay":
		time.Sleep(a.delay)
	}
}

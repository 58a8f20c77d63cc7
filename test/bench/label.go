package bench

import (
	"context"
	"runtime/pprof"
)

// ComponentLabel is the profile label under which Label runs a component's work: a
// benchmark runs the whole chain in one process, and `go tool pprof -tags` (or
// -tagfocus component=kubelet) splits its CPU profile by component as it would be by
// process.
const ComponentLabel = "component"

// Label runs fn with the profile label component=name: the goroutines fn starts, and
// theirs, carry it (a goroutine inherits its creator's labels), so a component started
// and dialled inside fn is labelled throughout.
func Label(name string, fn func()) {
	pprof.Do(context.Background(), pprof.Labels(ComponentLabel, name), func(context.Context) { fn() })
}

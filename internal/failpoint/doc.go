// Package failpoint injects faults at named points of the product, for the Jepsen suite:
// a crash (the process exits at once, as a power cut would stop it, without deferred
// functions or flushes) or a delay (a slow disk) at, say, the store's commit.
//
// It is compiled in only with the build tag failpoints (the Jepsen suite builds its
// server so); without it Inject is an empty function the compiler removes and nothing
// reads the environment. With it, the points are armed by the environment variable
// SKIFF_FAILPOINTS, read once, a comma-separated list of NAME=ACTION[@PROBABILITY]:
//
//	SKIFF_FAILPOINTS="store/afterCommit=crash@0.01,store/logStore=delay(100ms)@0.5"
//
// Actions: crash (exit with ExitCode, after a line on stderr naming the point), panic,
// and delay(DURATION) (sleep, then go on). PROBABILITY (0..1, default 1) is the chance
// that one pass through the point acts. A malformed variable stops the process at its
// first point: a fault test must not pass because of a typo.
//
// The store's points (store/failpoints.go says where each one sits): store/beforeApply,
// store/applyCommit, store/afterCommit, store/logStore, store/beforeSnapshotPersist,
// store/afterSnapshotPersist, store/beforeRestore, store/afterRestore,
// store/beforeCompaction, store/afterCompaction.
package failpoint

// EnvVar arms failpoints in a process built with the failpoints tag.
const EnvVar = "SKIFF_FAILPOINTS"

// ExitCode is the exit status of a crash a failpoint made, so that a harness tells it
// from a real one.
const ExitCode = 86

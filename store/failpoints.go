package store

// The store's failpoints (package failpoint; active only in a build with the failpoints
// tag, armed by SKIFF_FAILPOINTS). Each sits where a crash or a slow disk tests one of
// the store's promises: an acknowledged write survives, and a member restarted on what
// it left on disk rejoins with the cluster's history.
const (
	// fpBeforeApply: committed entries reached the state machine; nothing applied yet.
	fpBeforeApply = "store/beforeApply"
	// fpApplyCommit: a batch's bbolt transaction is about to commit (a delay here is a
	// slow state file).
	fpApplyCommit = "store/applyCommit"
	// fpAfterCommit: the batch is in the state file; its events are not yet published
	// and its writers not yet answered.
	fpAfterCommit = "store/afterCommit"
	// fpLogStore: entries are about to be appended to the Raft log and fsynced (a delay
	// here is a slow fsync; the leader's appends and every follower's acknowledgements
	// wait on it).
	fpLogStore = "store/logStore"
	// fpBeforeSnapshotPersist, fpAfterSnapshotPersist: a snapshot is about to be
	// written, or is complete and the log not yet compacted behind it.
	fpBeforeSnapshotPersist = "store/beforeSnapshotPersist"
	fpAfterSnapshotPersist  = "store/afterSnapshotPersist"
	// fpBeforeRestore, fpAfterRestore: a snapshot (from the leader, or the latest on disk
	// at start) is about to replace the state, or has replaced the state file, the
	// revision and the watch history not yet moved to it.
	fpBeforeRestore = "store/beforeRestore"
	fpAfterRestore  = "store/afterRestore"
	// fpBeforeCompaction, fpAfterCompaction: log entries a snapshot covers are about to
	// be deleted, or have been.
	fpBeforeCompaction = "store/beforeCompaction"
	fpAfterCompaction  = "store/afterCompaction"
)

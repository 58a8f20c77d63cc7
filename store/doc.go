// Package store is Skiff's replicated object store: what the API server embeds instead of
// etcd.
//
// # Model
//
// Objects are addressed by (kind, namespace, name) and hold opaque values (protobuf
// bytes) plus the attributes the store filters on: labels, and indexed fields such as a
// pod's spec.nodeName. Writes are transactions of create, update and delete operations
// with preconditions (absent, resourceVersion, uid), all committed together or not at
// all. Every transaction is one Raft log entry and its revision is that entry's index, so
// revisions are identical on every node and strictly increasing; an object's
// ModRevision is its resourceVersion.
//
// # Replication
//
// hashicorp/raft replicates the log (raft-boltdb for the log and stable store, a file
// snapshot store, a TCP transport). Raft's leader groups concurrent writes into one disk
// write and one replication round (up to MaxAppendEntries), and the state machine applies
// committed entries in batches, one bbolt transaction per batch. Preconditions are checked
// inside apply, so of two racing writers exactly one wins, on every node alike.
//
// The state machine's bbolt file is rebuilt on each start from the latest snapshot and
// the log after it, so it is written without fsync: durability comes from the Raft log. A
// write is acknowledged only once it is committed and applied.
//
// # Reads
//
// Get and List are linearizable by default, on any node, by the read index protocol:
// the leader, once an entry of its own term (a leader mark) is applied, takes its commit
// index, confirms with a heartbeat round that it still leads, and the reading node waits
// until it has applied that index. Concurrent reads share rounds. A Stale read skips all
// this and reads the local state.
//
// # The peer port
//
// Raft and the store's own peer service share one port, told apart by the first byte of
// each connection. Followers use the peer service to forward writes and membership
// changes to the leader and to ask it for read indexes, so any node accepts any call.
//
// Each connection then starts with a hello from both sides: cluster ID, member name and
// incarnation (identity.go). A member of another cluster, or an incarnation the cluster
// removed, is refused; so are a join of another cluster's member and the install of
// another cluster's snapshot.
//
// # Disk
//
// The state file is bounded by a quota (Config.QuotaBytes): past it creates and updates
// are refused and the NOSPACE alarm is raised in the replicated state, under which every
// member applies only deletes until it is disarmed. Defragment compacts a member's state
// file into a new one, online (quota.go).
//
// # Watches
//
// Each node keeps an in-memory window of recent events, bounded by count (HistorySize),
// by the bytes of the objects it holds (HistoryBytes) and by age (HistoryTTL), the oldest
// going first. Apply appends to it and wakes watchers without ever waiting for them;
// each watcher reads at its own pace, at most MaxBatchBytes of objects at a time.
// A watch may start after any revision still in the window and receives exactly the
// events after it, whole revisions at a time, in the same order and with the same
// revisions on every node. Older starting points get a CompactedError naming the oldest
// possible one; a watcher more than MaxWatchLag events behind is cut with a TooSlowError
// and may resume from its last revision. A snapshot restore under a watch ends it with
// ErrCompacted.
//
// # Memory
//
// What a node holds in memory beyond the live objects' index is bounded by bytes and age,
// not only by count, so writes cannot make it hold several times what they wrote and
// deletes give everything back once idle: the watch history (above) and the newest Raft
// log entries kept for replication (LogCacheEntries, LogCacheBytes, LogCacheTTL). The
// objects themselves live in bbolt's file, which the kernel pages in and out.
//
// # Backup and restore
//
// Backup streams a consistent copy of the state file. RestoreDir seeds an empty data
// directory from one: it writes a Raft snapshot of that state, moved RevisionBump
// revisions ahead, whose configuration is the new cluster's, so the node starts with
// existing state and never bootstraps. Objects keep their revisions; the history starts
// at the bumped revision, so a watch from before the restore gets a CompactedError.
//
// Scheduled snapshots (Config.Backups, backup.go): the leader writes the state with a
// trailer (cluster, revision, version, SHA-256) into a directory on a schedule and keeps
// the newest few; VerifySnapshot checks a file's trailer against it.
//
// # What it does not do
//
// It does not interpret values, enforce schemas or generate uids: the API server does.
// Follower writes whose link to the leader breaks return ErrIndeterminate: the caller
// must read to learn the outcome, never retry blindly.
package store

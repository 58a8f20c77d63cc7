// Package jepsen is Skiff's failover suite, in the manner of Jepsen and etcd's robustness
// tests: it runs real `skiff apiserver` processes, each on its own loopback address
// (127.0.0.11, .12, ...), drives concurrent workloads against them while a nemesis
// injects faults (kill -9, SIGSTOP, partitions, restarts, membership changes: a fresh
// member added, or a member replaced by itself with its data directory wiped; crashes at
// the store's failpoints, a slow or a full disk),
// and checks the recorded histories afterwards:
//
//   - register: read / write / compare-and-swap on ConfigMaps, through every node, is
//     linearizable (porcupine, per key; an HTML visualisation is written on failure);
//   - set: every acknowledged create is present at the end, nothing appears twice;
//   - watch (etcd's robustness guarantees, watch_test.go): watches are ordered, unique,
//     atomic (a revision's events in one batch) and reliable (no gap from the start);
//     resumable (on another node from the last revision seen or a bookmark's, and, at the
//     end, from random revisions on every member: exactly the history's events after
//     it); bookmarkable (half the watchers ask for bookmarks, sent after 100ms idle: a
//     bookmark comes only when asked for, never behind a delivered event and never ahead
//     of one, so none at or before it arrives after it and a resume from it loses
//     nothing); every member serves the same event sequence, holding every
//     acknowledged write at its revision;
//   - availability: the longest window without a successful write after each fault.
//
// TestTornRaftLog (torn_test.go) kills the leader under writes and tears the last page of
// data of its Raft log (cut in half, or inverted): restarted, the member refuses with the
// advice to remove, wipe and re-add it (which the test follows) or recovers by itself,
// never crashes; writes go on throughout and no acknowledged one is lost.
//
// The upgrade nemesis is a planned change rather than a fault: its cluster starts at the
// previous release (previous_test.go names the commit; built once into
// ~/.cache/skiff/previous/, which every checkout shares) and it replaces the members one
// by one with this build, as docs/operations.md "Upgrades" says. Besides the checkers above, the failover client's writes must not
// fail outside a leader-change window (a poller records every change of leader) and no
// watch may lose events to a compaction.
//
// Everything lives in the tests; this file only names the package. `go test` runs each
// nemesis briefly; `make jepsen` (-jepsen.long) runs each for JEPSEN_TIME and writes a
// report per run under test/jepsen/out/, with the members' logs when it found an anomaly.
// When the cluster does not recover after the last heal, every member first writes its
// goroutines' stacks into its log (SIGQUIT): what a stuck member waits on.
//
// Raft timing: every server gets --raft-heartbeat-timeout=300ms
// --raft-election-timeout=300ms --raft-leader-lease-timeout=150ms (flag -jepsen.raft to
// change). On a LAN (or loopback) a round trip is well under a millisecond, so a follower
// can give up on a silent leader after 300-600ms without false elections; with it a
// leader kill -9 costs about 0.6-1.2s of write unavailability, under the 2s target. The
// defaults (500ms) cost about half a second more.
//
// Partitions are made one of two ways (-jepsen.net, JEPSEN_NET for make jepsen):
//
//   - iptables (root): each server runs with its own group id, and iptables drops what a
//     group sends to another node's address, in a chain of the run's own;
//   - proxy (anyone): a fault-injecting TCP proxy in front of every node's peer port (the
//     node listens on one port and advertises the proxy's with --raft-advertise). Members
//     dial peers from their own listen address, so the proxy knows who dials; a cut link
//     black-holes its bytes, as DROP does, and a heal closes the connections that lost
//     some. All peer traffic (Raft, forwarded writes, read index) passes through it; the
//     clients' API connections do not, as Jepsen's control node keeps reaching every node.
//
// By default (auto) iptables is used as root and the proxy otherwise; a short run as root
// (make test) runs each partition nemesis both ways.
//
// Disk faults (disk_test.go). The suite builds its server with the failpoints tag
// (package internal/failpoint; the product build has none), and runs these nemeses with
// small --trailing-log-bytes and --snapshot-log-bytes, so that snapshots and log
// compactions happen every second or so:
//
//   - failpoint-crash: a member is restarted with SKIFF_FAILPOINTS arming crashes at one
//     of the store's points (before apply, after the state file's commit, before the
//     Raft log's append, around snapshot persist, snapshot install and log compaction),
//     and restarted, armed again, each time one crashes it (exit 86, which is no
//     anomaly), until the heal restarts it unarmed;
//   - slow-fsync: a member restarted with half its Raft log appends (each one fsync)
//     delayed by 100ms and half its state file's commits by 20ms, and made the leader
//     half the time;
//   - disk-full (root): a member's data directory moved onto a 64 MiB tmpfs of the run's
//     own (it stays there for the run; unmounted at the end), then filled with a file up
//     to 64 KiB, so that its own writes hit ENOSPC; made the leader half the time. It
//     must refuse what it cannot write and hand leadership over, the others go on, and
//     once the heal deletes the file it catches up.
//
// Every checker runs as for the other nemeses: no acknowledged write may be lost. In the
// default `go test` run (make test) the three run as one, "disk", a fault of each in
// turn on one cluster, so that they cost one short run; -jepsen.long and JEPSEN_NEMESES
// run each on its own.
package jepsen

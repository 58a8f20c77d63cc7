// Package jepsen is Skiff's failover suite, in the manner of Jepsen and etcd's robustness
// tests: it runs real `skiff apiserver` processes, each on its own loopback address
// (127.0.0.11, .12, ...), drives concurrent workloads against them while a nemesis
// injects faults (kill -9, SIGSTOP, partitions, restarts, membership changes),
// and checks the recorded histories afterwards:
//
//   - register: read / write / compare-and-swap on ConfigMaps, through every node, is
//     linearizable (porcupine, per key; an HTML visualisation is written on failure);
//   - set: every acknowledged create is present at the end, nothing appears twice;
//   - watch: watches are ordered, unique, complete, atomic and resumable on another node,
//     and every node serves the same event history;
//   - availability: the longest window without a successful write after each fault.
//
// The upgrade nemesis is a planned change rather than a fault: its cluster starts at the
// previous release (previous_test.go names the commit; built once into bin/previous/)
// and it replaces the members one by one with this build, as docs/operations.md
// "Upgrades" says. Besides the checkers above, the failover client's writes must not
// fail outside a leader-change window (a poller records every change of leader) and no
// watch may lose events to a compaction.
//
// Everything lives in the tests; this file only names the package. `go test` runs each
// nemesis briefly; `make jepsen` (-jepsen.long) runs each for JEPSEN_TIME and writes a
// report per run under test/jepsen/out/.
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
package jepsen

package store

import (
	"crypto/tls"
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	utilversion "k8s.io/apimachinery/pkg/util/version"

	"github.com/skiffhq/skiff/version"
)

// Server is one member of the initial cluster.
type Server struct {
	ID      string
	Address string // Raft (peer) address, host:port
}

// Config configures one store node. Start from DefaultConfig.
type Config struct {
	// ID names this node; it must be unique in the cluster and stable across restarts.
	ID string
	// Dir holds the Raft log (raft.db), snapshots and the state file (state.db).
	Dir string
	// Listen is the peer address to listen on (Raft and the store's peer service share it).
	Listen string
	// Advertise is the peer address others dial; defaults to Listen.
	Advertise string
	// Listener, when set, is used as the peer listener instead of listening on Listen
	// (embedding, and tests that need their addresses before starting any node).
	Listener net.Listener
	// InitialCluster is bootstrapped once, the first time a node starts with an empty Dir
	// and a non-empty list. It must include this node. Restarts never re-bootstrap. A node
	// meant to join an existing cluster starts with an empty list and is added by AddVoter.
	InitialCluster []Server

	// Raft timing, hashicorp/raft's defaults (etcd's election timeout is 1 s too): a
	// follower starts an election after 1-2 s without hearing from the leader, so a lost
	// leader is replaced in two to three seconds, and a leader that has not heard from a
	// quorum for 500 ms steps down. Half of that (500 ms, 250 ms) was too little for a
	// machine whose cores are all busy: at 150,000 pods on two cores the members' answers
	// came late by that much, and the leader stepped down and the followers stood for
	// election dozens of times in one run, each time stalling every write (issue 26).
	HeartbeatTimeout   time.Duration // default 1s
	ElectionTimeout    time.Duration // default 1s
	LeaderLeaseTimeout time.Duration // default 500ms
	CommitTimeout      time.Duration // default 20ms

	// Log compaction: snapshot when this many entries follow the last snapshot, checked
	// every SnapshotInterval; keep TrailingLogs entries so slow followers can catch up
	// without a snapshot.
	SnapshotThreshold uint64        // default 8192
	SnapshotInterval  time.Duration // default 30s
	TrailingLogs      uint64        // default 10240
	SnapshotsRetained int           // default 2
	// The same by size (logbytes.go): once the log holds more than TrailingLogBytes +
	// SnapshotLogBytes, a snapshot is taken and the log compacted down to the newest
	// entries that fit in TrailingLogBytes (at most TrailingLogs of them), so that large
	// objects do not make a log of gigabytes. Default 64 MiB each; 0: by count only.
	TrailingLogBytes int64
	SnapshotLogBytes int64
	// ReleaseMappedBytes: once this many bytes were written to the state file (or
	// objects replaced or deleted) or to the Raft log's file, and once writes stop, the
	// member drops its mapping of that file's pages it read (mapped.go), so that its RSS
	// holds about this much of each file, not what was written. Default 64 MiB; 0: never.
	ReleaseMappedBytes int64
	// DefragFreeBytes: once deletes stop and the state file has this many bytes free, and
	// more free than in use, the member defragments it (quota.go), giving back the disk
	// and the memory bbolt keeps for each free page. Default 64 MiB; 0: never by itself
	// (skiffctl cluster defrag still does).
	DefragFreeBytes int64

	// MaxAppendEntries bounds the entries grouped into one disk write and one replication
	// message; concurrent writers share an fsync up to this many. Default 1024 (the most
	// hashicorp/raft allows).
	MaxAppendEntries int

	// HistorySize is the number of recent events each node keeps for watches to resume
	// from. Default 100,000.
	HistorySize int
	// HistoryBytes bounds the bytes of the objects the history holds (an event costs its
	// object, and a modification its previous object too): the oldest events go first.
	// Default 128 MiB. 0 leaves only the count and age bounds.
	HistoryBytes int64
	// HistoryTTL is how long an event stays in the history at most, so what was written
	// and deleted is given back once idle. Default 75s (the freshness Kubernetes' watch
	// cache keeps). 0 keeps events until count or bytes push them out.
	HistoryTTL time.Duration
	// MaxWatchLag is how many events a watcher may fall behind before it is cut with a
	// resumable error. Default HistorySize/2.
	MaxWatchLag int

	// LogCacheEntries, LogCacheBytes and LogCacheTTL bound the newest Raft log entries
	// kept in memory for replication: default 4096 entries, 32 MiB and 10s (followers
	// normally take an entry within milliseconds; older ones are read from disk). 0
	// bytes or TTL: no such bound.
	LogCacheEntries int
	LogCacheBytes   int64
	LogCacheTTL     time.Duration

	// IndexedFields are the fields (Object.Fields keys) the state keeps an index of, by
	// kind, for ListOptions.IndexField. nil indexes every field of every kind; a kind
	// absent from a non-nil map has none. Other fields are still stored and matched.
	// Nodes may differ in it: the index is local, and a restored snapshot's index is
	// rebuilt when it was made with other fields.
	IndexedFields map[string][]string

	// MaxObjectSize is the largest value an object may have. Default 1.5 MiB.
	MaxObjectSize int
	// MaxTxnSize is the largest encoded transaction. Default 8 MiB.
	MaxTxnSize int

	// QuotaBytes bounds the state file: past it, creates and updates are refused and the
	// NOSPACE alarm is raised (see quota.go). Default 8 GiB, as etcd's
	// --quota-backend-bytes.
	QuotaBytes int64

	// Backups schedules snapshots from the leader into a directory (backup.go). Its Dir
	// defaults to Dir/backups.
	Backups BackupConfig

	// WriteTimeout bounds how long a write waits for a leader before failing with
	// ErrNoLeader (the caller's context may end it sooner). Default 5s.
	WriteTimeout time.Duration

	// MmapSize is the state file's initial memory map, so snapshots (long reads) rarely
	// block writes that grow the file. Default 1 GiB (address space, not memory).
	MmapSize int

	// Version is the Skiff release this member runs (default version.Version). Members
	// say it to each other on the peer port and refuse a peer more than one minor version
	// apart (see skew.go); scheduled snapshots record it.
	Version string

	// PeerTLS, when set, secures the peer port: Raft and the peer service both run over
	// mutual TLS with it (it must carry certificates and the CA pool for both sides).
	PeerTLS *tls.Config

	// Logger receives the store's and Raft's logs. Default: discard.
	Logger hclog.Logger
}

// DefaultConfig returns a Config with every default set; fill ID, Dir and Listen.
func DefaultConfig() Config {
	return Config{
		HeartbeatTimeout:   time.Second,
		ElectionTimeout:    time.Second,
		LeaderLeaseTimeout: 500 * time.Millisecond,
		CommitTimeout:      20 * time.Millisecond,
		SnapshotThreshold:  8192,
		SnapshotInterval:   30 * time.Second,
		TrailingLogs:       10240,
		SnapshotsRetained:  2,
		TrailingLogBytes:   64 << 20,
		SnapshotLogBytes:   64 << 20,
		ReleaseMappedBytes: releaseMappedAfter,
		DefragFreeBytes:    64 << 20,
		MaxAppendEntries:   1024,
		HistorySize:        100_000,
		HistoryBytes:       128 << 20,
		HistoryTTL:         75 * time.Second,
		LogCacheEntries:    4096,
		LogCacheBytes:      32 << 20,
		LogCacheTTL:        10 * time.Second,
		MaxObjectSize:      3 << 19, // 1.5 MiB
		MaxTxnSize:         8 << 20,
		WriteTimeout:       5 * time.Second,
		MmapSize:           1 << 30,
		QuotaBytes:         8 << 30,
	}
}

// Validate checks the configuration and fills derived defaults.
func (c *Config) Validate() error {
	if c.ID == "" {
		return fmt.Errorf("store config: ID is required")
	}
	if c.Dir == "" {
		return fmt.Errorf("store config %s: Dir is required", c.ID)
	}
	if c.Listener != nil {
		c.Listen = c.Listener.Addr().String()
	}
	if c.Listen == "" {
		return fmt.Errorf("store config %s: Listen is required", c.ID)
	}
	if c.Advertise == "" {
		c.Advertise = c.Listen
	}
	if len(c.InitialCluster) > 0 {
		if err := c.validateMembers(); err != nil {
			return err
		}
	}
	if c.LeaderLeaseTimeout > c.HeartbeatTimeout {
		return fmt.Errorf("store config %s: LeaderLeaseTimeout %v exceeds HeartbeatTimeout %v", c.ID, c.LeaderLeaseTimeout, c.HeartbeatTimeout)
	}
	if c.MaxAppendEntries <= 0 || c.MaxAppendEntries > 1024 {
		return fmt.Errorf("store config %s: MaxAppendEntries must be in 1..1024", c.ID)
	}
	if c.HistorySize <= 0 {
		return fmt.Errorf("store config %s: HistorySize must be positive", c.ID)
	}
	if c.HistoryBytes < 0 || c.HistoryTTL < 0 || c.LogCacheBytes < 0 || c.LogCacheTTL < 0 || c.TrailingLogBytes < 0 || c.SnapshotLogBytes < 0 {
		return fmt.Errorf("store config %s: HistoryBytes, HistoryTTL, LogCacheBytes, LogCacheTTL, TrailingLogBytes and SnapshotLogBytes must not be negative", c.ID)
	}
	if c.LogCacheEntries <= 0 {
		c.LogCacheEntries = 4096
	}
	if c.MaxWatchLag == 0 {
		c.MaxWatchLag = c.HistorySize / 2
	}
	if c.MaxObjectSize <= 0 || c.MaxTxnSize < c.MaxObjectSize {
		return fmt.Errorf("store config %s: need 0 < MaxObjectSize <= MaxTxnSize", c.ID)
	}
	if c.Backups.Interval < 0 || c.Backups.Retention < 0 {
		return fmt.Errorf("store config %s: snapshot interval and retention must not be negative", c.ID)
	}
	if c.Version == "" {
		c.Version = version.Version
	}
	if _, err := utilversion.ParseGeneric(c.Version); err != nil {
		return fmt.Errorf("store config %s: Version %q: %w", c.ID, c.Version, err)
	}
	if c.Backups.Version == "" {
		c.Backups.Version = c.Version
	}
	if c.Backups.Dir == "" {
		c.Backups.Dir = filepath.Join(c.Dir, "backups")
	}
	if c.Backups.Retention == 0 {
		c.Backups.Retention = 5
	}
	if c.Backups.RetryDelay < 0 {
		return fmt.Errorf("store config %s: snapshot retry delay must not be negative", c.ID)
	}
	if c.Backups.RetryDelay == 0 {
		c.Backups.RetryDelay = 30 * time.Second
	}
	if c.Backups.Now == nil {
		c.Backups.Now = time.Now
	}
	if c.Backups.UploadTimeout <= 0 {
		c.Backups.UploadTimeout = 10 * time.Minute
	}
	if c.QuotaBytes <= 0 {
		return fmt.Errorf("store config %s: QuotaBytes must be positive", c.ID)
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	return nil
}

// validateMembers checks InitialCluster: every member named once, with an address, and
// this node among them.
func (c *Config) validateMembers() error {
	found := false
	seen := map[string]bool{}
	for _, s := range c.InitialCluster {
		if s.ID == "" || s.Address == "" {
			return fmt.Errorf("store config %s: initial cluster member %q needs an ID and an address", c.ID, s.ID+"="+s.Address)
		}
		if seen[s.ID] {
			return fmt.Errorf("store config %s: initial cluster names %s twice", c.ID, s.ID)
		}
		seen[s.ID] = true
		found = found || s.ID == c.ID
	}
	if !found {
		return fmt.Errorf("store config %s: initial cluster does not include this node", c.ID)
	}
	return nil
}

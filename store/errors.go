package store

import (
	"errors"
	"fmt"
)

// Error classes. Every error the store returns wraps one of these, so callers test with
// errors.Is and map them to gRPC codes at the API boundary.
var (
	// ErrNotFound: the object does not exist (Get, Update, Delete).
	ErrNotFound = errors.New("object not found")
	// ErrAlreadyExists: Create found the object present.
	ErrAlreadyExists = errors.New("object already exists")
	// ErrConflict: a revision or uid precondition did not hold.
	ErrConflict = errors.New("precondition failed")
	// ErrInvalid: the request is malformed (empty key, unknown operation, ...).
	ErrInvalid = errors.New("invalid request")
	// ErrTooLarge: an object or a transaction is over the size limit.
	ErrTooLarge = errors.New("request too large")
	// ErrNotLeader: this node cannot take the write and did not forward it.
	ErrNotLeader = errors.New("not the leader")
	// ErrNoLeader: the cluster has no leader right now; nothing was written. Retry.
	ErrNoLeader = errors.New("no leader")
	// ErrIndeterminate: the write may or may not have been committed (leadership was lost
	// while it was in flight, or the link to the leader broke). Read before retrying.
	ErrIndeterminate = errors.New("outcome unknown")
	// ErrCompacted: a watch asked for revisions no longer in the history window. Re-list.
	ErrCompacted = errors.New("revision compacted")
	// ErrWatchTooSlow: the watcher fell too far behind and was cut; resume from its last
	// revision with a new watch.
	ErrWatchTooSlow = errors.New("watcher too slow")
	// ErrNoSpace: the cluster's NOSPACE alarm is raised (a member's state file reached
	// the quota): writes other than deletes are refused until an administrator disarms it.
	ErrNoSpace = errors.New("database space exceeded")
	// ErrRefused: a peer was refused for its identity (another cluster's member, or a
	// removed one).
	ErrRefused = errors.New("peer refused")
	// ErrClosed: the store is shut down.
	ErrClosed = errors.New("store closed")
)

// PreconditionError is a failed transaction: which operation failed, on which object, and
// the object's current revision (0 when it does not exist).
type PreconditionError struct {
	Err             error // ErrNotFound, ErrAlreadyExists or ErrConflict
	Op              int
	Key             Key
	CurrentRevision int64
	Detail          string
}

func (e *PreconditionError) Error() string {
	msg := fmt.Sprintf("%s %s: %v", e.Key.Kind, e.Key.path(), e.Err)
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	if e.CurrentRevision != 0 {
		msg += fmt.Sprintf(" (current revision %d)", e.CurrentRevision)
	}
	return msg
}

func (e *PreconditionError) Unwrap() error { return e.Err }

// NotLeaderError names the leader, when known, so the caller can go there.
type NotLeaderError struct {
	LeaderID, LeaderAddress string
}

func (e *NotLeaderError) Error() string {
	if e.LeaderID == "" {
		return ErrNoLeader.Error()
	}
	return fmt.Sprintf("%v: leader is %s at %s", ErrNotLeader, e.LeaderID, e.LeaderAddress)
}

func (e *NotLeaderError) Unwrap() error {
	if e.LeaderID == "" {
		return ErrNoLeader
	}
	return ErrNotLeader
}

// CompactedError names the oldest revision a watch can still start after.
type CompactedError struct {
	Requested int64
	// Oldest is the smallest revision to pass as WatchOptions.After.
	Oldest int64
}

func (e *CompactedError) Error() string {
	return fmt.Sprintf("watch from revision %d: %v, oldest available is %d", e.Requested, ErrCompacted, e.Oldest)
}

func (e *CompactedError) Unwrap() error { return ErrCompacted }

// TooSlowError is returned by a watcher cut for lagging; LastRevision is where to resume.
type TooSlowError struct {
	LastRevision int64
	Lag          int
}

func (e *TooSlowError) Error() string {
	return fmt.Sprintf("%v: %d events behind, resume after revision %d", ErrWatchTooSlow, e.Lag, e.LastRevision)
}

func (e *TooSlowError) Unwrap() error { return ErrWatchTooSlow }

// errNoLeaderFound is ErrNoLeader after WriteTimeout spent waiting for a leader to be
// known: a read that gets it has waited long enough and is not asked again.
var errNoLeaderFound = noLeaderFound{}

type noLeaderFound struct{}

func (noLeaderFound) Error() string { return ErrNoLeader.Error() }
func (noLeaderFound) Unwrap() error { return ErrNoLeader }

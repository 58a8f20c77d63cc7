package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	"go.etcd.io/bbolt"
)

// State format.
//
// The state file (and so every Raft snapshot and backup, which are copies of it) says
// which format it is in: the meta bucket's "format" key, absent in format 1. A member
// opening a state, at start from its latest snapshot, at a snapshot install from the
// leader, or skiff restore reading a backup, migrates an older format forward in the
// transaction that opens it, one format at a time, and refuses a newer one, which a
// newer release wrote: a member is never downgraded past the format its data is in.
//
//	1: releases before cluster identity: buckets objects, index, meta.
//	2: adds the members and removed buckets (identity.go) and the format key.

// stateFormat is the format this release writes.
const stateFormat = 2

var keyFormat = []byte("format")

// errNewerFormat is a state a newer release wrote.
var errNewerFormat = errors.New("written by a newer Skiff")

// migrations[n] turns a state of format n into format n+1.
var migrations = map[int]func(tx *bbolt.Tx) error{
	1: func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bucketMembers, bucketRemoved} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	},
}

// readStateFormat is the format of the state tx reads, or an error naming why this
// release cannot read it.
func readStateFormat(tx *bbolt.Tx) (int, error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return 0, fmt.Errorf("not a state file: no %q bucket", bucketMeta)
	}
	v := meta.Get(keyFormat)
	if v == nil {
		return 1, nil
	}
	if len(v) != 4 {
		return 0, fmt.Errorf("corrupt: the state's format is %d bytes long, want 4", len(v))
	}
	format := int(binary.BigEndian.Uint32(v))
	if format < 1 || format > stateFormat {
		return format, fmt.Errorf("the state is in format %d, %w; this Skiff reads formats 1 to %d: run a release that reads it (a member is never downgraded past the format its data is in)", format, errNewerFormat, stateFormat)
	}
	return format, nil
}

// migrateState brings the state tx writes to stateFormat, and says from which format.
func migrateState(tx *bbolt.Tx) (from int, err error) {
	from, err = readStateFormat(tx)
	if err != nil {
		return from, err
	}
	for f := from; f < stateFormat; f++ {
		if err := migrations[f](tx); err != nil {
			return from, fmt.Errorf("migrate the state from format %d to %d: %w", f, f+1, err)
		}
	}
	if from == stateFormat {
		return from, nil
	}
	return from, tx.Bucket(bucketMeta).Put(keyFormat, binary.BigEndian.AppendUint32(nil, stateFormat))
}

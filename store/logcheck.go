package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	"go.etcd.io/bbolt"
)

// checkLog reads the whole Raft log file before it is opened for writing, and says what
// is damaged in it. Opening it for writing rebuilds its freelist (it is not written, see
// openLog) by walking every page on a goroutine of bbolt's own, where a damaged page's
// panic (bbolt asserts rather than returns errors) would crash the member with a stack
// trace instead of the advice damaged gives. So the walk happens here first, read-only
// (which builds no freelist), where a panic or a memory fault can be caught: a file
// shorter than its pages (a torn tail), a page that is not what its parent says, keys out
// of order. A missing file is not damaged: it is a new member's.
func checkLog(path string) (err error) {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("corrupt: %w", err)
	}
	defer db.Close()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("corrupt: %v", r)
		}
	}()
	return db.View(func(tx *bbolt.Tx) error {
		if tx.Size() > fi.Size() {
			return fmt.Errorf("torn: the file is %d bytes, its pages need %d", fi.Size(), tx.Size())
		}
		return tx.ForEach(func(name []byte, b *bbolt.Bucket) error { return walkBucket(name, b) })
	})
}

// walkBucket reads every key of b and its nested buckets, checking their order.
func walkBucket(name []byte, b *bbolt.Bucket) error {
	var prev []byte
	return b.ForEach(func(k, v []byte) error {
		if prev != nil && bytes.Compare(prev, k) >= 0 {
			return fmt.Errorf("corrupt: bucket %q: key %x after %x", name, k, prev)
		}
		prev = k
		if v == nil {
			if nested := b.Bucket(k); nested != nil {
				return walkBucket(k, nested)
			}
		}
		return nil
	})
}

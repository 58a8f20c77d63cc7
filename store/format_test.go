package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	storev1 "github.com/skiffhq/skiff/proto/store/v1"
)

// stateFile writes tf's state to a file of dir and lets edit change it (as another
// release would have written it).
func stateFile(t *testing.T, tf *testFSM, dir string, edit func(tx *bbolt.Tx) error) string {
	t.Helper()
	var buf bytes.Buffer
	if _, err := tf.f.writeTo(&buf); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "state-copy.db")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(edit); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func installFile(t *testing.T, f *fsm, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return f.Restore(io.NopCloser(bytes.NewReader(b)))
}

func formatOf(t *testing.T, f *fsm) (format int, buckets bool) {
	t.Helper()
	f.view(func(tx *bbolt.Tx) error {
		format, _ = readStateFormat(tx)
		buckets = tx.Bucket(bucketMembers) != nil && tx.Bucket(bucketRemoved) != nil
		return nil
	})
	return format, buckets
}

// TestStateFormatMigratesForward: a state of the release before cluster identity (format
// 1: no format key, no members or removed bucket) is read, installed and migrated to this
// release's format, and takes this release's commands; a fresh state is of it.
func TestStateFormatMigratesForward(t *testing.T) {
	src := newTestFSM(t, 10)
	if f, ok := formatOf(t, src.f); f != stateFormat || !ok {
		t.Fatalf("a fresh state is of format %d (identity buckets %v), want %d", f, ok, stateFormat)
	}
	src.one(Op{Type: Create, Key: key("old"), Value: []byte("v")})
	path := stateFile(t, src, t.TempDir(), func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bucketMembers, bucketRemoved} {
			if err := tx.DeleteBucket(b); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Delete(keyFormat)
	})
	if info, err := VerifySnapshot(path); err != nil || info.Objects["ConfigMap"] != 1 {
		t.Fatalf("verify a format-1 backup: %+v, %v", info, err)
	}

	dst := newTestFSM(t, 10)
	if err := installFile(t, dst.f, path); err != nil {
		t.Fatalf("install a format-1 snapshot: %v", err)
	}
	if f, ok := formatOf(t, dst.f); f != stateFormat || !ok {
		t.Fatalf("after installing a format-1 snapshot the state is of format %d (identity buckets %v), want %d with them", f, ok, stateFormat)
	}
	if _, _, err := dst.f.get(key("old")); err != nil {
		t.Fatalf("the migrated state lost its object: %v", err)
	}
	// This release's commands apply to it (a member's incarnation goes to the members bucket).
	dst.next = uint64(dst.f.applied.Load()) + 1
	cmd, _ := proto.Marshal(&storev1.Command{Command: &storev1.Command_MemberIncarnation{MemberIncarnation: &storev1.MemberIncarnation{Name: "n1", Uid: "u1"}}})
	dst.f.ApplyBatch([]*raft.Log{{Index: dst.next, Type: raft.LogCommand, Data: cmd}})
	if got := dst.f.incarnation("n1"); got != "u1" {
		t.Fatalf("incarnation recorded in the migrated state: %q", got)
	}
}

// TestStateOfNewerFormatRefused: a state a newer release wrote is refused by verify
// (skiff restore) and at install, with both formats named, and the member's own state
// is left as it was.
func TestStateOfNewerFormatRefused(t *testing.T) {
	src := newTestFSM(t, 10)
	src.one(Op{Type: Create, Key: key("theirs"), Value: []byte("v")})
	path := stateFile(t, src, t.TempDir(), func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyFormat, binary.BigEndian.AppendUint32(nil, stateFormat+1))
	})
	wantMsg := func(err error) bool {
		return err != nil && strings.Contains(err.Error(), "format 3, written by a newer Skiff") && strings.Contains(err.Error(), "formats 1 to 2")
	}
	if _, err := VerifySnapshot(path); !wantMsg(err) {
		t.Fatalf("verify a newer format's backup: %v", err)
	}
	dst := newTestFSM(t, 10)
	dst.one(Op{Type: Create, Key: key("mine"), Value: []byte("v")})
	err := installFile(t, dst.f, path)
	if !wantMsg(err) {
		t.Fatalf("install a newer format's snapshot: %v", err)
	}
	if _, _, err := dst.f.get(key("mine")); err != nil {
		t.Fatalf("the refused install lost the member's own object: %v", err)
	}
	if _, _, err := dst.f.get(key("theirs")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the refused snapshot's object is there: %v", err)
	}
}

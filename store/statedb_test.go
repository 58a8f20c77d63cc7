package store

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/skiffhq/skiff/test/waitfor"
)

// TestReplacingTheStateWaitsForNoRead: a snapshot restore or a defragmentation replaces
// the state file while reads of it are under way — a Raft snapshot taken and not yet
// persisted (hashicorp/raft's snapshot goroutine holds one while it waits for its main
// goroutine, which a follower's snapshot install keeps waiting for the restore) and a
// read transaction — without waiting for them. They finish on the old file, which is
// closed when the last one ends.
func TestReplacingTheStateWaitsForNoRead(t *testing.T) {
	src := newTestFSM(t, 10)
	src.one(Op{Type: Create, Key: key("new"), Value: []byte("n")})
	newState := persist(t, src.f)

	for _, tc := range []struct {
		name    string
		replace func(f *fsm) error
		want    []string // the objects after
	}{
		{"restore", func(f *fsm) error { return f.Restore(newState.reader()) }, []string{"new"}},
		{"defragment", func(f *fsm) error { _, _, err := f.defragment(); return err }, []string{"a", "b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tf := newTestFSM(t, 10)
			tf.one(Op{Type: Create, Key: key("a"), Value: []byte("a")})
			tf.one(Op{Type: Create, Key: key("b"), Value: []byte("b")})
			old := tf.f.state.Load()

			held, err := tf.f.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			reading, stopReading, readDone := make(chan struct{}), make(chan struct{}), make(chan struct{})
			var readErr error
			go func() {
				defer close(readDone)
				readErr = tf.f.view(func(tx *bbolt.Tx) error {
					close(reading)
					<-stopReading
					if tx.Bucket(bucketObjects).Get(objectKey(key("a"))) == nil {
						return errors.New("the read's state lost object a")
					}
					return nil
				})
			}()
			<-reading
			var releaseOnce, stopOnce sync.Once
			release := func() { releaseOnce.Do(held.Release) }
			stop := func() { stopOnce.Do(func() { close(stopReading) }) }

			var replaceErr error
			replaced := make(chan struct{})
			go func() {
				defer close(replaced)
				replaceErr = tc.replace(tf.f)
			}()
			// Ends the reads if the replacement waits for them, so that nothing is left.
			t.Cleanup(func() {
				release()
				stop()
				<-replaced
				<-readDone
			})
			waitfor.Condition(t, 30*time.Second, tc.name+" to return while reads are under way", func() (bool, string) {
				select {
				case <-replaced:
					return true, ""
				default:
					return false, "it waits"
				}
			})
			if replaceErr != nil {
				t.Fatal(replaceErr)
			}
			if names := tf.names(); !reflect.DeepEqual(names, tc.want) {
				t.Fatalf("after %s: %v, want %v", tc.name, names, tc.want)
			}
			if tf.f.state.Load() == old {
				t.Fatalf("the old state file is still current after %s", tc.name)
			}
			select {
			case <-old.closed:
				t.Fatal("the old state file was closed under its reads")
			default:
			}

			// The held snapshot is the state as it was when taken.
			sink := &memSink{}
			if err := held.Persist(sink); err != nil {
				t.Fatal(err)
			}
			release()
			check := newTestFSM(t, 10)
			if err := check.f.Restore(sink.reader()); err != nil {
				t.Fatal(err)
			}
			if names := check.names(); !reflect.DeepEqual(names, []string{"a", "b"}) {
				t.Fatalf("the snapshot taken before the %s holds %v, want [a b]", tc.name, names)
			}
			stop()
			<-readDone
			if readErr != nil {
				t.Fatal(readErr)
			}
			waitfor.Condition(t, 30*time.Second, "the old state file to be closed after its last read", func() (bool, string) {
				select {
				case <-old.closed:
					return true, ""
				default:
					old.mu.Lock()
					defer old.mu.Unlock()
					return false, fmt.Sprintf("%d reads still use it", old.readers)
				}
			})
			if old.err != nil {
				t.Fatalf("close the old state file: %v", old.err)
			}
		})
	}
}

// persist returns a snapshot of f's state.
func persist(t *testing.T, f *fsm) *memSink {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	return sink
}

// names lists the names of the ConfigMaps in tf's state.
func (tf *testFSM) names() []string {
	tf.t.Helper()
	objs, _, err := tf.list("ConfigMap", ListOptions{})
	if err != nil {
		tf.t.Fatal(err)
	}
	var names []string
	for _, o := range objs {
		names = append(names, o.Name)
	}
	return names
}

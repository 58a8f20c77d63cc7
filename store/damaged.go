package store

import (
	"fmt"
	"time"

	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
)

// A member whose data directory is damaged (a disk fault, a torn write the file
// systems' guarantees did not cover, a file edited by hand) must not start on it: it could
// serve or vote with a history other than the cluster's. It refuses, and says how to
// recover: the cluster keeps serving without it, and a wiped member added again receives
// the whole state from the others.

// openLog opens the Raft log, turning a panic of bbolt on a damaged page (it asserts
// rather than returns errors) into an error; checkLog first finds the damage bbolt would
// panic on where it could not be caught.
func openLog(path string, mmapSize int) (logs *raftboltdb.BoltStore, err error) {
	if err := checkLog(path); err != nil {
		return nil, err
	}
	defer func() {
		if r := recover(); r != nil {
			logs, err = nil, fmt.Errorf("corrupt: %v", r)
		}
	}()
	return raftboltdb.New(raftboltdb.Options{
		Path:        path,
		BoltOptions: &bbolt.Options{Timeout: time.Second, NoFreelistSync: true, FreelistType: bbolt.FreelistMapType, InitialMmapSize: mmapSize},
	})
}

// damaged says that the member cannot start on its data directory, and how to recover.
func damaged(cfg Config, err error) error {
	return fmt.Errorf("member %s cannot start: its data directory %s is damaged: %w. To recover, keep it stopped, remove it from the cluster (skiffctl cluster remove %s), move its data directory away, and add it again (start it with an empty data directory and --join): it receives the state from the others",
		cfg.ID, cfg.Dir, err, cfg.ID)
}

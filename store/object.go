package store

import (
	"fmt"
	"strings"
)

// Key addresses one object. Namespace is empty for cluster-scoped kinds.
type Key struct {
	Kind, Namespace, Name string
}

func (k Key) path() string {
	if k.Namespace == "" {
		return k.Name
	}
	return k.Namespace + "/" + k.Name
}

func (k Key) String() string { return k.Kind + " " + k.path() }

func (k Key) validate() error {
	if k.Kind == "" || k.Name == "" {
		return fmt.Errorf("key %q: %w: kind and name are required", k.String(), ErrInvalid)
	}
	for _, part := range []string{k.Kind, k.Namespace, k.Name} {
		if strings.IndexByte(part, 0) >= 0 {
			return fmt.Errorf("key %q: %w: NUL byte in key", k.String(), ErrInvalid)
		}
	}
	return nil
}

// Object is a stored object: its value (protobuf bytes, opaque to the store), the
// attributes the store indexes and filters on, and its revisions. Objects returned by
// the store are shared (watch history, caches): callers must not modify them.
type Object struct {
	Key
	Value []byte
	UID   string
	// Labels are matched by label selectors.
	Labels map[string]string
	// Fields are field values the store indexes and field selectors match
	// (e.g. "spec.nodeName"). An absent field has the value "".
	Fields map[string]string
	// CreateRevision is the revision that created the object.
	CreateRevision int64
	// ModRevision is the revision of the last change: the object's resourceVersion.
	ModRevision int64
}

// OpType is the kind of change one operation makes.
type OpType int

const (
	// Create makes a new object; it fails with ErrAlreadyExists if the key exists.
	Create OpType = iota + 1
	// Update replaces an existing object's value and attributes, keeping its uid and
	// create revision; it fails with ErrNotFound if the key does not exist.
	Update
	// Delete removes an existing object; it fails with ErrNotFound if absent.
	Delete
)

func (t OpType) String() string {
	switch t {
	case Create:
		return "create"
	case Update:
		return "update"
	case Delete:
		return "delete"
	}
	return fmt.Sprintf("op(%d)", int(t))
}

// Op is one operation of a transaction, with its preconditions.
type Op struct {
	Type OpType
	Key  Key
	// Value, UID (create only), Labels and Fields are the new object's (create, update).
	Value  []byte
	UID    string
	Labels map[string]string
	Fields map[string]string
	// IfRevision, when non-zero, requires the object's ModRevision to equal it (update, delete).
	IfRevision int64
	// IfUID, when set, requires the object's UID to equal it (update, delete).
	IfUID string
}

// TxnResult is a committed transaction: its revision and, per operation, the object as it
// is after the operation (for a delete, as it was, with ModRevision set to the deletion).
type TxnResult struct {
	Revision int64
	Objects  []Object
}

// EventType says how a watched object changed.
type EventType int

const (
	Added EventType = iota + 1
	Modified
	Deleted
	// Bookmark carries only a revision: everything up to it has been delivered.
	Bookmark
)

func (t EventType) String() string {
	switch t {
	case Added:
		return "ADDED"
	case Modified:
		return "MODIFIED"
	case Deleted:
		return "DELETED"
	case Bookmark:
		return "BOOKMARK"
	}
	return fmt.Sprintf("event(%d)", int(t))
}

// Event is one change. For Deleted, Object is the last state with ModRevision set to
// the deletion's revision. Prev is the state before a Modified or Deleted change.
type Event struct {
	Type     EventType
	Revision int64
	Object   Object
	Prev     *Object
	// Applied is when this node applied the change (its history took it), in unix
	// nanoseconds; on the leader, when it committed. Zero for a Bookmark. It bounds the
	// history's age, and tells a watcher on the node how long the change took to reach it.
	Applied int64
}

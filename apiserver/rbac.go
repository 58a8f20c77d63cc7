package apiserver

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/skiffhq/skiff/apiserver/auth"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/store"
)

// rbacKinds are the kinds the RBAC authorizer reads.
var rbacKinds = []string{kinds.Role, kinds.ClusterRole, kinds.RoleBinding, kinds.ClusterRoleBinding}

// rbacFollower keeps the RBAC authorizer's index (auth.RBAC) current with this member's
// store: a list of each RBAC kind, then its watch, as nodeGraph follows pods. No
// request reads the store to be authorized; the index is a moment behind the store,
// and a refusal first waits for it to catch up with what this member has applied
// (catchUp), so a binding created through this member holds for the next request.
type rbacFollower struct {
	store *store.Store
	log   hclog.Logger
	index *auth.RBAC

	mu  sync.Mutex
	rev map[string]int64 // per kind, the revision the index reflects
	// advanced is closed, and replaced, when a revision advances.
	advanced chan struct{}
}

// rbacCatchUp bounds how long a refusal waits for the index to catch up.
const rbacCatchUp = 2 * time.Second

func newRBACFollower(s *store.Store, log hclog.Logger) *rbacFollower {
	f := &rbacFollower{store: s, log: log.Named("rbac"), index: auth.NewRBAC(), rev: map[string]int64{}, advanced: make(chan struct{})}
	f.index.CatchUp = f.catchUp
	return f
}

// catchUp waits until the index reflects every RBAC change this member has applied
// (at most rbacCatchUp), and reports whether it waited for anything.
func (f *rbacFollower) catchUp() bool {
	var timer <-chan time.Time
	waited := false
	for {
		f.mu.Lock()
		behind, advanced := false, f.advanced
		for _, k := range rbacKinds {
			if f.rev[k] < f.store.LastChange(k) {
				behind = true
			}
		}
		f.mu.Unlock()
		if !behind {
			return waited
		}
		if timer == nil {
			timer = time.After(rbacCatchUp)
		}
		waited = true
		select {
		case <-advanced:
		case <-timer:
			return true
		}
	}
}

// run keeps the index current until ctx ends.
func (f *rbacFollower) run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, kind := range rbacKinds {
		wg.Go(func() {
			backoff := 100 * time.Millisecond
			for ctx.Err() == nil {
				err := f.follow(ctx, kind)
				if ctx.Err() != nil || errors.Is(err, store.ErrClosed) {
					return
				}
				f.log.Debug("following again", "kind", kind, "error", err, "in", backoff)
				select {
				case <-time.After(backoff):
				case <-ctx.Done():
					return
				}
				backoff = min(2*backoff, 5*time.Second)
			}
		})
	}
	wg.Wait()
}

// follow lists kind into the index (dropping what is gone), then applies its changes.
func (f *rbacFollower) follow(ctx context.Context, kind string) error {
	info := kinds.MustLookup(kind)
	objs, rev, err := f.store.List(ctx, kind, store.ListOptions{Stale: true})
	if err != nil {
		return err
	}
	known := map[store.Key]bool{}
	for i := range objs {
		f.put(info, &objs[i])
		known[objs[i].Key] = true
	}
	f.index.RemoveUnless(kind, func(namespace, name string) bool {
		return known[store.Key{Kind: kind, Namespace: namespace, Name: name}]
	})
	f.advance(kind, rev)
	w, err := f.store.Watch(store.WatchOptions{Kind: kind, After: rev})
	if err != nil {
		return err
	}
	defer w.Close()
	for {
		evs, err := w.Next(ctx)
		if err != nil {
			return err
		}
		for i := range evs {
			ev := &evs[i]
			switch ev.Type {
			case store.Added, store.Modified:
				f.put(info, &ev.Object)
			case store.Deleted:
				f.index.Remove(kind, ev.Object.Key.Namespace, ev.Object.Key.Name)
			}
			f.advance(kind, ev.Revision)
		}
	}
}

func (f *rbacFollower) put(info *kinds.Info, o *store.Object) {
	obj, err := decode(info, o)
	if err != nil {
		f.log.Warn("an RBAC object the authorizer cannot read: it grants nothing", "kind", info.Kind, "object", o.Key.String(), "error", err)
		f.index.Remove(info.Kind, o.Key.Namespace, o.Key.Name)
		return
	}
	f.index.Put(obj)
}

func (f *rbacFollower) advance(kind string, rev int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if rev <= f.rev[kind] {
		return
	}
	f.rev[kind] = rev
	close(f.advanced)
	f.advanced = make(chan struct{})
}

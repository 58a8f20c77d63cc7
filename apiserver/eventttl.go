package apiserver

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/store"
)

// Events expire, as Kubernetes' do (its API server stores each with an etcd lease of
// --event-ttl): the leader deletes every Event whose last occurrence is older than
// Config.EventTTL. Without it, events, most of a cluster's writes, would be kept
// forever. An event updated meanwhile (its count grew) is not deleted: each delete is
// conditional on the revision read.

// eventSweepBatch is how many expired events a sweep lists at a time, and deletes in one
// transaction.
const eventSweepBatch = 100

// expireEvents sweeps expired events every interval while ctx lasts, on the leader.
func (s *Server) expireEvents(ctx context.Context, interval time.Duration) {
	s.whileLeading(ctx, interval, func() {
		n, err := s.sweepEvents(ctx, s.cfg.Now())
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Warn("deleting expired events failed; trying again later", "error", err)
		case n > 0:
			s.log.Debug("deleted expired events", "count", n, "ttl", s.cfg.EventTTL)
		}
	})
}

// whileLeading runs work every interval while ctx lasts, each time this server leads.
func (s *Server) whileLeading(ctx context.Context, interval time.Duration, work func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if s.store.LeaderID() == s.cfg.Name {
			work()
		}
	}
}

// sweepEvents deletes the events last seen before now - EventTTL and says how many. It
// lists them a batch at a time, and only the expired ones: the list of every event it
// made before held them all at once, each with its value, labels and fields, on the
// leader every sweep — 50,000 events at 10,000 pods (issue 26).
func (s *Server) sweepEvents(ctx context.Context, now time.Time) (int, error) {
	info := kinds.MustLookup(kinds.Event)
	deadline := now.Add(-s.cfg.EventTTL)
	expired := func(o *store.Object) bool {
		obj, err := decode(info, o)
		// One that does not decode is not ours to judge: left for an administrator to see.
		return err == nil && !lastSeen(obj.(*corev1.Event)).After(deadline)
	}
	deleted := 0
	var after store.Key
	for {
		// expired reads the value alone: the store need not read labels and fields.
		page, err := s.store.ListPage(ctx, kinds.Event, store.ListOptions{Stale: true, After: after, Limit: eventSweepBatch, Predicate: expired,
			ValuesOnly: true})
		if err != nil || len(page.Objects) == 0 {
			return deleted, err
		}
		ops := make([]store.Op, len(page.Objects))
		for i, o := range page.Objects {
			ops[i] = store.Op{Type: store.Delete, Key: o.Key, IfRevision: o.ModRevision}
		}
		if _, err := s.store.Txn(ctx, ops...); err == nil {
			deleted += len(ops)
		} else {
			// One changed or gone since the list: delete the others one by one.
			for _, op := range ops {
				if _, err := s.store.Txn(ctx, op); err == nil {
					deleted++
				} else if ctx.Err() != nil {
					return deleted, ctx.Err()
				}
			}
		}
		if !page.More {
			return deleted, nil
		}
		after = page.Objects[len(page.Objects)-1].Key
	}
}

// lastSeen is when an event last happened: its latest timestamp, or when it was
// stored if it carries none.
func lastSeen(ev *corev1.Event) time.Time {
	var t time.Time
	for _, u := range []time.Time{ev.FirstTimestamp.Time, ev.LastTimestamp.Time, ev.EventTime.Time} {
		if u.After(t) {
			t = u
		}
	}
	if ev.Series != nil && ev.Series.LastObservedTime.After(t) {
		t = ev.Series.LastObservedTime.Time
	}
	if t.IsZero() {
		t = ev.CreationTimestamp.Time
	}
	return t
}

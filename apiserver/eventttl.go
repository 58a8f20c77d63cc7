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

// eventSweepBatch is how many expired events one transaction deletes.
const eventSweepBatch = 100

// expireEvents sweeps expired events every interval while ctx lasts, on the leader.
func (s *Server) expireEvents(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if s.store.LeaderID() != s.cfg.Name {
			continue
		}
		n, err := s.sweepEvents(ctx, s.cfg.Now())
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Warn("deleting expired events failed; trying again later", "error", err)
		case n > 0:
			s.log.Debug("deleted expired events", "count", n, "ttl", s.cfg.EventTTL)
		}
	}
}

// sweepEvents deletes the events last seen before now - EventTTL and says how many.
func (s *Server) sweepEvents(ctx context.Context, now time.Time) (int, error) {
	info := kinds.MustLookup(kinds.Event)
	deadline := now.Add(-s.cfg.EventTTL)
	objs, _, err := s.store.List(ctx, kinds.Event, store.ListOptions{Stale: true})
	if err != nil {
		return 0, err
	}
	var ops []store.Op
	deleted := 0
	flush := func() error {
		if len(ops) == 0 {
			return nil
		}
		_, err := s.store.Txn(ctx, ops...)
		if err != nil {
			// One changed or gone since the list: delete the others one by one.
			for _, op := range ops {
				if _, err := s.store.Txn(ctx, op); err == nil {
					deleted++
				} else if ctx.Err() != nil {
					return ctx.Err()
				}
			}
		} else {
			deleted += len(ops)
		}
		ops = ops[:0]
		return nil
	}
	for i := range objs {
		obj, err := decode(info, &objs[i])
		if err != nil {
			continue // not ours to judge: left for an administrator to see
		}
		if lastSeen(obj.(*corev1.Event)).After(deadline) {
			continue
		}
		ops = append(ops, store.Op{Type: store.Delete, Key: objs[i].Key, IfRevision: objs[i].ModRevision})
		if len(ops) == eventSweepBatch {
			if err := flush(); err != nil {
				return deleted, err
			}
		}
	}
	return deleted, flush()
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

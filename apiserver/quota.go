package apiserver

import (
	"context"
	"hash/fnv"
	"slices"
	"sync"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/quota"
	"github.com/skiffhq/skiff/store"
)

// Kubernetes' LimitRanger and ResourceQuota admission of new objects (the rules are in
// package quota). A pod gets its LimitRanges' defaults before it is validated and is
// checked against their bounds after; any object is then charged to the quotas of its
// namespace that track it: the quotas' new status.used is written in the object's own
// transaction, each on the condition that the quota did not change since it was read
// (its revision, as Kubernetes' quota admission compares resourceVersions), so that
// concurrent creates on any member can never together pass a quota's hard limit. A lost
// race is charged again on the quota as it now is.

// maxChargeAttempts bounds how often one create is charged again after losing a race for
// its quota; each loss means another create was charged.
const maxChargeAttempts = 100

// nsLists caches the objects of one kind in each namespace as this node's state has them,
// each list with the revision it was read at; a list answers only while no object of
// the kind changed on this node since (store.LastChange), so it says exactly what a
// stale read would. Most namespaces have no quota and no LimitRange: then a create costs
// no read at all.
type nsLists struct {
	kind    string
	mu      sync.Mutex
	entries map[string]nsList
}

type nsList struct {
	objs []store.Object
	rev  int64
}

func newNSLists(kind string) *nsLists { return &nsLists{kind: kind} }

// list returns the objects of the kind in ns: from this node's state (stale), or read
// linearizably when fresh.
func (c *nsLists) list(ctx context.Context, s *store.Store, ns string, fresh bool) ([]store.Object, error) {
	changed := s.LastChange(c.kind)
	if !fresh {
		c.mu.Lock()
		e, ok := c.entries[ns]
		c.mu.Unlock()
		if ok && e.rev >= changed {
			return e.objs, nil
		}
	}
	objs, rev, err := s.List(ctx, c.kind, store.ListOptions{Namespace: ns, Stale: !fresh})
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.entries == nil || len(c.entries) > 10_000 {
		c.entries = map[string]nsList{}
	}
	if cur, ok := c.entries[ns]; !ok || cur.rev < rev {
		c.entries[ns] = nsList{objs: objs, rev: rev}
	}
	c.mu.Unlock()
	return objs, nil
}

// limitRanges are the LimitRanges of namespace ns, as this node has them.
func (r *resources) limitRanges(ctx context.Context, ns string) ([]*corev1.LimitRange, error) {
	info := kinds.MustLookup(kinds.LimitRange)
	objs, err := r.limitRangeLists.list(ctx, r.store, ns, false)
	if err != nil {
		return nil, storeError(info, "", err)
	}
	out := make([]*corev1.LimitRange, 0, len(objs))
	for i := range objs {
		obj, err := r.decodeStored(info, objs[i])
		if err != nil {
			return nil, err
		}
		out = append(out, obj.(*corev1.LimitRange))
	}
	return out, nil
}

// defaultLimits gives a new pod its namespace's LimitRanges' defaults (LimitRanger's
// mutating half); it returns the ranges for checkLimits.
func (r *resources) defaultLimits(ctx context.Context, pod *corev1.Pod) ([]*corev1.LimitRange, error) {
	ranges, err := r.limitRanges(ctx, pod.Namespace)
	if err != nil {
		return nil, err
	}
	quota.DefaultPod(ranges, pod)
	return ranges, nil
}

// checkLimits refuses a pod outside its namespace's LimitRanges' bounds.
func checkLimits(ranges []*corev1.LimitRange, pod *corev1.Pod) error {
	if err := quota.CheckPod(ranges, pod); err != nil {
		return forbidden(kinds.MustLookup(kinds.Pod), pod.Name, err.Error())
	}
	return nil
}

// checkClaimLimits refuses a PersistentVolumeClaim outside its namespace's LimitRanges'
// bounds on storage.
func (r *resources) checkClaimLimits(ctx context.Context, pvc *corev1.PersistentVolumeClaim) error {
	ranges, err := r.limitRanges(ctx, pvc.Namespace)
	if err != nil {
		return err
	}
	if err := quota.CheckClaim(ranges, pvc); err != nil {
		return forbidden(kinds.MustLookup(kinds.PersistentVolumeClaim), pvc.Name, err.Error())
	}
	return nil
}

// charge is what a creation costs its namespace's quotas: the updates of their status.
type charge struct {
	r   *resources
	obj kinds.Object
	ops []store.Op
}

// newCharge charges obj to its namespace's quotas as this node has them; nil when no
// quota tracks what obj uses.
func (r *resources) newCharge(ctx context.Context, info *kinds.Info, obj kinds.Object) (*charge, error) {
	c := &charge{r: r, obj: obj}
	if err := c.compute(ctx, info, false); err != nil {
		return nil, err
	}
	if len(c.ops) == 0 {
		return nil, nil
	}
	return c, nil
}

// compute reads the quotas (linearizably when fresh) and makes the charge's operations,
// or the refusal.
func (c *charge) compute(ctx context.Context, info *kinds.Info, fresh bool) error {
	qInfo := kinds.MustLookup(kinds.ResourceQuota)
	recs, err := c.r.quotaLists.list(ctx, c.r.store, c.obj.GetNamespace(), fresh)
	if err != nil {
		return storeError(qInfo, "", err)
	}
	c.ops = nil
	if len(recs) == 0 {
		return nil
	}
	recs = slices.Clone(recs) // the list is shared with other creates: open a copy
	quotas := make([]*corev1.ResourceQuota, len(recs))
	byName := map[string]*store.Object{}
	for i := range recs {
		if recs[i], err = c.r.atRest.openObject(qInfo, recs[i]); err != nil {
			return storeError(qInfo, recs[i].Name, err)
		}
		obj, err := decode(qInfo, &recs[i])
		if err != nil {
			return storeError(qInfo, recs[i].Name, err)
		}
		quotas[i] = obj.(*corev1.ResourceQuota)
		byName[recs[i].Name] = &recs[i]
	}
	charged, err := quota.Charge(quotas, c.obj, c.r.now())
	if err != nil {
		return forbidden(info, c.obj.GetName(), err.Error())
	}
	for _, q := range charged {
		rec := byName[q.Name]
		op, _, err := c.r.writeOp(qInfo, rec.Key, rec, q)
		if err != nil {
			return err
		}
		c.ops = append(c.ops, op)
	}
	return nil
}

// chargeLocks serialize, on this member, the charges of creates in one namespace (as
// Kubernetes' quota admission evaluates a namespace's creates in turn), so that they do
// not lose races to each other; members still race, and the store decides.
type chargeLocks [64]sync.Mutex

func (l *chargeLocks) lock(ns string) func() {
	h := fnv.New32a()
	h.Write([]byte(ns))
	m := &l[h.Sum32()%uint32(len(l))]
	m.Lock()
	return m.Unlock
}

package endpointslice

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
)

// Group is a set of endpoints that share an address type and ports: the endpoints of
// one set of slices.
type Group struct {
	AddressType discoveryv1.AddressType
	Ports       []discoveryv1.EndpointPort
	// Endpoints by their first address.
	Endpoints map[string]discoveryv1.Endpoint
}

// Groups collects endpoints into Groups, by address type and ports.
type Groups map[string]*Group

// Add puts ep in the group of t and ports.
func (gs Groups) Add(t discoveryv1.AddressType, ports []discoveryv1.EndpointPort, ep discoveryv1.Endpoint) {
	k := groupKey(t, ports)
	g := gs[k]
	if g == nil {
		g = &Group{AddressType: t, Ports: ports, Endpoints: map[string]discoveryv1.Endpoint{}}
		gs[k] = g
	}
	g.Endpoints[ep.Addresses[0]] = ep
}

// Slicing is how one controller keeps one Service's slices: the EndpointSlice
// controller's from the Service's pods, the mirroring controller's from its Endpoints.
type Slicing struct {
	// New is an empty slice of the Service with t and ports, its metadata set.
	New func(t discoveryv1.AddressType, ports []discoveryv1.EndpointPort) *discoveryv1.EndpointSlice
	// SetMeta gives a slice the metadata (labels, annotations, owner) it should have.
	SetMeta func(es *discoveryv1.EndpointSlice)
	// Max is how many endpoints a slice holds at most.
	Max int
	// Placeholder keeps one empty IPv4 slice when there is no endpoint at all.
	Placeholder bool
}

// Plan computes the changes that bring current (the Service's slices this controller
// manages) to the endpoints of groups, changing as few slices as it can: an endpoint
// stays in the slice it is in (updated in place when it changes); a slice that loses
// endpoints is rewritten without them; new endpoints fill the slices being rewritten
// anyway before any other, and only then get new slices. groups is consumed.
func (s Slicing) Plan(groups Groups, current []*discoveryv1.EndpointSlice) Changes {
	var ch Changes
	kept := 0 // slices left after the changes
	existing := map[string][]*discoveryv1.EndpointSlice{}
	for _, es := range sortedByName(current) {
		k := groupKey(es.AddressType, es.Ports)
		if groups[k] == nil {
			ch.Delete = append(ch.Delete, es)
			continue
		}
		existing[k] = append(existing[k], es)
	}
	for _, k := range sortedKeys(groups) {
		g := groups[k]
		var changed, unchanged []*discoveryv1.EndpointSlice
		// Endpoints stay where they are, updated in place; those gone are dropped.
		for _, es := range existing[k] {
			next := es.DeepCopy()
			next.Endpoints = next.Endpoints[:0]
			for _, e := range es.Endpoints {
				if len(e.Addresses) == 0 {
					continue
				}
				want, ok := g.Endpoints[e.Addresses[0]]
				if !ok {
					continue
				}
				delete(g.Endpoints, e.Addresses[0])
				next.Endpoints = append(next.Endpoints, want)
			}
			s.SetMeta(next)
			if equality.Semantic.DeepEqual(next, es) {
				unchanged = append(unchanged, es)
			} else {
				changed = append(changed, next)
			}
		}
		// New endpoints fill the slices being rewritten, then those that are not, then
		// new ones.
		add := make([]discoveryv1.Endpoint, 0, len(g.Endpoints))
		for _, a := range sortedKeys(g.Endpoints) {
			add = append(add, g.Endpoints[a])
		}
		fill := func(es *discoveryv1.EndpointSlice) {
			n := min(s.Max-len(es.Endpoints), len(add))
			if n > 0 {
				es.Endpoints = append(es.Endpoints, add[:n]...)
				add = add[n:]
			}
		}
		for _, es := range changed {
			fill(es)
		}
		for i, es := range unchanged {
			if len(add) == 0 {
				break
			}
			if len(es.Endpoints) < s.Max {
				next := es.DeepCopy()
				fill(next)
				changed = append(changed, next)
				unchanged[i] = nil
			}
		}
		for _, es := range changed {
			if len(es.Endpoints) == 0 {
				ch.Delete = append(ch.Delete, es)
			} else {
				ch.Update = append(ch.Update, es)
				kept++
			}
		}
		for _, es := range unchanged {
			if es != nil {
				kept++
			}
		}
		for len(add) > 0 {
			es := s.New(g.AddressType, g.Ports)
			fill(es)
			ch.Create = append(ch.Create, es)
			kept++
		}
	}
	if kept > 0 || !s.Placeholder {
		return ch
	}
	// No endpoint at all: one empty slice stays, Kubernetes' placeholder.
	for i, es := range ch.Delete {
		if len(es.Ports) == 0 && len(es.Endpoints) == 0 && es.AddressType == discoveryv1.AddressTypeIPv4 {
			next := es.DeepCopy()
			s.SetMeta(next)
			if !equality.Semantic.DeepEqual(next, es) {
				ch.Update = append(ch.Update, next)
			}
			ch.Delete = slices.Delete(ch.Delete, i, i+1)
			return ch
		}
	}
	ch.Create = append(ch.Create, s.New(discoveryv1.AddressTypeIPv4, nil))
	return ch
}

// groupKey identifies an address type and a set of ports whatever their order.
func groupKey(t discoveryv1.AddressType, ports []discoveryv1.EndpointPort) string {
	keys := make([]string, len(ports))
	for i, p := range ports {
		keys[i] = fmt.Sprintf("%s/%s/%d/%s", deref(p.Name), deref(p.Protocol), deref(p.Port), deref(p.AppProtocol))
	}
	slices.Sort(keys)
	return string(t) + ":" + strings.Join(keys, ",")
}

func deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}

// Changes are the writes that bring a Service's slices to what its endpoints are.
type Changes struct {
	Create, Update, Delete []*discoveryv1.EndpointSlice
}

// Writer writes a controller's slices and remembers the resourceVersion of each of its
// writes, per Service: the informer cache may not yet show a slice the controller just
// wrote, and a sync from that stale cache would write twice (Kubernetes'
// endpointSliceTracker).
type Writer struct {
	cs *client.Clientset
	// managedBy is the discoveryv1.LabelManagedBy value of the controller's slices.
	managedBy string
	mu        sync.Mutex
	// written maps a Service to its slices' names and the resourceVersion written, 0
	// for a deletion.
	written map[string]map[string]int64
	// waiting are the Services last found stale: any event of their slices syncs them.
	waiting map[string]bool
}

// NewWriter makes the Writer of the controller whose slices are labelled managedBy,
// writing through cs.
func NewWriter(cs *client.Clientset, managedBy string) *Writer {
	return &Writer{cs: cs, managedBy: managedBy, written: map[string]map[string]int64{}}
}

// ServiceOf is the Service a slice of the Writer's controller belongs to (false: not
// one of its slices).
func (w *Writer) ServiceOf(es *discoveryv1.EndpointSlice) (string, bool) {
	if es.Labels[discoveryv1.LabelManagedBy] != w.managedBy {
		return "", false
	}
	svc, ok := es.Labels[discoveryv1.LabelServiceName]
	return svc, ok && svc != ""
}

// Track indexes inf's slices of the Writer's controller under index by their Service's
// key ("namespace/name"), and calls changed with that key on every event of such a
// slice but those of the Writer's own writes.
func (w *Writer) Track(inf *cache.Informer[*discoveryv1.EndpointSlice], index string, changed func(key string)) {
	keyOf := func(es *discoveryv1.EndpointSlice) (string, bool) {
		svc, ok := w.ServiceOf(es)
		return es.Namespace + "/" + svc, ok
	}
	inf.AddIndexer(index, func(es *discoveryv1.EndpointSlice) []string {
		if k, ok := keyOf(es); ok {
			return []string{k}
		}
		return nil
	})
	event := func(es *discoveryv1.EndpointSlice, deleted bool) {
		if k, ok := keyOf(es); ok && w.observe(k, es, deleted) {
			changed(k)
		}
	}
	inf.AddHandler(cache.Handler[*discoveryv1.EndpointSlice]{
		OnAdd:    func(es *discoveryv1.EndpointSlice) { event(es, false) },
		OnUpdate: func(_, es *discoveryv1.EndpointSlice) { event(es, false) },
		OnDelete: func(es *discoveryv1.EndpointSlice) { event(es, true) }})
}

// Apply writes the changes of Service svc ("namespace/name"), remembering each write.
func (w *Writer) Apply(ctx context.Context, svc string, ch Changes) error {
	var errs []error
	for _, es := range ch.Delete {
		if _, err := w.cs.EndpointSlices.Delete(ctx, es.Namespace, es.Name, client.DeleteOptions{}); err != nil && !client.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete endpointslice %s: %w", cache.Key(es), err))
			continue
		}
		w.deleted(svc, es.Name)
	}
	for _, es := range ch.Update {
		out, err := w.cs.EndpointSlices.Update(ctx, es)
		if err != nil {
			errs = append(errs, fmt.Errorf("update endpointslice %s: %w", cache.Key(es), err))
			continue
		}
		w.wrote(svc, out)
	}
	for _, es := range ch.Create {
		out, err := w.cs.EndpointSlices.Create(ctx, es)
		if err != nil {
			errs = append(errs, fmt.Errorf("create endpointslice for service %s: %w", svc, err))
			continue
		}
		w.wrote(svc, out)
	}
	return errors.Join(errs...)
}

func rv(es *discoveryv1.EndpointSlice) int64 {
	n, _ := strconv.ParseInt(es.ResourceVersion, 10, 64)
	return n
}

func (w *Writer) wrote(svc string, es *discoveryv1.EndpointSlice) { w.set(svc, es.Name, rv(es)) }
func (w *Writer) deleted(svc, name string)                        { w.set(svc, name, 0) }

func (w *Writer) set(svc, name string, v int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.written[svc] == nil {
		w.written[svc] = map[string]int64{}
	}
	w.written[svc][name] = v
}

// Own says whether es is as the controller's last write of it left it (deleted: whether
// the controller deleted it), so that its event needs no sync of the Service: the sync
// that wrote it knew all it says (Kubernetes' endpointSliceTracker.ShouldSync). An event
// that comes before the write's reply is recorded is not known as own, and syncs; so
// does any event of a Service whose sync found the cache stale and waits for it.
func (w *Writer) Own(svc string, es *discoveryv1.EndpointSlice, deleted bool) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	want, ok := w.written[svc][es.Name]
	if !ok || w.waiting[svc] {
		return false
	}
	if deleted {
		return want == 0
	}
	return want > 0 && want == rv(es)
}

// observe takes an event of a slice of Service svc and says whether it needs a sync (it
// is not Own). A slice deleted, by the controller or by another, is forgotten: no cache
// will show it again (its name is not reused), so no sync waits for it (Kubernetes'
// endpointSliceTracker.HandleDeletion). Remembered, a slice written by the controller and
// deleted by another made every later sync of the Service find the cache stale, and the
// slice was never made again.
func (w *Writer) observe(svc string, es *discoveryv1.EndpointSlice, deleted bool) bool {
	own := w.Own(svc, es, deleted)
	if deleted {
		w.mu.Lock()
		delete(w.written[svc], es.Name)
		if len(w.written[svc]) == 0 {
			delete(w.written, svc)
		}
		w.mu.Unlock()
	}
	return !own
}

// Stale says whether the cache's slices of svc are older than what the controller
// wrote; writes the cache has caught up with are forgotten.
func (w *Writer) Stale(svc string, current []*discoveryv1.EndpointSlice) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	written := w.written[svc]
	if len(written) == 0 {
		delete(w.waiting, svc)
		return false
	}
	seen := map[string]int64{}
	for _, es := range current {
		seen[es.Name] = rv(es)
	}
	stale := false
	for name, want := range written {
		got, present := seen[name]
		switch {
		case want == 0 && present, want > 0 && (!present || got < want):
			stale = true
		default:
			delete(written, name)
		}
	}
	if len(written) == 0 {
		delete(w.written, svc)
	}
	if stale {
		if w.waiting == nil {
			w.waiting = map[string]bool{}
		}
		w.waiting[svc] = true
	} else {
		delete(w.waiting, svc)
	}
	return stale
}

func sortedByName(in []*discoveryv1.EndpointSlice) []*discoveryv1.EndpointSlice {
	out := slices.Clone(in)
	slices.SortFunc(out, func(a, b *discoveryv1.EndpointSlice) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

package cache

import (
	"slices"
	"strings"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/skiffhq/skiff/kinds"
)

// Key is how caches and work queues name objects: "namespace/name", or "name" for
// cluster-scoped ones (client-go's MetaNamespaceKeyFunc).
func Key(obj kinds.Object) string {
	if ns := obj.GetNamespace(); ns != "" {
		return ns + "/" + obj.GetName()
	}
	return obj.GetName()
}

// SplitKey is the inverse of Key.
func SplitKey(key string) (namespace, name string) {
	for i := 0; i < len(key); i++ {
		if key[i] == '/' {
			return key[:i], key[i+1:]
		}
	}
	return "", key
}

// IndexFunc returns the values an object is indexed under.
type IndexFunc[T kinds.Object] func(obj T) []string

// The standard indexes.
const (
	IndexNamespace = "namespace"
	// IndexOwner indexes objects by the uids of their owners.
	IndexOwner = "owner"
	// IndexNodeName indexes pods by spec.nodeName.
	IndexNodeName = "nodeName"
	// IndexLabels indexes objects by each of their labels (ByLabels), for ListSelected.
	IndexLabels = "labels"
	// IndexOrphan indexes the objects that have no controller by namespace (ByOrphan).
	IndexOrphan = "orphan"
)

// ByNamespace indexes by metadata.namespace.
func ByNamespace[T kinds.Object](obj T) []string { return []string{obj.GetNamespace()} }

// ByOwner indexes by every owner reference's uid.
func ByOwner[T kinds.Object](obj T) []string {
	refs := obj.GetOwnerReferences()
	out := make([]string, 0, len(refs))
	for _, r := range refs {
		out = append(out, string(r.UID))
	}
	return out
}

// ByOrphan indexes an object without a controller reference under its namespace, and
// one with a controller under nothing: a controller finds the orphans it may adopt
// without reading every object of the namespace (Kubernetes' PodControllerIndex keeps
// a namespace's orphans under one key the same way).
func ByOrphan[T kinds.Object](obj T) []string {
	if metav1.GetControllerOfNoCopy(obj) != nil {
		return nil
	}
	return []string{obj.GetNamespace()}
}

// ByLabels indexes by every label, within the object's namespace (LabelValue).
func ByLabels[T kinds.Object](obj T) []string {
	l := obj.GetLabels()
	out := make([]string, 0, len(l))
	for k, v := range l {
		out = append(out, LabelValue(obj.GetNamespace(), k, v))
	}
	return out
}

// LabelValue is the value ByLabels indexes an object of namespace under for its label
// key=value: "namespace/key=value" (a namespace has no "/", a label key no "=").
func LabelValue(namespace, key, value string) string {
	return namespace + "/" + key + "=" + value
}

// indexedStore is a thread-safe map of objects by key with secondary indexes.
type indexedStore[T kinds.Object] struct {
	mu       sync.RWMutex
	items    map[string]T
	indexers map[string]IndexFunc[T]
	// indexes hold, for each index and value, the objects under it by key: a read
	// by index takes them from there, not by a lookup of each key in items (the
	// ReplicaSet controller reads its thousand pods by owner at each sync, issue 26).
	indexes map[string]map[string]map[string]T // index -> value -> key -> object
}

func newIndexedStore[T kinds.Object]() *indexedStore[T] {
	return &indexedStore[T]{items: map[string]T{}, indexers: map[string]IndexFunc[T]{}, indexes: map[string]map[string]map[string]T{}}
}

func (s *indexedStore[T]) addIndexer(name string, fn IndexFunc[T]) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.indexers[name] = fn
	idx := map[string]map[string]T{}
	s.indexes[name] = idx
	for k, obj := range s.items {
		for _, v := range fn(obj) {
			addTo(idx, v, k, obj)
		}
	}
}

func addTo[T kinds.Object](idx map[string]map[string]T, value, key string, obj T) {
	set := idx[value]
	if set == nil {
		set = map[string]T{}
		idx[value] = set
	}
	set[key] = obj
}

// put stores obj and returns what it replaced.
func (s *indexedStore[T]) put(obj T) (old T, existed bool) {
	k := Key(obj)
	s.mu.Lock()
	defer s.mu.Unlock()
	old, existed = s.items[k]
	if existed {
		s.unindex(k, old)
	}
	s.items[k] = obj
	for name, fn := range s.indexers {
		for _, v := range fn(obj) {
			addTo(s.indexes[name], v, k, obj)
		}
	}
	return old, existed
}

func (s *indexedStore[T]) remove(key string) (old T, existed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, existed = s.items[key]
	if existed {
		s.unindex(key, old)
		delete(s.items, key)
	}
	return old, existed
}

func (s *indexedStore[T]) unindex(key string, obj T) {
	for name, fn := range s.indexers {
		idx := s.indexes[name]
		for _, v := range fn(obj) {
			if set := idx[v]; set != nil {
				delete(set, key)
				if len(set) == 0 {
					delete(idx, v)
				}
			}
		}
	}
}

func (s *indexedStore[T]) keys() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.items))
	for k := range s.items {
		out = append(out, k)
	}
	return out
}

// Lister reads an informer's cache. Objects it returns are shared: do not modify them
// (DeepCopy first).
type Lister[T kinds.Object] struct {
	s *indexedStore[T]
}

// Get returns the cached object.
func (l *Lister[T]) Get(namespace, name string) (T, bool) {
	k := name
	if namespace != "" {
		k = namespace + "/" + name
	}
	return l.GetByKey(k)
}

// GetByKey returns the cached object by its Key.
func (l *Lister[T]) GetByKey(key string) (T, bool) {
	l.s.mu.RLock()
	defer l.s.mu.RUnlock()
	obj, ok := l.s.items[key]
	return obj, ok
}

// List returns the cached objects whose labels match sel, sorted by key.
func (l *Lister[T]) List(sel labels.Selector) []T {
	l.s.mu.RLock()
	keyed := make([]keyedObj[T], 0, len(l.s.items))
	everything := sel.Empty()
	for k, obj := range l.s.items {
		if everything || sel.Matches(labels.Set(obj.GetLabels())) {
			keyed = append(keyed, keyedObj[T]{k, obj})
		}
	}
	l.s.mu.RUnlock()
	return sortKeyed(keyed)
}

// ListNamespace is List within one namespace (uses the namespace index when present).
func (l *Lister[T]) ListNamespace(namespace string, sel labels.Selector) []T {
	l.s.mu.RLock()
	_, indexed := l.s.indexers[IndexNamespace]
	l.s.mu.RUnlock()
	if indexed {
		objs := l.ByIndex(IndexNamespace, namespace)
		out := objs[:0]
		for _, obj := range objs {
			if sel.Matches(labels.Set(obj.GetLabels())) {
				out = append(out, obj)
			}
		}
		return out
	}
	var out []T
	for _, obj := range l.List(sel) {
		if obj.GetNamespace() == namespace {
			out = append(out, obj)
		}
	}
	return out
}

// ListSelected returns the objects of namespace whose labels hold every key and value of
// set (a Service's or a ReplicaSet's selector; an empty set picks the whole namespace),
// sorted by key. With the IndexLabels index it looks only at the objects carrying the
// set's rarest label: a selector picks few of a namespace's objects, whom List would
// match one by one. Without the index it is ListNamespace.
func (l *Lister[T]) ListSelected(namespace string, set map[string]string) []T {
	sel := labels.SelectorFromValidatedSet(set)
	l.s.mu.RLock()
	idx, indexed := l.s.indexes[IndexLabels]
	if !indexed || len(set) == 0 {
		l.s.mu.RUnlock()
		return l.ListNamespace(namespace, sel)
	}
	var rarest map[string]T
	first := true
	for k, v := range set {
		if objs := idx[LabelValue(namespace, k, v)]; first || len(objs) < len(rarest) {
			rarest, first = objs, false
		}
	}
	keyed := make([]keyedObj[T], 0, len(rarest))
	for k, obj := range rarest {
		if sel.Matches(labels.Set(obj.GetLabels())) {
			keyed = append(keyed, keyedObj[T]{k, obj})
		}
	}
	l.s.mu.RUnlock()
	return sortKeyed(keyed)
}

// ByIndex returns the objects indexed under value, sorted by key.
func (l *Lister[T]) ByIndex(index, value string) []T {
	l.s.mu.RLock()
	set := l.s.indexes[index][value]
	keyed := make([]keyedObj[T], 0, len(set))
	for k, obj := range set {
		keyed = append(keyed, keyedObj[T]{k, obj})
	}
	l.s.mu.RUnlock()
	return sortKeyed(keyed)
}

// ByIndexAnyOrder is ByIndex in no particular order (as client-go's ByIndex), for a
// caller that orders them itself or needs no order: sorting a ReplicaSet's thousand
// pods at each of its syncs was most of the read's cost.
func (l *Lister[T]) ByIndexAnyOrder(index, value string) []T {
	l.s.mu.RLock()
	defer l.s.mu.RUnlock()
	set := l.s.indexes[index][value]
	out := make([]T, 0, len(set))
	for _, obj := range set {
		out = append(out, obj)
	}
	return out
}

// Len is the number of cached objects.
func (l *Lister[T]) Len() int {
	l.s.mu.RLock()
	defer l.s.mu.RUnlock()
	return len(l.s.items)
}

// keyedObj is an object with its key, as the store holds it: sorting by the stored
// key makes no string per comparison (a List of 50,000 Events made 1.6 million).
type keyedObj[T kinds.Object] struct {
	key string
	obj T
}

// sortKeyed sorts objects by key and returns them.
func sortKeyed[T kinds.Object](keyed []keyedObj[T]) []T {
	slices.SortFunc(keyed, func(a, b keyedObj[T]) int { return strings.Compare(a.key, b.key) })
	out := make([]T, len(keyed))
	for i := range keyed {
		out[i] = keyed[i].obj
	}
	return out
}

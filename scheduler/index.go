package scheduler

import (
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// The cache's indexes, kept up to date as pods and nodes come and go, so that a cycle's
// PreFilter and PreScore read what they need without scanning every pod:
//   - the counted pods by namespace and label (and label key), so that the pods an
//     affinity term or a spread constraint selects are found among the few that carry
//     one of its labels;
//   - the affinity terms the counted pods carry, grouped (the replicas of a Deployment
//     share theirs) and counted by topology domain, so that the terms a new pod must
//     respect are found by its labels, each with its counts ready;
//   - the nodes by label, so that a spread's domains are known without a pass over
//     the nodes;
//   - the namespaces' labels, for namespaceSelector.
//
// A pod's entries are made from its labels and its node's labels when it is counted,
// and removed with the same; when either changes, the pod is taken out and put back.

type nsLabel struct{ ns, key, value string }
type nsKey struct{ ns, key string }
type labelPair struct{ key, value string }

type podSet = map[*podState]struct{}
type groupSet = map[*termGroup]struct{}
type nodeInfoSet = map[*NodeInfo]struct{}

// termKind is which of a pod's affinity lists a term is in.
type termKind uint8

const (
	requiredAffinity termKind = iota
	requiredAntiAffinity
	preferredAffinity
	preferredAntiAffinity
)

// affinityTerm is a PodAffinityTerm, parsed, of a pod (its holder).
type affinityTerm struct {
	selector labels.Selector
	// namespaces are the namespaces the term names, or the holder's own when it names
	// none and has no namespaceSelector.
	namespaces []string
	// nsSelector selects further namespaces by their labels: labels.Nothing() when the
	// term has none, labels.Everything() for {} (every namespace).
	nsSelector  labels.Selector
	hasNSSel    bool
	topologyKey string
	weight      int32 // of a preferred term
}

// matches reports whether the term selects pod, whose namespace has nsLabels
// (Kubernetes' AffinityTerm.Matches).
func (t *affinityTerm) matches(pod *corev1.Pod, nsLabels labels.Set) bool {
	if !slices.Contains(t.namespaces, pod.Namespace) && !(t.hasNSSel && t.nsSelector.Matches(nsLabels)) {
		return false
	}
	return t.selector.Matches(labels.Set(pod.Labels))
}

// podAffinity is a pod's inter-pod affinity and anti-affinity, parsed once.
type podAffinity struct {
	terms [4][]affinityTerm // by termKind
}

func (a *podAffinity) required() []affinityTerm     { return a.terms[requiredAffinity] }
func (a *podAffinity) requiredAnti() []affinityTerm { return a.terms[requiredAntiAffinity] }

// newPodAffinity parses pod's affinity terms; nil when it has none.
func newPodAffinity(pod *corev1.Pod) (*podAffinity, error) {
	aff := pod.Spec.Affinity
	if aff == nil || (aff.PodAffinity == nil && aff.PodAntiAffinity == nil) {
		return nil, nil
	}
	a := &podAffinity{}
	add := func(kind termKind, t *corev1.PodAffinityTerm, weight int32) error {
		sel, err := metav1.LabelSelectorAsSelector(t.LabelSelector)
		if err != nil {
			return err
		}
		nsSel, err := metav1.LabelSelectorAsSelector(t.NamespaceSelector)
		if err != nil {
			return err
		}
		at := affinityTerm{selector: sel, namespaces: t.Namespaces, nsSelector: nsSel, hasNSSel: t.NamespaceSelector != nil,
			topologyKey: t.TopologyKey, weight: weight}
		if len(t.Namespaces) == 0 && t.NamespaceSelector == nil {
			at.namespaces = []string{pod.Namespace}
		}
		a.terms[kind] = append(a.terms[kind], at)
		return nil
	}
	var errs []error
	addAll := func(required []corev1.PodAffinityTerm, preferred []corev1.WeightedPodAffinityTerm, reqKind, prefKind termKind) {
		for i := range required {
			errs = append(errs, add(reqKind, &required[i], 0))
		}
		for i := range preferred {
			errs = append(errs, add(prefKind, &preferred[i].PodAffinityTerm, preferred[i].Weight))
		}
	}
	if pa := aff.PodAffinity; pa != nil {
		addAll(pa.RequiredDuringSchedulingIgnoredDuringExecution, pa.PreferredDuringSchedulingIgnoredDuringExecution, requiredAffinity, preferredAffinity)
	}
	if pa := aff.PodAntiAffinity; pa != nil {
		addAll(pa.RequiredDuringSchedulingIgnoredDuringExecution, pa.PreferredDuringSchedulingIgnoredDuringExecution, requiredAntiAffinity, preferredAntiAffinity)
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return a, nil
}

// termGroup is one affinity term as every counted pod that carries it shares it,
// counted by the topology domains of their nodes.
type termGroup struct {
	kind termKind
	term affinityTerm
	key  string
	// members is how many counted pods carry the term.
	members int
	// counts holds, by value of the term's topology key, how many members are counted
	// on a node with that value (members on nodes without the key are not).
	counts map[string]int
	// where the group is indexed: by a label, a label key, or neither.
	at     labelPair
	atKind uint8 // 0: by label, 1: by key, 2: other
}

// groupKey identifies a term: two pods' terms with the same key are the same term.
func groupKey(kind termKind, t *affinityTerm) string {
	var b strings.Builder
	b.WriteByte(byte('0' + kind))
	b.WriteByte('|')
	b.WriteString(strconv.Itoa(int(t.weight)))
	b.WriteByte('|')
	b.WriteString(t.topologyKey)
	b.WriteByte('|')
	ns := slices.Clone(t.namespaces)
	slices.Sort(ns)
	b.WriteString(strings.Join(ns, ","))
	b.WriteByte('|')
	if t.hasNSSel {
		b.WriteString(selectorKey(t.nsSelector))
	}
	b.WriteByte('|')
	b.WriteString(selectorKey(t.selector))
	return b.String()
}

// selectorKey is a selector's canonical string; Everything and Nothing both print as
// "", so they get marks of their own.
func selectorKey(sel labels.Selector) string {
	if s := sel.String(); s != "" {
		return s
	}
	if sel.Empty() {
		return "*"
	}
	return "!"
}

// index holds the cache's indexes. Its methods run under the cache's lock.
type index struct {
	byLabel map[nsLabel]podSet
	byKey   map[nsKey]podSet
	byNS    map[string]podSet

	groups        map[string]*termGroup
	groupsByLabel map[labelPair]groupSet
	groupsByKey   map[string]groupSet
	groupsOther   groupSet

	// nodeLabels holds the nodes that exist by label (key, then value); nodeKeys
	// counts them by key.
	nodeLabels map[string]map[string]nodeInfoSet
	nodeKeys   map[string]int

	namespaces map[string]labels.Set
}

func newIndex() *index {
	return &index{
		byLabel: map[nsLabel]podSet{}, byKey: map[nsKey]podSet{}, byNS: map[string]podSet{},
		groups: map[string]*termGroup{}, groupsByLabel: map[labelPair]groupSet{}, groupsByKey: map[string]groupSet{},
		groupsOther: groupSet{}, nodeLabels: map[string]map[string]nodeInfoSet{}, nodeKeys: map[string]int{},
		namespaces: map[string]labels.Set{},
	}
}

func addTo[K comparable, V comparable](m map[K]map[V]struct{}, k K, v V) {
	s, ok := m[k]
	if !ok {
		s = map[V]struct{}{}
		m[k] = s
	}
	s[v] = struct{}{}
}

func removeFrom[K comparable, V comparable](m map[K]map[V]struct{}, k K, v V) {
	if s, ok := m[k]; ok {
		delete(s, v)
		if len(s) == 0 {
			delete(m, k)
		}
	}
}

// nodeLabelsOf is what a pod's node says of its domains: nothing for a node that is
// gone.
func nodeLabelsOf(ni *NodeInfo) map[string]string {
	if ni == nil || ni.Node == nil {
		return nil
	}
	return ni.Node.Labels
}

// addPod indexes a counted pod by its labels and its terms.
func (x *index) addPod(ps *podState) {
	pod := ps.info.Pod
	x.addLabels(ps, pod.Labels)
	aff := ps.info.affinity
	if aff == nil {
		return
	}
	for kind := range aff.terms {
		for i := range aff.terms[kind] {
			t := &aff.terms[kind][i]
			if _, ok := t.selector.Requirements(); !ok {
				continue // labels.Nothing(): the term selects no pod
			}
			g := x.group(termKind(kind), t)
			g.members++
			ps.groups = append(ps.groups, g)
		}
	}
	x.countGroups(ps, nodeLabelsOf(ps.ni), 1)
}

// removePod undoes addPod.
func (x *index) removePod(ps *podState) {
	x.removeLabels(ps, ps.info.Pod.Labels)
	if len(ps.groups) == 0 {
		return
	}
	x.countGroups(ps, nodeLabelsOf(ps.ni), -1)
	for _, g := range ps.groups {
		if g.members--; g.members == 0 {
			x.dropGroup(g)
		}
	}
	ps.groups = nil
}

func (x *index) addLabels(ps *podState, l map[string]string) {
	ns := ps.info.Pod.Namespace
	for k, v := range l {
		addTo(x.byLabel, nsLabel{ns, k, v}, ps)
		addTo(x.byKey, nsKey{ns, k}, ps)
	}
	addTo(x.byNS, ns, ps)
}

func (x *index) removeLabels(ps *podState, l map[string]string) {
	ns := ps.info.Pod.Namespace
	for k, v := range l {
		removeFrom(x.byLabel, nsLabel{ns, k, v}, ps)
		removeFrom(x.byKey, nsKey{ns, k}, ps)
	}
	removeFrom(x.byNS, ns, ps)
}

// countGroups adds delta to the counts of ps's terms in the domains of nodeLabels.
func (x *index) countGroups(ps *podState, nodeLabels map[string]string, delta int) {
	for _, g := range ps.groups {
		v, ok := nodeLabels[g.term.topologyKey]
		if !ok {
			continue
		}
		if g.counts[v] += delta; g.counts[v] == 0 {
			delete(g.counts, v)
		}
	}
}

// group returns the group of the term, making and indexing it when it is new. The
// group is indexed under one label of its selector that a selected pod must carry (an
// equality), or else one label key, so that the groups that may select a pod are found
// from the pod's labels.
func (x *index) group(kind termKind, t *affinityTerm) *termGroup {
	key := groupKey(kind, t)
	if g, ok := x.groups[key]; ok {
		return g
	}
	g := &termGroup{kind: kind, term: *t, key: key, counts: map[string]int{}, atKind: 2}
	reqs, _ := t.selector.Requirements()
	for i := range reqs {
		r := &reqs[i]
		switch r.Operator() {
		case selection.Equals, selection.DoubleEquals, selection.In:
			if vals := r.ValuesUnsorted(); len(vals) == 1 {
				g.at, g.atKind = labelPair{r.Key(), vals[0]}, 0
			}
		case selection.Exists:
			if g.atKind == 2 {
				g.at, g.atKind = labelPair{key: r.Key()}, 1
			}
		}
		if g.atKind == 0 {
			break
		}
	}
	switch g.atKind {
	case 0:
		addTo(x.groupsByLabel, g.at, g)
	case 1:
		addTo(x.groupsByKey, g.at.key, g)
	default:
		x.groupsOther[g] = struct{}{}
	}
	x.groups[key] = g
	return g
}

func (x *index) dropGroup(g *termGroup) {
	delete(x.groups, g.key)
	switch g.atKind {
	case 0:
		removeFrom(x.groupsByLabel, g.at, g)
	case 1:
		removeFrom(x.groupsByKey, g.at.key, g)
	default:
		delete(x.groupsOther, g)
	}
}

// eachGroupSelecting calls fn for every group of the kinds in mask whose term selects
// pod.
func (x *index) eachGroupSelecting(pod *corev1.Pod, mask uint8, fn func(g *termGroup)) {
	if len(x.groups) == 0 {
		return
	}
	nsLabels := x.namespaces[pod.Namespace]
	visit := func(s groupSet) {
		for g := range s {
			if mask&(1<<g.kind) != 0 && g.term.matches(pod, nsLabels) {
				fn(g)
			}
		}
	}
	for k, v := range pod.Labels {
		if s, ok := x.groupsByLabel[labelPair{k, v}]; ok {
			visit(s)
		}
		if s, ok := x.groupsByKey[k]; ok {
			visit(s)
		}
	}
	visit(x.groupsOther)
}

// termNamespaces returns the namespaces whose pods t may select.
func (x *index) termNamespaces(t *affinityTerm) []string {
	if !t.hasNSSel {
		return t.namespaces
	}
	var out []string
	for ns := range x.byNS {
		if slices.Contains(t.namespaces, ns) || t.nsSelector.Matches(x.namespaces[ns]) {
			out = append(out, ns)
		}
	}
	return out
}

// eachSelected calls fn for every counted pod of the namespaces that sel selects. It
// reads, in each namespace, the smallest of the pod sets a selected pod must be in: the
// pods with one of an equality's values, with a key that must exist, or all.
func (x *index) eachSelected(namespaces []string, sel labels.Selector, fn func(ps *podState)) {
	reqs, selectable := sel.Requirements()
	if !selectable {
		return // labels.Nothing()
	}
	var sets []podSet
	for _, ns := range namespaces {
		all, ok := x.byNS[ns]
		if !ok {
			continue
		}
		best, size := []podSet{all}, len(all)
		for i := range reqs {
			r := &reqs[i]
			sets = sets[:0]
			n := 0
			switch r.Operator() {
			case selection.Equals, selection.DoubleEquals, selection.In:
				for _, v := range r.ValuesUnsorted() {
					if s, ok := x.byLabel[nsLabel{ns, r.Key(), v}]; ok {
						sets = append(sets, s)
						n += len(s)
					}
				}
			case selection.Exists:
				if s, ok := x.byKey[nsKey{ns, r.Key()}]; ok {
					sets = append(sets, s)
					n += len(s)
				}
			default:
				continue
			}
			if n < size {
				best, size = slices.Clone(sets), n
			}
			if size == 0 {
				break
			}
		}
		for _, s := range best {
			for ps := range s {
				if sel.Matches(labels.Set(ps.info.Pod.Labels)) {
					fn(ps)
				}
			}
		}
	}
}

// addNode indexes an existing node by its labels.
func (x *index) addNode(ni *NodeInfo, l map[string]string) {
	for k, v := range l {
		vals, ok := x.nodeLabels[k]
		if !ok {
			vals = map[string]nodeInfoSet{}
			x.nodeLabels[k] = vals
		}
		addTo(vals, v, ni)
		x.nodeKeys[k]++
	}
}

// removeNode undoes addNode.
func (x *index) removeNode(ni *NodeInfo, l map[string]string) {
	for k, v := range l {
		if vals, ok := x.nodeLabels[k]; ok {
			removeFrom(vals, v, ni)
			if len(vals) == 0 {
				delete(x.nodeLabels, k)
			}
		}
		if x.nodeKeys[k]--; x.nodeKeys[k] <= 0 {
			delete(x.nodeKeys, k)
		}
	}
}

// markDomain adds to set the nodes whose label key has value.
func (x *index) markDomain(set nodeSet, key, value string) {
	for ni := range x.nodeLabels[key][value] {
		set.add(ni.index)
	}
}

// nodeSet is a set of the nodes of one cycle, by their place in the cache's node list
// (NodeInfo.index, which does not change while the cycle holds the cache's lock): a
// plugin's PreFilter marks the nodes, its Filter tests one in a few instructions.
type nodeSet []uint64

func newNodeSet(nodes int) nodeSet { return make(nodeSet, (nodes+63)/64) }

func (s nodeSet) add(i int) {
	if i >= 0 && i/64 < len(s) {
		s[i/64] |= 1 << (i % 64)
	}
}

func (s nodeSet) has(i int) bool { return i >= 0 && i/64 < len(s) && s[i/64]&(1<<(i%64)) != 0 }

// intersect keeps in s the nodes that are also in o.
func (s nodeSet) intersect(o nodeSet) {
	for i := range s {
		s[i] &= o[i]
	}
}

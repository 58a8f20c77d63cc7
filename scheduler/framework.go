package scheduler

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Code says how a plugin judged a node.
type Code int

const (
	// Success: the node passes.
	Success Code = iota
	// Unschedulable: the pod does not fit the node now; Reasons say why.
	Unschedulable
	// Error: the plugin could not judge (a bug or bad input); the cycle fails.
	Error
	// Skip: returned by PreFilter or PreScore when the pod asks nothing of the plugin
	// (no affinity, no spread constraints): the cycle runs neither its Filter nor its
	// Score, so that such pods pay nothing for it.
	Skip
)

// Status is a filter's verdict. A nil *Status is Success.
type Status struct {
	Code Code
	// Reasons are user-facing, counted across nodes in the pod's FailedScheduling
	// message: "Insufficient cpu", "node(s) didn't match Pod's node affinity/selector".
	Reasons []string
	// Plugin names the plugin that returned it (set by the framework).
	Plugin string
}

// NewStatus makes a status with reasons.
func NewStatus(code Code, reasons ...string) *Status { return &Status{Code: code, Reasons: reasons} }

// IsSuccess reports whether s is nil or Success.
func (s *Status) IsSuccess() bool { return s == nil || s.Code == Success }

func (s *Status) String() string {
	if s.IsSuccess() {
		return "Success"
	}
	return s.Plugin + ": " + strings.Join(s.Reasons, ", ")
}

// Plugin is anything the framework runs; its name is how profiles refer to it.
type Plugin interface {
	Name() string
}

// FilterPlugin rules nodes out for a pod. Filter runs concurrently for different
// nodes and must not modify state, pod or node. It returns nil for a node that passes,
// and otherwise a new Status (the framework records the plugin's name in it).
type FilterPlugin interface {
	Plugin
	Filter(state *CycleState, pod *PodInfo, node *NodeInfo) *Status
}

// PreFilterPlugin is a FilterPlugin that looks at the cluster once per cycle, before
// any node is filtered, and writes what its Filter needs into state (pod affinity
// counts the matching pods by topology domain once, not once per node). It runs with
// the cache locked and may read it, not change it. It returns nil, Skip (the pod asks
// nothing of the plugin: its Filter does not run) or Error; a node it would refuse,
// its Filter refuses, so that every node says why.
type PreFilterPlugin interface {
	FilterPlugin
	PreFilter(state *CycleState, pod *PodInfo, c *Cache) *Status
}

// ScorePlugin ranks the nodes that passed every filter: 0 (worst) to MaxNodeScore.
// Score runs concurrently for different nodes and must not modify state, pod or node.
type ScorePlugin interface {
	Plugin
	Score(state *CycleState, pod *PodInfo, node *NodeInfo) int64
}

// PreScorePlugin is a ScorePlugin that prepares, once per cycle, what its Score reads,
// given the nodes that passed filtering. It returns nil, Skip (its Score does not run,
// and the nodes score 0 for it) or Error. Like PreFilter it may read the locked cache.
type PreScorePlugin interface {
	ScorePlugin
	PreScore(state *CycleState, pod *PodInfo, c *Cache, nodes []*NodeInfo) *Status
}

// ScoreNormalizer is a ScorePlugin whose scores only mean something relative to the
// other nodes': NormalizeScores rewrites them, in place, into 0..MaxNodeScore.
type ScoreNormalizer interface {
	NormalizeScores(state *CycleState, pod *PodInfo, nodes []*NodeInfo, scores []int64)
}

// PodAddSensitive is a FilterPlugin whose verdict on a node can change when a pod is
// bound somewhere (the pod that an affinity asks for arrives; a spread's skew moves),
// not only when nodes change or pods go: a pod it rejected is retried when a pod is
// bound.
type PodAddSensitive interface {
	RetryOnPodAdded()
}

// CycleState carries what one cycle's PreFilter and PreScore plugins computed to their
// Filter and Score, keyed by plugin name. It is written before filtering and scoring,
// on the scheduling goroutine, and only read while nodes are filtered and scored
// concurrently.
type CycleState struct {
	data map[string]any
	// nodeNames, when a PreFilter narrowed them (RestrictNodes), are the only nodes
	// the cycle filters: Kubernetes' PreFilterResult.NodeNames.
	nodeNames map[string]bool
	narrowed  bool
}

// RestrictNodes tells the cycle, from a PreFilter, that no node outside names can fit
// the pod, so that only those are filtered (a DaemonSet pod's affinity to one node
// costs one node's filters, not every node's). Restrictions from several PreFilters
// intersect; an empty set leaves no node.
func (cs *CycleState) RestrictNodes(names map[string]bool) {
	if !cs.narrowed {
		cs.nodeNames, cs.narrowed = names, true
		return
	}
	both := map[string]bool{}
	for n := range names {
		if cs.nodeNames[n] {
			both[n] = true
		}
	}
	cs.nodeNames = both
}

// Write stores a plugin's state for the cycle.
func (cs *CycleState) Write(key string, v any) {
	if cs.data == nil {
		cs.data = map[string]any{}
	}
	cs.data[key] = v
}

// Read returns what Write stored under key, or nil.
func (cs *CycleState) Read(key string) any {
	if cs == nil {
		return nil
	}
	return cs.data[key]
}

// MaxNodeScore is the best score a ScorePlugin gives.
const MaxNodeScore = 100

// Registry is the set of plugins a profile can name. Plugins are registered
// explicitly; a name registers once.
type Registry struct {
	plugins map[string]Plugin
}

// NewRegistry makes an empty registry.
func NewRegistry() *Registry { return &Registry{plugins: map[string]Plugin{}} }

// Register adds p, refusing a second plugin of the same name.
func (r *Registry) Register(p Plugin) error {
	name := p.Name()
	if name == "" {
		return fmt.Errorf("register plugin %T: empty name", p)
	}
	if _, dup := r.plugins[name]; dup {
		return fmt.Errorf("register plugin %q: a plugin of that name is already registered", name)
	}
	r.plugins[name] = p
	return nil
}

// Get returns the plugin registered under name.
func (r *Registry) Get(name string) (Plugin, bool) {
	p, ok := r.plugins[name]
	return p, ok
}

// DefaultRegistry holds the built-in plugins.
func DefaultRegistry() *Registry {
	r := NewRegistry()
	for _, p := range []Plugin{NodeReady{}, NodeResourcesFit{}, NodeAffinity{}, TaintToleration{}, NodePorts{},
		InterPodAffinity{}, PodTopologySpread{}, LeastAllocated{}, BalancedAllocation{}, OwnerSpread{}, VolumeBinding{}} {
		if err := r.Register(p); err != nil {
			panic(err) // the list above has a duplicate: a bug
		}
	}
	return r
}

// WeightedPlugin names a score plugin and its weight.
type WeightedPlugin struct {
	Name   string
	Weight int64
}

// Profile says which plugins run, in order.
type Profile struct {
	Filters []string
	Scores  []WeightedPlugin
}

// DefaultProfile runs every built-in filter, cheapest and most selective first, and
// the built-in scores: those of resources and owners with weight 1 each, those of the
// pod's own preferences (node affinity, pod affinity, topology spread) with weight 2,
// as Kubernetes weighs them.
func DefaultProfile() Profile {
	return Profile{
		Filters: []string{NameNodeReady, NameNodeAffinity, NameTaintToleration, NameNodeResourcesFit, NameNodePorts,
			NameVolumeBinding, NameInterPodAffinity, NamePodTopologySpread},
		Scores: []WeightedPlugin{{NameLeastAllocated, 1}, {NameBalancedAllocation, 1}, {NameOwnerSpread, 1},
			{NameNodeAffinity, 2}, {NameInterPodAffinity, 2}, {NamePodTopologySpread, 2}},
	}
}

// Framework runs a profile's plugins for one pod at a time. It is the scheduler's
// deterministic core: given the same seed, nodes and pods, it places pods the same
// way. It is not safe for concurrent Schedule calls (it rotates where filtering
// starts, from one cycle to the next).
type Framework struct {
	filters []FilterPlugin
	scores  []ScorePlugin
	weights []int64
	// retryOnPodAdd names the filters that implement PodAddSensitive.
	retryOnPodAdd map[string]bool
	// The filters and scores of the current cycle: those whose PreFilter or PreScore
	// did not skip it. Reused from one cycle to the next.
	cycleFilters []FilterPlugin
	cycleScores  []int
	percentage   int
	parallelism  int
	rand         *rand.Rand
	// nextStart is where the next cycle starts filtering, so that successive cycles
	// sample different nodes (Kubernetes' nextStartNodeIndex).
	nextStart int
}

// FrameworkOptions tune a Framework.
type FrameworkOptions struct {
	PercentageOfNodesToScore int
	Parallelism              int
	// Rand breaks ties between equal scores.
	Rand *rand.Rand
}

// NewFramework builds the profile's plugins from reg.
func NewFramework(reg *Registry, prof Profile, opts FrameworkOptions) (*Framework, error) {
	f := &Framework{percentage: opts.PercentageOfNodesToScore, parallelism: max(1, opts.Parallelism), rand: opts.Rand,
		retryOnPodAdd: map[string]bool{}}
	if f.rand == nil {
		f.rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	for _, name := range prof.Filters {
		p, ok := reg.Get(name)
		if !ok {
			return nil, fmt.Errorf("profile: filter plugin %q is not registered", name)
		}
		fp, ok := p.(FilterPlugin)
		if !ok {
			return nil, fmt.Errorf("profile: plugin %q is not a filter plugin", name)
		}
		f.filters = append(f.filters, fp)
		if _, ok := p.(PodAddSensitive); ok {
			f.retryOnPodAdd[name] = true
		}
	}
	for _, w := range prof.Scores {
		p, ok := reg.Get(w.Name)
		if !ok {
			return nil, fmt.Errorf("profile: score plugin %q is not registered", w.Name)
		}
		sp, ok := p.(ScorePlugin)
		if !ok {
			return nil, fmt.Errorf("profile: plugin %q is not a score plugin", w.Name)
		}
		if w.Weight <= 0 {
			return nil, fmt.Errorf("profile: score plugin %q: weight %d must be positive", w.Name, w.Weight)
		}
		f.scores = append(f.scores, sp)
		f.weights = append(f.weights, w.Weight)
	}
	return f, nil
}

// runFilters runs the cycle's filters on one node, stopping at the first that fails.
func (f *Framework) runFilters(state *CycleState, pod *PodInfo, node *NodeInfo) *Status {
	for _, p := range f.cycleFilters {
		if st := p.Filter(state, pod, node); !st.IsSuccess() {
			st.Plugin = p.Name()
			return st
		}
	}
	return nil
}

// RetriesOnPodAdded reports whether a pod some of plugins rejected may fit once another
// pod is bound (see PodAddSensitive).
func (f *Framework) RetriesOnPodAdded(plugins map[string]bool) bool {
	for name := range plugins {
		if f.retryOnPodAdd[name] {
			return true
		}
	}
	return false
}

// preFilter runs the PreFilter plugins and chooses the cycle's filters.
func (f *Framework) preFilter(state *CycleState, pod *PodInfo, c *Cache) error {
	f.cycleFilters = f.cycleFilters[:0]
	for _, p := range f.filters {
		pf, ok := p.(PreFilterPlugin)
		if !ok {
			f.cycleFilters = append(f.cycleFilters, p)
			continue
		}
		st := pf.PreFilter(state, pod, c)
		switch {
		case st.IsSuccess():
			f.cycleFilters = append(f.cycleFilters, p)
		case st.Code == Skip:
		default:
			st.Plugin = p.Name()
			return fmt.Errorf("schedule pod %s: prefilter: %s", pod.Key, st)
		}
	}
	return nil
}

// Result is where a cycle placed a pod.
type Result struct {
	Node string
	// Evaluated is how many nodes were filtered; Feasible how many passed.
	Evaluated, Feasible int
}

// FitError says why no node fits a pod: every node was filtered and failed.
type FitError struct {
	Pod      string
	NumNodes int
	// Reasons counts the nodes that failed, by reason.
	Reasons map[string]int
	// Plugins names the plugins that failed a node.
	Plugins map[string]bool
}

// Error is Kubernetes' message: "0/5 nodes are available: 2 node(s) had untolerated
// taint {k: v}, 3 Insufficient cpu.", each reason after its count, sorted as Kubernetes
// sorts them (as strings, count first).
func (e *FitError) Error() string {
	if e.NumNodes == 0 {
		return "no nodes available to schedule pods"
	}
	reasons := make([]string, 0, len(e.Reasons))
	for r, n := range e.Reasons {
		reasons = append(reasons, fmt.Sprintf("%d %s", n, r))
	}
	sort.Strings(reasons)
	return fmt.Sprintf("0/%d nodes are available: %s.", e.NumNodes, strings.Join(reasons, ", "))
}

// reasonRestricted is Kubernetes' reason for the nodes a PreFilter ruled out by name
// (only NodeAffinity does).
const reasonRestricted = "node(s) didn't satisfy plugin(s) [" + NameNodeAffinity + "]"

// parallelThreshold is the batch size below which filtering and scoring stay on the
// calling goroutine: for fewer nodes, handing work out costs more than it saves.
const parallelThreshold = 512

// Schedule picks a node for pod among the cache's nodes: it runs the PreFilter plugins,
// filters nodes, starting where the last cycle stopped, until it has found
// numFeasibleNodesToFind of them (or checked all), scores those, and picks the best,
// breaking ties at random. It returns a *FitError when no node fits, and another error
// when a plugin failed. The caller holds the cache's lock.
func (f *Framework) Schedule(pod *PodInfo, c *Cache) (Result, error) {
	nodes := c.list
	n := len(nodes)
	if n == 0 {
		return Result{}, &FitError{Pod: pod.Key}
	}
	state := &CycleState{}
	if err := f.preFilter(state, pod, c); err != nil {
		return Result{}, err
	}
	start := f.nextStart % n
	if state.narrowed {
		// Only the named nodes can fit: filter those, in the cache's order, and leave
		// the rotation through all nodes where it was.
		nodes = make([]*NodeInfo, 0, len(state.nodeNames))
		for name := range state.nodeNames {
			if ni := c.nodes[name]; ni != nil && ni.Node != nil {
				nodes = append(nodes, ni)
			}
		}
		slices.SortFunc(nodes, func(a, b *NodeInfo) int { return strings.Compare(a.Name, b.Name) })
		if len(nodes) == 0 {
			return Result{}, &FitError{Pod: pod.Key, NumNodes: n, Reasons: map[string]int{reasonRestricted: n},
				Plugins: map[string]bool{NameNodeAffinity: true}}
		}
		start = 0
	}
	all := n
	n = len(nodes)
	want := numFeasibleNodesToFind(f.percentage, n)
	feasible := make([]*NodeInfo, 0, want)
	var failed []*Status
	processed := 0
	batch := n
	if f.parallelism > 1 && n >= parallelThreshold {
		batch = max(want, parallelThreshold)
	}
	statuses := make([]*Status, min(batch, n))
	// The nodes where preempting pods wait for room are filtered with them counted.
	nominated := c.withNominated(pod)
	for processed < n && len(feasible) < want {
		size := min(batch, n-processed)
		f.parallel(size, func(i int) {
			ni := nodes[(start+processed+i)%n]
			if sim, ok := nominated[ni.Name]; ok {
				ni = sim
			}
			statuses[i] = f.runFilters(state, pod, ni)
		})
		used := size
		for i := 0; i < size; i++ {
			st := statuses[i]
			if st.IsSuccess() {
				feasible = append(feasible, nodes[(start+processed+i)%n])
				if len(feasible) == want {
					used = i + 1
					break
				}
				continue
			}
			if st.Code == Error {
				return Result{}, fmt.Errorf("schedule pod %s: node %s: %s", pod.Key, nodes[(start+processed+i)%n].Name, st)
			}
			failed = append(failed, st)
		}
		processed += used
	}
	if !state.narrowed {
		f.nextStart = (start + processed) % n
	}
	if len(feasible) == 0 {
		fe := &FitError{Pod: pod.Key, NumNodes: all, Reasons: map[string]int{}, Plugins: map[string]bool{}}
		for _, st := range failed {
			for _, r := range st.Reasons {
				fe.Reasons[r]++
			}
			fe.Plugins[st.Plugin] = true
		}
		if left := all - n; left > 0 {
			// The nodes a PreFilter ruled out, in Kubernetes' words for them.
			fe.Reasons[reasonRestricted] += left
			fe.Plugins[NameNodeAffinity] = true
		}
		return Result{Evaluated: processed}, fe
	}
	res := Result{Evaluated: processed, Feasible: len(feasible)}
	switch {
	case len(feasible) == 1:
		res.Node = feasible[0].Name
		return res, nil
	case len(f.scores) == 0:
		res.Node = feasible[f.rand.IntN(len(feasible))].Name
		return res, nil
	}
	total, err := f.score(state, pod, c, feasible)
	if err != nil {
		return Result{}, err
	}
	best, count, pick := int64(-1), 0, 0
	for i, s := range total {
		switch {
		case s > best:
			best, count, pick = s, 1, i
		case s == best:
			count++
			if f.rand.IntN(count) == 0 {
				pick = i
			}
		}
	}
	res.Node = feasible[pick].Name
	return res, nil
}

// score runs the PreScore plugins and returns each feasible node's weighted total.
func (f *Framework) score(state *CycleState, pod *PodInfo, c *Cache, nodes []*NodeInfo) ([]int64, error) {
	f.cycleScores = f.cycleScores[:0]
	for j, p := range f.scores {
		if ps, ok := p.(PreScorePlugin); ok {
			st := ps.PreScore(state, pod, c, nodes)
			if !st.IsSuccess() {
				if st.Code == Skip {
					continue
				}
				st.Plugin = p.Name()
				return nil, fmt.Errorf("schedule pod %s: prescore: %s", pod.Key, st)
			}
		}
		f.cycleScores = append(f.cycleScores, j)
	}
	total := make([]int64, len(nodes))
	scores := make([]int64, len(nodes))
	for _, j := range f.cycleScores {
		p := f.scores[j]
		f.parallel(len(nodes), func(i int) { scores[i] = p.Score(state, pod, nodes[i]) })
		if nz, ok := p.(ScoreNormalizer); ok {
			nz.NormalizeScores(state, pod, nodes, scores)
		}
		for i, s := range scores {
			total[i] += s * f.weights[j]
		}
	}
	return total, nil
}

// parallel runs fn(0..n-1), split among the framework's goroutines when n is large.
func (f *Framework) parallel(n int, fn func(i int)) {
	if f.parallelism <= 1 || n < parallelThreshold {
		for i := 0; i < n; i++ {
			fn(i)
		}
		return
	}
	workers := f.parallelism
	chunk := (n + workers - 1) / workers
	var wg sync.WaitGroup
	for w := 1; w < workers; w++ {
		lo, hi := w*chunk, min(n, (w+1)*chunk)
		if lo >= hi {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := lo; i < hi; i++ {
				fn(i)
			}
		}()
	}
	for i := 0; i < min(chunk, n); i++ {
		fn(i)
	}
	wg.Wait()
}

package scheduler

import (
	"fmt"
	"math/rand/v2"
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
// nodes and must not modify pod or node. It returns nil for a node that passes, and
// otherwise a new Status (the framework records the plugin's name in it).
type FilterPlugin interface {
	Plugin
	Filter(pod *PodInfo, node *NodeInfo) *Status
}

// ScorePlugin ranks the nodes that passed every filter: 0 (worst) to MaxNodeScore.
// Score runs concurrently for different nodes and must not modify pod or node.
type ScorePlugin interface {
	Plugin
	Score(pod *PodInfo, node *NodeInfo) int64
}

// ScoreNormalizer is a ScorePlugin whose scores only mean something relative to the
// other nodes': NormalizeScores rewrites them, in place, into 0..MaxNodeScore.
type ScoreNormalizer interface {
	NormalizeScores(pod *PodInfo, nodes []*NodeInfo, scores []int64)
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
	for _, p := range []Plugin{NodeReady{}, NodeResourcesFit{}, NodeSelector{}, TaintToleration{}, NodePorts{},
		LeastAllocated{}, BalancedAllocation{}, OwnerSpread{}} {
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
// the built-in scores with weight 1 each.
func DefaultProfile() Profile {
	return Profile{
		Filters: []string{NameNodeReady, NameNodeSelector, NameTaintToleration, NameNodeResourcesFit, NameNodePorts},
		Scores:  []WeightedPlugin{{NameLeastAllocated, 1}, {NameBalancedAllocation, 1}, {NameOwnerSpread, 1}},
	}
}

// Framework runs a profile's plugins for one pod at a time. It is the scheduler's
// deterministic core: given the same seed, nodes and pods, it places pods the same
// way. It is not safe for concurrent Schedule calls (it rotates where filtering
// starts, from one cycle to the next).
type Framework struct {
	filters     []FilterPlugin
	scores      []ScorePlugin
	weights     []int64
	percentage  int
	parallelism int
	rand        *rand.Rand
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
	f := &Framework{percentage: opts.PercentageOfNodesToScore, parallelism: max(1, opts.Parallelism), rand: opts.Rand}
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

// RunFilters runs the filters on one node, stopping at the first that fails.
func (f *Framework) RunFilters(pod *PodInfo, node *NodeInfo) *Status {
	for _, p := range f.filters {
		if st := p.Filter(pod, node); !st.IsSuccess() {
			st.Plugin = p.Name()
			return st
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
}

// Error is Kubernetes' message: "0/5 nodes are available: 3 Insufficient cpu, 2
// node(s) had untolerated taint {k: v}." with the reasons sorted.
func (e *FitError) Error() string {
	if e.NumNodes == 0 {
		return "no nodes available to schedule pods"
	}
	reasons := make([]string, 0, len(e.Reasons))
	for r := range e.Reasons {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	var b strings.Builder
	fmt.Fprintf(&b, "0/%d nodes are available", e.NumNodes)
	for i, r := range reasons {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%d %s", e.Reasons[r], r)
	}
	b.WriteString(".")
	return b.String()
}

// parallelThreshold is the batch size below which filtering and scoring stay on the
// calling goroutine: for fewer nodes, handing work out costs more than it saves.
const parallelThreshold = 512

// Schedule picks a node for pod among nodes: it filters nodes, starting where the last
// cycle stopped, until it has found numFeasibleNodesToFind of them (or checked all),
// scores those, and picks the best, breaking ties at random. It returns a *FitError
// when no node fits, and another error when a plugin failed.
func (f *Framework) Schedule(pod *PodInfo, nodes []*NodeInfo) (Result, error) {
	n := len(nodes)
	if n == 0 {
		return Result{}, &FitError{Pod: pod.Key}
	}
	want := numFeasibleNodesToFind(f.percentage, n)
	feasible := make([]*NodeInfo, 0, want)
	var failed []*Status
	start := f.nextStart % n
	processed := 0
	batch := n
	if f.parallelism > 1 && n >= parallelThreshold {
		batch = max(want, parallelThreshold)
	}
	statuses := make([]*Status, min(batch, n))
	for processed < n && len(feasible) < want {
		size := min(batch, n-processed)
		f.parallel(size, func(i int) {
			statuses[i] = f.RunFilters(pod, nodes[(start+processed+i)%n])
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
	f.nextStart = (start + processed) % n
	if len(feasible) == 0 {
		fe := &FitError{Pod: pod.Key, NumNodes: n, Reasons: map[string]int{}}
		for _, st := range failed {
			for _, r := range st.Reasons {
				fe.Reasons[r]++
			}
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
	total := f.score(pod, feasible)
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

// score returns each feasible node's weighted total.
func (f *Framework) score(pod *PodInfo, nodes []*NodeInfo) []int64 {
	total := make([]int64, len(nodes))
	scores := make([]int64, len(nodes))
	for j, p := range f.scores {
		f.parallel(len(nodes), func(i int) { scores[i] = p.Score(pod, nodes[i]) })
		if nz, ok := p.(ScoreNormalizer); ok {
			nz.NormalizeScores(pod, nodes, scores)
		}
		for i, s := range scores {
			total[i] += s * f.weights[j]
		}
	}
	return total
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

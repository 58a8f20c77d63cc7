// Package scheduler assigns pending pods to nodes, as Kubernetes' kube-scheduler does,
// simplified.
//
// The core is pure and deterministic: a Framework runs named filter plugins (NodeReady,
// NodeSelector, TaintToleration, NodeResourcesFit, NodePorts), each of which says why it
// rejects a node, over a list of NodeInfos, then score plugins (LeastAllocated,
// BalancedAllocation, OwnerSpread) over the nodes that passed, and picks the best,
// breaking ties with an injected random source. Like Kubernetes it stops filtering once
// it has found PercentageOfNodesToScore of the nodes feasible, and starts the next cycle
// where this one stopped, so that a cycle's cost stays flat as the cluster grows. When
// no node fits, the FitError counts the reasons across nodes: "0/5 nodes are available:
// 3 Insufficient cpu, 2 node(s) had untolerated taint {k: v}.". Plugins come from an
// explicit Registry; nothing registers itself.
//
// Around it: the Cache counts the pods on each node, including pods this scheduler has
// assumed onto a node before the watch confirms the binding (Assume, Forget); the Queue
// holds pending pods (active, back-off, unschedulable) and retries unschedulable pods
// when a node is added or changes or a pod goes. The Scheduler wires them to informers
// on pods and nodes, schedules one pod at a time, and binds in the background through
// the API servers' compare-and-swap Bind. A pod already bound (another scheduler won)
// is dropped; other bind failures undo the assumption and retry after a back-off.
// Unschedulable pods get a PodScheduled=False condition (reason Unschedulable) and a
// FailedScheduling Event; bound pods a Scheduled Event.
//
// Wiring (cmd): build a Clientset, then
//
//	cfg := scheduler.DefaultConfig()
//	cfg.Logger = log                   // optional: Informers (a shared factory the caller
//	s, err := scheduler.New(cs, cfg)   // starts) and Recorder (one the caller runs)
//	err = s.Run(ctx)                   // while leading; returns when ctx ends
//
// The scheduler does not elect a leader: the caller runs Run while it leads. Two
// schedulers running at once never bind a pod twice, but they do not see each other's
// assumptions until the watch reports them, so they may over-commit a node briefly.
// There are no priorities, preemption, affinities beyond nodeSelector, or volumes.
package scheduler

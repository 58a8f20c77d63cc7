// Package scheduler assigns pending pods to nodes, as Kubernetes' kube-scheduler does,
// simplified.
//
// The core is pure and deterministic: a Framework runs named plugins over a list of
// NodeInfos, as Kubernetes' scheduling framework does. PreFilter plugins look at the
// cluster once per cycle; filter plugins (NodeReady, NodeAffinity, TaintToleration,
// NodeResourcesFit, NodePorts, InterPodAffinity, PodTopologySpread) each say why they
// reject a node; score plugins (LeastAllocated, BalancedAllocation, OwnerSpread, and
// the preferences of NodeAffinity, InterPodAffinity and PodTopologySpread) rank the
// nodes that passed, and the best wins, ties broken with an injected random source. A
// plugin whose PreFilter or PreScore finds nothing to do for a pod (no affinity, no
// spread) is skipped for it. Like Kubernetes it stops filtering once it has found
// PercentageOfNodesToScore of the nodes feasible, and starts the next cycle where this
// one stopped, so that a cycle's cost stays flat as the cluster grows. A pod whose
// required node affinity names its nodes (metadata.name In, as every DaemonSet pod
// names its one node) has only those filtered, as Kubernetes' PreFilterResult does:
// a thousand daemon pods on a thousand nodes cost a thousand filter passes, not a
// million. When no node
// fits, the FitError counts the reasons across nodes, in Kubernetes' words and order:
// "0/5 nodes are available: 2 node(s) didn't match pod anti-affinity rules, 3
// Insufficient example.com/dongle.". Plugins come from an explicit Registry; nothing
// registers itself.
//
// What the plugins read is kept incrementally by the cache (index.go): the pods by
// namespace and label, the affinity terms of the pods already placed grouped and
// counted by topology domain (kubernetes.io/hostname, topology.kubernetes.io/zone, any
// node label), the nodes by label and the namespaces' labels. A cycle reads the pods
// and domains its pod's terms concern, never every pod. Extended resources
// (example.com/dongle) are counted like cpu and memory, in the units nodes advertise.
//
// Around it: the Cache counts the pods on each node, including pods this scheduler has
// assumed onto a node before the watch confirms the binding (Assume, Forget); the Queue
// holds pending pods (active, back-off, unschedulable) and retries unschedulable pods
// when a node is added or changes or a pod goes, and pods that a pod affinity or a
// spread rejected when a pod is bound. The Scheduler wires them to informers
// on pods, nodes and namespaces, schedules one pod at a time, and binds in the background through
// the API servers' compare-and-swap Bind: the bindings that queue while earlier calls
// are in flight go together in one BindBatch call (binder.go), each with its own
// outcome. A pod already bound (another scheduler won)
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
// The active queue is ordered by priority, then age (Kubernetes' PrioritySort); a pod no
// node fits may preempt lower-priority pods (preemption.go, Kubernetes'
// DefaultPreemption), which costs nothing while pods fit. The system default spread
// constraints Kubernetes applies to pods without their own are OwnerSpread here.
package scheduler

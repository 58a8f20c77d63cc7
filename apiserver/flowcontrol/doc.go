// Package flowcontrol is Skiff's API Priority and Fairness, after Kubernetes': every
// authenticated request is classified into a priority level by who sends it (the flow
// schemas of Classify), and each level holds a share of the server's concurrency limit.
// A request runs at once when its level has a seat free; otherwise it waits in its
// flow's queue (a flow is one identity), and the queues of a level are served in turn,
// so one identity sending many requests waits behind its own requests, not in front of
// everyone else's. A request that finds its flow's queue full, or waits longer than the
// wait limit, is refused with a retry delay (Kubernetes' Retry-After), which grows while a
// level keeps refusing and shrinks when it stops.
//
// The levels and who gets them follow Kubernetes' suggested configuration:
//
//	exempt           skiff:apiservers                               never queued or refused
//	node-high        skiff:nodes on their Node and Lease             40 shares (heartbeats)
//	system           skiff:nodes, everything else                    30 shares
//	leader-election  controller-manager and scheduler, kube-system Leases  10 shares
//	workload-high    skiff:controller-manager, skiff:scheduler       40 shares
//	global-default   everyone else (administrators, token users)     20 shares
//
// so the cluster's own components never wait behind users, and users share the rest
// fairly. What Kubernetes does and this does not: levels do not lend idle seats to
// others, every request occupies one seat (Kubernetes weighs lists by their size), and
// queues are served round-robin (one request per flow in turn) rather than by virtual
// finish time. The flow schemas are fixed; the levels' shares and queue lengths are
// configuration (Config, the apiserver's flags).
package flowcontrol

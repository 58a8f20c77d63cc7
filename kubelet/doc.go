// Package kubelet is Skiff's node agent: it registers a Node, keeps the Node's status
// and its Lease (namespace kube-node-lease) fresh, and runs the pods bound to the node
// through a Runtime (kubelet/containerd for real containers, kubelet/sim in memory).
//
// # Design
//
// The kubelet keeps no state of its own about containers. The API server holds what
// should run (pods with spec.nodeName equal to the node, seen through an informer) and
// the runtime holds what does run (containers labelled with their pod's uid, name and
// namespace, their container name and attempt). A pod's reconcile, driven by a work
// queue keyed by namespace/name, reads both and acts on the difference, so it is
// level-triggered and idempotent, and a restarted kubelet simply adopts the containers
// it finds, and stops and removes those whose pod is gone.
//
// Its periodic work — the node's status, its Lease, the runtime's relist — runs on
// timers (every.go): a goroutine exists only while a step runs, so a process of
// thousands of simulated nodes holds no sleeping goroutine a node for them.
//
// The decisions are pure functions with time as a parameter (status.go):
// decideContainer says whether a container starts, waits out its restart back-off
// (CrashLoopBackOff) or is left alone, per restartPolicy; computePodStatus derives the
// pod's phase, conditions and container statuses the way Kubernetes does. The I/O shell
// (pods.go) pulls images, starts containers, records Events and writes the status only
// when it changed.
//
// Changes in the runtime are noticed by listing its containers every RelistPeriod
// (Kubernetes' PLEG): a pod whose containers changed is queued. A runtime that counts its
// changes (ChangeTracker: the simulated one) is listed only when the count moved.
//
// Deleting a bound pod marks it (deletionTimestamp, deletionGracePeriodSeconds); the
// kubelet stops its containers with that grace period (SIGTERM, then SIGKILL), removes
// them, and deletes the pod with grace 0 and a uid precondition.
//
// # What a pod can ask for
//
// Volumes (kubelet/volume: emptyDir, hostPath, configMap, secret, downwardAPI,
// projected, and a persistentVolumeClaim's bound hostPath or local volume), env from
// ConfigMaps, Secrets, the downward API and resources with $(VAR) expansion (env.go),
// init containers in order, probes (prober.go: exec, httpGet, tcpSocket, grpc; startup,
// readiness, liveness; one schedule per kubelet, not a goroutine per probe), postStart and preStop hooks (hooks.go), securityContext and
// resources through the runtime (podconfig.go, resources.go: the QoS class and the pod's
// cgroup budget), imagePullSecrets, activeDeadlineSeconds and the eviction of a pod
// over its storage limits (an emptyDir's sizeLimit, limits.ephemeral-storage).
// docs/pods.md says what each does, as Kubernetes' kubelet.
//
// # What it does not do
//
// Restart back-offs start again after a kubelet restart. There is no eviction under
// node pressure (only a pod over its own storage limits is evicted), and no hugepages
// (the API refuses them).
//
// # Logs, exec, attach and port-forward
//
// The kubelet's only API is LogServer (logserver.go): the KubeletLogs gRPC service, which
// streams a container's output from the Runtime to the API server (skiffctl logs goes
// through the API server, which authorizes the user and dials the kubelet at the node's
// InternalIP and the port its status publishes in daemonEndpoints.kubeletEndpoint), and
// KubeletStreams (streams.go), which the API server relays skiffctl exec, attach and
// port-forward to: a command run in a container by the Runtime's Exec, a container's
// output from now on (its log, followed) with, for one with stdin and a terminal, the
// caller's input and terminal sizes through the Runtime's Attach, and a connection made by the dialer the
// Runtime gives for the pod's network namespace (PodDialer: the loopback of the pod's
// own namespace, with the CNI pod network; the host's for hostNetwork pods and without
// a pod network).
package kubelet

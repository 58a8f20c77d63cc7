// Package apiserver is Skiff's API server: the gRPC Resources, Pods and Cluster services
// over an embedded store node (package store).
//
// Any API server accepts any request. Writes commit through Raft from whichever node
// receives them (the store forwards them to the leader); Get and List are linearizable
// unless the request asks for a stale read, which is served locally; watches are served
// locally from the node's event history.
//
// The server owns what Kubernetes' API server owns: uids, creation and deletion
// timestamps, generation (bumped only when the spec changes), resourceVersion (the store
// revision of the last change), defaulting and validation, graceful deletion of pods and
// deletion held by finalizers (orphan and foregroundDeletion are added for the
// propagation policies; the garbage collector removes them), and binding pods to nodes
// exactly once. Updates are compare-and-swap on resourceVersion; without one, the server
// retries its read-modify-write itself.
//
// The Pods service is not served from the store: Logs (logs.go) authorizes the user as
// for "get pods/log", finds the pod's node and the kubelet endpoint the node publishes,
// and proxies the kubelet's KubeletLogs stream (mutual TLS with KubeletTLS); Exec, Attach
// and PortForward (streams.go), authorized as "create pods/exec", "pods/attach" and
// "pods/portforward", relay a bidirectional stream to the kubelet's KubeletStreams the
// same way. The REST API's proxy subresources of pods, services and nodes
// (rest_proxy.go) reach a pod's port through that PortForward stream, and a node's
// kubelet's containerLogs through the Logs path.
//
// Errors are gRPC statuses with Kubernetes-style messages and an ErrorInfo detail (see
// errors.go). Health (/healthz, /readyz) and Prometheus metrics (/metrics) are served over
// HTTP when an address is configured.
package apiserver

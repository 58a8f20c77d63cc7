// Package client is how Skiff's components and tools talk to the API servers, modelled on
// Kubernetes' client-go and kept small.
//
//   - Conn: a connection to a list of API servers with failover, per-attempt deadlines and
//     capped, jittered exponential back-off. Calls the servers refuse (no leader) are
//     retried anywhere; calls whose reply is lost are retried only when repeating them is
//     safe, and a retried create reports AlreadyExists as possibly its own
//     (IsRetriedCreate), never a duplicate object.
//   - Client[T]: typed Create, Get, List, Update, UpdateStatus, Delete and Watch per kind
//     (Clientset holds one per kind); Conn.Bind binds pods.
//   - Error predicates (IsNotFound, IsConflict, IsTooOld, ...) over the servers' gRPC
//     statuses.
//   - What the clients and the API server agree on besides the messages: the leader
//     headers (LeaderHeader, ExpectLeaderHeader) and gRPC's message buffer pool
//     (ServerBufferPool, DialBufferPool).
//
// Sub-packages: cache (informers, indexers, listers), workqueue (rate-limited, deduplicating
// work queues), leader (leader election on Lease objects) and record (Events).
package client

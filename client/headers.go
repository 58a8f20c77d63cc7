package client

// LeaderHeader is the response header in which an API server that is not the Raft
// leader names the address where the leader serves the API. Any server accepts any
// request and forwards writes to the leader itself; a client that knows the leader can
// send its writes and linearizable reads there directly and save the forwarding hop.
const LeaderHeader = "skiff-leader"

// ExpectLeaderHeader, set on a request, says the client sent it to this server because it
// was named the leader. A server that is no longer the leader refuses such a request at
// once (Unavailable, nothing done, with LeaderHeader when it knows the new leader)
// rather than holding it while an election runs, so the client moves on without delay.
const ExpectLeaderHeader = "skiff-expect-leader"

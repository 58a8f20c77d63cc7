package kubelet

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
	"github.com/skiffhq/skiff/test/waitfor"
)

// leaseServer is a fake API server holding one node Lease. While busy it refuses
// every Lease write as an overloaded priority level does: too many requests, come back
// in a minute.
type leaseServer struct {
	apiv1.UnimplementedResourcesServer
	mu      sync.Mutex
	lease   *coordinationv1.Lease
	busy    bool
	refused int
	renewed int           // writes taken while not busy
	delay   time.Duration // before each answer
	// noNamespace: the Lease namespace is missing until created; namespaceCreates
	// counts the tries.
	noNamespace      bool
	namespaceCreates int
}

func (s *leaseServer) Get(ctx context.Context, req *apiv1.GetRequest) (*apiv1.Object, error) {
	if err := s.answer(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lease == nil {
		return nil, status.Error(codes.NotFound, "leases \"n1\" not found")
	}
	return kinds.Wrap(s.lease)
}

// answer takes the server's delay to answer, or fails with ctx: a call given up before
// the server got to it changes nothing, as a write not yet proposed to Raft.
func (s *leaseServer) answer(ctx context.Context) error {
	s.mu.Lock()
	d := s.delay
	s.mu.Unlock()
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	}
}

// Create takes the Lease, and finds the namespace there.
func (s *leaseServer) Create(ctx context.Context, req *apiv1.CreateRequest) (*apiv1.Object, error) {
	if err := s.answer(ctx); err != nil {
		return nil, err
	}
	obj, err := kinds.Unwrap(req.GetObject())
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := obj.(*coordinationv1.Lease)
	if !ok {
		s.namespaceCreates++
		if !s.noNamespace {
			return nil, status.Error(codes.AlreadyExists, "namespaces \"kube-node-lease\" already exists")
		}
		s.noNamespace = false
		return req.GetObject(), nil
	}
	if s.noNamespace {
		return nil, status.Error(codes.NotFound, "namespaces \"kube-node-lease\" not found")
	}
	if s.lease != nil {
		return nil, status.Error(codes.AlreadyExists, "leases \"n1\" already exists")
	}
	l.ResourceVersion = "1"
	s.lease, s.renewed = l, s.renewed+1
	return kinds.Wrap(l)
}

func (s *leaseServer) Update(ctx context.Context, req *apiv1.UpdateRequest) (*apiv1.Object, error) {
	if err := s.answer(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.busy {
		s.refused++
		st, _ := status.New(codes.ResourceExhausted, "too many requests at priority level node-high").
			WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(time.Minute)})
		return nil, st.Err()
	}
	obj, err := kinds.Unwrap(req.GetObject())
	if err != nil {
		return nil, err
	}
	l := obj.(*coordinationv1.Lease)
	if l.ResourceVersion != s.lease.ResourceVersion {
		return nil, status.Error(codes.Aborted, "the object has been modified")
	}
	rv, _ := strconv.Atoi(l.ResourceVersion)
	l.ResourceVersion = strconv.Itoa(rv + 1)
	s.lease, s.renewed = l, s.renewed+1
	return kinds.Wrap(l)
}

func (s *leaseServer) counts() (refused, renewed int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused, s.renewed
}

// startLeaseServer serves a busy leaseServer holding node n1's Lease, and connects to it.
func startLeaseServer(t *testing.T) (*leaseServer, *client.Conn) {
	srv := &leaseServer{busy: true, lease: &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: LeaseNamespace, Name: "n1", ResourceVersion: "1"}}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	apiv1.RegisterResourcesServer(gs, srv)
	go gs.Serve(ln)
	t.Cleanup(gs.Stop)
	conn, err := client.Dial([]string{ln.Addr().String()}, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return srv, conn
}

// TestLeaseRenewalOutlastsRetryDelays: a Lease renewal the API server refuses with a
// long retry delay (its node-high level overloaded, as 2,500 simulated nodes under a
// 50,000-pod rollout made it) is given up at the renewal interval and tried again, so
// the Lease is renewed as soon as the server takes writes again — not after the
// client has waited out the delays, each longer than the Lease lives.
func TestLeaseRenewalOutlastsRetryDelays(t *testing.T) {
	srv, conn := startLeaseServer(t)

	cfg := DefaultConfig()
	cfg.NodeName = "n1"
	cfg.LeaseRenewInterval, cfg.LeaseDuration = 200*time.Millisecond, time.Second
	k := &Kubelet{cs: client.NewClientset(conn), cfg: cfg, log: hclog.NewNullLogger()}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	k.leaseLoop(ctx, &wg)
	defer func() { cancel(); wg.Wait() }()

	waitfor.Condition(t, 30*time.Second, "a renewal refused", func() (bool, string) {
		refused, _ := srv.counts()
		return refused > 0, "none yet"
	})
	srv.mu.Lock()
	srv.busy = false
	srv.mu.Unlock()
	// Far less than the server's one-minute delay: the renewal after the refusal comes
	// within an interval or two.
	waitfor.Condition(t, 20*time.Second, "the Lease renewed once the server takes writes", func() (bool, string) {
		refused, renewed := srv.counts()
		return renewed > 0, strconv.Itoa(refused) + " renewals refused, none taken"
	})
}

// TestLeaseCreatedThroughSlowCalls: a node's first Lease write takes two calls (the
// Lease looked for, then created), each answered after 60% of the renewal interval. Each call has the interval as its deadline, as each request of
// Kubernetes' heartbeat client has, so the Lease is made; with one deadline for the
// two it never was, as on the saturated machine of issue 26, where nodes registered
// (one call) and went Unknown without a Lease.
func TestLeaseCreatedThroughSlowCalls(t *testing.T) {
	srv, conn := startLeaseServer(t)
	srv.mu.Lock()
	srv.lease, srv.busy, srv.delay = nil, false, 1200*time.Millisecond
	srv.mu.Unlock()

	cfg := DefaultConfig()
	cfg.NodeName = "n1"
	cfg.LeaseRenewInterval, cfg.LeaseDuration = 2*time.Second, 8*time.Second
	k := &Kubelet{cs: client.NewClientset(conn), cfg: cfg, log: hclog.NewNullLogger()}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	k.leaseLoop(ctx, &wg)
	defer func() { cancel(); wg.Wait() }()
	waitfor.Condition(t, 30*time.Second, "the Lease created", func() (bool, string) {
		_, renewed := srv.counts()
		return renewed > 0, "not yet"
	})
}

// TestLeaseNamespaceMadeOnlyWhenMissing: a node makes its Lease without trying to make
// the namespace the API servers made (before, every node's first Lease write tried,
// a refused write on every member for each node), and makes the namespace when it is
// missing.
func TestLeaseNamespaceMadeOnlyWhenMissing(t *testing.T) {
	for _, missing := range []bool{false, true} {
		srv, conn := startLeaseServer(t)
		srv.mu.Lock()
		srv.lease, srv.busy, srv.noNamespace = nil, false, missing
		srv.mu.Unlock()
		cfg := DefaultConfig()
		cfg.NodeName = "n1"
		k := &Kubelet{cs: client.NewClientset(conn), cfg: cfg, log: hclog.NewNullLogger()}
		if _, err := k.renewLease(context.Background(), nil); err != nil {
			t.Fatalf("namespace missing %v: %v", missing, err)
		}
		srv.mu.Lock()
		creates, made := srv.namespaceCreates, srv.lease != nil
		srv.mu.Unlock()
		if want := map[bool]int{false: 0, true: 1}[missing]; creates != want || !made {
			t.Errorf("namespace missing %v: %d namespace creates (want %d), lease made %v", missing, creates, want, made)
		}
	}
}

// lineCounter counts the log lines holding a text.
type lineCounter struct {
	mu    sync.Mutex
	text  string
	count int
}

func (c *lineCounter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.count += strings.Count(string(p), c.text)
	return len(p), nil
}

func (c *lineCounter) n() int { c.mu.Lock(); defer c.mu.Unlock(); return c.count }

// TestLeaseFailuresLoggedSparingly: a Lease renewal failing again and again is warned of
// at its 1st, 2nd, 4th, 8th, 16th... failure, not at each: a process of thousands of
// simulated nodes shares one logger, and a line for every failed attempt of each kept
// their loops waiting on the log's lock and output rather than renewing (issue 26).
func TestLeaseFailuresLoggedSparingly(t *testing.T) {
	srv, conn := startLeaseServer(t)

	warnings := &lineCounter{text: "lease renewal failed"}
	cfg := DefaultConfig()
	cfg.NodeName = "n1"
	cfg.LeaseRenewInterval, cfg.LeaseDuration = 100*time.Millisecond, time.Second
	k := &Kubelet{cs: client.NewClientset(conn), cfg: cfg, log: hclog.New(&hclog.LoggerOptions{Output: warnings, Level: hclog.Warn})}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	k.leaseLoop(ctx, &wg)
	waitfor.Condition(t, time.Minute, "20 renewals refused", func() (bool, string) {
		refused, _ := srv.counts()
		return refused >= 20, strconv.Itoa(refused) + " refused"
	})
	cancel()
	wg.Wait()
	// At most 21 failures (one more may have been refused as the loop stopped): warned
	// of at the 1st, 2nd, 4th, 8th and 16th.
	refused, _ := srv.counts()
	if n := warnings.n(); n < 1 || n > 5 {
		t.Fatalf("%d warnings for %d failed renewals, want 1 to 5", n, refused)
	}
}

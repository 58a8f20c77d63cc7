package jepsen

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/internal/failpoint"
	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
	"github.com/skiffhq/skiff/test/freeport"
)

// raftTiming is passed to every server. Raft's defaults (500ms heartbeat and election
// timeouts) suit a LAN; see timingFlags for what the suite uses and why.
var raftTiming []string

// bookmarkInterval is how long an idle watch that asked for bookmarks waits for one:
// short, so that the watchers get bookmarks in every lull of the write load (a fault's
// unavailability, the end of the run), not only after the default's 10s.
const bookmarkInterval = 100 * time.Millisecond

var bookmarkFlags = []string{"--watch-bookmark-interval", bookmarkInterval.String()}

// node is one API server: its addresses stay fixed across restarts, its data directory
// too, so a restart rejoins.
type node struct {
	name       string
	ip         string
	api, raft  string // raft: the peer address members dial (the proxy's, with one)
	raftListen string // where the node listens for peers: raft, or behind the proxy
	dir        string
	gid        int // the group the process runs as: what iptables tells nodes apart by
	args       []string
	bin        string // the skiff it runs; "": the cluster's (an upgrade replaces it)

	proc   *proc // nil while down
	paused bool

	// Disk faults (disk_test.go): env is added to the process's environment at its next
	// start (failpoints); tmpfs says the data directory is on a tmpfs of the run's own.
	env   []string
	tmpfs bool
}

// proc is a running server process, in its own process group.
type proc struct {
	cmd    *exec.Cmd
	done   chan struct{}
	killed atomic.Bool // the harness killed it: its exit is no crash
	// injected: an armed failpoint crashed it (exit failpoint.ExitCode): no anomaly.
	injected atomic.Bool
}

// cluster runs the servers and applies faults to them. Its methods are safe for
// concurrent use: workloads read the membership while the nemesis changes it.
type cluster struct {
	t       *testing.T
	bin     string
	dir     string
	logs    string
	root    bool
	net     netFaults // nil: this run makes no partitions
	proxy   *proxyNet // set when net is the proxy
	gidBase int
	extra   []string // flags every server gets besides the suite's (nemesis.args)

	mu      sync.Mutex
	nodes   map[string]*node // every node ever started, by name
	members []string         // current members, by name
	nextIdx int
	gen     int // bumped whenever members change
	grpcs   map[string]*grpc.ClientConn
	conns   map[string]*client.Conn
	crashes []string // servers that exited without being killed
}

// crashed returns what crashed so far.
func (c *cluster) crashed() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.crashes...)
}

// saveLogs copies every server's log into dir.
func (c *cluster) saveLogs(dir string) {
	entries, _ := os.ReadDir(c.logs)
	for _, e := range entries {
		if b, err := os.ReadFile(filepath.Join(c.logs, e.Name())); err == nil {
			os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644)
		}
	}
}

// newCluster starts n servers forming one cluster and waits for a leader. netKind says
// how partitions are made: "iptables", "proxy", or "" for none; extra are flags every
// server gets.
func newCluster(t *testing.T, bin string, n int, netKind string, extra ...string) *cluster {
	t.Helper()
	dir := t.TempDir()
	c := &cluster{
		t: t, bin: bin, dir: dir, logs: filepath.Join(dir, "logs"), root: os.Geteuid() == 0,
		gidBase: 2_000_000 + (os.Getpid()%100_000)*32, nodes: map[string]*node{},
		grpcs: map[string]*grpc.ClientConn{}, conns: map[string]*client.Conn{}, extra: extra,
	}
	if err := os.MkdirAll(c.logs, 0o755); err != nil {
		t.Fatal(err)
	}
	switch netKind {
	case "iptables":
		if fw, err := newFirewall(t); err != nil {
			t.Logf("no iptables (%v): partitions will be skipped", err)
		} else {
			c.net = fw
		}
	case "proxy":
		c.proxy = newProxyNet()
		c.net = c.proxy
	}
	t.Cleanup(c.shutdown)
	var initial []string
	for i := 0; i < n; i++ {
		nd := c.newNode()
		initial = append(initial, nd.name+"="+nd.raft)
	}
	for _, name := range c.membersNow() {
		nd := c.nodes[name]
		nd.args = append(nd.args, "--initial-cluster", strings.Join(initial, ","))
		c.start(nd)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := c.waitHealthy(ctx); err != nil {
		t.Fatalf("cluster did not come up: %v", err)
	}
	return c
}

// newNode allocates the next node (name, loopback address, ports, data directory) and
// makes it a member; the caller adds the bootstrap or join flag and starts it.
func (c *cluster) newNode() *node {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nextIdx++
	i := c.nextIdx
	ip := fmt.Sprintf("127.0.0.%d", 10+i)
	ports := freeport.TCP(c.t, ip, 2)
	nd := &node{
		name: fmt.Sprintf("n%d", i), ip: ip,
		api: fmt.Sprintf("%s:%d", ip, ports[0]), raftListen: fmt.Sprintf("%s:%d", ip, ports[1]),
		dir: filepath.Join(c.dir, fmt.Sprintf("n%d", i)), gid: c.gidBase + i,
	}
	nd.raft = nd.raftListen
	var advertise []string
	if c.proxy != nil {
		front, err := c.proxy.front(ip, nd.raftListen)
		if err != nil {
			c.t.Fatalf("proxy for %s: %v", nd.name, err)
		}
		nd.raft = front
		advertise = []string{"--raft-advertise", front}
	}
	nd.args = append([]string{"apiserver", "--name", nd.name, "--data-dir", nd.dir, "--listen", nd.api,
		"--raft-listen", nd.raftListen, "--log-level", "info", "--insecure"}, append(advertise, raftTiming...)...) // faults, not TLS, are under test
	if c.bin == binPath {
		// (The previous release of the upgrade test has no such flag: the upgrade
		// adds it as it replaces the binary.)
		nd.args = append(nd.args, bookmarkFlags...)
	}
	nd.args = append(nd.args, c.extra...)
	c.nodes[nd.name] = nd
	c.members = append(c.members, nd.name)
	c.gen++
	return nd
}

// start runs nd's process; its output is appended to logs/NAME.log.
func (c *cluster) start(nd *node) {
	c.t.Helper()
	f, err := os.OpenFile(filepath.Join(c.logs, nd.name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	defer f.Close()
	bin := c.bin
	if nd.bin != "" {
		bin = nd.bin
	}
	fmt.Fprintf(f, "=== %s start %s %s\n", time.Now().Format(time.RFC3339Nano), bin, strings.Join(nd.args, " "))
	cmd := exec.Command(bin, nd.args...)
	cmd.Stdout, cmd.Stderr = f, f
	armed := len(nd.env) > 0
	cmd.Env = append(os.Environ(), nd.env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if c.root {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: 0, Gid: uint32(nd.gid), NoSetGroups: true}
	}
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start %s: %v", nd.name, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		if !p.killed.Load() && armed && cmd.ProcessState.ExitCode() == failpoint.ExitCode {
			p.injected.Store(true)
		} else if !p.killed.Load() {
			b, _ := os.ReadFile(filepath.Join(c.logs, nd.name+".log"))
			c.mu.Lock()
			c.crashes = append(c.crashes, fmt.Sprintf("%s exited by itself (%v); its log ends:\n%s", nd.name, err, lastLines(string(b), 15)))
			c.mu.Unlock()
		}
		close(p.done)
	}()
	c.mu.Lock()
	nd.proc, nd.paused = p, false
	c.mu.Unlock()
}

// kill sends SIGKILL to nd's process group and waits for it to die.
func (c *cluster) kill(nd *node) {
	c.mu.Lock()
	p := nd.proc
	nd.proc, nd.paused = nil, false
	c.mu.Unlock()
	if p == nil {
		return
	}
	p.killed.Store(true)
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// dumpStacks has every running server write its goroutines' stacks into its log (Go's
// SIGQUIT) and exit: when the cluster does not recover, they say what a stuck member
// waits on.
func (c *cluster) dumpStacks() {
	c.mu.Lock()
	var procs []*proc
	for _, nd := range c.nodes {
		if p := nd.proc; p != nil {
			p.killed.Store(true)
			if nd.paused {
				syscall.Kill(-p.cmd.Process.Pid, syscall.SIGCONT)
			}
			syscall.Kill(p.cmd.Process.Pid, syscall.SIGQUIT)
			procs = append(procs, p)
		}
		nd.proc, nd.paused = nil, false
	}
	c.mu.Unlock()
	for _, p := range procs {
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
		}
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL) // its children, or itself if it is stuck
		<-p.done
	}
}

// stop ends nd's process as an operator's service manager does: SIGTERM, and SIGKILL if
// it has not exited within grace. It says whether it exited by itself.
func (c *cluster) stop(nd *node, grace time.Duration) bool {
	c.mu.Lock()
	p := nd.proc
	nd.proc, nd.paused = nil, false
	c.mu.Unlock()
	if p == nil {
		return true
	}
	p.killed.Store(true)
	syscall.Kill(p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
		return true
	case <-time.After(grace):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		return false
	}
}

// signal sends sig (SIGSTOP, SIGCONT) to nd's process group.
func (c *cluster) signal(nd *node, sig syscall.Signal) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if nd.proc == nil {
		return
	}
	syscall.Kill(-nd.proc.cmd.Process.Pid, sig)
	nd.paused = sig == syscall.SIGSTOP
}

func (c *cluster) shutdown() {
	c.mu.Lock()
	nodes := make([]*node, 0, len(c.nodes))
	for _, nd := range c.nodes {
		nodes = append(nodes, nd)
	}
	for _, cc := range c.grpcs {
		cc.Close()
	}
	for _, conn := range c.conns {
		conn.Close()
	}
	c.mu.Unlock()
	for _, nd := range nodes {
		c.kill(nd)
	}
	if c.proxy != nil {
		c.proxy.close()
	}
	if c.t.Failed() {
		for _, nd := range nodes {
			b, _ := os.ReadFile(filepath.Join(c.logs, nd.name+".log"))
			c.t.Logf("--- last lines of %s ---\n%s", nd.name, lastLines(string(b), 30))
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// membersNow lists the current members' names.
func (c *cluster) membersNow() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.members...)
}

// node returns the node named name.
func (c *cluster) node(name string) *node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[name]
}

// running lists the members whose process runs (paused ones included: a client cannot
// tell a paused server from a slow one).
func (c *cluster) running() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, name := range c.members {
		if c.nodes[name].proc != nil {
			out = append(out, name)
		}
	}
	return out
}

// randomRunning picks a running member, or any member when none runs.
func (c *cluster) randomRunning(r *rand.Rand) string {
	names := c.running()
	if len(names) == 0 {
		names = c.membersNow()
	}
	return names[r.IntN(len(names))]
}

// grpcConn is a shared, raw gRPC connection to one node: one attempt per call, no retry,
// so the workloads see exactly what happened.
func (c *cluster) grpcConn(name string) *grpc.ClientConn {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cc, ok := c.grpcs[name]; ok {
		return cc
	}
	cc, err := grpc.NewClient("passthrough:///"+c.nodes[name].api, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		c.t.Fatalf("grpc client for %s: %v", name, err)
	}
	c.grpcs[name] = cc
	return cc
}

// pinned is a client.Conn to one node only.
func (c *cluster) pinned(name string) *client.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	if conn, ok := c.conns[name]; ok {
		return conn
	}
	conn, _ := client.Dial([]string{c.nodes[name].api}, client.Options{AttemptTimeout: 2 * time.Second, BackoffMax: 500 * time.Millisecond})
	c.conns[name] = conn
	return conn
}

// failover is a client.Conn over every current member, renewed when members change.
func (c *cluster) failover() *client.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := fmt.Sprintf("all@%d", c.gen)
	if conn, ok := c.conns[key]; ok {
		return conn
	}
	var addrs []string
	for _, name := range c.members {
		addrs = append(addrs, c.nodes[name].api)
	}
	conn, _ := client.Dial(addrs, client.Options{AttemptTimeout: 2 * time.Second, BackoffMax: 500 * time.Millisecond})
	c.conns[key] = conn
	return conn
}

// admin is a client.Conn over every current member for membership changes, which may
// take longer than a read or a write: a call retried after its first attempt timed out
// could find its own change already made.
func (c *cluster) admin() *client.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	var addrs []string
	for _, name := range c.members {
		addrs = append(addrs, c.nodes[name].api)
	}
	conn, _ := client.Dial(addrs, client.Options{AttemptTimeout: 30 * time.Second, BackoffMax: 500 * time.Millisecond})
	return conn
}

// status asks one node for its view of the cluster, within a second.
func (c *cluster) status(ctx context.Context, name string) (*apiv1.ClusterStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return apiv1.NewClusterClient(c.grpcConn(name)).Status(ctx, &apiv1.ClusterStatusRequest{})
}

// leader finds the member that says it leads, with the highest term among those that do;
// "" when none does now.
func (c *cluster) leader(ctx context.Context) string {
	l, _ := c.leaderTerm(ctx)
	return l
}

// leaderTerm is leader with its term.
func (c *cluster) leaderTerm(ctx context.Context) (string, uint64) {
	best, term := "", uint64(0)
	for _, name := range c.running() {
		if nd := c.node(name); nd.paused {
			continue
		}
		st, err := c.status(ctx, name)
		if err != nil || st.GetSelf().GetState() != "Leader" {
			continue
		}
		if st.GetTerm() >= term {
			best, term = name, st.GetTerm()
		}
	}
	return best, term
}

// leaderChange is a window in which the cluster changed leaders: from the last time the
// old leader was seen leading to the first time the new one was.
type leaderChange struct {
	From int64  `json:"fromNs"`
	To   int64  `json:"toNs"`
	Note string `json:"note"`
}

// watchLeaders polls who leads every 100ms until ctx ends and returns the changes seen.
func (c *cluster) watchLeaders(ctx context.Context, clock func() int64) []leaderChange {
	var out []leaderChange
	last, lastAt, gone := "", int64(-1), false
	for ctx.Err() == nil {
		name, term := c.leaderTerm(ctx)
		now := clock()
		key := ""
		if name != "" {
			key = fmt.Sprintf("%s (term %d)", name, term)
		}
		switch {
		case lastAt < 0 && key != "":
			last, lastAt = key, now
		case key == "":
			gone = true
		case key != last || gone:
			out = append(out, leaderChange{From: lastAt, To: now, Note: last + " -> " + key})
			last, lastAt, gone = key, now, false
		default:
			lastAt = now
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	return out
}

// waitLeader polls until a member leads, or ctx ends.
func (c *cluster) waitLeader(ctx context.Context) (string, error) {
	for {
		if l := c.leader(ctx); l != "" {
			return l, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("no leader: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitHealthy polls until every member runs, one leads, and every member reports the
// same voting membership with that leader and has applied what the leader committed.
func (c *cluster) waitHealthy(ctx context.Context) (string, error) {
	last := ""
	for {
		leader, why := c.healthy(ctx)
		if why == "" {
			return leader, nil
		}
		last = why
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("not healthy: %s", last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (c *cluster) healthy(ctx context.Context) (string, string) {
	members := c.membersNow()
	sort.Strings(members)
	want := strings.Join(members, ",")
	leader := ""
	var commit uint64
	for _, name := range members {
		nd := c.node(name)
		if nd.proc == nil || nd.paused {
			return "", name + " is down"
		}
		st, err := c.status(ctx, name)
		if err != nil {
			return "", fmt.Sprintf("%s: %v", name, err)
		}
		var voters []string
		for _, m := range st.GetMembers() {
			if m.GetSuffrage() == "Voter" {
				voters = append(voters, m.GetName())
			}
		}
		sort.Strings(voters)
		if got := strings.Join(voters, ","); got != want {
			return "", fmt.Sprintf("%s sees voters %s, want %s", name, got, want)
		}
		if st.GetLeader() == "" || (leader != "" && st.GetLeader() != leader) {
			return "", fmt.Sprintf("%s sees leader %q", name, st.GetLeader())
		}
		leader = st.GetLeader()
		if name == leader {
			commit = st.GetSelf().GetCommitIndex()
		}
	}
	for _, name := range members {
		st, err := c.status(ctx, name)
		if err != nil {
			return "", fmt.Sprintf("%s: %v", name, err)
		}
		if st.GetSelf().GetAppliedIndex() < commit {
			return "", fmt.Sprintf("%s applied %d < leader's commit %d", name, st.GetSelf().GetAppliedIndex(), commit)
		}
	}
	return leader, ""
}

// firewall drops traffic between nodes with iptables rules in a chain of its own, hooked
// into OUTPUT. A rule matches the sending process's group (each server runs as its own
// gid) and the receiving node's address, so everything a server sends is cut, whatever
// source address the kernel gives it. The test's own clients run as another group and
// keep reaching every node, as Jepsen's control node does.
type firewall struct {
	chain string
	mu    sync.Mutex
}

func newFirewall(t *testing.T) (*firewall, error) {
	if _, err := exec.LookPath("iptables"); err != nil {
		return nil, err
	}
	fw := &firewall{chain: fmt.Sprintf("SKIFF-JEPSEN-%d", os.Getpid())}
	if err := iptables("-N", fw.chain); err != nil {
		return nil, err
	}
	if err := iptables("-I", "OUTPUT", "-j", fw.chain); err != nil {
		iptables("-X", fw.chain)
		return nil, err
	}
	t.Cleanup(func() {
		iptables("-D", "OUTPUT", "-j", fw.chain)
		iptables("-F", fw.chain)
		iptables("-X", fw.chain)
	})
	return fw, nil
}

func iptables(args ...string) error {
	out, err := exec.Command("iptables", append([]string{"-w"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("iptables %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// cut drops everything a sends to b and b sends to a.
func (f *firewall) cut(a, b *node) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range [][2]*node{{a, b}, {b, a}} {
		if err := iptables("-A", f.chain, "-m", "owner", "--gid-owner", fmt.Sprint(p[0].gid), "-d", p[1].ip+"/32", "-j", "DROP"); err != nil {
			return err
		}
	}
	return nil
}

// heal removes every rule.
func (f *firewall) heal() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return iptables("-F", f.chain)
}

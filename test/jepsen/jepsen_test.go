package jepsen

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
)

var (
	longRun   = flag.Bool("jepsen.long", false, "run each nemesis for $JEPSEN_TIME (default 2m) instead of a few seconds")
	nodeCount = flag.Int("jepsen.nodes", 3, "API servers per run (3 or 5)")
	netFlag   = flag.String("jepsen.net", "auto", "how partitions are made: iptables (needs root), proxy (a fault-injecting TCP proxy "+
		"between peers), or auto: iptables when root, else the proxy; short runs as root do both")
	timingFlag = flag.String("jepsen.raft", "--raft-heartbeat-timeout=300ms,--raft-election-timeout=300ms,--raft-leader-lease-timeout=150ms",
		"Raft timing flags given to every server, comma-separated")
)

var binPath string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "skiff-jepsen-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "skiff")
	cmd := exec.Command("go", "build", "-tags", "failpoints", "-o", binPath, "../../cmd/skiff") // disk_test.go arms them
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build skiff:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	if *timingFlag != "" {
		raftTiming = strings.Split(*timingFlag, ",")
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// anomaly is one thing a checker found wrong, with the operations involved.
type anomaly struct {
	Checker string  `json:"checker"`
	Kind    string  `json:"kind"`
	Detail  string  `json:"detail"`
	Ops     []regOp `json:"ops,omitempty"`
	SetOps  []setOp `json:"setOps,omitempty"`
	Events  []wev   `json:"events,omitempty"`
}

// report is what a run writes to out/RUN/report.json.
type report struct {
	Nemesis      string          `json:"nemesis"`
	OK           bool            `json:"ok"` // no anomaly
	Nodes        int             `json:"nodes"`
	Network      string          `json:"network,omitempty"` // how partitions were made: iptables or proxy
	Started      time.Time       `json:"started"`
	Duration     string          `json:"duration"`
	RaftTiming   []string        `json:"raftTiming"`
	Schedule     string          `json:"schedule"`
	Register     registerResult  `json:"register"`
	Set          setResult       `json:"set"`
	Watch        watchResult     `json:"watch"`
	Writes       int             `json:"successfulWrites"`
	Faults       []fault         `json:"faults"`
	Leaders      []leaderChange  `json:"leaderChanges,omitempty"` // seen by a rolling run
	Availability map[string]stat `json:"writeUnavailability"`
	Anomalies    []anomaly       `json:"anomalies"`
	Skipped      string          `json:"skipped,omitempty"`
	CheckTime    string          `json:"checkTime"`
}

// stat summarises write unavailability over the faults of one kind.
type stat struct {
	Faults int     `json:"faults"`
	P50Ms  float64 `json:"p50Ms"`
	P99Ms  float64 `json:"p99Ms"`
	MaxMs  float64 `json:"maxMs"`
}

// TestJepsen runs the workloads under each selected nemesis, one fresh cluster per
// nemesis. Briefly by default; -jepsen.long runs each for $JEPSEN_TIME.
func TestJepsen(t *testing.T) {
	dur, quiet, hold := 8*time.Second, 1500*time.Millisecond, 2500*time.Millisecond
	if *longRun {
		dur, quiet, hold = 2*time.Minute, 5*time.Second, 5*time.Second
		if v := os.Getenv("JEPSEN_TIME"); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				t.Fatalf("JEPSEN_TIME=%q: %v", v, err)
			}
			dur = d
		}
	}
	selected := map[string]bool{}
	if v := os.Getenv("JEPSEN_NEMESES"); v != "" && v != "all" {
		known := map[string]bool{}
		for _, n := range nemeses {
			known[n.name] = true
		}
		for _, s := range strings.Split(v, ",") {
			s = strings.TrimSpace(s)
			if !known[s] {
				t.Fatalf("JEPSEN_NEMESES: unknown nemesis %q", s)
			}
			selected[s] = true
		}
	} else if testing.Short() {
		selected["kill-leader"] = true
	}
	kinds, err := netKinds(*netFlag, os.Geteuid() == 0, *longRun)
	if err != nil {
		t.Fatal(err)
	}
	list := nemeses
	if !*longRun && len(selected) == 0 && !testing.Short() {
		list = grouped(nemeses)
	}
	for _, nem := range list {
		if len(selected) > 0 && !selected[nem.name] {
			continue
		}
		if !nem.partitions {
			d := max(dur, time.Duration(nem.turns)*(quiet+hold+2*time.Second)+quiet) // a group: a fault of each (2s to inject it)
			t.Run(nem.name, func(t *testing.T) { runOne(t, nem, "", d, quiet, hold) })
			continue
		}
		for i, kind := range kinds {
			name := nem.name
			if i > 0 {
				name += "-" + kind
			}
			t.Run(name, func(t *testing.T) { runOne(t, nem, kind, dur, quiet, hold) })
		}
	}
}

// netKinds says how the partition nemeses cut links, from -jepsen.net: iptables when
// root, the proxy otherwise, and, in a short run as root, the proxy as well so that
// `make test` (root in CI) proves both.
func netKinds(flag string, root, long bool) ([]string, error) {
	switch flag {
	case "iptables", "proxy":
		return []string{flag}, nil
	case "auto":
		if !root {
			return []string{"proxy"}, nil
		}
		if long {
			return []string{"iptables"}, nil
		}
		return []string{"iptables", "proxy"}, nil
	}
	return nil, fmt.Errorf("-jepsen.net=%q: want iptables, proxy or auto", flag)
}

func runOne(t *testing.T, nem nemesis, netKind string, dur, quiet, hold time.Duration) {
	began := time.Now()
	runDir := filepath.Join("out", began.Format("20060102-150405")+"-"+strings.ReplaceAll(t.Name()[len("TestJepsen/"):], "/", "-"))
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		t.Fatal(err)
	}
	rep := &report{Nemesis: nem.name, Nodes: *nodeCount, Started: began, Duration: dur.String(), RaftTiming: raftTiming,
		Schedule: fmt.Sprintf("every %v of quiet, the fault for %v, then heal", quiet, hold), Availability: map[string]stat{}}
	writeReport := func() {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(filepath.Join(runDir, "report.json"), b, 0o644); err != nil {
			t.Errorf("write report: %v", err)
		}
	}

	if nem.root && os.Geteuid() != 0 {
		rep.Skipped = "needs root (it mounts a tmpfs)"
		writeReport()
		t.Skipf("%s: skipped: needs root (it mounts a tmpfs), euid %d", nem.name, os.Geteuid())
	}
	bin := binPath
	if nem.from != nil {
		bin = nem.from(t)
	}
	c := newCluster(t, bin, *nodeCount, netKind, nem.args...)
	if nem.partitions && c.net == nil {
		rep.Skipped = "iptables partitions need root and iptables (-jepsen.net=proxy needs neither)"
		writeReport()
		t.Skipf("%s: skipped: iptables partitions need root and iptables (euid %d); -jepsen.net=proxy needs neither", nem.name, os.Geteuid())
	}
	if c.net != nil {
		rep.Network = c.net.kind()
	}
	const ns = "jepsen"
	setup, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.failover().EnsureNamespace(setup, ns); err != nil {
		t.Fatal(err)
	}
	if _, err := c.waitHealthy(setup); err != nil {
		t.Fatal(err) // every node has applied the namespace before the run starts
	}
	l, err := client.For[*corev1.ConfigMap](c.failover()).List(setup, ns, client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	base, _ := strconv.ParseInt(l.ResourceVersion, 10, 64)

	start := time.Now()
	clock := func() int64 { return int64(time.Since(start)) }
	var wmu sync.Mutex
	var writes []int64
	onWrite := func(at int64) { wmu.Lock(); writes = append(writes, at); wmu.Unlock() }

	reg := &registerWorkload{c: c, ns: ns, clock: clock, opsPerKey: 150, timeout: 3 * time.Second, onWrite: onWrite}
	set := &setWorkload{c: c, ns: ns, clock: clock, timeout: 5 * time.Second, onWrite: onWrite}
	wat := &watchWorkload{c: c, ns: ns, base: base}
	for _, name := range c.membersNow() {
		for j := 0; j < 2; j++ {
			wat.watchers = append(wat.watchers, &watchRecord{ID: len(wat.watchers), Home: name, Bookmarks: j == 0})
		}
	}

	workCtx, stopWork := context.WithTimeout(context.Background(), dur)
	if nem.rolling {
		// The nemesis ends the run once every member had its turn; the bound is a safety net.
		workCtx, stopWork = context.WithTimeout(context.Background(), 5*time.Minute)
	}
	defer stopWork()
	watchCtx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	var work, watchers sync.WaitGroup
	for i := 0; i < 6; i++ {
		work.Add(1)
		go func() { defer work.Done(); reg.run(workCtx, i) }()
	}
	for i := 0; i < 2; i++ {
		work.Add(1)
		go func() { defer work.Done(); set.run(workCtx, 100+i) }()
	}
	for _, rec := range wat.watchers {
		watchers.Add(1)
		go func() { defer watchers.Done(); wat.run(watchCtx, rec) }()
	}
	var leaders []leaderChange
	if nem.rolling {
		work.Add(1)
		go func() { defer work.Done(); leaders = c.watchLeaders(workCtx, clock) }()
	}
	var faults []fault
	var scheduleEnd int64
	work.Add(1)
	go func() {
		defer work.Done()
		faults = schedule(workCtx, c, nem, quiet, hold, clock, t.Logf)
		scheduleEnd = clock()
		stopWork()
	}()
	work.Wait()
	workEnd := clock()
	rep.Faults = faults

	anomalies := []anomaly{}
	fail := func(kind, format string, args ...any) {
		anomalies = append(anomalies, anomaly{Checker: "cluster", Kind: kind, Detail: fmt.Sprintf(format, args...)})
	}
	defer func() {
		for _, crash := range c.crashed() {
			anomalies = append(anomalies, anomaly{Checker: "cluster", Kind: "crash", Detail: crash})
		}
		if c.proxy != nil {
			if err := c.proxy.check(); err != nil {
				anomalies = append(anomalies, anomaly{Checker: "cluster", Kind: "partition-leak", Detail: err.Error()})
			}
		}
		rep.Anomalies, rep.OK = anomalies, len(anomalies) == 0
		writeReport()
		if len(anomalies) > 0 {
			c.saveLogs(runDir)
		}
		summarize(t, rep, runDir)
	}()

	// Heal, then mark the end of history with a sentinel every watcher must reach.
	final, cancelFinal := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancelFinal()
	if _, err := c.waitHealthy(final); err != nil {
		fail("no-recovery", "the cluster did not recover within 90s of the last heal: %v (every member's goroutines are in its log)", err)
		c.dumpStacks()
		var as []anomaly
		rep.Register, as = reg.check(runDir, 60*time.Second)
		anomalies = append(anomalies, as...)
		return
	}
	cms := client.For[*corev1.ConfigMap](c.failover())
	sentinel, err := cms.Create(final, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "zz-sentinel"}})
	if client.IsRetriedCreate(err) {
		sentinel, err = cms.Get(final, ns, "zz-sentinel")
	}
	if err != nil {
		fail("no-recovery", "write the sentinel after healing: %v", err)
		return
	}
	end, _ := strconv.ParseInt(sentinel.ResourceVersion, 10, 64)
	deadline := time.Now().Add(30 * time.Second)
	for _, rec := range wat.watchers {
		for wat.last(rec) < end && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond) // bounded polling
		}
		if wat.last(rec) < end {
			fail("watch-stalled", "watcher %d (home %s) reached revision %d, not the sentinel's %d, within 30s of healing (streams %v)", rec.ID, rec.Home, wat.last(rec), end, rec.Streams)
		}
	}
	stopWatch()
	watchers.Wait()

	checkStart := time.Now()
	// Final state: a linearizable list from every node; they must agree.
	var items []*corev1.ConfigMap
	var first string
	for _, name := range c.membersNow() {
		l, err := client.For[*corev1.ConfigMap](c.pinned(name)).List(final, ns, client.ListOptions{})
		if err != nil {
			fail("no-recovery", "final list on %s: %v", name, err)
			return
		}
		if items == nil {
			items, first = l.Items, name
			continue
		}
		if a, b := listSummary(items), listSummary(l.Items); a != b {
			fail("nodes-disagree", "final lists differ: %s has %d objects, %s has %d", first, len(items), name, len(l.Items))
		}
	}

	var as []anomaly
	rep.Register, as = reg.check(runDir, 60*time.Second)
	anomalies = append(anomalies, as...)
	rep.Set, as = set.check(items)
	anomalies = append(anomalies, as...)

	// Watch: the reference history from every node, then each watcher against it.
	per, from := map[string][]wev{}, map[string]int64{}
	for _, name := range c.membersNow() {
		evs, lo, err := wat.reference(final, name, base, end)
		if err != nil {
			fail("watch-reference", "%v", err)
			continue
		}
		per[name], from[name] = evs, lo
	}
	ref, as := buildReference(per, from, end)
	anomalies = append(anomalies, as...)
	rep.Watch = watchResult{Watchers: len(wat.watchers), Reference: from, RefEvents: len(ref.revs)}
	for _, rec := range wat.watchers {
		n, unverifiable, as := checkWatcher(rec, base, ref)
		rep.Watch.Events += n
		rep.Watch.Unverifiable += unverifiable
		rep.Watch.Resumes += len(rec.Streams) - 1
		for i, s := range rec.Streams {
			if i > 0 && s.FromBookmark {
				rep.Watch.FromBookmark++
			}
		}
		for _, b := range rec.Batches {
			if len(b.Events) == 0 {
				rep.Watch.Bookmarks++
			}
		}
		rep.Watch.Gaps += len(rec.Gaps)
		anomalies = append(anomalies, as...)
	}
	// Resumable from any revision: watches of every member from random revisions of the
	// reference return exactly its events after them.
	rr := rand.New(rand.NewPCG(uint64(began.UnixNano()), 28))
	for _, name := range c.membersNow() {
		for i := 0; i < 3 && len(ref.revs) > 1; i++ {
			rev := ref.revs[rr.IntN(len(ref.revs)-1)]
			if !ref.covers(rev) || rev < from[name] {
				continue
			}
			evs, lo, err := wat.reference(final, name, rev, end)
			if err != nil {
				fail("watch-reference", "%v", err)
				continue
			}
			if lo != rev {
				continue // compacted on that node since the reference was read
			}
			rep.Watch.Resumed++
			anomalies = append(anomalies, checkResumed(name, rev, evs, ref)...)
		}
	}
	anomalies = append(anomalies, checkAcknowledged(append(reg.acknowledged(), set.acknowledged()...), ref)...)
	anomalies = append(anomalies, checkFinalState(items, ref)...)

	// Availability: the longest stretch without a successful write after each fault.
	wmu.Lock()
	sort.Slice(writes, func(i, j int) bool { return writes[i] < writes[j] })
	rep.Writes = len(writes)
	for i := range rep.Faults {
		until := workEnd
		if i+1 < len(rep.Faults) {
			until = rep.Faults[i+1].Start
		}
		rep.Faults[i].UnavailableMs, rep.Faults[i].FirstWriteMs = unavailability(writes, rep.Faults[i].Start, until)
	}
	wmu.Unlock()
	rep.Availability = availability(rep.Faults)
	if nem.rolling {
		anomalies = append(anomalies, checkRolling(set, rep, leaders, len(c.membersNow()), scheduleEnd)...)
	}
	rep.CheckTime = time.Since(checkStart).Round(time.Millisecond).String()
	writeHistories(t, runDir, reg, set, wat)
}

func listSummary(items []*corev1.ConfigMap) string {
	var s []string
	for _, cm := range items {
		s = append(s, cm.Name+"@"+cm.ResourceVersion)
	}
	sort.Strings(s)
	return strings.Join(s, ",")
}

// unavailability returns the longest gap between successful writes (ms) in [from, until],
// counting from the fault's start and up to until, and the time to the first success.
func unavailability(writes []int64, from, until int64) (longest, first float64) {
	i := sort.Search(len(writes), func(i int) bool { return writes[i] >= from })
	prev := from
	firstSet := false
	for ; i < len(writes) && writes[i] <= until; i++ {
		if !firstSet {
			first, firstSet = float64(writes[i]-from)/1e6, true
		}
		longest = max(longest, float64(writes[i]-prev)/1e6)
		prev = writes[i]
	}
	longest = max(longest, float64(until-prev)/1e6)
	if !firstSet {
		first = float64(until-from) / 1e6
	}
	return longest, first
}

func availability(faults []fault) map[string]stat {
	byKind := map[string][]float64{}
	for _, f := range faults {
		byKind[f.Kind] = append(byKind[f.Kind], f.UnavailableMs)
	}
	out := map[string]stat{}
	for k, v := range byKind {
		sort.Float64s(v)
		pct := func(p float64) float64 { return v[min(len(v)-1, int(p*float64(len(v))))] }
		out[k] = stat{Faults: len(v), P50Ms: pct(0.5), P99Ms: pct(0.99), MaxMs: v[len(v)-1]}
	}
	return out
}

// writeHistories saves every recorded operation and watch batch next to the report.
func writeHistories(t *testing.T, dir string, reg *registerWorkload, set *setWorkload, wat *watchWorkload) {
	reg.mu.Lock()
	set.mu.Lock()
	h := map[string]any{"register": reg.history, "set": set.history}
	var ws []map[string]any
	for _, rec := range wat.watchers {
		rec.mu.Lock()
		ws = append(ws, map[string]any{"id": rec.ID, "home": rec.Home, "bookmarks": rec.Bookmarks, "streams": rec.Streams, "gaps": rec.Gaps, "batches": rec.Batches})
		rec.mu.Unlock()
	}
	h["watchers"] = ws
	b, err := json.Marshal(h)
	set.mu.Unlock()
	reg.mu.Unlock()
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "history.json"), b, 0o644)
	}
	if err != nil {
		t.Errorf("write history: %v", err)
	}
}

// summarize logs the human summary and fails the test on any anomaly.
func summarize(t *testing.T, rep *report, dir string) {
	var b strings.Builder
	fmt.Fprintf(&b, "jepsen %s: %d nodes, %s, raft %v", rep.Nemesis, rep.Nodes, rep.Duration, rep.RaftTiming)
	if rep.Network != "" {
		fmt.Fprintf(&b, ", partitions by %s", rep.Network)
	}
	b.WriteString("\n")
	r := rep.Register
	fmt.Fprintf(&b, "  register: %d ops on %d keys (%d unknown, %d refused, %d creates refused for a namespace the node had not seen); non-linearizable keys: %d; check timed out: %d\n",
		r.Ops, r.Keys, r.Unknown, r.Refused, r.NamespaceNotFound, len(r.Illegal), len(r.TimedOut))
	s := rep.Set
	fmt.Fprintf(&b, "  set: %d creates, %d acknowledged, %d unknown (%d of them happened), %d failed; %d objects at the end\n",
		s.Attempts, s.Acknowledged, s.Unknown, s.UnknownPresent, s.Failed, s.Final)
	w := rep.Watch
	fmt.Fprintf(&b, "  watch: %d watchers, %d events, %d bookmarks, %d resumes on another node (%d from a bookmark), %d compacted gaps; reference %d revisions (complete after %v); %d events before it; %d watches from random revisions\n",
		w.Watchers, w.Events, w.Bookmarks, w.Resumes, w.FromBookmark, w.Gaps, w.RefEvents, w.Reference, w.Unverifiable, w.Resumed)
	fmt.Fprintf(&b, "  faults: %d; successful writes: %d\n", len(rep.Faults), rep.Writes)
	for _, l := range rep.Leaders {
		fmt.Fprintf(&b, "    %7.1fs leader change   %s, seen within %.0fms\n", float64(l.From)/1e9, l.Note, float64(l.To-l.From)/1e6)
	}
	for _, f := range rep.Faults {
		fmt.Fprintf(&b, "    %7.1fs %-16s %-12v %-24s healed %5.1fs later; first write after %6.0fms, longest without a write %6.0fms%s\n",
			float64(f.Start)/1e9, f.Kind, f.Targets, f.Note, float64(f.Healed-f.Start)/1e9, f.FirstWriteMs, f.UnavailableMs, healNote(f))
	}
	for k, st := range rep.Availability {
		fmt.Fprintf(&b, "  write unavailability after %s: p50 %.0fms p99 %.0fms max %.0fms over %d faults\n", k, st.P50Ms, st.P99Ms, st.MaxMs, st.Faults)
	}
	fmt.Fprintf(&b, "  anomalies: %d; report: %s", len(rep.Anomalies), filepath.Join(dir, "report.json"))
	t.Log(b.String())
	for i, a := range rep.Anomalies {
		if i == 20 {
			t.Errorf("... and %d more anomalies (see the report)", len(rep.Anomalies)-20)
			break
		}
		t.Errorf("ANOMALY %s/%s: %s", a.Checker, a.Kind, a.Detail)
	}
}

func healNote(f fault) string {
	if f.HealErr != "" {
		return " (heal: " + f.HealErr + ")"
	}
	return ""
}

// leaderChangeSlack widens each leader-change window for the 100ms polling and the
// status calls that see it, and for the client to hear of it.
const leaderChangeSlack = int64(time.Second)

// checkRolling holds a planned change (an upgrade) to what clients may notice: every
// member had its turn; a write through the failover client (the set workload, as a
// component writes) fails or ends unknown only in a leader-change window (the leadership
// transfer away from a member about to stop, or an election), widened by
// leaderChangeSlack; no watch lost events to a compaction. A write still running when
// the run ended (at end) is cut by it, not failed.
func checkRolling(set *setWorkload, rep *report, leaders []leaderChange, members int, end int64) []anomaly {
	rep.Leaders = leaders
	var out []anomaly
	if len(rep.Faults) != members {
		out = append(out, anomaly{Checker: "rolling", Kind: "incomplete", Detail: fmt.Sprintf("%d of %d members had their turn", len(rep.Faults), members)})
	}
	for _, f := range rep.Faults {
		if f.HealErr != "" {
			out = append(out, anomaly{Checker: "rolling", Kind: "incomplete", Detail: fmt.Sprintf("%v: %s", f.Targets, f.HealErr)})
		}
	}
	set.mu.Lock()
	defer set.mu.Unlock()
	for _, op := range set.history {
		if op.Outcome == outOK || op.Return >= end {
			continue
		}
		inWindow := false
		for _, l := range leaders {
			if op.Return >= l.From-leaderChangeSlack && op.Call <= l.To+leaderChangeSlack {
				inWindow = true
				break
			}
		}
		if !inWindow {
			out = append(out, anomaly{Checker: "rolling", Kind: "failed-write", SetOps: []setOp{op},
				Detail: fmt.Sprintf("create of id %s ended %s at %.1fs, outside every leader-change window: %s", op.ID, op.Outcome, float64(op.Return)/1e9, op.Err)})
		}
	}
	if rep.Watch.Gaps > 0 {
		out = append(out, anomaly{Checker: "rolling", Kind: "watch-gap", Detail: fmt.Sprintf("watches lost events to compaction %d times", rep.Watch.Gaps)})
	}
	return out
}

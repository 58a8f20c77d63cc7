package scheduler

import (
	"math/rand/v2"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/kinds"
)

func TestFilters(t *testing.T) {
	tests := []struct {
		name   string
		plugin FilterPlugin
		pod    *PodInfo
		node   *NodeInfo
		want   []string // nil: passes
	}{
		{"ready", NodeReady{}, NewPodInfo(makePod("p", "", "")), nodeInfoWith(makeNode("n", "1", "1Gi")), nil},
		{"not ready", NodeReady{}, NewPodInfo(makePod("p", "", "")), nodeInfoWith(makeNode("n", "1", "1Gi", notReady)), []string{"node(s) were not ready"}},
		{"cordoned", NodeReady{}, NewPodInfo(makePod("p", "", "")), nodeInfoWith(makeNode("n", "1", "1Gi", cordoned)), []string{"node(s) were unschedulable"}},
		{"cordoned, tolerated (a daemon pod)", NodeReady{},
			NewPodInfo(makePod("p", "", "", withToleration(corev1.TaintNodeUnschedulable, corev1.TolerationOpExists, "", corev1.TaintEffectNoSchedule))),
			nodeInfoWith(makeNode("n", "1", "1Gi", cordoned)), nil},
		{"no condition", NodeReady{}, NewPodInfo(makePod("p", "", "")),
			nodeInfoWith(makeNode("n", "1", "1Gi", func(n *corev1.Node) { n.Status.Conditions = nil })), []string{"node(s) were not ready"}},

		{"fits", NodeResourcesFit{}, NewPodInfo(makePod("p", "500m", "512Mi")),
			nodeInfoWith(makeNode("n", "1", "1Gi"), makePod("a", "500m", "512Mi", onNode("n"))), nil},
		{"cpu", NodeResourcesFit{}, NewPodInfo(makePod("p", "501m", "")),
			nodeInfoWith(makeNode("n", "1", "1Gi"), makePod("a", "500m", "", onNode("n"))), []string{"Insufficient cpu"}},
		{"memory", NodeResourcesFit{}, NewPodInfo(makePod("p", "", "1Gi")),
			nodeInfoWith(makeNode("n", "1", "1Gi"), makePod("a", "", "1", onNode("n"))), []string{"Insufficient memory"}},
		{"cpu and memory", NodeResourcesFit{}, NewPodInfo(makePod("p", "2", "2Gi")),
			nodeInfoWith(makeNode("n", "1", "1Gi")), []string{"Insufficient cpu", "Insufficient memory"}},
		{"pods", NodeResourcesFit{}, NewPodInfo(makePod("p", "", "")),
			nodeInfoWith(makeNode("n", "1", "1Gi", withMaxPods("1")), makePod("a", "", "", onNode("n"))), []string{"Too many pods"}},
		{"zero request fits full node", NodeResourcesFit{}, NewPodInfo(makePod("p", "", "")),
			nodeInfoWith(makeNode("n", "1", "1Gi"), makePod("a", "1", "1Gi", onNode("n"))), nil},

		{"selector matches", NodeAffinity{}, NewPodInfo(makePod("p", "", "", withSelector("disk", "ssd"))),
			nodeInfoWith(makeNode("n", "1", "1Gi", withLabel("disk", "ssd"))), nil},
		{"selector value differs", NodeAffinity{}, NewPodInfo(makePod("p", "", "", withSelector("disk", "ssd"))),
			nodeInfoWith(makeNode("n", "1", "1Gi", withLabel("disk", "hdd"))), []string{"node(s) didn't match Pod's node affinity/selector"}},
		{"selector label missing", NodeAffinity{}, NewPodInfo(makePod("p", "", "", withSelector("disk", "ssd"))),
			nodeInfoWith(makeNode("n", "1", "1Gi")), []string{"node(s) didn't match Pod's node affinity/selector"}},

		{"untolerated NoSchedule", TaintToleration{}, NewPodInfo(makePod("p", "", "")),
			nodeInfoWith(makeNode("n", "1", "1Gi", withTaint("k", "v", "NoSchedule"))), []string{"node(s) had untolerated taint {k: v}"}},
		{"untolerated NoExecute", TaintToleration{}, NewPodInfo(makePod("p", "", "")),
			nodeInfoWith(makeNode("n", "1", "1Gi", withTaint("gpu", "", "NoExecute"))), []string{"node(s) had untolerated taint {gpu: }"}},
		{"PreferNoSchedule ignored", TaintToleration{}, NewPodInfo(makePod("p", "", "")),
			nodeInfoWith(makeNode("n", "1", "1Gi", withTaint("k", "v", "PreferNoSchedule"))), nil},
		{"tolerated Equal", TaintToleration{}, NewPodInfo(makePod("p", "", "", withToleration("k", "Equal", "v", "NoSchedule"))),
			nodeInfoWith(makeNode("n", "1", "1Gi", withTaint("k", "v", "NoSchedule"))), nil},
		{"toleration value differs", TaintToleration{}, NewPodInfo(makePod("p", "", "", withToleration("k", "", "w", ""))),
			nodeInfoWith(makeNode("n", "1", "1Gi", withTaint("k", "v", "NoSchedule"))), []string{"node(s) had untolerated taint {k: v}"}},
		{"toleration effect differs", TaintToleration{}, NewPodInfo(makePod("p", "", "", withToleration("k", "Exists", "", "NoExecute"))),
			nodeInfoWith(makeNode("n", "1", "1Gi", withTaint("k", "v", "NoSchedule"))), []string{"node(s) had untolerated taint {k: v}"}},
		{"tolerated Exists", TaintToleration{}, NewPodInfo(makePod("p", "", "", withToleration("k", "Exists", "", ""))),
			nodeInfoWith(makeNode("n", "1", "1Gi", withTaint("k", "v", "NoSchedule"), withTaint("k", "w", "NoExecute"))), nil},
		{"tolerate everything", TaintToleration{}, NewPodInfo(makePod("p", "", "", withToleration("", "Exists", "", ""))),
			nodeInfoWith(makeNode("n", "1", "1Gi", withTaint("a", "1", "NoSchedule"), withTaint("b", "2", "NoExecute"))), nil},
		{"second taint untolerated", TaintToleration{}, NewPodInfo(makePod("p", "", "", withToleration("a", "Exists", "", ""))),
			nodeInfoWith(makeNode("n", "1", "1Gi", withTaint("a", "1", "NoSchedule"), withTaint("b", "2", "NoExecute"))), []string{"node(s) had untolerated taint {b: 2}"}},

		{"port free", NodePorts{}, NewPodInfo(makePod("p", "", "", withHostPort(80, "TCP", ""))),
			nodeInfoWith(makeNode("n", "1", "1Gi"), makePod("a", "", "", onNode("n"), withHostPort(81, "TCP", ""))), nil},
		{"port taken", NodePorts{}, NewPodInfo(makePod("p", "", "", withHostPort(80, "", ""))),
			nodeInfoWith(makeNode("n", "1", "1Gi"), makePod("a", "", "", onNode("n"), withHostPort(80, "TCP", ""))),
			[]string{"node(s) didn't have free ports for the requested pod ports"}},
		{"other protocol", NodePorts{}, NewPodInfo(makePod("p", "", "", withHostPort(53, "UDP", ""))),
			nodeInfoWith(makeNode("n", "1", "1Gi"), makePod("a", "", "", onNode("n"), withHostPort(53, "TCP", ""))), nil},
		{"other address", NodePorts{}, NewPodInfo(makePod("p", "", "", withHostPort(80, "TCP", "10.0.0.1"))),
			nodeInfoWith(makeNode("n", "1", "1Gi"), makePod("a", "", "", onNode("n"), withHostPort(80, "TCP", "10.0.0.2"))), nil},
		{"wildcard conflicts", NodePorts{}, NewPodInfo(makePod("p", "", "", withHostPort(80, "TCP", "10.0.0.1"))),
			nodeInfoWith(makeNode("n", "1", "1Gi"), makePod("a", "", "", onNode("n"), withHostPort(80, "TCP", "0.0.0.0"))),
			[]string{"node(s) didn't have free ports for the requested pod ports"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := runFilter(tt.plugin, tt.pod, tt.node)
			if tt.want == nil {
				if !st.IsSuccess() {
					t.Fatalf("got %v, want success", st)
				}
				return
			}
			if st.IsSuccess() || st.Code != Unschedulable {
				t.Fatalf("got %v, want unschedulable %v", st, tt.want)
			}
			if !reflect.DeepEqual(st.Reasons, tt.want) {
				t.Fatalf("reasons %q, want %q", st.Reasons, tt.want)
			}
		})
	}
}

func TestHostNetworkClaimsContainerPorts(t *testing.T) {
	p := makePod("p", "", "")
	p.Spec.HostNetwork = true
	p.Spec.Containers[0].Ports = append(p.Spec.Containers[0].Ports, corev1.ContainerPort{ContainerPort: 8080})
	pi := NewPodInfo(p)
	if len(pi.Ports) != 1 || pi.Ports[0] != (kinds.HostPort{Protocol: "TCP", Port: 8080}) {
		t.Fatalf("ports %v, want TCP 8080", pi.Ports)
	}
}

// Init containers and sidecars count as Kubernetes counts them: a sidecar's requests add
// to the app containers' and to those of the init containers after it, whose largest
// need wins if it is more; its host ports are held; an init container's are not.
func TestPodInfoInitContainers(t *testing.T) {
	p := makePod("p", "1", "1Gi")
	side := corev1.Container{Name: "side", Image: "img", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways),
		Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), "example.com/foo": resource.MustParse("1")}},
		Ports:     []corev1.ContainerPort{{ContainerPort: 80, HostPort: 8080}}}
	init := func(name, cpu string) corev1.Container {
		return corev1.Container{Name: name, Image: "img", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}},
			Ports: []corev1.ContainerPort{{ContainerPort: 81, HostPort: 8081}}}
	}
	p.Spec.InitContainers = []corev1.Container{init("first", "1200m"), side, init("after", "1800m")}
	pi := NewPodInfo(p)
	if pi.Requests.MilliCPU != 2300 || pi.Requests.Memory != 1<<30 || pi.Requests.Scalar["example.com/foo"] != 1 || pi.Requests.Pods != 1 {
		t.Errorf("requests %+v, want 2300m cpu, 1Gi, one example.com/foo", pi.Requests)
	}
	if pi.NonZero.MilliCPU != 2300 || pi.NonZero.Memory != 1<<30 {
		t.Errorf("non-zero requests %+v", pi.NonZero)
	}
	if len(pi.Ports) != 1 || pi.Ports[0] != (kinds.HostPort{Protocol: "TCP", Port: 8080}) {
		t.Errorf("ports %v, want the sidecar's TCP 8080", pi.Ports)
	}
}

func TestScores(t *testing.T) {
	pod := NewPodInfo(makePod("p", "1", "1Gi"))
	empty := nodeInfoWith(makeNode("empty", "4", "4Gi"))
	half := nodeInfoWith(makeNode("half", "4", "4Gi"), makePod("a", "1", "1Gi", onNode("half")))
	skewed := nodeInfoWith(makeNode("skewed", "4", "4Gi"), makePod("a", "3", "", onNode("skewed")))
	tests := []struct {
		name   string
		plugin ScorePlugin
		node   *NodeInfo
		want   int64
	}{
		{"least allocated empty", LeastAllocated{}, empty, 75},   // (3/4 + 3/4)/2
		{"least allocated half", LeastAllocated{}, half, 50},     // (2/4 + 2/4)/2
		{"least allocated skewed", LeastAllocated{}, skewed, -1}, // set below
		{"balanced empty", BalancedAllocation{}, empty, 100},     // 1/4 vs 1/4
		{"balanced skewed", BalancedAllocation{}, skewed, -1},    // set below
		{"least allocated overfull", LeastAllocated{}, nodeInfoWith(makeNode("tiny", "500m", "512Mi")), 0},
	}
	// skewed: cpu 4/4 used → 0; memory: 200Mi default (the pod "a" sets no memory) + 1Gi of 4Gi.
	memLeft := (int64(4<<30) - (200<<20 + 1<<30)) * 100 / (4 << 30)
	tests[2].want = (0 + memLeft) / 2
	memFrac := float64(200<<20+1<<30) / float64(4<<30)
	tests[4].want = int64((1 - (1-memFrac)/2) * 100)
	for _, tt := range tests {
		if got := tt.plugin.Score(nil, pod, tt.node); got != tt.want {
			t.Errorf("%s: score %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestOwnerSpread(t *testing.T) {
	pod := NewPodInfo(makePod("p", "", "", ownedBy("rs1")))
	nodes := []*NodeInfo{
		nodeInfoWith(makeNode("a", "4", "4Gi"), makePod("x", "", "", onNode("a"), ownedBy("rs1")), makePod("y", "", "", onNode("a"), ownedBy("rs1"))),
		nodeInfoWith(makeNode("b", "4", "4Gi"), makePod("z", "", "", onNode("b"), ownedBy("rs1"))),
		nodeInfoWith(makeNode("c", "4", "4Gi"), makePod("w", "", "", onNode("c"), ownedBy("other"))),
	}
	scores := make([]int64, len(nodes))
	for i, n := range nodes {
		scores[i] = OwnerSpread{}.Score(nil, pod, n)
	}
	OwnerSpread{}.NormalizeScores(nil, pod, nodes, scores)
	if want := []int64{0, 50, 100}; !reflect.DeepEqual(scores, want) {
		t.Fatalf("scores %v, want %v", scores, want)
	}
}

func TestRegistryRejectsDuplicates(t *testing.T) {
	r := DefaultRegistry()
	if err := r.Register(NodeReady{}); err == nil {
		t.Fatal("registering NodeReady twice succeeded")
	}
	if _, err := NewFramework(r, Profile{Filters: []string{"Nope"}}, FrameworkOptions{}); err == nil {
		t.Fatal("a profile naming an unknown plugin was accepted")
	}
	if _, err := NewFramework(r, Profile{Filters: []string{NameLeastAllocated}}, FrameworkOptions{}); err == nil {
		t.Fatal("a score plugin was accepted as a filter")
	}
}

func newTestFramework(t *testing.T, seed uint64, percentage int) *Framework {
	t.Helper()
	fw, err := NewFramework(DefaultRegistry(), DefaultProfile(), FrameworkOptions{
		PercentageOfNodesToScore: percentage, Parallelism: 1, Rand: rand.New(rand.NewPCG(seed, seed)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return fw
}

func TestFitErrorMessage(t *testing.T) {
	fw := newTestFramework(t, 1, 0)
	c := cacheWith([]*corev1.Node{
		makeNode("a", "1", "1Gi"), makeNode("b", "1", "1Gi"), makeNode("c", "1", "1Gi"),
		makeNode("d", "8", "8Gi", withTaint("k", "v", "NoSchedule")), makeNode("e", "8", "8Gi", withTaint("k", "v", "NoExecute")),
	})
	_, err := fw.Schedule(NewPodInfo(makePod("p", "2", "")), c)
	want := "0/5 nodes are available: 2 node(s) had untolerated taint {k: v}, 3 Insufficient cpu."
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
	if _, err := fw.Schedule(NewPodInfo(makePod("p", "", "")), NewCache()); err == nil || err.Error() != "no nodes available to schedule pods" {
		t.Fatalf("no nodes: got %v", err)
	}
}

func TestNumFeasibleNodesToFind(t *testing.T) {
	for _, tt := range []struct{ pct, all, want int }{
		{0, 10, 10}, {0, 99, 99}, {0, 100, 100}, {0, 1000, 420}, {0, 5000, 500}, {0, 6000, 300}, {0, 100000, 5000},
		{10, 500, 100}, {50, 1000, 500}, {100, 5000, 5000},
	} {
		if got := numFeasibleNodesToFind(tt.pct, tt.all); got != tt.want {
			t.Errorf("numFeasibleNodesToFind(%d, %d) = %d, want %d", tt.pct, tt.all, got, tt.want)
		}
	}
}

func TestScheduleSamplesAndRotates(t *testing.T) {
	for _, par := range []int{1, 2} {
		fw := newTestFramework(t, 7, 10)
		fw.parallelism = par
		c := NewCache()
		for i := 0; i < 2000; i++ {
			c.AddNode(makeNode(nodeName(i), "4", "4Gi"))
		}
		res, err := fw.Schedule(NewPodInfo(makePod("p", "", "")), c)
		if err != nil {
			t.Fatal(err)
		}
		if res.Evaluated != 200 || res.Feasible != 200 {
			t.Fatalf("parallelism %d: evaluated %d, feasible %d; want 200 and 200", par, res.Evaluated, res.Feasible)
		}
		if fw.nextStart != 200 {
			t.Fatalf("next start %d, want 200", fw.nextStart)
		}
		if _, err := fw.Schedule(NewPodInfo(makePod("p", "", "")), c); err != nil || fw.nextStart != 400 {
			t.Fatalf("second cycle: next start %d, err %v; want 400", fw.nextStart, err)
		}
		// Every other node fails: the cycle reads twice as many.
		for i := 0; i < 2000; i++ {
			if i%2 == 0 {
				c.UpdateNode(makeNode(nodeName(i), "4", "4Gi", notReady))
			}
		}
		res, err = fw.Schedule(NewPodInfo(makePod("p", "", "")), c)
		if err != nil || res.Evaluated != 400 || res.Feasible != 200 {
			t.Fatalf("half ready: %+v, %v", res, err)
		}
	}
}

func nodeName(i int) string { return "node-" + itoa(i) }

func itoa(i int) string {
	const digits = "0123456789"
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{digits[i%10]}, b...)
	}
	return string(b)
}

func TestScheduleDeterministicTieBreak(t *testing.T) {
	place := func(seed uint64) []string {
		fw := newTestFramework(t, seed, 0)
		c := NewCache()
		for i := 0; i < 10; i++ {
			c.AddNode(makeNode(nodeName(i), "4", "4Gi"))
		}
		var out []string
		for i := 0; i < 5; i++ {
			res, err := fw.Schedule(NewPodInfo(makePod("p", "", "")), c)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, res.Node)
		}
		return out
	}
	a, b := place(42), place(42)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("same seed, different placements: %v vs %v", a, b)
	}
	seen := map[string]bool{}
	for s := uint64(1); s < 20; s++ {
		seen[place(s)[0]] = true
	}
	if len(seen) < 3 {
		t.Fatalf("ties always go the same way: %v", seen)
	}
}

func TestSchedulePrefersEmptierNode(t *testing.T) {
	fw := newTestFramework(t, 3, 0)
	c := cacheWith([]*corev1.Node{makeNode("busy", "4", "4Gi"), makeNode("idle", "4", "4Gi")},
		makePod("a", "3", "3Gi", onNode("busy")))
	res, err := fw.Schedule(NewPodInfo(makePod("p", "500m", "512Mi")), c)
	if err != nil || res.Node != "idle" {
		t.Fatalf("got %+v %v, want idle", res, err)
	}
}

package endpointslice

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/controllers/internal/controllertest"
	"github.com/skiffhq/skiff/test/waitfor"
)

func testService() *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "uid-web", Labels: map[string]string{"tier": "front"}},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, ClusterIP: "10.43.0.20",
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("http")}}}}
}

// testPod is a pod of the Service at ip, on node n1, serving "http" on port.
func testPod(name, ip string, ready bool, port int32) *corev1.Pod {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name), Labels: map[string]string{"app": "web"}},
		Spec:   corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: port}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}}}
}

func pods(n int) []*corev1.Pod {
	out := make([]*corev1.Pod, n)
	for i := range n {
		out[i] = testPod(fmt.Sprintf("p%03d", i), fmt.Sprintf("10.42.%d.%d", i/250, i%250+1), true, 8080)
	}
	return out
}

func zones(node string) string { return map[string]string{"n1": "zone-a"}[node] }

// named gives created slices names, as the API server would.
func named(ch Changes) []*discoveryv1.EndpointSlice {
	var out []*discoveryv1.EndpointSlice
	for i, es := range ch.Create {
		es = es.DeepCopy()
		es.Name = fmt.Sprintf("web-%d", i)
		out = append(out, es)
	}
	return out
}

func addrs(es *discoveryv1.EndpointSlice) []string {
	var out []string
	for _, e := range es.Endpoints {
		out = append(out, e.Addresses[0])
	}
	return out
}

func TestEndpoint(t *testing.T) {
	svc := testService()
	ready, notReady := testPod("a", "10.42.0.1", true, 8080), testPod("b", "10.42.0.2", false, 8080)
	terminating := testPod("c", "10.42.0.3", true, 8080)
	terminating.DeletionTimestamp = new(metav1.Now())
	noIP := testPod("d", "", true, 8080)
	done := testPod("e", "10.42.0.5", false, 8080)
	done.Status.Phase = corev1.PodSucceeded
	host := testPod("f", "10.42.0.6", true, 8080)
	host.Spec.Hostname, host.Spec.Subdomain = "f0", "web"

	ch := Plan(svc, []*corev1.Pod{ready, notReady, terminating, noIP, done, host}, nil, zones, 100)
	if len(ch.Create) != 1 || len(ch.Update)+len(ch.Delete) != 0 {
		t.Fatalf("changes %+v, want one slice created", ch)
	}
	es := ch.Create[0]
	if es.GenerateName != "web-" || es.AddressType != discoveryv1.AddressTypeIPv4 || es.Labels[discoveryv1.LabelServiceName] != "web" ||
		es.Labels[discoveryv1.LabelManagedBy] != ManagedBy || es.Labels["tier"] != "front" || metav1.GetControllerOf(es).UID != "uid-web" {
		t.Fatalf("slice metadata %+v", es.ObjectMeta)
	}
	if len(es.Ports) != 1 || *es.Ports[0].Port != 8080 || *es.Ports[0].Name != "http" || *es.Ports[0].Protocol != corev1.ProtocolTCP {
		t.Fatalf("ports %+v, want http 8080/TCP (the container port named http)", es.Ports)
	}
	type want struct {
		ready, serving, terminating bool
		hostname                    string
	}
	wants := map[string]want{"10.42.0.1": {true, true, false, ""}, "10.42.0.2": {false, false, false, ""},
		"10.42.0.3": {false, true, true, ""}, "10.42.0.6": {true, true, false, "f0"}}
	if got := addrs(es); len(got) != len(wants) {
		t.Fatalf("endpoints %v, want those of %d pods (none without an IP or finished)", got, len(wants))
	}
	for _, e := range es.Endpoints {
		w := wants[e.Addresses[0]]
		c := e.Conditions
		if *c.Ready != w.ready || *c.Serving != w.serving || *c.Terminating != w.terminating || deref(e.Hostname) != w.hostname {
			t.Errorf("%s: ready %v serving %v terminating %v hostname %q, want %+v", e.Addresses[0], *c.Ready, *c.Serving, *c.Terminating, deref(e.Hostname), w)
		}
		if *e.NodeName != "n1" || *e.Zone != "zone-a" || e.TargetRef.Kind != "Pod" || e.TargetRef.UID == "" {
			t.Errorf("%s: node %v zone %v target %+v", e.Addresses[0], *e.NodeName, *e.Zone, e.TargetRef)
		}
	}

	// publishNotReadyAddresses: every endpoint is ready.
	svc.Spec.PublishNotReadyAddresses = true
	es = Plan(svc, []*corev1.Pod{notReady}, nil, zones, 100).Create[0]
	if c := es.Endpoints[0].Conditions; !*c.Ready || !*c.Serving {
		t.Fatalf("publishNotReadyAddresses: %+v", c)
	}
}

// TestSlicing: at most max endpoints a slice, one set of slices per resolved port, and
// an empty placeholder slice when nothing is left.
func TestSlicing(t *testing.T) {
	svc := testService()
	ch := Plan(svc, pods(250), nil, zones, 100)
	var sizes []int
	for _, es := range ch.Create {
		sizes = append(sizes, len(es.Endpoints))
	}
	if !slices.Equal(sizes, []int{100, 100, 50}) {
		t.Fatalf("slice sizes %v, want [100 100 50]", sizes)
	}

	// Pods serving "http" on different ports are in different slices.
	mixed := []*corev1.Pod{testPod("a", "10.42.0.1", true, 8080), testPod("b", "10.42.0.2", true, 9090)}
	ch = Plan(svc, mixed, nil, zones, 100)
	if len(ch.Create) != 2 || *ch.Create[0].Ports[0].Port == *ch.Create[1].Ports[0].Port {
		t.Fatalf("two ports: %d slices created", len(ch.Create))
	}

	// No pods: one empty slice; and it stays as it is.
	ch = Plan(svc, nil, nil, zones, 100)
	if len(ch.Create) != 1 || len(ch.Create[0].Endpoints) != 0 || len(ch.Create[0].Ports) != 0 {
		t.Fatalf("placeholder: %+v", ch)
	}
	if ch := Plan(svc, nil, named(ch), zones, 100); len(ch.Create)+len(ch.Update)+len(ch.Delete) != 0 {
		t.Fatalf("placeholder again: %+v", ch)
	}
	// Its pods gone, a Service's slices go but one, emptied.
	full := named(Plan(svc, pods(150), nil, zones, 100))
	ch = Plan(svc, nil, full, zones, 100)
	if len(ch.Create)+len(ch.Update) != 1 || len(ch.Delete) != 2 && len(ch.Create) == 1 {
		t.Fatalf("pods gone: %d created, %d updated, %d deleted", len(ch.Create), len(ch.Update), len(ch.Delete))
	}
}

// TestMinimalChurn: a change touches only the slices it must.
func TestMinimalChurn(t *testing.T) {
	svc := testService()
	all := pods(250)
	current := named(Plan(svc, all, nil, zones, 100))

	// Nothing changed: nothing written.
	if ch := Plan(svc, all, current, zones, 100); len(ch.Create)+len(ch.Update)+len(ch.Delete) != 0 {
		t.Fatalf("unchanged pods: %+v", ch)
	}

	// One pod turns not ready: only its slice is rewritten, the endpoint in place.
	changed := slices.Clone(all)
	changed[120] = testPod(all[120].Name, all[120].Status.PodIP, false, 8080)
	holder := slices.IndexFunc(current, func(es *discoveryv1.EndpointSlice) bool { return slices.Contains(addrs(es), all[120].Status.PodIP) })
	ch := Plan(svc, changed, current, zones, 100)
	if len(ch.Create)+len(ch.Delete) != 0 || len(ch.Update) != 1 || ch.Update[0].Name != current[holder].Name {
		t.Fatalf("one pod not ready: %d created, %d updated, %d deleted", len(ch.Create), len(ch.Update), len(ch.Delete))
	}
	if got := addrs(ch.Update[0]); !slices.Equal(got, addrs(current[holder])) {
		t.Fatalf("endpoints moved within the slice")
	}

	// One pod goes from the first slice and two come: the first slice, rewritten anyway,
	// takes one and the one with room the other; no slice is created.
	gone := slices.IndexFunc(all, func(p *corev1.Pod) bool { return p.Status.PodIP == addrs(current[0])[5] })
	next := append(slices.Delete(slices.Clone(all), gone, gone+1), testPod("new1", "10.42.9.1", true, 8080), testPod("new2", "10.42.9.2", true, 8080))
	ch = Plan(svc, next, current, zones, 100)
	if len(ch.Create)+len(ch.Delete) != 0 || len(ch.Update) != 2 {
		t.Fatalf("one pod replaced by two: %d created, %d updated, %d deleted", len(ch.Create), len(ch.Update), len(ch.Delete))
	}
	if n := len(ch.Update[0].Endpoints); ch.Update[0].Name != "web-0" || n != 100 {
		t.Fatalf("first slice: %s with %d endpoints", ch.Update[0].Name, n)
	}
	if n := len(ch.Update[1].Endpoints); ch.Update[1].Name != "web-2" || n != 51 {
		t.Fatalf("slice with room: %s with %d endpoints", ch.Update[1].Name, n)
	}

	// The Service's ports change: every slice is replaced.
	svc.Spec.Ports[0].TargetPort = intstr.FromInt32(9000)
	ch = Plan(svc, all, current, zones, 100)
	if len(ch.Create) != 3 || len(ch.Delete) != 3 {
		t.Fatalf("new port: %d created, %d deleted", len(ch.Create), len(ch.Delete))
	}
}

// TestTracker: the Writer: a Service whose slices the cache shows older than written waits.
func TestTracker(t *testing.T) {
	tr := NewWriter(nil, ManagedBy)
	es := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "web-a", ResourceVersion: "10"}}
	tr.wrote("default/web", es)
	if !tr.Stale("default/web", nil) {
		t.Fatal("a slice written and not in the cache is not stale")
	}
	old := es.DeepCopy()
	old.ResourceVersion = "9"
	if !tr.Stale("default/web", []*discoveryv1.EndpointSlice{old}) {
		t.Fatal("an older revision is not stale")
	}
	if tr.Stale("default/web", []*discoveryv1.EndpointSlice{es}) {
		t.Fatal("the revision written is stale")
	}
	tr.deleted("default/web", "web-a")
	if !tr.Stale("default/web", []*discoveryv1.EndpointSlice{es}) || tr.Stale("default/web", nil) {
		t.Fatal("a deleted slice")
	}

	// A slice written, then deleted by another before any sync saw it in the cache: its
	// event syncs the Service, which waits for nothing of it.
	tr.wrote("default/web", es)
	if !tr.observe("default/web", es, true) {
		t.Fatal("a deletion by another needs no sync")
	}
	if tr.Stale("default/web", nil) {
		t.Fatal("stale after a slice written was deleted by another: the sync waits for a slice that will not come")
	}
	// The controller's own deletion's event syncs nothing, and leaves nothing to wait for.
	tr.wrote("default/web", es)
	tr.deleted("default/web", "web-a")
	if tr.observe("default/web", es, true) || tr.Stale("default/web", nil) {
		t.Fatal("the controller's own deletion")
	}
}

// TestTrackerOwn: the events of the controller's own writes need no sync; others do.
func TestTrackerOwn(t *testing.T) {
	tr := NewWriter(nil, ManagedBy)
	slice := func(name, rv string) *discoveryv1.EndpointSlice {
		return &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: rv}}
	}
	tr.wrote("default/web", slice("web-a", "10"))
	tr.deleted("default/web", "web-b")
	for _, tc := range []struct {
		what    string
		svc     string
		es      *discoveryv1.EndpointSlice
		deleted bool
		own     bool
	}{
		{"the write", "default/web", slice("web-a", "10"), false, true},
		{"a later write by another", "default/web", slice("web-a", "11"), false, false},
		{"an older version", "default/web", slice("web-a", "9"), false, false},
		{"a deletion by another", "default/web", slice("web-a", "10"), true, false},
		{"the deletion", "default/web", slice("web-b", "7"), true, true},
		{"the deleted slice written by another", "default/web", slice("web-b", "12"), false, false},
		{"a slice never written", "default/web", slice("web-c", "10"), false, false},
		{"another Service's", "default/db", slice("web-a", "10"), false, false},
	} {
		if got := tr.Own(tc.svc, tc.es, tc.deleted); got != tc.own {
			t.Errorf("%s: own = %v, want %v", tc.what, got, tc.own)
		}
	}
	// A sync that found the cache stale waits for the slice: its event syncs at once.
	if !tr.Stale("default/web", nil) || tr.Own("default/web", slice("web-a", "10"), false) {
		t.Fatal("the event a stale sync waits for is taken as needing none")
	}
	if tr.Stale("default/web", []*discoveryv1.EndpointSlice{slice("web-a", "10")}) {
		t.Fatal("stale after the cache caught up")
	}
	tr.wrote("default/web", slice("web-a", "13"))
	if !tr.Own("default/web", slice("web-a", "13"), false) {
		t.Fatal("a write after the wait is not own")
	}
}

// TestController: the controller against an API server: endpoints follow the pods'
// readiness within 2 seconds, and a deleted pod's endpoint is terminating, then gone.
func TestController(t *testing.T) {
	cs, ctx := controllertest.Start(t, 60*time.Second, New, DefaultConfig())

	svc := testService()
	svc.UID, svc.Spec.ClusterIP = "", ""
	if _, err := cs.Services.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	for i, ready := range []bool{true, false} {
		p := testPod(fmt.Sprintf("p%d", i), "", false, 8080)
		p.UID = ""
		p.Spec.Containers[0].Image = "busybox"
		p, err := cs.Pods.Create(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		controllertest.SetPodStatus(t, ctx, cs, "default", p.Name, fmt.Sprintf("10.42.0.%d", i+1), ready)
	}
	endpoints := func() map[string]string { // address: "ready serving terminating"
		out := map[string]string{}
		l, err := cs.EndpointSlices.List(ctx, "default", client.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=web"})
		if err != nil {
			t.Fatal(err)
		}
		for _, es := range l.Items {
			for _, e := range es.Endpoints {
				c := e.Conditions
				out[e.Addresses[0]] = fmt.Sprint(*c.Ready, *c.Serving, *c.Terminating)
			}
		}
		return out
	}
	waitFor := func(what string, timeout time.Duration, want map[string]string) {
		t.Helper()
		waitfor.Condition(t, timeout, what, func() (bool, string) {
			got := endpoints()
			return fmt.Sprint(got) == fmt.Sprint(want), fmt.Sprint(got)
		})
	}
	waitFor("endpoints of both pods", 30*time.Second, map[string]string{"10.42.0.1": "true true false", "10.42.0.2": "false false false"})

	// Readiness flips: the endpoints follow within 2 s.
	controllertest.SetPodStatus(t, ctx, cs, "default", "p0", "10.42.0.1", false)
	controllertest.SetPodStatus(t, ctx, cs, "default", "p1", "10.42.0.2", true)
	waitFor("readiness followed", 2*time.Second, map[string]string{"10.42.0.1": "false false false", "10.42.0.2": "true true false"})

	// A pod deleted (on a node, so with its grace period) is terminating, then gone.
	if _, err := cs.Pods.Delete(ctx, "default", "p1", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("terminating", 2*time.Second, map[string]string{"10.42.0.1": "false false false", "10.42.0.2": "false true true"})
	if _, err := cs.Pods.Delete(ctx, "default", "p1", client.DeleteOptions{GracePeriodSeconds: new(int64(0))}); err != nil {
		t.Fatal(err)
	}
	waitFor("gone", 2*time.Second, map[string]string{"10.42.0.1": "false false false"})

	// One slice throughout: the controller never wrote twice from a stale cache.
	l, err := cs.EndpointSlices.List(ctx, "default", client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, es := range l.Items {
		if es.Name != "kubernetes" {
			names = append(names, es.Name)
		}
	}
	if len(names) != 1 || !strings.HasPrefix(names[0], "web-") {
		t.Fatalf("slices %v, want one of web", names)
	}

	// The Service goes: so do its slices.
	if _, err := cs.Services.Delete(ctx, "default", "web", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("no endpoints", 10*time.Second, map[string]string{})
}

// TestSelectors: Services whose selectors share labels each get the pods that carry all
// of theirs, and follow the pods' label changes (the Services are found by one label of
// their selector, the pods by the rarest one).
func TestSelectors(t *testing.T) {
	cs, ctx := controllertest.Start(t, 60*time.Second, New, DefaultConfig())

	for name, sel := range map[string]map[string]string{"web": {"app": "web"}, "fe": {"app": "web", "tier": "fe"}, "be": {"tier": "be"}} {
		svc := testService()
		svc.Name, svc.UID, svc.Spec.ClusterIP, svc.Spec.Selector = name, "", "", sel
		if _, err := cs.Services.Create(ctx, svc); err != nil {
			t.Fatal(err)
		}
	}
	for i, l := range []map[string]string{{"app": "web", "tier": "fe"}, {"app": "web", "tier": "be"}, {"app": "db", "tier": "be"}} {
		p := testPod(fmt.Sprintf("p%d", i), "", false, 8080)
		p.UID, p.Labels, p.Spec.Containers[0].Image = "", l, "busybox"
		if _, err := cs.Pods.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
		controllertest.SetPodStatus(t, ctx, cs, "default", p.Name, fmt.Sprintf("10.42.0.%d", i+1), true)
	}
	endpoints := func() string { // "service: addresses; ..."
		l, err := cs.EndpointSlices.List(ctx, "default", client.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		by := map[string][]string{}
		for _, es := range l.Items {
			if svc, ok := NewWriter(nil, ManagedBy).ServiceOf(es); ok {
				by[svc] = append(by[svc], addrs(es)...)
			}
		}
		var out []string
		for _, svc := range sortedKeys(by) {
			slices.Sort(by[svc])
			out = append(out, svc+": "+strings.Join(by[svc], " "))
		}
		return strings.Join(out, "; ")
	}
	waitFor := func(what, want string) {
		t.Helper()
		waitfor.Condition(t, 30*time.Second, what, func() (bool, string) {
			got := endpoints()
			return got == want, got
		})
	}
	waitFor("the pods of each selector", "be: 10.42.0.2 10.42.0.3; fe: 10.42.0.1; web: 10.42.0.1 10.42.0.2")

	relabel := func(name string, l map[string]string) {
		t.Helper()
		p, err := cs.Pods.Get(ctx, "default", name)
		if err != nil {
			t.Fatal(err)
		}
		p.Labels = l
		if _, err := cs.Pods.Update(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	relabel("p1", map[string]string{"app": "web", "tier": "fe"})
	waitFor("p1 moved to fe", "be: 10.42.0.3; fe: 10.42.0.1 10.42.0.2; web: 10.42.0.1 10.42.0.2")
	relabel("p0", map[string]string{"app": "db", "tier": "fe"})
	waitFor("p0 out of web", "be: 10.42.0.3; fe: 10.42.0.2; web: 10.42.0.2")
}

// TestRecreated: a slice of the controller's deleted by someone else is made again, each
// time (the step "recreating EndpointSlices after they've been deleted" of the
// conformance test "should create Endpoints and EndpointSlices for Pods matching a
// Service"). The Writer remembered its last write of the slice until a later sync saw it
// in the cache; when the write's own event had synced nothing, the slice's deletion left
// the Service waiting, every StaleRetry, for a slice that would never come back.
func TestRecreated(t *testing.T) {
	cs, ctx := controllertest.Start(t, 60*time.Second, New, DefaultConfig())

	svc := testService()
	svc.UID, svc.Spec.ClusterIP = "", ""
	if _, err := cs.Services.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	p := testPod("p0", "", false, 8080)
	p.UID, p.Spec.Containers[0].Image = "", "busybox"
	if _, err := cs.Pods.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	controllertest.SetPodStatus(t, ctx, cs, "default", "p0", "10.42.0.1", true)
	sel := client.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=web"}
	for round := range 5 {
		var names []string
		waitfor.Condition(t, 10*time.Second, fmt.Sprintf("round %d: the slice of p0", round), func() (bool, string) {
			l, err := cs.EndpointSlices.List(ctx, "default", sel)
			if err != nil {
				t.Fatal(err)
			}
			names = names[:0]
			var got []string
			for _, es := range l.Items {
				names = append(names, es.Name)
				got = append(got, addrs(es)...)
			}
			return fmt.Sprint(got) == "[10.42.0.1]", fmt.Sprint(names, got)
		})
		for _, name := range names {
			if _, err := cs.EndpointSlices.Delete(ctx, "default", name, client.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

package endpoints

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/controllers/internal/controllertest"
	"github.com/skiffhq/skiff/test/waitfor"
)

var created = metav1.NewTime(time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC))

func testService() *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "uid-web", Labels: map[string]string{"tier": "front"},
		CreationTimestamp: created},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, ClusterIP: "10.43.0.20",
			Ports: []corev1.ServicePort{
				{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("http")},
				{Name: "metrics", Port: 9100, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(9100)},
			}}}
}

// testPod is a pod of the Service at ip on node n1, serving "http" on port, ready or
// not since the Ready condition's transition at ready.
func testPod(name, ip string, ready bool, port int32) *corev1.Pod {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name), Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c", Image: "busybox",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: port}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: st, LastTransitionTime: created}}}}
}

// render prints subsets as "ready ips | not ready ips : ports" per subset, "; " between.
func render(subsets []corev1.EndpointSubset) string {
	var out []string
	for _, ss := range subsets {
		var r, n, p []string
		for _, a := range ss.Addresses {
			r = append(r, a.IP)
		}
		for _, a := range ss.NotReadyAddresses {
			n = append(n, a.IP)
		}
		for _, port := range ss.Ports {
			p = append(p, fmt.Sprintf("%s=%d/%s", port.Name, port.Port, port.Protocol))
		}
		out = append(out, fmt.Sprintf("%s | %s : %s", strings.Join(r, ","), strings.Join(n, ","), strings.Join(p, ",")))
	}
	return strings.Join(out, "; ")
}

func TestSubsets(t *testing.T) {
	terminating := testPod("term", "10.42.0.4", true, 8080)
	terminating.DeletionTimestamp = new(metav1.Now())
	done := testPod("done", "10.42.0.5", false, 8080)
	done.Status.Phase = corev1.PodSucceeded
	noHTTP := testPod("nohttp", "10.42.0.6", true, 8080)
	noHTTP.Spec.Containers[0].Ports = nil
	other := testPod("other", "10.42.0.7", true, 9090)
	base := []*corev1.Pod{testPod("a", "10.42.0.1", true, 8080), testPod("b", "10.42.0.2", false, 8080), testPod("c", "10.42.0.3", true, 8080),
		testPod("noip", "", true, 8080), terminating, done}
	headless := testService()
	headless.Spec.ClusterIP, headless.Spec.Ports = corev1.ClusterIPNone, nil
	notHeadless := testService()
	notHeadless.Spec.Ports = nil
	publish := testService()
	publish.Spec.PublishNotReadyAddresses = true
	udp := testService()
	udp.Spec.Ports = []corev1.ServicePort{{Name: "tcp", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(80)},
		{Name: "udp", Port: 80, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(80)}}
	for _, tc := range []struct {
		what string
		svc  *corev1.Service
		pods []*corev1.Pod
		want string
	}{
		{"ready and not, none without an IP, finished or terminating", testService(), base,
			"10.42.0.1,10.42.0.3 | 10.42.0.2 : http=8080/TCP,metrics=9100/TCP"},
		{"publishNotReadyAddresses: all ready, terminating included", publish, base,
			"10.42.0.1,10.42.0.2,10.42.0.3,10.42.0.4 |  : http=8080/TCP,metrics=9100/TCP"},
		{"a pod without the named port serves the others", testService(), []*corev1.Pod{testPod("a", "10.42.0.1", true, 8080), noHTTP},
			"10.42.0.1 |  : http=8080/TCP; 10.42.0.1,10.42.0.6 |  : metrics=9100/TCP"},
		{"pods serving a named port on different numbers", testService(), []*corev1.Pod{testPod("a", "10.42.0.1", true, 8080), other},
			"10.42.0.1 |  : http=8080/TCP; 10.42.0.7 |  : http=9090/TCP; 10.42.0.1,10.42.0.7 |  : metrics=9100/TCP"},
		{"same port, two protocols", udp, []*corev1.Pod{testPod("a", "10.42.0.1", true, 8080)},
			"10.42.0.1 |  : tcp=80/TCP,udp=80/UDP"},
		{"headless without ports: addresses alone", headless, base, "10.42.0.1,10.42.0.3 | 10.42.0.2 : "},
		{"not headless without ports: none", notHeadless, base, ""},
		{"no pods", testService(), nil, ""},
	} {
		if got := render(Repack(Subsets(tc.svc, tc.pods))); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.what, got, tc.want)
		}
	}
}

// TestAddress: an address names its pod, its node and, for a pod whose subdomain is the
// Service, its hostname.
func TestAddress(t *testing.T) {
	host := testPod("a", "10.42.0.1", true, 8080)
	host.Spec.Hostname, host.Spec.Subdomain = "a0", "web"
	elsewhere := testPod("b", "10.42.0.2", true, 8080)
	elsewhere.Spec.Hostname, elsewhere.Spec.Subdomain = "b0", "db"
	ss := Repack(Subsets(testService(), []*corev1.Pod{host, elsewhere}))
	if len(ss) != 1 || len(ss[0].Addresses) != 2 {
		t.Fatalf("subsets %s", render(ss))
	}
	a, b := ss[0].Addresses[0], ss[0].Addresses[1]
	if a.Hostname != "a0" || b.Hostname != "" {
		t.Errorf("hostnames %q %q, want a0 and none", a.Hostname, b.Hostname)
	}
	if *a.NodeName != "n1" || a.TargetRef.Kind != "Pod" || a.TargetRef.Name != "a" || a.TargetRef.UID != "uid-a" || a.TargetRef.Namespace != "default" {
		t.Errorf("address %+v %+v", a, a.TargetRef)
	}
}

// TestRepack: Kubernetes' RepackSubsets' cases — addresses merged across subsets by
// the ports they serve, not ready on any port is not ready, and the result independent
// of the input's order.
func TestRepack(t *testing.T) {
	addr := func(ip string) corev1.EndpointAddress { return corev1.EndpointAddress{IP: ip} }
	port := func(name string, n int32) corev1.EndpointPort {
		return corev1.EndpointPort{Name: name, Port: n, Protocol: corev1.ProtocolTCP}
	}
	for _, tc := range []struct {
		what string
		in   []corev1.EndpointSubset
		want string
	}{
		{"empty", nil, ""},
		{"one address, two subsets, two ports", []corev1.EndpointSubset{
			{Addresses: []corev1.EndpointAddress{addr("10.0.0.1")}, Ports: []corev1.EndpointPort{port("a", 80)}},
			{Addresses: []corev1.EndpointAddress{addr("10.0.0.1")}, Ports: []corev1.EndpointPort{port("b", 81)}}},
			"10.0.0.1 |  : a=80/TCP,b=81/TCP"},
		{"not ready wins", []corev1.EndpointSubset{
			{Addresses: []corev1.EndpointAddress{addr("10.0.0.1")}, Ports: []corev1.EndpointPort{port("a", 80)}},
			{NotReadyAddresses: []corev1.EndpointAddress{addr("10.0.0.1")}, Ports: []corev1.EndpointPort{port("a", 80)}}},
			" | 10.0.0.1 : a=80/TCP"},
		{"different addresses per port", []corev1.EndpointSubset{
			{Addresses: []corev1.EndpointAddress{addr("10.0.0.2"), addr("10.0.0.1")}, Ports: []corev1.EndpointPort{port("a", 80)}},
			{Addresses: []corev1.EndpointAddress{addr("10.0.0.1")}, Ports: []corev1.EndpointPort{port("b", 81)}}},
			"10.0.0.1,10.0.0.2 |  : a=80/TCP; 10.0.0.1 |  : b=81/TCP"},
		{"no ports", []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{addr("10.0.0.2")}, NotReadyAddresses: []corev1.EndpointAddress{addr("10.0.0.3")}}},
			"10.0.0.2 | 10.0.0.3 : "},
	} {
		if got := render(Repack(tc.in)); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.what, got, tc.want)
		}
		reversed := make([]corev1.EndpointSubset, len(tc.in))
		for i, ss := range tc.in {
			reversed[len(tc.in)-1-i] = ss
		}
		if got := render(Repack(reversed)); got != tc.want {
			t.Errorf("%s, reversed:\n got %s\nwant %s", tc.what, got, tc.want)
		}
	}
}

// TestDesired: labels, annotations and whether a write is needed.
func TestDesired(t *testing.T) {
	svc := testService()
	pods := []*corev1.Pod{testPod("a", "10.42.0.1", true, 8080)}
	at := time.Date(2026, 12, 5, 11, 0, 0, 5, time.UTC)
	ep, changed := Desired(svc, pods, nil, at)
	if !changed || ep.Name != "web" || ep.Namespace != "default" || len(ep.OwnerReferences) != 0 {
		t.Fatalf("new endpoints %+v, changed %v", ep.ObjectMeta, changed)
	}
	if want := map[string]string{"tier": "front", LabelManagedBy: ManagedBy}; fmt.Sprint(ep.Labels) != fmt.Sprint(want) {
		t.Errorf("labels %v, want %v", ep.Labels, want)
	}
	if got := ep.Annotations[corev1.EndpointsLastChangeTriggerTime]; got != "2026-12-05T11:00:00.000000005Z" {
		t.Errorf("trigger time %q", got)
	}
	if _, over := ep.Annotations[corev1.EndpointsOverCapacity]; over {
		t.Error("over-capacity annotation under capacity")
	}
	// As written, nothing to do, whatever the trigger time.
	if _, changed := Desired(svc, pods, ep, time.Time{}); changed {
		t.Error("unchanged endpoints rewritten")
	}
	// A change without a new trigger time drops the annotation.
	next, changed := Desired(svc, append(pods, testPod("b", "10.42.0.2", true, 8080)), ep, time.Time{})
	if _, ok := next.Annotations[corev1.EndpointsLastChangeTriggerTime]; !changed || ok {
		t.Errorf("new pod: changed %v, annotations %v", changed, next.Annotations)
	}
	// Labels follow the Service; a headless Service's are marked so.
	svc.Labels = map[string]string{"tier": "back"}
	svc.Spec.ClusterIP = corev1.ClusterIPNone
	next, changed = Desired(svc, pods, ep, time.Time{})
	if want := map[string]string{"tier": "back", corev1.IsHeadlessService: "", LabelManagedBy: ManagedBy}; !changed || fmt.Sprint(next.Labels) != fmt.Sprint(want) {
		t.Errorf("relabelled: changed %v, labels %v, want %v", changed, next.Labels, want)
	}
	// Endpoints someone else wrote (no managed-by label) are taken over.
	foreign := ep.DeepCopy()
	delete(foreign.Labels, LabelManagedBy)
	if _, changed := Desired(testService(), pods, foreign, time.Time{}); !changed {
		t.Error("endpoints without the controller's label kept as they are")
	}
}

// TestTruncate: past 1000 addresses, ready ones are kept first and the cut is spread
// over the subsets.
func TestTruncate(t *testing.T) {
	svc := testService()
	svc.Spec.Ports = svc.Spec.Ports[:1]
	var pods []*corev1.Pod
	for i := range 1200 {
		port := int32(8080)
		if i%2 == 1 {
			port = 9090 // two subsets, 600 each
		}
		pods = append(pods, testPod(fmt.Sprintf("p%04d", i), fmt.Sprintf("10.42.%d.%d", i/200, i%200+1), i < 900, port))
	}
	ep, _ := Desired(svc, pods, nil, time.Time{})
	ready, notReady := 0, 0
	for _, ss := range ep.Subsets {
		ready += len(ss.Addresses)
		notReady += len(ss.NotReadyAddresses)
		if n := len(ss.NotReadyAddresses); n != 50 {
			t.Errorf("subset %d not ready addresses, want 50 (100 cut in proportion)", n)
		}
	}
	if ready != 900 || notReady != 100 || ep.Annotations[corev1.EndpointsOverCapacity] != Truncated {
		t.Fatalf("%d ready, %d not ready, annotations %v; want 900, 100, over-capacity truncated", ready, notReady, ep.Annotations)
	}
	// As truncated, nothing to do.
	if _, changed := Desired(svc, pods, ep, time.Time{}); changed {
		t.Error("truncated endpoints rewritten unchanged")
	}
	// Over 1000 ready: the ready ones are cut and no not-ready one stays.
	for _, p := range pods {
		p.Status.Conditions[0].Status = corev1.ConditionTrue
	}
	ep, _ = Desired(svc, pods, nil, time.Time{})
	ready, notReady = 0, 0
	for _, ss := range ep.Subsets {
		ready += len(ss.Addresses)
		notReady += len(ss.NotReadyAddresses)
	}
	if ready != 1000 || notReady != 0 {
		t.Fatalf("all ready: %d ready, %d not ready; want 1000, 0", ready, notReady)
	}
	// Back under capacity: the annotation goes.
	ep, _ = Desired(svc, pods[:10], ep, time.Time{})
	if _, over := ep.Annotations[corev1.EndpointsOverCapacity]; over {
		t.Error("over-capacity annotation kept under capacity")
	}
}

// TestTriggerTimes: a new Service's creation; then the earliest change since the last
// sync; nothing when nothing changed.
func TestTriggerTimes(t *testing.T) {
	tr := NewTriggerTimes()
	svc := testService()
	a, b := testPod("a", "10.42.0.1", true, 8080), testPod("b", "10.42.0.2", true, 8080)
	if got := tr.Compute("default/web", svc, []*corev1.Pod{a, b}); !got.Equal(created.Time) {
		t.Errorf("new service: %v, want its creation", got)
	}
	if got := tr.Compute("default/web", svc, []*corev1.Pod{a, b}); !got.IsZero() {
		t.Errorf("nothing changed: %v", got)
	}
	t1, t2 := created.Add(time.Minute), created.Add(2*time.Minute)
	a.Status.Conditions[0].LastTransitionTime, b.Status.Conditions[0].LastTransitionTime = metav1.NewTime(t2), metav1.NewTime(t1)
	if got := tr.Compute("default/web", svc, []*corev1.Pod{a, b}); !got.Equal(t1) {
		t.Errorf("two pods changed: %v, want the earlier %v", got, t1)
	}
	tr.Forget("default/web")
	if got := tr.Compute("default/web", svc, []*corev1.Pod{a, b}); !got.Equal(created.Time) {
		t.Errorf("forgotten service: %v, want its creation", got)
	}
}

// TestController: the controller against an API server: a Service's Endpoints follow
// its pods' readiness, deleted Endpoints come back, a selectorless Service's
// user-written Endpoints are left alone, and a Service gone takes its Endpoints.
func TestController(t *testing.T) {
	cs, ctx := controllertest.Start(t, 90*time.Second, New, DefaultConfig())
	svc := testService()
	svc.UID, svc.Spec.ClusterIP, svc.CreationTimestamp = "", "", metav1.Time{}
	if _, err := cs.Services.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	for i, ready := range []bool{true, false} {
		p := testPod(fmt.Sprintf("p%d", i), "", false, 8080)
		p.UID = ""
		p.Status = corev1.PodStatus{}
		if _, err := cs.Pods.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
		controllertest.SetPodStatus(t, ctx, cs, "default", p.Name, fmt.Sprintf("10.42.0.%d", i+1), ready)
	}
	get := func(name string) (*corev1.Endpoints, bool) {
		ep, err := cs.Endpoints.Get(ctx, "default", name)
		if client.IsNotFound(err) {
			return nil, false
		}
		if err != nil {
			t.Fatal(err)
		}
		return ep, true
	}
	waitFor := func(what, name, want string) *corev1.Endpoints {
		t.Helper()
		var ep *corev1.Endpoints
		waitfor.Condition(t, 30*time.Second, what, func() (bool, string) {
			var ok bool
			ep, ok = get(name)
			if !ok {
				return want == "<gone>", "no endpoints"
			}
			got := render(ep.Subsets)
			return got == want, got
		})
		return ep
	}
	ep := waitFor("endpoints of both pods", "web", "10.42.0.1 | 10.42.0.2 : http=8080/TCP,metrics=9100/TCP")
	// The trigger time is not asked of this write: the sync that wrote both pods may
	// follow one that saw their changes and did not write (a retried or coalesced sync
	// has nothing new to date, as Kubernetes' tracker); TestTriggerTimes and
	// TestDesired check what is computed and written.
	if ep.Labels[LabelManagedBy] != ManagedBy || ep.Labels["tier"] != "front" {
		t.Errorf("endpoints metadata %+v", ep.ObjectMeta)
	}

	controllertest.SetPodStatus(t, ctx, cs, "default", "p0", "10.42.0.1", false)
	controllertest.SetPodStatus(t, ctx, cs, "default", "p1", "10.42.0.2", true)
	waitFor("readiness followed", "web", "10.42.0.2 | 10.42.0.1 : http=8080/TCP,metrics=9100/TCP")

	// Deleted, they come back.
	if _, err := cs.Endpoints.Delete(ctx, "default", "web", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("written again", "web", "10.42.0.2 | 10.42.0.1 : http=8080/TCP,metrics=9100/TCP")

	// A Service without a selector: the user's Endpoints stay as written.
	manual := testService()
	manual.Name, manual.UID, manual.Spec.ClusterIP, manual.Spec.Selector, manual.CreationTimestamp = "manual", "", "", nil, metav1.Time{}
	if _, err := cs.Services.Create(ctx, manual); err != nil {
		t.Fatal(err)
	}
	mine := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "manual", Namespace: "default"},
		Subsets: []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{{IP: "192.0.2.10"}}, Ports: []corev1.EndpointPort{{Port: 80}}}}}
	if _, err := cs.Endpoints.Create(ctx, mine); err != nil {
		t.Fatal(err)
	}
	// The selector Service's Endpoints change once more: a sync has surely run since.
	if _, err := cs.Pods.Delete(ctx, "default", "p0", client.DeleteOptions{GracePeriodSeconds: new(int64(0))}); err != nil {
		t.Fatal(err)
	}
	waitFor("p0 gone", "web", "10.42.0.2 |  : http=8080/TCP,metrics=9100/TCP")
	if ep, ok := get("manual"); !ok || render(ep.Subsets) != "192.0.2.10 |  : =80/TCP" || ep.Labels[LabelManagedBy] != "" {
		t.Fatalf("user-written endpoints changed: %+v", ep)
	}

	// The Services go: so do their Endpoints.
	for _, name := range []string{"web", "manual"} {
		if _, err := cs.Services.Delete(ctx, "default", name, client.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor("endpoints gone with their service", name, "<gone>")
	}
}

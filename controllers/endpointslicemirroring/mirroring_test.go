package endpointslicemirroring

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/controllers/endpointslice"
	"github.com/skiffhq/skiff/controllers/internal/controllertest"
	"github.com/skiffhq/skiff/test/waitfor"
)

func testEndpoints() *corev1.Endpoints {
	return &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "ext", Namespace: "default", UID: "uid-ext",
		Labels:      map[string]string{"team": "a"},
		Annotations: map[string]string{"note": "x", corev1.EndpointsLastChangeTriggerTime: "2026-12-05T10:00:00Z", corev1.LastAppliedConfigAnnotation: "{}"}},
		Subsets: []corev1.EndpointSubset{{
			Addresses:         []corev1.EndpointAddress{{IP: "192.0.2.1", Hostname: "one", NodeName: new("n1")}, {IP: "2001:db8::1"}},
			NotReadyAddresses: []corev1.EndpointAddress{{IP: "192.0.2.2", TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: "p2", Namespace: "default"}}},
			Ports:             []corev1.EndpointPort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}},
		}}}
}

// render prints slices as "type ports: address=ready ..." each, sorted, "; " between.
func render(ess []*discoveryv1.EndpointSlice) string {
	var out []string
	for _, es := range ess {
		var ports, eps []string
		for _, p := range es.Ports {
			ports = append(ports, fmt.Sprintf("%s=%d/%s", *p.Name, *p.Port, *p.Protocol))
		}
		for _, e := range es.Endpoints {
			eps = append(eps, fmt.Sprintf("%s=%v", e.Addresses[0], *e.Conditions.Ready))
		}
		slices.Sort(eps)
		out = append(out, fmt.Sprintf("%s %s: %s", es.AddressType, strings.Join(ports, ","), strings.Join(eps, " ")))
	}
	slices.Sort(out)
	return strings.Join(out, "; ")
}

// named gives created slices names, as the API server would.
func named(ch endpointslice.Changes) []*discoveryv1.EndpointSlice {
	var out []*discoveryv1.EndpointSlice
	for i, es := range ch.Create {
		es = es.DeepCopy()
		es.Name = fmt.Sprintf("ext-%d", i)
		out = append(out, es)
	}
	return out
}

func TestPlan(t *testing.T) {
	ep := testEndpoints()
	ch := Plan(ep, nil)
	if len(ch.Update)+len(ch.Delete) != 0 {
		t.Fatalf("first plan updates or deletes: %+v", ch)
	}
	if got, want := render(ch.Create), "IPv4 http=80/TCP: 192.0.2.1=true 192.0.2.2=false; IPv6 http=80/TCP: 2001:db8::1=true"; got != want {
		t.Fatalf("slices\n got %s\nwant %s", got, want)
	}
	es := ch.Create[0]
	if es.AddressType != discoveryv1.AddressTypeIPv4 {
		es = ch.Create[1]
	}
	if want := map[string]string{"team": "a", discoveryv1.LabelServiceName: "ext", discoveryv1.LabelManagedBy: ManagedBy}; fmt.Sprint(es.Labels) != fmt.Sprint(want) {
		t.Errorf("labels %v, want %v", es.Labels, want)
	}
	if fmt.Sprint(es.Annotations) != "map[note:x]" {
		t.Errorf("annotations %v, want the Endpoints' but the trigger time and the last applied configuration", es.Annotations)
	}
	if ref := metav1.GetControllerOf(es); ref == nil || ref.Kind != "Endpoints" || ref.UID != "uid-ext" || es.GenerateName != "ext-" {
		t.Errorf("owner %+v, generateName %q", ref, es.GenerateName)
	}
	var one discoveryv1.Endpoint
	for _, e := range es.Endpoints {
		if e.Addresses[0] == "192.0.2.1" {
			one = e
		}
	}
	if *one.Hostname != "one" || *one.NodeName != "n1" {
		t.Errorf("endpoint %+v", one)
	}

	// As written, nothing to do; an address gone rewrites its slice only; no subsets
	// leave no slice (no placeholder, unlike the EndpointSlice controller's).
	current := named(ch)
	if ch := Plan(ep, current); len(ch.Create)+len(ch.Update)+len(ch.Delete) != 0 {
		t.Fatalf("unchanged: %+v", ch)
	}
	ep.Subsets[0].NotReadyAddresses = nil
	ch = Plan(ep, current)
	if len(ch.Create)+len(ch.Delete) != 0 || len(ch.Update) != 1 || render(ch.Update) != "IPv4 http=80/TCP: 192.0.2.1=true" {
		t.Fatalf("address gone: %d created, %d deleted, updated %s", len(ch.Create), len(ch.Delete), render(ch.Update))
	}
	ep.Subsets = nil
	if ch := Plan(ep, current); len(ch.Delete) != 2 || len(ch.Create)+len(ch.Update) != 0 {
		t.Fatalf("no subsets: %+v", ch)
	}
}

// TestPlanCap: at most MaxEndpointsPerSubset addresses of a subset, ready ones first.
func TestPlanCap(t *testing.T) {
	ep := testEndpoints()
	ss := &ep.Subsets[0]
	ss.Addresses, ss.NotReadyAddresses = nil, nil
	for i := range 1100 {
		a := corev1.EndpointAddress{IP: fmt.Sprintf("10.1.%d.%d", i/250, i%250+1)}
		if i < 1050 {
			ss.Addresses = append(ss.Addresses, a)
		} else {
			ss.NotReadyAddresses = append(ss.NotReadyAddresses, a)
		}
	}
	ss.Addresses = append(ss.Addresses, corev1.EndpointAddress{IP: "not-an-ip"})
	ch := Plan(ep, nil)
	n, notReady := 0, 0
	for _, es := range ch.Create {
		for _, e := range es.Endpoints {
			n++
			if !*e.Conditions.Ready {
				notReady++
			}
		}
	}
	if n != MaxEndpointsPerSubset || notReady != 0 || len(ch.Create) != 1 {
		t.Fatalf("%d endpoints (%d not ready) in %d slices, want %d ready ones in one", n, notReady, len(ch.Create), MaxEndpointsPerSubset)
	}
}

func TestShouldMirror(t *testing.T) {
	selectorless := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "ext", Namespace: "default"}}
	withSelector := selectorless.DeepCopy()
	withSelector.Spec.Selector = map[string]string{"app": "web"}
	skip := testEndpoints()
	skip.Labels[discoveryv1.LabelSkipMirror] = "true"
	leader := testEndpoints()
	leader.Annotations[leaderAnnotation] = "{}"
	for _, tc := range []struct {
		what string
		ep   *corev1.Endpoints
		svc  *corev1.Service
		want bool
	}{
		{"a selectorless Service's", testEndpoints(), selectorless, true},
		{"a Service with a selector", testEndpoints(), withSelector, false},
		{"no Service", testEndpoints(), nil, false},
		{"no Endpoints", nil, selectorless, false},
		{"skip-mirror", skip, selectorless, false},
		{"a leader election lock", leader, selectorless, false},
	} {
		if got := ShouldMirror(tc.ep, tc.svc); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.what, got, tc.want)
		}
	}
}

// TestController: against an API server, a selectorless Service's Endpoints are
// mirrored and followed; the mirror goes when the Service gets a selector, and when
// the Endpoints go.
func TestController(t *testing.T) {
	cs, ctx := controllertest.Start(t, 90*time.Second, New, DefaultConfig())

	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "ext", Namespace: "default"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}
	if _, err := cs.Services.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	ep := testEndpoints()
	ep.UID = ""
	ep, err := cs.Endpoints.Create(ctx, ep)
	if err != nil {
		t.Fatal(err)
	}
	mirrored := func(what, want string) {
		t.Helper()
		waitfor.Condition(t, 30*time.Second, what, func() (bool, string) {
			l, err := cs.EndpointSlices.List(ctx, "default", client.ListOptions{LabelSelector: discoveryv1.LabelManagedBy + "=" + ManagedBy})
			if err != nil {
				return false, err.Error()
			}
			var ess []*discoveryv1.EndpointSlice
			for i := range l.Items {
				ess = append(ess, l.Items[i])
			}
			got := render(ess)
			return got == want, got
		})
	}
	mirrored("mirrored", "IPv4 http=80/TCP: 192.0.2.1=true 192.0.2.2=false; IPv6 http=80/TCP: 2001:db8::1=true")

	ep.Subsets[0].NotReadyAddresses = nil
	ep.Subsets[0].Addresses = ep.Subsets[0].Addresses[:1]
	if ep, err = cs.Endpoints.Update(ctx, ep); err != nil {
		t.Fatal(err)
	}
	mirrored("followed", "IPv4 http=80/TCP: 192.0.2.1=true")

	// A selector: the EndpointSlice controller's to fill; the mirror goes.
	cur, err := cs.Services.Get(ctx, "default", "ext")
	if err != nil {
		t.Fatal(err)
	}
	cur.Spec.Selector = map[string]string{"app": "ext"}
	if cur, err = cs.Services.Update(ctx, cur); err != nil {
		t.Fatal(err)
	}
	mirrored("selector set", "")
	cur.Spec.Selector = nil
	if _, err = cs.Services.Update(ctx, cur); err != nil {
		t.Fatal(err)
	}
	mirrored("selector dropped", "IPv4 http=80/TCP: 192.0.2.1=true")

	if _, err := cs.Endpoints.Delete(ctx, "default", "ext", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	mirrored("endpoints deleted", "")
}

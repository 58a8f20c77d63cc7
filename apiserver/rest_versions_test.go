package apiserver_test

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffhq/skiff/kinds"
	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
	"github.com/skiffhq/skiff/test/apicluster"
)

func eventV1(name, pod string) *eventsv1.Event {
	ev := &eventsv1.Event{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"test": "eventsv1"}},
		EventTime: metav1.NewMicroTime(time.Unix(1505828956, 0)), Note: "This is " + name, Action: "Do", Reason: "Test",
		Type: "Normal", ReportingController: "test-controller", ReportingInstance: "test-node",
		Regarding: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: pod, UID: types.UID("uid-" + pod)}}
	kinds.SetTypeMeta(ev)
	return ev
}

// TestEventsV1REST: events.k8s.io/v1 Event is served over core/v1 Events' storage: an
// Event created through either version reads the same through the other, with
// Kubernetes' conversion; every verb, the field selectors of events.k8s.io, watches (one
// on events.k8s.io sees a core/v1 create), patches of each type, the version's own
// validation, Tables, protobuf, discovery and OpenAPI.
func TestEventsV1REST(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	rc := newREST(t, c.Addr(0), true)
	const v1 = "/apis/events.k8s.io/v1/namespaces/default/events"
	const core = "/api/v1/namespaces/default/events"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	first := decodeJSON[metav1.ListMeta](t, rc.want(rc.do("GET", v1, "", "", nil), 200, "empty list").body)
	watch := rc.watch(ctx, v1+"?watch=1&allowWatchBookmarks=true&resourceVersion="+first.ResourceVersion)

	// Created through events.k8s.io/v1, read through core/v1.
	created := decodeJSON[eventsv1.Event](t, rc.want(rc.do("POST", v1, "application/json", "", eventV1("a", "web-1")), 201, "create a").body)
	if created.APIVersion != "events.k8s.io/v1" || created.Kind != "Event" || created.Note != "This is a" || created.UID == "" {
		t.Errorf("created = %+v", created)
	}
	asCore := decodeJSON[corev1.Event](t, rc.want(rc.do("GET", core+"/a", "", "", nil), 200, "core get a").body)
	if asCore.APIVersion != "v1" || asCore.Message != "This is a" || asCore.InvolvedObject.Name != "web-1" ||
		asCore.ReportingController != "test-controller" || asCore.ReportingInstance != "test-node" || asCore.Action != "Do" ||
		!asCore.EventTime.Equal(&created.EventTime) || asCore.ResourceVersion != created.ResourceVersion {
		t.Errorf("a through core/v1 = %+v", asCore)
	}
	// Created through core/v1, read through events.k8s.io/v1 (and seen by its watch).
	coreEv := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "b", Labels: map[string]string{"test": "eventsv1"}},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web-2"}, Reason: "Pulled",
		Message: "pulled", Type: "Normal", Source: corev1.EventSource{Component: "kubelet", Host: "w1"}, Count: 3,
		FirstTimestamp: metav1.NewTime(time.Unix(1700000000, 0)), LastTimestamp: metav1.NewTime(time.Unix(1700000100, 0))}
	rc.want(rc.do("POST", core, "application/json", "", coreEv), 201, "core create b")
	b := decodeJSON[eventsv1.Event](t, rc.want(rc.do("GET", v1+"/b", "", "", nil), 200, "get b").body)
	if b.Note != "pulled" || b.Regarding.Name != "web-2" || b.DeprecatedSource.Host != "w1" || b.DeprecatedCount != 3 ||
		b.DeprecatedFirstTimestamp.Unix() != 1700000000 || b.DeprecatedLastTimestamp.Unix() != 1700000100 {
		t.Errorf("b through events.k8s.io/v1 = %+v", b)
	}
	var seen []string
	for len(seen) < 2 {
		select {
		case ev := <-watch:
			if ev.Type == "BOOKMARK" {
				continue
			}
			got := decodeJSON[eventsv1.Event](t, ev.Raw)
			seen = append(seen, ev.Type+" "+got.Name+" "+got.APIVersion+" "+got.Note)
		case <-ctx.Done():
			t.Fatalf("watch saw only %v", seen)
		}
	}
	if got := strings.Join(seen, ","); got != "ADDED a events.k8s.io/v1 This is a,ADDED b events.k8s.io/v1 pulled" {
		t.Errorf("watch = %s", got)
	}

	// Field selectors: events.k8s.io's names, converted; core/v1's are not its own.
	list := func(query string) []string {
		l := decodeJSON[eventsv1.EventList](t, rc.want(rc.do("GET", v1+"?"+query, "", "", nil), 200, query).body)
		var names []string
		for _, it := range l.Items {
			names = append(names, it.Name)
		}
		return names
	}
	for q, want := range map[string]string{
		"fieldSelector=" + url.QueryEscape("regarding.name=web-2"):                "b",
		"fieldSelector=" + url.QueryEscape("reportingController=test-controller"): "a",
		"fieldSelector=" + url.QueryEscape("regarding.uid=uid-web-1,type=Normal"): "a",
		"labelSelector=test%3Deventsv1":                                           "a,b",
	} {
		if got := strings.Join(list(q), ","); got != want {
			t.Errorf("list %s = %s, want %s", q, got, want)
		}
	}
	if r := rc.want(rc.do("GET", v1+"?fieldSelector=involvedObject.name%3Dweb-2", "", "", nil), 400, "core/v1 field"); !strings.Contains(r.status().Message, "field label not supported: involvedObject.name") {
		t.Errorf("core/v1 field on events.k8s.io: %s", r.body)
	}

	// Patches of every type, through events.k8s.io/v1's fields.
	smp := `{"series":{"count":2,"lastObservedTime":"2017-09-19T13:49:11.000000Z"}}`
	p := decodeJSON[eventsv1.Event](t, rc.want(rc.do("PATCH", v1+"/a", "application/strategic-merge-patch+json", "", smp), 200, "strategic patch").body)
	if p.Series == nil || p.Series.Count != 2 || p.Note != "This is a" {
		t.Errorf("strategic patch = %+v", p)
	}
	p = decodeJSON[eventsv1.Event](t, rc.want(rc.do("PATCH", v1+"/a", "application/merge-patch+json", "", `{"metadata":{"labels":{"merged":"yes"}}}`), 200, "merge patch").body)
	if p.Labels["merged"] != "yes" || p.Labels["test"] != "eventsv1" {
		t.Errorf("merge patch labels = %v", p.Labels)
	}
	p = decodeJSON[eventsv1.Event](t, rc.want(rc.do("PATCH", v1+"/a", "application/json-patch+json", "", `[{"op":"replace","path":"/series/count","value":5}]`), 200, "json patch").body)
	if p.Series.Count != 5 {
		t.Errorf("json patch series = %+v", p.Series)
	}
	if c := decodeJSON[corev1.Event](t, rc.want(rc.do("GET", core+"/a", "", "", nil), 200, "core get a").body); c.Series == nil || c.Series.Count != 5 {
		t.Errorf("series through core/v1 = %+v", c.Series)
	}
	// events.k8s.io/v1's update rules: what the Event was created with is immutable.
	r := rc.want(rc.do("PATCH", v1+"/a", "application/merge-patch+json", "", `{"note":"changed"}`), 422, "note changed")
	if st := r.status(); !strings.Contains(st.Message, `Event.events.k8s.io "a" is invalid: message: Invalid value`) || !strings.Contains(st.Message, "field is immutable") {
		t.Errorf("note changed: %s", r.body)
	}
	// Update (PUT) through events.k8s.io/v1.
	p.Series.Count = 100
	u := decodeJSON[eventsv1.Event](t, rc.want(rc.do("PUT", v1+"/a", "application/json", "", p), 200, "update").body)
	if u.Series.Count != 100 || u.ResourceVersion == p.ResourceVersion {
		t.Errorf("update = %+v", u)
	}
	// A server-side apply of a label.
	apply := `{"apiVersion":"events.k8s.io/v1","kind":"Event","metadata":{"name":"a","labels":{"applied":"yes"}}}`
	if r := rc.want(rc.do("PATCH", v1+"/a?fieldManager=t", "application/apply-patch+yaml", "", apply), 200, "apply"); !strings.Contains(string(r.body), `"applied":"yes"`) {
		t.Errorf("apply: %s", r.body)
	}

	// Creation rules of events.k8s.io/v1, in Kubernetes' words.
	bad := eventV1("bad", "web-1")
	bad.EventTime = metav1.MicroTime{}
	bad.ReportingController, bad.Action = "", ""
	bad.DeprecatedCount = 2
	r = rc.want(rc.do("POST", v1, "application/json", "", bad), 422, "invalid create")
	for _, want := range []string{"eventTime: Required value", "count: Invalid value: \"\": needs to be unset", `Event.events.k8s.io "bad" is invalid`} {
		if !strings.Contains(r.status().Message, want) {
			t.Errorf("invalid create: %q lacks %q", r.status().Message, want)
		}
	}
	bad = eventV1("bad", "web-1")
	bad.ReportingController, bad.Action, bad.Note = "", strings.Repeat("x", 129), strings.Repeat("n", 1025)
	r = rc.want(rc.do("POST", v1, "application/json", "", bad), 422, "invalid create")
	for _, want := range []string{"reportingController: Required value", "action: Invalid value: \"\": can have at most 128 characters", "message: Invalid value: \"\": can have at most 1024 characters"} {
		if !strings.Contains(r.status().Message, want) {
			t.Errorf("invalid create: %q lacks %q", r.status().Message, want)
		}
	}

	// Table (kubectl's columns for events), protobuf and errors naming the version.
	tbl := decodeJSON[metav1.Table](t, rc.want(rc.do("GET", v1, "", "application/json;as=Table;g=meta.k8s.io;v=v1", nil), 200, "table").body)
	var cols []string
	for _, c := range tbl.ColumnDefinitions {
		if c.Priority == 0 {
			cols = append(cols, c.Name)
		}
	}
	if strings.Join(cols, ",") != "Last Seen,Type,Reason,Object,Message" || len(tbl.Rows) != 2 {
		t.Errorf("table columns %v, %d rows", cols, len(tbl.Rows))
	}
	pb := rc.want(rc.do("GET", v1, "", kinds.ContentType, nil), 200, "protobuf list")
	if !strings.Contains(string(pb.body), "events.k8s.io/v1") || !strings.Contains(string(pb.body), "This is a") {
		t.Errorf("protobuf list: %q", pb.body)
	}
	pbGet := rc.want(rc.do("GET", v1+"/b", "", kinds.ContentType, nil), 200, "protobuf get")
	if obj, err := kinds.Decode(pbGet.body); err != nil || obj.(*eventsv1.Event).Note != "pulled" {
		t.Errorf("protobuf get: %v %v", obj, err)
	}
	if r := rc.want(rc.do("GET", v1+"/none", "", "", nil), 404, "missing"); r.status().Message != `events.events.k8s.io "none" not found` || r.status().Details.Group != "events.k8s.io" {
		t.Errorf("missing: %s", r.body)
	}

	// The gRPC API carries stored kinds only: the other version is refused, not stored.
	res, _ := dial(t, c.Addr(0))
	if _, err := res.Get(testCtx(t), &apiv1.GetRequest{Kind: "events.events.k8s.io", Namespace: "default", Name: "b"}); err == nil ||
		!strings.Contains(err.Error(), "served over the REST API only") {
		t.Errorf("gRPC get of events.events.k8s.io: %v", err)
	}
	if wire, err := kinds.Wrap(eventV1("grpc", "web-1")); err != nil {
		t.Fatal(err)
	} else if _, err := res.Create(testCtx(t), &apiv1.CreateRequest{Object: wire}); err == nil || !strings.Contains(err.Error(), "served over the REST API only") {
		t.Errorf("gRPC create of an events.k8s.io/v1 Event: %v", err)
	}

	// Delete through events.k8s.io/v1; deletecollection by label.
	rc.want(rc.do("DELETE", v1+"/a", "", "", nil), 200, "delete a")
	rc.want(rc.do("GET", core+"/a", "", "", nil), 404, "core get deleted a")
	rc.want(rc.do("POST", v1, "application/json", "", eventV1("c", "web-3")), 201, "create c")
	dl := decodeJSON[eventsv1.EventList](t, rc.want(rc.do("DELETE", v1+"?labelSelector=test%3Deventsv1", "", "", nil), 200, "deletecollection").body)
	if dl.APIVersion != "events.k8s.io/v1" || dl.Kind != "EventList" || len(dl.Items) != 2 {
		t.Errorf("deletecollection = %+v", dl)
	}
	if l := decodeJSON[corev1.EventList](t, rc.want(rc.do("GET", core+"?labelSelector=test%3Deventsv1", "", "", nil), 200, "core list").body); len(l.Items) != 0 {
		t.Errorf("left after deletecollection: %d", len(l.Items))
	}

	// Discovery and OpenAPI.
	rl := decodeJSON[metav1.APIResourceList](t, rc.want(rc.do("GET", "/apis/events.k8s.io/v1", "", "", nil), 200, "discovery").body)
	if len(rl.APIResources) != 1 || rl.APIResources[0].Name != "events" || rl.APIResources[0].Kind != "Event" {
		t.Errorf("events.k8s.io/v1 resources = %+v", rl.APIResources)
	}
	if r := rc.want(rc.do("GET", "/apis", "", "", nil), 200, "apis"); !strings.Contains(string(r.body), `"name":"events.k8s.io"`) {
		t.Errorf("/apis lacks events.k8s.io: %s", r.body)
	}
	agg := rc.want(rc.do("GET", "/apis", "", "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList", nil), 200, "aggregated /apis")
	if !strings.Contains(string(agg.body), `{"metadata":{"name":"events.k8s.io"},"versions":[{"version":"v1","resources":[{"resource":"events","responseKind":{"group":"events.k8s.io","version":"v1","kind":"Event"}`) {
		t.Errorf("aggregated /apis lacks events.k8s.io: %s", agg.body)
	}
	v2 := decodeJSON[struct{ Paths map[string]json.RawMessage }](t, rc.want(rc.do("GET", "/openapi/v2", "", "application/json", nil), 200, "openapi").body)
	if _, ok := v2.Paths["/apis/events.k8s.io/v1/namespaces/{namespace}/events/{name}"]; !ok {
		t.Errorf("openapi v2 has no events.k8s.io path")
	}
}

package apiserver_test

import (
	"fmt"
	"testing"
	"time"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/apiserver"
	"github.com/skiffhq/skiff/client"
	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
	"github.com/skiffhq/skiff/test/apicluster"
)

// TestEventRateLimit: Events written beyond a node's or a namespace's budget are refused
// as 429 (ResourceExhausted) in Kubernetes' words, the first with the delay after which
// the budget has a token again, those after it later (their places in the budget's line,
// at most 30 s past the next token); each budget is its own (another namespace, another
// writer's namespace, other kinds write on), and a batch takes one token per Event.
func TestEventRateLimit(t *testing.T) {
	dir := apicluster.Certs(t, "w1")
	c := apicluster.Start(t, 1, apicluster.Options{Certs: dir, Configure: func(cfg *apiserver.Config) {
		// A token a minute: the buckets do not refill while the test runs.
		cfg.EventRateLimit = apiserver.EventRateLimit{NodeQPS: 1.0 / 60, NodeBurst: 2, NamespaceQPS: 1.0 / 60, NamespaceBurst: 4}
	}})
	ctx := testCtx(t)
	w1 := dialSecure(t, c.Addr(0), apicluster.ClientTLS(t, dir, "kubelet-w1"), "")
	admin := dialSecure(t, c.Addr(0), apicluster.ClientTLS(t, dir, "admin"), "")
	if _, err := admin.Create(ctx, &apiv1.CreateRequest{Object: wrap(t, boundPod("web", "w1"))}); err != nil {
		t.Fatal(err) // the pod w1's events are about
	}
	create := func(rc apiv1.ResourcesClient, ns, name string) error {
		_, err := rc.Create(ctx, &apiv1.CreateRequest{Object: wrap(t, event(ns, name))})
		return err
	}
	wantThrottled := func(what string, err error, msg string) {
		t.Helper()
		wantDenied(t, what, err, codes.ResourceExhausted, msg)
		// The minute a token takes, and up to 30 s more: the line's end.
		if d := client.RetryAfter(err); d < 30*time.Second || d > 91*time.Second {
			t.Fatalf("%s: retry after %v, want the minute a token takes, or up to the line's end 30 s later", what, d)
		}
	}

	// The node's budget: two.
	for i := 0; i < 2; i++ {
		if err := create(w1, "default", fmt.Sprintf("node-%d", i)); err != nil {
			t.Fatalf("node event %d: %v", i, err)
		}
	}
	wantThrottled("node's third event", create(w1, "default", "node-2"), "limit reached on type Node for key w1")
	// The namespace's budget (four) is shared: the node's refused event took nothing
	// from it, so the administrator has two left there.
	for i := 0; i < 2; i++ {
		if err := create(admin, "default", fmt.Sprintf("admin-%d", i)); err != nil {
			t.Fatalf("admin event %d: %v", i, err)
		}
	}
	wantThrottled("namespace's fifth event", create(admin, "default", "admin-2"), "limit reached on type Namespace for key default")
	// Another namespace has its own budget; other kinds are not limited.
	if _, err := admin.Create(ctx, &apiv1.CreateRequest{Object: wrap(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "other"}})}); err != nil {
		t.Fatal(err)
	}
	if err := create(admin, "other", "elsewhere"); err != nil {
		t.Fatalf("event in another namespace: %v", err)
	}
	if _, err := admin.Create(ctx, &apiv1.CreateRequest{Object: wrap(t, pod("not-an-event"))}); err != nil {
		t.Fatalf("a pod in the throttled namespace: %v", err)
	}
	// Updates count too.
	got, err := admin.Get(ctx, &apiv1.GetRequest{Kind: "Event", Namespace: "default", Name: "admin-0"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = admin.Update(ctx, &apiv1.UpdateRequest{Object: got})
	wantThrottled("an update in the throttled namespace", err, "limit reached on type Namespace for key default")
	// Over the REST API too: a create and a patch, 429 with Retry-After.
	rc := newRESTTLS(t, c.Addr(0), apicluster.ClientTLS(t, dir, "admin"), "")
	for _, w := range []struct{ method, path, contentType string }{
		{"POST", "/api/v1/namespaces/default/events", "application/json"},
		{"PATCH", "/api/v1/namespaces/default/events/admin-0", "application/merge-patch+json"},
	} {
		var body any = event("default", "rest-event")
		if w.method == "PATCH" {
			body = map[string]any{"message": "patched"}
		}
		r := rc.do(w.method, w.path, w.contentType, "", body)
		st := r.status()
		if r.code != 429 || st.Reason != metav1.StatusReasonTooManyRequests || st.Message != "limit reached on type Namespace for key default" ||
			r.header.Get("Retry-After") == "" {
			t.Fatalf("REST %s %s in the throttled namespace: HTTP %d, Retry-After %q, %+v", w.method, w.path, r.code, r.header.Get("Retry-After"), st)
		}
	}

	// A batch: one token per Event; those over the budget fail alone.
	var objs []*apiv1.Object
	for i := 0; i < 5; i++ {
		objs = append(objs, wrap(t, event("other", fmt.Sprintf("batch-%d", i))))
	}
	res, err := admin.CreateBatch(ctx, &apiv1.CreateBatchRequest{Objects: objs})
	if err != nil {
		t.Fatal(err)
	}
	var refused []int
	var delays []time.Duration
	for i, r := range res.GetResults() {
		if r.GetError() == nil {
			continue
		}
		var st spb.Status
		if err := proto.Unmarshal(r.GetError(), &st); err != nil {
			t.Fatal(err)
		}
		if err := status.FromProto(&st).Err(); status.Code(err) != codes.ResourceExhausted || client.RetryAfter(err) <= 0 {
			t.Fatalf("batch object %d: %v, want ResourceExhausted with a retry delay", i, err)
		}
		refused = append(refused, i)
		delays = append(delays, client.RetryAfter(status.FromProto(&st).Err()))
	}
	if fmt.Sprint(refused) != "[3 4]" {
		t.Fatalf("batch of 5 with 3 tokens left: refused %v, want [3 4]", refused)
	}
	// The first refused is told the minute a token takes; the second, whose place in
	// line would be a minute later, the line's end, 30 s later.
	if delays[0] < 59*time.Second || delays[0] > 61*time.Second || delays[1]-delays[0] < 29*time.Second || delays[1]-delays[0] > 31*time.Second {
		t.Fatalf("refused events' delays %v: want a minute, and 30 s more", delays)
	}

	// The member counts every refused Event by its limit type: the node's one; the
	// namespaces' six (the fifth event, the update, REST's create and patch, the batch's
	// two).
	if got := eventsRefused(t, c.Server(0)); got["Node"] != 1 || got["Namespace"] != 6 {
		t.Fatalf("skiff_apiserver_events_refused_total %v, want Node 1, Namespace 6", got)
	}
}

// eventsRefused reads a member's skiff_apiserver_events_refused_total by limit type.
func eventsRefused(t *testing.T, s *apiserver.Server) map[string]float64 {
	t.Helper()
	mfs, err := s.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "skiff_apiserver_events_refused_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "limit_type" {
					got[l.GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
	}
	return got
}

// TestSpentEventBudgetRefusesFirst: once a budget is spent, an Event written in it is
// refused before it is decoded and validated (refusals stay cheap when many writers
// come back for tokens the budget does not have): an invalid one too is told to come
// back later, as 429, in a batch and alone, and counted. With a token left, an invalid
// Event is refused for what it is, and takes no token.
func TestSpentEventBudgetRefusesFirst(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{Configure: func(cfg *apiserver.Config) {
		cfg.EventRateLimit = apiserver.EventRateLimit{NamespaceQPS: 1.0 / 60, NamespaceBurst: 3}
	}})
	ctx := testCtx(t)
	cc, err := grpc.NewClient("passthrough:///"+c.Addr(0), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	rc := apiv1.NewResourcesClient(cc)
	invalid := func(name string) *apiv1.Object {
		ev := event("default", name)
		ev.Type = "Bogus"
		return wrap(t, ev)
	}

	// A token left: the invalid Event is refused as invalid, and takes none.
	_, err = rc.Create(ctx, &apiv1.CreateRequest{Object: invalid("bad-0")})
	wantDenied(t, "an invalid event with tokens left", err, codes.InvalidArgument, "type")
	res, err := rc.CreateBatch(ctx, &apiv1.CreateBatchRequest{Objects: []*apiv1.Object{wrap(t, event("default", "ok-0")), invalid("bad-1"),
		wrap(t, event("default", "ok-1"))}})
	if err != nil {
		t.Fatal(err)
	}
	codesOf := func(res *apiv1.CreateBatchResponse) []codes.Code {
		var out []codes.Code
		for _, r := range res.GetResults() {
			var st spb.Status
			if r.GetError() != nil {
				if err := proto.Unmarshal(r.GetError(), &st); err != nil {
					t.Fatal(err)
				}
			}
			out = append(out, codes.Code(st.GetCode()))
		}
		return out
	}
	if got, want := fmt.Sprint(codesOf(res)), fmt.Sprint([]codes.Code{codes.OK, codes.InvalidArgument, codes.OK}); got != want {
		t.Fatalf("batch with three tokens left: %s, want %s", got, want)
	}
	if _, err := rc.Create(ctx, &apiv1.CreateRequest{Object: wrap(t, event("default", "ok-2"))}); err != nil {
		t.Fatalf("the third token: %v", err)
	}

	// Spent: the invalid Event, alone and in a batch, is refused for the rate.
	_, err = rc.Create(ctx, &apiv1.CreateRequest{Object: invalid("bad-2")})
	wantDenied(t, "an invalid event in a spent budget", err, codes.ResourceExhausted, "limit reached on type Namespace for key default")
	res, err = rc.CreateBatch(ctx, &apiv1.CreateBatchRequest{Objects: []*apiv1.Object{invalid("bad-3"), wrap(t, event("default", "ok-3"))}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(codesOf(res)), fmt.Sprint([]codes.Code{codes.ResourceExhausted, codes.ResourceExhausted}); got != want {
		t.Fatalf("batch in a spent budget: %s, want %s", got, want)
	}
	if got := eventsRefused(t, c.Server(0)); got["Namespace"] != 3 {
		t.Fatalf("skiff_apiserver_events_refused_total %v, want Namespace 3", got)
	}
}

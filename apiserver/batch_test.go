package apiserver_test

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
	"github.com/skiffhq/skiff/test/apicluster"
)

func event(ns, name string) *corev1.Event {
	return &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Type: corev1.EventTypeNormal, Reason: "Tested",
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web"}}
}

// TestCreateBatch: each object of a batch succeeds or fails alone, with the error Create
// would give it; the valid ones of a clean batch are stored in one transaction.
func TestCreateBatch(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	ctx := testCtx(t)
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	events := client.NewClientset(conn).Events
	if _, err := events.Create(ctx, event("default", "taken")); err != nil {
		t.Fatal(err)
	}

	generated := event("default", "")
	generated.GenerateName = "gen-"
	out, errs, err := events.CreateBatch(ctx, []*corev1.Event{
		event("default", "a"), event("default", "taken"), event("default", "Bad_Name"), event("nowhere", "n"),
		generated, event("default", "b"), event("default", "dup"), event("default", "dup"),
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"a", "", "", "", "", "b"} {
		if name != "" && (errs[i] != nil || out[i].Name != name || out[i].ResourceVersion == "") {
			t.Errorf("object %d: %v, %v; want %s created", i, out[i], errs[i], name)
		}
	}
	if !client.IsAlreadyExists(errs[1]) {
		t.Errorf("a taken name: %v, want AlreadyExists", errs[1])
	}
	if status.Code(errs[2]) != codes.InvalidArgument || !strings.Contains(errs[2].Error(), "metadata.name") {
		t.Errorf("a bad name: %v, want InvalidArgument naming metadata.name", errs[2])
	}
	if !client.IsNotFound(errs[3]) || !strings.Contains(errs[3].Error(), "nowhere") {
		t.Errorf("a missing namespace: %v, want NotFound naming it", errs[3])
	}
	if errs[4] != nil || !strings.HasPrefix(out[4].Name, "gen-") {
		t.Errorf("generated name: %v, %v", out[4], errs[4])
	}
	if (errs[6] == nil) == (errs[7] == nil) || !client.IsAlreadyExists(errs[6]) && !client.IsAlreadyExists(errs[7]) {
		t.Errorf("the same name twice: %v and %v, want one created and one AlreadyExists", errs[6], errs[7])
	}
	l, err := events.List(ctx, "default", client.ListOptions{})
	if err != nil || len(l.Items) != 5 { // taken, a, b, gen-..., dup
		t.Fatalf("stored events: %v, %v; want 5", l, err)
	}

	// A clean batch is one transaction: one resourceVersion for all.
	out, errs, err = events.CreateBatch(ctx, []*corev1.Event{event("default", "c"), event("default", "d"), event("default", "e")})
	if err != nil {
		t.Fatal(err)
	}
	for i := range out {
		if errs[i] != nil || out[i].ResourceVersion != out[0].ResourceVersion {
			t.Fatalf("clean batch: object %d %v, %v; want every object at resourceVersion %s", i, out[i], errs[i], out[0].ResourceVersion)
		}
	}

	tooMany := make([]*corev1.Event, 101)
	for i := range tooMany {
		tooMany[i] = event("default", "many")
	}
	_, _, err = events.CreateBatch(ctx, tooMany)
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "at most 100") {
		t.Fatalf("101 objects: %v, want InvalidArgument naming the limit", err)
	}
}

// TestCreateBatchAuthorizesEachObject: a batch with one object its caller may not create
// is refused whole, and writes nothing.
func TestCreateBatchAuthorizesEachObject(t *testing.T) {
	dir := apicluster.Certs(t, "w1")
	c := apicluster.Start(t, 1, apicluster.Options{Certs: dir})
	ctx := testCtx(t)
	w1 := dialSecure(t, c.Addr(0), apicluster.ClientTLS(t, dir, "kubelet-w1"), "")
	admin := dialSecure(t, c.Addr(0), apicluster.ClientTLS(t, dir, "admin"), "")
	if _, err := admin.Create(ctx, &apiv1.CreateRequest{Object: wrap(t, boundPod("web", "w1"))}); err != nil {
		t.Fatal(err) // the pod the events are about
	}

	res, err := w1.CreateBatch(ctx, &apiv1.CreateBatchRequest{Objects: []*apiv1.Object{wrap(t, event("default", "ok-1")), wrap(t, event("default", "ok-2"))}})
	if err != nil || len(res.GetResults()) != 2 || res.GetResults()[0].GetError() != nil || res.GetResults()[1].GetError() != nil {
		t.Fatalf("a node's batch of events: %v, %v", res, err)
	}
	_, err = w1.CreateBatch(ctx, &apiv1.CreateBatchRequest{Objects: []*apiv1.Object{wrap(t, event("default", "sneaky")), wrap(t, boundPod("smuggled", "w1"))}})
	wantDenied(t, "a node's batch with a pod", err, codes.PermissionDenied, `objects[1]: user "system:node:w1" cannot create pods "default/smuggled"`)
	for _, k := range []struct{ kind, name string }{{"Event", "sneaky"}, {"Pod", "smuggled"}} {
		_, err := admin.Get(ctx, &apiv1.GetRequest{Kind: k.kind, Namespace: "default", Name: k.name})
		wantCode(t, "the refused batch's "+k.kind, err, codes.NotFound)
	}
}

// TestNamespaceNameLabel: every namespace carries kubernetes.io/metadata.name with its
// name, as in Kubernetes: set on create (a generated name's too, once chosen) and put
// back by an update that drops or changes it.
func TestNamespaceNameLabel(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	ctx := testCtx(t)
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	namespaces := client.NewClientset(conn).Namespaces
	check := func(what string, ns *corev1.Namespace, err error, want map[string]string) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if len(ns.Labels) != len(want) {
			t.Errorf("%s: labels %v, want %v", what, ns.Labels, want)
		}
		for k, v := range want {
			if ns.Labels[k] != v {
				t.Errorf("%s: labels %v, want %v", what, ns.Labels, want)
			}
		}
	}
	ns, err := namespaces.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team", Labels: map[string]string{"a": "b"}}})
	check("created", ns, err, map[string]string{"a": "b", corev1.LabelMetadataName: "team"})
	ns.Labels = map[string]string{corev1.LabelMetadataName: "other"}
	ns, err = namespaces.Update(ctx, ns)
	check("updated with another name", ns, err, map[string]string{corev1.LabelMetadataName: "team"})
	ns.Labels = nil
	ns, err = namespaces.Update(ctx, ns)
	check("updated without labels", ns, err, map[string]string{corev1.LabelMetadataName: "team"})
	gen, err := namespaces.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "gen-"}})
	if err != nil || !strings.HasPrefix(gen.Name, "gen-") {
		t.Fatalf("generated: %v, %v", gen, err)
	}
	check("generated", gen, err, map[string]string{corev1.LabelMetadataName: gen.Name})
}

// TestBindBatch: each binding of a batch succeeds or fails alone, with the error Bind
// would give it; the bindings that hold are committed in one transaction, also when one
// of them conflicts with another of the batch.
func TestBindBatch(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	ctx := testCtx(t)
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	pods := client.NewClientset(conn).Pods
	uids := map[string]string{}
	for _, p := range []*corev1.Pod{pod("a"), pod("b"), pod("c"), pod("twice"), pod("replaced"), boundPod("bound", "w9")} {
		p.Namespace = "default"
		created, err := pods.Create(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		uids[p.Name] = string(created.UID)
	}

	bs := []client.Binding{
		{Namespace: "default", Name: "a", UID: uids["a"], Node: "w1"},
		{Namespace: "default", Name: "bound", Node: "w1"},
		{Namespace: "default", Name: "missing", Node: "w1"},
		{Namespace: "default", Name: "b", Node: "Bad_Node"},
		{Namespace: "default", Name: "replaced", UID: "not-its-uid", Node: "w1"},
		{Namespace: "default", Name: "twice", Node: "w1"},
		{Namespace: "default", Name: "twice", Node: "w2"},
		{Namespace: "default", Name: "c", Node: "w2"},
	}
	out, errs, err := conn.BindBatch(ctx, bs)
	if err != nil {
		t.Fatal(err)
	}
	if errs[0] != nil || out[0].Spec.NodeName != "w1" || scheduled(out[0]) != corev1.ConditionTrue {
		t.Errorf("a: %v, %v; want bound to w1 with PodScheduled=True", out[0], errs[0])
	}
	if status.Code(errs[1]) != codes.FailedPrecondition || !strings.Contains(errs[1].Error(), `already assigned to node "w9"`) {
		t.Errorf("a bound pod: %v, want FailedPrecondition naming its node", errs[1])
	}
	if !client.IsNotFound(errs[2]) {
		t.Errorf("a missing pod: %v, want NotFound", errs[2])
	}
	if status.Code(errs[3]) != codes.InvalidArgument || !strings.Contains(errs[3].Error(), "target.name") {
		t.Errorf("a bad node name: %v, want InvalidArgument naming target.name", errs[3])
	}
	if !client.IsConflict(errs[4]) || !strings.Contains(errs[4].Error(), "UID in precondition: not-its-uid") {
		t.Errorf("another pod's uid: %v, want Conflict naming the uids", errs[4])
	}
	if (errs[5] == nil) == (errs[6] == nil) || status.Code(errs[5]) != codes.FailedPrecondition && status.Code(errs[6]) != codes.FailedPrecondition {
		t.Errorf("one pod bound twice: %v and %v, want one bound and one FailedPrecondition", errs[5], errs[6])
	}
	if errs[7] != nil || out[7].Spec.NodeName != "w2" {
		t.Fatalf("c: %v, %v; want bound to w2", out[7], errs[7])
	}
	// The conflicting binding went alone; the others of the batch in one transaction.
	if out[0].ResourceVersion != out[7].ResourceVersion {
		t.Errorf("a at resourceVersion %s, c at %s: want one transaction", out[0].ResourceVersion, out[7].ResourceVersion)
	}
	for name, node := range map[string]string{"a": "w1", "c": "w2", "bound": "w9", "b": "", "replaced": ""} {
		p, err := pods.Get(ctx, "default", name)
		if err != nil || p.Spec.NodeName != node {
			t.Errorf("stored pod %s: %v, %v; want on node %q", name, p, err, node)
		}
	}

	tooMany := make([]client.Binding, 101)
	for i := range tooMany {
		tooMany[i] = client.Binding{Namespace: "default", Name: "a", Node: "w1"}
	}
	_, _, err = conn.BindBatch(ctx, tooMany)
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "at most 100") {
		t.Fatalf("101 bindings: %v, want InvalidArgument naming the limit", err)
	}
}

func scheduled(p *corev1.Pod) corev1.ConditionStatus {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled {
			return c.Status
		}
	}
	return ""
}

// TestBindBatchAuthorizesEachBinding: a node may not bind pods, in a batch as alone: its
// batch is refused whole and binds nothing; the scheduler's is allowed.
func TestBindBatchAuthorizesEachBinding(t *testing.T) {
	dir := apicluster.Certs(t, "w1")
	c := apicluster.Start(t, 1, apicluster.Options{Certs: dir})
	ctx := testCtx(t)
	w1 := dialSecure(t, c.Addr(0), apicluster.ClientTLS(t, dir, "kubelet-w1"), "")
	sched := dialSecure(t, c.Addr(0), apicluster.ClientTLS(t, dir, "scheduler"), "")
	admin := dialSecure(t, c.Addr(0), apicluster.ClientTLS(t, dir, "admin"), "")
	for _, name := range []string{"p1", "p2"} {
		if _, err := admin.Create(ctx, &apiv1.CreateRequest{Object: wrap(t, pod(name))}); err != nil {
			t.Fatal(err)
		}
	}
	batch := &apiv1.BindBatchRequest{Bindings: []*apiv1.BindRequest{{Name: "p1", NodeName: "w1"}, {Name: "p2", NodeName: "w1"}}}
	_, err := w1.BindBatch(ctx, batch)
	wantDenied(t, "a node's batch of bindings", err, codes.PermissionDenied, `bindings[0]: user "system:node:w1" cannot create pods/binding`)
	for _, name := range []string{"p1", "p2"} {
		got, err := admin.Get(ctx, &apiv1.GetRequest{Kind: "Pod", Namespace: "default", Name: name})
		if err != nil || unwrap[*corev1.Pod](t, got).Spec.NodeName != "" {
			t.Fatalf("pod %s after the refused batch: %v, %v; want it unbound", name, got, err)
		}
	}
	res, err := sched.BindBatch(ctx, batch)
	if err != nil || len(res.GetResults()) != 2 || res.GetResults()[0].GetError() != nil || res.GetResults()[1].GetError() != nil {
		t.Fatalf("the scheduler's batch: %v, %v", res, err)
	}
}

// TestUpdateBatch: each object of an UpdateBatch succeeds or fails alone, with the
// outcome Update would give it; the updates that apply are committed in one
// transaction, and removing a deleted pod's last finalizer deletes it, as Update does.
func TestUpdateBatch(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	ctx := testCtx(t)
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	pods := client.NewClientset(conn).Pods
	stored := map[string]*corev1.Pod{}
	for _, name := range []string{"a", "stale", "bad", "same", "held", "b"} {
		p := pod(name)
		p.Namespace = "default"
		p.Finalizers = []string{"example.com/hold"}
		if stored[name], err = pods.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pods.Delete(ctx, "default", "held", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	held, err := pods.Get(ctx, "default", "held")
	if err != nil || held.DeletionTimestamp == nil {
		t.Fatalf("held: %v, %v; want it marked for deletion", held, err)
	}
	relabel := func(p *corev1.Pod) *corev1.Pod {
		p = p.DeepCopy()
		p.Labels["batch"] = "yes"
		return p
	}
	stale := relabel(stored["stale"])
	if _, err := pods.Update(ctx, relabel(stored["stale"])); err != nil { // stale's resourceVersion moves on
		t.Fatal(err)
	}
	stale.Labels["batch"] = "late"
	bad := relabel(stored["bad"])
	bad.Spec.Containers[0].Image = ""
	missing := pod("missing")
	missing.Namespace = "default"
	released := held.DeepCopy()
	released.Finalizers = nil
	out, errs, err := pods.UpdateBatch(ctx, []*corev1.Pod{relabel(stored["a"]), stale, bad, stored["same"], missing, released, relabel(stored["b"])})
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 6} {
		if errs[i] != nil || out[i].Labels["batch"] != "yes" {
			t.Errorf("object %d: %v, %v; want it relabelled", i, out[i], errs[i])
		}
	}
	if errs[0] == nil && errs[6] == nil && out[0].ResourceVersion != out[6].ResourceVersion {
		t.Errorf("resourceVersions %s and %s: want one transaction for both", out[0].ResourceVersion, out[6].ResourceVersion)
	}
	if !client.IsConflict(errs[1]) {
		t.Errorf("a stale resourceVersion: %v, want a conflict", errs[1])
	}
	if status.Code(errs[2]) != codes.InvalidArgument || !strings.Contains(errs[2].Error(), "spec.containers[0].image") {
		t.Errorf("an invalid update: %v, want InvalidArgument naming spec.containers[0].image", errs[2])
	}
	if errs[3] != nil || out[3].ResourceVersion != stored["same"].ResourceVersion {
		t.Errorf("no change: %v, %v; want the stored pod, its resourceVersion unchanged", out[3], errs[3])
	}
	if !client.IsNotFound(errs[4]) {
		t.Errorf("a missing pod: %v, want NotFound", errs[4])
	}
	if errs[5] != nil {
		t.Errorf("the last finalizer of a deleted pod: %v", errs[5])
	}
	if _, err := pods.Get(ctx, "default", "held"); !client.IsNotFound(err) {
		t.Errorf("the pod whose last finalizer went: %v, want it gone", err)
	}
	if cur, err := pods.Get(ctx, "default", "stale"); err != nil || cur.Labels["batch"] != "yes" {
		t.Errorf("the stale update's pod: %v, %v; want the earlier update kept", cur, err)
	}

	// The same object twice: the second update's compare-and-swap fails after the
	// first's, as two Updates in a row would.
	twice := stored["same"]
	first, second := relabel(twice), relabel(twice)
	second.Labels["batch"] = "again"
	out, errs, err = pods.UpdateBatch(ctx, []*corev1.Pod{first, second})
	if err != nil {
		t.Fatal(err)
	}
	if (errs[0] == nil) == (errs[1] == nil) || !client.IsConflict(errs[0]) && !client.IsConflict(errs[1]) {
		t.Errorf("the same pod twice: %v and %v, want one updated and one conflict", errs[0], errs[1])
	}

	tooMany := make([]*corev1.Pod, 101)
	for i := range tooMany {
		tooMany[i] = stored["a"]
	}
	_, _, err = pods.UpdateBatch(ctx, tooMany)
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "at most 100") {
		t.Fatalf("101 objects: %v, want InvalidArgument naming the limit", err)
	}
}

// TestUpdateBatchAuthorizesEachObject: an UpdateBatch with one object its caller may not
// update is refused whole, and writes nothing.
func TestUpdateBatchAuthorizesEachObject(t *testing.T) {
	dir := apicluster.Certs(t)
	c := apicluster.Start(t, 1, apicluster.Options{Certs: dir})
	ctx := testCtx(t)
	sched := dialSecure(t, c.Addr(0), apicluster.ClientTLS(t, dir, "scheduler"), "")
	admin := dialSecure(t, c.Addr(0), apicluster.ClientTLS(t, dir, "admin"), "")
	var evs []*corev1.Event
	for _, name := range []string{"e1", "e2"} {
		created, err := admin.Create(ctx, &apiv1.CreateRequest{Object: wrap(t, event("default", name))})
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, unwrap[*corev1.Event](t, created))
	}
	p := pod("p")
	p.Namespace = "default"
	created, err := admin.Create(ctx, &apiv1.CreateRequest{Object: wrap(t, p)})
	if err != nil {
		t.Fatal(err)
	}
	p = unwrap[*corev1.Pod](t, created)
	evs[0].Reason, evs[1].Reason = "One", "Two"
	res, err := sched.UpdateBatch(ctx, &apiv1.UpdateBatchRequest{Objects: []*apiv1.Object{wrap(t, evs[0]), wrap(t, evs[1])}})
	if err != nil || len(res.GetResults()) != 2 || res.GetResults()[0].GetError() != nil || res.GetResults()[1].GetError() != nil {
		t.Fatalf("the scheduler's batch of events: %v, %v", res, err)
	}
	ev := unwrap[*corev1.Event](t, res.GetResults()[0].GetObject())
	ev.Reason = "Sneaky"
	p.Labels["smuggled"] = "yes"
	_, err = sched.UpdateBatch(ctx, &apiv1.UpdateBatchRequest{Objects: []*apiv1.Object{wrap(t, ev), wrap(t, p)}})
	wantDenied(t, "the scheduler's batch with a pod", err, codes.PermissionDenied, `objects[1]: user "system:scheduler" cannot update pods "default/p"`)
	got, err := admin.Get(ctx, &apiv1.GetRequest{Kind: "Event", Namespace: "default", Name: "e1"})
	if err != nil {
		t.Fatal(err)
	}
	if r := unwrap[*corev1.Event](t, got).Reason; r != "One" {
		t.Errorf("the refused batch's event: reason %q, want One (unchanged)", r)
	}
}

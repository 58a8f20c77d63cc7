package apiserver_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/apiserver"
	"github.com/skiffhq/skiff/apiserver/validation"
	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
	"github.com/skiffhq/skiff/store"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

func dial(t testing.TB, addr string) (apiv1.ResourcesClient, apiv1.ClusterClient) {
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return apiv1.NewResourcesClient(cc), apiv1.NewClusterClient(cc)
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// wrap puts obj into the API's envelope, for calls to the gRPC service.
func wrap(t testing.TB, obj kinds.Object) *apiv1.Object {
	t.Helper()
	o, err := kinds.Wrap(obj)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// unwrap reads an object the gRPC service sent, as T.
func unwrap[T kinds.Object](t testing.TB, o *apiv1.Object) T {
	t.Helper()
	obj, err := kinds.Unwrap(o)
	if err != nil {
		t.Fatal(err)
	}
	out, ok := obj.(T)
	if !ok {
		t.Fatalf("the server sent a %T, want %T", obj, out)
	}
	return out
}

func pod(name string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
}

func wantCode(t *testing.T, what string, err error, code codes.Code) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("%s: got %v, want %v", what, err, code)
	}
}

func TestResourceLifecycle(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	rc, _ := dial(t, c.Addr(0))
	ctx := testCtx(t)

	created, err := rc.Create(ctx, &apiv1.CreateRequest{Object: wrap(t, pod("web-1"))})
	if err != nil {
		t.Fatal(err)
	}
	p := unwrap[*corev1.Pod](t, created)
	if p.UID == "" || p.Namespace != "default" || p.Generation != 1 || p.ResourceVersion == "" ||
		p.CreationTimestamp.IsZero() || p.Status.Phase != corev1.PodPending || p.Kind != "Pod" || p.APIVersion != "v1" ||
		created.GetKind() != "Pod" || created.GetApiVersion() != "v1" || p.Status.QOSClass != corev1.PodQOSBestEffort {
		t.Fatalf("created pod = %v", p)
	}
	// The QoS class is the API server's to set at create, as Kubernetes' is.
	g := pod("guaranteed")
	g.Spec.Containers[0].Resources = corev1.ResourceRequirements{Limits: corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("100Mi")}}
	if gc, err := rc.Create(ctx, &apiv1.CreateRequest{Object: wrap(t, g)}); err != nil || unwrap[*corev1.Pod](t, gc).Status.QOSClass != corev1.PodQOSGuaranteed {
		t.Fatalf("create a pod of guaranteed QoS: %v %v", gc, err)
	}
	_, err = rc.Create(ctx, &apiv1.CreateRequest{Object: wrap(t, pod("web-1"))})
	wantCode(t, "create twice", err, codes.AlreadyExists)

	got, err := rc.Get(ctx, &apiv1.GetRequest{Kind: "po", Name: "web-1"})
	if err != nil || !equality.Semantic.DeepEqual(unwrap[*corev1.Pod](t, got), p) {
		t.Fatalf("get = %v %v", got, err)
	}
	_, err = rc.Get(ctx, &apiv1.GetRequest{Kind: "pods", Name: "nope"})
	wantCode(t, "get missing", err, codes.NotFound)
	if st, _ := status.FromError(err); st.Message() != `pods "nope" not found` {
		t.Errorf("not found message = %q", st.Message())
	}
	_, err = rc.Get(ctx, &apiv1.GetRequest{Kind: "widgets", Name: "x"})
	wantCode(t, "unknown kind", err, codes.InvalidArgument)

	// A status write does not bump generation; a spec change does.
	withStatus := p.DeepCopy()
	withStatus.Status = corev1.PodStatus{Phase: corev1.PodRunning}
	withStatus.Spec.Containers[0].Image = "ignored-by-status-update"
	st, err := rc.UpdateStatus(ctx, &apiv1.UpdateRequest{Object: wrap(t, withStatus)})
	if err != nil {
		t.Fatalf("update status: %v", err)
	}
	if sp := unwrap[*corev1.Pod](t, st); sp.Status.Phase != corev1.PodRunning || sp.Generation != 1 || sp.Spec.Containers[0].Image != "busybox" {
		t.Fatalf("update status = %v", sp)
	}
	// Update with a stale resourceVersion conflicts and names the current one.
	stale := p.DeepCopy()
	stale.Spec.Containers[0].Image = "busybox:2"
	_, err = rc.Update(ctx, &apiv1.UpdateRequest{Object: wrap(t, stale)})
	wantCode(t, "stale update", err, codes.Aborted)
	fresh := unwrap[*corev1.Pod](t, st)
	fresh.Spec.Containers[0].Image = "busybox:2"
	fresh.Status = corev1.PodStatus{} // ignored by Update
	up, err := rc.Update(ctx, &apiv1.UpdateRequest{Object: wrap(t, fresh)})
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if upPod := unwrap[*corev1.Pod](t, up); upPod.Generation != 2 || upPod.Status.Phase != corev1.PodRunning {
		t.Fatalf("update = %v", upPod)
	}
	// An update that changes nothing writes nothing.
	same, err := rc.Update(ctx, &apiv1.UpdateRequest{Object: up})
	if err != nil || unwrap[*corev1.Pod](t, same).ResourceVersion != unwrap[*corev1.Pod](t, up).ResourceVersion {
		t.Fatalf("no-op update = %v %v", same, err)
	}

	// Bind once; a second bind fails.
	b, err := rc.Bind(ctx, &apiv1.BindRequest{Name: "web-1", NodeName: "w1"})
	if err != nil || unwrap[*corev1.Pod](t, b).Spec.NodeName != "w1" {
		t.Fatalf("bind = %v %v", b, err)
	}
	_, err = rc.Bind(ctx, &apiv1.BindRequest{Name: "web-1", NodeName: "w2"})
	wantCode(t, "second bind", err, codes.FailedPrecondition)
	_, err = rc.Bind(ctx, &apiv1.BindRequest{Name: "web-1", NodeName: "w1", Uid: string(unwrap[*corev1.Pod](t, b).UID)})
	wantCode(t, "the same bind again", err, codes.FailedPrecondition)

	// A bound pod is deleted gracefully: it stays with a deletionTimestamp until the
	// kubelet deletes it with grace 0.
	d, err := rc.Delete(ctx, &apiv1.DeleteRequest{Kind: "pod", Name: "web-1"})
	if err != nil {
		t.Fatalf("graceful delete: %v", err)
	}
	// The mark bumps the generation (2, after the update above), as Kubernetes' does.
	if dp := unwrap[*corev1.Pod](t, d); dp.DeletionTimestamp == nil || ptr.Deref(dp.DeletionGracePeriodSeconds, 0) != 30 || dp.Generation != 3 {
		t.Fatalf("graceful delete = %v", dp)
	}
	// A second delete shortening the grace period is no new mark: no bump.
	ten := int64(10)
	if d, err = rc.Delete(ctx, &apiv1.DeleteRequest{Kind: "pod", Name: "web-1", GracePeriodSeconds: &ten}); err != nil {
		t.Fatalf("shorter graceful delete: %v", err)
	}
	if dp := unwrap[*corev1.Pod](t, d); ptr.Deref(dp.DeletionGracePeriodSeconds, 0) != 10 || dp.Generation != 3 {
		t.Fatalf("shorter graceful delete = %v", dp)
	}
	if _, err := rc.Get(ctx, &apiv1.GetRequest{Kind: "pod", Name: "web-1"}); err != nil {
		t.Fatalf("pod gone during its grace period: %v", err)
	}
	zero := int64(0)
	if _, err := rc.Delete(ctx, &apiv1.DeleteRequest{Kind: "pod", Name: "web-1", GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	_, err = rc.Get(ctx, &apiv1.GetRequest{Kind: "pod", Name: "web-1"})
	wantCode(t, "get after final delete", err, codes.NotFound)
}

func TestFinalizersHoldDeletion(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	rc, _ := dial(t, c.Addr(0))
	ctx := testCtx(t)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg"}, Data: map[string]string{"a": "b"}}
	if _, err := rc.Create(ctx, &apiv1.CreateRequest{Object: wrap(t, cm)}); err != nil {
		t.Fatal(err)
	}
	d, err := rc.Delete(ctx, &apiv1.DeleteRequest{Kind: "cm", Name: "cfg", PropagationPolicy: "Foreground"})
	if err != nil {
		t.Fatalf("foreground delete: %v", err)
	}
	held := unwrap[*corev1.ConfigMap](t, d)
	if held.DeletionTimestamp == nil || len(held.Finalizers) == 0 || held.Finalizers[0] != apiserver.FinalizerForeground {
		t.Fatalf("foreground delete = %v", held)
	}
	held.Finalizers = append(held.Finalizers, "new")
	_, err = rc.Update(ctx, &apiv1.UpdateRequest{Object: wrap(t, held)})
	wantCode(t, "add finalizer while deleting", err, codes.FailedPrecondition)
	held.Finalizers = nil
	if _, err := rc.Update(ctx, &apiv1.UpdateRequest{Object: wrap(t, held)}); err != nil {
		t.Fatalf("remove last finalizer: %v", err)
	}
	_, err = rc.Get(ctx, &apiv1.GetRequest{Kind: "cm", Name: "cfg"})
	wantCode(t, "get after finalizers removed", err, codes.NotFound)

	_, err = rc.Delete(ctx, &apiv1.DeleteRequest{Kind: "ns", Name: "default"})
	wantCode(t, "delete default namespace", err, codes.FailedPrecondition)
	_, err = rc.Create(ctx, &apiv1.CreateRequest{Object: wrap(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "missing"}})})
	wantCode(t, "create in missing namespace", err, codes.NotFound)
}

func TestWatchAndListThroughAnyNode(t *testing.T) {
	c := apicluster.Start(t, 3, apicluster.Options{})
	ctx := testCtx(t)
	rc0, _ := dial(t, c.Addr(0))
	rc1, _ := dial(t, c.Addr(1))
	rc2, _ := dial(t, c.Addr(2))

	list, err := rc1.List(ctx, &apiv1.ListRequest{Kind: "pods"})
	if err != nil {
		t.Fatal(err)
	}
	stream, err := rc2.Watch(ctx, &apiv1.WatchRequest{Kind: "pods", ResourceVersion: list.GetResourceVersion(), FieldSelector: "spec.nodeName=w1"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if _, err := rc0.Create(ctx, &apiv1.CreateRequest{Object: wrap(t, pod("p"+strconv.Itoa(i)))}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"p1", "p3"} {
		if _, err := rc1.Bind(ctx, &apiv1.BindRequest{Name: name, NodeName: "w1"}); err != nil {
			t.Fatal(err)
		}
	}
	zero := int64(0)
	if _, err := rc2.Delete(ctx, &apiv1.DeleteRequest{Kind: "pods", Name: "p3", GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	// The field selector turns binding into ADDED and deletion into DELETED, with the
	// objects decoded whole and resourceVersion set.
	var got []string
	for len(got) < 3 {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range resp.GetEvents() {
			p := unwrap[*corev1.Pod](t, ev.GetObject())
			if p.ResourceVersion == "" || len(p.Spec.Containers) == 0 || p.Spec.Containers[0].Image != "busybox" {
				t.Fatalf("event object = %v", p)
			}
			got = append(got, ev.GetType()+" "+p.Name)
		}
	}
	if fmt.Sprint(got) != "[ADDED p1 ADDED p3 DELETED p3]" {
		t.Fatalf("events = %v", got)
	}
	// Lists through any node are linearizable and filter by index and labels.
	l, err := rc2.List(ctx, &apiv1.ListRequest{Kind: "po", FieldSelector: "spec.nodeName=w1"})
	if err != nil || len(l.GetItems()) != 1 || unwrap[*corev1.Pod](t, l.GetItems()[0]).Name != "p1" {
		t.Fatalf("list by node = %v %v", l, err)
	}
	l, err = rc1.List(ctx, &apiv1.ListRequest{Kind: "po", FieldSelector: "spec.nodeName=", LabelSelector: "app=web"})
	if err != nil || len(l.GetItems()) != 3 {
		t.Fatalf("list unbound = %d items, %v", len(l.GetItems()), err)
	}
	_, err = rc1.List(ctx, &apiv1.ListRequest{Kind: "po", FieldSelector: "spec.foo=x"})
	wantCode(t, "unsupported field selector", err, codes.InvalidArgument)

	// A watch from before the history window is told so.
	// Every member records its API address once it has found the leader, on its own
	// time: the status shows all three soon after start, not necessarily at once.
	_, cl := dial(t, c.Addr(0))
	for deadline := time.Now().Add(30 * time.Second); ; {
		cs, err := cl.Status(ctx, &apiv1.ClusterStatusRequest{})
		if err != nil || len(cs.GetMembers()) != 3 || cs.GetLeader() == "" {
			t.Fatalf("cluster status = %v %v", cs, err)
		}
		var missing []string
		for _, m := range cs.GetMembers() {
			if m.GetApiAddress() == "" {
				missing = append(missing, m.GetName())
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("members %v have no API address after 30s", missing)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestNamespaceCheckFollowsChanges: the namespace check caches what it read, yet a create
// always sees the namespace changes this member applied before it: one created after a
// refusal, one marked terminating after many creates.
func TestNamespaceCheckFollowsChanges(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	c.WaitReady() // a missing namespace is confirmed with a linearizable read
	rc, _ := dial(t, c.Addr(0))
	ctx := testCtx(t)
	cm := func(name string) *apiv1.CreateRequest {
		return &apiv1.CreateRequest{Object: wrap(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "team"}})}
	}
	_, err := rc.Create(ctx, cm("early"))
	wantCode(t, "create in missing namespace", err, codes.NotFound)
	if _, err := rc.Create(ctx, &apiv1.CreateRequest{Object: wrap(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}})}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if _, err := rc.Create(ctx, cm(fmt.Sprintf("cm-%d", i))); err != nil {
			t.Fatalf("create in new namespace: %v", err)
		}
	}
	// The namespace has a finalizer, and no controller runs here: it stays Terminating.
	if _, err := rc.Delete(ctx, &apiv1.DeleteRequest{Kind: "namespaces", Name: "team"}); err != nil {
		t.Fatal(err)
	}
	_, err = rc.Create(ctx, cm("late"))
	wantCode(t, "create in terminating namespace", err, codes.FailedPrecondition)
	if st, _ := status.FromError(err); st.Message() == "" || !strings.Contains(st.Message(), "being terminated") {
		t.Fatalf("terminating namespace message = %q", st.Message())
	}
}

// A follower that has not applied a namespace's creation yet still accepts writes into it
// once the creation is acknowledged: a namespace missing from its state is confirmed with a
// linearizable read before the write is refused.
func TestNamespaceCreatedElsewhereIsSeenByFollower(t *testing.T) {
	c := apicluster.Start(t, 3, apicluster.Options{})
	c.WaitReady()
	leader := c.Leader()
	lc, _ := dial(t, c.Addr(leader))
	fc, _ := dial(t, c.Addr((leader+1)%3))
	ctx := testCtx(t)
	for i := 0; i < 30; i++ {
		ns := fmt.Sprintf("team-%d", i)
		if _, err := lc.Create(ctx, &apiv1.CreateRequest{Object: wrap(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})}); err != nil {
			t.Fatal(err)
		}
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm", Namespace: ns}}
		if _, err := fc.Create(ctx, &apiv1.CreateRequest{Object: wrap(t, cm)}); err != nil {
			t.Fatalf("create in %s through a follower right after the namespace: %v", ns, err)
		}
	}
	_, err := fc.Create(ctx, &apiv1.CreateRequest{Object: wrap(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm", Namespace: "nowhere"}})})
	wantCode(t, "create in a namespace that does not exist", err, codes.NotFound)
}

// TestUpdatesReadLocalState: an update starts from the member's own state, with no
// read barrier (a read index costs a heartbeat round of the leader's and the wait for
// the apply: under load, as long as the write itself), and stays correct through a
// follower behind the leader: its compare-and-swap fails on a state it has not
// applied yet, and the update is decided again on a linearizable read.
func TestUpdatesReadLocalState(t *testing.T) {
	c := apicluster.Start(t, 3, apicluster.Options{})
	c.WaitReady()
	leader := c.Leader()
	follower := (leader + 1) % 3
	lc, _ := dial(t, c.Addr(leader))
	fc, _ := dial(t, c.Addr(follower))
	ctx := testCtx(t)
	created, err := lc.Create(ctx, &apiv1.CreateRequest{Object: wrap(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm"}})})
	if err != nil {
		t.Fatal(err)
	}
	cm := unwrap[*corev1.ConfigMap](t, created)
	update := func(rc apiv1.ResourcesClient, cm *corev1.ConfigMap) (*corev1.ConfigMap, error) {
		got, err := rc.Update(ctx, &apiv1.UpdateRequest{Object: wrap(t, cm)})
		if err != nil {
			return nil, err
		}
		return unwrap[*corev1.ConfigMap](t, got), nil
	}
	barriers := func() (n int64) {
		for i := range 3 {
			n += c.Server(i).Store().ReadBarriers()
		}
		return n
	}

	before := barriers()
	for i := range 5 {
		cm.Data = map[string]string{"a": strconv.Itoa(i)}
		if cm, err = update(lc, cm); err != nil {
			t.Fatalf("update %d through the leader: %v", i, err)
		}
	}
	// Fewer than one each: the members' own background reads may count.
	if n := barriers() - before; n >= 5 {
		t.Errorf("5 updates through the leader waited for %d read barriers, want none", n)
	}

	// Through a follower, right after the leader's write: the follower may not have
	// applied it, yet the update given its resourceVersion succeeds, on that state.
	for i := range 30 {
		cm.Data = map[string]string{"a": strconv.Itoa(i)}
		if cm, err = update(lc, cm); err != nil {
			t.Fatalf("update %d through the leader: %v", i, err)
		}
		next := cm.DeepCopy()
		next.Data["b"] = strconv.Itoa(i)
		got, err := update(fc, next)
		if err != nil {
			t.Fatalf("update %d through the follower right after the leader's: %v", i, err)
		}
		if got.Data["a"] != strconv.Itoa(i) || got.Data["b"] != strconv.Itoa(i) {
			t.Fatalf("update %d through the follower gave %v", i, got.Data)
		}
		cm = got
	}
	// A resourceVersion that is no longer the latest is still a conflict.
	stale := cm.DeepCopy()
	cm.Data["c"] = "1"
	if _, err := update(lc, cm); err != nil {
		t.Fatal(err)
	}
	stale.Data["c"] = "2"
	_, err = update(fc, stale)
	wantCode(t, "update through the follower from an older resourceVersion", err, codes.Aborted)
}

// TestFollowersNameTheLeader: a member that is not the leader says in its replies where
// the leader serves the API, and refuses a request sent to it as the leader; the leader
// says nothing and takes such requests.
func TestFollowersNameTheLeader(t *testing.T) {
	c := apicluster.Start(t, 3, apicluster.Options{})
	ctx := testCtx(t)
	leader := c.Leader()
	// Members record their API addresses just after the cluster forms.
	_, cl := dial(t, c.Addr(leader))
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := cl.Status(ctx, &apiv1.ClusterStatusRequest{})
		recorded := 0
		for _, m := range st.GetMembers() {
			if m.GetApiAddress() != "" {
				recorded++
			}
		}
		if err == nil && recorded == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("members' API addresses never all recorded: %v %v", st, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	expecting := metadata.AppendToOutgoingContext(ctx, client.ExpectLeaderHeader, "1")
	for i := 0; i < 3; i++ {
		rc, _ := dial(t, c.Addr(i))
		var md metadata.MD
		if _, err := rc.Create(ctx, &apiv1.CreateRequest{Object: wrap(t, pod(fmt.Sprintf("hint-%d", i)))}, grpc.Header(&md)); err != nil {
			t.Fatal(err)
		}
		got := md.Get(client.LeaderHeader)
		if i == leader {
			if len(got) != 0 {
				t.Fatalf("the leader names a leader: %v", got)
			}
			if _, err := rc.Create(expecting, &apiv1.CreateRequest{Object: wrap(t, pod("at-leader"))}); err != nil {
				t.Fatalf("the leader refused a request expecting the leader: %v", err)
			}
			continue
		}
		if len(got) != 1 || got[0] != c.Addr(leader) {
			t.Fatalf("member %d names the leader as %v, want %s", i, got, c.Addr(leader))
		}
		// A request sent to it as the leader is refused at once, naming the leader, and
		// nothing is done.
		md = nil
		_, err := rc.Create(expecting, &apiv1.CreateRequest{Object: wrap(t, pod(fmt.Sprintf("refused-%d", i)))}, grpc.Header(&md))
		wantCode(t, "request expecting the leader at a follower", err, codes.Unavailable)
		// Skiff's own Unavailable, which clients read as "refused, nothing done" and retry
		// elsewhere even when the request could not be repeated after a lost reply.
		if info := errorInfo(err); info == nil || info.GetDomain() != "skiff.dev" || info.GetReason() != apiserver.ReasonUnavailable {
			t.Fatalf("refusal carries %v, want Skiff's ServiceUnavailable", info)
		}
		if got := md.Get(client.LeaderHeader); len(got) != 1 || got[0] != c.Addr(leader) {
			t.Fatalf("refusal names the leader as %v, want %s", got, c.Addr(leader))
		}
		if _, err := rc.Get(ctx, &apiv1.GetRequest{Kind: "pods", Name: fmt.Sprintf("refused-%d", i)}); status.Code(err) != codes.NotFound {
			t.Fatalf("the refused create was done: %v", err)
		}
	}
}

// errorInfo is the ErrorInfo detail of a gRPC error, or nil.
func errorInfo(err error) *errdetails.ErrorInfo {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info
		}
	}
	return nil
}

// Creating a Deployment (or a Job) records the moment in an Event (reason Stored, eventTime to the
// microsecond) in the same transaction: skiffctl trace times step 1 by it, object times
// keeping only the second. Other kinds get none.
func TestStoredEventRecordsTheChainStart(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cs := client.NewClientset(conn)
	ctx := testCtx(t)
	before := time.Now()
	lbl := map[string]string{"app": "web"}
	d, err := cs.Deployments.Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: lbl}, Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: lbl}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	evs, err := cs.Events.List(ctx, "default", client.ListOptions{FieldSelector: "involvedObject.uid=" + string(d.UID)})
	if err != nil || len(evs.Items) != 1 {
		t.Fatalf("events of the new deployment: %v %v", evs, err)
	}
	e := evs.Items[0]
	if e.Reason != apiserver.ReasonStored || e.Source.Component != "apiserver" || e.InvolvedObject.Name != "web" ||
		e.EventTime.Time.Before(before.Truncate(time.Microsecond)) || e.EventTime.Time.After(after) || e.ResourceVersion != d.ResourceVersion {
		t.Fatalf("stored event %+v (deployment at resourceVersion %s, created between %v and %v)", e, d.ResourceVersion, before, after)
	}
	if err := validation.Validate(e); err != nil {
		t.Fatalf("the server's own event is invalid: %v", err)
	}
	// A Job starts a chain too (skiffctl trace job), so its creation is recorded alike.
	j, err := cs.Jobs.Create(ctx, &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "pi"}, Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
		Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if evs, err := cs.Events.List(ctx, "default", client.ListOptions{FieldSelector: "involvedObject.uid=" + string(j.UID)}); err != nil ||
		len(evs.Items) != 1 || evs.Items[0].Reason != apiserver.ReasonStored || evs.Items[0].InvolvedObject.Kind != "Job" {
		t.Fatalf("events of the new job: %v %v", evs, err)
	}
	cm, err := cs.ConfigMaps.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg"}})
	if err != nil {
		t.Fatal(err)
	}
	if evs, err := cs.Events.List(ctx, "default", client.ListOptions{FieldSelector: "involvedObject.uid=" + string(cm.UID)}); err != nil || len(evs.Items) != 0 {
		t.Fatalf("a configmap got events: %v %v", evs, err)
	}
}

// TestRemoveMemberThroughItself: a member removed through its own API (the leader, or a
// follower that forwards the change) answers once the change commits, rather than
// waiting, no longer a member, on a write no leader will take; its address record goes.
func TestRemoveMemberThroughItself(t *testing.T) {
	for _, which := range []string{"leader", "follower"} {
		t.Run(which, func(t *testing.T) {
			c := apicluster.Start(t, 3, apicluster.Options{})
			victim := c.Leader()
			if which == "follower" {
				victim = (victim + 1) % 3
			}
			name := fmt.Sprintf("n%d", victim+1)
			_, cc := dial(t, c.Addr(victim))
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if _, err := cc.RemoveMember(ctx, &apiv1.RemoveMemberRequest{Name: name}); err != nil {
				t.Fatalf("remove %s through itself: %v", name, err)
			}
			other := (victim + 1) % 3
			_, occ := dial(t, c.Addr(other))
			waitfor.Condition(t, 20*time.Second, name+" gone from the configuration", func() (bool, string) {
				st, err := occ.Status(ctx, &apiv1.ClusterStatusRequest{})
				if err != nil {
					return false, err.Error()
				}
				var names []string
				for _, m := range st.GetMembers() {
					names = append(names, m.GetName())
				}
				return len(names) == 2 && !slices.Contains(names, name), fmt.Sprint("members ", names)
			})
			// A removed leader's followers elect another before they answer reads.
			waitfor.Condition(t, 20*time.Second, name+"'s address record gone", func() (bool, string) {
				rec, err := c.Server(other).Store().Get(ctx, store.Key{Kind: "skiff.member", Name: name}, store.ReadOptions{})
				return errors.Is(err, store.ErrNotFound), fmt.Sprintf("record %q, %v", rec.Value, err)
			})
			c.Stop(victim) // removed: it would campaign for nothing until the end
		})
	}
}

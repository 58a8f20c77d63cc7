package apiserver_test

import (
	"context"
	"crypto/tls"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/apiserver"
	"github.com/skiffhq/skiff/apiserver/auth"
	"github.com/skiffhq/skiff/pki"
	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
	"github.com/skiffhq/skiff/test/apicluster"
)

// bearer is a per-call token.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}
func (bearer) RequireTransportSecurity() bool { return true }

func dialSecure(t testing.TB, addr string, tc *tls.Config, token string) apiv1.ResourcesClient {
	t.Helper()
	opts := []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(tc))}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(token)))
	}
	cc, err := grpc.NewClient("passthrough:///"+addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return apiv1.NewResourcesClient(cc)
}

func wantDenied(t *testing.T, what string, err error, code codes.Code, msg string) {
	t.Helper()
	if status.Code(err) != code || !strings.Contains(status.Convert(err).Message(), msg) {
		t.Fatalf("%s: got %v, want %v containing %q", what, err, code, msg)
	}
}

// foreignTLS is a client certificate of another CA, with an admin's name.
func foreignTLS(t *testing.T, dir string) *tls.Config {
	other := t.TempDir()
	if _, err := pki.InitDir(other, pki.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	r, err := pki.NewReloader(filepath.Join(other, "admin.crt"), filepath.Join(other, "admin.key"), filepath.Join(dir, pki.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	return r.ClientTLS()
}

// expiredTLS is a certificate of the cluster CA that expired an hour ago.
func expiredTLS(t *testing.T, dir string) *tls.Config {
	ca, err := pki.LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ca.Issue(pki.Request{CommonName: "admin", Organization: []string{pki.GroupAdmin}, Client: true,
		NotBefore: time.Now().Add(-2 * time.Hour), Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	cert, key, err := p.Write(out, "old")
	if err != nil {
		t.Fatal(err)
	}
	r, err := pki.NewReloader(cert, key, filepath.Join(dir, pki.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	return r.ClientTLS()
}

func TestAuthentication(t *testing.T) {
	dir := apicluster.Certs(t, "w1")
	toks, err := auth.ParseTokens(auth.HashToken("ci-token") + ",ci,skiff:admin")
	if err != nil {
		t.Fatal(err)
	}
	c := apicluster.Start(t, 3, apicluster.Options{Certs: dir, Tokens: toks})
	ctx := testCtx(t)
	list := &apiv1.ListRequest{Kind: "Pod"}

	admin := dialSecure(t, c.Addr(1), apicluster.ClientTLS(t, dir, "admin"), "")
	if _, err := admin.List(ctx, list); err != nil {
		t.Fatalf("admin: %v", err)
	}
	if _, err := dialSecure(t, c.Addr(0), apicluster.ClientTLS(t, dir, ""), "ci-token").List(ctx, list); err != nil {
		t.Fatalf("token: %v", err)
	}
	tests := []struct {
		name  string
		tls   *tls.Config
		token string
		msg   string
	}{
		{name: "no credentials", tls: apicluster.ClientTLS(t, dir, ""), msg: "no client certificate or bearer token"},
		{name: "wrong token", tls: apicluster.ClientTLS(t, dir, ""), token: "guess", msg: "invalid bearer token"},
		{name: "foreign CA", tls: foreignTLS(t, dir), msg: "certificate signed by unknown authority"},
		{name: "expired certificate", tls: expiredTLS(t, dir), msg: "expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := dialSecure(t, c.Addr(0), tt.tls, tt.token).List(ctx, list)
			wantDenied(t, "list", err, codes.Unauthenticated, tt.msg)
		})
	}
	t.Run("plaintext", func(t *testing.T) {
		cc, err := grpc.NewClient("passthrough:///"+c.Addr(0), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err = apiv1.NewResourcesClient(cc).List(sctx, list)
		if code := status.Code(err); code != codes.Unavailable && code != codes.DeadlineExceeded {
			t.Fatalf("plaintext against TLS: %v", err)
		}
	})
	t.Run("server of another CA", func(t *testing.T) {
		// The client trusts only its CA: a server with a foreign certificate is refused.
		other := apicluster.Certs(t)
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err := dialSecure(t, c.Addr(0), apicluster.ClientTLS(t, other, "admin"), "").List(sctx, list)
		if err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
			t.Fatalf("foreign server accepted: %v", err)
		}
	})
}

func boundPod(name, node string) *corev1.Pod {
	p := pod(name)
	p.Spec.NodeName = node
	return p
}

func TestNodeRestriction(t *testing.T) {
	dir := apicluster.Certs(t, "w1", "w2")
	c := apicluster.Start(t, 1, apicluster.Options{Certs: dir})
	ctx := testCtx(t)
	admin := dialSecure(t, c.Addr(0), apicluster.ClientTLS(t, dir, "admin"), "")
	for _, p := range []*corev1.Pod{boundPod("mine", "w1"), boundPod("theirs", "w2")} {
		if _, err := admin.Create(ctx, &apiv1.CreateRequest{Object: wrap(t, p)}); err != nil {
			t.Fatal(err)
		}
	}
	w1 := dialSecure(t, c.Addr(0), apicluster.ClientTLS(t, dir, "kubelet-w1"), "")
	sched := dialSecure(t, c.Addr(0), apicluster.ClientTLS(t, dir, "scheduler"), "")

	// Its own pods: list, watch, read, status, delete.
	l, err := w1.List(ctx, &apiv1.ListRequest{Kind: "Pod", FieldSelector: "spec.nodeName=w1"})
	if err != nil || len(l.GetItems()) != 1 || unwrap[*corev1.Pod](t, l.GetItems()[0]).Name != "mine" {
		t.Fatalf("list own pods: %v %v", l, err)
	}
	got, err := w1.Get(ctx, &apiv1.GetRequest{Kind: "Pod", Namespace: "default", Name: "mine"})
	if err != nil {
		t.Fatal(err)
	}
	mine := unwrap[*corev1.Pod](t, got)
	mine.Status.Phase = corev1.PodRunning
	if _, err := w1.UpdateStatus(ctx, &apiv1.UpdateRequest{Object: wrap(t, mine)}); err != nil {
		t.Fatalf("update own pod's status: %v", err)
	}

	// Another node's pods: nothing.
	const msg = `user "system:node:w1" cannot `
	_, err = w1.Get(ctx, &apiv1.GetRequest{Kind: "Pod", Namespace: "default", Name: "theirs"})
	wantDenied(t, "get another node's pod", err, codes.PermissionDenied, msg+`get pods "default/theirs": pod is bound to node "w2"`)
	_, err = w1.List(ctx, &apiv1.ListRequest{Kind: "Pod"})
	wantDenied(t, "list all pods", err, codes.PermissionDenied, msg+"list pods in all namespaces: a node may only list pods with fieldSelector spec.nodeName=w1")
	_, err = w1.List(ctx, &apiv1.ListRequest{Kind: "Pod", FieldSelector: "spec.nodeName=w2"})
	wantDenied(t, "list w2's pods", err, codes.PermissionDenied, msg+"list pods")
	ws, err := w1.Watch(ctx, &apiv1.WatchRequest{Kind: "Pod", FieldSelector: "spec.nodeName=w2"})
	if err == nil {
		_, err = ws.Recv()
	}
	wantDenied(t, "watch w2's pods", err, codes.PermissionDenied, msg+"watch pods")
	theirs := boundPod("theirs", "w2")
	theirs.Namespace = "default"
	theirs.Status = corev1.PodStatus{Phase: corev1.PodFailed}
	_, err = w1.UpdateStatus(ctx, &apiv1.UpdateRequest{Object: wrap(t, theirs)})
	wantDenied(t, "update another node's pod status", err, codes.PermissionDenied, msg+`update pods/status "default/theirs": pod is bound to node "w2"`)
	_, err = w1.Delete(ctx, &apiv1.DeleteRequest{Kind: "Pod", Namespace: "default", Name: "theirs"})
	wantDenied(t, "delete another node's pod", err, codes.PermissionDenied, msg+`delete pods "default/theirs": pod is bound to node "w2"`)
	_, err = w1.Update(ctx, &apiv1.UpdateRequest{Object: wrap(t, theirs)})
	wantDenied(t, "update a pod spec", err, codes.PermissionDenied, msg+`update pods "default/theirs"`)
	_, err = w1.Create(ctx, &apiv1.CreateRequest{Object: wrap(t, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w2"}})})
	wantDenied(t, "register as another node", err, codes.PermissionDenied, msg+`create nodes "w2": a node may only access its own Node "w1"`)
	got, err = admin.Get(ctx, &apiv1.GetRequest{Kind: "Pod", Namespace: "default", Name: "theirs"})
	if err != nil {
		t.Fatal(err)
	}
	if p := unwrap[*corev1.Pod](t, got); p.Status.Phase == corev1.PodFailed || p.DeletionTimestamp != nil {
		t.Fatalf("w2's pod changed: %v", p)
	}

	// What it writes on its Node and in Events (NodeRestriction's admission).
	const nodeForbidden = `nodes "w1" is forbidden: node "w1" `
	role := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w1", Labels: map[string]string{"node-role.kubernetes.io/control-plane": ""}}}
	_, err = w1.Create(ctx, &apiv1.CreateRequest{Object: wrap(t, role)})
	wantDenied(t, "register with a role", err, codes.PermissionDenied, nodeForbidden+"is not allowed to set the following labels: node-role.kubernetes.io/control-plane")
	created, err := w1.Create(ctx, &apiv1.CreateRequest{Object: wrap(t, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w1", Labels: map[string]string{"disktype": "ssd"}}})})
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	self := unwrap[*corev1.Node](t, created)
	self.Labels["node-restriction.kubernetes.io/fips"] = "true"
	_, err = w1.Update(ctx, &apiv1.UpdateRequest{Object: wrap(t, self)})
	wantDenied(t, "label itself for restricted workloads", err, codes.PermissionDenied, nodeForbidden+"is not allowed to modify labels: node-restriction.kubernetes.io/fips")
	delete(self.Labels, "node-restriction.kubernetes.io/fips")
	self.Spec.Taints = []corev1.Taint{{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule}}
	_, err = w1.Update(ctx, &apiv1.UpdateRequest{Object: wrap(t, self)})
	wantDenied(t, "taint itself", err, codes.PermissionDenied, nodeForbidden+"is not allowed to modify taints")
	// The same admission over REST: a patch, and an apply, of the Node and of its status
	// (a status patch writes labels too, as Kubernetes' node status strategy does).
	rw1 := newRESTTLS(t, c.Addr(0), apicluster.ClientTLS(t, dir, "kubelet-w1"), "")
	for _, path := range []string{"/api/v1/nodes/w1", "/api/v1/nodes/w1/status"} {
		for _, tc := range []struct{ contentType, body string }{
			{"application/merge-patch+json", `{"metadata":{"labels":{"node-restriction.kubernetes.io/fips":"true"}}}`},
			{"application/apply-patch+yaml", "apiVersion: v1\nkind: Node\nmetadata:\n  name: w1\n  labels: {node-restriction.kubernetes.io/fips: \"true\"}\n"},
		} {
			st := rw1.want(rw1.do("PATCH", path+"?fieldManager=kubelet", tc.contentType, "", tc.body), 403, "REST "+tc.contentType+" of "+path).status()
			if !strings.Contains(st.Message, nodeForbidden+"is not allowed to modify labels: node-restriction.kubernetes.io/fips") {
				t.Errorf("REST %s of %s with a restricted label: %+v", tc.contentType, path, st)
			}
		}
	}
	self.Spec.Taints = nil
	self.Labels["example.com/gpu"] = "a100"
	if _, err := w1.Update(ctx, &apiv1.UpdateRequest{Object: wrap(t, self)}); err != nil {
		t.Fatalf("a node adds a label of its own: %v", err)
	}
	event := func(name string, ref corev1.ObjectReference) *apiv1.CreateRequest {
		return &apiv1.CreateRequest{Object: wrap(t, &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
			InvolvedObject: ref, Reason: "Pulled", Message: "pulled", Type: corev1.EventTypeNormal})}
	}
	if _, err := w1.Create(ctx, event("mine.1", corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "mine"})); err != nil {
		t.Fatalf("an event about its own pod: %v", err)
	}
	_, err = w1.Create(ctx, event("theirs.1", corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "theirs"}))
	wantDenied(t, "an event about another node's pod", err, codes.PermissionDenied, `events "theirs.1" is forbidden: node "w1" may not record events about pod "default/theirs": it is not bound to this node`)

	// Wrong identity: the scheduler binds and deletes pods (preemption), nothing else.
	_, err = sched.Delete(ctx, &apiv1.DeleteRequest{Kind: "Secret", Namespace: "default", Name: "theirs"})
	wantDenied(t, "scheduler deletes", err, codes.PermissionDenied, `user "system:scheduler" cannot delete secrets "default/theirs"`)

	// Eviction is "create pods/eviction", which no node may do, even to its own pods.
	cc, err := grpc.NewClient("passthrough:///"+c.Addr(0), grpc.WithTransportCredentials(credentials.NewTLS(apicluster.ClientTLS(t, dir, "kubelet-w1"))))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	_, err = apiv1.NewPodsClient(cc).Evict(ctx, &apiv1.EvictRequest{Namespace: "default", Name: "mine"})
	wantDenied(t, "node evicts", err, codes.PermissionDenied, msg+`create pods/eviction "default/mine"`)

	// Its own pod's final delete.
	if _, err := w1.Delete(ctx, &apiv1.DeleteRequest{Kind: "Pod", Namespace: "default", Name: "mine", GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatalf("final delete of own pod: %v", err)
	}
}

func TestLimits(t *testing.T) {
	dir := apicluster.Certs(t, "w1")
	c := apicluster.Start(t, 1, apicluster.Options{Certs: dir, Configure: func(cfg *apiserver.Config) {
		cfg.RateLimit, cfg.RateBurst, cfg.MaxWatchesPerUser = 0.001, 5, 1
	}})
	ctx := testCtx(t)
	w1 := dialSecure(t, c.Addr(0), apicluster.ClientTLS(t, dir, "kubelet-w1"), "")
	admin := dialSecure(t, c.Addr(0), apicluster.ClientTLS(t, dir, "admin"), "")

	// Watches: one each.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := w1.Watch(wctx, &apiv1.WatchRequest{Kind: "Pod", FieldSelector: "spec.nodeName=w1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Header(); err != nil {
		t.Fatal(err)
	}
	w2, err := w1.Watch(ctx, &apiv1.WatchRequest{Kind: "Pod", FieldSelector: "spec.nodeName=w1"})
	if err == nil {
		_, err = w2.Recv()
	}
	wantDenied(t, "second watch", err, codes.ResourceExhausted, `user "system:node:w1" has 1 open watches`)

	// Requests: a burst of five, then refused, per user; the cluster's components (a
	// kubelet) are never rate-limited.
	big := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "big"}, Data: map[string]string{"x": strings.Repeat("x", 3<<20)}}
	_, err = admin.Create(ctx, &apiv1.CreateRequest{Object: wrap(t, big)})
	wantDenied(t, "3 MiB request", err, codes.ResourceExhausted, "larger than max")
	for i := 0; i < 5; i++ { // the oversized create never reached the limits
		if _, err := admin.List(ctx, &apiv1.ListRequest{Kind: "Pod"}); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	_, err = admin.List(ctx, &apiv1.ListRequest{Kind: "Pod"})
	wantDenied(t, "over the rate", err, codes.ResourceExhausted, `user "admin" exceeded its rate limit`)
	var retry *errdetails.RetryInfo
	for _, d := range status.Convert(err).Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			retry = ri
		}
	}
	if d := retry.GetRetryDelay().AsDuration(); d < 500*time.Second {
		t.Fatalf("retry delay %v, want the time to the next token (1000s)", d)
	}
	// The REST API counts against the same limit: 429 with Retry-After.
	rc := newRESTTLS(t, c.Addr(0), apicluster.ClientTLS(t, dir, "admin"), "")
	r := rc.want(rc.do("GET", "/api/v1/namespaces/default/pods", "", "", nil), 429, "REST over the rate")
	if st := r.status(); st.Reason != metav1.StatusReasonTooManyRequests || !strings.Contains(st.Message, `user "admin" exceeded its rate limit`) ||
		st.Details == nil || st.Details.RetryAfterSeconds < 500 {
		t.Errorf("REST over the rate: %+v", st)
	}
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 500 {
		t.Errorf("REST over the rate: Retry-After %q", r.header.Get("Retry-After"))
	}
	for i := 0; i < 10; i++ {
		if _, err := w1.List(ctx, &apiv1.ListRequest{Kind: "Pod", FieldSelector: "spec.nodeName=w1"}); err != nil {
			t.Fatalf("a node is rate-limited: %v", err)
		}
	}
}

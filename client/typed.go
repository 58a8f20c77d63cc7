package client

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	nodev1 "k8s.io/api/node/v1"
	policyv1 "k8s.io/api/policy/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/kinds"
	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
)

// Client is a typed client for one kind, over Kubernetes' types:
// Client[*corev1.Pod], Client[*appsv1.Deployment], ...
type Client[T kinds.Object] struct {
	conn *Conn
	info *kinds.Info
	// meta: the client decodes only the objects' metadata (ForMetadata).
	meta bool
}

// For returns the typed client for T's kind.
func For[T kinds.Object](c *Conn) *Client[T] {
	return &Client[T]{conn: c, info: kinds.OfType[T]()}
}

// ForKind returns an untyped client for a kind chosen at run time (as a CLI does).
func ForKind(c *Conn, info *kinds.Info) *Client[kinds.Object] {
	return &Client[kinds.Object]{conn: c, info: info}
}

// ForMetadata returns a client that reads only the metadata of a kind's objects (every
// kind's, custom ones' too): Kubernetes' metadata client, for a reader of many kinds
// that needs no more (the garbage collector). The servers send whole objects; the client
// decodes their metadata and skips the rest (kinds.DecodeMeta). It reads (Get, List,
// Watch) and deletes; a write of a PartialObjectMetadata fails.
func ForMetadata(c *Conn, info *kinds.Info) *Client[*metav1.PartialObjectMetadata] {
	return &Client[*metav1.PartialObjectMetadata]{conn: c, info: info, meta: true}
}

// Kind describes the client's kind.
func (c *Client[T]) Kind() *kinds.Info { return c.info }

func (c *Client[T]) unwrap(o *apiv1.Object) (T, error) {
	var zero T
	var obj kinds.Object
	var err error
	if c.meta {
		obj, err = kinds.UnwrapMeta(o)
	} else {
		obj, err = kinds.Unwrap(o)
	}
	if err != nil {
		return zero, fmt.Errorf("%s: server sent %w", c.info.Kind, err)
	}
	t, ok := obj.(T)
	if !ok {
		return zero, fmt.Errorf("%s: server sent a %T", c.info.Kind, obj)
	}
	return t, nil
}

// wrap puts obj into the API's envelope.
func (c *Client[T]) wrap(obj T) (*apiv1.Object, error) {
	o, err := kinds.Wrap(obj)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", c.info.Kind, obj.GetName(), err)
	}
	return o, nil
}

// CreateOptions tune a Create.
type CreateOptions struct {
	// DryRun has the server check the object and answer with what it would store,
	// storing nothing.
	DryRun bool
}

// UpdateOptions tune an Update.
type UpdateOptions struct {
	// DryRun has the server check the update and answer with what it would store,
	// storing nothing.
	DryRun bool
}

// Create creates obj. A create that names its object is retried when its reply is lost;
// then an AlreadyExists may mean this call succeeded (IsRetriedCreate). A create with
// only generateName is never repeated after a lost reply: the error says the outcome is
// unknown.
func (c *Client[T]) Create(ctx context.Context, obj T) (T, error) {
	return c.CreateWithOptions(ctx, obj, CreateOptions{})
}

// CreateWithOptions is Create with options.
func (c *Client[T]) CreateWithOptions(ctx context.Context, obj T, o0 CreateOptions) (T, error) {
	var out *apiv1.Object
	policy := once
	if obj.GetName() != "" || o0.DryRun {
		policy = idempotent
	}
	o, err := c.wrap(obj)
	if err != nil {
		var zero T
		return zero, err
	}
	attempts := 0
	err = c.conn.invokeVia(ctx, toLeader, policy, c.conn.opts.AttemptTimeout, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		attempts++
		out, err = apiv1.NewResourcesClient(cc).Create(ctx, &apiv1.CreateRequest{Object: o, DryRun: o0.DryRun})
		return err
	})
	return c.createOutcome(obj, out, err, attempts)
}

// createOutcome is a create's result as Create reports it, from the server's reply to a
// call made attempts times.
func (c *Client[T]) createOutcome(obj T, out *apiv1.Object, err error, attempts int) (T, error) {
	switch {
	case err == nil:
		return c.unwrap(out)
	case IsAlreadyExists(err) && attempts > 1:
		err = &RetriedCreateError{Err: err}
	case transportFailed(err) && obj.GetName() == "":
		err = fmt.Errorf("create %s with generateName %q: %w (%v)", c.info.Kind, obj.GetGenerateName(), errUnknownOutcome, err)
	}
	var zero T
	return zero, err
}

// MaxCreateBatch is the most objects one CreateBatch call may carry (the server's
// limit).
const MaxCreateBatch = 100

// CreateEach creates objs (at most MaxCreateBatch), each succeeding or failing alone
// (out[i] and errs[i] as Create's): more than one in one CreateBatch call, which the
// server commits in one store transaction; one Create each, concurrently, from servers
// without the call (remembered for the Conn) or when the batch was refused
// (PermissionDenied: one object refused refuses the batch, and alone each says which
// and why). The call's own failure otherwise is every object's error.
func (c *Client[T]) CreateEach(ctx context.Context, objs []T) ([]T, []error) {
	return each(ctx, objs, &c.conn.noBatch, c.CreateBatch, c.Create)
}

// UpdateEach updates objs (at most MaxUpdateBatch) as CreateEach creates them: each
// succeeding or failing alone (out[i] and errs[i] as Update's), in one UpdateBatch call,
// else one Update each.
func (c *Client[T]) UpdateEach(ctx context.Context, objs []T) ([]T, []error) {
	return each(ctx, objs, &c.conn.noUpdateBatch, c.UpdateBatch, c.Update)
}

// each runs one batch call for objs, else (a server without it, which unsupported
// remembers, or a refused batch) one single call each, concurrently.
func each[In, Out any](ctx context.Context, objs []In, unsupported *atomic.Bool,
	batch func(context.Context, []In) ([]Out, []error, error), single func(context.Context, In) (Out, error)) ([]Out, []error) {
	if len(objs) > 1 && !unsupported.Load() {
		out, errs, err := batch(ctx, objs)
		switch {
		case err == nil:
			return out, errs
		case status.Code(err) == codes.Unimplemented:
			unsupported.Store(true)
		case status.Code(err) == codes.PermissionDenied:
		default:
			errs = make([]error, len(objs))
			for i := range errs {
				errs[i] = err
			}
			return make([]Out, len(objs)), errs
		}
	}
	out, errs := make([]Out, len(objs)), make([]error, len(objs))
	var wg sync.WaitGroup
	for i, o := range objs {
		wg.Go(func() { out[i], errs[i] = single(ctx, o) })
	}
	wg.Wait()
	return out, errs
}

// resultError is the error a batch's result carries (an encoded google.rpc.Status), or
// nil; what names the item, for an error that does not decode.
func resultError(encoded []byte, what func() string) error {
	if len(encoded) == 0 {
		return nil
	}
	st := &spb.Status{}
	if err := proto.Unmarshal(encoded, st); err != nil {
		return fmt.Errorf("%s: the server sent an undecodable error: %w", what(), err)
	}
	if codes.Code(st.GetCode()) == codes.OK {
		return nil
	}
	return &resultStatus{st: st}
}

// CreateBatch creates objs (at most MaxCreateBatch) in one call, each as Create would and each
// succeeding or failing alone: out[i] and errs[i] are objs[i]'s outcome, with the same
// meaning as Create's. A non-nil err is the call's own failure, with no outcome per
// object: Unimplemented from a server older than the call (use Create), PermissionDenied
// when any object is refused, or the errors Create returns when no server answered.
func (c *Client[T]) CreateBatch(ctx context.Context, objs []T) (out []T, errs []error, err error) {
	req := &apiv1.CreateBatchRequest{Objects: make([]*apiv1.Object, len(objs))}
	policy := idempotent
	for i, obj := range objs {
		if req.Objects[i], err = c.wrap(obj); err != nil {
			return nil, nil, err
		}
		if obj.GetName() == "" {
			policy = once // a repeated call would create its generated names twice
		}
	}
	var resp *apiv1.CreateBatchResponse
	attempts := 0
	err = c.conn.invokeVia(ctx, toLeader, policy, c.conn.opts.AttemptTimeout, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		attempts++
		resp, err = apiv1.NewResourcesClient(cc).CreateBatch(ctx, req)
		return err
	})
	switch {
	case err != nil && transportFailed(err) && policy == once:
		return nil, nil, fmt.Errorf("create a batch of %d %s with generated names: %w (%v)", len(objs), c.info.Plural, errUnknownOutcome, err)
	case err != nil:
		return nil, nil, err
	}
	out, errs = make([]T, len(objs)), make([]error, len(objs))
	for i, r := range resp.GetResults() {
		rerr := resultError(r.GetError(), func() string { return fmt.Sprintf("create %s %q", c.info.Kind, objs[i].GetName()) })
		out[i], errs[i] = c.createOutcome(objs[i], r.GetObject(), rerr, attempts)
	}
	return out, errs, nil
}

// MaxUpdateBatch is the most objects one UpdateBatch call may carry (the server's
// limit, the same as a CreateBatch's).
const MaxUpdateBatch = MaxCreateBatch

// UpdateBatch updates objs (at most MaxUpdateBatch) in one call, each as Update would
// (a compare-and-swap when it carries a resourceVersion) and each succeeding or failing
// alone: out[i] and errs[i] are objs[i]'s outcome, as Update's. A non-nil err is the
// call's own failure, as CreateBatch's: Unimplemented from a server older than the call
// (use Update), PermissionDenied when any object is refused.
func (c *Client[T]) UpdateBatch(ctx context.Context, objs []T) (out []T, errs []error, err error) {
	req := &apiv1.UpdateBatchRequest{Objects: make([]*apiv1.Object, len(objs))}
	for i, obj := range objs {
		if req.Objects[i], err = c.wrap(obj); err != nil {
			return nil, nil, err
		}
	}
	var resp *apiv1.UpdateBatchResponse
	err = c.conn.invokeVia(ctx, toLeader, idempotent, c.conn.opts.AttemptTimeout, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		resp, err = apiv1.NewResourcesClient(cc).UpdateBatch(ctx, req)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	if len(resp.GetResults()) != len(objs) {
		return nil, nil, fmt.Errorf("update a batch of %d %s: the server answered with %d results", len(objs), c.info.Plural, len(resp.GetResults()))
	}
	out, errs = make([]T, len(objs)), make([]error, len(objs))
	for i, r := range resp.GetResults() {
		if errs[i] = resultError(r.GetError(), func() string { return fmt.Sprintf("update %s %q", c.info.Kind, objs[i].GetName()) }); errs[i] == nil {
			out[i], errs[i] = c.unwrap(r.GetObject())
		}
	}
	return out, errs, nil
}

// GetOptions tunes a Get.
type GetOptions struct {
	// Stale serves the read from the server's local state, skipping the linearizable
	// read barrier.
	Stale bool
}

// Get reads one object (namespace is ignored for cluster-scoped kinds).
func (c *Client[T]) Get(ctx context.Context, namespace, name string, opts ...GetOptions) (T, error) {
	var o GetOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	var out *apiv1.Object
	err := c.conn.invokeVia(ctx, readRoute(o.Stale), idempotent, c.conn.opts.AttemptTimeout, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		out, err = apiv1.NewResourcesClient(cc).Get(ctx, &apiv1.GetRequest{Kind: c.info.Kind, Namespace: namespace, Name: name, Stale: o.Stale})
		return err
	})
	if err != nil {
		var zero T
		return zero, err
	}
	return c.unwrap(out)
}

// ListOptions selects what List and Watch return.
type ListOptions struct {
	LabelSelector string
	FieldSelector string
	Stale         bool
}

// List is a list result.
type List[T kinds.Object] struct {
	Items []T
	// ResourceVersion is the revision the list reflects: watch from it.
	ResourceVersion string
}

// List lists objects in namespace ("" for all namespaces).
func (c *Client[T]) List(ctx context.Context, namespace string, opts ListOptions) (*List[T], error) {
	var out *apiv1.ListResponse
	err := c.conn.invokeVia(ctx, readRoute(opts.Stale), idempotent, 0, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		out, err = apiv1.NewResourcesClient(cc).List(ctx, &apiv1.ListRequest{
			Kind: c.info.Kind, Namespace: namespace, LabelSelector: opts.LabelSelector, FieldSelector: opts.FieldSelector, Stale: opts.Stale,
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	l := &List[T]{Items: make([]T, 0, len(out.GetItems())), ResourceVersion: out.GetResourceVersion()}
	for _, o := range out.GetItems() {
		t, err := c.unwrap(o)
		if err != nil {
			return nil, err
		}
		l.Items = append(l.Items, t)
	}
	return l, nil
}

// Update replaces obj's metadata and spec. With metadata.resourceVersion set it is a
// compare-and-swap (IsConflict when the object changed); without, the server applies it
// to the current version. It is repeated after a lost reply: an update is a replacement,
// and a compare-and-swap repeated after success reports a conflict rather than applying
// twice.
func (c *Client[T]) Update(ctx context.Context, obj T) (T, error) {
	return c.update(ctx, obj, false, false)
}

// UpdateWithOptions is Update with options.
func (c *Client[T]) UpdateWithOptions(ctx context.Context, obj T, o UpdateOptions) (T, error) {
	return c.update(ctx, obj, false, o.DryRun)
}

// UpdateStatus replaces obj's status, as Update does the spec.
func (c *Client[T]) UpdateStatus(ctx context.Context, obj T) (T, error) {
	return c.update(ctx, obj, true, false)
}

// UpdateStatusMeta is UpdateStatus for a caller that reads only the written object's
// metadata (its resourceVersion): the reply's spec and status are not decoded. A
// kubelet writes a pod's status a few times in its life and reads back its
// resourceVersion alone; decoding the whole pod was 4% of the simulated nodes' CPU at
// 50,000 pods (issue 26).
func (c *Client[T]) UpdateStatusMeta(ctx context.Context, obj T) (*metav1.PartialObjectMetadata, error) {
	out, err := c.send(ctx, obj, true, false)
	if err != nil {
		return nil, err
	}
	m, err := kinds.UnwrapMeta(out)
	if err != nil {
		return nil, fmt.Errorf("%s: server sent %w", c.info.Kind, err)
	}
	return m, nil
}

func (c *Client[T]) update(ctx context.Context, obj T, status, dryRun bool) (T, error) {
	out, err := c.send(ctx, obj, status, dryRun)
	if err != nil {
		var zero T
		return zero, err
	}
	return c.unwrap(out)
}

// send makes an Update or UpdateStatus call and returns the reply undecoded.
func (c *Client[T]) send(ctx context.Context, obj T, status, dryRun bool) (*apiv1.Object, error) {
	var out *apiv1.Object
	o, err := c.wrap(obj)
	if err != nil {
		return nil, err
	}
	err = c.conn.invokeVia(ctx, toLeader, idempotent, c.conn.opts.AttemptTimeout, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		rc := apiv1.NewResourcesClient(cc)
		req := &apiv1.UpdateRequest{Object: o, DryRun: dryRun}
		if status {
			out, err = rc.UpdateStatus(ctx, req)
		} else {
			out, err = rc.Update(ctx, req)
		}
		return err
	})
	return out, err
}

// DeleteOptions tunes a Delete.
type DeleteOptions struct {
	// UID and ResourceVersion, when set, must match the object.
	UID, ResourceVersion string
	// GracePeriodSeconds overrides the object's grace period; 0 deletes at once.
	GracePeriodSeconds *int64
	// PropagationPolicy is Background (default), Foreground or Orphan.
	PropagationPolicy string
	// DryRun has the server check the deletion and answer with the object as it would
	// be, deleting nothing.
	DryRun bool
}

// Delete deletes an object and returns its last state. Repeated after a lost reply; a
// repeat after success reports NotFound.
func (c *Client[T]) Delete(ctx context.Context, namespace, name string, opts DeleteOptions) (T, error) {
	var out *apiv1.Object
	err := c.conn.invokeVia(ctx, toLeader, idempotent, c.conn.opts.AttemptTimeout, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		out, err = apiv1.NewResourcesClient(cc).Delete(ctx, &apiv1.DeleteRequest{
			Kind: c.info.Kind, Namespace: namespace, Name: name,
			Preconditions:      &apiv1.Preconditions{Uid: opts.UID, ResourceVersion: opts.ResourceVersion},
			GracePeriodSeconds: opts.GracePeriodSeconds, PropagationPolicy: opts.PropagationPolicy, DryRun: opts.DryRun,
		})
		return err
	})
	if err != nil {
		var zero T
		return zero, err
	}
	return c.unwrap(out)
}

// Bind assigns a pod to a node, once: binding a bound pod fails (FailedPrecondition).
// With uid set, the pod must still be that pod. A bind repeated after a lost reply that
// finds the pod bound to the same node reports success: the first attempt took (or,
// rarely, another binder chose the same node for it: the binding is the same).
func (c *Conn) Bind(ctx context.Context, namespace, name, uid, node string) (*corev1.Pod, error) {
	var out *apiv1.Object
	attempts := 0
	err := c.invokeVia(ctx, toLeader, idempotent, c.opts.AttemptTimeout, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		attempts++
		out, err = apiv1.NewResourcesClient(cc).Bind(ctx, &apiv1.BindRequest{Namespace: namespace, Name: name, Uid: uid, NodeName: node})
		return err
	})
	return c.bindOutcome(ctx, Binding{Namespace: namespace, Name: name, UID: uid, Node: node}, out, err, attempts)
}

// bindOutcome is a binding's result as Bind reports it, from the server's reply to a
// call made attempts times.
func (c *Conn) bindOutcome(ctx context.Context, b Binding, out *apiv1.Object, err error, attempts int) (*corev1.Pod, error) {
	if code(err) == codes.FailedPrecondition && attempts > 1 && b.UID != "" {
		pod, gerr := For[*corev1.Pod](c).Get(ctx, b.Namespace, b.Name)
		if gerr == nil && string(pod.UID) == b.UID && pod.Spec.NodeName == b.Node {
			return pod, nil
		}
	}
	if err != nil {
		return nil, err
	}
	return For[*corev1.Pod](c).unwrap(out)
}

// Binding is one pod's assignment to a node, as Bind takes it: UID, when set, is the
// pod's that must still be there.
type Binding struct{ Namespace, Name, UID, Node string }

// MaxBindBatch is the most bindings one BindBatch call may carry (the server's limit).
const MaxBindBatch = 100

// BindEach binds each pod of bs (at most MaxBindBatch), each succeeding or failing alone
// (out[i] and errs[i] as Bind's): more than one in one BindBatch call, which the server
// commits in one store transaction; one Bind each, concurrently, from servers without
// the call (remembered for the Conn) or when the batch was refused (PermissionDenied).
func (c *Conn) BindEach(ctx context.Context, bs []Binding) ([]*corev1.Pod, []error) {
	return each(ctx, bs, &c.noBindBatch, c.BindBatch, func(ctx context.Context, b Binding) (*corev1.Pod, error) {
		return c.Bind(ctx, b.Namespace, b.Name, b.UID, b.Node)
	})
}

// BindBatch binds each pod of bs (at most MaxBindBatch) in one call, each as Bind would
// and each succeeding or failing alone: out[i] and errs[i] are bs[i]'s outcome, with the
// same meaning as Bind's. A non-nil err is the call's own failure, with no outcome per
// binding: Unimplemented from a server older than the call (use Bind), PermissionDenied
// when any binding is refused, or the errors Bind returns when no server answered.
func (c *Conn) BindBatch(ctx context.Context, bs []Binding) (out []*corev1.Pod, errs []error, err error) {
	req := &apiv1.BindBatchRequest{Bindings: make([]*apiv1.BindRequest, len(bs))}
	for i, b := range bs {
		req.Bindings[i] = &apiv1.BindRequest{Namespace: b.Namespace, Name: b.Name, Uid: b.UID, NodeName: b.Node}
	}
	var resp *apiv1.BindBatchResponse
	attempts := 0
	err = c.invokeVia(ctx, toLeader, idempotent, c.opts.AttemptTimeout, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		attempts++
		resp, err = apiv1.NewResourcesClient(cc).BindBatch(ctx, req)
		return err
	})
	switch {
	case err != nil:
		return nil, nil, err
	case len(resp.GetResults()) != len(bs):
		return nil, nil, fmt.Errorf("bind a batch of %d pods: the server answered with %d results", len(bs), len(resp.GetResults()))
	}
	out, errs = make([]*corev1.Pod, len(bs)), make([]error, len(bs))
	for i, r := range resp.GetResults() {
		rerr := resultError(r.GetError(), func() string { return fmt.Sprintf("bind pod %s/%s", bs[i].Namespace, bs[i].Name) })
		out[i], errs[i] = c.bindOutcome(ctx, bs[i], r.GetObject(), rerr, attempts)
	}
	return out, errs, nil
}

// Clientset holds a typed client per kind.
type Clientset struct {
	Conn        *Conn
	Pods        *Client[*corev1.Pod]
	Nodes       *Client[*corev1.Node]
	ReplicaSets *Client[*appsv1.ReplicaSet]
	Deployments *Client[*appsv1.Deployment]
	ConfigMaps  *Client[*corev1.ConfigMap]
	Events      *Client[*corev1.Event]
	Leases      *Client[*coordinationv1.Lease]
	Namespaces  *Client[*corev1.Namespace]
	Secrets     *Client[*corev1.Secret]
	// ServiceAccounts are the pods' identities in their namespaces.
	ServiceAccounts *Client[*corev1.ServiceAccount]
	PDBs            *Client[*policyv1.PodDisruptionBudget]
	Services        *Client[*corev1.Service]
	// EndpointSlices are discovery.k8s.io/v1's.
	EndpointSlices *Client[*discoveryv1.EndpointSlice]
	// Endpoints are core/v1's, one per Service.
	Endpoints      *Client[*corev1.Endpoints]
	ResourceQuotas *Client[*corev1.ResourceQuota]
	LimitRanges    *Client[*corev1.LimitRange]

	DaemonSets             *Client[*appsv1.DaemonSet]
	StatefulSets           *Client[*appsv1.StatefulSet]
	ControllerRevisions    *Client[*appsv1.ControllerRevision]
	Jobs                   *Client[*batchv1.Job]
	CronJobs               *Client[*batchv1.CronJob]
	PersistentVolumes      *Client[*corev1.PersistentVolume]
	PersistentVolumeClaims *Client[*corev1.PersistentVolumeClaim]
	StorageClasses         *Client[*storagev1.StorageClass]
	// RuntimeClasses are node.k8s.io/v1's: the kubelet runs a pod with its class's handler.
	RuntimeClasses *Client[*nodev1.RuntimeClass]

	// ReplicationControllers are core/v1's ReplicaSets, of a map selector.
	ReplicationControllers *Client[*corev1.ReplicationController]

	// CertificateSigningRequests and ClusterTrustBundles are certificates.k8s.io/v1's:
	// the controller-manager signs requests, the kubelet projects bundles.
	CertificateSigningRequests *Client[*certificatesv1.CertificateSigningRequest]
	ClusterTrustBundles        *Client[*certificatesv1.ClusterTrustBundle]
	// PodCertificateRequests are what a kubelet asks signers for its pods' podCertificate
	// projections (certificates.k8s.io/v1).
	PodCertificateRequests *Client[*certificatesv1.PodCertificateRequest]
}

// NewClientset makes the typed clients of a connection.
func NewClientset(c *Conn) *Clientset {
	return &Clientset{
		Conn: c, Pods: For[*corev1.Pod](c), Nodes: For[*corev1.Node](c), ReplicaSets: For[*appsv1.ReplicaSet](c),
		Deployments: For[*appsv1.Deployment](c), ConfigMaps: For[*corev1.ConfigMap](c), Events: For[*corev1.Event](c),
		Leases: For[*coordinationv1.Lease](c), Namespaces: For[*corev1.Namespace](c), Secrets: For[*corev1.Secret](c),
		ServiceAccounts: For[*corev1.ServiceAccount](c),
		PDBs:            For[*policyv1.PodDisruptionBudget](c), Services: For[*corev1.Service](c),
		EndpointSlices: For[*discoveryv1.EndpointSlice](c),
		Endpoints:      For[*corev1.Endpoints](c),
		ResourceQuotas: For[*corev1.ResourceQuota](c),
		LimitRanges:    For[*corev1.LimitRange](c),

		DaemonSets: For[*appsv1.DaemonSet](c), StatefulSets: For[*appsv1.StatefulSet](c),
		ControllerRevisions: For[*appsv1.ControllerRevision](c), Jobs: For[*batchv1.Job](c), CronJobs: For[*batchv1.CronJob](c),
		PersistentVolumes: For[*corev1.PersistentVolume](c), PersistentVolumeClaims: For[*corev1.PersistentVolumeClaim](c),
		StorageClasses: For[*storagev1.StorageClass](c), RuntimeClasses: For[*nodev1.RuntimeClass](c),

		ReplicationControllers: For[*corev1.ReplicationController](c),

		CertificateSigningRequests: For[*certificatesv1.CertificateSigningRequest](c),
		ClusterTrustBundles:        For[*certificatesv1.ClusterTrustBundle](c),
		PodCertificateRequests:     For[*certificatesv1.PodCertificateRequest](c),
	}
}

// Conn is the connection the client uses.
func (c *Client[T]) Conn() *Conn { return c.conn }

// EnsureNamespace creates namespace name unless it exists.
func (c *Conn) EnsureNamespace(ctx context.Context, name string) error {
	_, err := For[*corev1.Namespace](c).Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if err != nil && !IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	return nil
}

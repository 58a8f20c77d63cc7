package apiserver

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagemigrationv1 "k8s.io/api/storagemigration/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/managedfields"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/uuid"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"

	"github.com/skiffhq/skiff/apiserver/auth"
	"github.com/skiffhq/skiff/apiserver/validation"
	"github.com/skiffhq/skiff/kinds"
	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
	"github.com/skiffhq/skiff/quota"
	"github.com/skiffhq/skiff/store"
)

// Finalizers the API server itself knows the meaning of.
const (
	FinalizerOrphan     = "orphan"
	FinalizerForeground = "foregroundDeletion"
	// FinalizerNamespace holds a namespace until its contents are gone.
	FinalizerNamespace = "kubernetes"
)

// maxRetries bounds the read-modify-write loops of unconditional updates.
const maxRetries = 10

// resources implements the Resources service on a store.
type resources struct {
	apiv1.UnimplementedResourcesServer
	store *store.Store
	log   hclog.Logger
	now   func() time.Time
	// bookmarkInterval is how often idle watches that allow bookmarks get one.
	bookmarkInterval time.Duration
	watches          func(kind string, delta int)
	// namespaces caches namespaces' phases, serviceAccounts service accounts' image
	// pull secrets (newResources makes them).
	namespaces      *localCache[string]
	serviceAccounts *localCache[accountInfo]
	// tokens issues and checks service-account tokens (nil: none, satokens.go).
	tokens *saTokens
	// admitServiceAccounts runs the ServiceAccount admission on new pods.
	admitServiceAccounts bool
	atRest               *atRest
	networking           *networking
	// limitRangeLists and quotaLists are the namespaces' LimitRanges and ResourceQuotas
	// as this node has them; chargeLocks serialize a namespace's quota charges (quota.go).
	limitRangeLists, quotaLists *nsLists
	// priorityClasses are the PriorityClasses (namespace ""), which the Priority
	// admission reads for every pod that names no class: no read while none changes.
	priorityClasses *nsLists
	// defaultPriority is the global default class chosen from priorityClasses' cached
	// list, kept while that list is (the pods' admission decodes no class per pod).
	defaultPriority defaultClassMemo
	chargeLocks     chargeLocks
	// events enforces the event rate limit (nil: none).
	events *eventLimiter
	// graph knows the node of each bound pod (nil without authentication: no nodes).
	graph *nodeGraph
	// authz is the API server's authorizer, for the escalation checks of RBAC's kinds
	// (nil without authentication: everyone is an administrator).
	authz *auth.Authorizer
	// webhooks calls the admission webhooks (webhooks.go; nil: none).
	webhooks *webhooks
	// policies are the ValidatingAdmissionPolicies (policies.go; nil: none).
	policies *policies
}

func lookupKind(name string) (*kinds.Info, error) {
	if name == "" {
		return nil, badRequest("kind is required")
	}
	info, ok := kinds.Lookup(name)
	if !ok {
		return nil, badRequest("unknown kind %q (known: %s)", name, strings.Join(kinds.Names(), ", "))
	}
	if info.Conversion != nil {
		return nil, versionOnlyOverREST(info)
	}
	return info, nil
}

// versionOnlyOverREST refuses a kind served over another's storage on the gRPC API,
// which carries stored kinds only (the REST API converts: rest_versions.go).
func versionOnlyOverREST(info *kinds.Info) error {
	return badRequest("%s %s is served over the REST API only; the gRPC API serves it as %s %s",
		info.APIVersion, info.Kind, info.Stored().APIVersion, info.Stored().Kind)
}

// namespaceFor applies the namespace rules: namespaced kinds default to "default",
// cluster-scoped kinds have none.
func namespaceFor(info *kinds.Info, ns string) string {
	switch {
	case !info.Namespaced:
		return ""
	case ns == "":
		return "default"
	}
	return ns
}

// unwrap decodes the object of a gRPC request, with the namespace rules applied.
func unwrap(o *apiv1.Object) (kinds.Object, error) {
	obj, err := kinds.Unwrap(o)
	if err != nil {
		return nil, badRequest("%v", err)
	}
	if info := kinds.Of(obj); info.Conversion != nil {
		return nil, versionOnlyOverREST(info)
	}
	obj.SetNamespace(namespaceFor(kinds.Of(obj), obj.GetNamespace()))
	return obj, nil
}

func parseRV(info *kinds.Info, name, rv string) (int64, error) {
	if rv == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(rv, 10, 64)
	if err != nil || n < 0 {
		return 0, invalid(info, name, fmt.Errorf("metadata.resourceVersion: Invalid value: %q: must be a non-negative integer", rv))
	}
	return n, nil
}

func (r *resources) get(ctx context.Context, info *kinds.Info, k store.Key, opts store.ReadOptions) (kinds.Object, *store.Object, error) {
	o, err := r.store.Get(ctx, k, opts)
	if err != nil {
		return nil, nil, storeError(info, k.Name, err)
	}
	if o, err = r.atRest.openObject(info, o); err != nil {
		return nil, nil, storeError(info, k.Name, err)
	}
	obj, err := decode(info, &o)
	if err != nil {
		return nil, nil, storeError(info, k.Name, err)
	}
	return obj, &o, nil
}

// The operations below are what both front ends call: the gRPC services (the methods
// named as in proto/api/v1) and the REST API (rest.go). They take decoded objects and
// options, and return results; each front end decodes its requests and encodes the
// results its way.

// result is an object as an operation leaves it: decoded, or as the bytes just stored
// (what a reply sends without encoding the object again), or both.
type result struct {
	info  *kinds.Info
	obj   kinds.Object // with resourceVersion set; nil when only value is at hand
	value []byte       // stored bytes, without resourceVersion; nil when only obj is
	rev   int64        // value's revision
	// gone says a delete removed the object, rather than marking it for deletion.
	gone bool
}

// wire is the result in the gRPC API's envelope.
func (res result) wire() (*apiv1.Object, error) {
	if res.value != nil {
		return storedObject(res.info, res.value, res.rev), nil
	}
	return wrap(res.info, res.obj)
}

// object is the result decoded.
func (res result) object() (kinds.Object, error) {
	if res.obj != nil {
		return res.obj, nil
	}
	o := store.Object{Value: res.value, ModRevision: res.rev}
	obj, err := decode(res.info, &o)
	if err != nil {
		return nil, storeError(res.info, "", err)
	}
	return obj, nil
}

// writeOptions are the options every write takes.
type writeOptions struct {
	// dryRun runs the write through defaulting, validation and admission without
	// storing it (Kubernetes' dryRun=All).
	dryRun bool
	// subresource is the subresource written ("" the object itself), and deleting says
	// the write is a delete, as admission webhooks are told.
	subresource string
	deleting    bool
}

func (r *resources) Create(ctx context.Context, req *apiv1.CreateRequest) (*apiv1.Object, error) {
	if !req.GetDryRun() {
		if err := r.refuseSpentEvent(ctx, req.GetObject()); err != nil {
			return nil, err
		}
	}
	obj, err := unwrap(req.GetObject())
	if err != nil {
		return nil, err
	}
	res, err := r.create(ctx, obj, writeOptions{dryRun: req.GetDryRun()})
	if err != nil {
		return nil, err
	}
	return res.wire()
}

// create stores a new object.
func (r *resources) create(ctx context.Context, obj kinds.Object, opts writeOptions) (result, error) {
	if err := managedfields.ValidateManagedFields(obj.GetManagedFields()); err != nil {
		return result{}, invalid(kinds.Of(obj), obj.GetName(), fmt.Errorf("metadata.managedFields: Invalid value: %v", err))
	}
	c, err := r.newCreation(ctx, obj, opts.dryRun)
	if err != nil {
		return result{}, err
	}
	if opts.dryRun {
		return r.dryRunCreate(ctx, c)
	}
	if err := r.admitEventWrite(ctx, c.info, c.obj.GetNamespace()); err != nil {
		return result{}, err
	}
	value, rev, err := c.commit(ctx, r.store)
	if err != nil {
		return result{}, err
	}
	return result{info: c.info, value: value, rev: rev}, nil
}

// dryRunCreate answers a dry-run create: the object as it would be stored, unless its
// name is taken (as the store would refuse it), without a resourceVersion.
func (r *resources) dryRunCreate(ctx context.Context, c *creation) (result, error) {
	if !c.generated {
		o, err := r.store.Get(ctx, c.op.Key, store.ReadOptions{})
		if err == nil {
			return result{}, storeError(c.info, c.op.Key.Name, &store.PreconditionError{Err: store.ErrAlreadyExists, Key: c.op.Key, CurrentRevision: o.ModRevision})
		}
		if !errors.Is(err, store.ErrNotFound) {
			return result{}, storeError(c.info, c.op.Key.Name, err)
		}
	}
	return result{info: c.info, obj: c.obj}, nil
}

// creation is a new object that passed validation and admission, ready to store.
type creation struct {
	obj       kinds.Object
	info      *kinds.Info
	generated bool // named from metadata.generateName: a clash picks another name
	op        store.Op
	plain     []byte // the object's encoding; op.Value is what the store keeps of it
	atRest    *atRest
	// stored, when set, makes the Event that records the moment the object is stored
	// (chainStart); it is written in the object's own transaction.
	stored func() (store.Op, error)
	// allocate, when set, fills what the API server allocates into a fresh copy of the
	// object (a Service's cluster IP and node ports), into obj and alloc; alloc holds
	// also the record of a Node's podCIDR.
	allocate func(ctx context.Context) error
	alloc    *allocation
	// charge, when set, is what the object costs its namespace's quotas: their updates
	// are written in the object's own transaction (quota.go).
	charge *charge
}

// ops are the store operations of the creation: the object's, its Event's, and its
// quotas'.
func (c *creation) ops() ([]store.Op, error) {
	ops := []store.Op{c.op}
	if c.alloc != nil {
		ops = append(ops, c.alloc.ops...)
	}
	if c.stored != nil {
		ev, err := c.stored()
		if err != nil {
			return nil, err
		}
		ops = append(ops, ev)
	}
	if c.charge != nil {
		ops = append(ops, c.charge.ops...)
	}
	return ops, nil
}

// chainStart are the kinds whose creation starts the chain skiffctl trace shows. Object
// times keep whole seconds (Kubernetes' metav1.Time), so the API server records the
// moment it stores one in an Event (eventTime keeps microseconds), reason Stored, in the
// same transaction: no extra write, and the chain's first step is timed as exactly as
// the others.
var chainStart = map[string]bool{kinds.Deployment: true, kinds.DaemonSet: true, kinds.StatefulSet: true, kinds.Job: true}

// ReasonStored is the reason of the Event that records a chainStart object's creation.
const ReasonStored = "Stored"

// newCreation checks an object to create and sets what the server owns on it.
func (r *resources) newCreation(ctx context.Context, obj kinds.Object, dryRun bool) (*creation, error) {
	info := kinds.Of(obj)
	obj.SetNamespace(namespaceFor(info, obj.GetNamespace()))
	if obj.GetResourceVersion() != "" {
		return nil, invalid(info, obj.GetName(), errors.New("metadata.resourceVersion: Invalid value: must not be set on create"))
	}
	c := &creation{obj: obj, info: info, generated: obj.GetName() == "" && obj.GetGenerateName() != "", atRest: r.atRest}
	r.prepareForCreate(info, obj)
	var pod *corev1.Pod
	var ranges []*corev1.LimitRange
	// builtin is the built-in mutating admission, run again on what the mutating
	// webhooks make of the object, as Kubernetes reinvokes its plugins.
	builtin := func() (err error) {
		if pod, _ = obj.(*corev1.Pod); pod != nil {
			validation.Default(pod) // LimitRanger fills what the pod's own defaults leave unset
			if ranges, err = r.defaultLimits(ctx, pod); err != nil {
				return err
			}
			if err := r.admitRuntimeClass(ctx, pod); err != nil {
				return err
			}
			if err := r.admitPriority(ctx, pod); err != nil {
				return err
			}
			// Its QoS class from the start, once the LimitRanger has filled its resources, as
			// Kubernetes' pod strategy does (not only once the kubelet reports).
			pod.Status.QOSClass = quota.QOSClass(&pod.Spec)
			validation.DefaultAdmitted(pod) // admitCreate does not default a pod again
		}
		if pc, ok := obj.(*schedulingv1.PriorityClass); ok {
			if err := r.admitPriorityClass(ctx, pc, false); err != nil {
				return err
			}
		}
		if ing, ok := obj.(*networkingv1.Ingress); ok {
			if err := r.defaultIngressClass(ctx, ing); err != nil {
				return err
			}
		}
		if csr, ok := obj.(*certificatesv1.CertificateSigningRequest); ok {
			prepareCSRCreate(ctx, csr) // after the webhooks too: the requester is the user's
		}
		return nil
	}
	if err := builtin(); err != nil {
		return nil, err
	}
	op := &webhookOp{operation: admissionv1.Create, info: info, obj: obj, dryRun: dryRun, options: &metav1.CreateOptions{}, requested: requestedOf(ctx, info)}
	if changed, err := r.admitWebhooksMutating(ctx, op); err != nil {
		return nil, err
	} else if changed {
		obj, c.obj = op.obj, op.obj
		if err := builtin(); err != nil {
			return nil, err
		}
	}
	var err error
	if err := admitCreate(obj); err != nil {
		return nil, invalid(info, obj.GetName(), err)
	}
	if err := r.admitNodeWrite(ctx, info, nil, obj); err != nil {
		return nil, err
	}
	if pcr, ok := obj.(*certificatesv1.PodCertificateRequest); ok {
		if err := r.admitNodePodCertificateRequest(ctx, pcr); err != nil {
			return nil, err
		}
	}
	if err := r.admitRBAC(ctx, info, nil, obj); err != nil {
		return nil, err
	}
	if err := r.admitPolicyBinding(ctx, info, nil, obj); err != nil {
		return nil, err
	}
	if info.Namespaced {
		if err := r.checkNamespace(ctx, obj.GetNamespace()); err != nil {
			return nil, err
		}
	}
	if svc, ok := obj.(*corev1.Service); ok {
		c.allocate = func(ctx context.Context) (err error) {
			next := svc.DeepCopy()
			if c.alloc, err = r.allocateService(ctx, nil, next, false); err == nil {
				c.obj = next
			}
			return err
		}
		if err := c.allocate(ctx); err != nil {
			return nil, err
		}
	}
	if node, ok := obj.(*corev1.Node); ok {
		if c.alloc, err = r.allocateNodeCIDR(ctx, nil, node, false); err != nil {
			return nil, err
		}
	}
	if pvc, ok := obj.(*corev1.PersistentVolumeClaim); ok {
		if err := r.defaultStorageClass(ctx, pvc); err != nil {
			return nil, err
		}
		if err := r.checkClaimLimits(ctx, pvc); err != nil {
			return nil, err
		}
	}
	if pod != nil && r.admitServiceAccounts {
		if err := r.admitServiceAccount(ctx, pod); err != nil {
			return nil, err
		}
	}
	vop := &webhookOp{operation: admissionv1.Create, info: info, obj: c.obj, dryRun: dryRun, options: op.options, requested: op.requested}
	if err := r.admitPolicies(ctx, vop); err != nil {
		return nil, err
	}
	if err := r.webhooks.validate(ctx, vop); err != nil {
		return nil, err
	}
	if err := c.encode(); err != nil {
		return nil, err
	}
	if pod != nil {
		if err := checkLimits(ranges, pod); err != nil {
			return nil, err
		}
	}
	if info.Namespaced {
		if c.charge, err = r.newCharge(ctx, info, obj); err != nil {
			return nil, err
		}
	}
	if chainStart[info.Kind] {
		at, by := r.now(), requestClient(ctx)
		c.stored = func() (store.Op, error) { return r.storedEvent(c.info, c.obj, at, by) }
	}
	return c, nil
}

// storedEvent is the operation creating the Event that records obj's creation at at, by
// the request of client (how it came and who sent it: "HTTP POST from kubectl/v1.37.2";
// "" unknown), which its message names.
func (r *resources) storedEvent(info *kinds.Info, obj kinds.Object, at time.Time, client string) (store.Op, error) {
	ns := obj.GetNamespace()
	if ns == "" {
		ns = metav1.NamespaceDefault
	}
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: obj.GetName() + "." + strconv.FormatInt(at.UnixNano(), 16),
			UID: uuid.NewUUID(), CreationTimestamp: metav1.NewTime(at)},
		InvolvedObject: corev1.ObjectReference{Kind: info.Kind, APIVersion: info.APIVersion, Namespace: obj.GetNamespace(),
			Name: obj.GetName(), UID: obj.GetUID()},
		Reason: ReasonStored, Message: storedMessage(info, obj, client), Type: corev1.EventTypeNormal,
		Source:         corev1.EventSource{Component: "apiserver", Host: r.store.ID()},
		FirstTimestamp: metav1.NewTime(at), LastTimestamp: metav1.NewTime(at), EventTime: metav1.NewMicroTime(at), Count: 1,
		ReportingController: "apiserver", ReportingInstance: r.store.ID(),
	}
	kinds.SetTypeMeta(ev)
	value, lbls, fields, err := encode(ev)
	if err != nil {
		return store.Op{}, storeError(info, obj.GetName(), err)
	}
	return store.Op{Type: store.Create, Key: keyOf(kinds.MustLookup(kinds.Event), ev), Value: value, UID: string(ev.UID), Labels: lbls, Fields: fields}, nil
}

// storedMessage is the Stored event's message: "Deployment web stored", and the request
// it came by when known: "Deployment web stored (HTTP POST from kubectl/v1.37.2)".
func storedMessage(info *kinds.Info, obj kinds.Object, client string) string {
	msg := fmt.Sprintf("%s %s stored", info.Kind, obj.GetName())
	if client != "" {
		msg += " (" + client + ")"
	}
	return msg
}

type clientKey struct{}

// withClient records in ctx how a request came and who sent it, for the Stored event.
func withClient(ctx context.Context, how, userAgent string) context.Context {
	// The product token is enough to say who: kubectl/v1.37.2, skiffctl.
	agent, _, _ := strings.Cut(userAgent, " ")
	if agent == "" {
		return context.WithValue(ctx, clientKey{}, how)
	}
	return context.WithValue(ctx, clientKey{}, how+" from "+agent)
}

// requestClient is what withClient recorded, or "" (gRPC: the user agent of its metadata).
func requestClient(ctx context.Context) string {
	if c, ok := ctx.Value(clientKey{}).(string); ok {
		return c
	}
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if ua := md.Get("user-agent"); len(ua) > 0 {
			return withClient(ctx, "gRPC Create", ua[0]).Value(clientKey{}).(string)
		}
	}
	return ""
}

// encode names a generated object afresh and makes its store operation.
func (c *creation) encode() error {
	if c.generated {
		// Kubernetes' suffix: five characters of an alphabet without vowels or confusables.
		c.obj.SetName(c.obj.GetGenerateName() + utilrand.String(5))
		if ns, ok := c.obj.(*corev1.Namespace); ok {
			validation.Default(ns) // its name label, now that it has a name
		}
	}
	value, lbls, fields, err := encode(c.obj)
	if err != nil {
		return storeError(c.info, c.obj.GetName(), err)
	}
	c.plain = value
	c.op = store.Op{Type: store.Create, Key: keyOf(c.info, c.obj), UID: string(c.obj.GetUID()), Labels: lbls, Fields: fields}
	if c.op.Value, err = c.atRest.seal(c.info, c.op.Key, value); err != nil {
		return storeError(c.info, c.obj.GetName(), err)
	}
	return nil
}

// commit stores the object alone, under another generated name if its name is taken,
// charged again to its quotas on their current state while it loses races for them, and
// returns its stored bytes and revision.
func (c *creation) commit(ctx context.Context, s *store.Store) ([]byte, int64, error) {
	if c.charge != nil {
		defer c.charge.r.chargeLocks.lock(c.obj.GetNamespace())()
	}
	for attempt, charges := 0, 1; ; attempt++ {
		ops, err := c.ops()
		if err != nil {
			return nil, 0, err
		}
		res, err := s.Txn(ctx, ops...)
		if c.alloc != nil && c.alloc.picked && isAllocationClash(err) && attempt < maxRetries {
			// Another Service took a value first: pick again.
			if err := c.allocate(ctx); err != nil {
				return nil, 0, err
			}
			if err := c.encode(); err != nil {
				return nil, 0, err
			}
			continue
		}
		if c.generated && errors.Is(err, store.ErrAlreadyExists) && !isAllocationClash(err) && attempt < maxRetries {
			if err := c.encode(); err != nil {
				return nil, 0, err
			}
			continue
		}
		if c.charge != nil && errors.Is(err, store.ErrConflict) && charges < maxChargeAttempts {
			charges++
			if err := c.charge.compute(ctx, c.info, true); err != nil {
				return nil, 0, err
			}
			continue
		}
		if err != nil {
			return nil, 0, writeError(c.info, c.op.Key.Name, err)
		}
		return c.plain, res.Revision, nil
	}
}

// MaxBatch is the most objects one CreateBatch may carry.
const MaxBatch = 100

// CreateBatch creates each object as Create does, each succeeding or failing alone. The
// objects that pass validation are committed in one transaction, so that they cost the
// store one entry; when one of them cannot be created (its name is taken) or they are
// too large together, that transaction writes nothing and each is committed alone.
func (r *resources) CreateBatch(ctx context.Context, req *apiv1.CreateBatchRequest) (*apiv1.CreateBatchResponse, error) {
	objs := req.GetObjects()
	if len(objs) > MaxBatch {
		return nil, badRequest("objects: Too many: %d: a batch holds at most %d", len(objs), MaxBatch)
	}
	results := make([]*apiv1.CreateBatchResult, len(objs))
	fail := func(i int, err error) { results[i] = batchFailure(err) }
	creations := make([]*creation, len(objs))
	var valid []int
	charged := false // objects charged to quotas are committed each alone, charged in turn
	for i, o := range objs {
		if err := r.refuseSpentEvent(ctx, o); err != nil {
			fail(i, err) // before decoding it: the budget is spent
			continue
		}
		obj, err := unwrap(o)
		if err != nil {
			fail(i, err)
			continue
		}
		c, err := r.newCreation(ctx, obj, false)
		if err == nil {
			err = r.admitEventWrite(ctx, c.info, c.obj.GetNamespace())
		}
		if err != nil {
			fail(i, err)
			continue
		}
		creations[i] = c
		valid = append(valid, i)
		charged = charged || c.charge != nil
	}
	if len(valid) > 1 && !charged {
		var ops []store.Op
		for _, i := range valid {
			cops, err := creations[i].ops()
			if err != nil {
				return nil, err
			}
			ops = append(ops, cops...)
		}
		res, err := r.store.Txn(ctx, ops...)
		var pe *store.PreconditionError
		switch {
		case err == nil:
			for _, i := range valid {
				c := creations[i]
				results[i] = &apiv1.CreateBatchResult{Object: storedObject(c.info, c.plain, res.Revision)}
			}
			return &apiv1.CreateBatchResponse{Results: results}, nil
		case !errors.As(err, &pe) && !errors.Is(err, store.ErrTooLarge):
			// No leader, or the outcome is unknown: the same for every object.
			for _, i := range valid {
				fail(i, storeError(creations[i].info, creations[i].op.Key.Name, err))
			}
			return &apiv1.CreateBatchResponse{Results: results}, nil
		}
	}
	var wg sync.WaitGroup
	for _, i := range valid {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := creations[i]
			value, rev, err := c.commit(ctx, r.store)
			if err != nil {
				fail(i, err)
				return
			}
			results[i] = &apiv1.CreateBatchResult{Object: storedObject(c.info, value, rev)}
		}()
	}
	wg.Wait()
	return &apiv1.CreateBatchResponse{Results: results}, nil
}

// batchFailure is a batch's result for an object it did not write: err, as the single
// call would have returned it.
func batchFailure(err error) *apiv1.CreateBatchResult {
	res := &apiv1.CreateBatchResult{}
	res.Error, _ = proto.Marshal(status.Convert(err).Proto())
	return res
}

// UpdateBatch updates each object as Update does, each succeeding or failing alone.
// Each is first prepared as Update's first attempt is (from this member's state: the
// guard, the precondition on its resourceVersion, admission, the compare-and-swap), and
// those that change their object, with no side operation, are committed in one
// transaction, which is each one's compare-and-swap at once. Whatever that attempt
// could not decide — an object missing, refused, unchanged or carrying allocations, or
// a transaction that lost a race or is too large — goes through Update itself, one
// object at a time, so each ends exactly as a single Update would.
func (r *resources) UpdateBatch(ctx context.Context, req *apiv1.UpdateBatchRequest) (*apiv1.UpdateBatchResponse, error) {
	objs := req.GetObjects()
	if len(objs) > MaxBatch {
		return nil, badRequest("objects: Too many: %d: a batch holds at most %d", len(objs), MaxBatch)
	}
	results := make([]*apiv1.CreateBatchResult, len(objs))
	decoded := make([]kinds.Object, len(objs))
	writes := make([]write, len(objs))
	var batched, alone []int
	for i, o := range objs {
		obj, err := unwrap(o)
		if err != nil {
			results[i] = batchFailure(err)
			continue
		}
		decoded[i] = obj
		info := kinds.Of(obj)
		wantRV, err := parseRV(info, obj.GetName(), obj.GetResourceVersion())
		if err != nil || info.Kind == kinds.Event { // an Event's update passes its rate limit alone
			alone = append(alone, i)
			continue
		}
		w, err := r.prepareWrite(ctx, info, keyOf(info, obj), wantRV, true, r.admitWebhooksUpdate(ctx, info, writeOptions{}, func(cur kinds.Object, _ *store.Object) (kinds.Object, error) {
			return r.nextState(ctx, info, cur, clone(obj), false)
		}))
		if err != nil || !w.changed || len(w.side.ops) > 0 {
			alone = append(alone, i)
			continue
		}
		writes[i] = w
		batched = append(batched, i)
	}
	if len(batched) > 0 {
		ops := make([]store.Op, len(batched))
		for j, i := range batched {
			ops[j] = writes[i].op
		}
		res, err := r.store.Txn(ctx, ops...)
		var pe *store.PreconditionError
		switch {
		case err == nil:
			for _, i := range batched {
				out, err := r.written(kinds.Of(decoded[i]), writes[i], res.Revision).wire()
				if err != nil {
					results[i] = batchFailure(err)
					continue
				}
				results[i] = &apiv1.CreateBatchResult{Object: out}
			}
		case errors.As(err, &pe) || errors.Is(err, store.ErrTooLarge):
			alone = append(alone, batched...) // one lost its race, or all are too many together
		default:
			// No leader, or the outcome is unknown: the same for every object.
			for _, i := range batched {
				results[i] = batchFailure(writeError(kinds.Of(decoded[i]), decoded[i].GetName(), err))
			}
		}
	}
	var wg sync.WaitGroup
	for _, i := range alone {
		wg.Go(func() {
			res, err := r.replace(ctx, decoded[i], writeOptions{})
			var out *apiv1.Object
			if err == nil {
				out, err = res.wire()
			}
			if err != nil {
				results[i] = batchFailure(err)
				return
			}
			results[i] = &apiv1.CreateBatchResult{Object: out}
		})
	}
	wg.Wait()
	return &apiv1.UpdateBatchResponse{Results: results}, nil
}

// prepareForCreate sets what the server owns on a new object.
func (r *resources) prepareForCreate(info *kinds.Info, obj kinds.Object) {
	obj.SetUID(uuid.NewUUID())
	obj.SetCreationTimestamp(metav1.NewTime(r.now()))
	obj.SetDeletionTimestamp(nil)
	obj.SetDeletionGracePeriodSeconds(nil)
	obj.SetGeneration(0)
	if info.HasSpec {
		obj.SetGeneration(1)
	}
	switch o := obj.(type) {
	case *corev1.Pod:
		o.Status = corev1.PodStatus{Phase: corev1.PodPending}
	case *certificatesv1.PodCertificateRequest:
		o.Status = certificatesv1.PodCertificateRequestStatus{}
	case *appsv1.Deployment:
		o.Status = appsv1.DeploymentStatus{}
	case *appsv1.ReplicaSet:
		o.Status = appsv1.ReplicaSetStatus{}
	case *corev1.ReplicationController:
		o.Status = corev1.ReplicationControllerStatus{}
	case *policyv1.PodDisruptionBudget:
		o.Status = policyv1.PodDisruptionBudgetStatus{}
	case *corev1.Service:
		o.Status = corev1.ServiceStatus{}
	case *corev1.ResourceQuota:
		o.Status = corev1.ResourceQuotaStatus{}
	case *appsv1.DaemonSet:
		o.Status = appsv1.DaemonSetStatus{}
	case *appsv1.StatefulSet:
		o.Status = appsv1.StatefulSetStatus{}
	case *batchv1.Job:
		o.Status = batchv1.JobStatus{}
		generateJobSelector(o)
	case *batchv1.CronJob:
		o.Status = batchv1.CronJobStatus{}
	case *corev1.PersistentVolume:
		o.Status = corev1.PersistentVolumeStatus{Phase: corev1.VolumePending}
	case *corev1.PersistentVolumeClaim:
		o.Status = corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending}
	case *apiextensionsv1.CustomResourceDefinition:
		o.Status = apiextensionsv1.CustomResourceDefinitionStatus{}
		addStoredVersion(&o.Spec, &o.Status) // before validation, which wants it there
		if !slices.Contains(o.Finalizers, FinalizerCustomResourceCleanup) {
			o.Finalizers = append(o.Finalizers, FinalizerCustomResourceCleanup)
		}
	case *kinds.Custom:
		if info.HasStatus {
			delete(o.Content, "status") // written through the status subresource only
		}
	case *corev1.Namespace:
		o.Status = corev1.NamespaceStatus{Phase: corev1.NamespaceActive}
		if len(o.Spec.Finalizers) == 0 {
			o.Spec.Finalizers = []corev1.FinalizerName{FinalizerNamespace}
		}
	case *flowcontrolv1.FlowSchema:
		o.Status = flowcontrolv1.FlowSchemaStatus{}
	case *flowcontrolv1.PriorityLevelConfiguration:
		o.Status = flowcontrolv1.PriorityLevelConfigurationStatus{}
	case *networkingv1.ServiceCIDR:
		o.Status = networkingv1.ServiceCIDRStatus{}
	case *storagemigrationv1.StorageVersionMigration:
		o.Status = storagemigrationv1.StorageVersionMigrationStatus{}
	case *apiregistrationv1.APIService:
		o.Status = apiregistrationv1.APIServiceStatus{}
	case *autoscalingv2.HorizontalPodAutoscaler:
		o.Status = autoscalingv2.HorizontalPodAutoscalerStatus{}
	}
}

// checkNamespace refuses writes into a missing or terminating namespace. It reads this
// node's state (stale): namespaces change rarely, and Kubernetes' own check races the
// same way. What it read is cached until this node applies a change to any namespace,
// so a burst of creates costs no read transaction (see localCache).
func (r *resources) checkNamespace(ctx context.Context, ns string) error {
	nsInfo := kinds.MustLookup(kinds.Namespace)
	k := store.Key{Kind: kinds.Namespace, Name: ns}
	phase, found, err := r.namespaces.get(r.store, k)
	if err == nil && !found && ns == "default" {
		// "default" always exists; a write may simply beat the server's own creation of it.
		return r.ensureNamespace(ctx, ns)
	}
	if err == nil && !found {
		phase, found, err = r.namespaces.confirm(ctx, r.store, k)
	}
	switch {
	case err != nil:
		return storeError(nsInfo, ns, err)
	case !found:
		return notFound(nsInfo, ns)
	case phase == string(corev1.NamespaceTerminating):
		return forbidden(nsInfo, ns, "unable to create new content in namespace "+ns+" because it is being terminated")
	}
	return nil
}

// namespacePhase decodes a stored Namespace's phase.
func namespacePhase(o store.Object) (string, error) {
	obj, err := decode(kinds.MustLookup(kinds.Namespace), &o)
	if err != nil {
		return "", err
	}
	return string(obj.(*corev1.Namespace).Status.Phase), nil
}

// ensureNamespace creates a namespace unless it exists.
func (r *resources) ensureNamespace(ctx context.Context, name string) error {
	_, err := r.create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, writeOptions{})
	if status.Code(err) == codes.AlreadyExists {
		return nil
	}
	return err
}

func (r *resources) Get(ctx context.Context, req *apiv1.GetRequest) (*apiv1.Object, error) {
	info, err := lookupKind(req.GetKind())
	if err != nil {
		return nil, err
	}
	res, err := r.getObject(ctx, info, req.GetNamespace(), req.GetName(), store.ReadOptions{Stale: req.GetStale()})
	if err != nil {
		return nil, err
	}
	return res.wire()
}

// getObject reads one object.
func (r *resources) getObject(ctx context.Context, info *kinds.Info, ns, name string, opts store.ReadOptions) (result, error) {
	if name == "" {
		return result{}, badRequest("name is required")
	}
	k := store.Key{Kind: info.Kind, Namespace: namespaceFor(info, ns), Name: name}
	obj, _, err := r.get(ctx, info, k, opts)
	if err != nil {
		return result{}, err
	}
	if err := guard(ctx, obj); err != nil {
		return result{}, err
	}
	return result{info: info, obj: obj}, nil
}

// storeSelector is what a list or watch asks of the store for its selectors: the
// predicate, the indexed field whose equality it reads through the field index, and the
// name an equality on metadata.name selects (read from its key and the index of names).
type storeSelector struct {
	pred                   func(*store.Object) bool
	indexField, indexValue string
	name                   string
}

// selector builds the store predicate and index choice for label and field selectors
// on the stored kind info, whose fields a field selector may name are allowed. deferTo,
// when set, is the apiVersion of a custom kind converted by a webhook (convertedSelection):
// an object stored in another version passes on its selectable fields, to be matched
// once converted.
func selector(info *kinds.Info, allowed []string, labelSel, fieldSel, deferTo string) (storeSelector, error) {
	ls, err := labels.Parse(labelSel)
	if err != nil {
		return storeSelector{}, badRequest("labelSelector: %v", err)
	}
	reqs, err := parseFieldSelector(fieldSel, allowed)
	if err != nil {
		return storeSelector{}, badRequest("fieldSelector: %v", err)
	}
	var sel storeSelector
	for _, f := range indexedFields[info.Kind] {
		if v, ok := fieldEquals(reqs, f); ok {
			sel.indexField, sel.indexValue = f, v
			break
		}
	}
	sel.name, _ = fieldEquals(reqs, "metadata.name")
	if ls.Empty() && len(reqs) == 0 {
		return sel, nil
	}
	sel.pred = func(o *store.Object) bool {
		if !ls.Matches(labels.Set(o.Labels)) {
			return false
		}
		other := false
		if deferTo != "" {
			v := storedAPIVersion(o)
			other = v != "" && v != deferTo
		}
		for _, req := range reqs {
			if other && !isMetadataField(req.Field) {
				continue
			}
			if (fieldValue(info, o, req.Field) == req.Value) == (req.Operator == selection.NotEquals) {
				return false
			}
		}
		return true
	}
	return sel, nil
}

// parseFieldSelector parses a field selector (apimachinery's syntax) whose fields must be
// among allowed.
func parseFieldSelector(text string, allowed []string) ([]fields.Requirement, error) {
	sel, err := fields.ParseSelector(text)
	if err != nil {
		return nil, err
	}
	reqs := sel.Requirements()
	for _, r := range reqs {
		found := false
		for _, a := range allowed {
			found = found || a == r.Field
		}
		if !found {
			return nil, fmt.Errorf("field label not supported: %s (supported: %s)", r.Field, strings.Join(allowed, ", "))
		}
	}
	return reqs, nil
}

// fieldEquals returns the value a requirement says field equals, if one does.
func fieldEquals(reqs []fields.Requirement, field string) (string, bool) {
	for _, r := range reqs {
		if r.Field == field && r.Operator != selection.NotEquals {
			return r.Value, true
		}
	}
	return "", false
}

func (r *resources) List(ctx context.Context, req *apiv1.ListRequest) (*apiv1.ListResponse, error) {
	info, err := lookupKind(req.GetKind())
	if err != nil {
		return nil, err
	}
	l, err := r.list(ctx, info, listOptions{namespace: req.GetNamespace(), labelSelector: req.GetLabelSelector(),
		fieldSelector: req.GetFieldSelector(), stale: req.GetStale()})
	if err != nil {
		return nil, err
	}
	out := &apiv1.ListResponse{Items: make([]*apiv1.Object, 0, len(l.items)), ResourceVersion: strconv.FormatInt(l.rev, 10)}
	for i := range l.items {
		out.Items = append(out.Items, storedObject(info, l.items[i].Value, l.items[i].ModRevision))
	}
	return out, nil
}

// listOptions select the objects of a list: Kubernetes' ListOptions.
type listOptions struct {
	namespace                    string // "" for every namespace
	labelSelector, fieldSelector string
	// stale reads this node's state (the gRPC API's choice; the REST API's is
	// resourceVersion "0").
	stale bool
	// resourceVersion and resourceVersionMatch choose the revision listed, as Kubernetes
	// does: "" the current one; "0" any (this node's state); N with NotOlderThan this
	// node's state once it has applied N, with Exact the state at N.
	resourceVersion, resourceVersionMatch string
	// limit, when positive, cuts the list in pages; continueToken asks for the next.
	limit         int64
	continueToken string
}

// listResult is a list's objects, as stored, and the revision it reflects.
type listResult struct {
	items []store.Object
	rev   int64
	// continueToken, when the list was cut short, asks for the rest (at rev).
	continueToken string
	// remaining, when the list was cut short and had no selector, counts the rest
	// (Kubernetes' remainingItemCount).
	remaining *int64
}

// continueToken is what a continue parameter holds: Kubernetes' form, base64 of
// {"v":"meta.k8s.io/v1","rv":N,"start":"..."}, with the namespace and name the page
// ended at as start. Skiff adds "remaining", the remainingItemCount of that page, when
// it was counted: the objects after any later page at the same revision are that many
// less those listed since, so only a list's first page counts them (reading every key
// after it), not each of its pages.
type continueToken struct {
	APIVersion string `json:"v"`
	Revision   int64  `json:"rv"`
	Start      string `json:"start"`
	Remaining  *int64 `json:"remaining,omitempty"`
}

func encodeContinue(rev int64, last store.Key, remaining *int64) string {
	b, _ := json.Marshal(continueToken{APIVersion: "meta.k8s.io/v1", Revision: rev, Start: last.Namespace + "/" + last.Name, Remaining: remaining})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeContinue(s string) (continueToken, store.Key, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	var t continueToken
	if err == nil {
		err = json.Unmarshal(b, &t)
	}
	ns, name, ok := strings.Cut(t.Start, "/")
	if err != nil || t.APIVersion != "meta.k8s.io/v1" || !ok || t.Revision < 0 || t.Remaining != nil && *t.Remaining < 0 {
		return continueToken{}, store.Key{}, badRequest("continue key is not valid: %q", s)
	}
	return t, store.Key{Namespace: ns, Name: name}, nil
}

// tooOldContinue is the 410 of a continue token older than the history, with a token
// that goes on at the current state, as Kubernetes' is.
func tooOldContinue(after store.Key) error {
	e := statusError(codes.OutOfRange, ReasonTooOld, nil, "The provided continue parameter is too old to display a consistent list result. "+
		"You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. "+
		"Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.")
	e.status.ListMeta.Continue = encodeContinue(0, after, nil)
	return e
}

// list reads the objects of a kind.
func (r *resources) list(ctx context.Context, info *kinds.Info, opts listOptions) (listResult, error) {
	// A kind served over another's storage lists the stored kind's objects.
	requested := info
	info, sel, allowed, err := storageFieldSelector(info, opts.fieldSelector)
	if err != nil {
		return listResult{}, err
	}
	opts.fieldSelector = sel
	cs := convertedSelectionFor(requested, sel)
	ss, err := selector(info, allowed, opts.labelSelector, opts.fieldSelector, cs.deferTo())
	if err != nil {
		return listResult{}, err
	}
	// The page goes out as the objects' values: without a selector, the store need not
	// read their labels and fields (ValuesOnly). A list of one object by name (an
	// informer of it, kubectl wait) reads its key, not the kind's.
	so := store.ListOptions{Stale: opts.stale, IndexField: ss.indexField, IndexValue: ss.indexValue, Name: ss.name, Predicate: ss.pred,
		Limit: int(max(opts.limit, 0)), CountRemaining: opts.labelSelector == "" && opts.fieldSelector == "", ValuesOnly: ss.pred == nil}
	if info.Namespaced {
		so.Namespace = opts.namespace
	}
	rv, match := opts.resourceVersion, opts.resourceVersionMatch
	switch {
	case match != "" && rv == "":
		return listResult{}, badRequest("resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided")
	case match != "" && opts.continueToken != "":
		return listResult{}, badRequest("resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden when continue is provided")
	case match != "" && match != string(metav1.ResourceVersionMatchExact) && match != string(metav1.ResourceVersionMatchNotOlderThan):
		return listResult{}, badRequest("resourceVersionMatch: Unsupported value: %q: supported values: \"Exact\", \"NotOlderThan\", \"\"", match)
	case match == string(metav1.ResourceVersionMatchExact) && rv == "0":
		return listResult{}, badRequest("resourceVersionMatch: Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"")
	case opts.continueToken != "" && rv != "" && rv != "0":
		return listResult{}, badRequest("specifying resource version is not allowed when using continue")
	}
	var after store.Key
	// counted is the remainingItemCount of the page before, when its token carries it
	// and this page is read at the same revision.
	var counted *int64
	switch {
	case opts.continueToken != "":
		t, a, err := decodeContinue(opts.continueToken)
		if err != nil {
			return listResult{}, err
		}
		after, so.After, so.Revision = a, a, t.Revision
		if t.Remaining != nil && t.Revision != 0 && so.CountRemaining {
			counted, so.CountRemaining = t.Remaining, false
		}
	case rv == "":
	case rv == "0":
		so.Stale = true
	default:
		n, err := parseRV(info, "", rv)
		if err != nil {
			return listResult{}, badRequest("resourceVersion: Invalid value: %q: must be a non-negative integer", rv)
		}
		if match == string(metav1.ResourceVersionMatchExact) || match == "" && opts.limit > 0 {
			so.Revision = n
		} else {
			so.Stale, so.MinRevision = true, n
		}
	}
	res, err := r.store.ListPage(ctx, info.Kind, so)
	var ce *store.CompactedError
	if opts.continueToken != "" && errors.As(err, &ce) {
		return listResult{}, tooOldContinue(after)
	}
	if err != nil {
		return listResult{}, storeError(info, "", err)
	}
	for i, o := range res.Objects {
		if res.Objects[i], err = r.atRest.openObject(info, o); err != nil {
			return listResult{}, storeError(info, o.Name, err)
		}
	}
	out := listResult{items: res.Objects, rev: res.Revision}
	if res.More && len(res.Objects) > 0 {
		switch left := int64(0); {
		case so.CountRemaining:
			out.remaining = &res.Remaining
		case counted != nil:
			// Unless the token's count is not this list's (it cannot be fewer than
			// what follows the page before): then none is given, as with a selector.
			if left = *counted - int64(len(res.Objects)); left > 0 {
				out.remaining = &left
			}
		}
		out.continueToken = encodeContinue(res.Revision, res.Objects[len(res.Objects)-1].Key, out.remaining)
	}
	if cs != nil {
		if out.items, err = cs.filterObjects(out.items); err != nil {
			return listResult{}, err
		}
	}
	return out, nil
}

// update is the read-modify-write loop shared by every write to an existing object:
// mutate builds the next state from the current one (or returns a terminal error); the
// write is a compare-and-swap on the current revision. Without a caller precondition
// (wantRV 0), a lost race is retried on the new state. A dry run stops before the write.
//
// The first read is this member's own state, without a read barrier (Kubernetes'
// GuaranteedUpdate starts from its cache the same way): the compare-and-swap on the
// revision read commits only if that is still the object's latest, so the write is as
// safe as after a linearizable read, and it saves what a read index costs — a heartbeat
// round to a quorum, and the wait for this member's apply to reach the commit index —
// which under load was as long as the write itself. Whatever a state behind the leader's
// could have decided — the object missing, a guard, precondition or mutation refusing,
// nothing to change, the compare-and-swap lost — is decided again on a linearizable
// read. A dry run, which no compare-and-swap checks, reads linearizably.
func (r *resources) update(ctx context.Context, info *kinds.Info, k store.Key, wantRV int64, opts writeOptions,
	mutate func(cur kinds.Object, curRec *store.Object) (next kinds.Object, err error)) (result, error) {
	mutate = r.admitWebhooksUpdate(ctx, info, opts, mutate)
	local := !opts.dryRun
	// again reports whether to read again linearizably, after the local read's attempt
	// failed; that attempt is not one of the conflict retries.
	again := func(attempt *int) bool {
		if !local {
			return false
		}
		local = false
		*attempt--
		return true
	}
	for attempt := 0; ; attempt++ {
		w, err := r.prepareWrite(ctx, info, k, wantRV, local, mutate)
		if err != nil || !w.changed {
			if again(&attempt) {
				continue
			}
			if err != nil {
				return result{}, err
			}
			return result{info: info, obj: w.cur, value: w.rec.Value, rev: w.rec.ModRevision}, nil // nothing changes: no write, no new resourceVersion
		}
		if opts.dryRun {
			w.next.SetResourceVersion(w.cur.GetResourceVersion())
			return result{info: info, obj: w.next, gone: w.gone()}, nil
		}
		res, err := r.store.Txn(ctx, append([]store.Op{w.op}, w.side.ops...)...)
		if errors.Is(err, store.ErrConflict) && again(&attempt) {
			continue
		}
		if (errors.Is(err, store.ErrConflict) && wantRV == 0 || w.side.picked && isAllocationClash(err)) && attempt < maxRetries {
			continue
		}
		if err != nil {
			return result{}, writeError(info, k.Name, err)
		}
		return r.written(info, w, res.Revision), nil
	}
}

// write is one attempt of update's read-modify-write: the state read, and the
// compare-and-swap that replaces it (with its side operations), unless nothing changed.
type write struct {
	cur, next kinds.Object
	rec       *store.Object
	side      *allocation
	op        store.Op
	changed   bool
}

// gone says the write deletes the object: the last finalizer is gone.
func (w write) gone() bool { return w.op.Type == store.Delete }

// prepareWrite reads k (from this member's state when local) and makes the write that
// mutate asks for: the guard, the caller's precondition, the mutation, its side
// operations and the compare-and-swap, everything a single update checks before it
// commits.
func (r *resources) prepareWrite(ctx context.Context, info *kinds.Info, k store.Key, wantRV int64, local bool,
	mutate func(cur kinds.Object, curRec *store.Object) (next kinds.Object, err error)) (w write, err error) {
	w.cur, w.rec, err = r.get(ctx, info, k, store.ReadOptions{Stale: local})
	if err == nil {
		err = guard(ctx, w.cur) // checked on the revision the write compares against
	}
	if err == nil && wantRV != 0 && wantRV != w.rec.ModRevision {
		err = conflict(info, k.Name, w.rec.ModRevision, "the object has been modified; please apply your changes to the latest version and try again")
	}
	if err == nil {
		w.next, err = mutate(w.cur, w.rec)
	}
	if err == nil {
		w.side, err = r.sideOps(ctx, w.cur, w.next)
	}
	if err == nil {
		w.op, w.changed, err = r.writeOp(info, k, w.rec, w.next)
	}
	return w, err
}

// written is the result of w, committed at revision rev.
func (r *resources) written(info *kinds.Info, w write, rev int64) result {
	w.next.SetResourceVersion(strconv.FormatInt(rev, 10))
	out := result{info: info, obj: w.next, gone: w.gone()}
	if !out.gone && !r.atRest.transforms(info) { // a sealed value is not the object's encoding
		out.value, out.rev = w.op.Value, rev
	}
	return out
}

// writeOp is the compare-and-swap that replaces rec, read at key k, by next: an update,
// or the deletion of an object marked for deletion that nothing holds any more (its last
// finalizer is gone). changed is false when next is what is stored.
func (r *resources) writeOp(info *kinds.Info, k store.Key, rec *store.Object, next kinds.Object) (op store.Op, changed bool, err error) {
	op = store.Op{Type: store.Update, Key: k, IfRevision: rec.ModRevision, IfUID: rec.UID}
	if op.Value, op.Labels, op.Fields, err = encode(next); err != nil {
		return op, false, storeError(info, k.Name, err)
	}
	// rec's value is opened (r.get): plaintexts compare, sealed values never would.
	if bytes.Equal(op.Value, rec.Value) {
		return op, false, nil
	}
	if op.Value, err = r.atRest.seal(info, k, op.Value); err != nil {
		return op, false, storeError(info, k.Name, err)
	}
	if next.GetDeletionTimestamp() != nil && !held(next) {
		op = store.Op{Type: store.Delete, Key: k, IfRevision: rec.ModRevision, IfUID: rec.UID}
	}
	return op, true, nil
}

// held reports whether an object marked for deletion must stay: finalizers remain (a
// namespace's spec.finalizers count), or it is a pod inside its grace period, which the
// kubelet ends by deleting it with grace 0.
func held(obj kinds.Object) bool {
	if len(obj.GetFinalizers()) > 0 {
		return true
	}
	switch o := obj.(type) {
	case *corev1.Pod:
		return o.DeletionGracePeriodSeconds != nil && *o.DeletionGracePeriodSeconds > 0
	case *corev1.Namespace:
		return len(o.Spec.Finalizers) > 0
	}
	return false
}

func clone(obj kinds.Object) kinds.Object { return obj.DeepCopyObject().(kinds.Object) }

func (r *resources) Update(ctx context.Context, req *apiv1.UpdateRequest) (*apiv1.Object, error) {
	if !req.GetDryRun() {
		if err := r.refuseSpentEvent(ctx, req.GetObject()); err != nil {
			return nil, err
		}
	}
	obj, err := unwrap(req.GetObject())
	if err != nil {
		return nil, err
	}
	res, err := r.replace(ctx, obj, writeOptions{dryRun: req.GetDryRun()})
	if err != nil {
		return nil, err
	}
	return res.wire()
}

// replace writes obj over the stored object of its name: its metadata and spec (the
// status goes through replaceStatus), compare-and-swap on obj's resourceVersion if set.
func (r *resources) replace(ctx context.Context, obj kinds.Object, opts writeOptions, checks ...func(cur, next kinds.Object) error) (result, error) {
	info := kinds.Of(obj)
	wantRV, err := parseRV(info, obj.GetName(), obj.GetResourceVersion())
	if err != nil {
		return result{}, err
	}
	if !opts.dryRun {
		if err := r.admitEventWrite(ctx, info, keyOf(info, obj).Namespace); err != nil {
			return result{}, err
		}
	}
	return r.update(ctx, info, keyOf(info, obj), wantRV, opts, func(cur kinds.Object, _ *store.Object) (kinds.Object, error) {
		next, err := r.nextState(ctx, info, cur, clone(obj), false)
		for _, check := range checks {
			if err == nil {
				err = check(cur, next)
			}
		}
		return next, err
	})
}

// nextState makes next, a new state the request's user wrote through the main resource,
// the next stored state of cur: prepareUpdate, the node restriction's admission and, but
// for an apply (applied, which the field manager has recorded), field tracking.
func (r *resources) nextState(ctx context.Context, info *kinds.Info, cur, next kinds.Object, applied bool) (kinds.Object, error) {
	next, err := prepareUpdate(info, cur, next)
	if err != nil {
		return nil, err
	}
	if err := r.admitNodeWrite(ctx, info, cur, next); err != nil {
		return nil, err
	}
	if err := r.admitRBAC(ctx, info, cur, next); err != nil {
		return nil, err
	}
	if err := r.admitPolicyBinding(ctx, info, cur, next); err != nil {
		return nil, err
	}
	if pc, ok := next.(*schedulingv1.PriorityClass); ok {
		if err := r.admitPriorityClass(ctx, pc, true); err != nil {
			return nil, err
		}
	}
	if applied {
		return next, nil
	}
	return track(ctx, info, "", cur, next)
}

// prepareUpdate makes next, a new state the user wrote, the next stored state of cur:
// the server's fields kept, generation counted, defaulted and validated.
func prepareUpdate(info *kinds.Info, cur, next kinds.Object) (kinds.Object, error) {
	if next.GetUID() != "" && next.GetUID() != cur.GetUID() {
		return nil, conflict(info, next.GetName(), 0, fmt.Sprintf("Precondition failed: UID in object meta: %s, current UID: %s", next.GetUID(), cur.GetUID()))
	}
	validation.Default(next) // before comparing specs: a default is no change
	// The server owns these; the status goes through UpdateStatus.
	next.SetUID(cur.GetUID())
	next.SetCreationTimestamp(cur.GetCreationTimestamp())
	next.SetResourceVersion(cur.GetResourceVersion())
	next.SetDeletionTimestamp(cur.GetDeletionTimestamp())
	next.SetDeletionGracePeriodSeconds(cur.GetDeletionGracePeriodSeconds())
	next.SetGeneration(cur.GetGeneration())
	next.SetGenerateName(cur.GetGenerateName())
	kinds.CopySection(next, cur, kinds.StatusSection)
	if info.Kind == kinds.CertificateSigningRequest {
		kinds.CopySection(next, cur, kinds.SpecSection) // a request is fixed once made
	}
	if svc, ok := next.(*corev1.Service); ok {
		prepareServiceUpdate(cur.(*corev1.Service), svc)
	}
	if crd, ok := next.(*apiextensionsv1.CustomResourceDefinition); ok {
		addStoredVersion(&crd.Spec, &crd.Status)
	}
	if pod, ok := next.(*corev1.Pod); ok {
		if old, ok := cur.(*corev1.Pod); ok {
			keepPriority(old, pod) // before comparing: a priority kept is no change
		}
	}
	// One comparison serves the generation and the validation: a spec that did not
	// change has nothing in it that may not change.
	sameSpec := !info.HasSpec || kinds.SectionEqual(cur, next, kinds.SpecSection)
	if !sameSpec {
		next.SetGeneration(cur.GetGeneration() + 1)
	}
	if cur.GetDeletionTimestamp() != nil {
		for _, f := range next.GetFinalizers() {
			if !contains(cur.GetFinalizers(), f) {
				return nil, forbidden(info, next.GetName(), fmt.Sprintf("no new finalizers can be added if the object is being deleted, found new finalizer %q", f))
			}
		}
	}
	if err := admitUpdate(cur, next, sameSpec); err != nil {
		return nil, invalid(info, next.GetName(), err)
	}
	return next, nil
}

func (r *resources) UpdateStatus(ctx context.Context, req *apiv1.UpdateRequest) (*apiv1.Object, error) {
	obj, err := unwrap(req.GetObject())
	if err != nil {
		return nil, err
	}
	res, err := r.replaceStatus(ctx, obj, "status", writeOptions{dryRun: req.GetDryRun()})
	if err != nil {
		return nil, err
	}
	return res.wire()
}

// replaceStatus writes obj's status over the stored object's through subresource sub
// (status; a CertificateSigningRequest's approval), compare-and-swap on obj's
// resourceVersion if set.
func (r *resources) replaceStatus(ctx context.Context, obj kinds.Object, sub string, opts writeOptions) (result, error) {
	info := kinds.Of(obj)
	if !info.HasStatus {
		return result{}, badRequest("%s has no status", resourceName(info))
	}
	opts.subresource = sub
	wantRV, err := parseRV(info, obj.GetName(), obj.GetResourceVersion())
	if err != nil {
		return result{}, err
	}
	if !opts.dryRun {
		if err := r.admitEventWrite(ctx, info, keyOf(info, obj).Namespace); err != nil {
			return result{}, err
		}
	}
	return r.update(ctx, info, keyOf(info, obj), wantRV, opts, func(cur kinds.Object, _ *store.Object) (kinds.Object, error) {
		next, err := r.prepareStatusUpdate(ctx, info, cur, obj, sub)
		if err != nil {
			return nil, err
		}
		return track(ctx, info, sub, cur, next)
	})
}

// prepareStatusUpdate is cur with the status of obj written through subresource sub,
// validated and admitted.
func (r *resources) prepareStatusUpdate(ctx context.Context, info *kinds.Info, cur, obj kinds.Object, sub string) (kinds.Object, error) {
	if obj.GetUID() != "" && obj.GetUID() != cur.GetUID() {
		return nil, conflict(info, obj.GetName(), 0, fmt.Sprintf("Precondition failed: UID in object meta: %s, current UID: %s", obj.GetUID(), cur.GetUID()))
	}
	next := clone(cur)
	kinds.CopySection(next, obj, kinds.StatusSection)
	if err := admitStatusUpdate(cur, next, sub, metav1.NewTime(r.now())); err != nil {
		return nil, invalid(info, obj.GetName(), err)
	}
	if verb := signerVerb(sub, cur, next); verb != "" {
		if err := r.authorizeSigner(ctx, verb, cur.(*certificatesv1.CertificateSigningRequest)); err != nil {
			return nil, err
		}
	}
	if pcr, ok := cur.(*certificatesv1.PodCertificateRequest); ok {
		if err := r.authorizePodCertificateSigner(ctx, pcr, next.(*certificatesv1.PodCertificateRequest)); err != nil {
			return nil, err
		}
	}
	return next, nil
}

// prepareStatusPatch is prepareStatusUpdate for a patch of the status subresource,
// patched being cur with the patch applied: as Kubernetes' status strategies do, it
// also writes the labels and annotations the patch sets (but a Deployment's labels,
// which Kubernetes keeps). A whole object written to the status (UpdateStatus, PUT)
// changes its status only: Skiff's own components send the status alone.
func (r *resources) prepareStatusPatch(ctx context.Context, info *kinds.Info, cur, patched kinds.Object, sub string) (kinds.Object, error) {
	next, err := r.prepareStatusUpdate(ctx, info, cur, patched, sub)
	if err != nil {
		return nil, err
	}
	if info.Kind != kinds.Deployment {
		next.SetLabels(patched.GetLabels())
	}
	next.SetAnnotations(patched.GetAnnotations())
	if err := validation.ValidateLabelsAndAnnotations(next); err != nil {
		return nil, invalid(info, next.GetName(), err)
	}
	// The labels written through the status are a node's to write only as NodeRestriction
	// allows, as Kubernetes' admission checks a Node's update through either.
	if err := r.admitNodeWrite(ctx, info, cur, next); err != nil {
		return nil, err
	}
	return next, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (r *resources) Delete(ctx context.Context, req *apiv1.DeleteRequest) (*apiv1.Object, error) {
	info, err := lookupKind(req.GetKind())
	if err != nil {
		return nil, err
	}
	res, err := r.delete(ctx, info, req.GetNamespace(), req.GetName(), deleteOptions{
		writeOptions:      writeOptions{dryRun: req.GetDryRun()},
		propagationPolicy: req.GetPropagationPolicy(), gracePeriodSeconds: req.GracePeriodSeconds,
		resourceVersion: req.GetPreconditions().GetResourceVersion(), uid: req.GetPreconditions().GetUid(),
	})
	if err != nil {
		return nil, err
	}
	return wrap(info, res.obj)
}

// deleteOptions are Kubernetes' DeleteOptions.
type deleteOptions struct {
	writeOptions
	propagationPolicy  string
	gracePeriodSeconds *int64
	// resourceVersion and uid are preconditions, when set.
	resourceVersion, uid string
}

// delete marks an object for deletion, or removes it when nothing holds it.
func (r *resources) delete(ctx context.Context, info *kinds.Info, ns, name string, opts deleteOptions) (result, error) {
	if name == "" {
		return result{}, badRequest("name is required")
	}
	k := store.Key{Kind: info.Kind, Namespace: namespaceFor(info, ns), Name: name}
	wantRV, err := parseRV(info, k.Name, opts.resourceVersion)
	if err != nil {
		return result{}, err
	}
	var addFinalizer string
	switch opts.propagationPolicy {
	case "", "Background":
	case "Foreground":
		addFinalizer = FinalizerForeground
	case "Orphan":
		addFinalizer = FinalizerOrphan
	default:
		return result{}, badRequest("propagationPolicy: Unsupported value: %q: supported values: Background, Foreground, Orphan", opts.propagationPolicy)
	}
	if opts.gracePeriodSeconds != nil && *opts.gracePeriodSeconds < 0 {
		return result{}, badRequest("gracePeriodSeconds: Invalid value: %d: must be >= 0", *opts.gracePeriodSeconds)
	}
	if info.Kind == kinds.Namespace && immortalNamespaces[k.Name] {
		return result{}, forbidden(info, k.Name, "this namespace may not be deleted")
	}
	if info.Kind == kinds.PriorityClass && systemPriorityClass(k.Name) {
		return result{}, forbidden(info, k.Name, "this is a system priority class and cannot be deleted")
	}
	opts.deleting = true
	return r.update(ctx, info, k, wantRV, opts.writeOptions, func(cur kinds.Object, rec *store.Object) (kinds.Object, error) {
		if opts.uid != "" && opts.uid != rec.UID {
			return nil, conflict(info, k.Name, 0, fmt.Sprintf("Precondition failed: UID in precondition: %s, UID in object meta: %s", opts.uid, rec.UID))
		}
		return r.markDeleted(cur, addFinalizer, opts.gracePeriodSeconds), nil
	})
}

// markDeleted is what a delete makes of cur: marked for deletion, with the propagation
// policy's finalizer (addFinalizer, or ""), and the grace period requested (nil: the
// object's own).
func (r *resources) markDeleted(cur kinds.Object, addFinalizer string, requestedGrace *int64) kinds.Object {
	next := clone(cur)
	if addFinalizer != "" && !contains(next.GetFinalizers(), addFinalizer) {
		next.SetFinalizers(append(next.GetFinalizers(), addFinalizer))
	}
	grace := r.gracePeriod(next, requestedGrace)
	cg := next.GetDeletionGracePeriodSeconds()
	if next.GetDeletionTimestamp() == nil && next.GetGeneration() > 0 {
		// The first mark counts as a change of what the object's owner must do, as in
		// Kubernetes (rest.BeforeDelete, the store's markAsDeleting): a pod's generation
		// goes up on its graceful delete.
		next.SetGeneration(next.GetGeneration() + 1)
	}
	if next.GetDeletionTimestamp() == nil || cg != nil && grace < *cg {
		// A second delete may shorten the grace period, never lengthen it.
		at := metav1.NewTime(r.now().Add(time.Duration(grace) * time.Second))
		next.SetDeletionTimestamp(&at)
		next.SetDeletionGracePeriodSeconds(&grace)
	}
	if ns, ok := next.(*corev1.Namespace); ok {
		ns.Status.Phase = corev1.NamespaceTerminating
	}
	return next
}

// immortalNamespaces may not be deleted (Kubernetes' NamespaceLifecycle admission):
// deleting one would empty it, and the control plane lives in kube-system.
var immortalNamespaces = map[string]bool{metav1.NamespaceDefault: true, metav1.NamespaceSystem: true, metav1.NamespacePublic: true}

// gracePeriod is how long a deleted object lingers for its owner to clean up. Only pods
// running on a node have one (the kubelet stops their containers, then deletes them);
// everything else goes at once unless a finalizer holds it.
func (r *resources) gracePeriod(obj kinds.Object, requested *int64) int64 {
	pod, ok := obj.(*corev1.Pod)
	if !ok || pod.Spec.NodeName == "" {
		return 0
	}
	switch pod.Status.Phase {
	case corev1.PodSucceeded, corev1.PodFailed:
		return 0
	}
	if requested != nil {
		return *requested
	}
	if g := pod.Spec.TerminationGracePeriodSeconds; g != nil {
		return *g
	}
	return corev1.DefaultTerminationGracePeriodSeconds
}

func (r *resources) Bind(ctx context.Context, req *apiv1.BindRequest) (*apiv1.Object, error) {
	res, err := r.bind(ctx, req.GetNamespace(), req.GetName(), req.GetUid(), req.GetNodeName(), writeOptions{})
	if err != nil {
		return nil, err
	}
	return res.wire()
}

// BindBatch binds each pod as Bind does, each succeeding or failing alone. The bindings
// prepared on this member's own state are committed in one transaction, so that they
// cost the store one entry. When one of them no longer holds (its pod changed
// meanwhile), that transaction writes nothing: the binding is taken out and bound alone,
// and the others are committed again together (a few times at most; then, or when they
// are too large together, each alone). A binding the member's state could not decide is
// bound alone too: Bind decides it again on a linearizable read, and says why it fails.
func (r *resources) BindBatch(ctx context.Context, req *apiv1.BindBatchRequest) (*apiv1.BindBatchResponse, error) {
	bs := req.GetBindings()
	if len(bs) > MaxBatch {
		return nil, badRequest("bindings: Too many: %d: a batch holds at most %d", len(bs), MaxBatch)
	}
	info := kinds.MustLookup(kinds.Pod)
	results := make([]*apiv1.CreateBatchResult, len(bs))
	writes := make([]write, len(bs))
	var batched, alone []int
	nodes := make([]string, len(bs)) // each binding's node, as admitted
	admit := r.admitsSubresources(ctx, info)
	for i, b := range bs {
		k, mutate, err := r.binding(b.GetNamespace(), b.GetName(), b.GetUid(), b.GetNodeName())
		nodes[i] = b.GetNodeName()
		if err == nil && admit {
			nodes[i], err = r.admitBinding(ctx, b.GetNamespace(), b.GetName(), b.GetUid(), b.GetNodeName(), false)
		}
		if err == nil && nodes[i] != b.GetNodeName() {
			k, mutate, err = r.binding(b.GetNamespace(), b.GetName(), b.GetUid(), nodes[i])
		}
		if err != nil {
			results[i] = batchFailure(err)
			continue
		}
		if writes[i], err = r.prepareWrite(ctx, info, k, 0, true, mutate); err != nil || !writes[i].changed {
			alone = append(alone, i)
			continue
		}
		batched = append(batched, i)
	}
	for attempt := 0; len(batched) > 0; attempt++ {
		var ops []store.Op
		owner := make([]int, 0, len(batched)) // owner[j]: the position in batched of ops[j]
		for b, i := range batched {
			for _, op := range append([]store.Op{writes[i].op}, writes[i].side.ops...) {
				ops, owner = append(ops, op), append(owner, b)
			}
		}
		res, err := r.store.Txn(ctx, ops...)
		var pe *store.PreconditionError
		switch {
		case err == nil:
			for _, i := range batched {
				results[i] = boundResult(r.written(info, writes[i], res.Revision), nil)
			}
		case errors.As(err, &pe) && pe.Op >= 0 && pe.Op < len(owner) && attempt < maxRetries:
			b := owner[pe.Op] // its pod changed since this member's state: alone, Bind says how
			alone = append(alone, batched[b])
			batched = append(batched[:b:b], batched[b+1:]...)
			continue
		case errors.As(err, &pe) || errors.Is(err, store.ErrTooLarge):
			alone = append(alone, batched...)
		default:
			// No leader, or the outcome is unknown: the same for every binding.
			for _, i := range batched {
				results[i] = batchFailure(writeError(info, bs[i].GetName(), err))
			}
		}
		break
	}
	var wg sync.WaitGroup
	for _, i := range alone {
		wg.Go(func() {
			b := bs[i]
			results[i] = boundResult(r.bindAdmitted(ctx, b.GetNamespace(), b.GetName(), b.GetUid(), nodes[i], writeOptions{}))
		})
	}
	wg.Wait()
	return &apiv1.BindBatchResponse{Results: results}, nil
}

// boundResult is a binding's result in a BindBatchResponse.
func boundResult(res result, err error) *apiv1.CreateBatchResult {
	var out *apiv1.Object
	if err == nil {
		out, err = res.wire()
	}
	if err != nil {
		return batchFailure(err)
	}
	return &apiv1.CreateBatchResult{Object: out}
}

// bind assigns a pod to a node, once, as admitted (admitBinding).
func (r *resources) bind(ctx context.Context, ns, name, uid, node string, opts writeOptions) (result, error) {
	if _, _, err := r.binding(ns, name, uid, node); err != nil {
		return result{}, err // refused before admission sees it
	}
	node, err := r.admitBinding(ctx, ns, name, uid, node, opts.dryRun)
	if err != nil {
		return result{}, err
	}
	return r.bindAdmitted(ctx, ns, name, uid, node, opts)
}

// admitBinding runs the admission of a Binding of pod ns/name (of uid) to node, and
// returns the node it binds the pod to once the mutating admission is done.
func (r *resources) admitBinding(ctx context.Context, ns, name, uid, node string, dryRun bool) (string, error) {
	info := kinds.MustLookup(kinds.Pod)
	if !r.admitsSubresources(ctx, info) { // the scheduler's every binding: nothing made
		return node, nil
	}
	b := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespaceFor(info, ns), UID: types.UID(uid)},
		Target: corev1.ObjectReference{Kind: kinds.Node, Name: node}}
	admitted, err := r.admitSubresource(ctx, info, "binding", corev1.SchemeGroupVersion.WithKind("Binding"), admissionv1.Create, b, nil, dryRun, &metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	return admitted.(*corev1.Binding).Target.Name, nil
}

// bindAdmitted assigns a pod to a node, once: bind after its admission.
func (r *resources) bindAdmitted(ctx context.Context, ns, name, uid, node string, opts writeOptions) (result, error) {
	k, mutate, err := r.binding(ns, name, uid, node)
	if err != nil {
		return result{}, err
	}
	opts.subresource = "binding"
	return r.update(ctx, kinds.MustLookup(kinds.Pod), k, 0, opts, mutate)
}

// binding checks a binding of pod ns/name (of uid, when set) to node and returns the
// pod's key and the mutation that binds it.
func (r *resources) binding(ns, name, uid, node string) (store.Key, func(kinds.Object, *store.Object) (kinds.Object, error), error) {
	info := kinds.MustLookup(kinds.Pod)
	if name == "" || node == "" {
		return store.Key{}, nil, badRequest("bind: pod name and node name are required")
	}
	if len(utilvalidation.IsDNS1123Subdomain(node)) > 0 {
		return store.Key{}, nil, invalid(info, name, fmt.Errorf("target.name: Invalid value: %q: must be a node name", node))
	}
	k := store.Key{Kind: kinds.Pod, Namespace: namespaceFor(info, ns), Name: name}
	return k, func(cur kinds.Object, rec *store.Object) (kinds.Object, error) {
		pod := clone(cur).(*corev1.Pod)
		if uid != "" && uid != rec.UID {
			return nil, conflict(info, k.Name, 0, fmt.Sprintf("Precondition failed: UID in precondition: %s, UID in object meta: %s", uid, rec.UID))
		}
		if pod.DeletionTimestamp != nil {
			return nil, statusError(codes.FailedPrecondition, ReasonConflict, nil, "pod %s/%s is being deleted, cannot be assigned to a node", k.Namespace, k.Name).about(info, name)
		}
		if n := pod.Spec.NodeName; n != "" {
			return nil, statusError(codes.FailedPrecondition, ReasonConflict, nil, "pod %s/%s is already assigned to node %q", k.Namespace, k.Name, n).about(info, name)
		}
		pod.Spec.NodeName = node
		if pod.Status.Phase == "" {
			pod.Status.Phase = corev1.PodPending
		}
		setPodCondition(&pod.Status, corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(r.now())})
		return pod, nil
	}, nil
}

func setPodCondition(st *corev1.PodStatus, c corev1.PodCondition) {
	for i, old := range st.Conditions {
		if old.Type == c.Type {
			if old.Status == c.Status {
				c.LastTransitionTime = old.LastTransitionTime
			}
			st.Conditions[i] = c
			return
		}
	}
	st.Conditions = append(st.Conditions, c)
}

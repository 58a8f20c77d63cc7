package apiserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/uuid"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"

	"github.com/skiffhq/skiff/apiserver/validation"
	"github.com/skiffhq/skiff/kinds"
	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
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
	serviceAccounts *localCache[[]corev1.LocalObjectReference]
	// admitServiceAccounts runs the ServiceAccount admission on new pods.
	admitServiceAccounts bool
	atRest               *atRest
	networking           *networking
	// limitRangeLists and quotaLists are the namespaces' LimitRanges and ResourceQuotas
	// as this node has them; chargeLocks serialize a namespace's quota charges (quota.go).
	limitRangeLists, quotaLists *nsLists
	chargeLocks                 chargeLocks
	// events enforces the event rate limit (nil: none).
	events *eventLimiter
}

func lookupKind(name string) (*kinds.Info, error) {
	if name == "" {
		return nil, badRequest("kind is required")
	}
	info, ok := kinds.Lookup(name)
	if !ok {
		return nil, badRequest("unknown kind %q (known: %s)", name, strings.Join(kinds.Names(), ", "))
	}
	return info, nil
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

func unwrap(o *apiv1.Object) (kinds.Object, *kinds.Info, error) {
	obj, err := kinds.Unwrap(o)
	if err != nil {
		return nil, nil, badRequest("%v", err)
	}
	info := kinds.Of(obj)
	obj.SetNamespace(namespaceFor(info, obj.GetNamespace()))
	return obj, info, nil
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

func (r *resources) get(ctx context.Context, info *kinds.Info, k store.Key, stale bool) (kinds.Object, *store.Object, error) {
	o, err := r.store.Get(ctx, k, store.ReadOptions{Stale: stale})
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

func (r *resources) Create(ctx context.Context, req *apiv1.CreateRequest) (*apiv1.Object, error) {
	c, err := r.newCreation(ctx, req.GetObject())
	if err != nil {
		return nil, err
	}
	if req.GetDryRun() {
		return r.dryRunCreate(ctx, c)
	}
	if err := r.admitEventWrite(ctx, c.info, c.obj.GetNamespace(), 0); err != nil {
		return nil, err
	}
	return c.commit(ctx, r.store)
}

// dryRunCreate answers a dry-run create: the object as it would be stored, unless its
// name is taken (as the store would refuse it), without a resourceVersion.
func (r *resources) dryRunCreate(ctx context.Context, c *creation) (*apiv1.Object, error) {
	if !c.generated {
		o, err := r.store.Get(ctx, c.op.Key, store.ReadOptions{})
		if err == nil {
			return nil, storeError(c.info, c.op.Key.Name, &store.PreconditionError{Err: store.ErrAlreadyExists, Key: c.op.Key, CurrentRevision: o.ModRevision})
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, storeError(c.info, c.op.Key.Name, err)
		}
	}
	return wrap(c.info, c.obj)
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
func (r *resources) newCreation(ctx context.Context, o *apiv1.Object) (*creation, error) {
	obj, info, err := unwrap(o)
	if err != nil {
		return nil, err
	}
	if obj.GetResourceVersion() != "" {
		return nil, invalid(info, obj.GetName(), errors.New("metadata.resourceVersion: Invalid value: must not be set on create"))
	}
	c := &creation{obj: obj, info: info, generated: obj.GetName() == "" && obj.GetGenerateName() != "", atRest: r.atRest}
	r.prepareForCreate(info, obj)
	pod, _ := obj.(*corev1.Pod)
	var ranges []*corev1.LimitRange
	if pod != nil {
		validation.Default(pod) // LimitRanger fills what the pod's own defaults leave unset
		if ranges, err = r.defaultLimits(ctx, pod); err != nil {
			return nil, err
		}
	}
	if err := admitCreate(obj); err != nil {
		return nil, invalid(info, obj.GetName(), err)
	}
	if err := r.admitNodeWrite(ctx, info, nil, obj); err != nil {
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
		at := r.now()
		c.stored = func() (store.Op, error) { return r.storedEvent(c.info, c.obj, at) }
	}
	return c, nil
}

// storedEvent is the operation creating the Event that records obj's creation at at.
func (r *resources) storedEvent(info *kinds.Info, obj kinds.Object, at time.Time) (store.Op, error) {
	ns := obj.GetNamespace()
	if ns == "" {
		ns = metav1.NamespaceDefault
	}
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: obj.GetName() + "." + strconv.FormatInt(at.UnixNano(), 16),
			UID: uuid.NewUUID(), CreationTimestamp: metav1.NewTime(at)},
		InvolvedObject: corev1.ObjectReference{Kind: info.Kind, APIVersion: info.APIVersion, Namespace: obj.GetNamespace(),
			Name: obj.GetName(), UID: obj.GetUID()},
		Reason: ReasonStored, Message: fmt.Sprintf("%s %s stored", info.Kind, obj.GetName()), Type: corev1.EventTypeNormal,
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

// encode names a generated object afresh and makes its store operation.
func (c *creation) encode() error {
	if c.generated {
		// Kubernetes' suffix: five characters of an alphabet without vowels or confusables.
		c.obj.SetName(c.obj.GetGenerateName() + utilrand.String(5))
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
// and charged again to its quotas on their current state while it loses races for them.
func (c *creation) commit(ctx context.Context, s *store.Store) (*apiv1.Object, error) {
	if c.charge != nil {
		defer c.charge.r.chargeLocks.lock(c.obj.GetNamespace())()
	}
	for attempt, charges := 0, 1; ; attempt++ {
		ops, err := c.ops()
		if err != nil {
			return nil, err
		}
		res, err := s.Txn(ctx, ops...)
		if c.alloc != nil && c.alloc.picked && isAllocationClash(err) && attempt < maxRetries {
			// Another Service took a value first: pick again.
			if err := c.allocate(ctx); err != nil {
				return nil, err
			}
			if err := c.encode(); err != nil {
				return nil, err
			}
			continue
		}
		if c.generated && errors.Is(err, store.ErrAlreadyExists) && !isAllocationClash(err) && attempt < maxRetries {
			if err := c.encode(); err != nil {
				return nil, err
			}
			continue
		}
		if c.charge != nil && errors.Is(err, store.ErrConflict) && charges < maxChargeAttempts {
			charges++
			if err := c.charge.compute(ctx, c.info, true); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, writeError(c.info, c.op.Key.Name, err)
		}
		return storedObject(c.info, c.plain, res.Revision), nil
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
	fail := func(i int, err error) {
		results[i] = &apiv1.CreateBatchResult{}
		results[i].Error, _ = proto.Marshal(status.Convert(err).Proto())
	}
	creations := make([]*creation, len(objs))
	var valid []int
	charged := false // objects charged to quotas are committed each alone, charged in turn
	throttled := 0   // Events refused by the event rate limit so far
	for i, o := range objs {
		c, err := r.newCreation(ctx, o)
		if err == nil {
			if err = r.admitEventWrite(ctx, c.info, c.obj.GetNamespace(), throttled); status.Code(err) == codes.ResourceExhausted {
				throttled++
			}
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
			out, err := creations[i].commit(ctx, r.store)
			if err != nil {
				fail(i, err)
				return
			}
			results[i] = &apiv1.CreateBatchResult{Object: out}
		}()
	}
	wg.Wait()
	return &apiv1.CreateBatchResponse{Results: results}, nil
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
	case *appsv1.Deployment:
		o.Status = appsv1.DeploymentStatus{}
	case *appsv1.ReplicaSet:
		o.Status = appsv1.ReplicaSetStatus{}
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
	case *corev1.Namespace:
		o.Status = corev1.NamespaceStatus{Phase: corev1.NamespaceActive}
		if len(o.Spec.Finalizers) == 0 {
			o.Spec.Finalizers = []corev1.FinalizerName{FinalizerNamespace}
		}
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
	o, err := kinds.Wrap(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if err != nil {
		return err
	}
	_, err = r.Create(ctx, &apiv1.CreateRequest{Object: o})
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
	if req.GetName() == "" {
		return nil, badRequest("name is required")
	}
	k := store.Key{Kind: info.Kind, Namespace: namespaceFor(info, req.GetNamespace()), Name: req.GetName()}
	obj, _, err := r.get(ctx, info, k, req.GetStale())
	if err != nil {
		return nil, err
	}
	if err := guard(ctx, obj); err != nil {
		return nil, err
	}
	return wrap(info, obj)
}

// selector builds the store predicate and index choice for label and field selectors.
func selector(info *kinds.Info, labelSel, fieldSel string) (pred func(*store.Object) bool, indexField, indexValue string, err error) {
	ls, err := labels.Parse(labelSel)
	if err != nil {
		return nil, "", "", badRequest("labelSelector: %v", err)
	}
	reqs, err := parseFieldSelector(fieldSel, selectable(info.Kind))
	if err != nil {
		return nil, "", "", badRequest("fieldSelector: %v", err)
	}
	for _, f := range indexedFields[info.Kind] {
		if v, ok := fieldEquals(reqs, f); ok {
			indexField, indexValue = f, v
			break
		}
	}
	if ls.Empty() && len(reqs) == 0 {
		return nil, indexField, indexValue, nil
	}
	return func(o *store.Object) bool {
		if !ls.Matches(labels.Set(o.Labels)) {
			return false
		}
		for _, req := range reqs {
			if (fieldValue(o, req.Field) == req.Value) == (req.Operator == selection.NotEquals) {
				return false
			}
		}
		return true
	}, indexField, indexValue, nil
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
	pred, field, value, err := selector(info, req.GetLabelSelector(), req.GetFieldSelector())
	if err != nil {
		return nil, err
	}
	ns := ""
	if info.Namespaced {
		ns = req.GetNamespace()
	}
	objs, rev, err := r.store.List(ctx, info.Kind, store.ListOptions{
		Stale: req.GetStale(), Namespace: ns, IndexField: field, IndexValue: value, Predicate: pred,
	})
	if err != nil {
		return nil, storeError(info, "", err)
	}
	out := &apiv1.ListResponse{Items: make([]*apiv1.Object, 0, len(objs)), ResourceVersion: strconv.FormatInt(rev, 10)}
	for i := range objs {
		value, err := r.atRest.open(info, objs[i].Key, objs[i].Value)
		if err != nil {
			return nil, storeError(info, objs[i].Name, err)
		}
		out.Items = append(out.Items, storedObject(info, value, objs[i].ModRevision))
	}
	return out, nil
}

// update is the read-modify-write loop shared by Update, UpdateStatus, Delete and Bind:
// mutate builds the next state from the current one (or returns a terminal error); the
// write is a compare-and-swap on the current revision. Without a caller precondition
// (wantRV 0), a lost race is retried on the new state. A dry run (dryRun) stops before
// the write and returns what it would have written, with the current resourceVersion.
func (r *resources) update(ctx context.Context, info *kinds.Info, k store.Key, wantRV int64, dryRun bool,
	mutate func(cur kinds.Object, curRec *store.Object) (next kinds.Object, err error)) (kinds.Object, error) {
	for attempt := 0; ; attempt++ {
		cur, rec, err := r.get(ctx, info, k, false)
		if err != nil {
			return nil, err
		}
		if err := guard(ctx, cur); err != nil {
			return nil, err // checked on the revision the write compares against
		}
		if wantRV != 0 && wantRV != rec.ModRevision {
			return nil, conflict(info, k.Name, rec.ModRevision, "the object has been modified; please apply your changes to the latest version and try again")
		}
		next, err := mutate(cur, rec)
		if err != nil {
			return nil, err
		}
		side, err := r.sideOps(ctx, cur, next)
		if err != nil {
			return nil, err
		}
		op, changed, err := r.writeOp(info, k, rec, next)
		if err != nil {
			return nil, err
		}
		if !changed {
			return cur, nil // nothing changes: no write, no new resourceVersion
		}
		if dryRun {
			next.SetResourceVersion(cur.GetResourceVersion())
			return next, nil
		}
		res, err := r.store.Txn(ctx, append([]store.Op{op}, side.ops...)...)
		if (errors.Is(err, store.ErrConflict) && wantRV == 0 || side.picked && isAllocationClash(err)) && attempt < maxRetries {
			continue
		}
		if err != nil {
			return nil, writeError(info, k.Name, err)
		}
		next.SetResourceVersion(strconv.FormatInt(res.Revision, 10))
		return next, nil
	}
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
	obj, info, err := unwrap(req.GetObject())
	if err != nil {
		return nil, err
	}
	wantRV, err := parseRV(info, obj.GetName(), obj.GetResourceVersion())
	if err != nil {
		return nil, err
	}
	if !req.GetDryRun() {
		if err := r.admitEventWrite(ctx, info, keyOf(info, obj).Namespace, 0); err != nil {
			return nil, err
		}
	}
	out, err := r.update(ctx, info, keyOf(info, obj), wantRV, req.GetDryRun(), func(cur kinds.Object, _ *store.Object) (kinds.Object, error) {
		if obj.GetUID() != "" && obj.GetUID() != cur.GetUID() {
			return nil, conflict(info, obj.GetName(), 0, fmt.Sprintf("Precondition failed: UID in object meta: %s, current UID: %s", obj.GetUID(), cur.GetUID()))
		}
		next := clone(obj)
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
		if svc, ok := next.(*corev1.Service); ok {
			prepareServiceUpdate(cur.(*corev1.Service), svc)
		}
		if info.HasSpec && !kinds.SectionEqual(cur, next, kinds.SpecSection) {
			next.SetGeneration(cur.GetGeneration() + 1)
		}
		if cur.GetDeletionTimestamp() != nil {
			for _, f := range next.GetFinalizers() {
				if !contains(cur.GetFinalizers(), f) {
					return nil, forbidden(info, obj.GetName(), fmt.Sprintf("no new finalizers can be added if the object is being deleted, found new finalizer %q", f))
				}
			}
		}
		if err := admitUpdate(cur, next); err != nil {
			return nil, invalid(info, obj.GetName(), err)
		}
		if err := r.admitNodeWrite(ctx, info, cur, next); err != nil {
			return nil, err
		}
		return next, nil
	})
	if err != nil {
		return nil, err
	}
	return wrap(info, out)
}

func (r *resources) UpdateStatus(ctx context.Context, req *apiv1.UpdateRequest) (*apiv1.Object, error) {
	obj, info, err := unwrap(req.GetObject())
	if err != nil {
		return nil, err
	}
	if !info.HasStatus {
		return nil, badRequest("%s has no status", resourceName(info))
	}
	wantRV, err := parseRV(info, obj.GetName(), obj.GetResourceVersion())
	if err != nil {
		return nil, err
	}
	if !req.GetDryRun() {
		if err := r.admitEventWrite(ctx, info, keyOf(info, obj).Namespace, 0); err != nil {
			return nil, err
		}
	}
	out, err := r.update(ctx, info, keyOf(info, obj), wantRV, req.GetDryRun(), func(cur kinds.Object, _ *store.Object) (kinds.Object, error) {
		if obj.GetUID() != "" && obj.GetUID() != cur.GetUID() {
			return nil, conflict(info, obj.GetName(), 0, fmt.Sprintf("Precondition failed: UID in object meta: %s, current UID: %s", obj.GetUID(), cur.GetUID()))
		}
		next := clone(cur)
		kinds.CopySection(next, obj, kinds.StatusSection)
		if err := admitStatusUpdate(cur, next); err != nil {
			return nil, invalid(info, obj.GetName(), err)
		}
		return next, nil
	})
	if err != nil {
		return nil, err
	}
	return wrap(info, out)
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
	if req.GetName() == "" {
		return nil, badRequest("name is required")
	}
	k := store.Key{Kind: info.Kind, Namespace: namespaceFor(info, req.GetNamespace()), Name: req.GetName()}
	wantRV, err := parseRV(info, k.Name, req.GetPreconditions().GetResourceVersion())
	if err != nil {
		return nil, err
	}
	var addFinalizer string
	switch req.GetPropagationPolicy() {
	case "", "Background":
	case "Foreground":
		addFinalizer = FinalizerForeground
	case "Orphan":
		addFinalizer = FinalizerOrphan
	default:
		return nil, badRequest("propagationPolicy: Unsupported value: %q: supported values: Background, Foreground, Orphan", req.GetPropagationPolicy())
	}
	if req.GracePeriodSeconds != nil && req.GetGracePeriodSeconds() < 0 {
		return nil, badRequest("gracePeriodSeconds: Invalid value: %d: must be >= 0", req.GetGracePeriodSeconds())
	}
	if info.Kind == kinds.Namespace && immortalNamespaces[k.Name] {
		return nil, forbidden(info, k.Name, "this namespace may not be deleted")
	}
	uid := req.GetPreconditions().GetUid()
	out, err := r.update(ctx, info, k, wantRV, req.GetDryRun(), func(cur kinds.Object, rec *store.Object) (kinds.Object, error) {
		if uid != "" && uid != rec.UID {
			return nil, conflict(info, k.Name, 0, fmt.Sprintf("Precondition failed: UID in precondition: %s, UID in object meta: %s", uid, rec.UID))
		}
		return r.markDeleted(cur, addFinalizer, req.GracePeriodSeconds), nil
	})
	if err != nil {
		return nil, err
	}
	return wrap(info, out)
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
	info := kinds.MustLookup(kinds.Pod)
	if req.GetName() == "" || req.GetNodeName() == "" {
		return nil, badRequest("bind: pod name and node name are required")
	}
	if len(utilvalidation.IsDNS1123Subdomain(req.GetNodeName())) > 0 {
		return nil, invalid(info, req.GetName(), fmt.Errorf("target.name: Invalid value: %q: must be a node name", req.GetNodeName()))
	}
	k := store.Key{Kind: kinds.Pod, Namespace: namespaceFor(info, req.GetNamespace()), Name: req.GetName()}
	out, err := r.update(ctx, info, k, 0, false, func(cur kinds.Object, rec *store.Object) (kinds.Object, error) {
		pod := clone(cur).(*corev1.Pod)
		if req.GetUid() != "" && req.GetUid() != rec.UID {
			return nil, conflict(info, k.Name, 0, fmt.Sprintf("Precondition failed: UID in precondition: %s, UID in object meta: %s", req.GetUid(), rec.UID))
		}
		if pod.DeletionTimestamp != nil {
			return nil, statusError(codes.FailedPrecondition, ReasonConflict, nil, "pod %s/%s is being deleted, cannot be assigned to a node", k.Namespace, k.Name)
		}
		if n := pod.Spec.NodeName; n != "" {
			return nil, statusError(codes.FailedPrecondition, ReasonConflict, nil, "pod %s/%s is already assigned to node %q", k.Namespace, k.Name, n)
		}
		pod.Spec.NodeName = req.GetNodeName()
		if pod.Status.Phase == "" {
			pod.Status.Phase = corev1.PodPending
		}
		setPodCondition(&pod.Status, corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(r.now())})
		return pod, nil
	})
	if err != nil {
		return nil, err
	}
	return wrap(info, out)
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

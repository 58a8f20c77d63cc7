package apiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/httpstream/wsstream"

	"github.com/skiffhq/skiff/apiserver/auth"
	"github.com/skiffhq/skiff/kinds"
	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
	"github.com/skiffhq/skiff/store"
)

// Subresources: status (every kind with a status), approval (CertificateSigningRequests: csr.go), scale (the kinds with replicas),
// binding, log, eviction, exec, attach, portforward, ephemeralcontainers and resize (pods), proxy (pods, services,
// nodes: rest_proxy.go), token (serviceaccounts: rest_serviceaccounts.go).

// subresource describes one subresource: the response kind and the verbs it takes.
type subresource struct {
	name  string
	kind  schema.GroupVersionKind // "" Kind: the parent's
	verbs []string
}

// subresourcesOf lists a kind's subresources.
func subresourcesOf(info *kinds.Info) []subresource {
	var out []subresource
	if info.HasStatus {
		out = append(out, subresource{name: "status", verbs: []string{verbGet, verbPatch, verbUpdate}})
	}
	if scalable(info) {
		out = append(out, subresource{name: "scale", kind: autoscalingv1.SchemeGroupVersion.WithKind("Scale"), verbs: []string{verbGet, verbPatch, verbUpdate}})
	}
	if info.Kind == kinds.Pod {
		out = append(out,
			subresource{name: "binding", kind: corev1.SchemeGroupVersion.WithKind("Binding"), verbs: []string{verbCreate}},
			subresource{name: "log", kind: corev1.SchemeGroupVersion.WithKind("Pod"), verbs: []string{verbGet}},
			subresource{name: "eviction", kind: policyv1.SchemeGroupVersion.WithKind("Eviction"), verbs: []string{verbCreate}},
			// rest_podspec.go
			subresource{name: subresourceEphemeralContainers, verbs: []string{verbGet, verbPatch, verbUpdate}},
			subresource{name: subresourceResize, verbs: []string{verbGet, verbPatch, verbUpdate}},
			// rest_streams.go
			subresource{name: "exec", kind: corev1.SchemeGroupVersion.WithKind("PodExecOptions"), verbs: []string{verbCreate, verbGet}},
			subresource{name: "attach", kind: corev1.SchemeGroupVersion.WithKind("PodAttachOptions"), verbs: []string{verbCreate, verbGet}},
			subresource{name: "portforward", kind: corev1.SchemeGroupVersion.WithKind("PodPortForwardOptions"), verbs: []string{verbCreate, verbGet}})
	}
	if info.Kind == kinds.CertificateSigningRequest {
		out = append(out, subresource{name: SubresourceApproval, verbs: []string{verbGet, verbPatch, verbUpdate}})
	}
	if info.Kind == kinds.ServiceAccount {
		out = append(out, subresource{name: auth.SubresourceToken, kind: authenticationv1.SchemeGroupVersion.WithKind("TokenRequest"), verbs: []string{verbCreate}})
	}
	if kind, ok := proxyOptionsKind[info.Kind]; ok {
		out = append(out, subresource{name: auth.SubresourceProxy, kind: corev1.SchemeGroupVersion.WithKind(kind), verbs: proxyVerbs})
	}
	return out
}

// scalable says whether a kind has spec.replicas and the scale subresource.
func scalable(info *kinds.Info) bool {
	if info.Custom != nil {
		return info.Custom.Version.Subresources != nil && info.Custom.Version.Subresources.Scale != nil
	}
	_, ok := scaleFields(info.New())
	return ok
}

func subresourceExists(info *kinds.Info, name string) bool {
	for _, s := range subresourcesOf(info) {
		if s.name == name {
			return true
		}
	}
	return false
}

// subresourceAllows says whether verb may be used on the subresource ("": the object).
func subresourceAllows(info *kinds.Info, name, verb string) bool {
	if name == "" {
		return true
	}
	for _, s := range subresourcesOf(info) {
		if s.name == name {
			for _, v := range s.verbs {
				if v == verb {
					return true
				}
			}
		}
	}
	return false
}

// status serves the status subresource, and a CertificateSigningRequest's approval:
// the object, its status written alone.
func (a *restAPI) status(w http.ResponseWriter, r *http.Request, req *restRequest) {
	// req.info may be served over another kind's storage (rest_versions.go), as the
	// object's own verbs: the registry sees the stored kind.
	ctx, view := r.Context(), req.info
	switch req.verb {
	case verbGet:
		res, err := a.res.getObject(ctx, view.Stored(), req.namespace, req.name, readOptions(r.URL.Query().Get("resourceVersion")))
		res, err = asVersion(view)(res, err)
		a.respond(w, r, http.StatusOK, res, err)
	case verbUpdate:
		obj, opts, ok := a.updateBody(w, r, req)
		if !ok {
			return
		}
		obj, err := convertToStorage(view, obj)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		res, err := asVersion(view)(a.res.replaceStatus(ctx, obj, req.subresource, opts))
		a.respond(w, r, http.StatusOK, res, err)
	case verbPatch:
		a.patch(w, r, req, func(cur, patched kinds.Object) (kinds.Object, error) {
			next, err := a.res.prepareStatusPatch(ctx, view.Stored(), cur, patched, req.subresource)
			if err != nil {
				return nil, err
			}
			return track(ctx, view.Stored(), req.subresource, cur, next)
		})
	}
}

// scaleOf is the Scale of a scalable object.
func scaleOf(obj kinds.Object) (*autoscalingv1.Scale, error) {
	f, ok := scaleFields(obj)
	if !ok {
		return nil, badRequest("%s has no scale", kinds.Of(obj).Plural)
	}
	s := &autoscalingv1.Scale{TypeMeta: metav1.TypeMeta{APIVersion: "autoscaling/v1", Kind: "Scale"},
		ObjectMeta: metav1.ObjectMeta{Name: obj.GetName(), Namespace: obj.GetNamespace(), UID: obj.GetUID(),
			ResourceVersion: obj.GetResourceVersion(), CreationTimestamp: obj.GetCreationTimestamp()},
		Status: autoscalingv1.ScaleStatus{Replicas: f.status()}}
	if n := f.spec(); n != nil {
		s.Spec.Replicas = *n
	}
	s.Status.Selector = f.selector()
	return s, nil
}

// scaleFieldRefs read and write a scalable object's replicas; selector is its pod
// selector as a Scale's status gives it ("" if none or invalid).
type scaleFieldRefs struct {
	spec     func() *int32
	setSpec  func(int32)
	status   func() int32
	selector func() string
}

// scaleFields finds spec.replicas, status.replicas and spec.selector, which Kubernetes'
// scalable kinds (Deployment, ReplicaSet, StatefulSet, ReplicationController) share: a
// LabelSelector, or a ReplicationController's map. A custom resource's are where its
// CRD's scale subresource says.
func scaleFields(obj kinds.Object) (scaleFieldRefs, bool) {
	if c, ok := obj.(*kinds.Custom); ok {
		return customScaleFields(c)
	}
	v := reflect.ValueOf(obj).Elem()
	spec, status := v.FieldByName("Spec"), v.FieldByName("Status")
	if !spec.IsValid() || !status.IsValid() {
		return scaleFieldRefs{}, false
	}
	sr, st, sel := spec.FieldByName("Replicas"), status.FieldByName("Replicas"), spec.FieldByName("Selector")
	if !sr.IsValid() || !st.IsValid() || !sel.IsValid() {
		return scaleFieldRefs{}, false
	}
	out := scaleFieldRefs{}
	specp, ok1 := sr.Addr().Interface().(**int32)
	statusp, ok2 := st.Addr().Interface().(*int32)
	if ok1 && ok2 {
		out.spec = func() *int32 { return *specp }
		out.setSpec = func(n int32) { *specp = &n }
		out.status = func() int32 { return *statusp }
	}
	var ok3 bool
	switch sel := sel.Addr().Interface().(type) {
	case **metav1.LabelSelector:
		ok3 = true
		out.selector = func() string {
			if *sel == nil {
				return ""
			}
			ls, err := metav1.LabelSelectorAsSelector(*sel)
			if err != nil {
				return ""
			}
			return ls.String()
		}
	case *map[string]string:
		ok3 = true
		out.selector = func() string { return labels.SelectorFromSet(*sel).String() }
	}
	return out, ok1 && ok2 && ok3
}

// customScaleFields are a custom resource's replicas at its CRD's specReplicasPath,
// statusReplicasPath and labelSelectorPath (".spec.replicas": Kubernetes allows only
// such paths of field names).
func customScaleFields(c *kinds.Custom) (scaleFieldRefs, bool) {
	in := kinds.Of(c)
	if in.Custom == nil || in.Custom.Version.Subresources == nil || in.Custom.Version.Subresources.Scale == nil {
		return scaleFieldRefs{}, false
	}
	sc := in.Custom.Version.Subresources.Scale
	fields := func(path string) []string { return strings.Split(strings.TrimPrefix(path, "."), ".") }
	num := func(path string) *int32 {
		v, ok, _ := unstructured.NestedFieldNoCopy(c.Content, fields(path)...)
		if !ok {
			return nil
		}
		var n int32
		switch x := v.(type) {
		case int64:
			n = int32(x)
		case float64:
			n = int32(x)
		default:
			return nil
		}
		return &n
	}
	out := scaleFieldRefs{
		spec: func() *int32 { return num(sc.SpecReplicasPath) },
		setSpec: func(n int32) {
			if c.Content == nil {
				c.Content = map[string]any{}
			}
			_ = unstructured.SetNestedField(c.Content, int64(n), fields(sc.SpecReplicasPath)...)
		},
		status: func() int32 {
			if n := num(sc.StatusReplicasPath); n != nil {
				return *n
			}
			return 0
		},
		selector: func() string {
			if sc.LabelSelectorPath == nil {
				return ""
			}
			s, _, _ := unstructured.NestedString(c.Content, fields(*sc.LabelSelectorPath)...)
			return s
		},
	}
	return out, true
}

// scale serves the scale subresource: spec.replicas read and written as a Scale.
func (a *restAPI) scale(w http.ResponseWriter, r *http.Request, req *restRequest) {
	ctx := r.Context()
	reply := func(res result, err error) {
		if err != nil {
			a.fail(w, r, err)
			return
		}
		obj, err := res.object()
		if err != nil {
			a.fail(w, r, err)
			return
		}
		s, err := scaleOf(obj)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, s)
	}
	switch req.verb {
	case verbGet:
		reply(a.res.getObject(ctx, req.info, req.namespace, req.name, readOptions(r.URL.Query().Get("resourceVersion"))))
	case verbUpdate:
		opts, err := writeOptionsOf(r.URL.Query())
		if err != nil {
			a.fail(w, r, err)
			return
		}
		var s autoscalingv1.Scale
		if !a.readInto(w, r, &s, "a Scale") {
			return
		}
		if s.Name != req.name {
			a.fail(w, r, badRequest("the name of the object (%s) does not match the name on the URL (%s)", s.Name, req.name))
			return
		}
		reply(a.res.setReplicas(ctx, req.info, req.namespace, req.name, s.ResourceVersion, opts, false, func(*autoscalingv1.Scale) (*autoscalingv1.Scale, error) { return &s, nil }))
	case verbPatch:
		opts, pt, patch, err := a.patchRequest(w, r)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		if pt == types.ApplyYAMLPatchType {
			applied, err := appliedConfiguration(req, scaleGVK, patch)
			if err != nil {
				a.fail(w, r, err)
				return
			}
			reply(a.res.applyScale(ctx, req.info, req.namespace, req.name, opts, applied))
			return
		}
		reply(a.res.setReplicas(ctx, req.info, req.namespace, req.name, "", opts.writeOptions, false, func(cur *autoscalingv1.Scale) (*autoscalingv1.Scale, error) {
			js, err := json.Marshal(cur)
			if err != nil {
				return nil, err
			}
			out, err := kinds.PatchJSON(js, patch, pt, &autoscalingv1.Scale{})
			if err != nil {
				return nil, patchError(req.info, req.name, err)
			}
			var s autoscalingv1.Scale
			if err := json.Unmarshal(out, &s); err != nil {
				return nil, badRequest("the patched Scale: %v", err)
			}
			return &s, nil
		}))
	}
}

// applyScale serves a server-side apply to the scale subresource, as Kubernetes' scale
// handler does: the applied Scale is merged by the Scale's field manager into the
// current Scale, whose managed fields are the parent's that own its replicas, and the
// result's are mapped back onto the parent (its spec.replicas, or a custom resource's
// specReplicasPath). The object must exist.
func (r *resources) applyScale(ctx context.Context, info *kinds.Info, ns, name string, opts patchOptions, applied *unstructured.Unstructured) (result, error) {
	fm, err := scaleFieldManager()
	if err != nil {
		return result{}, statusError(codes.Internal, "", nil, "%v", err)
	}
	return r.setReplicas(ctx, info, ns, name, "", opts.writeOptions, true, func(cur *autoscalingv1.Scale) (*autoscalingv1.Scale, error) {
		out, err := fm.Apply(cur, applied, opts.fieldManager, opts.force)
		if err != nil {
			return nil, fieldManagerError(info, name, err)
		}
		s, ok := out.(*autoscalingv1.Scale)
		if !ok {
			return nil, statusError(codes.Internal, "", nil, "the field manager made a %T", out)
		}
		return s, nil
	})
}

// setReplicas writes the replicas of a scale that change computes from the current one,
// whose managedFields are the parent's that own the replicas (scaleHandler). Unless
// change applied (applied), its write is tracked on the Scale as Kubernetes tracks
// it (an Update entry with subresource scale), once the parent has managedFields; the
// Scale's entries are mapped back onto the parent's.
func (r *resources) setReplicas(ctx context.Context, info *kinds.Info, ns, name, rv string, opts writeOptions, applied bool,
	change func(cur *autoscalingv1.Scale) (*autoscalingv1.Scale, error)) (result, error) {
	wantRV, err := parseRV(info, name, rv)
	if err != nil {
		return result{}, err
	}
	k := store.Key{Kind: info.Kind, Namespace: namespaceFor(info, ns), Name: name}
	opts.subresource = "scale"
	// The admission's answer for the revision last read: update reads again
	// (linearizably, or after losing a race), and the same Scale is not sent twice.
	memoRev := int64(-1)
	var memo *autoscalingv1.Scale
	var memoErr error
	admit := func(rev int64, next, old *autoscalingv1.Scale) (*autoscalingv1.Scale, error) {
		if rev != memoRev {
			admitted, err := r.admitSubresource(ctx, info, "scale", scaleGVK, admissionv1.Update, next, old, opts.dryRun, &metav1.UpdateOptions{})
			memoRev, memo, memoErr = rev, nil, err
			if err == nil {
				memo = admitted.(*autoscalingv1.Scale)
			}
		}
		if memoErr != nil {
			return nil, memoErr
		}
		return memo.DeepCopy(), nil
	}
	return r.update(ctx, info, k, wantRV, opts, func(cur kinds.Object, rec *store.Object) (kinds.Object, error) {
		s, err := scaleOf(cur)
		if err != nil {
			return nil, err
		}
		h := scaleHandler(info, cur)
		if s.ManagedFields, err = h.ToSubresource(); err != nil {
			return nil, statusError(codes.Internal, "", nil, "the managed fields of %s %q: %v", info.Kind, name, err)
		}
		next, err := change(s.DeepCopy())
		if err == nil {
			err = validateScale(next)
		}
		if err != nil {
			return nil, err
		}
		// The admission of the Scale, as Kubernetes' scale subresource runs it.
		if next, err = admit(rec.ModRevision, next, s); err == nil {
			err = validateScale(next)
		}
		if err != nil {
			return nil, err
		}
		tracked := applied || len(cur.GetManagedFields()) > 0
		if tracked && !applied {
			if next, err = trackScale(s, next, managerOf(ctx)); err != nil {
				return nil, fieldManagerError(info, name, err)
			}
		}
		obj := clone(cur)
		f, _ := scaleFields(obj)
		f.setSpec(next.Spec.Replicas)
		if tracked {
			entries, err := h.ToParent(next.ManagedFields)
			if err != nil {
				return nil, statusError(codes.Internal, "", nil, "the managed fields of %s %q: %v", info.Kind, name, err)
			}
			obj.SetManagedFields(entries)
		}
		return r.nextState(ctx, info, cur, obj, true)
	})
}

// validateScale checks a Scale written, as Kubernetes' ValidateScale.
func validateScale(s *autoscalingv1.Scale) error {
	if s.Spec.Replicas < 0 {
		return statusError(codes.InvalidArgument, ReasonInvalid, nil, "Scale.autoscaling %q is invalid: spec.replicas: Invalid value: %d: must be greater than or equal to 0", s.Name, s.Spec.Replicas)
	}
	return nil
}

// trackScale records the write of next over cur, Scales, for manager.
func trackScale(cur, next *autoscalingv1.Scale, manager string) (*autoscalingv1.Scale, error) {
	fm, err := scaleFieldManager()
	if err != nil {
		return nil, err
	}
	out, err := fm.Update(cur, next, manager)
	if err != nil {
		return nil, err
	}
	s, ok := out.(*autoscalingv1.Scale)
	if !ok {
		return nil, fmt.Errorf("the field manager made a %T", out)
	}
	return s, nil
}

// binding serves pods/binding: a scheduler's Binding, as the gRPC Bind.
func (a *restAPI) binding(w http.ResponseWriter, r *http.Request, req *restRequest) {
	opts, err := writeOptionsOf(r.URL.Query())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var b corev1.Binding
	if !a.readInto(w, r, &b, "a Binding") {
		return
	}
	if b.Name != "" && b.Name != req.name {
		a.fail(w, r, badRequest("the name of the object (%s) does not match the name on the URL (%s)", b.Name, req.name))
		return
	}
	if b.Target.Kind != "" && b.Target.Kind != kinds.Node {
		a.fail(w, r, invalid(req.info, req.name, fmt.Errorf("target.kind: Unsupported value: %q: supported values: \"Node\"", b.Target.Kind)))
		return
	}
	if _, err := a.res.bind(r.Context(), req.namespace, req.name, string(b.UID), b.Target.Name, opts); err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusSuccess, Code: http.StatusCreated})
}

// eviction serves pods/eviction: an Eviction, as the gRPC Evict, which honours the
// pod's PodDisruptionBudget (429 TooManyRequests when it allows no disruption now).
func (a *restAPI) eviction(w http.ResponseWriter, r *http.Request, req *restRequest) {
	var ev policyv1.Eviction
	if !a.readInto(w, r, &ev, "an Eviction") {
		return
	}
	if ev.Name != "" && ev.Name != req.name {
		a.fail(w, r, badRequest("name in URL does not match name in Eviction object"))
		return
	}
	er := &apiv1.EvictRequest{Namespace: req.namespace, Name: req.name}
	dryRun := r.URL.Query()["dryRun"]
	if do := ev.DeleteOptions; do != nil {
		er.GracePeriodSeconds = do.GracePeriodSeconds
		dryRun = append(dryRun, do.DryRun...)
		if p := do.Preconditions; p != nil {
			er.Preconditions = &apiv1.Preconditions{}
			if p.ResourceVersion != nil {
				er.Preconditions.ResourceVersion = *p.ResourceVersion
			}
			if p.UID != nil {
				er.Preconditions.Uid = string(*p.UID)
			}
		}
	}
	for _, v := range dryRun {
		if v != metav1.DryRunAll {
			a.fail(w, r, statusError(codes.InvalidArgument, ReasonInvalid, nil, "dryRun: Unsupported value: %q: supported values: %q", v, metav1.DryRunAll))
			return
		}
		er.DryRun = true
	}
	if _, err := a.res.evict(r.Context(), er); err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusSuccess, Code: http.StatusCreated})
}

// podLog serves pods/log: the container's output as text, streamed while following.
func (a *restAPI) podLog(w http.ResponseWriter, r *http.Request, req *restRequest) {
	q := r.URL.Query()
	lr, err := logsRequest(q, req.namespace, req.name, q.Get("container"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.writeLogs(w, r, lr)
}

// logsRequest reads PodLogOptions from a query, as pods/log and a kubelet's
// containerLogs take them.
func logsRequest(q url.Values, namespace, name, container string) (*apiv1.PodLogsRequest, error) {
	lr := &apiv1.PodLogsRequest{Namespace: namespace, Name: name, Container: container}
	lr.Follow, _ = strconv.ParseBool(q.Get("follow"))
	if v := q.Get("tailLines"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return nil, badRequest("tailLines: Invalid value: %q: must be a non-negative integer", v)
		}
		lr.TailLines = &n
	}
	lr.Previous, _ = strconv.ParseBool(q.Get("previous"))
	lr.Timestamps, _ = strconv.ParseBool(q.Get("timestamps"))
	for _, p := range []struct {
		name string
		to   **int64
	}{{"sinceSeconds", &lr.SinceSeconds}, {"limitBytes", &lr.LimitBytes}} {
		if v := q.Get(p.name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, badRequest("%s: Invalid value: %q: must be an integer", p.name, v)
			}
			*p.to = &n
		}
	}
	if v := q.Get("sinceTime"); v != "" {
		// RFC 3339, as metav1.Time reads a query parameter.
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return nil, badRequest("sinceTime: Invalid value: %q: must be an RFC 3339 time", v)
		}
		lr.SinceTime = timestamppb.New(t)
	}
	return lr, nil
}

// writeLogs answers with a container's output as text, streamed while following, or
// over a WebSocket when the request asks for one (writeLogsWebSocket).
func (a *restAPI) writeLogs(w http.ResponseWriter, r *http.Request, lr *apiv1.PodLogsRequest) {
	if wsstream.IsWebSocketRequest(r) {
		a.writeLogsWebSocket(w, r, lr)
		return
	}
	started := false
	err := a.pods.logs(r.Context(), lr, func(data []byte) error {
		if !started {
			started = true
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusOK)
		}
		if _, err := w.Write(data); err != nil {
			return err
		}
		if f, ok := w.(http.Flusher); ok && lr.Follow {
			f.Flush()
		}
		return nil
	})
	switch {
	case err != nil && !started:
		a.fail(w, r, err)
	case !started:
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusOK)
	}
}

// writeLogsWebSocket streams a container's output over a WebSocket, as Kubernetes' API
// server answers a WebSocket request for pods/log (wsstream's Reader: subprotocols
// binary.k8s.io, or none, for binary messages and base64.binary.k8s.io for base64 text
// ones; an empty message first; the socket closed at the end of the output). An error
// before the first output (no such pod or container, a kubelet unreachable) is the
// response, a Status, as without the upgrade.
func (a *restAPI) writeLogsWebSocket(w http.ResponseWriter, r *http.Request, lr *apiv1.PodLogsRequest) {
	protocols := wsstream.NewDefaultReaderProtocols()
	// The Reader waits forever for a socket its handshake refused: refuse first.
	if offered := websocketProtocols(r); !slices.ContainsFunc(offered, func(p string) bool { _, ok := protocols[p]; return ok }) {
		a.fail(w, r, badRequest("requested protocol(s) are not supported: %v; supports %v", offered, slices.Sorted(maps.Keys(protocols))))
		return
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	out, in := io.Pipe()
	defer out.Close() // a client gone: the writer's next write fails
	first := make(chan error, 1)
	wg.Go(func() {
		sent := false
		err := a.pods.logs(ctx, lr, func(data []byte) error {
			if !sent {
				sent = true
				first <- nil
			}
			_, err := in.Write(data)
			return err
		})
		if !sent {
			first <- err
		}
		in.CloseWithError(err)
	})
	if err := <-first; err != nil {
		a.fail(w, r, err)
		return
	}
	if err := wsstream.NewReader(out, true, protocols).Copy(w, r); err != nil {
		a.log.Debug("pod logs over a WebSocket ended", "pod", lr.GetNamespace()+"/"+lr.GetName(), "error", err)
	}
}

// websocketProtocols are the subprotocols a WebSocket request offers, or the one
// without a name when it offers none (as x/net/websocket's handshake reads them).
func websocketProtocols(r *http.Request) []string {
	var out []string
	for _, h := range r.Header.Values("Sec-WebSocket-Protocol") {
		for p := range strings.SplitSeq(h, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	if len(out) == 0 {
		return []string{""}
	}
	return out
}

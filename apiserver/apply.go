package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	"github.com/skiffhq/skiff/apiserver/openapi"
	"github.com/skiffhq/skiff/apiserver/validation"
	"github.com/skiffhq/skiff/kinds"
)

// Server-side apply and the field ownership it rests on, by apimachinery's field manager
// (k8s.io/apimachinery/pkg/util/managedfields over sigs.k8s.io/structured-merge-diff),
// the code kube-apiserver runs, with the type converter of Skiff's OpenAPI schemas.
//
// An apply (PATCH application/apply-patch+yaml, fieldManager required) merges the applied
// configuration into the object, or creates it, records in metadata.managedFields which
// manager owns which fields, and refuses with 409 Conflict, one cause per field, to take
// a field another manager set to another value, unless force=true.
//
// Other writes (update, patch, scale, status) are tracked, as Kubernetes tracks them
// (operation Update, the manager being fieldManager or the client's user agent), once an
// object has managedFields, that is once something applied to it: an object no one
// applies to costs no tracking on the components' writes. The first apply to an object
// without managedFields gives its existing fields to "before-first-apply", as Kubernetes
// does for objects created before it tracked fields.

// fieldManagers holds a field manager per kind and subresource, built on first use.
var fieldManagers struct {
	sync.Mutex
	m map[string]*managedfields.FieldManager
}

// applyScheme knows the served kinds' Go types, for the field manager's conversions and
// new objects.
var applyScheme = sync.OnceValue(func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, in := range kinds.Served() {
		if in.Custom != nil {
			continue // a CRD's kind: applied as unstructured (customFieldManager)
		}
		gv := schema.GroupVersion{Group: in.Group, Version: in.Version}
		s.AddKnownTypeWithName(in.GroupVersionKind(), in.New())
		metav1.AddToGroupVersion(s, gv)
	}
	// The subresources' objects, which mutating admission policies patch.
	for gvk, obj := range map[schema.GroupVersionKind]runtime.Object{scaleGVK: &autoscalingv1.Scale{},
		corev1.SchemeGroupVersion.WithKind("Binding"): &corev1.Binding{}, policyv1.SchemeGroupVersion.WithKind("Eviction"): &policyv1.Eviction{}} {
		s.AddKnownTypeWithName(gvk, obj)
		metav1.AddToGroupVersion(s, gvk.GroupVersion())
	}
	return s
})

// scaleGVK is the kind the scale subresource reads and writes.
var scaleGVK = autoscalingv1.SchemeGroupVersion.WithKind("Scale")

// scaleFieldManager is the field manager of the scale subresource: its writes are
// tracked, and applies merged, on the autoscaling/v1 Scale, whose entries a
// managedfields.ScaleHandler maps from and back to the parent's (scaleHandler).
var scaleFieldManager = sync.OnceValues(func() (*managedfields.FieldManager, error) {
	tc, err := openapi.TypeConverter()
	if err != nil {
		return nil, err
	}
	s := applyScheme()
	fm, err := managedfields.NewDefaultFieldManager(tc, s, defaulter{}, s, scaleGVK, scaleGVK.GroupVersion(), "scale", nil)
	if err != nil {
		return nil, fmt.Errorf("field manager of Scale: %w", err)
	}
	return fm, nil
})

// scaleHandler maps the managed fields of parent, an object of info's kind, to its
// Scale's and back: spec.replicas of a built-in kind, a custom resource's at its CRD's
// specReplicasPath in every version that has a scale subresource (Kubernetes' mappings).
func scaleHandler(info *kinds.Info, parent kinds.Object) *managedfields.ScaleHandler {
	m := managedfields.ResourcePathMappings{}
	if info.Custom == nil {
		m[info.APIVersion] = fieldpath.MakePathOrDie("spec", "replicas")
	} else {
		for _, in := range kinds.CustomKinds(info.Custom.CRD.Name) {
			var path fieldpath.Path // nil: a version without scale
			if sr := in.Custom.Version.Subresources; sr != nil && sr.Scale != nil {
				for _, f := range strings.Split(strings.TrimPrefix(sr.Scale.SpecReplicasPath, "."), ".") {
					path = append(path, fieldpath.PathElement{FieldName: &f})
				}
			}
			m[in.APIVersion] = path
		}
	}
	return managedfields.NewScaleHandler(parent.GetManagedFields(), schema.GroupVersion{Group: info.Group, Version: info.Version}, m)
}

// defaulter applies Skiff's defaults, as the field manager compares defaulted objects.
type defaulter struct{}

func (defaulter) Default(obj runtime.Object) {
	if o, ok := obj.(kinds.Object); ok {
		validation.Default(o)
	}
}

// fieldManager is the field manager of info's kind and subresource ("" or "status").
func fieldManager(info *kinds.Info, subresource string) (*managedfields.FieldManager, error) {
	fieldManagers.Lock()
	defer fieldManagers.Unlock()
	key := info.Kind + "/" + subresource
	if info.Custom != nil {
		// A CRD's: made again when the CRD changes (its schema, its versions).
		crd := info.Custom.CRD
		prefix := "custom/" + crd.Name + "/"
		key = prefix + crd.ResourceVersion + "/" + info.Version + "/" + subresource
		for k := range fieldManagers.m {
			if strings.HasPrefix(k, prefix) && !strings.HasPrefix(k, prefix+crd.ResourceVersion+"/") {
				delete(fieldManagers.m, k)
			}
		}
	}
	if fm := fieldManagers.m[key]; fm != nil {
		return fm, nil
	}
	var fm *managedfields.FieldManager
	var err error
	if info.Custom != nil {
		fm, err = customFieldManager(info, subresource, resetFields(info, subresource))
	} else {
		fm, err = builtinFieldManager(info, subresource, resetFields(info, subresource))
	}
	if err != nil {
		return nil, err
	}
	if fieldManagers.m == nil {
		fieldManagers.m = map[string]*managedfields.FieldManager{}
	}
	fieldManagers.m[key] = fm
	return fm, nil
}

// resetFields are the fields a write through subresource does not set (Kubernetes'
// reset fields): the main resource's writes keep the status, status writes the spec
// (and a Deployment's labels, which prepareStatusPatch keeps, as Kubernetes does).
func resetFields(info *kinds.Info, subresource string) map[fieldpath.APIVersion]fieldpath.Filter {
	reset := map[fieldpath.APIVersion]fieldpath.Filter{}
	switch {
	case (subresource == "" || subresource == subresourceEphemeralContainers || subresource == subresourceResize) && info.HasStatus:
		reset[fieldpath.APIVersion(info.APIVersion)] = fieldpath.NewExcludeSetFilter(fieldpath.NewSet(fieldpath.MakePathOrDie("status")))
	case subresource == "status" && info.HasSpec:
		kept := fieldpath.NewSet(fieldpath.MakePathOrDie("spec"))
		if info.Kind == kinds.Deployment {
			kept.Insert(fieldpath.MakePathOrDie("metadata", "labels"))
		}
		reset[fieldpath.APIVersion(info.APIVersion)] = fieldpath.NewExcludeSetFilter(kept)
	}
	return reset
}

// builtinFieldManager is the field manager of a built-in kind, over its Go type.
func builtinFieldManager(info *kinds.Info, subresource string, reset map[fieldpath.APIVersion]fieldpath.Filter) (*managedfields.FieldManager, error) {
	tc, err := openapi.TypeConverter()
	if err != nil {
		return nil, err
	}
	gvk := info.GroupVersionKind()
	s := applyScheme()
	fm, err := managedfields.NewDefaultFieldManager(tc, s, defaulter{}, s, gvk, gvk.GroupVersion(), subresource, reset)
	if err != nil {
		return nil, fmt.Errorf("field manager of %s: %w", info.Kind, err)
	}
	return fm, nil
}

// customFieldManager is the field manager of a custom kind, as kube-apiserver's CRD
// handler makes it: its objects are unstructured, typed by the CRD's schemas (every
// version's), converted between versions as the CRD converts them (customConvertor:
// by their apiVersion alone with conversion None, through the webhook otherwise), with
// the storage version as the hub, and defaulted by the version's schema.
func customFieldManager(info *kinds.Info, subresource string, reset map[fieldpath.APIVersion]fieldpath.Filter) (*managedfields.FieldManager, error) {
	crd := info.Custom.CRD
	tc, err := openapi.CRDTypeConverter(crd)
	if err != nil {
		return nil, err
	}
	gvk := info.GroupVersionKind()
	hub := schema.GroupVersion{Group: info.Group, Version: info.Custom.StorageVersion}
	fm, err := managedfields.NewDefaultCRDFieldManager(tc, customConvertor{}, customDefaulter{crd: crd.Name}, customCreater{}, gvk, hub, subresource, reset)
	if err != nil {
		return nil, fmt.Errorf("field manager of %s: %w", info.Kind, err)
	}
	return fm, nil
}

// customConvertor converts a custom resource between its CRD's versions as its CRD
// says (kinds.Info.ConvertCustom): with conversion None only the apiVersion changes;
// with a webhook, the webhook converts it. The field manager converts objects to the
// versions of the managers in managedFields, so that fields applied in one version are
// owned, and conflict, in every other (Kubernetes' CRD field manager takes the CRD's
// converter alike).
type customConvertor struct{}

func (customConvertor) Convert(in, out, context any) error {
	return fmt.Errorf("convert %T to %T: not supported for custom resources", in, out)
}

func (customConvertor) ConvertToVersion(in runtime.Object, gv runtime.GroupVersioner) (runtime.Object, error) {
	u, ok := in.(*unstructured.Unstructured)
	if !ok {
		return nil, fmt.Errorf("convert a %T: not a custom resource", in)
	}
	target, ok := gv.KindForGroupVersionKinds([]schema.GroupVersionKind{u.GroupVersionKind()})
	if !ok {
		return nil, fmt.Errorf("convert %s to %v: no such version", u.GroupVersionKind(), gv)
	}
	from, fromOK := kinds.ForGroupVersionKind(u.GetAPIVersion(), u.GetKind())
	to, toOK := kinds.ForGroupVersionKind(target.GroupVersion().String(), target.Kind)
	if target == u.GroupVersionKind() || !fromOK || !toOK || from.Custom == nil || to.Custom == nil {
		out := u.DeepCopy()
		out.SetGroupVersionKind(target)
		return out, nil
	}
	js, err := u.MarshalJSON()
	if err != nil {
		return nil, err
	}
	c := from.New().(*kinds.Custom)
	if err := c.UnmarshalJSON(js); err != nil {
		return nil, err
	}
	converted, err := to.ConvertCustom([]*kinds.Custom{c})
	if err != nil {
		return nil, err
	}
	if js, err = json.Marshal(converted[0]); err != nil {
		return nil, err
	}
	out := &unstructured.Unstructured{}
	if err := out.UnmarshalJSON(js); err != nil {
		return nil, err
	}
	return out, nil
}

func (customConvertor) ConvertFieldLabel(_ schema.GroupVersionKind, label, value string) (string, string, error) {
	return label, value, nil
}

// customDefaulter sets the defaults of a custom resource's version's schema.
type customDefaulter struct{ crd string }

func (d customDefaulter) Default(obj runtime.Object) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return
	}
	for _, in := range kinds.CustomKinds(d.crd) {
		if in.Version == u.GroupVersionKind().Version {
			if s, err := validation.SchemaOf(in.Custom); err == nil {
				s.DefaultContent(u.Object)
			}
			return
		}
	}
}

// customCreater makes empty custom resources.
type customCreater struct{}

func (customCreater) New(gvk schema.GroupVersionKind) (runtime.Object, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	return u, nil
}

// managedObject is obj as its field manager takes it: a custom resource unstructured
// (as Kubernetes holds them), a built-in kind's as it is.
func managedObject(obj kinds.Object) (runtime.Object, error) {
	c, ok := obj.(*kinds.Custom)
	if !ok {
		return obj, nil
	}
	js, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(js); err != nil {
		return nil, err
	}
	return u, nil
}

// fromManaged is the field manager's result as info's object.
func fromManaged(info *kinds.Info, out runtime.Object) (kinds.Object, error) {
	u, ok := out.(*unstructured.Unstructured)
	if !ok {
		obj, ok := out.(kinds.Object)
		if !ok {
			return nil, statusError(codes.Internal, "", nil, "the field manager made a %T", out)
		}
		return obj, nil
	}
	js, err := u.MarshalJSON()
	if err != nil {
		return nil, err
	}
	obj := info.New()
	if err := json.Unmarshal(js, obj); err != nil {
		return nil, statusError(codes.Internal, "", nil, "the field manager's %s: %v", info.Kind, err)
	}
	return obj, nil
}

type managerKey struct{}

// withManager records in ctx the field manager a request's writes are tracked under.
func withManager(ctx context.Context, manager string) context.Context {
	return context.WithValue(ctx, managerKey{}, manager)
}

// managerOf is the request's field manager: the one it named, else its user agent's
// product ("kubectl", "skiffctl"), as Kubernetes defaults it.
func managerOf(ctx context.Context) string {
	if m, ok := ctx.Value(managerKey{}).(string); ok && m != "" {
		return m
	}
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if ua := md.Get("user-agent"); len(ua) > 0 {
			return userAgentManager(ua[0])
		}
	}
	return "unknown"
}

// userAgentManager is the manager Kubernetes names after a user agent: its first
// product, without the version ("kubectl" of "kubectl/v1.37.2 (linux/amd64)").
func userAgentManager(ua string) string {
	ua, _, _ = strings.Cut(ua, " ")
	ua, _, _ = strings.Cut(ua, "/")
	if len(ua) > 128 {
		ua = ua[:128]
	}
	if ua == "" {
		return "unknown"
	}
	return ua
}

// track records a write of next over cur (through subresource) in next's managedFields,
// once cur has them (something applied to it).
func track(ctx context.Context, info *kinds.Info, subresource string, cur, next kinds.Object) (kinds.Object, error) {
	if len(cur.GetManagedFields()) == 0 {
		next.SetManagedFields(nil) // a client does not start tracking by sending some
		return next, nil
	}
	fm, err := fieldManager(info, subresource)
	if err != nil {
		return nil, statusError(codes.Internal, "", nil, "%v", err)
	}
	mcur, err := managedObject(cur)
	if err != nil {
		return nil, statusError(codes.Internal, "", nil, "%v", err)
	}
	mnext, err := managedObject(next)
	if err != nil {
		return nil, statusError(codes.Internal, "", nil, "%v", err)
	}
	out, err := fm.Update(mcur, mnext, managerOf(ctx))
	if err != nil {
		return nil, fieldManagerError(info, next.GetName(), err)
	}
	return fromManaged(info, out)
}

// apply merges applied, a configuration of info's kind, into cur (an empty object when
// there is none yet) for manager, applying through subresource ("" or "status"): the
// fields subresource does not write (resetFields) are neither owned nor in conflict.
func apply(info *kinds.Info, subresource string, cur kinds.Object, applied *unstructured.Unstructured, manager string, force bool) (kinds.Object, error) {
	fm, err := fieldManager(info, subresource)
	if err != nil {
		return nil, statusError(codes.Internal, "", nil, "%v", err)
	}
	mcur, err := managedObject(cur)
	if err != nil {
		return nil, statusError(codes.Internal, "", nil, "%v", err)
	}
	out, err := fm.Apply(mcur, applied, manager, force)
	if err != nil {
		return nil, fieldManagerError(info, applied.GetName(), err)
	}
	return fromManaged(info, out)
}

// fieldManagerError is the field manager's error in Skiff's class: its conflicts are
// Kubernetes' 409 with a cause per field (FieldManagerConflict).
func fieldManagerError(info *kinds.Info, name string, err error) error {
	var se apierrors.APIStatus
	if errors.As(err, &se) {
		st := se.Status()
		code := map[metav1.StatusReason]codes.Code{metav1.StatusReasonConflict: codes.Aborted,
			metav1.StatusReasonInvalid: codes.InvalidArgument, metav1.StatusReasonBadRequest: codes.InvalidArgument}[st.Reason]
		if code == codes.OK {
			code = codes.Internal
		}
		e := statusError(code, string(st.Reason), nil, "%s", st.Message)
		e.status.Code, e.status.Details = st.Code, st.Details
		if e.status.Details == nil {
			e.about(info, name)
		}
		return e
	}
	return statusError(codes.InvalidArgument, ReasonInvalid, nil, "%v", err).about(info, name)
}

package apiserver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/apis/flowcontrol/bootstrap"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"

	"github.com/skiffhq/skiff/apiserver/validation"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/store"
)

// The objects Kubernetes' API server keeps for itself, and Skiff's with it: created at
// the start, restored when deleted or changed, by the leader every BuiltinsInterval.
//
//   - The mandatory API Priority and Fairness configuration: the FlowSchemas and
//     PriorityLevelConfigurations "exempt" and "catch-all", with their fixed specs and
//     the annotation apf.kubernetes.io/autoupdate-spec=true (Kubernetes' APF
//     bootstrap ensurer, which runs every minute). Kubernetes' suggested configuration
//     (global-default, workload-low, ...) is not created. Skiff's fair queuing
//     (apiserver/flowcontrol) does not read these objects: its own levels decide.
//   - The ServiceCIDR "kubernetes": the Services' range (--service-cidr), Ready once it
//     matches (Kubernetes' default ServiceCIDR controller, every 10 s). A range that does
//     not match is left as it is, as Kubernetes leaves it.
//   - A local APIService (spec.service nil, Available) for each built-in group and version
//     the API server serves, named version.group, with kube-apiserver's priorities and
//     the label kube-aggregator.kubernetes.io/automanaged=onstart (kube-aggregator's
//     autoregister controller). Custom resources' groups get none. APIServices naming
//     a Service are the aggregator's (aggregator.go).

// DefaultServiceCIDRName is the ServiceCIDR of the Services' range.
const DefaultServiceCIDRName = "kubernetes"

// Kubernetes' marks of the APIServices its aggregator registers itself.
const (
	apiServiceManagedLabel   = "kube-aggregator.kubernetes.io/automanaged"
	apiServiceManagedOnStart = "onstart"
)

// apiServicePriority is an APIService's groupPriorityMinimum and versionPriority.
type apiServicePriority struct{ group, version int32 }

// apiServicePriorities are kube-apiserver's (cmd/kube-apiserver/app/aggregator.go and
// DefaultGenericAPIServicePriorities) for the versions Skiff serves or may serve; a
// group/version not listed gets no APIService, as in Kubernetes.
var apiServicePriorities = map[schema.GroupVersion]apiServicePriority{
	{Group: "", Version: "v1"}:                             {18000, 1},
	{Group: "events.k8s.io", Version: "v1"}:                {17750, 15},
	{Group: "apps", Version: "v1"}:                         {17800, 15},
	{Group: "authentication.k8s.io", Version: "v1"}:        {17700, 15},
	{Group: "authorization.k8s.io", Version: "v1"}:         {17600, 15},
	{Group: "autoscaling", Version: "v1"}:                  {17500, 15},
	{Group: "autoscaling", Version: "v2"}:                  {17500, 30},
	{Group: "batch", Version: "v1"}:                        {17400, 15},
	{Group: "certificates.k8s.io", Version: "v1"}:          {17300, 15},
	{Group: "networking.k8s.io", Version: "v1"}:            {17200, 15},
	{Group: "policy", Version: "v1"}:                       {17100, 15},
	{Group: "rbac.authorization.k8s.io", Version: "v1"}:    {17000, 15},
	{Group: "storage.k8s.io", Version: "v1"}:               {16800, 15},
	{Group: "apiextensions.k8s.io", Version: "v1"}:         {16700, 15},
	{Group: "admissionregistration.k8s.io", Version: "v1"}: {16700, 15},
	{Group: "scheduling.k8s.io", Version: "v1"}:            {16600, 15},
	{Group: "coordination.k8s.io", Version: "v1"}:          {16500, 15},
	{Group: "node.k8s.io", Version: "v1"}:                  {16300, 15},
	{Group: "discovery.k8s.io", Version: "v1"}:             {16200, 15},
	{Group: "resource.k8s.io", Version: "v1"}:              {16200, 21},
	{Group: "flowcontrol.apiserver.k8s.io", Version: "v1"}: {16100, 21},
	{Group: "storagemigration.k8s.io", Version: "v1"}:      {15800, 15},
}

// keepBuiltins runs ensureBuiltins every interval while this server leads.
func (s *Server) keepBuiltins(ctx context.Context, interval time.Duration) {
	s.whileLeading(ctx, interval, func() {
		if err := s.ensureBuiltins(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("keeping the built-in objects failed; trying again later", "error", err)
		}
	})
}

// ensureBuiltins creates or restores every object above, and the aggregation layer's
// kube-system/extension-apiserver-authentication (aggregator.go).
func (s *Server) ensureBuiltins(ctx context.Context) error {
	return errors.Join(s.resources.ensureBuiltins(ctx), s.agg.ensureAuthenticationConfigMap(ctx))
}

// ensureBuiltins creates or restores every object above but the aggregator's.
func (r *resources) ensureBuiltins(ctx context.Context) error {
	return errors.Join(r.ensureMandatoryFlowControl(ctx), r.ensureDefaultServiceCIDR(ctx), r.ensureLocalAPIServices(ctx))
}

// keep creates want unless an object of its name exists; when one does, fix may change
// a copy of it (reporting so), which is then written. It returns the stored object.
func (r *resources) keep(ctx context.Context, want kinds.Object, fix func(cur kinds.Object) bool) (kinds.Object, error) {
	info := kinds.Of(want)
	k := keyOf(info, want)
	for {
		cur, _, err := r.get(ctx, info, k, store.ReadOptions{})
		if isNotFound(err) {
			res, err := r.create(ctx, clone(want), writeOptions{})
			if status.Code(err) == codes.AlreadyExists {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("create %s %s: %w", info.Kind, k.Name, err)
			}
			return res.obj, nil
		}
		if err != nil {
			return nil, fmt.Errorf("get %s %s: %w", info.Kind, k.Name, err)
		}
		next := clone(cur)
		if fix == nil || !fix(next) {
			return cur, nil
		}
		res, err := r.replace(ctx, next, writeOptions{})
		if status.Code(err) == codes.Aborted {
			continue // changed meanwhile: look again
		}
		if err != nil {
			return nil, fmt.Errorf("restore %s %s: %w", info.Kind, k.Name, err)
		}
		return res.obj, nil
	}
}

// keepStatus writes obj's status when set changes it (on a copy of obj, the stored
// object: compare-and-swap on its resourceVersion).
func (r *resources) keepStatus(ctx context.Context, obj kinds.Object, set func(kinds.Object) bool) error {
	if obj == nil {
		return nil
	}
	next := clone(obj)
	if !set(next) {
		return nil
	}
	_, err := r.replaceStatus(ctx, next, "status", writeOptions{})
	if status.Code(err) == codes.Aborted {
		return nil // changed meanwhile: the next round looks again
	}
	return err
}

// ensureMandatoryFlowControl is Kubernetes' mandatory ensure strategy: the objects exist,
// with the fixed spec (the exempt level's spec.exempt excepted, which may be tuned) and
// autoupdate-spec=true.
func (r *resources) ensureMandatoryFlowControl(ctx context.Context) error {
	var errs []error
	for _, want := range bootstrap.MandatoryPriorityLevelConfigurations {
		_, err := r.keep(ctx, want, func(o kinds.Object) bool {
			cur := o.(*flowcontrolv1.PriorityLevelConfiguration)
			spec := &defaulted(want).(*flowcontrolv1.PriorityLevelConfiguration).Spec
			if cur.Name == flowcontrolv1.PriorityLevelConfigurationNameExempt && cur.Spec.Exempt != nil {
				spec.Exempt = cur.Spec.Exempt
			}
			changed := markAutoUpdate(cur)
			if !equality.Semantic.DeepEqual(&cur.Spec, spec) {
				cur.Spec, changed = *spec, true
			}
			return changed
		})
		errs = append(errs, err)
	}
	for _, want := range bootstrap.MandatoryFlowSchemas {
		_, err := r.keep(ctx, want, func(o kinds.Object) bool {
			cur := o.(*flowcontrolv1.FlowSchema)
			spec := defaulted(want).(*flowcontrolv1.FlowSchema).Spec
			changed := markAutoUpdate(cur)
			if !equality.Semantic.DeepEqual(cur.Spec, spec) {
				cur.Spec, changed = spec, true
			}
			return changed
		})
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// defaulted is a copy of obj with the defaults a write would fill in, to compare with
// what is stored.
func defaulted(obj kinds.Object) kinds.Object {
	obj = clone(obj)
	validation.Default(obj)
	return obj
}

// markAutoUpdate sets apf.kubernetes.io/autoupdate-spec=true; it reports a change.
func markAutoUpdate(o metav1.Object) bool {
	a := o.GetAnnotations()
	if a[flowcontrolv1.AutoUpdateAnnotationKey] == "true" {
		return false
	}
	if a == nil {
		a = map[string]string{}
	}
	a[flowcontrolv1.AutoUpdateAnnotationKey] = "true"
	o.SetAnnotations(a)
	return true
}

// ensureDefaultServiceCIDR keeps the ServiceCIDR "kubernetes", Ready when its range is
// the Services' one.
func (r *resources) ensureDefaultServiceCIDR(ctx context.Context) error {
	plan, err := r.networking.get(ctx, r.store)
	if err != nil {
		return err
	}
	cidrs := []string{plan.ServiceCIDR}
	cur, err := r.keep(ctx, &networkingv1.ServiceCIDR{ObjectMeta: metav1.ObjectMeta{Name: DefaultServiceCIDRName},
		Spec: networkingv1.ServiceCIDRSpec{CIDRs: cidrs}}, nil)
	if err != nil {
		return err
	}
	return r.keepStatus(ctx, cur, func(o kinds.Object) bool {
		sc := o.(*networkingv1.ServiceCIDR)
		if sc.DeletionTimestamp != nil || !slices.Equal(sc.Spec.CIDRs, cidrs) {
			return false
		}
		if c := apimeta.FindStatusCondition(sc.Status.Conditions, networkingv1.ServiceCIDRConditionReady); c != nil && c.Status != metav1.ConditionUnknown {
			return false
		}
		apimeta.SetStatusCondition(&sc.Status.Conditions, metav1.Condition{Type: networkingv1.ServiceCIDRConditionReady,
			Status: metav1.ConditionTrue, Message: "Kubernetes default Service CIDR is ready", LastTransitionTime: metav1.NewTime(r.now())})
		return true
	})
}

// localAPIServices are the APIServices of the built-in groups and versions served.
func localAPIServices() []*apiregistrationv1.APIService {
	var out []*apiregistrationv1.APIService
	seen := map[schema.GroupVersion]bool{}
	for _, served := range servedGroups() {
		gv := schema.GroupVersion{Group: served.group, Version: served.version}
		prio, ok := apiServicePriorities[gv]
		if !ok || seen[gv] {
			continue // a CRD's group is not in apiServicePriorities
		}
		seen[gv] = true
		out = append(out, &apiregistrationv1.APIService{
			ObjectMeta: metav1.ObjectMeta{Name: gv.Version + "." + gv.Group, Labels: map[string]string{apiServiceManagedLabel: apiServiceManagedOnStart}},
			Spec: apiregistrationv1.APIServiceSpec{Group: gv.Group, Version: gv.Version,
				GroupPriorityMinimum: prio.group, VersionPriority: prio.version},
		})
	}
	return out
}

// ensureLocalAPIServices keeps the local APIServices, Available, and their specs while
// they are automanaged (kube-aggregator leaves one alone once its label is removed).
func (r *resources) ensureLocalAPIServices(ctx context.Context) error {
	var errs []error
	for _, want := range localAPIServices() {
		cur, err := r.keep(ctx, want, func(o kinds.Object) bool {
			cur := o.(*apiregistrationv1.APIService)
			if cur.Labels[apiServiceManagedLabel] == "" || equality.Semantic.DeepEqual(cur.Spec, want.Spec) {
				return false
			}
			cur.Spec = want.Spec
			return true
		})
		if err == nil {
			err = r.keepStatus(ctx, cur, func(o kinds.Object) bool {
				s := o.(*apiregistrationv1.APIService)
				if s.Spec.Service != nil {
					return false
				}
				for _, c := range s.Status.Conditions {
					if c.Type == apiregistrationv1.Available {
						if c.Status == apiregistrationv1.ConditionTrue && c.Reason == "Local" {
							return false
						}
					}
				}
				setAPIServiceCondition(s, apiregistrationv1.APIServiceCondition{Type: apiregistrationv1.Available,
					Status: apiregistrationv1.ConditionTrue, Reason: "Local", Message: "Local APIServices are always available",
					LastTransitionTime: metav1.NewTime(r.now())})
				return true
			})
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// setAPIServiceCondition replaces the condition of c's type, or adds it.
func setAPIServiceCondition(s *apiregistrationv1.APIService, c apiregistrationv1.APIServiceCondition) {
	for i := range s.Status.Conditions {
		if s.Status.Conditions[i].Type == c.Type {
			s.Status.Conditions[i] = c
			return
		}
	}
	s.Status.Conditions = append(s.Status.Conditions, c)
}

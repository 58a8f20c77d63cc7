package apiserver

import (
	"context"
	"encoding/json"
	"fmt"

	"google.golang.org/grpc/codes"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/apiserver/pkg/admission"

	"github.com/skiffhq/skiff/apiserver/admissioncel"
	"github.com/skiffhq/skiff/apiserver/openapi"
	"github.com/skiffhq/skiff/kinds"
)

// MutatingAdmissionPolicies, as kube-apiserver's MutatingAdmissionPolicy admission plugin
// applies them: first in the mutating admission (before the mutating webhooks, as
// Kubernetes orders its plugins), each bound policy whose matchConstraints match a
// create or an update is applied once for each of its bindings whose matchResources
// match too, with each param the binding's paramRef selects, in the policies' and
// bindings' name order, each seeing what the previous one made. Its matchConditions
// decide whether it applies; its mutations (admissioncel) change the object. A policy
// that fails (a condition or mutation that cannot be evaluated, a patch that cannot be
// applied, a result that is not a valid object) refuses the write under failurePolicy
// Fail and is skipped under Ignore. A policy with reinvocationPolicy IfNeeded is
// applied once more, after the mutating webhooks, when a later policy or a webhook
// changed the object after it ran. The built-in defaulting and validation, and the
// validating policies and webhooks, then see the result. Deletes are not mutated.

// boundMutatingPolicy is a MutatingAdmissionPolicy, compiled, and its bindings.
type boundMutatingPolicy struct {
	policyHead
	eval     *admissioncel.MutatingPolicy
	reinvoke bool // reinvocationPolicy IfNeeded
}

func compileMutatingPolicy(obj kinds.Object, bs []*policyBinding) *boundMutatingPolicy {
	pol := obj.(*admissionregistrationv1.MutatingAdmissionPolicy)
	return &boundMutatingPolicy{policyHead: newPolicyHead(pol.Name, pol.Spec.ParamKind, pol.Spec.FailurePolicy, pol.Spec.MatchConstraints, bs),
		eval: admissioncel.CompileMutatingPolicy(pol.Name, &pol.Spec), reinvoke: pol.Spec.ReinvocationPolicy == admissionregistrationv1.IfNeededReinvocationPolicy}
}

// mutationState is what one write's mutating admission remembers between its passes
// (Kubernetes' policy reinvocation context): the invocations (policy, binding, param)
// with reinvocationPolicy IfNeeded that ran since the object last changed, and those
// to apply again.
type mutationState struct {
	invoked, reinvoke map[string]bool
}

// changed records that the object changed: every reinvocable invocation that ran
// before is to be applied again.
func (s *mutationState) changed() {
	for k := range s.invoked {
		if s.reinvoke == nil {
			s.reinvoke = map[string]bool{}
		}
		s.reinvoke[k] = true
	}
	clear(s.invoked)
}

// mutatePolicies applies the bound mutating policies matching op to op.obj: all of them
// (reinvoking false), or only those st says are to be applied again. It reports whether
// op.obj changed.
func (r *resources) mutatePolicies(ctx context.Context, op *webhookOp, st *mutationState, reinvoking bool) (bool, error) {
	if r.policies == nil || webhookExempt[op.info.Kind] || op.obj == nil {
		return false, nil
	}
	bound, err := r.policies.mutating.load(ctx)
	if err != nil || len(bound) == 0 {
		return false, err
	}
	// The policies and bindings are matched against the object as the pass found it (as
	// Kubernetes' dispatcher matches them on the request's attributes); each mutation
	// and matchCondition sees the previous ones' result.
	matchOp := *op
	var in *admissioncel.MutationInput // made once a policy matches, for inView
	var inView *kinds.Info
	changed := false
	var failed []policyFailure // the refusals, in order
	for _, bp := range bound {
		fail := func(b *policyBinding, reason metav1.StatusReason, msg string) {
			if bp.failurePolicy == admissionregistrationv1.Ignore {
				r.policies.log.Warn("mutating policy failure ignored", "policy", bp.name, "kind", op.info.Kind, "name", op.name(), "error", msg)
				return
			}
			if b != nil {
				msg = fmt.Sprintf("policy '%s' with binding '%s' denied request: %s", bp.name, b.name, msg)
			} else {
				msg = fmt.Sprintf("policy %q denied request: %s", bp.name, msg)
			}
			failed = append(failed, policyFailure{msg, reason})
		}
		configError := func(b *policyBinding, err error) { fail(b, metav1.StatusReasonForbidden, configurationError(b, err)) }
		err := r.policyInvocations(ctx, &bp.policyHead, &matchOp, configError, func(pb *policyBinding, param runtime.Object, mop *webhookOp) error {
			key := invocationKey(bp.name, pb.name, param)
			if reinvoking && !st.reinvoke[key] {
				return nil
			}
			if in == nil || inView != mop.info {
				// op as it is now, in the version the policy matched it in.
				vop, err := op.presented(mop.info)
				if err != nil {
					return err
				}
				if in, err = r.mutationInput(ctx, vop); err != nil {
					return err
				}
				inView = mop.info
			}
			in.Params = param
			before := in.Attributes.VersionedObject.Object()
			matched, err := bp.eval.Mutate(ctx, *in)
			if !matched && err == nil {
				return nil
			}
			after := in.Attributes.VersionedObject.Object()
			if after != before && !equality.Semantic.DeepEqual(before, after) {
				vop, derr := op.presented(mop.info)
				var next kinds.Object
				if derr == nil {
					next, derr = r.mutatedObject(vop, after)
				}
				if derr == nil {
					next, derr = convertToStorage(mop.info, next)
				}
				if derr != nil {
					in.Attributes.UpdateObject(before) // nothing of a result that is not an object
					err = derr
				} else {
					op.obj, changed = next, true
					st.changed()
				}
			}
			if err != nil {
				fail(pb, metav1.StatusReasonInvalid, err.Error())
			}
			if bp.reinvoke {
				if st.invoked == nil {
					st.invoked = map[string]bool{}
				}
				st.invoked[key] = true
			}
			return nil
		})
		if err != nil {
			return false, err
		}
	}
	if len(failed) > 0 {
		return false, mutationDeniedError(op, failed)
	}
	return changed, nil
}

// invocationKey names one invocation: a policy, a binding, a param.
func invocationKey(policy, binding string, param runtime.Object) string {
	key := policy + "/" + binding
	if m, err := meta.Accessor(param); param != nil && err == nil {
		key += "/" + m.GetNamespace() + "/" + m.GetName()
	}
	return key
}

// mutationInput is op as the mutations read and change it: its attributes, whose
// object the mutations replace, and the namespace object; the type converter and
// object codecs the patchers need.
func (r *resources) mutationInput(ctx context.Context, op *webhookOp) (*admissioncel.MutationInput, error) {
	in, err := r.policyInput(ctx, op)
	if err != nil {
		return nil, err
	}
	var tc managedfields.TypeConverter
	if op.info.Custom != nil {
		tc, err = openapi.CRDTypeConverter(op.info.Custom.CRD)
	} else {
		tc, err = openapi.TypeConverter()
	}
	if err != nil {
		return nil, statusError(codes.Internal, ReasonInternal, nil, "Internal error occurred: type converter of %s: %v", op.info.Kind, err)
	}
	return &admissioncel.MutationInput{Input: *in, TypeConverter: tc, Objects: admission.NewObjectInterfacesFromScheme(applyScheme())}, nil
}

// mutatedObject is a mutation's result (JSON-shaped) as op's kind, decoded strictly: a
// field the kind does not have is the policy's failure. A mutation may not change the
// object's kind, name or namespace.
func (r *resources) mutatedObject(op *webhookOp, u runtime.Object) (kinds.Object, error) {
	js, err := json.Marshal(u)
	if err != nil {
		return nil, err
	}
	return op.decode(js)
}

// policyFailure is a mutating policy's refusal: its message, and its reason (Invalid
// for a mutation that failed, Forbidden for a configuration error).
type policyFailure struct {
	message string
	reason  metav1.StatusReason
}

// mutationDeniedError is Kubernetes' refusal of mutating policies (its generic policy
// dispatcher's): 403, the first failure's message and reason, each failure a cause.
func mutationDeniedError(op *webhookOp, failed []policyFailure) error {
	e := statusError(codes.PermissionDenied, ReasonForbidden, nil, "%s", failed[0].message).about(op.info, op.name())
	e.status.Reason = failed[0].reason
	for _, f := range failed {
		e.status.Details.Causes = append(e.status.Details.Causes, metav1.StatusCause{Message: f.message})
	}
	return e
}

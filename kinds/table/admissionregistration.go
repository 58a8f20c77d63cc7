package table

import (
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/kinds"
)

// The columns of webhook configurations (the number of webhooks) and of admission
// policies (validating and mutating) and their bindings, as Kubernetes' printers define
// them.
func init() {
	const doc = "Webhooks indicates the number of webhooks in the configuration"
	columns[kinds.MutatingWebhookConfiguration] = []Column{nameCol,
		col("Webhooks", "integer", 0, doc, func(o kinds.Object, _ time.Time) any {
			return int64(len(o.(*admissionregistrationv1.MutatingWebhookConfiguration).Webhooks))
		}),
		ageCol,
	}
	columns[kinds.ValidatingWebhookConfiguration] = []Column{nameCol,
		col("Webhooks", "integer", 0, doc, func(o kinds.Object, _ time.Time) any {
			return int64(len(o.(*admissionregistrationv1.ValidatingWebhookConfiguration).Webhooks))
		}),
		ageCol,
	}
	columns[kinds.ValidatingAdmissionPolicy] = policyColumns("Validations", "Validations indicates the number of validation rules defined in this configuration",
		func(o kinds.Object) (int, *admissionregistrationv1.ParamKind) {
			p := o.(*admissionregistrationv1.ValidatingAdmissionPolicy)
			return len(p.Spec.Validations), p.Spec.ParamKind
		})
	columns[kinds.ValidatingAdmissionPolicyBinding] = bindingColumns(func(o kinds.Object) (string, *admissionregistrationv1.ParamRef) {
		b := o.(*admissionregistrationv1.ValidatingAdmissionPolicyBinding)
		return b.Spec.PolicyName, b.Spec.ParamRef
	})
	columns[kinds.MutatingAdmissionPolicy] = policyColumns("Mutations", "Mutation indicates the number of mutations rules defined in this configuration",
		func(o kinds.Object) (int, *admissionregistrationv1.ParamKind) {
			p := o.(*admissionregistrationv1.MutatingAdmissionPolicy)
			return len(p.Spec.Mutations), p.Spec.ParamKind
		})
	columns[kinds.MutatingAdmissionPolicyBinding] = bindingColumns(func(o kinds.Object) (string, *admissionregistrationv1.ParamRef) {
		b := o.(*admissionregistrationv1.MutatingAdmissionPolicyBinding)
		return b.Spec.PolicyName, b.Spec.ParamRef
	})
}

// policyColumns are a policy's columns: the number of its rules (count, named name) and
// its paramKind.
func policyColumns(name, doc string, of func(kinds.Object) (count int, pk *admissionregistrationv1.ParamKind)) []Column {
	return []Column{nameCol,
		col(name, "integer", 0, doc, func(o kinds.Object, _ time.Time) any {
			n, _ := of(o)
			return int64(n)
		}),
		col("ParamKind", "string", 0, "ParamKind specifies the kind of resources used to parameterize this policy", func(o kinds.Object, _ time.Time) any {
			if _, pk := of(o); pk != nil {
				return pk.APIVersion + "/" + pk.Kind
			}
			return "<unset>"
		}),
		ageCol,
	}
}

// bindingColumns are a policy binding's columns: its policy and paramRef.
func bindingColumns(of func(kinds.Object) (policy string, ref *admissionregistrationv1.ParamRef)) []Column {
	return []Column{nameCol,
		col("PolicyName", "string", 0, "PolicyName indicates the policy definition which the policy binding binded to", func(o kinds.Object, _ time.Time) any {
			policy, _ := of(o)
			return policy
		}),
		col("ParamRef", "string", 0, "ParamRef indicates the param resource which sets the configration param", func(o kinds.Object, _ time.Time) any {
			_, ref := of(o)
			return paramRefColumn(ref)
		}),
		ageCol,
	}
}

// paramRefColumn is kubectl's PARAMREF: namespace/name ("*/name" without a namespace,
// which may be a cluster-scoped param's), the selector, or <unset>.
func paramRefColumn(r *admissionregistrationv1.ParamRef) string {
	switch {
	case r == nil:
		return "<unset>"
	case r.Name != "" && r.Namespace != "":
		return r.Namespace + "/" + r.Name
	case r.Name != "":
		return "*/" + r.Name
	case r.Selector != nil:
		return metav1.FormatLabelSelector(r.Selector)
	}
	return "<unset>"
}

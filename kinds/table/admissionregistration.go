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
	columns[kinds.ValidatingAdmissionPolicy] = []Column{nameCol,
		col("Validations", "integer", 0, "Validations indicates the number of validation rules defined in this configuration", func(o kinds.Object, _ time.Time) any {
			return int64(len(o.(*admissionregistrationv1.ValidatingAdmissionPolicy).Spec.Validations))
		}),
		col("ParamKind", "string", 0, "ParamKind specifies the kind of resources used to parameterize this policy", func(o kinds.Object, _ time.Time) any {
			if pk := o.(*admissionregistrationv1.ValidatingAdmissionPolicy).Spec.ParamKind; pk != nil {
				return pk.APIVersion + "/" + pk.Kind
			}
			return "<unset>"
		}),
		ageCol,
	}
	columns[kinds.ValidatingAdmissionPolicyBinding] = []Column{nameCol,
		col("PolicyName", "string", 0, "PolicyName indicates the policy definition which the policy binding binded to", func(o kinds.Object, _ time.Time) any {
			return o.(*admissionregistrationv1.ValidatingAdmissionPolicyBinding).Spec.PolicyName
		}),
		col("ParamRef", "string", 0, "ParamRef indicates the param resource which sets the configration param", func(o kinds.Object, _ time.Time) any {
			return paramRefColumn(o.(*admissionregistrationv1.ValidatingAdmissionPolicyBinding).Spec.ParamRef)
		}),
		ageCol,
	}
	columns[kinds.MutatingAdmissionPolicy] = []Column{nameCol,
		col("Mutations", "integer", 0, "Mutation indicates the number of mutations rules defined in this configuration", func(o kinds.Object, _ time.Time) any {
			return int64(len(o.(*admissionregistrationv1.MutatingAdmissionPolicy).Spec.Mutations))
		}),
		col("ParamKind", "string", 0, "ParamKind specifies the kind of resources used to parameterize this policy", func(o kinds.Object, _ time.Time) any {
			if pk := o.(*admissionregistrationv1.MutatingAdmissionPolicy).Spec.ParamKind; pk != nil {
				return pk.APIVersion + "/" + pk.Kind
			}
			return "<unset>"
		}),
		ageCol,
	}
	columns[kinds.MutatingAdmissionPolicyBinding] = []Column{nameCol,
		col("PolicyName", "string", 0, "PolicyName indicates the policy definition which the policy binding binded to", func(o kinds.Object, _ time.Time) any {
			return o.(*admissionregistrationv1.MutatingAdmissionPolicyBinding).Spec.PolicyName
		}),
		col("ParamRef", "string", 0, "ParamRef indicates the param resource which sets the configration param", func(o kinds.Object, _ time.Time) any {
			return paramRefColumn(o.(*admissionregistrationv1.MutatingAdmissionPolicyBinding).Spec.ParamRef)
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

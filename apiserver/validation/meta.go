package validation

import (
	"slices"

	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/api/validation/path"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiffhq/skiff/kinds"
)

// nameFunc is the rule for metadata.name of a kind: a Namespace's name becomes part of
// other names (DNS labels), so it is a DNS label itself, and a Service's is a DNS-1035
// label (it names environment variables and DNS records); every other kind's is a DNS
// subdomain.
func nameFunc(in *kinds.Info) apivalidation.ValidateNameFunc {
	switch in.Kind {
	case kinds.Namespace:
		return apivalidation.NameIsDNSLabel
	case kinds.Service:
		return apivalidation.NameIsDNS1035Label
	case kinds.Role, kinds.ClusterRole, kinds.RoleBinding, kinds.ClusterRoleBinding:
		return path.ValidatePathSegmentName // Kubernetes' ValidateRBACName: system:controller:... has colons
	case kinds.CertificateSigningRequest:
		return path.ValidatePathSegmentName // Kubernetes does not care what requests are called
	case kinds.ClusterTrustBundle:
		return path.ValidatePathSegmentName // a signer's prefix has colons: validateClusterTrustBundle
	case kinds.IPAddress:
		return ipAddressName // the address: 10.43.0.1, fe80::1
	case kinds.APIService:
		return apiServiceName // version.group, "v1." for the core group
	}
	return apivalidation.NameIsDNSSubdomain
}

// validateObjectMeta checks metadata as it is written by a create or an update.
func validateObjectMeta(obj kinds.Object, in *kinds.Info) field.ErrorList {
	p := field.NewPath("metadata")
	// An empty namespace is accepted for a namespaced kind, as the API server puts the
	// object in "default"; apimachinery requires one when asked to check it.
	checkNamespace := in.Namespaced && obj.GetNamespace() != ""
	errs := apivalidation.ValidateObjectMetaAccessor(obj, checkNamespace, nameFunc(in), p)
	if obj.GetName() == "" && obj.GetGenerateName() != "" {
		// The API server names the object from generateName after validating it, so the
		// name apimachinery expects to be generated already is not missing.
		name := p.Child("name").String()
		errs = slices.DeleteFunc(errs, func(e *field.Error) bool {
			return e.Type == field.ErrorTypeRequired && e.Field == name
		})
	}
	return errs
}

// validateTemplateMeta checks the metadata of a pod template: only its labels and
// annotations are used, copied to the pods made from it.
func validateTemplateMeta(md *metav1.ObjectMeta, p *field.Path) field.ErrorList {
	errs := metav1validation.ValidateLabels(md.Labels, p.Child("labels"))
	return append(errs, apivalidation.ValidateAnnotations(md.Annotations, p.Child("annotations"))...)
}

// ValidateLabelsAndAnnotations checks obj's labels and annotations, which a patch of its
// status may write besides the status.
func ValidateLabelsAndAnnotations(obj kinds.Object) error {
	return asError(validateTemplateMeta(&metav1.ObjectMeta{Labels: obj.GetLabels(), Annotations: obj.GetAnnotations()}, field.NewPath("metadata")))
}

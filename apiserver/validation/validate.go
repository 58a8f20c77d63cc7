package validation

import (
	"fmt"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	networkingv1 "k8s.io/api/networking/v1"
	nodev1 "k8s.io/api/node/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	storagemigrationv1 "k8s.io/api/storagemigration/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"

	"github.com/skiffhq/skiff/kinds"
)

// Validate checks an object as it is written by create: its metadata, its desired state
// and that it sets no field Skiff does not support. It returns nil or an ErrorList with
// every problem found.
func Validate(obj kinds.Object) error {
	errs := validateObject(obj)
	if pod, ok := obj.(*corev1.Pod); ok && len(pod.Spec.EphemeralContainers) > 0 {
		// They are added to a running pod, through pods/ephemeralcontainers.
		errs = append(errs, field.Forbidden(field.NewPath("spec", "ephemeralContainers"), "cannot be set on create"))
	}
	return asError(errs)
}

// ValidateUpdate checks obj as it is written over old: everything Validate checks, and
// that fields which may not change did not. old is the stored object. Defaults do not
// count as changes: a pod spec is compared with Default's values filled in on both sides.
func ValidateUpdate(old, obj kinds.Object) error { return validateUpdateOf(old, obj, false) }

// ValidateUpdateSameSpec is ValidateUpdate for an update whose caller has compared the
// specs (kinds.SectionEqual, with obj defaulted) and found them equal: what a spec may
// not change is not looked at again (a pod's, two defaulted copies and a comparison, on
// every metadata-only update such as a finalizer's removal).
func ValidateUpdateSameSpec(old, obj kinds.Object) error { return validateUpdateOf(old, obj, true) }

func validateUpdateOf(old, obj kinds.Object, sameSpec bool) error {
	if crd, ok := obj.(*apiextensionsv1.CustomResourceDefinition); ok {
		if oldCRD, ok := old.(*apiextensionsv1.CustomResourceDefinition); ok {
			return asError(append(validateCRDUpdate(oldCRD, crd), checkSupported(obj, false)...))
		}
	}
	var errs field.ErrorList
	if c, ok := obj.(*kinds.Custom); ok {
		oldC, _ := old.(*kinds.Custom)
		errs = validateCustom(c, oldC) // its rules see the old object (oldSelf)
	} else {
		errs = validateObject(obj)
	}
	if kinds.Of(old) != kinds.Of(obj) {
		errs = append(errs, field.Invalid(field.NewPath("kind"), kinds.Of(obj).Kind,
			fmt.Sprintf("must be %s, the kind of the stored object", kinds.Of(old).Kind)))
	} else {
		errs = append(errs, validateUpdate(old, obj, sameSpec)...)
	}
	return asError(errs)
}

// ValidateStatus checks the status of obj, as written by UpdateStatus. It looks at the
// status only: the rest of obj is the stored object, which was validated when written.
func ValidateStatus(obj kinds.Object) error {
	switch o := obj.(type) {
	case *kinds.Custom:
		return asError(validateCustom(o, nil))
	case *apiextensionsv1.CustomResourceDefinition:
		return asError(validateCRDStatus(o))
	}
	if errs := validateStatusUTF8(obj); len(errs) > 0 {
		return asError(errs)
	}
	p := field.NewPath("status")
	var errs field.ErrorList
	switch o := obj.(type) {
	case *corev1.Pod:
		errs = validatePodStatus(&o.Status, p)
	case *appsv1.Deployment:
		st := &o.Status
		errs = apivalidation.ValidateNonnegativeField(st.ObservedGeneration, p.Child("observedGeneration"))
		errs = append(errs, nonNegativeCounts(p, count{"replicas", st.Replicas}, count{"updatedReplicas", st.UpdatedReplicas},
			count{"readyReplicas", st.ReadyReplicas}, count{"availableReplicas", st.AvailableReplicas},
			count{"unavailableReplicas", st.UnavailableReplicas})...)
		if st.CollisionCount != nil {
			errs = append(errs, apivalidation.ValidateNonnegativeField(int64(*st.CollisionCount), p.Child("collisionCount"))...)
		}
		for i, c := range st.Conditions {
			errs = append(errs, validateCondition(string(c.Type), c.Status, p.Child("conditions").Index(i))...)
		}
	case *appsv1.ReplicaSet:
		st := &o.Status
		errs = apivalidation.ValidateNonnegativeField(st.ObservedGeneration, p.Child("observedGeneration"))
		errs = append(errs, nonNegativeCounts(p, count{"replicas", st.Replicas}, count{"fullyLabeledReplicas", st.FullyLabeledReplicas},
			count{"readyReplicas", st.ReadyReplicas}, count{"availableReplicas", st.AvailableReplicas})...)
		for i, c := range st.Conditions {
			errs = append(errs, validateCondition(string(c.Type), c.Status, p.Child("conditions").Index(i))...)
		}
	case *corev1.ReplicationController:
		errs = validateReplicationControllerStatus(&o.Status, p)
	case *corev1.Node:
		errs = validateNodeStatus(&o.Status, p)
	case *corev1.Namespace:
		if ph := o.Status.Phase; ph != "" {
			errs = oneOfChild(p, "phase", ph, namespacePhases...)
		}
		for i, c := range o.Status.Conditions {
			errs = append(errs, validateCondition(string(c.Type), c.Status, p.Child("conditions").Index(i))...)
		}
	case *policyv1.PodDisruptionBudget:
		errs = validatePodDisruptionBudgetStatus(&o.Status, p)
	case *corev1.Service:
		errs = validateServiceStatus(&o.Status, p)
	case *corev1.ResourceQuota:
		errs = validateResourceQuotaStatus(&o.Status, p)
	case *appsv1.DaemonSet:
		errs = validateDaemonSetStatus(&o.Status, p)
	case *appsv1.StatefulSet:
		errs = validateStatefulSetStatus(&o.Status, p)
	case *batchv1.Job:
		errs = validateJobStatus(&o.Status, p)
	case *batchv1.CronJob:
		errs = validateCronJobStatus(&o.Status, p)
	case *corev1.PersistentVolume:
		errs = validatePersistentVolumeStatus(&o.Status, p)
	case *corev1.PersistentVolumeClaim:
		errs = validateClaimStatus(&o.Status, p)
	case *networkingv1.Ingress:
		errs = validateIngressStatus(&o.Status, p)
	case *flowcontrolv1.FlowSchema:
		errs = validateFlowSchemaStatus(&o.Status)
	case *flowcontrolv1.PriorityLevelConfiguration:
		errs = validatePriorityLevelStatus(&o.Status)
	case *storagemigrationv1.StorageVersionMigration:
		errs = validateStorageVersionMigrationStatus(o)
	case *apiregistrationv1.APIService:
		errs = validateAPIServiceStatus(&o.Status)
	}
	return asError(append(errs, checkSupported(obj, true)...))
}

// ValidateMigrationStatus checks a StorageVersionMigration's status as written over
// old's: ValidateStatus, and what may not change once set.
func ValidateMigrationStatus(old, m *storagemigrationv1.StorageVersionMigration) error {
	if err := ValidateStatus(m); err != nil {
		return err
	}
	return asError(validateStorageVersionMigrationStatusUpdate(old, m))
}

// count is a status counter, by its field name.
type count struct {
	name string
	n    int32
}

func nonNegativeCounts(p *field.Path, counts ...count) field.ErrorList {
	var errs field.ErrorList
	for _, c := range counts {
		errs = append(errs, apivalidation.ValidateNonnegativeField(int64(c.n), p.Child(c.name))...)
	}
	return errs
}

// validateObject checks metadata, the kind's own rules, and what is not supported.
func validateObject(obj kinds.Object) field.ErrorList {
	switch o := obj.(type) {
	case *kinds.Custom:
		return validateCustom(o, nil)
	case *apiextensionsv1.CustomResourceDefinition:
		// Kubernetes' own validation, metadata included.
		return append(validateCRD(o), checkSupported(obj, false)...)
	}
	if errs := validateUTF8(obj); len(errs) > 0 {
		return errs // the other checks would quote the same bytes again
	}
	errs := validateObjectMeta(obj, kinds.Of(obj))
	spec := field.NewPath("spec")
	switch o := obj.(type) {
	case *corev1.Pod:
		errs = append(errs, validatePodSpec(&o.Spec, spec)...)
	case *appsv1.Deployment:
		errs = append(errs, validateDeploymentSpec(&o.Spec, spec)...)
	case *appsv1.ReplicaSet:
		errs = append(errs, validateReplicaSetSpec(&o.Spec, spec)...)
	case *corev1.ReplicationController:
		errs = append(errs, validateReplicationControllerSpec(&o.Spec, spec)...)
	case *corev1.Node:
		errs = append(errs, validateNodeSpec(&o.Spec, spec)...)
	case *corev1.ConfigMap:
		errs = append(errs, validateConfigMap(o)...)
	case *corev1.Secret:
		errs = append(errs, validateSecret(o)...)
	case *corev1.Event:
		errs = append(errs, validateEvent(o)...)
	case *coordinationv1.Lease:
		errs = append(errs, validateLeaseSpec(&o.Spec, spec)...)
	case *corev1.Namespace:
		errs = append(errs, validateNamespaceSpec(&o.Spec, spec)...)
	case *policyv1.PodDisruptionBudget:
		errs = append(errs, validatePodDisruptionBudgetSpec(&o.Spec, spec)...)
	case *corev1.Service:
		errs = append(errs, validateService(o)...)
	case *discoveryv1.EndpointSlice:
		errs = append(errs, validateEndpointSlice(o)...)
	case *corev1.Endpoints:
		errs = append(errs, validateEndpoints(o)...)
	case *corev1.ResourceQuota:
		errs = append(errs, validateResourceQuotaSpec(&o.Spec, spec)...)
	case *corev1.LimitRange:
		errs = append(errs, validateLimitRangeSpec(&o.Spec, spec)...)
	case *appsv1.DaemonSet:
		errs = append(errs, validateDaemonSetSpec(&o.Spec, spec)...)
	case *appsv1.StatefulSet:
		errs = append(errs, validateStatefulSetSpec(&o.Spec, spec)...)
	case *appsv1.ControllerRevision:
		errs = append(errs, validateControllerRevision(o)...)
	case *batchv1.Job:
		errs = append(errs, validateJob(o)...)
	case *batchv1.CronJob:
		errs = append(errs, validateCronJob(o)...)
	case *corev1.PersistentVolume:
		errs = append(errs, validatePersistentVolume(o)...)
	case *corev1.PersistentVolumeClaim:
		errs = append(errs, validateClaimSpec(&o.Spec, spec)...)
	case *storagev1.StorageClass:
		errs = append(errs, validateStorageClass(o)...)
	case *corev1.PodTemplate:
		errs = append(errs, validatePodTemplateObject(o)...)
	case *nodev1.RuntimeClass:
		errs = append(errs, validateRuntimeClass(o)...)
	case *networkingv1.IngressClass:
		errs = append(errs, validateIngressClass(o)...)
	case *admissionregistrationv1.MutatingWebhookConfiguration, *admissionregistrationv1.ValidatingWebhookConfiguration:
		errs = append(errs, validateWebhooks(o)...)
	case *admissionregistrationv1.ValidatingAdmissionPolicy:
		errs = append(errs, validatePolicy(o)...)
	case *admissionregistrationv1.ValidatingAdmissionPolicyBinding:
		errs = append(errs, validatePolicyBinding(o)...)
	case *admissionregistrationv1.MutatingAdmissionPolicy:
		errs = append(errs, validateMutatingPolicy(o)...)
	case *admissionregistrationv1.MutatingAdmissionPolicyBinding:
		errs = append(errs, validateMutatingPolicyBinding(o)...)
	case *networkingv1.Ingress:
		errs = append(errs, validateIngress(o)...)
	case *rbacv1.Role:
		errs = append(errs, validatePolicyRules(o.Rules, true)...)
	case *rbacv1.ClusterRole:
		errs = append(errs, validateClusterRole(o)...)
	case *rbacv1.RoleBinding:
		errs = append(errs, validateBinding(o.RoleRef, o.Subjects, true)...)
	case *rbacv1.ClusterRoleBinding:
		errs = append(errs, validateBinding(o.RoleRef, o.Subjects, false)...)
	case *schedulingv1.PriorityClass:
		errs = append(errs, validatePriorityClass(o)...)
	case *certificatesv1.CertificateSigningRequest:
		errs = append(errs, validateCSR(o, nil)...)
	case *certificatesv1.ClusterTrustBundle:
		errs = append(errs, validateClusterTrustBundle(o)...)
	case *certificatesv1.PodCertificateRequest:
		errs = append(errs, validatePodCertificateRequest(o)...)
	case *flowcontrolv1.FlowSchema:
		errs = append(errs, validateFlowSchema(o)...)
	case *flowcontrolv1.PriorityLevelConfiguration:
		errs = append(errs, validatePriorityLevel(o)...)
	case *networkingv1.ServiceCIDR:
		errs = append(errs, validateServiceCIDR(o)...)
	case *networkingv1.IPAddress:
		errs = append(errs, validateIPAddress(o)...)
	case *storagemigrationv1.StorageVersionMigration:
		errs = append(errs, validateStorageVersionMigration(o)...)
	case *apiregistrationv1.APIService:
		errs = append(errs, validateAPIService(o)...)
	}
	return append(errs, checkSupported(obj, false)...)
}

// validateUpdate checks what obj, of old's kind, may not change from old. The server
// owns the rest of metadata (uid, resourceVersion, timestamps, generation) and sets it
// itself, which is why this is not apimachinery's ValidateObjectMetaUpdate: that would
// also require a resourceVersion on every update.
func validateUpdate(old, obj kinds.Object, sameSpec bool) field.ErrorList {
	var errs field.ErrorList
	md := field.NewPath("metadata")
	if old.GetName() != "" {
		errs = append(errs, apivalidation.ValidateImmutableField(obj.GetName(), old.GetName(), md.Child("name"))...)
	}
	if old.GetNamespace() != "" {
		errs = append(errs, apivalidation.ValidateImmutableField(obj.GetNamespace(), old.GetNamespace(), md.Child("namespace"))...)
	}
	// A controller's selector is fixed, or it would orphan the pods it owns and adopt others.
	selector := field.NewPath("spec", "selector")
	switch o := obj.(type) {
	case *corev1.Pod:
		if !sameSpec {
			errs = append(errs, validatePodSpecUpdate(&old.(*corev1.Pod).Spec, &o.Spec, field.NewPath("spec"))...)
		}
	case *appsv1.Deployment:
		errs = append(errs, apivalidation.ValidateImmutableField(o.Spec.Selector, old.(*appsv1.Deployment).Spec.Selector, selector)...)
	case *appsv1.ReplicaSet:
		errs = append(errs, apivalidation.ValidateImmutableField(o.Spec.Selector, old.(*appsv1.ReplicaSet).Spec.Selector, selector)...)
	case *corev1.ConfigMap:
		errs = append(errs, validateConfigMapUpdate(old.(*corev1.ConfigMap), o)...)
	case *corev1.Service:
		errs = append(errs, validateServiceUpdate(old.(*corev1.Service), o)...)
	case *corev1.Node:
		errs = append(errs, validateNodeUpdate(old.(*corev1.Node), o)...)
	case *discoveryv1.EndpointSlice:
		errs = append(errs, apivalidation.ValidateImmutableField(o.AddressType, old.(*discoveryv1.EndpointSlice).AddressType, field.NewPath("addressType"))...)
	case *appsv1.DaemonSet:
		errs = append(errs, apivalidation.ValidateImmutableField(o.Spec.Selector, old.(*appsv1.DaemonSet).Spec.Selector, selector)...)
	case *appsv1.StatefulSet:
		errs = append(errs, validateStatefulSetUpdate(old.(*appsv1.StatefulSet), o)...)
	case *appsv1.ControllerRevision:
		errs = append(errs, validateControllerRevisionUpdate(old.(*appsv1.ControllerRevision), o)...)
	case *batchv1.Job:
		errs = append(errs, validateJobUpdate(old.(*batchv1.Job), o)...)
	case *corev1.PersistentVolume:
		errs = append(errs, validatePersistentVolumeUpdate(old.(*corev1.PersistentVolume), o)...)
	case *corev1.PersistentVolumeClaim:
		errs = append(errs, validateClaimUpdate(old.(*corev1.PersistentVolumeClaim), o)...)
	case *storagev1.StorageClass:
		errs = append(errs, validateStorageClassUpdate(old.(*storagev1.StorageClass), o)...)
	case *corev1.Secret:
		errs = append(errs, validateSecretUpdate(old.(*corev1.Secret), o)...)
	case *nodev1.RuntimeClass:
		errs = append(errs, validateRuntimeClassUpdate(old.(*nodev1.RuntimeClass), o)...)
	case *networkingv1.IngressClass:
		errs = append(errs, validateIngressClassUpdate(old.(*networkingv1.IngressClass), o)...)
	case *rbacv1.RoleBinding:
		errs = append(errs, validateRoleRefUpdate(old.(*rbacv1.RoleBinding).RoleRef, o.RoleRef)...)
	case *rbacv1.ClusterRoleBinding:
		errs = append(errs, validateRoleRefUpdate(old.(*rbacv1.ClusterRoleBinding).RoleRef, o.RoleRef)...)
	case *schedulingv1.PriorityClass:
		errs = append(errs, validatePriorityClassUpdate(old.(*schedulingv1.PriorityClass), o)...)
	case *certificatesv1.CertificateSigningRequest:
		errs = append(errs, validateCSRUpdate(old.(*certificatesv1.CertificateSigningRequest), o, CSRUpdate)...)
	case *certificatesv1.ClusterTrustBundle:
		errs = append(errs, apivalidation.ValidateImmutableField(o.Spec.SignerName, old.(*certificatesv1.ClusterTrustBundle).Spec.SignerName, field.NewPath("spec", "signerName"))...)
	case *certificatesv1.PodCertificateRequest:
		errs = append(errs, validatePodCertificateRequestUpdate(old.(*certificatesv1.PodCertificateRequest), o)...)
	case *networkingv1.ServiceCIDR:
		errs = append(errs, validateServiceCIDRUpdate(old.(*networkingv1.ServiceCIDR), o)...)
	case *networkingv1.IPAddress:
		errs = append(errs, validateIPAddressUpdate(old.(*networkingv1.IPAddress), o)...)
	case *storagemigrationv1.StorageVersionMigration:
		errs = append(errs, apivalidation.ValidateImmutableField(o.Spec, old.(*storagemigrationv1.StorageVersionMigration).Spec, field.NewPath("spec"))...)
	}
	return errs
}

func validateConfigMapUpdate(old, cm *corev1.ConfigMap) field.ErrorList {
	if old.Immutable == nil || !*old.Immutable {
		return nil
	}
	const msg = "field is immutable when `immutable` is set"
	var errs field.ErrorList
	if cm.Immutable == nil || !*cm.Immutable {
		errs = append(errs, field.Forbidden(field.NewPath("immutable"), msg))
	}
	if !equality.Semantic.DeepEqual(old.Data, cm.Data) {
		errs = append(errs, field.Forbidden(field.NewPath("data"), msg))
	}
	if !equality.Semantic.DeepEqual(old.BinaryData, cm.BinaryData) {
		errs = append(errs, field.Forbidden(field.NewPath("binaryData"), msg))
	}
	return errs
}

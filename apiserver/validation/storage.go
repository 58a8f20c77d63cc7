package validation

import (
	"path/filepath"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// PersistentVolumes, PersistentVolumeClaims and StorageClasses, as Kubernetes' core and
// storage validation has them, within what Skiff's storage does: volumes that are a
// directory on one node (local, hostPath), mounted as a filesystem.

// Defaults of storage, as Kubernetes sets them.
const (
	DefaultPersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimRetain
	DefaultStorageClassReclaimPolicy     = corev1.PersistentVolumeReclaimDelete
	DefaultVolumeBindingMode             = storagev1.VolumeBindingImmediate
	DefaultVolumeMode                    = corev1.PersistentVolumeFilesystem
)

var (
	accessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadOnlyMany, corev1.ReadWriteMany, corev1.ReadWriteOnce,
		corev1.ReadWriteOncePod}
	// Recycle is deprecated in Kubernetes; Skiff has no recycler.
	pvReclaimPolicies = []corev1.PersistentVolumeReclaimPolicy{corev1.PersistentVolumeReclaimDelete, corev1.PersistentVolumeReclaimRetain}
	scReclaimPolicies = pvReclaimPolicies
	bindingModes      = []storagev1.VolumeBindingMode{storagev1.VolumeBindingImmediate, storagev1.VolumeBindingWaitForFirstConsumer}
	// Block volumes are not supported by Skiff.
	volumeModes = []corev1.PersistentVolumeMode{corev1.PersistentVolumeFilesystem}
	pvPhases    = []corev1.PersistentVolumePhase{corev1.VolumeAvailable, corev1.VolumeBound, corev1.VolumeFailed,
		corev1.VolumePending, corev1.VolumeReleased}
	pvcPhases    = []corev1.PersistentVolumeClaimPhase{corev1.ClaimBound, corev1.ClaimLost, corev1.ClaimPending}
	hostPathType = []corev1.HostPathType{corev1.HostPathUnset, corev1.HostPathBlockDev, corev1.HostPathCharDev, corev1.HostPathDirectory,
		corev1.HostPathDirectoryOrCreate, corev1.HostPathFile, corev1.HostPathFileOrCreate, corev1.HostPathSocket}
)

func defaultPersistentVolume(pv *corev1.PersistentVolume) {
	if pv.Spec.PersistentVolumeReclaimPolicy == "" {
		pv.Spec.PersistentVolumeReclaimPolicy = DefaultPersistentVolumeReclaimPolicy
	}
	if pv.Spec.VolumeMode == nil {
		pv.Spec.VolumeMode = new(DefaultVolumeMode)
	}
	if pv.Spec.HostPath != nil && pv.Spec.HostPath.Type == nil {
		pv.Spec.HostPath.Type = new(corev1.HostPathUnset)
	}
}

func defaultClaimSpec(spec *corev1.PersistentVolumeClaimSpec) {
	if spec.VolumeMode == nil {
		spec.VolumeMode = new(DefaultVolumeMode)
	}
}

func defaultStorageClass(sc *storagev1.StorageClass) {
	if sc.ReclaimPolicy == nil {
		sc.ReclaimPolicy = new(DefaultStorageClassReclaimPolicy)
	}
	if sc.VolumeBindingMode == nil {
		sc.VolumeBindingMode = new(DefaultVolumeBindingMode)
	}
}

func validateAccessModes(modes []corev1.PersistentVolumeAccessMode, p *field.Path) field.ErrorList {
	if len(modes) == 0 {
		return field.ErrorList{field.Required(p, "at least 1 access mode is required")}
	}
	var errs field.ErrorList
	for _, m := range modes {
		errs = append(errs, oneOf(p, m, accessModes...)...)
	}
	if slices.Contains(modes, corev1.ReadWriteOncePod) && len(modes) > 1 {
		errs = append(errs, field.Forbidden(p, "may not use ReadWriteOncePod with other access modes"))
	}
	return errs
}

func validateVolumeMode(m *corev1.PersistentVolumeMode, p *field.Path) field.ErrorList {
	if m == nil {
		return nil
	}
	return oneOf(p, *m, volumeModes...)
}

func validateStorageClassName(name string, p *field.Path) field.ErrorList {
	if name == "" {
		return nil
	}
	return invalidEach(p, name, apivalidation.NameIsDNSSubdomain(name, false))
}

// validateStorageQuantity checks a storage size: given, and more than zero.
func validateStorageQuantity(rl corev1.ResourceList, p *field.Path) field.ErrorList {
	q, ok := rl[corev1.ResourceStorage]
	if !ok {
		return field.ErrorList{field.Required(p.Key(string(corev1.ResourceStorage)), "")}
	}
	if q.Cmp(resource.Quantity{}) <= 0 {
		return field.ErrorList{field.Invalid(p.Key(string(corev1.ResourceStorage)), q.String(), "must be greater than zero")}
	}
	return nil
}

// validateClaimSpec checks a claim's spec, alone or as a StatefulSet's claim template.
func validateClaimSpec(spec *corev1.PersistentVolumeClaimSpec, p *field.Path) field.ErrorList {
	errs := validateAccessModes(spec.AccessModes, p.Child("accessModes"))
	if spec.Selector != nil {
		errs = append(errs, metav1validation.ValidateLabelSelector(spec.Selector, metav1validation.LabelSelectorValidationOptions{}, p.Child("selector"))...)
	}
	errs = append(errs, validateStorageQuantity(spec.Resources.Requests, p.Child("resources").Child("requests"))...)
	if lim, ok := spec.Resources.Limits[corev1.ResourceStorage]; ok {
		if req, ok := spec.Resources.Requests[corev1.ResourceStorage]; ok && req.Cmp(lim) > 0 {
			errs = append(errs, field.Invalid(p.Child("resources", "requests").Key(string(corev1.ResourceStorage)), req.String(),
				"must be less than or equal to storage limit"))
		}
	}
	if spec.StorageClassName != nil {
		errs = append(errs, validateStorageClassName(*spec.StorageClassName, p.Child("storageClassName"))...)
	}
	if spec.VolumeName != "" {
		errs = append(errs, invalidEach(p.Child("volumeName"), spec.VolumeName, apivalidation.NameIsDNSSubdomain(spec.VolumeName, false))...)
	}
	return append(errs, validateVolumeMode(spec.VolumeMode, p.Child("volumeMode"))...)
}

const claimUpdateMsg = "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"

// validateClaimUpdate is Kubernetes' ValidatePersistentVolumeClaimUpdate within Skiff's
// storage: the spec is fixed, but that the binder fills volumeName (once) and a
// default storageClassName, and a size is never resized (Skiff's volumes do not grow).
func validateClaimUpdate(old, pvc *corev1.PersistentVolumeClaim) field.ErrorList {
	a, b := old.Spec.DeepCopy(), pvc.Spec.DeepCopy()
	defaultClaimSpec(a)
	defaultClaimSpec(b)
	if a.VolumeName == "" {
		a.VolumeName = b.VolumeName
	}
	if a.StorageClassName == nil {
		a.StorageClassName = b.StorageClassName
	}
	p := field.NewPath("spec")
	if !equality.Semantic.DeepEqual(a.Resources.Requests, b.Resources.Requests) {
		return field.ErrorList{field.Forbidden(p.Child("resources", "requests").Key(string(corev1.ResourceStorage)),
			"only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize")}
	}
	if !equality.Semantic.DeepEqual(a, b) {
		return field.ErrorList{field.Forbidden(p, claimUpdateMsg)}
	}
	return nil
}

func validateClaimStatus(st *corev1.PersistentVolumeClaimStatus, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if st.Phase != "" {
		errs = append(errs, oneOfChild(p, "phase", st.Phase, pvcPhases...)...)
	}
	for _, m := range st.AccessModes {
		errs = append(errs, oneOfChild(p, "accessModes", m, accessModes...)...)
	}
	return errs
}

// validatePersistentVolume is Kubernetes' ValidatePersistentVolumeSpec for the volume
// sources Skiff mounts: local (a directory on the node its node affinity names) and
// hostPath.
func validatePersistentVolume(pv *corev1.PersistentVolume) field.ErrorList {
	p := field.NewPath("spec")
	spec := &pv.Spec
	var errs field.ErrorList
	cp := p.Child("capacity")
	if len(spec.Capacity) == 0 {
		errs = append(errs, field.Required(cp, ""))
	} else {
		if _, ok := spec.Capacity[corev1.ResourceStorage]; !ok || len(spec.Capacity) > 1 {
			var keys []string
			for k := range spec.Capacity {
				keys = append(keys, string(k))
			}
			slices.Sort(keys)
			errs = append(errs, field.NotSupported(cp, strings.Join(keys, ","), []string{string(corev1.ResourceStorage)}))
		}
		errs = append(errs, validateStorageQuantity(spec.Capacity, cp)...)
	}
	errs = append(errs, validateAccessModes(spec.AccessModes, p.Child("accessModes"))...)
	if rp := spec.PersistentVolumeReclaimPolicy; rp != "" {
		errs = append(errs, oneOfChild(p, "persistentVolumeReclaimPolicy", rp, pvReclaimPolicies...)...)
	}
	errs = append(errs, validateStorageClassName(spec.StorageClassName, p.Child("storageClassName"))...)
	errs = append(errs, validateVolumeMode(spec.VolumeMode, p.Child("volumeMode"))...)
	sources := 0
	if hp := spec.HostPath; hp != nil {
		sources++
		errs = append(errs, validateVolumePath(hp.Path, p.Child("hostPath", "path"))...)
		if hp.Type != nil {
			errs = append(errs, oneOf(p.Child("hostPath", "type"), *hp.Type, hostPathType...)...)
		}
	}
	if l := spec.Local; l != nil {
		sources++
		errs = append(errs, validateVolumePath(l.Path, p.Child("local", "path"))...)
		if spec.NodeAffinity == nil || spec.NodeAffinity.Required == nil {
			errs = append(errs, field.Required(p.Child("nodeAffinity"), "Local volume requires node affinity"))
		}
	}
	switch {
	case sources == 0:
		errs = append(errs, field.Required(p, "must specify a volume type"))
	case sources > 1:
		errs = append(errs, field.Forbidden(p, "may not specify more than 1 volume type"))
	}
	if na := spec.NodeAffinity; na != nil {
		np := p.Child("nodeAffinity")
		if na.Required == nil {
			errs = append(errs, field.Required(np.Child("required"), "must specify required node constraints"))
		} else {
			errs = append(errs, validateNodeSelector(na.Required, np.Child("required"))...)
		}
	}
	if ref := spec.ClaimRef; ref != nil {
		rp := p.Child("claimRef")
		if ref.Name == "" {
			errs = append(errs, field.Required(rp.Child("name"), ""))
		}
		if ref.Namespace == "" {
			errs = append(errs, field.Required(rp.Child("namespace"), ""))
		}
	}
	return errs
}

// validateVolumePath checks a volume's path on its node: absolute, without "..".
func validateVolumePath(path string, p *field.Path) field.ErrorList {
	switch {
	case path == "":
		return field.ErrorList{field.Required(p, "")}
	case !filepath.IsAbs(path):
		return field.ErrorList{field.Invalid(p, path, "must be an absolute path")}
	case slices.Contains(strings.Split(path, "/"), ".."):
		return field.ErrorList{field.Invalid(p, path, "must not contain '..'")}
	}
	return nil
}

// validatePersistentVolumeUpdate: a volume's source and mode are fixed.
func validatePersistentVolumeUpdate(old, pv *corev1.PersistentVolume) field.ErrorList {
	p := field.NewPath("spec")
	var errs field.ErrorList
	if !equality.Semantic.DeepEqual(old.Spec.PersistentVolumeSource, pv.Spec.PersistentVolumeSource) {
		errs = append(errs, field.Forbidden(p.Child("persistentvolumesource"), "spec.persistentvolumesource is immutable after creation"))
	}
	a, b := old.Spec.VolumeMode, pv.Spec.VolumeMode
	if ptrOr(a, DefaultVolumeMode) != ptrOr(b, DefaultVolumeMode) {
		errs = append(errs, apivalidation.ValidateImmutableField(b, a, p.Child("volumeMode"))...)
	}
	if old.Spec.NodeAffinity != nil {
		errs = append(errs, apivalidation.ValidateImmutableField(pv.Spec.NodeAffinity, old.Spec.NodeAffinity, p.Child("nodeAffinity"))...)
	}
	return errs
}

func ptrOr[T any](v *T, def T) T {
	if v == nil {
		return def
	}
	return *v
}

func validatePersistentVolumeStatus(st *corev1.PersistentVolumeStatus, p *field.Path) field.ErrorList {
	if st.Phase == "" {
		return nil
	}
	return oneOfChild(p, "phase", st.Phase, pvPhases...)
}

// validateStorageClass is Kubernetes' ValidateStorageClass.
func validateStorageClass(sc *storagev1.StorageClass) field.ErrorList {
	var errs field.ErrorList
	pp := field.NewPath("provisioner")
	if sc.Provisioner == "" {
		errs = append(errs, field.Required(pp, ""))
	} else {
		errs = append(errs, metav1validation.ValidateLabelName(sc.Provisioner, pp)...)
	}
	total := 0
	for k, v := range sc.Parameters {
		if k == "" {
			errs = append(errs, field.Invalid(field.NewPath("parameters"), k, "key must not be empty"))
		}
		total += len(k) + len(v)
	}
	if total > 256*1024 {
		errs = append(errs, field.TooLong(field.NewPath("parameters"), "", 256*1024))
	}
	if sc.ReclaimPolicy != nil {
		errs = append(errs, oneOf(field.NewPath("reclaimPolicy"), *sc.ReclaimPolicy, scReclaimPolicies...)...)
	}
	if sc.VolumeBindingMode != nil {
		errs = append(errs, oneOf(field.NewPath("volumeBindingMode"), *sc.VolumeBindingMode, bindingModes...)...)
	}
	return errs
}

// validateStorageClassUpdate is Kubernetes' ValidateStorageClassUpdate: what a class
// provisions with is fixed.
func validateStorageClassUpdate(old, sc *storagev1.StorageClass) field.ErrorList {
	var errs field.ErrorList
	if !equality.Semantic.DeepEqual(old.Parameters, sc.Parameters) {
		errs = append(errs, field.Forbidden(field.NewPath("parameters"), "updates to parameters are forbidden."))
	}
	if old.Provisioner != sc.Provisioner {
		errs = append(errs, field.Forbidden(field.NewPath("provisioner"), "updates to provisioner are forbidden."))
	}
	if ptrOr(old.ReclaimPolicy, DefaultStorageClassReclaimPolicy) != ptrOr(sc.ReclaimPolicy, DefaultStorageClassReclaimPolicy) {
		errs = append(errs, field.Forbidden(field.NewPath("reclaimPolicy"), "updates to reclaimPolicy are forbidden."))
	}
	if ptrOr(old.VolumeBindingMode, DefaultVolumeBindingMode) != ptrOr(sc.VolumeBindingMode, DefaultVolumeBindingMode) {
		errs = append(errs, apivalidation.ValidateImmutableField(sc.VolumeBindingMode, old.VolumeBindingMode, field.NewPath("volumeBindingMode"))...)
	}
	return errs
}

// csiNodeIDMaxLength is the longest node ID a CSINode's driver may have.
const csiNodeIDMaxLength = 256

// validateCSINode is Kubernetes' ValidateCSINode: each driver named once, by a CSI
// driver's name, with its node ID and valid topology keys.
func validateCSINode(n *storagev1.CSINode) field.ErrorList {
	var errs field.ErrorList
	p := field.NewPath("spec", "drivers")
	seen := map[string]bool{}
	for i, d := range n.Spec.Drivers {
		dp := p.Index(i)
		errs = append(errs, validateCSIDriverName(d.Name, dp.Child("name"))...)
		if seen[d.Name] {
			errs = append(errs, field.Duplicate(dp.Child("name"), d.Name))
		}
		seen[d.Name] = true
		switch {
		case d.NodeID == "":
			errs = append(errs, field.Required(dp.Child("nodeID"), "nodeID must be provided"))
		case len(d.NodeID) > csiNodeIDMaxLength:
			errs = append(errs, field.TooLong(dp.Child("nodeID"), "", csiNodeIDMaxLength))
		}
		keys := map[string]bool{}
		for j, k := range d.TopologyKeys {
			kp := dp.Child("topologyKeys").Index(j)
			if k == "" {
				errs = append(errs, field.Required(kp, ""))
				continue
			}
			if keys[k] {
				errs = append(errs, field.Duplicate(kp, k))
			}
			keys[k] = true
			for _, msg := range utilvalidation.IsQualifiedName(k) {
				errs = append(errs, field.Invalid(kp, k, msg))
			}
		}
		if a := d.Allocatable; a != nil && a.Count != nil && *a.Count < 0 {
			errs = append(errs, field.Invalid(dp.Child("allocatable", "count"), *a.Count, "must be greater than or equal to 0"))
		}
	}
	return errs
}

// validateCSIDriverName is Kubernetes' ValidateCSIDriverName.
func validateCSIDriverName(name string, p *field.Path) field.ErrorList {
	if name == "" {
		return field.ErrorList{field.Required(p, name)}
	}
	if len(name) > 63 {
		return field.ErrorList{field.TooLong(p, name, 63)}
	}
	var errs field.ErrorList
	for _, msg := range utilvalidation.IsDNS1123Subdomain(strings.ToLower(name)) {
		errs = append(errs, field.Invalid(p, name, msg))
	}
	return errs
}

// validateCSINodeUpdate is Kubernetes' ValidateCSINodeUpdate: a driver listed before
// keeps its node ID and topology keys while it stays.
func validateCSINodeUpdate(old, n *storagev1.CSINode) field.ErrorList {
	var errs field.ErrorList
	for _, was := range old.Spec.Drivers {
		for i, d := range n.Spec.Drivers {
			if d.Name != was.Name {
				continue
			}
			dp := field.NewPath("spec", "drivers").Index(i)
			if d.NodeID != was.NodeID {
				errs = append(errs, field.Invalid(dp.Child("nodeID"), d.NodeID, "field is immutable"))
			}
			if !slices.Equal(d.TopologyKeys, was.TopologyKeys) {
				errs = append(errs, field.Invalid(dp.Child("topologyKeys"), d.TopologyKeys, "field is immutable"))
			}
		}
	}
	return errs
}

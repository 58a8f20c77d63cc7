package validation

import (
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// DaemonSets, StatefulSets and their ControllerRevisions, as Kubernetes' apps validation
// has them.

// Defaults of the workloads, as Kubernetes sets them.
const (
	DefaultDaemonSetMaxUnavailable = 1
	DefaultStatefulSetPartition    = 0
)

var (
	daemonSetStrategies    = []appsv1.DaemonSetUpdateStrategyType{appsv1.OnDeleteDaemonSetStrategyType, appsv1.RollingUpdateDaemonSetStrategyType}
	statefulSetStrategies  = []appsv1.StatefulSetUpdateStrategyType{appsv1.OnDeleteStatefulSetStrategyType, appsv1.RollingUpdateStatefulSetStrategyType}
	podManagementPolicies  = []appsv1.PodManagementPolicyType{appsv1.OrderedReadyPodManagement, appsv1.ParallelPodManagement}
	claimRetentionPolicies = []appsv1.PersistentVolumeClaimRetentionPolicyType{appsv1.DeletePersistentVolumeClaimRetentionPolicyType,
		appsv1.RetainPersistentVolumeClaimRetentionPolicyType}
)

func defaultDaemonSetSpec(spec *appsv1.DaemonSetSpec) {
	s := &spec.UpdateStrategy
	if s.Type == "" {
		s.Type = appsv1.RollingUpdateDaemonSetStrategyType
	}
	if s.Type == appsv1.RollingUpdateDaemonSetStrategyType {
		if s.RollingUpdate == nil {
			s.RollingUpdate = &appsv1.RollingUpdateDaemonSet{}
		}
		if s.RollingUpdate.MaxUnavailable == nil {
			s.RollingUpdate.MaxUnavailable = new(intstr.FromInt32(DefaultDaemonSetMaxUnavailable))
		}
		if s.RollingUpdate.MaxSurge == nil {
			s.RollingUpdate.MaxSurge = new(intstr.FromInt32(0))
		}
	}
	if spec.RevisionHistoryLimit == nil {
		spec.RevisionHistoryLimit = new(int32(DefaultRevisionHistoryLimit))
	}
	defaultTemplate(&spec.Template)
}

func defaultStatefulSetSpec(spec *appsv1.StatefulSetSpec) {
	if spec.Replicas == nil {
		spec.Replicas = new(int32(DefaultReplicas))
	}
	if spec.PodManagementPolicy == "" {
		spec.PodManagementPolicy = appsv1.OrderedReadyPodManagement
	}
	s := &spec.UpdateStrategy
	if s.Type == "" {
		s.Type = appsv1.RollingUpdateStatefulSetStrategyType
	}
	if s.Type == appsv1.RollingUpdateStatefulSetStrategyType {
		if s.RollingUpdate == nil {
			s.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{}
		}
		if s.RollingUpdate.Partition == nil {
			s.RollingUpdate.Partition = new(int32(DefaultStatefulSetPartition))
		}
	}
	if spec.RevisionHistoryLimit == nil {
		spec.RevisionHistoryLimit = new(int32(DefaultRevisionHistoryLimit))
	}
	if spec.PersistentVolumeClaimRetentionPolicy == nil {
		spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{}
	}
	rp := spec.PersistentVolumeClaimRetentionPolicy
	if rp.WhenDeleted == "" {
		rp.WhenDeleted = appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	}
	if rp.WhenScaled == "" {
		rp.WhenScaled = appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	}
	for i := range spec.VolumeClaimTemplates {
		defaultClaimSpec(&spec.VolumeClaimTemplates[i].Spec)
	}
	defaultTemplate(&spec.Template)
}

func validateDaemonSetSpec(spec *appsv1.DaemonSetSpec, p *field.Path) field.ErrorList {
	errs := validateSelectorAndTemplate(spec.Selector, &spec.Template, "daemonset", p)
	errs = append(errs, apivalidation.ValidateNonnegativeField(int64(spec.MinReadySeconds), p.Child("minReadySeconds"))...)
	if spec.RevisionHistoryLimit != nil {
		errs = append(errs, apivalidation.ValidateNonnegativeField(int64(*spec.RevisionHistoryLimit), p.Child("revisionHistoryLimit"))...)
	}
	sp := p.Child("updateStrategy")
	s := &spec.UpdateStrategy
	switch s.Type {
	case "":
		// Default fills it; Validate accepts an object before Default.
	case appsv1.OnDeleteDaemonSetStrategyType:
	case appsv1.RollingUpdateDaemonSetStrategyType:
		if s.RollingUpdate == nil {
			// Default fills it too.
			break
		}
		errs = append(errs, validateDaemonSetRollingUpdate(s.RollingUpdate, sp.Child("rollingUpdate"))...)
	default:
		errs = append(errs, oneOfChild(sp, "type", s.Type, daemonSetStrategies...)...)
	}
	return errs
}

// validateDaemonSetRollingUpdate is Kubernetes' ValidateRollingUpdateDaemonSet: counts or
// percents of at most 100%, exactly one of them not zero.
func validateDaemonSetRollingUpdate(ru *appsv1.RollingUpdateDaemonSet, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	unavail, surge := 1, 0
	if ru.MaxUnavailable != nil {
		n, e := intOrPercent(ru.MaxUnavailable, p.Child("maxUnavailable"))
		unavail, errs = n, append(errs, e...)
		if len(e) == 0 {
			errs = append(errs, percentOrCount(ru.MaxUnavailable, p.Child("maxUnavailable"))...)
		}
	}
	if ru.MaxSurge != nil {
		n, e := intOrPercent(ru.MaxSurge, p.Child("maxSurge"))
		surge, errs = n, append(errs, e...)
		if len(e) == 0 {
			errs = append(errs, percentOrCount(ru.MaxSurge, p.Child("maxSurge"))...)
		}
	}
	if len(errs) > 0 {
		return errs
	}
	switch {
	case unavail != 0 && surge != 0:
		errs = append(errs, field.Invalid(p.Child("maxSurge"), ru.MaxSurge, "may not be set when maxUnavailable is non-zero"))
	case unavail == 0 && surge == 0:
		errs = append(errs, field.Required(p.Child("maxUnavailable"), "cannot be 0 when maxSurge is 0"))
	}
	return errs
}

func validateStatefulSetSpec(spec *appsv1.StatefulSetSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if spec.PodManagementPolicy != "" {
		errs = append(errs, oneOfChild(p, "podManagementPolicy", spec.PodManagementPolicy, podManagementPolicies...)...)
	}
	sp := p.Child("updateStrategy")
	s := &spec.UpdateStrategy
	switch s.Type {
	case "":
	case appsv1.OnDeleteStatefulSetStrategyType:
		if s.RollingUpdate != nil {
			errs = append(errs, field.Invalid(sp.Child("rollingUpdate"), s.RollingUpdate,
				"only allowed for updateStrategy '"+string(appsv1.RollingUpdateStatefulSetStrategyType)+"'"))
		}
	case appsv1.RollingUpdateStatefulSetStrategyType:
		if ru := s.RollingUpdate; ru != nil {
			rp := sp.Child("rollingUpdate")
			if ru.Partition != nil {
				errs = append(errs, apivalidation.ValidateNonnegativeField(int64(*ru.Partition), rp.Child("partition"))...)
			}
			if ru.MaxUnavailable != nil {
				mp := rp.Child("maxUnavailable")
				n, e := intOrPercent(ru.MaxUnavailable, mp)
				if len(e) == 0 {
					e = percentOrCount(ru.MaxUnavailable, mp)
				}
				if len(e) == 0 && n == 0 {
					e = field.ErrorList{field.Invalid(mp, ru.MaxUnavailable, "should not be 0")}
				}
				errs = append(errs, e...)
			}
		}
	default:
		errs = append(errs, oneOfChild(sp, "type", s.Type, statefulSetStrategies...)...)
	}
	if rp := spec.PersistentVolumeClaimRetentionPolicy; rp != nil {
		pp := p.Child("persistentVolumeClaimRetentionPolicy")
		if rp.WhenDeleted != "" {
			errs = append(errs, oneOfChild(pp, "whenDeleted", rp.WhenDeleted, claimRetentionPolicies...)...)
		}
		if rp.WhenScaled != "" {
			errs = append(errs, oneOfChild(pp, "whenScaled", rp.WhenScaled, claimRetentionPolicies...)...)
		}
	}
	if spec.Replicas != nil {
		errs = append(errs, apivalidation.ValidateNonnegativeField(int64(*spec.Replicas), p.Child("replicas"))...)
	}
	if spec.Ordinals != nil {
		errs = append(errs, apivalidation.ValidateNonnegativeField(int64(spec.Ordinals.Start), p.Child("ordinals", "start"))...)
	}
	errs = append(errs, apivalidation.ValidateNonnegativeField(int64(spec.MinReadySeconds), p.Child("minReadySeconds"))...)
	if spec.RevisionHistoryLimit != nil {
		errs = append(errs, apivalidation.ValidateNonnegativeField(int64(*spec.RevisionHistoryLimit), p.Child("revisionHistoryLimit"))...)
	}
	if spec.ServiceName != "" {
		errs = append(errs, invalidEach(p.Child("serviceName"), spec.ServiceName, apivalidation.NameIsDNSLabel(spec.ServiceName, false))...)
	}
	errs = append(errs, validateSelectorAndTemplate(spec.Selector, withClaimVolumes(spec), "statefulset", p)...)
	names := map[string]bool{}
	for i := range spec.VolumeClaimTemplates {
		ct := &spec.VolumeClaimTemplates[i]
		cp := p.Child("volumeClaimTemplates").Index(i)
		mp := cp.Child("metadata")
		if ct.Name == "" {
			errs = append(errs, field.Required(mp.Child("name"), ""))
		} else {
			errs = append(errs, invalidEach(mp.Child("name"), ct.Name, apivalidation.NameIsDNSSubdomain(ct.Name, false))...)
			if names[ct.Name] {
				errs = append(errs, field.Duplicate(mp.Child("name"), ct.Name))
			}
			names[ct.Name] = true
		}
		errs = append(errs, validateTemplateMeta(&ct.ObjectMeta, mp)...)
		errs = append(errs, validateClaimSpec(&ct.Spec, cp.Child("spec"))...)
	}
	return errs
}

// statefulSetUpdateMsg is Kubernetes' word on what a StatefulSet's update may change.
const statefulSetUpdateMsg = "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', " +
	"'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"

// validateStatefulSetUpdate forbids changes to what a StatefulSet's pods and claims are
// named and selected by.
func validateStatefulSetUpdate(old, sts *appsv1.StatefulSet) field.ErrorList {
	a, b := old.Spec.DeepCopy(), sts.Spec.DeepCopy()
	defaultStatefulSetSpec(a)
	defaultStatefulSetSpec(b)
	// Take what may change from b into a; what still differs may not.
	a.Replicas, a.Ordinals, a.Template, a.UpdateStrategy = b.Replicas, b.Ordinals, b.Template, b.UpdateStrategy
	a.RevisionHistoryLimit, a.PersistentVolumeClaimRetentionPolicy, a.MinReadySeconds = b.RevisionHistoryLimit, b.PersistentVolumeClaimRetentionPolicy, b.MinReadySeconds
	if equality.Semantic.DeepEqual(a, b) {
		return nil
	}
	return field.ErrorList{field.Forbidden(field.NewPath("spec"), statefulSetUpdateMsg)}
}

func validateDaemonSetStatus(st *appsv1.DaemonSetStatus, p *field.Path) field.ErrorList {
	errs := apivalidation.ValidateNonnegativeField(st.ObservedGeneration, p.Child("observedGeneration"))
	errs = append(errs, nonNegativeCounts(p, count{"currentNumberScheduled", st.CurrentNumberScheduled},
		count{"numberMisscheduled", st.NumberMisscheduled}, count{"desiredNumberScheduled", st.DesiredNumberScheduled},
		count{"numberReady", st.NumberReady}, count{"updatedNumberScheduled", st.UpdatedNumberScheduled},
		count{"numberAvailable", st.NumberAvailable}, count{"numberUnavailable", st.NumberUnavailable})...)
	if st.CollisionCount != nil {
		errs = append(errs, apivalidation.ValidateNonnegativeField(int64(*st.CollisionCount), p.Child("collisionCount"))...)
	}
	for i, c := range st.Conditions {
		errs = append(errs, validateCondition(string(c.Type), c.Status, p.Child("conditions").Index(i))...)
	}
	return errs
}

func validateStatefulSetStatus(st *appsv1.StatefulSetStatus, p *field.Path) field.ErrorList {
	errs := apivalidation.ValidateNonnegativeField(st.ObservedGeneration, p.Child("observedGeneration"))
	errs = append(errs, nonNegativeCounts(p, count{"replicas", st.Replicas}, count{"readyReplicas", st.ReadyReplicas},
		count{"currentReplicas", st.CurrentReplicas}, count{"updatedReplicas", st.UpdatedReplicas},
		count{"availableReplicas", st.AvailableReplicas})...)
	if st.CollisionCount != nil {
		errs = append(errs, apivalidation.ValidateNonnegativeField(int64(*st.CollisionCount), p.Child("collisionCount"))...)
	}
	for i, c := range st.Conditions {
		errs = append(errs, validateCondition(string(c.Type), c.Status, p.Child("conditions").Index(i))...)
	}
	return errs
}

// validateControllerRevision is Kubernetes' ValidateControllerRevision: it holds data, at
// a non-negative revision.
func validateControllerRevision(cr *appsv1.ControllerRevision) field.ErrorList {
	var errs field.ErrorList
	if cr.Data.Raw == nil && cr.Data.Object == nil {
		errs = append(errs, field.Required(field.NewPath("data"), "data is mandatory"))
	}
	return append(errs, apivalidation.ValidateNonnegativeField(cr.Revision, field.NewPath("revision"))...)
}

// validateControllerRevisionUpdate: a revision's data never changes, its number may
// (a rollback makes an old revision the newest).
func validateControllerRevisionUpdate(old, cr *appsv1.ControllerRevision) field.ErrorList {
	return apivalidation.ValidateImmutableField(cr.Data, old.Data, field.NewPath("data"))
}

// withClaimVolumes is a StatefulSet's pod template as its pods will have it: with a
// volume for each claim template, which the controller adds (a volume of the template's
// name is replaced), so that volumeMounts may name them.
func withClaimVolumes(spec *appsv1.StatefulSetSpec) *corev1.PodTemplateSpec {
	if len(spec.VolumeClaimTemplates) == 0 {
		return &spec.Template
	}
	t := spec.Template.DeepCopy()
	for _, ct := range spec.VolumeClaimTemplates {
		if ct.Name == "" || len(apivalidation.NameIsDNSSubdomain(ct.Name, false)) > 0 {
			continue // refused as the claim template's own name
		}
		v := corev1.Volume{Name: ct.Name, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: ct.Name}}}
		if i := slices.IndexFunc(t.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == ct.Name }); i >= 0 {
			t.Spec.Volumes[i] = v
		} else {
			t.Spec.Volumes = append(t.Spec.Volumes, v)
		}
	}
	return t
}

package validation

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiffhq/skiff/kinds/indexes"
)

// Jobs and CronJobs, as Kubernetes' batch validation has them.

// Defaults of Jobs and CronJobs, as Kubernetes sets them.
const (
	DefaultBackoffLimit               = 6
	DefaultSuccessfulJobsHistoryLimit = 3
	DefaultFailedJobsHistoryLimit     = 1
	DefaultConcurrencyPolicy          = batchv1.AllowConcurrent
)

// Limits of Indexed Jobs, as Kubernetes has them.
const (
	maxParallelismForIndexedJob   = 100_000
	maxCompletionsForIndexedJob   = 100_000
	maxFailedIndexesForIndexedJob = 100_000
	maxSuccessPolicyRules         = 20
	maxPodFailurePolicyRules      = 20
	maxOnExitCodeValues           = 255
	maxPodFailurePolicyConditions = 20
	cronJobNameMaxLength          = 52 // a Job's name is the CronJob's, "-" and up to 11 digits
	selectorGeneratedMsg          = "`selector` will be auto-generated"
)

var (
	completionModes       = []batchv1.CompletionMode{batchv1.IndexedCompletion, batchv1.NonIndexedCompletion}
	concurrencyPolicies   = []batchv1.ConcurrencyPolicy{batchv1.AllowConcurrent, batchv1.ForbidConcurrent, batchv1.ReplaceConcurrent}
	jobRestartPolicies    = []corev1.RestartPolicy{corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever}
	podReplacementPolices = []batchv1.PodReplacementPolicy{batchv1.Failed, batchv1.TerminatingOrFailed}
	exitCodeOperators     = []batchv1.PodFailurePolicyOnExitCodesOperator{batchv1.PodFailurePolicyOnExitCodesOpIn, batchv1.PodFailurePolicyOnExitCodesOpNotIn}
	failurePolicyActions  = []batchv1.PodFailurePolicyAction{batchv1.PodFailurePolicyActionCount, batchv1.PodFailurePolicyActionFailIndex,
		batchv1.PodFailurePolicyActionFailJob, batchv1.PodFailurePolicyActionIgnore}
)

func defaultJobSpec(job *batchv1.Job) {
	spec := &job.Spec
	if spec.Completions == nil && spec.Parallelism == nil {
		spec.Completions, spec.Parallelism = new(int32(1)), new(int32(1))
	}
	if spec.Parallelism == nil {
		spec.Parallelism = new(int32(1))
	}
	if spec.BackoffLimit == nil {
		if spec.BackoffLimitPerIndex != nil {
			spec.BackoffLimit = new(int32(math.MaxInt32))
		} else {
			spec.BackoffLimit = new(int32(DefaultBackoffLimit))
		}
	}
	if len(job.Labels) == 0 && len(spec.Template.Labels) > 0 {
		job.Labels = spec.Template.Labels
	}
	if spec.CompletionMode == nil {
		spec.CompletionMode = new(batchv1.NonIndexedCompletion)
	}
	if spec.Suspend == nil {
		spec.Suspend = new(false)
	}
	if pfp := spec.PodFailurePolicy; pfp != nil {
		for i := range pfp.Rules {
			for j := range pfp.Rules[i].OnPodConditions {
				if c := &pfp.Rules[i].OnPodConditions[j]; c.Status == "" {
					c.Status = corev1.ConditionTrue
				}
			}
		}
	}
	if spec.PodReplacementPolicy == nil {
		if spec.PodFailurePolicy != nil {
			spec.PodReplacementPolicy = new(batchv1.Failed)
		} else {
			spec.PodReplacementPolicy = new(batchv1.TerminatingOrFailed)
		}
	}
	defaultTemplate(&spec.Template)
}

func defaultCronJobSpec(spec *batchv1.CronJobSpec) {
	if spec.ConcurrencyPolicy == "" {
		spec.ConcurrencyPolicy = DefaultConcurrencyPolicy
	}
	if spec.Suspend == nil {
		spec.Suspend = new(false)
	}
	if spec.SuccessfulJobsHistoryLimit == nil {
		spec.SuccessfulJobsHistoryLimit = new(int32(DefaultSuccessfulJobsHistoryLimit))
	}
	if spec.FailedJobsHistoryLimit == nil {
		spec.FailedJobsHistoryLimit = new(int32(DefaultFailedJobsHistoryLimit))
	}
	// Kubernetes defaults a CronJob's job template as a pod template only: the Job's own
	// defaults come when the CronJob controller creates it.
	defaultTemplate(&spec.JobTemplate.Spec.Template)
}

// validateJob is Kubernetes' ValidateJob: the spec, and a selector the API server
// generated (or the user's, with manualSelector) that selects the template's pods.
func validateJob(job *batchv1.Job) field.ErrorList {
	p := field.NewPath("spec")
	errs := validateJobSpec(&job.Spec, p)
	if c := job.Spec.Completions; c != nil && *c > 0 && job.Spec.CompletionMode != nil && *job.Spec.CompletionMode == batchv1.IndexedCompletion {
		// The controller names each pod's host JOB-INDEX: the last index must make a
		// DNS label, or that pod could not be made.
		host := fmt.Sprintf("%s-%d", job.Name, *c-1)
		if len(utilvalidation.IsDNS1123Label(host)) > 0 {
			errs = append(errs, field.Invalid(field.NewPath("metadata", "name"), job.Name,
				"will not able to create pod with invalid DNS label: "+host))
		}
	}
	sp := p.Child("selector")
	if job.Spec.Selector == nil {
		errs = append(errs, field.Required(sp, ""))
		return errs
	}
	errs = append(errs, metav1validation.ValidateLabelSelector(job.Spec.Selector, metav1validation.LabelSelectorValidationOptions{}, sp)...)
	if sel, err := metav1.LabelSelectorAsSelector(job.Spec.Selector); err == nil && !templateMissing(&job.Spec.Template) &&
		!sel.Matches(labels.Set(job.Spec.Template.Labels)) {
		errs = append(errs, field.Invalid(p.Child("template", "metadata", "labels"), job.Spec.Template.Labels,
			"`selector` does not match template `labels`"))
	}
	return errs
}

// validateJobSpec checks a Job's spec, alone or as a CronJob's job template (whose
// selector is not there yet).
func validateJobSpec(spec *batchv1.JobSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	nonNeg := func(v *int32, name string) {
		if v != nil {
			errs = append(errs, apivalidation.ValidateNonnegativeField(int64(*v), p.Child(name))...)
		}
	}
	nonNeg(spec.Parallelism, "parallelism")
	nonNeg(spec.Completions, "completions")
	nonNeg(spec.BackoffLimit, "backoffLimit")
	nonNeg(spec.TTLSecondsAfterFinished, "ttlSecondsAfterFinished")
	nonNeg(spec.BackoffLimitPerIndex, "backoffLimitPerIndex")
	nonNeg(spec.MaxFailedIndexes, "maxFailedIndexes")
	if spec.ActiveDeadlineSeconds != nil {
		errs = append(errs, apivalidation.ValidateNonnegativeField(*spec.ActiveDeadlineSeconds, p.Child("activeDeadlineSeconds"))...)
	}
	indexed := spec.CompletionMode != nil && *spec.CompletionMode == batchv1.IndexedCompletion
	if spec.CompletionMode != nil {
		errs = append(errs, oneOfChild(p, "completionMode", *spec.CompletionMode, completionModes...)...)
	}
	if indexed {
		switch {
		case spec.Completions == nil:
			errs = append(errs, field.Required(p.Child("completions"), fmt.Sprintf("when completion mode is %s", batchv1.IndexedCompletion)))
		case *spec.Completions > maxCompletionsForIndexedJob && spec.BackoffLimitPerIndex != nil:
			errs = append(errs, field.Invalid(p.Child("completions"), *spec.Completions,
				fmt.Sprintf("must be less than or equal to %d when completion mode is %s", maxCompletionsForIndexedJob, batchv1.IndexedCompletion)))
		}
		if spec.Parallelism != nil && *spec.Parallelism > maxParallelismForIndexedJob {
			errs = append(errs, field.Invalid(p.Child("parallelism"), *spec.Parallelism,
				fmt.Sprintf("must be less than or equal to %d when completion mode is %s", maxParallelismForIndexedJob, batchv1.IndexedCompletion)))
		}
	}
	if spec.BackoffLimitPerIndex != nil && !indexed {
		errs = append(errs, field.Forbidden(p.Child("backoffLimitPerIndex"), "requires indexed completion mode"))
	}
	if spec.MaxFailedIndexes != nil {
		mp := p.Child("maxFailedIndexes")
		switch {
		case spec.BackoffLimitPerIndex == nil:
			errs = append(errs, field.Required(p.Child("backoffLimitPerIndex"), "when maxFailedIndexes is specified"))
		case *spec.MaxFailedIndexes > maxFailedIndexesForIndexedJob:
			errs = append(errs, field.Invalid(mp, *spec.MaxFailedIndexes, fmt.Sprintf("must be less than or equal to %d", maxFailedIndexesForIndexedJob)))
		case spec.Completions != nil && *spec.MaxFailedIndexes > *spec.Completions:
			errs = append(errs, field.Invalid(mp, *spec.MaxFailedIndexes, "must be less than or equal to completions"))
		}
	}
	if spec.PodReplacementPolicy != nil {
		rp := p.Child("podReplacementPolicy")
		errs = append(errs, oneOf(rp, *spec.PodReplacementPolicy, podReplacementPolices...)...)
		if spec.PodFailurePolicy != nil && *spec.PodReplacementPolicy != batchv1.Failed {
			errs = append(errs, field.NotSupported(rp, *spec.PodReplacementPolicy, []batchv1.PodReplacementPolicy{batchv1.Failed}))
		}
	}
	if spec.PodFailurePolicy != nil {
		errs = append(errs, validatePodFailurePolicy(spec, p.Child("podFailurePolicy"))...)
	}
	if spec.SuccessPolicy != nil {
		errs = append(errs, validateSuccessPolicy(spec, p.Child("successPolicy"))...)
	}
	errs = append(errs, validateJobTemplate(&spec.Template, p.Child("template"))...)
	return errs
}

// validateJobTemplate checks a Job's pod template: its pods finish, so they are never
// restarted whole (restartPolicy OnFailure or Never).
func validateJobTemplate(t *corev1.PodTemplateSpec, p *field.Path) field.ErrorList {
	if templateMissing(t) {
		return field.ErrorList{field.Required(p, "")}
	}
	errs := validateTemplateMeta(&t.ObjectMeta, p.Child("metadata"))
	sp := p.Child("spec")
	errs = append(errs, validatePodSpec(&t.Spec, sp)...)
	if rp := t.Spec.RestartPolicy; !slices.Contains(jobRestartPolicies, rp) {
		errs = append(errs, field.NotSupported(sp.Child("restartPolicy"), rp, jobRestartPolicies))
	}
	return errs
}

func validatePodFailurePolicy(spec *batchv1.JobSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if spec.Template.Spec.RestartPolicy != corev1.RestartPolicyNever {
		errs = append(errs, field.Invalid(field.NewPath("spec", "template", "spec", "restartPolicy"), spec.Template.Spec.RestartPolicy,
			"only \"Never\" is supported when podFailurePolicy is specified"))
	}
	rules := spec.PodFailurePolicy.Rules
	rp := p.Child("rules")
	if len(rules) > maxPodFailurePolicyRules {
		errs = append(errs, field.TooMany(rp, len(rules), maxPodFailurePolicyRules))
	}
	containers := map[string]bool{}
	for _, c := range spec.Template.Spec.Containers {
		containers[c.Name] = true
	}
	for i := range rules {
		r := &rules[i]
		ip := rp.Index(i)
		errs = append(errs, oneOfChild(ip, "action", r.Action, failurePolicyActions...)...)
		if r.Action == batchv1.PodFailurePolicyActionFailIndex && spec.BackoffLimitPerIndex == nil {
			errs = append(errs, field.Forbidden(ip.Child("action"), "requires the backoffLimitPerIndex to be set"))
		}
		switch {
		case r.OnExitCodes != nil && len(r.OnPodConditions) > 0:
			errs = append(errs, field.Invalid(ip, field.OmitValueType{}, "specifying both OnExitCodes and OnPodConditions is not supported"))
		case r.OnExitCodes == nil && len(r.OnPodConditions) == 0:
			errs = append(errs, field.Invalid(ip, field.OmitValueType{}, "specifying one of OnExitCodes and OnPodConditions is required"))
		}
		if ec := r.OnExitCodes; ec != nil {
			ep := ip.Child("onExitCodes")
			if ec.ContainerName != nil && !containers[*ec.ContainerName] {
				errs = append(errs, field.Invalid(ep.Child("containerName"), *ec.ContainerName, "must be one of the container or initContainer names in the pod template"))
			}
			errs = append(errs, oneOfChild(ep, "operator", ec.Operator, exitCodeOperators...)...)
			vp := ep.Child("values")
			switch {
			case len(ec.Values) == 0:
				errs = append(errs, field.Invalid(vp, ec.Values, "at least one value is required"))
			case len(ec.Values) > maxOnExitCodeValues:
				errs = append(errs, field.TooMany(vp, len(ec.Values), maxOnExitCodeValues))
			}
			for j, v := range ec.Values {
				switch {
				case ec.Operator == batchv1.PodFailurePolicyOnExitCodesOpIn && v == 0:
					errs = append(errs, field.Invalid(vp.Index(j), v, "must not be 0 for the In operator"))
				case j > 0 && v == ec.Values[j-1]:
					errs = append(errs, field.Duplicate(vp.Index(j), v))
				case j > 0 && v < ec.Values[j-1]:
					errs = append(errs, field.Invalid(vp.Index(j), v, "must be ordered"))
				}
			}
		}
		cp := ip.Child("onPodConditions")
		if len(r.OnPodConditions) > maxPodFailurePolicyConditions {
			errs = append(errs, field.TooMany(cp, len(r.OnPodConditions), maxPodFailurePolicyConditions))
		}
		for j, c := range r.OnPodConditions {
			jp := cp.Index(j)
			if c.Type == "" {
				errs = append(errs, field.Required(jp.Child("type"), ""))
			} else {
				errs = append(errs, metav1validation.ValidateLabelName(string(c.Type), jp.Child("type"))...)
			}
			if c.Status != "" {
				errs = append(errs, oneOfChild(jp, "status", c.Status, conditionStatuses...)...)
			}
		}
	}
	return errs
}

func validateSuccessPolicy(spec *batchv1.JobSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	rules := spec.SuccessPolicy.Rules
	rp := p.Child("rules")
	if spec.CompletionMode == nil || *spec.CompletionMode != batchv1.IndexedCompletion {
		errs = append(errs, field.Invalid(field.NewPath("spec", "completionMode"), spec.CompletionMode,
			"requires indexed completion mode"))
	}
	switch {
	case len(rules) == 0:
		errs = append(errs, field.Required(rp, "at least one rules must be specified when the successPolicy is specified"))
	case len(rules) > maxSuccessPolicyRules:
		errs = append(errs, field.TooMany(rp, len(rules), maxSuccessPolicyRules))
	}
	completions := 0
	if spec.Completions != nil {
		completions = int(*spec.Completions)
	}
	for i, r := range rules {
		ip := rp.Index(i)
		if r.SucceededIndexes == nil && r.SucceededCount == nil {
			errs = append(errs, field.Required(ip, "at least one of succeededCount or succeededIndexes must be specified"))
		}
		size := completions
		if r.SucceededIndexes != nil {
			set, err := indexes.Parse(*r.SucceededIndexes, completions)
			if err != nil {
				errs = append(errs, field.Invalid(ip.Child("succeededIndexes"), *r.SucceededIndexes, fmt.Sprintf("error parsing succeededIndexes: %v", err)))
			} else {
				size = set.Len()
			}
		}
		if c := r.SucceededCount; c != nil {
			cp := ip.Child("succeededCount")
			switch {
			case *c < 0:
				errs = append(errs, field.Invalid(cp, *c, "must be greater than or equal to 0"))
			case *c > int32(completions):
				errs = append(errs, field.Invalid(cp, *c, fmt.Sprintf("must be less than or equal to %d (the number of specified completions)", completions)))
			case r.SucceededIndexes != nil && *c > int32(size):
				errs = append(errs, field.Invalid(cp, *c, fmt.Sprintf("must be less than or equal to %d (the number of indexes in the specified succeededIndexes field)", size)))
			}
		}
	}
	return errs
}

// validateJobUpdate is Kubernetes' ValidateJobSpecUpdate: what a running Job is and how
// it counts are fixed. Its template may change only while it is suspended and has
// never started (Kubernetes: labels, annotations, node selector, tolerations; Skiff: all
// of it, since no pod was made from it); an Indexed Job may be resized by changing
// completions and parallelism together (elastic Indexed Jobs).
func validateJobUpdate(old, job *batchv1.Job) field.ErrorList {
	p := field.NewPath("spec")
	var errs field.ErrorList
	errs = append(errs, apivalidation.ValidateImmutableField(job.Spec.Selector, old.Spec.Selector, p.Child("selector"))...)
	errs = append(errs, apivalidation.ValidateImmutableField(job.Spec.CompletionMode, old.Spec.CompletionMode, p.Child("completionMode"))...)
	errs = append(errs, apivalidation.ValidateImmutableField(job.Spec.PodFailurePolicy, old.Spec.PodFailurePolicy, p.Child("podFailurePolicy"))...)
	errs = append(errs, apivalidation.ValidateImmutableField(job.Spec.BackoffLimitPerIndex, old.Spec.BackoffLimitPerIndex, p.Child("backoffLimitPerIndex"))...)
	errs = append(errs, apivalidation.ValidateImmutableField(job.Spec.SuccessPolicy, old.Spec.SuccessPolicy, p.Child("successPolicy"))...)
	if !equality.Semantic.DeepEqual(job.Spec.Completions, old.Spec.Completions) {
		elastic := job.Spec.CompletionMode != nil && *job.Spec.CompletionMode == batchv1.IndexedCompletion &&
			job.Spec.Completions != nil && job.Spec.Parallelism != nil && *job.Spec.Completions == *job.Spec.Parallelism &&
			old.Spec.Completions != nil && old.Spec.Parallelism != nil && *old.Spec.Completions == *old.Spec.Parallelism
		if !elastic {
			errs = append(errs, apivalidation.ValidateImmutableField(job.Spec.Completions, old.Spec.Completions, p.Child("completions"))...)
		}
	}
	neverStarted := old.Status.StartTime == nil && old.Spec.Suspend != nil && *old.Spec.Suspend
	if !neverStarted {
		a, b := old.Spec.Template.DeepCopy(), job.Spec.Template.DeepCopy()
		defaultTemplate(a)
		defaultTemplate(b)
		errs = append(errs, apivalidation.ValidateImmutableField(b, a, p.Child("template"))...)
	}
	return errs
}

func validateJobStatus(st *batchv1.JobStatus, p *field.Path) field.ErrorList {
	errs := nonNegativeCounts(p, count{"active", st.Active}, count{"succeeded", st.Succeeded}, count{"failed", st.Failed})
	if st.Ready != nil {
		errs = append(errs, apivalidation.ValidateNonnegativeField(int64(*st.Ready), p.Child("ready"))...)
	}
	if st.Terminating != nil {
		errs = append(errs, apivalidation.ValidateNonnegativeField(int64(*st.Terminating), p.Child("terminating"))...)
	}
	for i, c := range st.Conditions {
		cp := p.Child("conditions").Index(i)
		// Any type, as in Kubernetes: other controllers and tools add conditions of their own.
		errs = append(errs, validateCondition(string(c.Type), c.Status, cp)...)
	}
	if st.CompletionTime != nil && st.StartTime != nil && st.CompletionTime.Before(st.StartTime) {
		errs = append(errs, field.Invalid(p.Child("completionTime"), st.CompletionTime, "completionTime cannot be set before startTime"))
	}
	return errs
}

// validateCronJob is Kubernetes' ValidateCronJobCreate: a name that leaves room for its
// Jobs' suffix, a schedule robfig/cron parses (Kubernetes' own parser), a time zone of
// the IANA database, and a job template.
func validateCronJob(cj *batchv1.CronJob) field.ErrorList {
	var errs field.ErrorList
	if len(cj.Name) > cronJobNameMaxLength {
		errs = append(errs, field.Invalid(field.NewPath("metadata", "name"), cj.Name, fmt.Sprintf("must be no more than %d characters", cronJobNameMaxLength)))
	}
	p := field.NewPath("spec")
	spec := &cj.Spec
	errs = append(errs, ValidateSchedule(spec.Schedule, spec.TimeZone, p)...)
	if spec.ConcurrencyPolicy != "" {
		errs = append(errs, oneOfChild(p, "concurrencyPolicy", spec.ConcurrencyPolicy, concurrencyPolicies...)...)
	}
	if v := spec.StartingDeadlineSeconds; v != nil {
		errs = append(errs, apivalidation.ValidateNonnegativeField(*v, p.Child("startingDeadlineSeconds"))...)
	}
	if v := spec.SuccessfulJobsHistoryLimit; v != nil {
		errs = append(errs, apivalidation.ValidateNonnegativeField(int64(*v), p.Child("successfulJobsHistoryLimit"))...)
	}
	if v := spec.FailedJobsHistoryLimit; v != nil {
		errs = append(errs, apivalidation.ValidateNonnegativeField(int64(*v), p.Child("failedJobsHistoryLimit"))...)
	}
	jp := p.Child("jobTemplate")
	errs = append(errs, validateTemplateMeta(&spec.JobTemplate.ObjectMeta, jp.Child("metadata"))...)
	js := &spec.JobTemplate.Spec
	if js.ManualSelector != nil && *js.ManualSelector {
		errs = append(errs, field.NotSupported(jp.Child("spec", "manualSelector"), *js.ManualSelector, []string{"nil", "false"}))
	}
	if js.Selector != nil {
		errs = append(errs, field.Invalid(jp.Child("spec", "selector"), js.Selector, selectorGeneratedMsg))
	}
	return append(errs, validateJobSpec(js, jp.Child("spec"))...)
}

// ValidateSchedule checks a CronJob's schedule and time zone (spec.schedule,
// spec.timeZone under p).
func ValidateSchedule(schedule string, timeZone *string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	sp := p.Child("schedule")
	switch {
	case schedule == "":
		errs = append(errs, field.Required(sp, ""))
	case strings.Contains(schedule, "TZ"):
		errs = append(errs, field.Invalid(sp, schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"))
	default:
		if _, err := cron.ParseStandard(schedule); err != nil {
			errs = append(errs, field.Invalid(sp, schedule, err.Error()))
		}
	}
	if tz := timeZone; tz != nil {
		tp := p.Child("timeZone")
		switch {
		case *tz == "":
			errs = append(errs, field.Invalid(tp, *tz, "timeZone must be nil or non-empty string"))
		case strings.EqualFold(*tz, "Local"):
			errs = append(errs, field.Invalid(tp, *tz, "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones"))
		default:
			if _, err := time.LoadLocation(*tz); err != nil {
				errs = append(errs, field.Invalid(tp, *tz, err.Error()))
			}
		}
	}
	return errs
}

func validateCronJobStatus(st *batchv1.CronJobStatus, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, ref := range st.Active {
		if ref.Name == "" {
			errs = append(errs, field.Required(p.Child("active").Index(i).Child("name"), ""))
		}
	}
	return errs
}

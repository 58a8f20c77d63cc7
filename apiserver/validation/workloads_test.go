package validation

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiffhq/skiff/kinds"
)

var webSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}

func daemonSet(mut func(*appsv1.DaemonSet)) *appsv1.DaemonSet {
	ds := &appsv1.DaemonSet{ObjectMeta: meta("agent"), Spec: appsv1.DaemonSetSpec{Selector: webSelector, Template: template()}}
	if mut != nil {
		mut(ds)
	}
	return ds
}

func claimSpec() corev1.PersistentVolumeClaimSpec {
	return corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}
}

func statefulSet(mut func(*appsv1.StatefulSet)) *appsv1.StatefulSet {
	sts := &appsv1.StatefulSet{ObjectMeta: meta("db"), Spec: appsv1.StatefulSetSpec{Selector: webSelector, Template: template(),
		ServiceName: "db", VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"}, Spec: claimSpec()}}}}
	if mut != nil {
		mut(sts)
	}
	return sts
}

func job(mut func(*batchv1.Job)) *batchv1.Job {
	t := template()
	t.Spec.RestartPolicy = corev1.RestartPolicyNever
	j := &batchv1.Job{ObjectMeta: meta("pi"), Spec: batchv1.JobSpec{Selector: webSelector, Template: t}}
	if mut != nil {
		mut(j)
	}
	return j
}

func cronJob(mut func(*batchv1.CronJob)) *batchv1.CronJob {
	t := template()
	t.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
	cj := &batchv1.CronJob{ObjectMeta: meta("hello"), Spec: batchv1.CronJobSpec{Schedule: "*/1 * * * *",
		JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: t}}}}
	if mut != nil {
		mut(cj)
	}
	return cj
}

func localPV(mut func(*corev1.PersistentVolume)) *corev1.PersistentVolume {
	pv := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv1"}, Spec: corev1.PersistentVolumeSpec{
		Capacity:               corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
		AccessModes:            []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		PersistentVolumeSource: corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: "/var/lib/data"}},
		NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"w1"}}}}}}},
	}}
	if mut != nil {
		mut(pv)
	}
	return pv
}

func TestValidateWorkloadsAndStorage(t *testing.T) {
	for _, tc := range []struct {
		name string
		obj  kinds.Object
		want []string
	}{
		{"daemonset", daemonSet(nil), nil},
		{"daemonset both surge and unavailable", daemonSet(func(ds *appsv1.DaemonSet) {
			ds.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: num(1), MaxSurge: percent("10%")}}
		}), []string{"spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: \"10%\": may not be set when maxUnavailable is non-zero"}},
		{"daemonset neither", daemonSet(func(ds *appsv1.DaemonSet) {
			ds.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: num(0), MaxSurge: num(0)}}
		}), []string{"spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0"}},
		{"daemonset strategy", daemonSet(func(ds *appsv1.DaemonSet) { ds.Spec.UpdateStrategy.Type = "Recreate" }),
			[]string{`spec.updateStrategy.type: Unsupported value: "Recreate": supported values: "OnDelete", "RollingUpdate"`}},
		{"daemonset restartPolicy", daemonSet(func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever }),
			[]string{`spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"`}},

		{"statefulset", statefulSet(nil), nil},
		{"statefulset policy", statefulSet(func(s *appsv1.StatefulSet) { s.Spec.PodManagementPolicy = "Random" }),
			[]string{`spec.podManagementPolicy: Unsupported value: "Random": supported values: "OrderedReady", "Parallel"`}},
		{"statefulset maxUnavailable 0", statefulSet(func(s *appsv1.StatefulSet) {
			s.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{MaxUnavailable: num(0)}}
		}), []string{"spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: 0: should not be 0"}},
		{"statefulset mounts its claim template", statefulSet(func(s *appsv1.StatefulSet) {
			c := &s.Spec.Template.Spec.Containers[0]
			c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: s.Spec.VolumeClaimTemplates[0].Name, MountPath: "/data"})
		}), nil},
		{"statefulset mounts what it does not have", statefulSet(func(s *appsv1.StatefulSet) {
			c := &s.Spec.Template.Spec.Containers[0]
			c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "nope", MountPath: "/data"})
		}), []string{`spec.template.spec.containers[0].volumeMounts[0].name: Not found: "nope"`}},
		{"statefulset claim template without size", statefulSet(func(s *appsv1.StatefulSet) {
			s.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests = nil
		}), []string{"spec.volumeClaimTemplates[0].spec.resources.requests[storage]: Required value"}},
		{"statefulset retention", statefulSet(func(s *appsv1.StatefulSet) {
			s.Spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{WhenScaled: "Keep"}
		}), []string{`spec.persistentVolumeClaimRetentionPolicy.whenScaled: Unsupported value: "Keep": supported values: "Delete", "Retain"`}},

		{"controllerrevision", &appsv1.ControllerRevision{ObjectMeta: meta("web-1"), Data: runtime.RawExtension{Raw: []byte("{}")}, Revision: 1}, nil},
		{"controllerrevision without data", &appsv1.ControllerRevision{ObjectMeta: meta("web-1")}, []string{"data: Required value"}},

		{"job", job(nil), nil},
		{"job restartPolicy Always", job(func(j *batchv1.Job) { j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyAlways }),
			[]string{`spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", "Never"`}},
		{"job indexed without completions", job(func(j *batchv1.Job) {
			j.Spec.CompletionMode, j.Spec.Parallelism = new(batchv1.IndexedCompletion), new(int32(2))
		}),
			[]string{"spec.completions: Required value: when completion mode is Indexed"}},
		{"job backoffLimitPerIndex not indexed", job(func(j *batchv1.Job) { j.Spec.BackoffLimitPerIndex = new(int32(1)) }),
			[]string{"spec.backoffLimitPerIndex: Forbidden: requires indexed completion mode"}},
		{"job selector mismatch", job(func(j *batchv1.Job) { j.Spec.Template.Labels = map[string]string{"app": "db"} }),
			[]string{"spec.template.metadata.labels: Invalid value: {\"app\":\"db\"}: `selector` does not match template `labels`"}},
		{"job pod failure policy", job(func(j *batchv1.Job) {
			j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{Action: batchv1.PodFailurePolicyActionFailJob,
				OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{0, 3, 2}}}}}
		}), []string{"spec.podFailurePolicy.rules[0].onExitCodes.values[0]: Invalid value: 0: must not be 0 for the In operator",
			"spec.podFailurePolicy.rules[0].onExitCodes.values[2]: Invalid value: 2: must be ordered"}},
		{"job success policy", job(func(j *batchv1.Job) {
			j.Spec.CompletionMode, j.Spec.Completions = new(batchv1.IndexedCompletion), new(int32(5))
			j.Spec.SuccessPolicy = &batchv1.SuccessPolicy{Rules: []batchv1.SuccessPolicyRule{{SucceededIndexes: new("0-9")}}}
		}), []string{`spec.successPolicy.rules[0].succeededIndexes: Invalid value: "0-9": error parsing succeededIndexes: too large: 9`}},
		{"job indexed hostname", job(func(j *batchv1.Job) {
			j.Name = "a-job-name-that-is-fifty-nine-characters-long-and-then-some"
			j.Spec.CompletionMode, j.Spec.Completions = new(batchv1.IndexedCompletion), new(int32(10000))
		}), []string{`metadata.name: Invalid value: "a-job-name-that-is-fifty-nine-characters-long-and-then-some": will not able to create pod with invalid DNS label: a-job-name-that-is-fifty-nine-characters-long-and-then-some-9999`}},
		{"job indexed hostname fits", job(func(j *batchv1.Job) {
			j.Name = "a-job-name-that-is-fifty-nine-characters-long-and-then-some"
			j.Spec.CompletionMode, j.Spec.Completions = new(batchv1.IndexedCompletion), new(int32(1000))
		}), nil},
		{"job managedBy", job(func(j *batchv1.Job) { j.Spec.ManagedBy = new("kueue.x-k8s.io/multikueue") }),
			[]string{"spec.managedBy: Forbidden: not supported by Skiff"}},

		{"cronjob", cronJob(nil), nil},
		{"cronjob schedule", cronJob(func(c *batchv1.CronJob) { c.Spec.Schedule = "every minute" }),
			[]string{`spec.schedule: Invalid value: "every minute": expected exactly 5 fields, found 2: [every minute]`}},
		{"cronjob TZ", cronJob(func(c *batchv1.CronJob) { c.Spec.Schedule = "TZ=UTC 0 * * * *" }),
			[]string{`spec.schedule: Invalid value: "TZ=UTC 0 * * * *": cannot use TZ or CRON_TZ in schedule, use timeZone field instead`}},
		{"cronjob time zone", cronJob(func(c *batchv1.CronJob) { c.Spec.TimeZone = new("Mars/Olympus") }),
			[]string{`spec.timeZone: Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus`}},
		{"cronjob name", cronJob(func(c *batchv1.CronJob) { c.Name = "a-name-that-is-longer-than-fifty-two-characters-in-all" }),
			[]string{`metadata.name: Invalid value: "a-name-that-is-longer-than-fifty-two-characters-in-all": must be no more than 52 characters`}},

		{"local pv", localPV(nil), nil},
		{"local pv without node affinity", localPV(func(pv *corev1.PersistentVolume) { pv.Spec.NodeAffinity = nil }),
			[]string{"spec.nodeAffinity: Required value: Local volume requires node affinity"}},
		{"pv without source", localPV(func(pv *corev1.PersistentVolume) { pv.Spec.Local = nil }),
			[]string{"spec: Required value: must specify a volume type"}},
		{"pv relative path", localPV(func(pv *corev1.PersistentVolume) { pv.Spec.Local.Path = "data" }),
			[]string{`spec.local.path: Invalid value: "data": must be an absolute path`}},
		{"pv recycle", localPV(func(pv *corev1.PersistentVolume) {
			pv.Spec.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimRecycle
		}),
			[]string{`spec.persistentVolumeReclaimPolicy: Unsupported value: "Recycle": supported values: "Delete", "Retain"`}},
		{"pv block", localPV(func(pv *corev1.PersistentVolume) { pv.Spec.VolumeMode = new(corev1.PersistentVolumeBlock) }),
			[]string{`spec.volumeMode: Unsupported value: "Block": supported values: "Filesystem"`}},
		{"pv nfs", localPV(func(pv *corev1.PersistentVolume) { pv.Spec.NFS = &corev1.NFSVolumeSource{Server: "nfs", Path: "/x"} }),
			[]string{"spec.nfs: Forbidden: not supported by Skiff"}},

		{"pvc", &corev1.PersistentVolumeClaim{ObjectMeta: meta("data"), Spec: claimSpec()}, nil},
		{"pvc without access modes", &corev1.PersistentVolumeClaim{ObjectMeta: meta("data"), Spec: corev1.PersistentVolumeClaimSpec{
			Resources: claimSpec().Resources}}, []string{"spec.accessModes: Required value: at least 1 access mode is required"}},

		{"storageclass", &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "local-path"}, Provisioner: "skiff.io/local-path"}, nil},
		{"storageclass mode", &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "x"}, Provisioner: "p",
			VolumeBindingMode: new(storagev1.VolumeBindingMode("Later"))},
			[]string{`volumeBindingMode: Unsupported value: "Later": supported values: "Immediate", "WaitForFirstConsumer"`}},
		{"storageclass without provisioner", &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "x"}},
			[]string{"provisioner: Required value"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obj := tc.obj.DeepCopyObject().(kinds.Object)
			Default(obj)
			checkErrors(t, Validate(obj), tc.want)
		})
	}
}

func TestValidateWorkloadUpdates(t *testing.T) {
	bound := func(pvc *corev1.PersistentVolumeClaim) *corev1.PersistentVolumeClaim {
		pvc = pvc.DeepCopy()
		pvc.Spec.VolumeName = "pvc-1"
		return pvc
	}
	pvc := &corev1.PersistentVolumeClaim{ObjectMeta: meta("data"), Spec: claimSpec()}
	bigger := pvc.DeepCopy()
	bigger.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("2Gi")
	started := job(nil)
	started.Status.StartTime = &metav1.Time{}
	newImage := job(func(j *batchv1.Job) { j.Spec.Template.Spec.Containers[0].Image = "other" })
	suspended := job(func(j *batchv1.Job) { j.Spec.Suspend = new(true) })
	sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "x"}, Provisioner: "p"}
	sc2 := sc.DeepCopy()
	sc2.Parameters = map[string]string{"nodePath": "/data"}
	for _, tc := range []struct {
		name     string
		old, obj kinds.Object
		want     []string
	}{
		{"statefulset scale", statefulSet(nil), statefulSet(func(s *appsv1.StatefulSet) { s.Spec.Replicas = new(int32(5)) }), nil},
		{"statefulset service name", statefulSet(nil), statefulSet(func(s *appsv1.StatefulSet) { s.Spec.ServiceName = "other" }),
			[]string{"spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"}},
		{"pvc bound by the binder", pvc, bound(pvc), nil},
		{"pvc rebound", bound(pvc), func() kinds.Object { p := bound(pvc); p.Spec.VolumeName = "other"; return p }(),
			[]string{"spec: Forbidden: spec is immutable after creation"}},
		{"pvc resized", pvc, bigger, []string{"spec.resources.requests[storage]: Forbidden: only dynamically provisioned pvc can be resized"}},
		{"job template of a started job", started, newImage, []string{"spec.template: Invalid value:"}},
		{"job template of a suspended job never started", suspended, func() kinds.Object {
			j := newImage.DeepCopy()
			j.Spec.Suspend = new(true)
			return j
		}(), nil},
		{"storageclass parameters", sc, sc2, []string{"parameters: Forbidden: updates to parameters are forbidden."}},
		{"pv source", localPV(nil), localPV(func(pv *corev1.PersistentVolume) { pv.Spec.Local.Path = "/other" }),
			[]string{"spec.persistentvolumesource: Forbidden: spec.persistentvolumesource is immutable after creation"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old, obj := tc.old.DeepCopyObject().(kinds.Object), tc.obj.DeepCopyObject().(kinds.Object)
			Default(old)
			Default(obj)
			checkErrors(t, ValidateUpdate(old, obj), tc.want)
		})
	}
}

func TestDefaultWorkloads(t *testing.T) {
	ds := daemonSet(nil)
	Default(ds)
	if ru := ds.Spec.UpdateStrategy.RollingUpdate; ds.Spec.UpdateStrategy.Type != appsv1.RollingUpdateDaemonSetStrategyType ||
		ru.MaxUnavailable.IntValue() != 1 || ru.MaxSurge.IntValue() != 0 || *ds.Spec.RevisionHistoryLimit != 10 {
		t.Errorf("daemonset defaults: %+v", ds.Spec.UpdateStrategy)
	}
	sts := statefulSet(nil)
	Default(sts)
	if sts.Spec.PodManagementPolicy != appsv1.OrderedReadyPodManagement || *sts.Spec.UpdateStrategy.RollingUpdate.Partition != 0 ||
		sts.Spec.PersistentVolumeClaimRetentionPolicy.WhenDeleted != appsv1.RetainPersistentVolumeClaimRetentionPolicyType ||
		*sts.Spec.Replicas != 1 || *sts.Spec.VolumeClaimTemplates[0].Spec.VolumeMode != corev1.PersistentVolumeFilesystem {
		t.Errorf("statefulset defaults: %+v", sts.Spec)
	}
	j := job(nil)
	Default(j)
	if *j.Spec.Completions != 1 || *j.Spec.Parallelism != 1 || *j.Spec.BackoffLimit != 6 || *j.Spec.CompletionMode != batchv1.NonIndexedCompletion ||
		*j.Spec.Suspend || *j.Spec.PodReplacementPolicy != batchv1.TerminatingOrFailed || j.Labels["app"] != "web" {
		t.Errorf("job defaults: %+v", j.Spec)
	}
	perIndex := job(func(j *batchv1.Job) { j.Spec.BackoffLimitPerIndex = new(int32(1)); j.Spec.Completions = new(int32(3)) })
	Default(perIndex)
	if *perIndex.Spec.BackoffLimit != 1<<31-1 || *perIndex.Spec.Parallelism != 1 {
		t.Errorf("job with backoffLimitPerIndex: backoffLimit %d", *perIndex.Spec.BackoffLimit)
	}
	cj := cronJob(nil)
	Default(cj)
	if cj.Spec.ConcurrencyPolicy != batchv1.AllowConcurrent || *cj.Spec.SuccessfulJobsHistoryLimit != 3 || *cj.Spec.FailedJobsHistoryLimit != 1 ||
		cj.Spec.Suspend == nil || *cj.Spec.Suspend {
		t.Errorf("cronjob defaults: %+v", cj.Spec)
	}
	// As in Kubernetes, the job template is defaulted as a pod template only: the Job
	// gets its own defaults when it is created.
	if js := cj.Spec.JobTemplate.Spec; js.CompletionMode != nil || js.Suspend != nil || js.PodReplacementPolicy != nil || js.BackoffLimit != nil ||
		js.Template.Spec.TerminationGracePeriodSeconds == nil {
		t.Errorf("cronjob job template defaults: %+v", js)
	}
	pv := localPV(nil)
	Default(pv)
	if pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimRetain {
		t.Errorf("pv reclaim policy %q", pv.Spec.PersistentVolumeReclaimPolicy)
	}
	sc := &storagev1.StorageClass{}
	Default(sc)
	if *sc.ReclaimPolicy != corev1.PersistentVolumeReclaimDelete || *sc.VolumeBindingMode != storagev1.VolumeBindingImmediate {
		t.Errorf("storageclass defaults: %+v", sc)
	}
}

package apiserver

import (
	"context"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/store"
)

// What the API server does to Jobs and PersistentVolumeClaims when they are created,
// beside defaulting and validation: Kubernetes' Job strategy generates a Job's selector,
// and its DefaultStorageClass admission gives a claim without a class the default one.

// The labels a Job's generated selector and its pods carry (Kubernetes' batch/v1
// labels, and the legacy ones it still writes).
const (
	JobControllerUIDLabel       = batchv1.ControllerUidLabel
	JobNameLabel                = batchv1.JobNameLabel
	legacyJobControllerUIDLabel = "controller-uid"
	legacyJobNameLabel          = "job-name"
)

// generateJobSelector is Kubernetes' generateSelectorIfNeeded: unless the user chose
// the selector (spec.manualSelector), a Job selects its pods by its uid, and its
// template labels them so. It runs after the uid is set.
func generateJobSelector(job *batchv1.Job) {
	if job.Spec.ManualSelector != nil && *job.Spec.ManualSelector {
		return
	}
	uid := string(job.UID)
	t := &job.Spec.Template
	if t.Labels == nil {
		t.Labels = map[string]string{}
	}
	t.Labels[JobControllerUIDLabel] = uid
	t.Labels[legacyJobControllerUIDLabel] = uid
	if len(validation.IsValidLabelValue(job.Name)) == 0 {
		t.Labels[JobNameLabel] = job.Name
		t.Labels[legacyJobNameLabel] = job.Name
	}
	job.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{JobControllerUIDLabel: uid}}
}

// IsDefaultClassAnnotation marks the default StorageClass (Kubernetes' name).
const IsDefaultClassAnnotation = "storageclass.kubernetes.io/is-default-class"

// defaultStorageClass is Kubernetes' DefaultStorageClass admission: a claim created
// without storageClassName gets the default class, if one is marked so (of several,
// the newest, then the first by name, as Kubernetes picks). It reads this member's
// state: classes change rarely, and Kubernetes' admission reads a cache the same way.
func (r *resources) defaultStorageClass(ctx context.Context, pvc *corev1.PersistentVolumeClaim) error {
	if pvc.Spec.StorageClassName != nil {
		return nil
	}
	info := kinds.MustLookup(kinds.StorageClass)
	objs, _, err := r.store.List(ctx, kinds.StorageClass, store.ListOptions{Stale: true})
	if err != nil {
		return storeError(info, "", err)
	}
	var chosen *storagev1.StorageClass
	for i := range objs {
		obj, err := decode(info, &objs[i])
		if err != nil {
			return storeError(info, objs[i].Key.Name, err)
		}
		sc := obj.(*storagev1.StorageClass)
		if sc.Annotations[IsDefaultClassAnnotation] != "true" {
			continue
		}
		if chosen == nil || chosen.CreationTimestamp.Before(&sc.CreationTimestamp) ||
			chosen.CreationTimestamp.Equal(&sc.CreationTimestamp) && sc.Name < chosen.Name {
			chosen = sc
		}
	}
	if chosen != nil {
		name := chosen.Name
		pvc.Spec.StorageClassName = &name
	}
	return nil
}

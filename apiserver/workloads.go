package apiserver

import (
	"context"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"

	"github.com/skiffhq/skiff/apiserver/validation"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/store"
)

// What the API server does to Jobs, PersistentVolumeClaims and Ingresses when they are
// created, beside defaulting and validation: Kubernetes' Job strategy generates a Job's
// selector, its DefaultStorageClass admission gives a claim without a class the default
// one, and its DefaultIngressClass admission an Ingress without a class the default one.

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
	if len(utilvalidation.IsValidLabelValue(job.Name)) == 0 {
		t.Labels[JobNameLabel] = job.Name
		t.Labels[legacyJobNameLabel] = job.Name
	}
	job.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{JobControllerUIDLabel: uid}}
}

// IsDefaultClassAnnotation marks the default StorageClass (Kubernetes' name), and
// IsDefaultIngressClassAnnotation the default IngressClass.
const (
	IsDefaultClassAnnotation        = "storageclass.kubernetes.io/is-default-class"
	IsDefaultIngressClassAnnotation = networkingv1.AnnotationIsDefaultIngressClass
)

// defaultStorageClass is Kubernetes' DefaultStorageClass admission: a claim created
// without storageClassName gets the default class, if one is marked so.
func (r *resources) defaultStorageClass(ctx context.Context, pvc *corev1.PersistentVolumeClaim) error {
	if pvc.Spec.StorageClassName != nil {
		return nil
	}
	name, err := r.defaultClass(ctx, kinds.MustLookup(kinds.StorageClass), IsDefaultClassAnnotation)
	if name != "" {
		pvc.Spec.StorageClassName = &name
	}
	return err
}

// defaultIngressClass is Kubernetes' DefaultIngressClass admission: an Ingress created
// with neither ingressClassName nor the kubernetes.io/ingress.class annotation gets the
// default IngressClass, if one is marked so.
func (r *resources) defaultIngressClass(ctx context.Context, ing *networkingv1.Ingress) error {
	if ing.Spec.IngressClassName != nil {
		return nil
	}
	if _, ok := ing.Annotations[validation.IngressClassAnnotation]; ok {
		return nil
	}
	name, err := r.defaultClass(ctx, kinds.MustLookup(kinds.IngressClass), IsDefaultIngressClassAnnotation)
	if name != "" {
		ing.Spec.IngressClassName = &name
	}
	return err
}

// defaultClass is the name of the default class of kind info, the one whose annotation
// says "true" (of several, the newest, then the first by name, as Kubernetes picks), or
// "" when none is marked. It reads this member's state: classes change rarely, and
// Kubernetes' admission reads a cache the same way.
func (r *resources) defaultClass(ctx context.Context, info *kinds.Info, annotation string) (string, error) {
	objs, _, err := r.store.List(ctx, info.Kind, store.ListOptions{Stale: true})
	if err != nil {
		return "", storeError(info, "", err)
	}
	var chosen kinds.Object
	for i := range objs {
		obj, err := decode(info, &objs[i])
		if err != nil {
			return "", storeError(info, objs[i].Key.Name, err)
		}
		if obj.GetAnnotations()[annotation] != "true" {
			continue
		}
		if chosen == nil {
			chosen = obj
			continue
		}
		at, was := obj.GetCreationTimestamp(), chosen.GetCreationTimestamp()
		if was.Before(&at) || was.Equal(&at) && obj.GetName() < chosen.GetName() {
			chosen = obj
		}
	}
	if chosen == nil {
		return "", nil
	}
	return chosen.GetName(), nil
}

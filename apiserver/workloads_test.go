package apiserver_test

import (
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/apiserver"
	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/test/apicluster"
)

func TestJobSelectorGenerated(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cs := client.NewClientset(conn)
	ctx := testCtx(t)
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "pi"}, Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "pi"}},
		Spec:       corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "pi", Image: "busybox"}}}}}}
	out, err := cs.Jobs.Create(ctx, job)
	if err != nil {
		t.Fatal(err)
	}
	uid := string(out.UID)
	if got := out.Spec.Selector.MatchLabels[apiserver.JobControllerUIDLabel]; got != uid || len(out.Spec.Selector.MatchLabels) != 1 {
		t.Errorf("selector %v, want %s=%s", out.Spec.Selector, apiserver.JobControllerUIDLabel, uid)
	}
	l := out.Spec.Template.Labels
	if l[apiserver.JobControllerUIDLabel] != uid || l[apiserver.JobNameLabel] != "pi" || l["controller-uid"] != uid || l["job-name"] != "pi" || l["app"] != "pi" {
		t.Errorf("template labels %v", l)
	}
	if *out.Spec.Completions != 1 || *out.Spec.BackoffLimit != 6 {
		t.Errorf("defaults: completions %d, backoffLimit %d", *out.Spec.Completions, *out.Spec.BackoffLimit)
	}

	// A selector of the user's own needs manualSelector.
	manual := job.DeepCopy()
	manual.Name = "manual"
	manual.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "pi"}}
	manual.Spec.ManualSelector = new(true)
	if out, err = cs.Jobs.Create(ctx, manual); err != nil || out.Spec.Selector.MatchLabels["app"] != "pi" {
		t.Fatalf("manual selector: %v %v", out, err)
	}
}

func TestDefaultStorageClassAdmission(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cs := client.NewClientset(conn)
	ctx := testCtx(t)
	claim := func(name string, class *string) *corev1.PersistentVolumeClaim {
		return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: class, AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}
	}
	// No default class: the claim keeps none.
	out, err := cs.PersistentVolumeClaims.Create(ctx, claim("before", nil))
	if err != nil {
		t.Fatal(err)
	}
	if out.Spec.StorageClassName != nil || out.Status.Phase != corev1.ClaimPending {
		t.Errorf("without a default class: class %v, phase %q", out.Spec.StorageClassName, out.Status.Phase)
	}
	for _, sc := range []*storagev1.StorageClass{
		{ObjectMeta: metav1.ObjectMeta{Name: "slow"}, Provisioner: "example.com/slow"},
		{ObjectMeta: metav1.ObjectMeta{Name: "local-path", Annotations: map[string]string{apiserver.IsDefaultClassAnnotation: "true"}},
			Provisioner: "skiff.io/local-path"},
	} {
		if _, err := cs.StorageClasses.Create(ctx, sc); err != nil {
			t.Fatal(err)
		}
	}
	if out, err = cs.PersistentVolumeClaims.Create(ctx, claim("after", nil)); err != nil {
		t.Fatal(err)
	}
	if out.Spec.StorageClassName == nil || *out.Spec.StorageClassName != "local-path" {
		t.Errorf("class %v, want the default, local-path", out.Spec.StorageClassName)
	}
	// A class given, even "", stays.
	if out, err = cs.PersistentVolumeClaims.Create(ctx, claim("none", new(""))); err != nil || *out.Spec.StorageClassName != "" {
		t.Errorf("class \"\": %v %v", out.Spec.StorageClassName, err)
	}
}

package localpath_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/client/record"
	"github.com/skiffhq/skiff/controllers/localpath"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

func TestProvisionBindRelease(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	cs := client.NewClientset(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	// A claim made before there is a default class has none.
	early := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "early", Namespace: "default"}, Spec: corev1.PersistentVolumeClaimSpec{
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}
	if early, err = cs.PersistentVolumeClaims.Create(ctx, early); err != nil || early.Spec.StorageClassName != nil {
		t.Fatalf("early claim: %v %v", err, early)
	}
	f := cache.NewFactory(cs, hclog.NewNullLogger())
	rec := record.New(cs.Events, record.Config{Component: "local-path-provisioner"})
	cfg := localpath.DefaultConfig()
	cfg.Root = "/srv/data"
	ctrl, err := localpath.New(cs, f, rec, cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.Start(ctx)
	done := make(chan struct{}, 2)
	go func() { rec.Run(ctx); done <- struct{}{} }()
	go func() { ctrl.Run(ctx); done <- struct{}{} }()
	t.Cleanup(func() { cancel(); f.Wait(); <-done; <-done })

	// The default class, WaitForFirstConsumer.
	var sc *storagev1.StorageClass
	waitfor.ConditionErr(t, 30*time.Second, "the default class", func() (bool, error) {
		sc, err = cs.StorageClasses.Get(ctx, "", "local-path")
		if client.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	})
	if sc.Provisioner != localpath.Provisioner || *sc.VolumeBindingMode != storagev1.VolumeBindingWaitForFirstConsumer ||
		*sc.ReclaimPolicy != corev1.PersistentVolumeReclaimDelete || sc.Annotations[localpath.IsDefaultClassAnnotation] != "true" {
		t.Fatalf("class %+v", sc)
	}
	// The claim made before it gets it too (Kubernetes' retroactive default class).
	waitfor.ConditionErr(t, 30*time.Second, "the early claim given the default class", func() (bool, error) {
		early, err = cs.PersistentVolumeClaims.Get(ctx, "default", "early")
		return err == nil && early.Spec.StorageClassName != nil && *early.Spec.StorageClassName == "local-path", err
	})
	// A claim without a class gets it, and waits for its first consumer.
	claim := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data-web-0", Namespace: "default"}, Spec: corev1.PersistentVolumeClaimSpec{
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("2Gi")}}}}
	claim, err = cs.PersistentVolumeClaims.Create(ctx, claim)
	if err != nil {
		t.Fatal(err)
	}
	if claim.Spec.StorageClassName == nil || *claim.Spec.StorageClassName != "local-path" {
		t.Fatalf("claim's class %v", claim.Spec.StorageClassName)
	}
	if l, _ := cs.PersistentVolumes.List(ctx, "", client.ListOptions{}); len(l.Items) != 0 {
		t.Fatalf("a volume before the first consumer: %+v", l.Items[0])
	}
	// The scheduler names the node: a volume there, bound to the claim.
	claim.Annotations = map[string]string{localpath.SelectedNodeAnnotation: "w2"}
	if _, err := cs.PersistentVolumeClaims.Update(ctx, claim); err != nil {
		t.Fatal(err)
	}
	var bound *corev1.PersistentVolumeClaim
	waitfor.ConditionErr(t, 30*time.Second, "the claim bound", func() (bool, error) {
		bound, err = cs.PersistentVolumeClaims.Get(ctx, "default", "data-web-0")
		return err == nil && bound.Status.Phase == corev1.ClaimBound, err
	})
	pv, err := cs.PersistentVolumes.Get(ctx, "", bound.Spec.VolumeName)
	if err != nil {
		t.Fatal(err)
	}
	w2 := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w2", Labels: map[string]string{corev1.LabelHostname: "w2"}}}
	w1 := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w1", Labels: map[string]string{corev1.LabelHostname: "w1"}}}
	sel := nodeaffinity.NewLazyErrorNodeSelector(pv.Spec.NodeAffinity.Required)
	on2, _ := sel.Match(w2)
	on1, _ := sel.Match(w1)
	if !on2 || on1 || pv.Spec.HostPath == nil || !strings.HasPrefix(pv.Spec.HostPath.Path, "/srv/data/pvc-") ||
		pv.Spec.ClaimRef.UID != claim.UID || pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete ||
		pv.Spec.Capacity.Storage().String() != "2Gi" || bound.Status.Capacity.Storage().String() != "2Gi" {
		t.Fatalf("volume %+v (node affinity w2: %v, w1: %v)", pv.Spec, on2, on1)
	}
	waitfor.ConditionErr(t, 30*time.Second, "the volume bound", func() (bool, error) {
		pv, err = cs.PersistentVolumes.Get(ctx, "", pv.Name)
		return err == nil && pv.Status.Phase == corev1.VolumeBound, err
	})

	// The claim deleted: the volume is Released, for its node to reclaim.
	if _, err := cs.PersistentVolumeClaims.Delete(ctx, "default", "data-web-0", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitfor.ConditionErr(t, 30*time.Second, "the volume released", func() (bool, error) {
		pv, err = cs.PersistentVolumes.Get(ctx, "", pv.Name)
		return err == nil && pv.Status.Phase == corev1.VolumeReleased, err
	})
}

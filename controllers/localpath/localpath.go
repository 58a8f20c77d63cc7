// Package localpath is Skiff's built-in local-path provisioner, the way k3s ships one: it
// keeps a default StorageClass, local-path (volumeBindingMode WaitForFirstConsumer,
// reclaimPolicy Delete), and gives each claim of that class, once the scheduler has
// named the node of its first pod (the volume.kubernetes.io/selected-node annotation), a
// PersistentVolume there: a hostPath directory (made when first mounted) under the
// node's local-path root, with node affinity to that node so that a pod using it always
// comes back to its data. It binds the claim and the volume to each other (the volume
// binder's part), gives claims made before the default class existed that class, and
// marks a volume Released when its claim goes; the node the volume
// lives on removes the directory of a Released volume whose reclaimPolicy is Delete, and
// the volume with it (the kubelet's local-path reclaimer).
package localpath

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/client/record"
	"github.com/skiffhq/skiff/client/workqueue"
	"github.com/skiffhq/skiff/kinds"
)

// The provisioner's names.
const (
	// Provisioner is the local-path StorageClass's provisioner.
	Provisioner = "skiff.io/local-path"
	// ClassName is the default StorageClass the provisioner keeps.
	ClassName = "local-path"
	// DefaultRoot is where volumes' directories live on each node.
	DefaultRoot = "/var/lib/skiff/local-path"
	// ProvisionedByAnnotation names the provisioner that made a volume (Kubernetes').
	ProvisionedByAnnotation = "pv.kubernetes.io/provisioned-by"
	// SelectedNodeAnnotation is the scheduler's choice of node for a claim's volume.
	SelectedNodeAnnotation = "volume.kubernetes.io/selected-node"
	// BindCompletedAnnotation marks a claim the binder bound (Kubernetes').
	BindCompletedAnnotation = "pv.kubernetes.io/bind-completed"
	// IsDefaultClassAnnotation marks the default StorageClass.
	IsDefaultClassAnnotation = "storageclass.kubernetes.io/is-default-class"
)

// Config tunes the provisioner. Start from DefaultConfig; New validates it.
type Config struct {
	// Root is the directory on every node under which volumes are made. Default
	// DefaultRoot.
	Root string
	// Workers provision different claims concurrently. Default 2.
	Workers int
	// Logger receives the provisioner's logs, named "local-path". Default: discarded.
	Logger hclog.Logger
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{Root: DefaultRoot, Workers: 2, Logger: hclog.NewNullLogger()}
}

// Validate reports every invalid field.
func (c Config) Validate() error {
	var errs []error
	if !path.IsAbs(c.Root) {
		errs = append(errs, fmt.Errorf("root: %q must be an absolute path", c.Root))
	}
	if c.Workers < 1 {
		errs = append(errs, fmt.Errorf("workers: %d must be at least 1", c.Workers))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("logger: must be set"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("local-path provisioner config: %w", err)
	}
	return nil
}

// Controller is the provisioner.
type Controller struct {
	cfg      Config
	cs       *client.Clientset
	claimInf *cache.Informer[*corev1.PersistentVolumeClaim]
	claims   *cache.Lister[*corev1.PersistentVolumeClaim]
	pvs      *cache.Lister[*corev1.PersistentVolume]
	classes  *cache.Lister[*storagev1.StorageClass]
	pvInf    *cache.Informer[*corev1.PersistentVolume]
	scInf    *cache.Informer[*storagev1.StorageClass]
	queue    *workqueue.Queue
	rec      *record.Recorder
	log      hclog.Logger
}

// Keys of the queue: a claim's "namespace/name", a volume's "pv:name".
const pvKeyPrefix = "pv:"

// New makes the provisioner on the factory's informers; Run starts it.
func New(cs *client.Clientset, f *cache.Factory, rec *record.Recorder, cfg Config) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	claimInf := cache.InformerFor[*corev1.PersistentVolumeClaim](f, "", client.ListOptions{})
	pvInf := cache.InformerFor[*corev1.PersistentVolume](f, "", client.ListOptions{})
	scInf := cache.InformerFor[*storagev1.StorageClass](f, "", client.ListOptions{})
	c := &Controller{cfg: cfg, cs: cs, claimInf: claimInf, pvInf: pvInf, scInf: scInf, claims: claimInf.Lister(), pvs: pvInf.Lister(),
		classes: scInf.Lister(), queue: workqueue.New(workqueue.Config{}), rec: rec, log: cfg.Logger.Named("local-path")}
	claimChanged := func(pvc *corev1.PersistentVolumeClaim) {
		c.queue.Add(cache.Key(pvc))
		if pvc.Spec.VolumeName != "" {
			c.queue.Add(pvKeyPrefix + pvc.Spec.VolumeName)
		}
	}
	claimInf.AddHandler(cache.Handler[*corev1.PersistentVolumeClaim]{OnAdd: claimChanged,
		OnUpdate: func(_, pvc *corev1.PersistentVolumeClaim) { claimChanged(pvc) }, OnDelete: claimChanged})
	pvChanged := func(pv *corev1.PersistentVolume) {
		c.queue.Add(pvKeyPrefix + pv.Name)
		if ref := pv.Spec.ClaimRef; ref != nil {
			c.queue.Add(ref.Namespace + "/" + ref.Name)
		}
	}
	pvInf.AddHandler(cache.Handler[*corev1.PersistentVolume]{OnAdd: pvChanged,
		OnUpdate: func(_, pv *corev1.PersistentVolume) { pvChanged(pv) }, OnDelete: pvChanged})
	// A default class that appears is given to the claims made without one.
	classChanged := func(*storagev1.StorageClass) {
		for _, pvc := range c.claims.List(labels.Everything()) {
			if pvc.Spec.StorageClassName == nil {
				c.queue.Add(cache.Key(pvc))
			}
		}
	}
	scInf.AddHandler(cache.Handler[*storagev1.StorageClass]{OnAdd: classChanged,
		OnUpdate: func(_, sc *storagev1.StorageClass) { classChanged(sc) }})
	return c, nil
}

// DefaultClass is the StorageClass the provisioner keeps.
func DefaultClass() *storagev1.StorageClass {
	wait, del := storagev1.VolumeBindingWaitForFirstConsumer, corev1.PersistentVolumeReclaimDelete
	return &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: ClassName, Annotations: map[string]string{IsDefaultClassAnnotation: "true"}},
		Provisioner: Provisioner, VolumeBindingMode: &wait, ReclaimPolicy: &del}
}

// Run makes the default class if it is missing, then provisions until ctx ends. The
// factory must be started.
func (c *Controller) Run(ctx context.Context) error {
	if !cache.WaitForSync(ctx, c.claimInf, c.pvInf, c.scInf) {
		return ctx.Err()
	}
	for {
		_, err := c.cs.StorageClasses.Create(ctx, DefaultClass())
		if err == nil || client.IsAlreadyExists(err) {
			break
		}
		c.log.Warn("cannot create the default storage class; retrying", "error", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	c.queue.Run(ctx, c.cfg.Workers, c.log, c.Reconcile)
	return nil
}

// Reconcile provisions and binds one claim, or looks after one volume.
func (c *Controller) Reconcile(ctx context.Context, key string) (time.Duration, error) {
	if name, ok := strings.CutPrefix(key, pvKeyPrefix); ok {
		return 0, c.syncVolume(ctx, name)
	}
	ns, name := cache.SplitKey(key)
	claim, ok := c.claims.Get(ns, name)
	if !ok || claim.DeletionTimestamp != nil {
		return 0, nil
	}
	if claim.Spec.StorageClassName == nil {
		return 0, c.assignDefaultClass(ctx, claim)
	}
	sc, ok := c.classes.Get("", *claim.Spec.StorageClassName)
	if !ok || sc.Provisioner != Provisioner {
		return 0, nil // not ours
	}
	if claim.Spec.VolumeName != "" {
		return 0, c.bindClaim(ctx, claim, claim.Spec.VolumeName)
	}
	node := claim.Annotations[SelectedNodeAnnotation]
	if node == "" {
		return 0, nil // waits for its first consumer to be scheduled
	}
	pv := Volume(c.cfg.Root, sc, claim, node)
	if _, exists := c.pvs.Get("", pv.Name); !exists {
		_, err := c.cs.PersistentVolumes.Create(ctx, pv)
		switch {
		case err == nil:
			c.rec.Eventf(claim, record.Normal, "ProvisioningSucceeded", "Successfully provisioned volume %s", pv.Name)
		case client.IsAlreadyExists(err):
		default:
			c.rec.Eventf(claim, record.Warning, "ProvisioningFailed", "failed to provision volume with StorageClass %q: %v", sc.Name, err)
			return 0, fmt.Errorf("provision volume for claim %s: %w", key, err)
		}
	}
	return 0, c.bindClaim(ctx, claim, pv.Name)
}

// assignDefaultClass gives an unbound claim made without a class the default class,
// once there is one (Kubernetes' retroactive default StorageClass assignment): a claim
// made before the default class existed would otherwise never be provisioned. The
// update queues the claim again.
func (c *Controller) assignDefaultClass(ctx context.Context, claim *corev1.PersistentVolumeClaim) error {
	if claim.Spec.VolumeName != "" {
		return nil
	}
	var def *storagev1.StorageClass
	for _, sc := range c.classes.List(labels.Everything()) {
		if sc.Annotations[IsDefaultClassAnnotation] != "true" {
			continue
		}
		if def == nil || def.CreationTimestamp.Before(&sc.CreationTimestamp) ||
			def.CreationTimestamp.Equal(&sc.CreationTimestamp) && sc.Name < def.Name {
			def = sc
		}
	}
	if def == nil {
		return nil
	}
	next := claim.DeepCopy()
	next.Spec.StorageClassName = &def.Name
	if _, err := c.cs.PersistentVolumeClaims.Update(ctx, next); err != nil && !client.IsConflict(err) && !client.IsNotFound(err) {
		return fmt.Errorf("give claim %s the default class %s: %w", cache.Key(claim), def.Name, err)
	}
	return nil
}

// Volume is the volume the provisioner makes for claim on node: named after the claim's
// uid, a hostPath directory root/NAME_NAMESPACE_CLAIM (made when first mounted) with
// node affinity to node, the claim's size and access modes, the class's reclaim policy,
// and a claimRef to the claim.
func Volume(root string, sc *storagev1.StorageClass, claim *corev1.PersistentVolumeClaim, node string) *corev1.PersistentVolume {
	name := "pvc-" + string(claim.UID)
	reclaim := corev1.PersistentVolumeReclaimDelete
	if sc.ReclaimPolicy != nil {
		reclaim = *sc.ReclaimPolicy
	}
	dirOrCreate := corev1.HostPathDirectoryOrCreate
	fs := corev1.PersistentVolumeFilesystem
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{ProvisionedByAnnotation: Provisioner}},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:    corev1.ResourceList{corev1.ResourceStorage: claim.Spec.Resources.Requests[corev1.ResourceStorage]},
			AccessModes: claim.Spec.AccessModes,
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{
				Path: path.Join(root, name+"_"+claim.Namespace+"_"+claim.Name), Type: &dirOrCreate}},
			ClaimRef: &corev1.ObjectReference{Kind: kinds.PersistentVolumeClaim, APIVersion: "v1", Namespace: claim.Namespace,
				Name: claim.Name, UID: claim.UID},
			PersistentVolumeReclaimPolicy: reclaim,
			StorageClassName:              sc.Name,
			VolumeMode:                    &fs,
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{node}}},
			}}}},
		},
	}
}

// bindClaim binds claim to the volume named pv: the claim's volumeName and the bind
// annotation, then its status Bound with the volume's capacity, then the volume's
// status Bound.
func (c *Controller) bindClaim(ctx context.Context, claim *corev1.PersistentVolumeClaim, pvName string) error {
	pv, ok := c.pvs.Get("", pvName)
	if !ok {
		return nil // its creation will queue the claim again
	}
	if ref := pv.Spec.ClaimRef; ref == nil || ref.UID != claim.UID {
		return nil // another claim's
	}
	if claim.Spec.VolumeName != pvName || claim.Annotations[BindCompletedAnnotation] != "yes" {
		next := claim.DeepCopy()
		next.Spec.VolumeName = pvName
		if next.Annotations == nil {
			next.Annotations = map[string]string{}
		}
		next.Annotations[BindCompletedAnnotation] = "yes"
		out, err := c.cs.PersistentVolumeClaims.Update(ctx, next)
		if err != nil {
			if client.IsConflict(err) || client.IsNotFound(err) {
				return nil // changed meanwhile: queued again
			}
			return fmt.Errorf("bind claim %s to %s: %w", cache.Key(claim), pvName, err)
		}
		claim = out
	}
	if claim.Status.Phase != corev1.ClaimBound {
		next := claim.DeepCopy()
		next.Status.Phase = corev1.ClaimBound
		next.Status.Capacity = pv.Spec.Capacity
		next.Status.AccessModes = pv.Spec.AccessModes
		if _, err := c.cs.PersistentVolumeClaims.UpdateStatus(ctx, next); err != nil && !client.IsConflict(err) && !client.IsNotFound(err) {
			return fmt.Errorf("claim %s's status: %w", cache.Key(claim), err)
		}
	}
	if pv.Status.Phase != corev1.VolumeBound {
		return c.setPhase(ctx, pv, corev1.VolumeBound)
	}
	return nil
}

func (c *Controller) setPhase(ctx context.Context, pv *corev1.PersistentVolume, phase corev1.PersistentVolumePhase) error {
	next := pv.DeepCopy()
	next.Status.Phase = phase
	now := metav1.Now()
	next.Status.LastPhaseTransitionTime = &now
	if _, err := c.cs.PersistentVolumes.UpdateStatus(ctx, next); err != nil && !client.IsConflict(err) && !client.IsNotFound(err) {
		return fmt.Errorf("volume %s's status: %w", pv.Name, err)
	}
	return nil
}

// syncVolume marks a bound volume of ours Released once its claim is gone (or replaced
// by another of the name).
func (c *Controller) syncVolume(ctx context.Context, name string) error {
	pv, ok := c.pvs.Get("", name)
	if !ok || pv.Annotations[ProvisionedByAnnotation] != Provisioner || pv.Spec.ClaimRef == nil || pv.DeletionTimestamp != nil {
		return nil
	}
	if pv.Status.Phase == corev1.VolumeReleased || pv.Status.Phase == corev1.VolumeFailed {
		return nil
	}
	ref := pv.Spec.ClaimRef
	if claim, ok := c.claims.Get(ref.Namespace, ref.Name); ok && claim.UID == ref.UID {
		return nil
	}
	// The cache may lag a claim just made: ask the API servers before releasing.
	claim, err := c.cs.PersistentVolumeClaims.Get(ctx, ref.Namespace, ref.Name)
	switch {
	case err == nil && claim.UID == ref.UID:
		return nil
	case err != nil && !client.IsNotFound(err):
		return err
	}
	return c.setPhase(ctx, pv, corev1.VolumeReleased)
}

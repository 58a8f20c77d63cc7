package scheduler

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"

	"github.com/skiffhq/skiff/client"
)

// SelectedNodeAnnotation is the annotation the scheduler sets on a claim of a
// WaitForFirstConsumer class once its first pod is placed: the node the provisioner
// makes its volume on (Kubernetes' volume.kubernetes.io/selected-node).
const SelectedNodeAnnotation = "volume.kubernetes.io/selected-node"

// Volumes is what the volume binding plugin reads: claims, volumes and storage classes
// by name (the scheduler's informers).
type Volumes struct {
	Claim  func(namespace, name string) (*corev1.PersistentVolumeClaim, bool)
	Volume func(name string) (*corev1.PersistentVolume, bool)
	Class  func(name string) (*storagev1.StorageClass, bool)
}

// VolumeBinding is Kubernetes' VolumeBinding filter for the claims a pod mounts: each
// claim must exist; a bound claim's volume must accept the node by its node affinity (a
// local volume lives on one node); an unbound claim must be of a WaitForFirstConsumer
// class, whose volume is provisioned where the pod goes (the scheduler then names the
// node on the claim, before binding the pod). Static volumes are not matched to unbound
// claims: they are bound by the claim's volumeName or by their provisioner.
type VolumeBinding struct{}

func (VolumeBinding) Name() string { return NameVolumeBinding }

// volumeState is what PreFilter found: the node selectors of the bound claims' volumes.
type volumeState struct {
	selectors []*nodeaffinity.LazyErrorNodeSelector
}

// claimNames are the claims a pod's volumes name.
func claimNames(pod *corev1.Pod) []string {
	var out []string
	for _, v := range pod.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			out = append(out, v.PersistentVolumeClaim.ClaimName)
		}
	}
	return out
}

// PreFilter checks the pod's claims once; a pod without claims skips the filter. A
// claim missing, being deleted, or unbound in a class that binds at once makes the pod
// unschedulable on every node.
func (VolumeBinding) PreFilter(state *CycleState, p *PodInfo, c *Cache) *Status {
	names := claimNames(p.Pod)
	if len(names) == 0 {
		return NewStatus(Skip)
	}
	vols := c.volumes()
	if vols == nil {
		return NewStatus(Skip) // no volume informers (benchmarks): nothing to check
	}
	st := &volumeState{}
	var unbound []string
	for _, name := range names {
		claim, ok := vols.Claim(p.Pod.Namespace, name)
		switch {
		case !ok:
			state.Write(NameVolumeBinding, fmt.Sprintf("persistentvolumeclaim %q not found", name))
			return nil
		case claim.DeletionTimestamp != nil:
			state.Write(NameVolumeBinding, fmt.Sprintf("persistentvolumeclaim %q is being deleted", name))
			return nil
		case claim.Spec.VolumeName != "":
			pv, ok := vols.Volume(claim.Spec.VolumeName)
			if !ok {
				state.Write(NameVolumeBinding, fmt.Sprintf("persistentvolume %q not found", claim.Spec.VolumeName))
				return nil
			}
			if pv.Spec.NodeAffinity != nil && pv.Spec.NodeAffinity.Required != nil {
				st.selectors = append(st.selectors, nodeaffinity.NewLazyErrorNodeSelector(pv.Spec.NodeAffinity.Required))
			}
		default:
			class := ""
			if claim.Spec.StorageClassName != nil {
				class = *claim.Spec.StorageClassName
			}
			sc, ok := vols.Class(class)
			if !ok || sc.VolumeBindingMode == nil || *sc.VolumeBindingMode != storagev1.VolumeBindingWaitForFirstConsumer {
				unbound = append(unbound, name)
			}
		}
	}
	if len(unbound) > 0 {
		state.Write(NameVolumeBinding, ReasonUnboundImmediateClaims)
		return nil
	}
	state.Write(NameVolumeBinding, st)
	return nil
}

// Filter passes the nodes every bound volume of the pod accepts.
func (VolumeBinding) Filter(state *CycleState, _ *PodInfo, n *NodeInfo) *Status {
	switch st := state.Read(NameVolumeBinding).(type) {
	case string:
		return unschedulable(st)
	case *volumeState:
		for _, sel := range st.selectors {
			if ok, _ := sel.Match(n.Node); !ok {
				return unschedulable(ReasonVolumeNodeAffinity)
			}
		}
	}
	return nil
}

// selectNode names node on the pod's unbound claims of WaitForFirstConsumer classes, so
// that their volumes are provisioned there (Kubernetes' PreBind of the VolumeBinding
// plugin). A claim already naming a node keeps it.
func selectNode(ctx context.Context, claims *client.Client[*corev1.PersistentVolumeClaim], vols *Volumes, pod *corev1.Pod, node string) error {
	for _, name := range claimNames(pod) {
		claim, ok := vols.Claim(pod.Namespace, name)
		if !ok || claim.Spec.VolumeName != "" || claim.Annotations[SelectedNodeAnnotation] != "" {
			continue
		}
		next := claim.DeepCopy()
		if next.Annotations == nil {
			next.Annotations = map[string]string{}
		}
		next.Annotations[SelectedNodeAnnotation] = node
		if _, err := claims.Update(ctx, next); err != nil {
			return fmt.Errorf("select node %s for claim %s/%s: %w", node, pod.Namespace, name, err)
		}
	}
	return nil
}

package kubelet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/go-hclog"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/skiffhq/skiff/client"
)

// The local-path reclaimer: the kubelet's part of Skiff's local-path provisioner
// (controllers/localpath). The provisioner marks a volume Released when its claim goes;
// the volume's directory is on one node, which alone can remove it. Kubernetes'
// local-path provisioner runs a helper pod on that node to do it; Skiff's kubelet
// already runs there as root, with the node's credentials, so it does it itself: no
// image to pull, no pod to schedule on a node that may be full or cordoned.
//
// The kubelet looks through LocalPathRoot (at each housekeeping) for the provisioner's
// directories, NAME_NAMESPACE_CLAIM, reads the volume NAME, and when it is the
// provisioner's, Released, of reclaimPolicy Delete, pinned to this node and made at
// exactly that directory, empties the directory, deletes the volume (uid
// precondition), and removes the then empty directory. Should the kubelet stop after
// emptying the directory, the next pass finishes; should it stop after deleting the
// volume, an empty directory remains (a directory whose volume is unknown is never
// touched: it may be another cluster's). A volume whose directory was never made (no
// pod mounted it) stays Released.
// The node authorizer lets a node read and delete only volumes pinned to it by their
// node affinity (apiserver/auth).

// localPathProvisioner is the provisioner's name in its volumes' annotation
// pv.kubernetes.io/provisioned-by (controllers/localpath.Provisioner).
const localPathProvisioner = "skiff.io/local-path"

// volumeAPI is what the reclaimer asks of the API servers.
type volumeAPI interface {
	get(ctx context.Context, name string) (*corev1.PersistentVolume, error)
	delete(ctx context.Context, pv *corev1.PersistentVolume) error
}

type clientVolumes struct{ cs *client.Clientset }

func (c clientVolumes) get(ctx context.Context, name string) (*corev1.PersistentVolume, error) {
	return c.cs.PersistentVolumes.Get(ctx, "", name)
}

func (c clientVolumes) delete(ctx context.Context, pv *corev1.PersistentVolume) error {
	_, err := c.cs.PersistentVolumes.Delete(ctx, "", pv.Name, client.DeleteOptions{UID: string(pv.UID)})
	if client.IsNotFound(err) {
		return nil
	}
	return err
}

// reclaimLocalVolumes reclaims the Released local-path volumes of this node whose
// reclaimPolicy is Delete.
// inUse tells whether a pod of the node still mounts the claim a volume was bound to
// (Kubernetes' storage-object-in-use protection keeps such a claim, and so its volume,
// from going; Skiff has no such finalizer, so the reclaimer waits for the pod).
func reclaimLocalVolumes(ctx context.Context, api volumeAPI, root, node string, inUse func(*corev1.PersistentVolume) string, log hclog.Logger) {
	entries, err := os.ReadDir(root)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			log.Warn("read local-path root failed", "dir", root, "error", err)
		}
		return
	}
	for _, ent := range entries {
		name, _, ok := strings.Cut(ent.Name(), "_")
		if !ent.IsDir() || !ok || !strings.HasPrefix(name, "pvc-") {
			continue
		}
		dir := filepath.Join(root, ent.Name())
		if err := reclaimLocalVolume(ctx, api, dir, name, node, inUse, log); err != nil && ctx.Err() == nil {
			log.Warn("reclaim local-path volume failed; retrying at the next housekeeping", "volume", name, "dir", dir, "error", err)
		}
	}
}

func reclaimLocalVolume(ctx context.Context, api volumeAPI, dir, name, node string, inUse func(*corev1.PersistentVolume) string, log hclog.Logger) error {
	pv, err := api.get(ctx, name)
	switch {
	case client.IsNotFound(err), client.IsForbidden(err):
		// Not a volume of this cluster, or not this node's (the node authorizer says
		// so): none of the kubelet's business, even empty (another cluster's kubelet
		// may share the directory).
		return nil
	case err != nil:
		return fmt.Errorf("get volume %s: %w", name, err)
	}
	why := reclaimable(pv, dir, node)
	if why == "" {
		why = inUse(pv)
	}
	if why != "" {
		log.Trace("local-path volume kept", "volume", name, "why", why)
		return nil
	}
	log.Info("reclaiming Released local-path volume", "volume", name, "dir", dir)
	if err := emptyDir(dir); err != nil {
		return fmt.Errorf("remove the data of volume %s: %w", name, err)
	}
	if err := api.delete(ctx, pv); err != nil {
		return fmt.Errorf("delete volume %s: %w", name, err)
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove directory of volume %s: %w", name, err)
	}
	return nil
}

// reclaimable says why the kubelet of node must not reclaim pv, whose directory it
// found at dir ("": it must).
func reclaimable(pv *corev1.PersistentVolume, dir, node string) string {
	switch {
	case pv.Annotations["pv.kubernetes.io/provisioned-by"] != localPathProvisioner:
		return "not provisioned by " + localPathProvisioner
	case pv.DeletionTimestamp != nil:
		return "being deleted"
	case pv.Status.Phase != corev1.VolumeReleased:
		return "phase " + string(pv.Status.Phase)
	case pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete:
		return "reclaimPolicy " + string(pv.Spec.PersistentVolumeReclaimPolicy)
	case pv.Spec.HostPath == nil || filepath.Clean(pv.Spec.HostPath.Path) != dir:
		return "not a hostPath volume at " + dir
	case !pinnedTo(pv, node):
		return "not pinned to node " + node
	}
	return ""
}

// pinnedTo tells whether pv's node affinity allows node alone: each of its required
// terms asks for kubernetes.io/hostname In [node], as the local-path provisioner's and
// local volumes' do.
func pinnedTo(pv *corev1.PersistentVolume, node string) bool {
	na := pv.Spec.NodeAffinity
	if na == nil || na.Required == nil || len(na.Required.NodeSelectorTerms) == 0 {
		return false
	}
	for _, term := range na.Required.NodeSelectorTerms {
		pinned := false
		for _, r := range term.MatchExpressions {
			if r.Key == corev1.LabelHostname && r.Operator == corev1.NodeSelectorOpIn && len(r.Values) == 1 && r.Values[0] == node {
				pinned = true
			}
		}
		if !pinned {
			return false
		}
	}
	return true
}

// claimInUse says which pod of the node, not finished, mounts the claim pv was bound
// to ("": none).
func (k *Kubelet) claimInUse(pv *corev1.PersistentVolume) string {
	ref := pv.Spec.ClaimRef
	if ref == nil {
		return ""
	}
	for _, p := range k.pods.Lister().ListNamespace(ref.Namespace, labels.Everything()) {
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		for _, v := range p.Spec.Volumes {
			if c := v.PersistentVolumeClaim; c != nil && c.ClaimName == ref.Name {
				return "in use by pod " + p.Namespace + "/" + p.Name
			}
		}
	}
	return ""
}

// emptyDir removes what dir holds, keeping dir.
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

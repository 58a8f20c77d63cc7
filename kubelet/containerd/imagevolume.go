package containerd

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/mount"
	"github.com/containerd/containerd/snapshots"
	"github.com/opencontainers/image-spec/identity"
)

// An image volume is a read-only view of an image's snapshot (its unpacked root
// filesystem), as containerd's CRI plugin mounts one: the view is keyed by the pod, so
// that RemovePod finds and removes the pod's views once its volumes are unmounted.

const imageVolumePrefix = "skiff-imagevol-"

func (r *Runtime) snapshotter() string {
	if r.cfg.Snapshotter != "" {
		return r.cfg.Snapshotter
	}
	return containerd.DefaultSnapshotter
}

// MountImage implements kubelet.Runtime.
func (r *Runtime) MountImage(ctx context.Context, podUID, image, dir string) error {
	ctx = r.ns(ctx)
	ref, err := normalize(image)
	if err != nil {
		return err
	}
	img, err := r.client.GetImage(ctx, ref)
	if err != nil {
		return fmt.Errorf("image volume %s: %w", ref, err)
	}
	if err := r.unpack(ctx, img); err != nil {
		return err
	}
	diffIDs, err := img.RootFS(ctx)
	if err != nil {
		return fmt.Errorf("image volume %s: %w", ref, err)
	}
	sum := sha256.Sum256([]byte(dir))
	key := imageVolumePrefix + podUID + "-" + hex.EncodeToString(sum[:8])
	sn := r.client.SnapshotService(r.snapshotter())
	mounts, err := sn.View(ctx, key, identity.ChainID(diffIDs).String(), snapshots.WithLabels(map[string]string{labelImage: ref}))
	if errdefs.IsAlreadyExists(err) {
		mounts, err = sn.Mounts(ctx, key)
	}
	if err != nil {
		return fmt.Errorf("image volume %s: view: %w", ref, err)
	}
	for i := range mounts {
		// A view is read-only as overlayfs with lower layers only; a bind (the native
		// snapshotter's) is made so.
		if mounts[i].Type == "bind" && !containsOption(mounts[i].Options, "ro") {
			mounts[i].Options = append(mounts[i].Options, "ro")
		}
	}
	if err := mount.All(mounts, dir); err != nil {
		return fmt.Errorf("image volume %s: mount at %s: %w", ref, dir, err)
	}
	return nil
}

func containsOption(opts []string, o string) bool {
	for _, x := range opts {
		if x == o {
			return true
		}
	}
	return false
}

// removeImageViews removes the snapshot views of pod uid's image volumes.
func (r *Runtime) removeImageViews(ctx context.Context, uid string) error {
	ctx = r.ns(ctx)
	sn := r.client.SnapshotService(r.snapshotter())
	var keys []string
	if err := sn.Walk(ctx, func(_ context.Context, info snapshots.Info) error {
		if strings.HasPrefix(info.Name, imageVolumePrefix+uid+"-") {
			keys = append(keys, info.Name)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("image volumes of pod %s: %w", uid, err)
	}
	var errs []error
	for _, k := range keys {
		if err := sn.Remove(ctx, k); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("image volume %s of pod %s: %w", k, uid, err))
		}
	}
	return errors.Join(errs...)
}

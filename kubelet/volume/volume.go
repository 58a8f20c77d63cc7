// Package volume owns a pod's directory on the node (under the kubelet's root
// directory, as Kubernetes lays it out: pods/<uid>/volumes/<plugin>/<name>) and the
// volumes in it: emptyDir (on disk, or tmpfs for medium Memory, as big as the pod's
// memory or its sizeLimit if smaller), hostPath (checked or created per its type),
// configMap, secret, downwardAPI and projected volumes (files written by an atomic
// writer; a projection's service-account token, and a podCertificate source's key and
// chain, come from Inputs), and the files the kubelet writes for a pod's containers (hosts,
// resolv.conf, termination logs).
//
// # Guarantees
//
// SetUp is idempotent and runs on every sync of a pod: it makes what is missing and
// rewrites a configMap, secret, downwardAPI or projected volume whose content changed,
// the way Kubernetes' AtomicWriter does — the files live in a timestamped directory
// (..2026_12_05_01_02_03.123456789), "..data" is a symlink to it, and each file the
// user sees is a symlink through ..data; an update writes a new directory and renames a
// new ..data over the old one, so a reader sees the old files or the new ones, never a
// mix (a volume's first write, which no container reads yet, links ..data in place). A Manager remembers what it last wrote in each such volume (a digest), so a
// sync whose content did not change touches no file; a new Manager (a restarted
// kubelet) compares with the files on disk instead. Secret and projected volumes (and
// medium Memory emptyDirs) are tmpfs mounts when Config.Tmpfs is set (the real node,
// as root), so secrets never reach a disk.
//
// TearDown unmounts everything mounted under a pod's directory (found in
// /proc/self/mountinfo, so a kubelet restarted after a crash finds what the previous one
// left) and removes the directory. Pods lists the pod directories present, for the
// kubelet to tear down those whose pods are gone. ExceededEmptyDir measures emptyDirs
// against their sizeLimit, EmptyDirUsage sums them, for the kubelet to evict a pod over
// its storage limits.
//
// # Not done
//
// A persistentVolumeClaim volume is the volume its claim is bound to, a hostPath or a
// local one (what Skiff's local-path provisioner makes): its path on the node, made per
// the hostPath's type. Until the claim is bound, SetUp fails with ErrClaimPending.
// Other kinds of PersistentVolume are refused.
package volume

import (
	"bufio"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffhq/skiff/client"
)

// The directories of volume plugins under a pod's volumes/, as Kubernetes names them.
const (
	emptyDirPlugin    = "kubernetes.io~empty-dir"
	configMapPlugin   = "kubernetes.io~configmap"
	secretPlugin      = "kubernetes.io~secret"
	downwardAPIPlugin = "kubernetes.io~downward-api"
	projectedPlugin   = "kubernetes.io~projected"
	imagePlugin       = "kubernetes.io~image"
)

// ErrClaimPending is the error of a persistentVolumeClaim volume whose claim is not
// bound to a volume (yet).
var ErrClaimPending = errors.New("the claim is not bound to a volume")

// Config configures a Manager.
type Config struct {
	// Root is the kubelet's root directory; pods' directories are under Root/pods.
	Root string
	// Tmpfs mounts tmpfs for secret, projected and medium Memory volumes (needs root);
	// without it they are plain directories (simulated nodes).
	Tmpfs bool
	// Simulated nodes share one machine, whose paths are not theirs: a claim's volume
	// is resolved but its path is neither made nor checked.
	Simulated bool
	// SkipContent resolves configMap, secret, downwardAPI and projected volumes (every
	// source read, every token requested, the same errors) but writes nothing for them
	// (simulated nodes: no container reads them). Their paths are returned all the same.
	SkipContent bool
}

// Manager sets pods' volumes up and tears them down. Calls for one pod must not run
// concurrently (the kubelet's worker holds the pod); calls for different pods may.
type Manager struct {
	cfg Config

	// written remembers, per pod, the content each atomically written volume was last
	// given (its digest, by the volume's directory): a sync whose content did not change
	// then costs no system call, where reading the volume back (sameContent) cost a walk
	// of its files per sync. A Manager starts without it (a restarted kubelet compares
	// with what is on disk), and TearDown forgets the pod's.
	mu      sync.Mutex
	written map[types.UID]map[string]contentDigest
}

// New makes a Manager. Nothing is written until a pod needs it.
func New(cfg Config) (*Manager, error) {
	if cfg.Root == "" {
		return nil, errors.New("volume: root directory required")
	}
	return &Manager{cfg: cfg, written: map[types.UID]map[string]contentDigest{}}, nil
}

// PodDir is the directory of pod uid.
func (m *Manager) PodDir(uid types.UID) string {
	return filepath.Join(m.cfg.Root, "pods", string(uid))
}

// Inputs are what SetUp reads besides the pod: the objects volumes project, and the
// downward API's values.
type Inputs struct {
	ConfigMap func(ctx context.Context, namespace, name string) (*corev1.ConfigMap, error)
	Secret    func(ctx context.Context, namespace, name string) (*corev1.Secret, error)
	// Downward is the value of one downwardAPI item (a field or a resource of the pod).
	Downward func(item *corev1.DownwardAPIVolumeFile) (string, error)
	// Claim is the PersistentVolume claim namespace/name is bound to; an error wrapping
	// ErrClaimPending if it is not bound yet. Nil: claims are pending.
	Claim func(ctx context.Context, namespace, name string) (*corev1.PersistentVolume, error)
	// ServiceAccountToken is the token of one serviceAccountToken projection of the
	// pod. Nil: such projections fail.
	ServiceAccountToken func(ctx context.Context, p *corev1.ServiceAccountTokenProjection) (string, error)
	// ClusterTrustBundles are the cluster's ClusterTrustBundles, which clusterTrustBundle
	// projections choose from. Nil: such projections fail.
	ClusterTrustBundles func(ctx context.Context) ([]*certificatesv1.ClusterTrustBundle, error)
	// PodCertificate is the private key (a PKCS#8 PEM block) and certificate chain
	// (CERTIFICATE PEM blocks, leaf first) of the podCertificate projection p, source
	// number source of the pod's volume named volume; an error while the signer has not
	// issued them. Nil: such projections fail.
	PodCertificate func(ctx context.Context, volume string, source int, p *corev1.PodCertificateProjection) (key, chain []byte, err error)
	// PodMemory is the most memory the pod may use, in bytes: its cgroup's limit, or the
	// node's allocatable when it has none; 0 if unknown. A medium Memory emptyDir's tmpfs
	// is that big unless its sizeLimit is smaller (Kubernetes' SizeMemoryBackedVolumes).
	PodMemory int64
	// Image mounts an image volume's image, read-only, at dir (pulled first per its
	// pullPolicy). Nil: image volumes fail.
	Image func(ctx context.Context, src *corev1.ImageVolumeSource, dir string) error
}

// Error is the failure of one volume, worded as Kubernetes' kubelet words it.
type Error struct {
	Volume string
	Err    error
}

func (e *Error) Error() string {
	return fmt.Sprintf("MountVolume.SetUp failed for volume %q : %v", e.Volume, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// SetUp makes every volume of pod and brings projected content up to date; it returns
// each volume's path on the host by name. It sets up every volume it can and reports
// the others' errors (each an *Error) joined.
func (m *Manager) SetUp(ctx context.Context, pod *corev1.Pod, in Inputs) (map[string]string, error) {
	paths := make(map[string]string, len(pod.Spec.Volumes))
	var errs []error
	var fsGroup *int64
	if sc := pod.Spec.SecurityContext; sc != nil {
		fsGroup = sc.FSGroup
	}
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		p, err := m.setUpVolume(ctx, pod, v, in, fsGroup)
		if err != nil {
			errs = append(errs, &Error{Volume: v.Name, Err: err})
			continue
		}
		paths[v.Name] = p
	}
	return paths, errors.Join(errs...)
}

func (m *Manager) volumeDir(uid types.UID, plugin, name string) string {
	return filepath.Join(m.PodDir(uid), "volumes", plugin, name)
}

func (m *Manager) setUpVolume(ctx context.Context, pod *corev1.Pod, v *corev1.Volume, in Inputs, fsGroup *int64) (string, error) {
	s := &v.VolumeSource
	switch {
	case s.EmptyDir != nil:
		dir := m.volumeDir(pod.UID, emptyDirPlugin, v.Name)
		fresh, err := makeDir(dir)
		if err != nil {
			return "", err
		}
		if s.EmptyDir.Medium == corev1.StorageMediumMemory {
			opts := "mode=1777"
			if size := memoryVolumeSize(s.EmptyDir.SizeLimit, in.PodMemory); size > 0 {
				opts += ",size=" + strconv.FormatInt(size, 10)
			}
			if err := m.mountTmpfs(dir, opts); err != nil {
				return "", err
			}
		} else if fresh {
			// Kubernetes' emptyDir is world-writable, so any user of the pod can use it.
			if err := os.Chmod(dir, 0o777); err != nil {
				return "", err
			}
		}
		if fresh && fsGroup != nil {
			if err := setGroup(dir, *fsGroup, true); err != nil {
				return "", err
			}
		}
		return dir, nil
	case s.HostPath != nil:
		return s.HostPath.Path, checkHostPath(s.HostPath)
	case s.ConfigMap != nil:
		files, err := configMapFiles(ctx, pod.Namespace, s.ConfigMap.Name, s.ConfigMap.Items, s.ConfigMap.Optional, mode(s.ConfigMap.DefaultMode), in)
		if err != nil {
			return "", err
		}
		return m.writeAtomic(pod.UID, m.volumeDir(pod.UID, configMapPlugin, v.Name), false, files, fsGroup)
	case s.Secret != nil:
		files, err := secretFiles(ctx, pod.Namespace, s.Secret.SecretName, s.Secret.Items, s.Secret.Optional, mode(s.Secret.DefaultMode), in)
		if err != nil {
			return "", err
		}
		return m.writeAtomic(pod.UID, m.volumeDir(pod.UID, secretPlugin, v.Name), true, files, fsGroup)
	case s.DownwardAPI != nil:
		files, err := downwardFiles(s.DownwardAPI.Items, mode(s.DownwardAPI.DefaultMode), in)
		if err != nil {
			return "", err
		}
		return m.writeAtomic(pod.UID, m.volumeDir(pod.UID, downwardAPIPlugin, v.Name), false, files, fsGroup)
	case s.Projected != nil:
		files := map[string]file{}
		def := mode(s.Projected.DefaultMode)
		for i, src := range s.Projected.Sources {
			var part map[string]file
			var err error
			switch {
			case src.ConfigMap != nil:
				part, err = configMapFiles(ctx, pod.Namespace, src.ConfigMap.Name, src.ConfigMap.Items, src.ConfigMap.Optional, def, in)
			case src.Secret != nil:
				part, err = secretFiles(ctx, pod.Namespace, src.Secret.Name, src.Secret.Items, src.Secret.Optional, def, in)
			case src.DownwardAPI != nil:
				part, err = downwardFiles(src.DownwardAPI.Items, def, in)
			case src.ServiceAccountToken != nil:
				part, err = tokenFiles(ctx, src.ServiceAccountToken, def, in)
			case src.ClusterTrustBundle != nil:
				part, err = trustBundleFiles(ctx, src.ClusterTrustBundle, def, in)
			case src.PodCertificate != nil:
				part, err = podCertificateFiles(ctx, v.Name, i, src.PodCertificate, def, in)
			}
			if err != nil {
				return "", err
			}
			for k, f := range part {
				files[k] = f
			}
		}
		return m.writeAtomic(pod.UID, m.volumeDir(pod.UID, projectedPlugin, v.Name), true, files, fsGroup)
	case s.PersistentVolumeClaim != nil:
		return m.claimPath(ctx, pod.Namespace, s.PersistentVolumeClaim.ClaimName, in)
	case s.Image != nil:
		// The image's root filesystem, mounted once (TearDown unmounts it).
		dir := m.volumeDir(pod.UID, imagePlugin, v.Name)
		if mounted, err := mountsUnder(dir); err != nil || slices.Contains(mounted, dir) {
			return dir, err
		}
		if in.Image == nil {
			return "", errors.New("image volumes are not supported by this runtime")
		}
		if _, err := makeDir(dir); err != nil {
			return "", err
		}
		return dir, in.Image(ctx, s.Image, dir)
	}
	return "", errors.New("volume type not supported by Skiff")
}

// memoryVolumeSize is the size of a medium Memory emptyDir's tmpfs, as Kubernetes'
// calculateEmptyDirMemorySize makes it: the pod's memory (its limit, else the node's
// allocatable), or the volume's sizeLimit if that is positive and smaller; 0 when neither
// is known (the kernel's default, half the machine's memory).
func memoryVolumeSize(limit *resource.Quantity, podMemory int64) int64 {
	size := podMemory
	if limit != nil && limit.Sign() > 0 && (size <= 0 || limit.Value() <= size) {
		size = limit.Value()
	}
	return size
}

// ExceededEmptyDir finds the first emptyDir of pod whose content is more than its
// sizeLimit, counted as du counts it (allocated blocks, a file with several links once),
// and returns its name and limit; "" if none is. Kubernetes' kubelet evicts such a pod.
func (m *Manager) ExceededEmptyDir(pod *corev1.Pod) (string, resource.Quantity, error) {
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		e := v.EmptyDir
		if e == nil || e.SizeLimit == nil || e.SizeLimit.Sign() <= 0 {
			continue
		}
		used, err := diskUsage(m.volumeDir(pod.UID, emptyDirPlugin, v.Name))
		if errors.Is(err, os.ErrNotExist) {
			continue // not set up yet
		}
		if err != nil {
			return "", resource.Quantity{}, fmt.Errorf("usage of emptyDir volume %q: %w", v.Name, err)
		}
		if used > e.SizeLimit.Value() {
			return v.Name, *e.SizeLimit, nil
		}
	}
	return "", resource.Quantity{}, nil
}

// EmptyDirUsage is the space pod's emptyDirs on disk take (medium Memory ones are the
// pod's memory), counted as ExceededEmptyDir counts: what Kubernetes adds to its
// containers' usage against their limits.ephemeral-storage.
func (m *Manager) EmptyDirUsage(pod *corev1.Pod) (int64, error) {
	var total int64
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		if v.EmptyDir == nil || v.EmptyDir.Medium == corev1.StorageMediumMemory {
			continue
		}
		used, err := diskUsage(m.volumeDir(pod.UID, emptyDirPlugin, v.Name))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return 0, fmt.Errorf("usage of emptyDir volume %q: %w", v.Name, err)
		}
		total += used
	}
	return total, nil
}

// diskUsage is the space the tree at dir takes, as `du -s --block-size=1` says: the
// blocks allocated to each file and directory (a file with several links counted once).
// Files removed while it walks are skipped.
func diskUsage(dir string) (int64, error) {
	if _, err := os.Lstat(dir); err != nil {
		return 0, err
	}
	type inode struct{ dev, ino uint64 }
	seen := map[inode]bool{}
	var total int64
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		if st.Nlink > 1 && !d.IsDir() {
			k := inode{uint64(st.Dev), st.Ino}
			if seen[k] {
				return nil
			}
			seen[k] = true
		}
		total += st.Blocks * 512
		return nil
	})
	return total, err
}

// claimPath is the path on the node of the volume claim namespace/name is bound to.
func (m *Manager) claimPath(ctx context.Context, namespace, claim string, in Inputs) (string, error) {
	if in.Claim == nil {
		return "", fmt.Errorf("persistentvolumeclaim %q: %w", claim, ErrClaimPending)
	}
	pv, err := in.Claim(ctx, namespace, claim)
	if err != nil {
		return "", err
	}
	switch {
	case pv.Spec.HostPath != nil:
		if m.cfg.Simulated {
			return pv.Spec.HostPath.Path, nil
		}
		return pv.Spec.HostPath.Path, checkHostPath(pv.Spec.HostPath)
	case pv.Spec.Local != nil:
		if m.cfg.Simulated {
			return pv.Spec.Local.Path, nil
		}
		if fi, err := os.Stat(pv.Spec.Local.Path); err != nil {
			return "", fmt.Errorf("local volume %q: %w", pv.Name, err)
		} else if !fi.IsDir() {
			return "", fmt.Errorf("local volume %q: path %q is not a directory", pv.Name, pv.Spec.Local.Path)
		}
		return pv.Spec.Local.Path, nil
	}
	return "", fmt.Errorf("persistentvolume %q: only hostPath and local volumes are supported by Skiff", pv.Name)
}

func mode(m *int32) os.FileMode {
	if m == nil {
		return 0o644
	}
	return os.FileMode(*m)
}

// tokenFiles is a serviceAccountToken projection's file: the pod's token.
func tokenFiles(ctx context.Context, p *corev1.ServiceAccountTokenProjection, def os.FileMode, in Inputs) (map[string]file, error) {
	if in.ServiceAccountToken == nil {
		return nil, errors.New("serviceAccountToken projections are not supported here")
	}
	tok, err := in.ServiceAccountToken(ctx, p)
	if err != nil {
		return nil, err
	}
	return map[string]file{p.Path: {data: []byte(tok), mode: def}}, nil
}

// trustBundleFiles is a clusterTrustBundle projection's file, as Kubernetes' kubelet
// writes it: the trust anchors of the bundle named, or of every bundle of the signer
// that the label selector matches (nil matches none, empty every one), each
// certificate once, in a stable order (sorted; Kubernetes shuffles it once per kubelet
// start). A bundle missing, or a selection of none, is an error unless the source is
// optional, when the file is empty.
func trustBundleFiles(ctx context.Context, p *corev1.ClusterTrustBundleProjection, def os.FileMode, in Inputs) (map[string]file, error) {
	if in.ClusterTrustBundles == nil {
		return nil, errors.New("clusterTrustBundle projections are not supported here")
	}
	optional := p.Optional != nil && *p.Optional
	all, err := in.ClusterTrustBundles(ctx)
	if err != nil {
		return nil, fmt.Errorf("while listing ClusterTrustBundles: %w", err)
	}
	var chosen []*certificatesv1.ClusterTrustBundle
	if p.Name != nil {
		for _, b := range all {
			if b.Name == *p.Name {
				chosen = append(chosen, b)
			}
		}
		if len(chosen) == 0 && !optional {
			return nil, fmt.Errorf("while getting ClusterTrustBundle: clustertrustbundle %q not found", *p.Name)
		}
	} else {
		sel, err := metav1.LabelSelectorAsSelector(p.LabelSelector)
		if err != nil {
			return nil, fmt.Errorf("while parsing label selector: %w", err)
		}
		for _, b := range all {
			if p.SignerName != nil && b.Spec.SignerName == *p.SignerName && sel.Matches(labels.Set(b.Labels)) {
				chosen = append(chosen, b)
			}
		}
		if len(chosen) == 0 && !optional {
			return nil, errors.New("combination of signerName and labelSelector matched zero ClusterTrustBundles")
		}
	}
	anchors := map[string]bool{}
	for _, b := range chosen {
		rest := []byte(b.Spec.TrustBundle)
		for {
			var block *pem.Block
			if block, rest = pem.Decode(rest); block == nil {
				break
			}
			anchors[string(block.Bytes)] = true
		}
	}
	var out []byte
	for _, der := range slices.Sorted(maps.Keys(anchors)) {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte(der)})...)
	}
	return map[string]file{p.Path: {data: out, mode: def}}, nil
}

// podCertificateFiles are a podCertificate projection's files, as Kubernetes' kubelet
// writes them: the credential bundle (the key's PEM block, then the chain's), the key
// and the chain, each where the projection asks.
func podCertificateFiles(ctx context.Context, volume string, source int, p *corev1.PodCertificateProjection, def os.FileMode, in Inputs) (map[string]file, error) {
	if in.PodCertificate == nil {
		return nil, errors.New("podCertificate projections are not supported here")
	}
	key, chain, err := in.PodCertificate(ctx, volume, source, p)
	if err != nil {
		return nil, err
	}
	out := map[string]file{}
	if p.CredentialBundlePath != "" {
		out[p.CredentialBundlePath] = file{data: slices.Concat(key, chain), mode: def}
	}
	if p.KeyPath != "" {
		out[p.KeyPath] = file{data: key, mode: def}
	}
	if p.CertificateChainPath != "" {
		out[p.CertificateChainPath] = file{data: chain, mode: def}
	}
	return out, nil
}

// file is one file of a projected volume.
type file struct {
	data []byte
	mode os.FileMode
}

func configMapFiles(ctx context.Context, ns, name string, items []corev1.KeyToPath, optional *bool, def os.FileMode, in Inputs) (map[string]file, error) {
	cm, err := in.ConfigMap(ctx, ns, name)
	if err != nil {
		if client.IsNotFound(err) {
			if optional != nil && *optional {
				return map[string]file{}, nil
			}
			return nil, fmt.Errorf("configmap %q not found", name)
		}
		return nil, err
	}
	data := make(map[string][]byte, len(cm.Data)+len(cm.BinaryData))
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	return keyFiles(data, items, optional, def, func(key string) error {
		return fmt.Errorf("configmap references non-existent config key: %s", key)
	})
}

func secretFiles(ctx context.Context, ns, name string, items []corev1.KeyToPath, optional *bool, def os.FileMode, in Inputs) (map[string]file, error) {
	s, err := in.Secret(ctx, ns, name)
	if err != nil {
		if client.IsNotFound(err) {
			if optional != nil && *optional {
				return map[string]file{}, nil
			}
			return nil, fmt.Errorf("secret %q not found", name)
		}
		return nil, err
	}
	return keyFiles(s.Data, items, optional, def, func(key string) error {
		return fmt.Errorf("references non-existent secret key: %s", key)
	})
}

// keyFiles maps an object's keys to files: every key by its name, or the items asked.
func keyFiles(data map[string][]byte, items []corev1.KeyToPath, optional *bool, def os.FileMode, missing func(string) error) (map[string]file, error) {
	out := map[string]file{}
	if len(items) == 0 {
		for k, v := range data {
			out[k] = file{data: v, mode: def}
		}
		return out, nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			if optional != nil && *optional {
				continue
			}
			return nil, missing(it.Key)
		}
		m := def
		if it.Mode != nil {
			m = os.FileMode(*it.Mode)
		}
		out[it.Path] = file{data: v, mode: m}
	}
	return out, nil
}

func downwardFiles(items []corev1.DownwardAPIVolumeFile, def os.FileMode, in Inputs) (map[string]file, error) {
	out := map[string]file{}
	for i := range items {
		it := &items[i]
		v, err := in.Downward(it)
		if err != nil {
			return nil, err
		}
		m := def
		if it.Mode != nil {
			m = os.FileMode(*it.Mode)
		}
		out[it.Path] = file{data: []byte(v), mode: m}
	}
	return out, nil
}

// checkHostPath makes or checks a hostPath per its type, with Kubernetes' messages.
func checkHostPath(h *corev1.HostPathVolumeSource) error {
	typ := corev1.HostPathUnset
	if h.Type != nil {
		typ = *h.Type
	}
	p := h.Path
	fi, err := os.Stat(p)
	exists := err == nil
	fail := func(what string) error { return fmt.Errorf("hostPath type check failed: %s is not %s", p, what) }
	switch typ {
	case corev1.HostPathUnset:
		return nil
	case corev1.HostPathDirectoryOrCreate:
		if !exists {
			return os.MkdirAll(p, 0o755)
		}
		if !fi.IsDir() {
			return fail("a directory")
		}
	case corev1.HostPathDirectory:
		if !exists || !fi.IsDir() {
			return fail("a directory")
		}
	case corev1.HostPathFileOrCreate:
		if !exists {
			f, err := os.OpenFile(p, os.O_CREATE|os.O_RDONLY, 0o644)
			if err != nil {
				return fmt.Errorf("hostPath type check failed: %w", err)
			}
			return f.Close()
		}
		if fi.IsDir() {
			return fail("a file")
		}
	case corev1.HostPathFile:
		if !exists || !fi.Mode().IsRegular() {
			return fail("a file")
		}
	case corev1.HostPathSocket:
		if !exists || fi.Mode()&os.ModeSocket == 0 {
			return fail("a socket file")
		}
	case corev1.HostPathCharDev:
		if !exists || fi.Mode()&os.ModeCharDevice == 0 {
			return fail("a character device")
		}
	case corev1.HostPathBlockDev:
		if !exists || fi.Mode()&os.ModeDevice == 0 || fi.Mode()&os.ModeCharDevice != 0 {
			return fail("a block device")
		}
	}
	return nil
}

// makeDir creates dir (and its parents) and says whether it was not there before.
func makeDir(dir string) (bool, error) {
	if _, err := os.Stat(dir); err == nil {
		return false, nil
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return false, err
	}
	return true, nil
}

// setGroup gives path (and, for a directory, the setgid bit, so files made in it
// inherit) the group gid, as Kubernetes' fsGroup does.
func setGroup(path string, gid int64, dir bool) error {
	if err := os.Lchown(path, -1, int(gid)); err != nil {
		return err
	}
	if dir {
		fi, err := os.Stat(path)
		if err != nil {
			return err
		}
		return os.Chmod(path, fi.Mode().Perm()|os.ModeSetgid|0o070)
	}
	return nil
}

const tmpfsMagic = 0x01021994

// mountTmpfs mounts a tmpfs on dir unless one is there (or Config.Tmpfs is off).
func (m *Manager) mountTmpfs(dir, opts string) error {
	if !m.cfg.Tmpfs {
		return nil
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return err
	}
	if st.Type == tmpfsMagic {
		return nil
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", dir, err)
	}
	return nil
}

// WriteFile writes a file of the pod's own (hosts, resolv.conf) unless it holds data
// already, and returns its path.
func (m *Manager) WriteFile(uid types.UID, name string, data []byte) (string, error) {
	p := filepath.Join(m.PodDir(uid), name)
	if old, err := os.ReadFile(p); err == nil && string(old) == string(data) {
		return p, nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return "", err
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return "", err
	}
	return p, os.Rename(tmp, p)
}

// TerminationLog makes the (empty) file a container's terminationMessagePath is bound
// to, one per attempt, and returns its path.
func (m *Manager) TerminationLog(uid types.UID, container string, attempt int) (string, error) {
	p := m.TerminationLogPath(uid, container, attempt)
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return "", err
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return "", err
	}
	// Any user of the container may write its message.
	if err := f.Chmod(0o666); err != nil {
		f.Close()
		return "", err
	}
	return p, f.Close()
}

// TerminationLogPath is where TerminationLog puts an attempt's file.
func (m *Manager) TerminationLogPath(uid types.UID, container string, attempt int) string {
	return filepath.Join(m.PodDir(uid), "containers", container, strconv.Itoa(attempt))
}

// Pods lists the uids of the pod directories present.
func (m *Manager) Pods() ([]types.UID, error) {
	ents, err := os.ReadDir(filepath.Join(m.cfg.Root, "pods"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list pod directories: %w", err)
	}
	out := make([]types.UID, 0, len(ents))
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, types.UID(e.Name()))
		}
	}
	return out, nil
}

// TearDown unmounts whatever is mounted under pod uid's directory and removes it.
func (m *Manager) TearDown(uid types.UID) error {
	m.mu.Lock()
	delete(m.written, uid)
	m.mu.Unlock()
	dir := m.PodDir(uid)
	mounts, err := mountsUnder(dir)
	if err != nil {
		return err
	}
	// Deepest first, so that nothing is unmounted from under another mount.
	slices.SortFunc(mounts, func(a, b string) int { return len(b) - len(a) })
	for _, mp := range mounts {
		if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("tear down pod %s: unmount %s: %w", uid, mp, err)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("tear down pod %s: %w", uid, err)
	}
	return nil
}

// mountsUnder lists the mount points at or below dir (from /proc/self/mountinfo).
func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dir = filepath.Clean(dir)
	var out []string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64*1024), 1024*1024)
	for s.Scan() {
		// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw
		fields := strings.Fields(s.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountPath(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	return out, s.Err()
}

// unescapeMountPath undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountPath(p string) string {
	if !strings.Contains(p, `\`) {
		return p
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '\\' && i+3 < len(p) {
			if n, err := strconv.ParseUint(p[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

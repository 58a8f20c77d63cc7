package kubelet

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// fakeVolumes is the API servers' volumes, as far as the reclaimer reads and deletes them.
type fakeVolumes struct {
	pvs       map[string]*corev1.PersistentVolume
	getErr    map[string]error
	deleteErr error
	deleted   []string
}

func (f *fakeVolumes) get(_ context.Context, name string) (*corev1.PersistentVolume, error) {
	if err := f.getErr[name]; err != nil {
		return nil, err
	}
	pv, ok := f.pvs[name]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "persistentvolumes %q not found", name)
	}
	return pv, nil
}

func (f *fakeVolumes) delete(_ context.Context, pv *corev1.PersistentVolume) error {
	if f.deleteErr != nil {
		return f.deleteErr
	}
	delete(f.pvs, pv.Name)
	f.deleted = append(f.deleted, pv.Name)
	return nil
}

// localVolume is a volume as the local-path provisioner makes it for claim ns/claim on
// node, in phase.
func localVolume(root, name, node string, phase corev1.PersistentVolumePhase, policy corev1.PersistentVolumeReclaimPolicy) *corev1.PersistentVolume {
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: "uid-" + types.UID(name), Annotations: map[string]string{"pv.kubernetes.io/provisioned-by": "skiff.io/local-path"}},
		Spec: corev1.PersistentVolumeSpec{
			PersistentVolumeReclaimPolicy: policy,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: filepath.Join(root, name+"_shop_data")}},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{node}}},
			}}}},
		},
		Status: corev1.PersistentVolumeStatus{Phase: phase},
	}
}

func notInUse(*corev1.PersistentVolume) string { return "" }

// The reclaimer removes a Released local-path volume of reclaimPolicy Delete (its
// data, then the volume, then its directory) and nothing else.
func TestReclaimLocalVolumes(t *testing.T) {
	const node = "n1"
	for _, tc := range []struct {
		name string
		pv   func(root string) *corev1.PersistentVolume // nil: no such volume
		// data: the directory holds a file.
		data     bool
		getErr   error
		inUse    bool // a pod of the node still mounts the claim
		reclaim  bool // the volume deleted, its directory gone
		dirStays bool
	}{
		{"released, delete", func(r string) *corev1.PersistentVolume {
			return localVolume(r, "pvc-1", node, corev1.VolumeReleased, corev1.PersistentVolumeReclaimDelete)
		}, true, nil, false, true, false},
		{"released, retain", func(r string) *corev1.PersistentVolume {
			return localVolume(r, "pvc-1", node, corev1.VolumeReleased, corev1.PersistentVolumeReclaimRetain)
		}, true, nil, false, false, true},
		{"bound", func(r string) *corev1.PersistentVolume {
			return localVolume(r, "pvc-1", node, corev1.VolumeBound, corev1.PersistentVolumeReclaimDelete)
		}, true, nil, false, false, true},
		{"another node's", func(r string) *corev1.PersistentVolume {
			return localVolume(r, "pvc-1", "n2", corev1.VolumeReleased, corev1.PersistentVolumeReclaimDelete)
		}, true, nil, false, false, true},
		{"elsewhere", func(r string) *corev1.PersistentVolume {
			pv := localVolume(r, "pvc-1", node, corev1.VolumeReleased, corev1.PersistentVolumeReclaimDelete)
			pv.Spec.HostPath.Path = "/srv/data"
			return pv
		}, true, nil, false, false, true},
		{"not the provisioner's", func(r string) *corev1.PersistentVolume {
			pv := localVolume(r, "pvc-1", node, corev1.VolumeReleased, corev1.PersistentVolumeReclaimDelete)
			pv.Annotations = nil
			return pv
		}, true, nil, false, false, true},
		{"forbidden", func(r string) *corev1.PersistentVolume {
			return localVolume(r, "pvc-1", node, corev1.VolumeReleased, corev1.PersistentVolumeReclaimDelete)
		}, true, status.Error(codes.PermissionDenied, "no relationship found"), false, false, true},
		{"released, delete, in use", func(r string) *corev1.PersistentVolume {
			return localVolume(r, "pvc-1", node, corev1.VolumeReleased, corev1.PersistentVolumeReclaimDelete)
		}, true, nil, true, false, true},
		{"unknown volume, directory empty", nil, false, nil, false, false, true},
		{"unknown volume, directory with data", nil, true, nil, false, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			dir := filepath.Join(root, "pvc-1_shop_data")
			if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
				t.Fatal(err)
			}
			if tc.data {
				if err := os.WriteFile(filepath.Join(dir, "sub", "file"), []byte("data"), 0o644); err != nil {
					t.Fatal(err)
				}
			} else if err := os.Remove(filepath.Join(dir, "sub")); err != nil {
				t.Fatal(err)
			}
			// Neither a file nor a directory not named as the provisioner names them is touched.
			for _, p := range []string{filepath.Join(root, "other"), filepath.Join(root, "pvc-2")} {
				if err := os.Mkdir(p, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			api := &fakeVolumes{pvs: map[string]*corev1.PersistentVolume{}, getErr: map[string]error{"pvc-1": tc.getErr}}
			if tc.pv != nil {
				api.pvs["pvc-1"] = tc.pv(root)
			}
			inUse := notInUse
			if tc.inUse {
				inUse = func(*corev1.PersistentVolume) string { return "in use by pod shop/db-0" }
			}
			reclaimLocalVolumes(context.Background(), api, root, node, inUse, hclog.NewNullLogger())
			if got := slices.Equal(api.deleted, []string{"pvc-1"}); got != tc.reclaim {
				t.Errorf("deleted %v, want reclaimed %v", api.deleted, tc.reclaim)
			}
			_, err := os.Stat(dir)
			if stays := err == nil; stays != tc.dirStays {
				t.Errorf("directory stays %v, want %v", stays, tc.dirStays)
			}
			if tc.dirStays && tc.data {
				if _, err := os.Stat(filepath.Join(dir, "sub", "file")); err != nil {
					t.Errorf("data lost: %v", err)
				}
			}
			for _, p := range []string{filepath.Join(root, "other"), filepath.Join(root, "pvc-2")} {
				if _, err := os.Stat(p); err != nil {
					t.Errorf("%s: %v", p, err)
				}
			}
		})
	}
}

// A reclaim cut short after the data went and before the volume was deleted finishes
// at the next pass.
func TestReclaimLocalVolumeResumes(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "pvc-1_shop_data")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "file"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	api := &fakeVolumes{pvs: map[string]*corev1.PersistentVolume{
		"pvc-1": localVolume(root, "pvc-1", "n1", corev1.VolumeReleased, corev1.PersistentVolumeReclaimDelete)},
		deleteErr: errors.New("connection refused")}
	reclaimLocalVolumes(context.Background(), api, root, "n1", notInUse, hclog.NewNullLogger())
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Fatalf("after a failed delete: directory %v, %v; want it there, empty", entries, err)
	}
	api.deleteErr = nil
	reclaimLocalVolumes(context.Background(), api, root, "n1", notInUse, hclog.NewNullLogger())
	if _, err := os.Stat(dir); !os.IsNotExist(err) || !slices.Equal(api.deleted, []string{"pvc-1"}) {
		t.Fatalf("second pass: directory %v, deleted %v", err, api.deleted)
	}
}

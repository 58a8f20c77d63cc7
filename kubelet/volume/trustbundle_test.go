package volume

import (
	"context"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/pki"
)

// TestClusterTrustBundleProjection: a clusterTrustBundle source writes the trust
// anchors of a bundle by name, or of the signer's bundles its label selector matches
// (empty: all; nil: none), each once; optional sources missing write an empty file,
// others fail in Kubernetes' words; a bundle's change is written atomically.
func TestClusterTrustBundleProjection(t *testing.T) {
	var cas []string // PEM, by index
	for _, name := range []string{"ca0", "ca1", "ca2", "ca3"} {
		ca, err := pki.NewCA(name, time.Now(), 0)
		if err != nil {
			t.Fatal(err)
		}
		cas = append(cas, string(ca.CertPEM()))
	}
	ctb := func(name, signer string, lbls map[string]string, pems ...string) *certificatesv1.ClusterTrustBundle {
		return &certificatesv1.ClusterTrustBundle{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls},
			Spec: certificatesv1.ClusterTrustBundleSpec{SignerName: signer, TrustBundle: strings.Join(pems, "")}}
	}
	bundles := []*certificatesv1.ClusterTrustBundle{
		ctb("roots", "", nil, cas[0], cas[1]),
		ctb("example.com:signer:prod", "example.com/signer", map[string]string{"env": "prod"}, cas[1], cas[2]),
		ctb("example.com:signer:dev", "example.com/signer", map[string]string{"env": "dev"}, cas[3]),
	}
	objs := &objects{}
	in := objs.inputs()
	in.ClusterTrustBundles = func(context.Context) ([]*certificatesv1.ClusterTrustBundle, error) { return bundles, nil }
	signer := "example.com/signer"
	src := func(p corev1.ClusterTrustBundleProjection) corev1.VolumeProjection {
		return corev1.VolumeProjection{ClusterTrustBundle: &p}
	}
	vol := func(name string, srcs ...corev1.VolumeProjection) corev1.Volume {
		return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: srcs}}}
	}
	m, _ := New(Config{Root: t.TempDir()})
	pod := testPod(vol("trust",
		src(corev1.ClusterTrustBundleProjection{Name: new("roots"), Path: "roots.pem"}),
		src(corev1.ClusterTrustBundleProjection{SignerName: &signer, LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}, Path: "prod.pem"}),
		src(corev1.ClusterTrustBundleProjection{SignerName: &signer, LabelSelector: &metav1.LabelSelector{}, Path: "all.pem"}),
		src(corev1.ClusterTrustBundleProjection{SignerName: &signer, Optional: new(true), Path: "none.pem"}),
		src(corev1.ClusterTrustBundleProjection{Name: new("nope"), Optional: new(true), Path: "missing.pem"}),
	))
	paths, err := m.SetUp(context.Background(), pod, in)
	if err != nil {
		t.Fatal(err)
	}
	dir := paths["trust"]
	anchors := func(file string) []string {
		t.Helper()
		var out []string
		rest := []byte(read(t, filepath.Join(dir, file)))
		for {
			var b *pem.Block
			if b, rest = pem.Decode(rest); b == nil {
				break
			}
			out = append(out, string(pem.EncodeToMemory(b)))
		}
		slices.Sort(out)
		return out
	}
	want := func(idx ...int) []string {
		var out []string
		for _, i := range idx {
			out = append(out, cas[i])
		}
		slices.Sort(out)
		return out
	}
	for file, w := range map[string][]string{"roots.pem": want(0, 1), "prod.pem": want(1, 2), "all.pem": want(1, 2, 3), "none.pem": nil, "missing.pem": nil} {
		if got := anchors(file); !slices.Equal(got, w) {
			t.Errorf("%s holds %d anchors, want %d", file, len(got), len(w))
		}
	}
	first, _ := os.Readlink(filepath.Join(dir, "..data"))
	bundles[0] = ctb("roots", "", nil, cas[3])
	if _, err := m.SetUp(context.Background(), pod, in); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.Readlink(filepath.Join(dir, "..data")); again == first || !slices.Equal(anchors("roots.pem"), want(3)) {
		t.Errorf("the bundle's change was not written anew (..data %s -> %s)", first, again)
	}

	for _, tc := range []struct {
		src  corev1.ClusterTrustBundleProjection
		want string
	}{
		{corev1.ClusterTrustBundleProjection{Name: new("nope"), Path: "a"}, `clustertrustbundle "nope" not found`},
		{corev1.ClusterTrustBundleProjection{SignerName: new("example.com/other"), LabelSelector: &metav1.LabelSelector{}, Path: "a"},
			"combination of signerName and labelSelector matched zero ClusterTrustBundles"},
		{corev1.ClusterTrustBundleProjection{SignerName: &signer, Path: "a"}, "combination of signerName and labelSelector matched zero ClusterTrustBundles"},
	} {
		_, err := m.SetUp(context.Background(), testPod(vol("bad", src(tc.src))), in)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `MountVolume.SetUp failed for volume "bad"`) {
			t.Errorf("%+v: %v, want %q", tc.src, err, tc.want)
		}
	}
}

package volume

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestPodCertificateProjection: a podCertificate source writes the credential bundle
// (key, then chain), the key and the chain where it asks, beside the volume's other
// sources, asking Inputs for the credentials of its volume and source index; new
// credentials are written atomically; while there are none, the volume fails with
// the reason.
func TestPodCertificateProjection(t *testing.T) {
	objs := &objects{}
	in := objs.inputs()
	type asked struct {
		volume string
		source int
		signer string
	}
	var calls []asked
	key, chain := "-----BEGIN PRIVATE KEY-----\nk1\n-----END PRIVATE KEY-----\n", "-----BEGIN CERTIFICATE-----\nc1\n-----END CERTIFICATE-----\n"
	var pending error
	in.PodCertificate = func(_ context.Context, volume string, source int, p *corev1.PodCertificateProjection) ([]byte, []byte, error) {
		calls = append(calls, asked{volume, source, p.SignerName})
		if pending != nil {
			return nil, nil, pending
		}
		return []byte(key), []byte(chain), nil
	}
	pod := testPod(corev1.Volume{Name: "creds", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		DefaultMode: new(int32(0o600)),
		Sources: []corev1.VolumeProjection{
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}},
			{PodCertificate: &corev1.PodCertificateProjection{SignerName: "example.com/a", KeyType: "ED25519", CredentialBundlePath: "bundle.pem"}},
			{PodCertificate: &corev1.PodCertificateProjection{SignerName: "example.com/b", KeyType: "ED25519", KeyPath: "tls/key.pem", CertificateChainPath: "tls/chain.pem"}},
		},
	}}})
	m, _ := New(Config{Root: t.TempDir()})
	paths, err := m.SetUp(context.Background(), pod, in)
	if err != nil {
		t.Fatal(err)
	}
	dir := paths["creds"]
	if want := []asked{{"creds", 1, "example.com/a"}, {"creds", 2, "example.com/b"}}; fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Errorf("asked %v, want %v", calls, want)
	}
	for file, want := range map[string]string{"bundle.pem": key + chain, "tls/key.pem": key, "tls/chain.pem": chain} {
		if got := read(t, filepath.Join(dir, file)); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
		if fi, err := os.Stat(filepath.Join(dir, file)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v (%v), want the volume's 0600", file, fi.Mode().Perm(), err)
		}
	}

	first, _ := os.Readlink(filepath.Join(dir, "..data"))
	key = "-----BEGIN PRIVATE KEY-----\nk2\n-----END PRIVATE KEY-----\n"
	if _, err := m.SetUp(context.Background(), pod, in); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.Readlink(filepath.Join(dir, "..data")); again == first || read(t, filepath.Join(dir, "tls/key.pem")) != key {
		t.Errorf("the new key was not written anew (..data %s -> %s)", first, again)
	}

	pending = errors.New(`PodCertificateRequest default/web-0 is pending (signer "example.com/a")`)
	_, err = m.SetUp(context.Background(), testPod(pod.Spec.Volumes[0]), in)
	if err == nil || !strings.Contains(err.Error(), `MountVolume.SetUp failed for volume "creds" : PodCertificateRequest default/web-0 is pending`) {
		t.Errorf("pending: %v", err)
	}
	in.PodCertificate = nil
	pending = nil
	if _, err := m.SetUp(context.Background(), testPod(pod.Spec.Volumes[0]), in); err == nil || !strings.Contains(err.Error(), "podCertificate projections are not supported here") {
		t.Errorf("without a source of credentials: %v", err)
	}
}

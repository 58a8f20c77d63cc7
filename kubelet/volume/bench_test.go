package volume

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	benchfig "github.com/skiffhq/skiff/test/bench"
)

// BenchmarkTokenVolume: what a pod's kube-api-access volume (a token, the cluster CA,
// the namespace) costs a simulated node's kubelet in CPU: its first write and four
// syncs with nothing changed, with the Manager's memory of what it wrote
// (token_volume_sync_us) and without it, each sync reading the volume back as before
// 2026-12-06 (token_volume_sync_readback_us).
func BenchmarkTokenVolume(b *testing.B) {
	benchfig.Want(b, "token_volume_sync_us", "token_volume_sync_readback_us")
	const pods, syncs = 500, 4
	ca := &corev1.ConfigMap{Data: map[string]string{"ca.crt": string(make([]byte, 1200))}}
	token := string(make([]byte, 1000))
	mode := int32(0o644)
	vol := corev1.Volume{Name: "kube-api-access-abcde", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		DefaultMode: &mode,
		Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}},
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"},
				Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace",
				FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}},
		}}}}
	in := Inputs{
		ConfigMap:           func(context.Context, string, string) (*corev1.ConfigMap, error) { return ca, nil },
		Downward:            func(*corev1.DownwardAPIVolumeFile) (string, error) { return "default", nil },
		ServiceAccountToken: func(context.Context, *corev1.ServiceAccountTokenProjection) (string, error) { return token, nil },
	}
	for _, c := range []struct {
		name     string
		readBack bool
	}{{"token_volume_sync_us", false}, {"token_volume_sync_readback_us", true}} {
		b.Run(c.name, func(b *testing.B) {
			for range b.N {
				m, _ := New(Config{Root: b.TempDir()})
				cpu := benchfig.StartCPU()
				for i := range pods {
					pod := testPod(vol)
					pod.UID = types.UID(fmt.Sprintf("uid-%d", i))
					for range 1 + syncs {
						if c.readBack {
							m.mu.Lock()
							clear(m.written)
							m.mu.Unlock()
						}
						if _, err := m.SetUp(context.Background(), pod, in); err != nil {
							b.Fatal(err)
						}
					}
				}
				benchfig.Report(c.name, float64(cpu()/time.Microsecond)/pods, "µs")
			}
		})
	}
}

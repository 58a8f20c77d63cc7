package kubelet

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// The volumes a pod is synced for every ObjectCacheTTL: ConfigMaps and Secrets, not the
// service-account volume every pod has (its token and CA change within a resync).
func TestProjectsObjects(t *testing.T) {
	saVolume := corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
		{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr.To[int64](3607)}},
		{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"}}},
		{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace"}}}},
	}}}
	projected := func(src corev1.VolumeProjection) corev1.VolumeSource {
		return corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{src}}}
	}
	for _, tc := range []struct {
		name    string
		volumes []corev1.VolumeSource
		want    bool
	}{
		{"none", nil, false},
		{"service-account volume", []corev1.VolumeSource{saVolume}, false},
		{"emptyDir", []corev1.VolumeSource{{EmptyDir: &corev1.EmptyDirVolumeSource{}}}, false},
		{"configMap", []corev1.VolumeSource{saVolume, {ConfigMap: &corev1.ConfigMapVolumeSource{}}}, true},
		{"secret", []corev1.VolumeSource{{Secret: &corev1.SecretVolumeSource{SecretName: "s"}}}, true},
		{"projected configMap", []corev1.VolumeSource{projected(corev1.VolumeProjection{
			ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}})}, true},
		{"projected secret", []corev1.VolumeSource{projected(corev1.VolumeProjection{Secret: &corev1.SecretProjection{}})}, true},
		{"projected trust bundle", []corev1.VolumeSource{projected(corev1.VolumeProjection{ClusterTrustBundle: &corev1.ClusterTrustBundleProjection{}})}, true},
	} {
		spec := &corev1.PodSpec{}
		for i, v := range tc.volumes {
			spec.Volumes = append(spec.Volumes, corev1.Volume{Name: string(rune('a' + i)), VolumeSource: v})
		}
		if got := projectsObjects(spec); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

package apiserver_test

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/store"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

// storePod writes pod straight into the store, as the API server would store it: the
// node graph follows the store, whatever the API accepts today.
func storePod(t *testing.T, s *store.Store, pod *corev1.Pod) {
	t.Helper()
	pod.UID = k8stypes.UID("uid-" + pod.Name)
	value, err := kinds.Encode(pod)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Txn(context.Background(), store.Op{Type: store.Create, Key: store.Key{Kind: kinds.Pod, Namespace: pod.Namespace, Name: pod.Name},
		Value: value, UID: string(pod.UID), Fields: map[string]string{"spec.nodeName": pod.Spec.NodeName}}); err != nil {
		t.Fatal(err)
	}
}

// TestNodeReadsOnlyWhatItsPodsReference: a kubelet's credentials read a Secret or a
// ConfigMap only while a pod bound to its node references it (env, envFrom, volumes,
// projected volumes, imagePullSecrets), by name: get, or list and watch of that name;
// never another, never one of another node's pods, never a write.
func TestNodeReadsOnlyWhatItsPodsReference(t *testing.T) {
	dir := apicluster.Certs(t, "w1", "w2")
	c := apicluster.Start(t, 3, apicluster.Options{Certs: dir})
	ctx := testCtx(t)
	dial := func(name string, addrs []string) *client.Clientset {
		conn, err := client.Dial(addrs, client.Options{TLS: apicluster.ClientTLS(t, dir, name)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return client.NewClientset(conn)
	}
	admin := dial("admin", c.Addrs())
	for _, name := range []string{"s-env", "s-vol", "s-pull", "s-proj", "s-other", "s-w2"} {
		if _, err := admin.Secrets.Create(ctx, secretWith(name, map[string]string{"k": name})); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"c-env", "c-vol", "c-proj", "c-other"} {
		if _, err := admin.ConfigMaps.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
			Data: map[string]string{"k": name}}); err != nil {
			t.Fatal(err)
		}
	}
	p1 := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "p1"}, Spec: corev1.PodSpec{
		NodeName:         "w1",
		ImagePullSecrets: []corev1.LocalObjectReference{{Name: "s-pull"}},
		InitContainers: []corev1.Container{{Name: "init", Image: "busybox", Env: []corev1.EnvVar{{Name: "A", ValueFrom: &corev1.EnvVarSource{
			SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s-env"}, Key: "k"}}}}}},
		Containers: []corev1.Container{{Name: "c", Image: "busybox", EnvFrom: []corev1.EnvFromSource{
			{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "c-env"}}}}}},
		Volumes: []corev1.Volume{
			{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "s-vol"}}},
			{Name: "c", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "c-vol"}}}},
			{Name: "p", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "s-proj"}}},
				{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "c-proj"}}}}}}},
		},
	}}
	storePod(t, c.Server(c.Leader()).Store(), p1)

	w1 := dial("kubelet-w1", c.Addrs())
	for _, name := range []string{"s-env", "s-vol", "s-pull", "s-proj"} {
		if s, err := w1.Secrets.Get(ctx, "default", name); err != nil || string(s.Data["k"]) != name {
			t.Errorf("w1 reads secret %s of its pod: %v", name, err)
		}
	}
	for _, name := range []string{"c-env", "c-vol", "c-proj"} {
		if _, err := w1.ConfigMaps.Get(ctx, "default", name); err != nil {
			t.Errorf("w1 reads configmap %s of its pod: %v", name, err)
		}
	}
	denied := func(what string, err error, want string) {
		t.Helper()
		if !client.IsForbidden(err) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want a refusal saying %q", what, err, want)
		}
	}
	_, err := w1.Secrets.Get(ctx, "default", "s-other")
	denied("w1 gets a secret no pod of its references", err, `user "system:node:w1" cannot get secrets "default/s-other": no relationship found between node 'w1' and this object`)
	_, err = w1.ConfigMaps.Get(ctx, "default", "c-other")
	denied("w1 gets a configmap no pod of its references", err, `cannot get configmaps "default/c-other": no relationship found between node 'w1'`)
	_, err = w1.Secrets.Get(ctx, "kube-system", "s-env")
	denied("w1 gets a secret of that name in another namespace", err, "no relationship found")

	// By name, list and watch too; not all of them.
	byName := client.ListOptions{FieldSelector: "metadata.name=s-env"}
	if l, err := w1.Secrets.List(ctx, "default", byName); err != nil || len(l.Items) != 1 {
		t.Errorf("w1 lists its secret by name: %v", err)
	}
	wt, err := w1.Secrets.Watch(ctx, "default", client.WatchOptions{ListOptions: byName})
	if err != nil {
		t.Fatalf("w1 watches its secret by name: %v", err)
	}
	defer wt.Stop()
	_, err = w1.Secrets.List(ctx, "default", client.ListOptions{})
	denied("w1 lists every secret", err, "a node may only list secrets by name")
	_, err = w1.Secrets.List(ctx, "default", client.ListOptions{FieldSelector: "metadata.name=s-other"})
	denied("w1 lists another secret by name", err, "no relationship found")
	_, err = w1.Secrets.List(ctx, "", byName)
	denied("w1 lists its secret's name in every namespace", err, "by name, in their namespace")
	s, _ := admin.Secrets.Get(ctx, "default", "s-env")
	s.Data["k"] = []byte("changed")
	_, err = w1.Secrets.Update(ctx, s)
	denied("w1 writes its secret", err, `cannot update secrets "default/s-env"`)
	if _, err := admin.Secrets.Update(ctx, s); err != nil {
		t.Fatal(err)
	}
	if evs, err := wt.Next(); err != nil || len(evs) != 1 || string(evs[0].Object.Data["k"]) != "changed" {
		t.Errorf("w1's watch of its secret: %v %v", evs, err)
	}

	// Another node reads none of it; a pod bound to it a moment ago through one member
	// lets it read at once through another.
	w2 := dial("kubelet-w2", c.Addrs()[2:])
	_, err = w2.Secrets.Get(ctx, "default", "s-env")
	denied("w2 gets w1's pod's secret", err, "no relationship found between node 'w2' and this object")
	p2 := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "p2"}, Spec: corev1.PodSpec{
		ImagePullSecrets: []corev1.LocalObjectReference{{Name: "s-w2"}}, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
	if p2, err = admin.Pods.Create(ctx, p2); err != nil {
		t.Fatal(err)
	}
	_, err = w2.Secrets.Get(ctx, "default", "s-w2")
	denied("w2 gets the secret of a pod not yet bound to it", err, "no relationship found")
	adminFirst := dial("admin", c.Addrs()[:1])
	if _, err := adminFirst.Conn.Bind(ctx, "default", "p2", string(p2.UID), "w2"); err != nil {
		t.Fatal(err)
	}
	if _, err := w2.Secrets.Get(ctx, "default", "s-w2"); err != nil {
		t.Errorf("w2 reads the secret of the pod just bound to it: %v", err)
	}

	// The pod gone, so is the access.
	if _, err := admin.Pods.Delete(ctx, "default", "p1", client.DeleteOptions{GracePeriodSeconds: new(int64(0))}); err != nil {
		t.Fatal(err)
	}
	waitfor.Condition(t, 30*time.Second, "w1 loses its deleted pod's secret", func() (bool, string) {
		_, err := w1.Secrets.Get(ctx, "default", "s-env")
		return client.IsForbidden(err), "get: " + errString(err)
	})
}

func errString(err error) string {
	if err == nil {
		return "allowed"
	}
	return err.Error()
}

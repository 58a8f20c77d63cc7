package apiserver

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	utilrand "k8s.io/apimachinery/pkg/util/rand"

	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/store"
)

// Admission plugins, as Kubernetes names them, that a server may be told to leave out
// (Config.DisableAdmissionPlugins).
const (
	// AdmissionServiceAccount gives a new pod its namespace's "default" ServiceAccount
	// when it names none, refuses a pod whose account does not exist, gives it the
	// account's imagePullSecrets when it has none of its own, and, when the server
	// issues tokens, mounts the account's token (mountServiceAccountToken).
	AdmissionServiceAccount = "ServiceAccount"
)

// admissionPlugins are the plugins there are.
var admissionPlugins = []string{AdmissionServiceAccount}

// DefaultServiceAccount is the account of a pod that names none.
const DefaultServiceAccount = "default"

// defaultAccountWait is how long a pod's create waits for its namespace's default
// account when it is missing: the controller-manager makes it just after the
// namespace, and a pod created in a new namespace may come first (Kubernetes retries
// about as long).
const defaultAccountWait = 2 * time.Second

// accountInfo is what the admission and the token checks keep of a ServiceAccount.
type accountInfo struct {
	uid       string
	pull      []corev1.LocalObjectReference
	automount *bool
}

// serviceAccountInfo is what the admission keeps of a stored ServiceAccount.
func serviceAccountInfo(o store.Object) (accountInfo, error) {
	obj, err := decode(kinds.MustLookup(kinds.ServiceAccount), &o)
	if err != nil {
		return accountInfo{}, err
	}
	sa := obj.(*corev1.ServiceAccount)
	return accountInfo{uid: string(sa.UID), pull: sa.ImagePullSecrets, automount: sa.AutomountServiceAccountToken}, nil
}

// admitServiceAccount is Kubernetes' ServiceAccount admission for a new pod.
func (r *resources) admitServiceAccount(ctx context.Context, pod *corev1.Pod) error {
	if pod.Spec.ServiceAccountName == "" {
		pod.Spec.ServiceAccountName = DefaultServiceAccount
	}
	pod.Spec.DeprecatedServiceAccount = pod.Spec.ServiceAccountName
	ns, name := pod.Namespace, pod.Spec.ServiceAccountName
	k := store.Key{Kind: kinds.ServiceAccount, Namespace: ns, Name: name}
	sa, found, err := r.serviceAccounts.get(r.store, k)
	if err == nil && !found {
		sa, found, err = r.serviceAccounts.confirm(ctx, r.store, k)
	}
	if err == nil && !found && name == DefaultServiceAccount {
		sa, found, err = r.awaitDefaultAccount(ctx, k)
	}
	podName := pod.Name
	if podName == "" {
		podName = pod.GenerateName
	}
	switch {
	case err != nil:
		return storeError(kinds.MustLookup(kinds.ServiceAccount), name, err)
	case !found:
		return forbidden(kinds.MustLookup(kinds.Pod), podName,
			fmt.Sprintf("error looking up service account %s/%s: serviceaccount %q not found", ns, name, name))
	}
	if len(pod.Spec.ImagePullSecrets) == 0 && len(sa.pull) > 0 {
		pod.Spec.ImagePullSecrets = append([]corev1.LocalObjectReference(nil), sa.pull...)
	}
	if r.tokens.issues() {
		mountServiceAccountToken(pod, sa.automount)
	}
	return nil
}

// awaitDefaultAccount waits, a little, for the controller-manager to make the default
// account of k's namespace.
func (r *resources) awaitDefaultAccount(ctx context.Context, k store.Key) (accountInfo, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, defaultAccountWait)
	defer cancel()
	w, err := r.store.Watch(store.WatchOptions{Kind: k.Kind, Namespace: k.Namespace, After: r.store.Revision(),
		Predicate: func(o *store.Object) bool { return o.Name == k.Name }})
	if err != nil {
		return accountInfo{}, false, err
	}
	defer w.Close()
	// It may have come between the read that missed it and the watch.
	if sa, found, err := r.serviceAccounts.get(r.store, k); err != nil || found {
		return sa, found, err
	}
	for {
		evs, err := w.Next(ctx)
		if err != nil {
			return accountInfo{}, false, nil // not made in time: refused as missing
		}
		for _, ev := range evs {
			if ev.Type == store.Added || ev.Type == store.Modified {
				sa, err := serviceAccountInfo(ev.Object)
				return sa, err == nil, err
			}
		}
	}
}

// The volume the ServiceAccount admission mounts, as Kubernetes names it.
const (
	// ServiceAccountMountPath is where every container finds its token, ca.crt and
	// namespace.
	ServiceAccountMountPath = "/var/run/secrets/kubernetes.io/serviceaccount"
	// serviceAccountVolumePrefix starts the volume's name (kube-api-access-XXXXX).
	serviceAccountVolumePrefix = "kube-api-access-"
	// serviceAccountTokenSeconds is the life of the mounted token, Kubernetes' 3607 s
	// (an hour and a few seconds, which marks the kubelet's tokens).
	serviceAccountTokenSeconds = 3607
	// rootCAConfigMap is the config map of the cluster CA in every namespace.
	rootCAConfigMap = "kube-root-ca.crt"
)

// mountServiceAccountToken gives pod Kubernetes' kube-api-access-XXXXX projected volume
// (its token, the cluster CA, its namespace) mounted read-only in every container at
// ServiceAccountMountPath, unless automountServiceAccountToken is false on the pod, or
// on its account (automount) when the pod does not say, or a container mounts something
// there already.
func mountServiceAccountToken(pod *corev1.Pod, automount *bool) {
	if a := pod.Spec.AutomountServiceAccountToken; a != nil && !*a || a == nil && automount != nil && !*automount {
		return
	}
	mounted := func(c *corev1.Container) bool {
		for _, m := range c.VolumeMounts {
			if m.MountPath == ServiceAccountMountPath {
				return true
			}
		}
		return false
	}
	name := ""
	for _, v := range pod.Spec.Volumes {
		if strings.HasPrefix(v.Name, serviceAccountVolumePrefix) && v.Projected != nil {
			name = v.Name // one the admission made before (an update of a pod it admitted)
		}
	}
	add := func(cs []corev1.Container) {
		for i := range cs {
			if mounted(&cs[i]) {
				continue
			}
			if name == "" {
				name = serviceAccountVolumePrefix + utilrand.String(5)
			}
			cs[i].VolumeMounts = append(cs[i].VolumeMounts, corev1.VolumeMount{Name: name, ReadOnly: true, MountPath: ServiceAccountMountPath})
		}
	}
	had := name != ""
	add(pod.Spec.InitContainers)
	add(pod.Spec.Containers)
	if name == "" || had {
		return
	}
	mode := int32(0o644)
	pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		DefaultMode: &mode,
		Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: new(int64(serviceAccountTokenSeconds))}},
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: rootCAConfigMap},
				Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace",
				FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}}}},
		},
	}}})
}

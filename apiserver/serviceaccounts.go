package apiserver

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/store"
)

// Admission plugins, as Kubernetes names them, that a server may be told to leave out
// (Config.DisableAdmissionPlugins).
const (
	// AdmissionServiceAccount gives a new pod its namespace's "default" ServiceAccount
	// when it names none, refuses a pod whose account does not exist, and gives it the
	// account's imagePullSecrets when it has none of its own.
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

// serviceAccountPullSecrets is what the admission keeps of a stored ServiceAccount.
func serviceAccountPullSecrets(o store.Object) ([]corev1.LocalObjectReference, error) {
	obj, err := decode(kinds.MustLookup(kinds.ServiceAccount), &o)
	if err != nil {
		return nil, err
	}
	return obj.(*corev1.ServiceAccount).ImagePullSecrets, nil
}

// admitServiceAccount is Kubernetes' ServiceAccount admission for a new pod.
func (r *resources) admitServiceAccount(ctx context.Context, pod *corev1.Pod) error {
	if pod.Spec.ServiceAccountName == "" {
		pod.Spec.ServiceAccountName = DefaultServiceAccount
	}
	pod.Spec.DeprecatedServiceAccount = pod.Spec.ServiceAccountName
	ns, name := pod.Namespace, pod.Spec.ServiceAccountName
	k := store.Key{Kind: kinds.ServiceAccount, Namespace: ns, Name: name}
	pull, found, err := r.serviceAccounts.get(r.store, k)
	if err == nil && !found {
		pull, found, err = r.serviceAccounts.confirm(ctx, r.store, k)
	}
	if err == nil && !found && name == DefaultServiceAccount {
		pull, found, err = r.awaitDefaultAccount(ctx, k)
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
	if len(pod.Spec.ImagePullSecrets) == 0 && len(pull) > 0 {
		pod.Spec.ImagePullSecrets = append([]corev1.LocalObjectReference(nil), pull...)
	}
	return nil
}

// awaitDefaultAccount waits, a little, for the controller-manager to make the default
// account of k's namespace.
func (r *resources) awaitDefaultAccount(ctx context.Context, k store.Key) ([]corev1.LocalObjectReference, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, defaultAccountWait)
	defer cancel()
	w, err := r.store.Watch(store.WatchOptions{Kind: k.Kind, Namespace: k.Namespace, After: r.store.Revision(),
		Predicate: func(o *store.Object) bool { return o.Name == k.Name }})
	if err != nil {
		return nil, false, err
	}
	defer w.Close()
	// It may have come between the read that missed it and the watch.
	if pull, found, err := r.serviceAccounts.get(r.store, k); err != nil || found {
		return pull, found, err
	}
	for {
		evs, err := w.Next(ctx)
		if err != nil {
			return nil, false, nil // not made in time: refused as missing
		}
		for _, ev := range evs {
			if ev.Type == store.Added || ev.Type == store.Modified {
				pull, err := serviceAccountPullSecrets(ev.Object)
				return pull, err == nil, err
			}
		}
	}
}

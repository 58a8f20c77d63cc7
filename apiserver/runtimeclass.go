package apiserver

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/store"
)

// admitRuntimeClass is Kubernetes' RuntimeClass admission on a pod being created: the
// RuntimeClass it names must exist; the class's overhead becomes the pod's (a pod that
// sets another, or sets one when its class has none, is refused); the class's node
// selector and tolerations are merged into the pod's (a selector naming a label the
// class gives another value is refused). The kubelet runs the pod with the class's
// handler.
func (r *resources) admitRuntimeClass(ctx context.Context, pod *corev1.Pod) error {
	podInfo := kinds.MustLookup(kinds.Pod)
	if pod.Spec.RuntimeClassName == nil {
		if pod.Spec.Overhead != nil {
			return forbidden(podInfo, pod.Name, "pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead")
		}
		return nil
	}
	obj, err := r.lookupClass(ctx, kinds.MustLookup(kinds.RuntimeClass), *pod.Spec.RuntimeClassName)
	if err != nil {
		return err
	}
	if obj == nil {
		return forbidden(podInfo, pod.Name, fmt.Sprintf("pod rejected: RuntimeClass %q not found", *pod.Spec.RuntimeClassName))
	}
	rc := obj.(*nodev1.RuntimeClass)
	switch {
	case rc.Overhead != nil:
		if len(pod.Spec.Overhead) > 0 && !equality.Semantic.DeepEqual(rc.Overhead.PodFixed, pod.Spec.Overhead) {
			return forbidden(podInfo, pod.Name, "pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead")
		}
		pod.Spec.Overhead = rc.Overhead.PodFixed.DeepCopy()
	case pod.Spec.Overhead != nil:
		return forbidden(podInfo, pod.Name, "pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead")
	}
	if rc.Scheduling == nil {
		return nil
	}
	if pod.Spec.NodeSelector == nil && len(rc.Scheduling.NodeSelector) > 0 {
		pod.Spec.NodeSelector = map[string]string{}
	}
	for key, value := range rc.Scheduling.NodeSelector {
		if own, ok := pod.Spec.NodeSelector[key]; ok && own != value {
			return forbidden(podInfo, pod.Name, fmt.Sprintf("conflict: runtimeClass.scheduling.nodeSelector[%s] = %s; pod.spec.nodeSelector[%s] = %s", key, value, key, own))
		}
		pod.Spec.NodeSelector[key] = value
	}
	pod.Spec.Tolerations = mergeTolerations(pod.Spec.Tolerations, rc.Scheduling.Tolerations)
	return nil
}

// lookupClass reads the object name of a cluster-scoped kind (a RuntimeClass, a
// PriorityClass) from this member's state and, when it is not there (this member may
// lag behind a class just created), from the leader's; nil when it does not exist.
func (r *resources) lookupClass(ctx context.Context, info *kinds.Info, name string) (kinds.Object, error) {
	key := store.Key{Kind: info.Kind, Name: name}
	for _, stale := range []bool{true, false} {
		obj, _, err := r.get(ctx, info, key, store.ReadOptions{Stale: stale})
		if err == nil {
			return obj, nil
		}
		if !isNotFound(err) {
			return nil, err
		}
	}
	return nil, nil
}

// mergeTolerations is Kubernetes' MergeTolerations: first's and second's tolerations,
// without those another one tolerates a superset of.
func mergeTolerations(first, second []corev1.Toleration) []corev1.Toleration {
	all := append(append([]corev1.Toleration(nil), first...), second...)
	var merged []corev1.Toleration
next:
	for i := range all {
		t := &all[i]
		for j := range merged {
			if tolerationSuperset(&merged[j], t) {
				continue next
			}
		}
		for j := i + 1; j < len(all); j++ {
			// Of equal tolerations, the first is kept.
			if !equality.Semantic.DeepEqual(t, &all[j]) && tolerationSuperset(&all[j], t) {
				continue next
			}
		}
		merged = append(merged, *t)
	}
	return merged
}

// tolerationSuperset reports whether ss tolerates whatever t tolerates.
func tolerationSuperset(ss, t *corev1.Toleration) bool {
	if equality.Semantic.DeepEqual(t, ss) {
		return true
	}
	// An empty key with Exists matches every key.
	if t.Key != ss.Key && (ss.Key != "" || ss.Operator != corev1.TolerationOpExists) {
		return false
	}
	// An empty effect matches every effect.
	if t.Effect != ss.Effect && ss.Effect != "" {
		return false
	}
	if ss.Effect == corev1.TaintEffectNoExecute && ss.TolerationSeconds != nil {
		if t.TolerationSeconds == nil || *t.TolerationSeconds > *ss.TolerationSeconds {
			return false
		}
	}
	switch ss.Operator {
	case corev1.TolerationOpEqual, "":
		return t.Operator == corev1.TolerationOpEqual && t.Value == ss.Value
	case corev1.TolerationOpExists:
		return true
	}
	return false
}

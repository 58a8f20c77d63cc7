package expectations

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/kinds"
)

// PodEvents turns pod events into the work of the controller of one kind that owns pods
// (ReplicaSet, DaemonSet): its expectations observe creations and deletions, the owner is
// queued, and an orphan queues the owners whose selector matches it (they may adopt it).
type PodEvents[T kinds.Object] struct {
	Kind string // the owners' kind
	Exp  *Expectations
	Add  func(key string)
	// Owners lists a namespace's owners; Selector is an owner's pod selector.
	Owners   func(namespace string) []T
	Selector func(T) *metav1.LabelSelector
}

// ownerKey is the key of the owner of Kind controlling pod, or "".
func (h PodEvents[T]) ownerKey(pod *corev1.Pod) string {
	ref := metav1.GetControllerOfNoCopy(pod)
	if ref == nil || ref.Kind != h.Kind {
		return ""
	}
	return pod.Namespace + "/" + ref.Name
}

// Handler is the pod informer's handler.
func (h PodEvents[T]) Handler() cache.Handler[*corev1.Pod] {
	return cache.Handler[*corev1.Pod]{OnAdd: h.added, OnUpdate: h.updated, OnDelete: h.deleted}
}

func (h PodEvents[T]) added(pod *corev1.Pod) {
	if key := h.ownerKey(pod); key != "" {
		h.Exp.CreationObserved(key)
		h.Add(key)
		return
	}
	h.QueueMatching(pod)
}

func (h PodEvents[T]) updated(old, pod *corev1.Pod) {
	oldKey, key := h.ownerKey(old), h.ownerKey(pod)
	if oldKey != key && oldKey != "" {
		h.Add(oldKey)
	}
	if pod.DeletionTimestamp != nil && old.DeletionTimestamp == nil && key != "" {
		// A graceful delete: the pod stops counting now, not when it is gone.
		h.Exp.DeletionObserved(key, cache.Key(pod))
	}
	if key != "" {
		h.Add(key)
		return
	}
	h.QueueMatching(pod)
}

func (h PodEvents[T]) deleted(pod *corev1.Pod) {
	if key := h.ownerKey(pod); key != "" {
		h.Exp.DeletionObserved(key, cache.Key(pod))
		h.Add(key)
	}
}

// QueueMatching queues the owners that could adopt an orphan; a pod another
// controller controls is none. (The Job controller, whose pod events do more, calls it
// for its orphans; Kind and Exp it does not read.)
func (h PodEvents[T]) QueueMatching(pod *corev1.Pod) {
	if metav1.GetControllerOfNoCopy(pod) != nil {
		return
	}
	for _, o := range h.Owners(pod.Namespace) {
		sel, err := metav1.LabelSelectorAsSelector(h.Selector(o))
		if err == nil && !sel.Empty() && sel.Matches(labels.Set(pod.Labels)) {
			h.Add(cache.Key(o))
		}
	}
}

package scheduler

import (
	"maps"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
)

// The informers' handlers keep the cache and the queue in step with the cluster. They
// run on the informers' goroutines and only touch the cache and the queue.

func (s *Scheduler) podAdded(pod *corev1.Pod) {
	switch {
	case pod.Spec.NodeName != "":
		s.cache.SetPod(pod)
		if !terminal(pod) {
			s.queue.MoveWaitingForPods()
		}
	case !terminal(pod):
		s.queue.Add(pod)
	}
}

func (s *Scheduler) podUpdated(old, pod *corev1.Pod) {
	if pod.Spec.NodeName == "" {
		if terminal(pod) {
			s.queue.Delete(pod)
			return
		}
		s.queue.Update(old, pod)
		return
	}
	if old.Spec.NodeName == "" {
		s.queue.Delete(pod) // bound: by us (confirming the assumption) or by another
	}
	s.cache.SetPod(pod)
	switch {
	case terminal(pod) && !terminal(old):
		s.queue.MoveAllToActive() // its resources are free
	case !terminal(pod) && (old.Spec.NodeName == "" || !maps.Equal(old.Labels, pod.Labels)):
		s.queue.MoveWaitingForPods() // a pod some affinity or spread may count arrived
	}
}

func (s *Scheduler) podDeleted(pod *corev1.Pod) {
	s.queue.Delete(pod)
	if _, _, counted := s.cache.Counted(podKey(pod)); counted {
		s.cache.RemovePod(podKey(pod))
		s.queue.MoveAllToActive()
	}
}

func (s *Scheduler) nodeAdded(node *corev1.Node) {
	s.cache.AddNode(node)
	s.queue.MoveAllToActive()
}

func (s *Scheduler) nodeUpdated(old, node *corev1.Node) {
	s.cache.UpdateNode(node)
	if nodeSchedulingChanged(old, node) {
		s.queue.MoveAllToActive()
	}
}

func (s *Scheduler) nodeDeleted(node *corev1.Node) {
	s.cache.RemoveNode(node.Name)
}

func (s *Scheduler) namespaceAdded(ns *corev1.Namespace) {
	s.cache.SetNamespace(ns)
	s.queue.MoveWaitingForPods()
}

func (s *Scheduler) namespaceUpdated(old, ns *corev1.Namespace) {
	s.cache.SetNamespace(ns)
	if !maps.Equal(old.Labels, ns.Labels) {
		s.queue.MoveWaitingForPods() // a namespaceSelector may select it now
	}
}

func (s *Scheduler) namespaceDeleted(ns *corev1.Namespace) {
	s.cache.RemoveNamespace(ns.Name)
}

// nodeSchedulingChanged reports whether an update changed what a filter looks at: not
// a heartbeat.
func nodeSchedulingChanged(old, node *corev1.Node) bool {
	return !equality.Semantic.DeepEqual(&old.Spec, &node.Spec) ||
		!maps.Equal(old.Labels, node.Labels) ||
		!equality.Semantic.DeepEqual(old.Status.Allocatable, node.Status.Allocatable) ||
		!equality.Semantic.DeepEqual(old.Status.Capacity, node.Status.Capacity) ||
		ready(old) != ready(node)
}

func ready(node *corev1.Node) bool {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

package scheduler

import (
	"google.golang.org/protobuf/proto"

	corev1 "github.com/skiffhq/skiff/proto/core/v1"
)

// The informers' handlers keep the cache and the queue in step with the cluster. They
// run on the informers' goroutines and only touch the cache and the queue.

func (s *Scheduler) podAdded(pod *corev1.Pod) {
	switch {
	case pod.GetSpec().GetNodeName() != "":
		s.cache.SetPod(pod)
	case !terminal(pod):
		s.queue.Add(pod)
	}
}

func (s *Scheduler) podUpdated(old, pod *corev1.Pod) {
	if pod.GetSpec().GetNodeName() == "" {
		if terminal(pod) {
			s.queue.Delete(pod)
			return
		}
		s.queue.Update(old, pod)
		return
	}
	if old.GetSpec().GetNodeName() == "" {
		s.queue.Delete(pod) // bound: by us (confirming the assumption) or by another
	}
	s.cache.SetPod(pod)
	if terminal(pod) && !terminal(old) {
		s.queue.MoveAllToActive() // its resources are free
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
	s.cache.RemoveNode(node.GetMetadata().GetName())
}

// nodeSchedulingChanged reports whether an update changed what a filter looks at: not
// a heartbeat.
func nodeSchedulingChanged(old, node *corev1.Node) bool {
	return !proto.Equal(old.GetSpec(), node.GetSpec()) ||
		!mapsEqual(old.GetMetadata().GetLabels(), node.GetMetadata().GetLabels()) ||
		!mapsEqual(old.GetStatus().GetAllocatable(), node.GetStatus().GetAllocatable()) ||
		!mapsEqual(old.GetStatus().GetCapacity(), node.GetStatus().GetCapacity()) ||
		ready(old) != ready(node)
}

func ready(node *corev1.Node) bool {
	for _, c := range node.GetStatus().GetConditions() {
		if c.GetType() == "Ready" {
			return c.GetStatus() == "True"
		}
	}
	return false
}

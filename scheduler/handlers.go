package scheduler

import (
	"context"
	"maps"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/kinds"
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
		s.cache.ForgetNomination(podKey(pod))
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
	s.cache.ForgetNomination(podKey(pod))
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

// watchVolumes reads claims, volumes and storage classes for the volume binding filter:
// a claim made, bound or given a node, a volume provisioned, a class added may let a
// waiting pod in, so each change moves the unschedulable pods back to the queue.
func (s *Scheduler) watchVolumes(cs *client.Clientset, f *cache.Factory) {
	claimInf := cache.InformerFor[*corev1.PersistentVolumeClaim](f, "", client.ListOptions{})
	pvInf := cache.InformerFor[*corev1.PersistentVolume](f, "", client.ListOptions{})
	scInf := cache.InformerFor[*storagev1.StorageClass](f, "", client.ListOptions{})
	claims, pvs, scs := claimInf.Lister(), pvInf.Lister(), scInf.Lister()
	s.vols = &Volumes{
		Claim:  claims.Get,
		Volume: func(name string) (*corev1.PersistentVolume, bool) { return pvs.Get("", name) },
		Class:  func(name string) (*storagev1.StorageClass, bool) { return scs.Get("", name) },
	}
	s.claims = cs.PersistentVolumeClaims
	s.cache.SetVolumes(s.vols)
	s.volumeSynced = func(ctx context.Context) bool { return cache.WaitForSync(ctx, claimInf, pvInf, scInf) }
	claimInf.AddHandler(moveAllOnChange[*corev1.PersistentVolumeClaim](s))
	pvInf.AddHandler(moveAllOnChange[*corev1.PersistentVolume](s))
	scInf.AddHandler(moveAllOnChange[*storagev1.StorageClass](s))
}

func moveAllOnChange[T kinds.Object](s *Scheduler) cache.Handler[T] {
	return cache.Handler[T]{OnAdd: func(T) { s.queue.MoveAllToActive() }, OnUpdate: func(_, _ T) { s.queue.MoveAllToActive() }}
}

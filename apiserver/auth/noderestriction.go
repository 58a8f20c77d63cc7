package auth

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/pki"
)

// NodeOf is the node a kubelet's user acts as ("" for any other user).
func NodeOf(u User) string {
	if !u.InGroup(pki.GroupNodes) {
		return ""
	}
	node, _ := strings.CutPrefix(u.Name, pki.NodeUserPrefix)
	return node
}

// PodNode tells on which node a pod is bound ("" when it is not), for the checks of
// what a node writes about pods. found is false when there is no such pod.
type PodNode func(namespace, name string) (node string, found bool, err error)

// AdmitNodeWrite is the part of Kubernetes' NodeRestriction admission that looks into
// what a kubelet writes (Authorize has already confined it to its own Node, Lease,
// pods and events): its Node may not take labels that steer workloads to it or that
// only administrators set, nor change its taints or spec.unschedulable once registered,
// and its Events must be about its own Node or the pods bound to it. old is nil on
// create. Other users and other kinds pass.
func AdmitNodeWrite(u User, old, obj kinds.Object, podNode PodNode) error {
	node := NodeOf(u)
	if node == "" {
		return nil
	}
	switch o := obj.(type) {
	case *corev1.Node:
		prev, _ := old.(*corev1.Node)
		return admitNode(node, prev, o)
	case *corev1.Event:
		return admitNodeEvent(node, o, podNode)
	}
	return nil
}

func admitNode(node string, old, n *corev1.Node) error {
	if old == nil {
		if bad := forbiddenNodeLabels(n.Labels, nil); len(bad) > 0 {
			return fmt.Errorf("node %q is not allowed to set the following labels: %s", node, strings.Join(bad, ", "))
		}
		return nil
	}
	if bad := forbiddenNodeLabels(n.Labels, old.Labels); len(bad) > 0 {
		return fmt.Errorf("node %q is not allowed to modify labels: %s", node, strings.Join(bad, ", "))
	}
	if !equality.Semantic.DeepEqual(old.Spec.Taints, n.Spec.Taints) {
		return fmt.Errorf("node %q is not allowed to modify taints", node)
	}
	if old.Spec.Unschedulable != n.Spec.Unschedulable {
		return fmt.Errorf("node %q is not allowed to modify spec.unschedulable", node)
	}
	return nil
}

// forbiddenNodeLabels are the labels of labels that differ from old (added, changed or
// removed) that a kubelet may not set, sorted.
func forbiddenNodeLabels(labels, old map[string]string) []string {
	var bad []string
	check := func(k string) {
		if !kinds.KubeletMaySetNodeLabel(k) && !slices.Contains(bad, k) {
			bad = append(bad, k)
		}
	}
	for k, v := range labels {
		if ov, ok := old[k]; !ok || ov != v {
			check(k)
		}
	}
	for k := range old {
		if _, ok := labels[k]; !ok {
			check(k)
		}
	}
	slices.Sort(bad)
	return bad
}

// admitNodeEvent lets a node record events only about its own Node and the pods bound
// to it.
func admitNodeEvent(node string, ev *corev1.Event, podNode PodNode) error {
	ref := ev.InvolvedObject
	switch ref.Kind {
	case kinds.Node:
		if ref.Name == node {
			return nil
		}
		return fmt.Errorf("node %q may not record events about node %q", node, ref.Name)
	case kinds.Pod:
		if ref.Namespace != ev.Namespace {
			return fmt.Errorf("node %q may not record an event in namespace %q about pod %q", node, ev.Namespace, ref.Namespace+"/"+ref.Name)
		}
		bound, found, err := podNode(ref.Namespace, ref.Name)
		switch {
		case err != nil:
			return err
		case !found:
			return fmt.Errorf("node %q may not record events about pod %q: no such pod", node, ref.Namespace+"/"+ref.Name)
		case bound != node:
			return fmt.Errorf("node %q may not record events about pod %q: it is not bound to this node", node, ref.Namespace+"/"+ref.Name)
		}
		return nil
	}
	return fmt.Errorf("node %q may record events only about its Node and its pods, not about %s %q", node, ref.Kind, ref.Name)
}

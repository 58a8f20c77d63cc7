package auth

import (
	"fmt"
	"slices"
	"strings"

	certificatesv1 "k8s.io/api/certificates/v1"
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

// AdmitNodePodCertificateRequest is Kubernetes' NodeRestriction for a
// PodCertificateRequest kubelet node creates, given the Node, pod and service account
// the request names as they are stored: the pod must be bound to the node, not be a
// mirror pod, and have a podCertificate projection for the request's signer; the
// request must name the node, the pod and the pod's service account by their uids.
func AdmitNodePodCertificateRequest(node string, pcr *certificatesv1.PodCertificateRequest, n *corev1.Node, pod *corev1.Pod, sa *corev1.ServiceAccount) error {
	s := &pcr.Spec
	ref := pcr.Namespace + "/" + s.PodName
	switch {
	case string(s.NodeName) != node:
		return fmt.Errorf("PodCertificateRequest.Spec.NodeName=%q, which is not the requesting node %q", s.NodeName, node)
	case n.UID != s.NodeUID:
		return fmt.Errorf("PodCertificateRequest for pod %q names node UID %q, inconsistent with the running node (%q)", ref, s.NodeUID, n.UID)
	case pod.UID != s.PodUID:
		return fmt.Errorf("PodCertificateRequest for pod %q contains pod UID (%q) that differs from running pod (%q)", ref, s.PodUID, pod.UID)
	case pod.Spec.NodeName != node:
		return fmt.Errorf("pod %q is not running on node %q named in the PodCertificateRequest", ref, node)
	case pod.Annotations[corev1.MirrorPodAnnotationKey] != "":
		return fmt.Errorf("pod %q is a mirror pod", ref)
	case pod.Spec.ServiceAccountName != s.ServiceAccountName:
		return fmt.Errorf("PodCertificateRequest for pod %q contains serviceAccountName (%q) that differs from running pod (%q)", ref, s.ServiceAccountName, pod.Spec.ServiceAccountName)
	case sa.UID != s.ServiceAccountUID:
		return fmt.Errorf("PodCertificateRequest for pod %q contains serviceAccountUID (%q) that differs from running service account (%q)", ref, s.ServiceAccountUID, sa.UID)
	}
	for _, v := range pod.Spec.Volumes {
		if v.Projected == nil {
			continue
		}
		for _, src := range v.Projected.Sources {
			if src.PodCertificate != nil && src.PodCertificate.SignerName == s.SignerName {
				return nil
			}
		}
	}
	return fmt.Errorf("pod %q has no podCertificate projected volume source for signer %q", ref, s.SignerName)
}

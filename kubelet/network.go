package kubelet

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/client/record"
)

// PodNetwork gives pods addresses of their own, of the node's podCIDR. Without one
// (Config.PodNetwork nil) every pod has the node's address, as a hostNetwork pod has.
type PodNetwork interface {
	// SetUp gives the pod an address of podCIDR and returns it; a pod set up already
	// keeps its address.
	SetUp(ctx context.Context, pod PodRef, podCIDR string) (ip string, err error)
	// TearDown releases the pod's address; a pod without one is no error.
	TearDown(ctx context.Context, uid types.UID) error
}

// NetNSPather is a PodNetwork whose pods have network namespaces of their own (CNI):
// the runtime puts the containers of a pod that is not hostNetwork in its namespace.
type NetNSPather interface {
	NetNSPath(uid types.UID) string
}

// netnsPath is the network namespace pod's containers join; "": the node's.
func (k *Kubelet) netnsPath(pod *corev1.Pod) string {
	if pod.Spec.HostNetwork {
		return ""
	}
	if p, ok := k.cfg.PodNetwork.(NetNSPather); ok {
		return p.NetNSPath(pod.UID)
	}
	return ""
}

// podAddr is the address pod's containers have: the node's for a hostNetwork pod or
// without a pod network, else the one its network gave it (runPod sets it up before
// it starts a container), for the downward API, /etc/hosts and probes.
func (k *Kubelet) podAddr(pod *corev1.Pod) string {
	if k.cfg.PodNetwork == nil || pod.Spec.HostNetwork {
		return k.cfg.NodeIP
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if m := k.memory[cache.Key(pod)]; m != nil && m.uid == pod.UID && m.podIP != "" {
		return m.podIP
	}
	return pod.Status.PodIP
}

// PodNetworkLister is a PodNetwork that can tell which pods it has set up (CNI's, whose
// namespaces outlive the kubelet): at start, the kubelet tears down those of pods its
// node no longer has, deleted while it was down.
type PodNetworkLister interface {
	SetUpPods() ([]types.UID, error)
}

// sweepNetworks tears down the networks of pods the node no longer has.
func (k *Kubelet) sweepNetworks(ctx context.Context) {
	l, ok := k.cfg.PodNetwork.(PodNetworkLister)
	if !ok {
		return
	}
	uids, err := l.SetUpPods()
	if err != nil {
		k.log.Warn("list the pods' networks", "error", err)
		return
	}
	live := map[types.UID]bool{}
	for _, p := range k.pods.Lister().List(labels.Everything()) {
		live[p.UID] = true
	}
	for _, uid := range uids {
		if live[uid] {
			continue
		}
		if err := k.tearDown(ctx, uid); err != nil {
			k.log.Warn("tear down the network of a pod that is gone", "uid", uid, "error", err)
		} else {
			k.log.Info("tore down the network of a pod that is gone", "uid", uid)
		}
	}
}

// PodRef names a pod to its network.
type PodRef struct {
	UID             types.UID
	Namespace, Name string
	// HostPorts are the ports of the pod's containers that have a hostPort.
	HostPorts []corev1.ContainerPort
}

// podIP is the address pod has: the node's for a hostNetwork pod or without a pod
// network, else one of the node's podCIDR, set up now if need be.
func (k *Kubelet) podIP(ctx context.Context, pod *corev1.Pod) (string, error) {
	if k.cfg.PodNetwork == nil || pod.Spec.HostNetwork {
		return k.cfg.NodeIP, nil
	}
	cidr, err := k.podCIDR(ctx)
	if err != nil {
		return "", err
	}
	ref := PodRef{UID: pod.UID, Namespace: pod.Namespace, Name: pod.Name}
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.HostPort > 0 {
				ref.HostPorts = append(ref.HostPorts, p)
			}
		}
	}
	ip, err := k.cfg.PodNetwork.SetUp(ctx, ref, cidr)
	if err != nil {
		k.rec.Eventf(pod, record.Warning, ReasonFailedCreatePodSandBox, "Failed to set up the pod's network: %v", err)
		return "", fmt.Errorf("set up the network of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return ip, nil
}

// podCIDR is the node's range for pods, read from its Node until it has one (it never
// changes once set).
func (k *Kubelet) podCIDR(ctx context.Context) (string, error) {
	if v, ok := k.cidr.Load().(string); ok {
		return v, nil
	}
	node, err := k.cs.Nodes.Get(ctx, "", k.cfg.NodeName, client.GetOptions{Stale: true})
	if err != nil {
		return "", fmt.Errorf("read the node's podCIDR: %w", err)
	}
	if node.Spec.PodCIDR == "" {
		return "", fmt.Errorf("node %s has no podCIDR yet (the controller-manager's node IPAM gives it one)", k.cfg.NodeName)
	}
	k.cidr.Store(node.Spec.PodCIDR)
	return node.Spec.PodCIDR, nil
}

// tearDown releases a pod's network, if the kubelet has one.
func (k *Kubelet) tearDown(ctx context.Context, uid types.UID) error {
	if k.cfg.PodNetwork == nil || uid == "" {
		return nil
	}
	if err := k.cfg.PodNetwork.TearDown(ctx, uid); err != nil {
		return fmt.Errorf("tear down the network of pod %s: %w", uid, err)
	}
	return nil
}

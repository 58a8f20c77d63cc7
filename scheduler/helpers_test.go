package scheduler

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	corev1 "github.com/skiffhq/skiff/proto/core/v1"
)

// Builders for test objects.

type nodeOpt func(*corev1.Node)

func makeNode(name, cpu, mem string, opts ...nodeOpt) *corev1.Node {
	n := &corev1.Node{
		Metadata: &corev1.ObjectMeta{Name: name, Labels: map[string]string{}},
		Spec:     &corev1.NodeSpec{},
		Status: &corev1.NodeStatus{
			Allocatable: map[string]string{"cpu": cpu, "memory": mem, "pods": "110"},
			Conditions:  []*corev1.NodeCondition{{Type: "Ready", Status: "True"}},
		},
	}
	for _, o := range opts {
		o(n)
	}
	return n
}

func withLabel(k, v string) nodeOpt { return func(n *corev1.Node) { n.Metadata.Labels[k] = v } }

func withTaint(k, v, effect string) nodeOpt {
	return func(n *corev1.Node) {
		n.Spec.Taints = append(n.Spec.Taints, &corev1.Taint{Key: k, Value: v, Effect: effect})
	}
}

func withMaxPods(p string) nodeOpt { return func(n *corev1.Node) { n.Status.Allocatable["pods"] = p } }

func notReady(n *corev1.Node) { n.Status.Conditions[0].Status = "False" }

func cordoned(n *corev1.Node) { n.Spec.Unschedulable = true }

type podOpt func(*corev1.Pod)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func makePod(name, cpu, mem string, opts ...podOpt) *corev1.Pod {
	req := map[string]string{}
	if cpu != "" {
		req["cpu"] = cpu
	}
	if mem != "" {
		req["memory"] = mem
	}
	p := &corev1.Pod{
		Metadata: &corev1.ObjectMeta{Name: name, Namespace: "default", Uid: "uid-" + name,
			CreationTimestamp: timestamppb.New(epoch)},
		Spec: &corev1.PodSpec{Containers: []*corev1.Container{{Name: "c", Image: "busybox",
			Resources: &corev1.ResourceRequirements{Requests: req}}}},
		Status: &corev1.PodStatus{Phase: "Pending"},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func onNode(n string) podOpt { return func(p *corev1.Pod) { p.Spec.NodeName = n } }

func withSelector(k, v string) podOpt {
	return func(p *corev1.Pod) {
		if p.Spec.NodeSelector == nil {
			p.Spec.NodeSelector = map[string]string{}
		}
		p.Spec.NodeSelector[k] = v
	}
}

func withToleration(k, op, v, effect string) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.Tolerations = append(p.Spec.Tolerations, &corev1.Toleration{Key: k, Operator: op, Value: v, Effect: effect})
	}
}

func withHostPort(port int32, proto, ip string) podOpt {
	return func(p *corev1.Pod) {
		c := p.Spec.Containers[0]
		c.Ports = append(c.Ports, &corev1.ContainerPort{ContainerPort: port, HostPort: port, Protocol: proto, HostIp: ip})
	}
}

func ownedBy(uid string) podOpt {
	return func(p *corev1.Pod) {
		yes := true
		p.Metadata.OwnerReferences = append(p.Metadata.OwnerReferences,
			&corev1.OwnerReference{ApiVersion: "apps/v1", Kind: "ReplicaSet", Name: "rs", Uid: uid, Controller: &yes})
	}
}

func createdAt(sec int) podOpt {
	return func(p *corev1.Pod) {
		p.Metadata.CreationTimestamp = timestamppb.New(epoch.Add(time.Duration(sec) * time.Second))
	}
}

func mustPodInfo(p *corev1.Pod) *PodInfo {
	pi, err := NewPodInfo(p)
	if err != nil {
		panic(fmt.Sprint(err))
	}
	return pi
}

// nodeInfoWith builds a NodeInfo with pods counted on it.
func nodeInfoWith(n *corev1.Node, pods ...*corev1.Pod) *NodeInfo {
	ni := NewNodeInfo(n)
	for _, p := range pods {
		ni.AddPod(mustPodInfo(p))
	}
	return ni
}

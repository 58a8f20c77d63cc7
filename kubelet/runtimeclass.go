package kubelet

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/record"
)

// ReasonFailedCreatePodSandBox is the event of a pod the kubelet cannot start at all:
// its network cannot be set up, or its RuntimeClass names a handler the node has no
// runtime for. The pod stays Pending and is tried again, with back-off, as in Kubernetes.
const ReasonFailedCreatePodSandBox = "FailedCreatePodSandBox"

// runtimeHandler is the handler the pod's containers run with: its RuntimeClass's
// ("" without one), once the runtime has said it has it. A failure is recorded as
// Kubernetes' kubelet records a sandbox it cannot create. A pod's class and a class's
// handler never change, so the answer is kept for the pod's life.
func (k *Kubelet) runtimeHandler(ctx context.Context, pod *corev1.Pod, mem *podMemory) (string, error) {
	if pod.Spec.RuntimeClassName == nil {
		return "", nil
	}
	if mem.handlerKnown {
		return mem.handler, nil
	}
	name := *pod.Spec.RuntimeClassName
	rc, err := k.cs.RuntimeClasses.Get(ctx, "", name, client.GetOptions{Stale: true})
	if client.IsNotFound(err) {
		rc, err = k.cs.RuntimeClasses.Get(ctx, "", name) // this member may lag
	}
	if err == nil {
		err = k.rt.CheckHandler(rc.Handler)
	} else {
		err = fmt.Errorf("get RuntimeClass %q: %w", name, err)
	}
	if err != nil {
		k.rec.Eventf(pod, record.Warning, ReasonFailedCreatePodSandBox, "Failed to create pod sandbox: %v", err)
		return "", fmt.Errorf("runtime handler of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	mem.handler, mem.handlerKnown = rc.Handler, true
	return rc.Handler, nil
}

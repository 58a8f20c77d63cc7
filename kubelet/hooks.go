package kubelet

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/client/record"
)

// minStopGrace is the least a container gets between SIGTERM and SIGKILL once its
// preStop hook has used its grace period up (Kubernetes' minimumGracePeriodInSeconds).
const minStopGrace = 2 * time.Second

// runHook runs a lifecycle handler (postStart, preStop) in container id; ctx bounds it.
func (k *Kubelet) runHook(ctx context.Context, pod *corev1.Pod, spec *corev1.Container, id string, h *corev1.LifecycleHandler) error {
	switch {
	case h.Exec != nil:
		res, err := k.rt.ExecSync(ctx, id, h.Exec.Command, 0)
		if err != nil {
			return fmt.Errorf("Exec lifecycle hook (%v) for Container %q in Pod %q failed - error: %v", h.Exec.Command, spec.Name, podDesc(pod), err)
		}
		if res.ExitCode != 0 {
			return fmt.Errorf("Exec lifecycle hook (%v) for Container %q in Pod %q failed - error: command '%s' exited with %d: %s",
				h.Exec.Command, spec.Name, podDesc(pod), strings.Join(h.Exec.Command, " "), res.ExitCode, strings.TrimSpace(string(res.Output)))
		}
		return nil
	case h.HTTPGet != nil:
		ph := &corev1.ProbeHandler{HTTPGet: h.HTTPGet}
		timeout := time.Hour
		if d, ok := ctx.Deadline(); ok {
			timeout = time.Until(d)
		}
		if ok, out := k.runProbe(ctx, pod, spec, id, ph, timeout); !ok {
			return fmt.Errorf("HTTP lifecycle hook (%s) for Container %q in Pod %q failed - error: %s", h.HTTPGet.Path, spec.Name, podDesc(pod), out)
		}
		return nil
	case h.Sleep != nil:
		if !k.sleep(ctx, time.Duration(h.Sleep.Seconds)*time.Second) {
			return ctx.Err()
		}
		return nil
	}
	return errors.New("lifecycle hook has no handler Skiff runs")
}

// podDesc names a pod as Kubernetes' kubelet does in messages: name_namespace(uid).
func podDesc(pod *corev1.Pod) string {
	return fmt.Sprintf("%s_%s(%s)", pod.Name, pod.Namespace, pod.UID)
}

// stopContainer stops a running container with grace: its preStop hook first, within
// the grace period, then SIGTERM with what is left of it (at least minStopGrace).
func (k *Kubelet) stopContainer(ctx context.Context, pod *corev1.Pod, c Container, grace time.Duration) error {
	spec := containerSpec(pod, c.Name)
	if spec != nil && spec.Lifecycle != nil && spec.Lifecycle.PreStop != nil && grace > 0 {
		began := k.cfg.Clock.Now()
		hctx, cancel := context.WithTimeout(ctx, grace)
		err := k.runHook(hctx, pod, spec, c.ID, spec.Lifecycle.PreStop)
		cancel()
		if err != nil && ctx.Err() == nil {
			// Not the hook's output, which may hold secrets (as Kubernetes'); the log has it.
			k.log.Warn("preStop hook failed", "pod", podDesc(pod), "container", spec.Name, "error", err)
			k.rec.Eventf(pod, record.Warning, "FailedPreStopHook", "PreStopHook failed")
		}
		grace = max(grace-k.cfg.Clock.Now().Sub(began), minStopGrace)
	}
	if err := k.rt.Stop(ctx, c.ID, grace); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("stop container %s (%s): %w", c.Name, c.ID, err)
	}
	return nil
}

// containerSpec is the spec of pod's container (init or app) named name; nil if none.
func containerSpec(pod *corev1.Pod, name string) *corev1.Container {
	if pod == nil {
		return nil
	}
	for _, list := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}

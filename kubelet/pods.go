package kubelet

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/client/record"
)

// orphanGrace is the grace period of containers whose pod is gone (deleted with grace 0
// or while the kubelet was down): the pod's own period is no longer known.
const orphanGrace = 2 * time.Second

// syncPod reconciles one pod, by key: it reads the pod from the cache and its containers
// from the runtime and acts on the difference. It returns when it wants to look again
// (a back-off ending), or an error to be retried.
func (k *Kubelet) syncPod(ctx context.Context, key string) (time.Duration, error) {
	ns, name := cache.SplitKey(key)
	all, err := k.rt.List(ctx)
	if err != nil {
		return 0, fmt.Errorf("list containers: %w", err)
	}
	pod, exists := k.pods.Lister().Get(ns, name)
	var mine, stale []Container
	for _, c := range all {
		if c.Namespace != ns || c.PodName != name {
			continue
		}
		if exists && c.PodUID == string(pod.UID) {
			mine = append(mine, c)
		} else {
			stale = append(stale, c) // a pod that is gone, or an earlier pod of that name
		}
	}
	if len(stale) > 0 {
		k.log.Info("removing containers of a pod that no longer exists", "pod", key, "containers", len(stale))
		if err := k.killAll(ctx, stale, orphanGrace, nil); err != nil {
			return 0, err
		}
		for _, c := range stale {
			if err := k.tearDown(ctx, types.UID(c.PodUID)); err != nil {
				return 0, err
			}
		}
	}
	if !exists {
		return 0, k.forget(ctx, key)
	}
	if pod.DeletionTimestamp != nil {
		return 0, k.terminatePod(ctx, key, pod, mine)
	}
	return k.runPod(ctx, key, pod, mine)
}

func (k *Kubelet) memoryOf(key string, uid types.UID) *podMemory {
	k.mu.Lock()
	defer k.mu.Unlock()
	m := k.memory[key]
	if m == nil || m.uid != uid {
		m = &podMemory{uid: uid, restart: map[string]*backoff{}, pull: map[string]*backoff{}, waiting: map[string]*corev1.ContainerStateWaiting{}}
		k.memory[key] = m
	}
	return m
}

// forget drops what the kubelet remembers of a pod that is gone, and its network.
func (k *Kubelet) forget(ctx context.Context, key string) error {
	k.mu.Lock()
	m := k.memory[key]
	k.mu.Unlock()
	if m != nil {
		if err := k.tearDown(ctx, m.uid); err != nil {
			return err
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.memory, key)
	return nil
}

// killAll stops containers (running ones with grace; pod, when set, gets a Killing
// event for each) and removes them.
func (k *Kubelet) killAll(ctx context.Context, ctrs []Container, grace time.Duration, pod *corev1.Pod) error {
	var wg sync.WaitGroup
	errs := make([]error, len(ctrs))
	for i, c := range ctrs {
		if c.State != StateRunning {
			continue
		}
		if pod != nil {
			k.rec.Eventf(pod, record.Normal, "Killing", "Stopping container %s", c.Name)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := k.rt.Stop(ctx, c.ID, grace); err != nil && !errors.Is(err, ErrNotFound) {
				errs[i] = fmt.Errorf("stop container %s (%s): %w", c.Name, c.ID, err)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, c := range ctrs {
		if err := k.rt.Remove(ctx, c.ID); err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("remove container %s (%s): %w", c.Name, c.ID, err)
		}
	}
	return nil
}

// terminatePod ends a deleted pod: its containers get the grace period, then the pod
// object goes (grace 0, only if it is still this pod).
func (k *Kubelet) terminatePod(ctx context.Context, key string, pod *corev1.Pod, mine []Container) error {
	if err := k.killAll(ctx, mine, gracePeriod(pod), pod); err != nil {
		return err
	}
	_, err := k.cs.Pods.Delete(ctx, pod.Namespace, pod.Name,
		client.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0), UID: string(pod.UID)})
	if err != nil && !client.IsNotFound(err) && !client.IsConflict(err) {
		return fmt.Errorf("delete pod %s: %w", key, err)
	}
	if err := k.tearDown(ctx, pod.UID); err != nil {
		return err
	}
	return k.forget(ctx, key)
}

// runPod moves a live pod's containers towards its spec and writes its status.
func (k *Kubelet) runPod(ctx context.Context, key string, pod *corev1.Pod, mine []Container) (time.Duration, error) {
	mem := k.memoryOf(key, pod.UID)
	// The last status written is newer than the cache's when the cache lags.
	prev := &pod.Status
	if mem.written != nil {
		prev = mem.written
	}
	now := k.cfg.Clock.Now()
	// A finished pod keeps the address it had in its status; its network goes.
	podIP := prev.PodIP
	if podTerminal(prev.Phase) {
		if err := k.tearDown(ctx, pod.UID); err != nil {
			return 0, err
		}
	} else {
		var err error
		if podIP, err = k.podIP(ctx, pod); err != nil {
			return 0, err
		}
	}
	hist := byName(mine)
	policy := restartPolicy(&pod.Spec)
	terminal := podTerminal(prev.Phase)
	var requeue time.Duration
	changed := false
	for i := range pod.Spec.Containers {
		spec := &pod.Spec.Containers[i]
		name := spec.Name
		h := hist[name]
		// Only the newest attempt may run: older ones still running were left by an
		// interrupted kubelet.
		for _, old := range h[min(1, len(h)):] {
			if old.State == StateRunning {
				if err := k.rt.Stop(ctx, old.ID, gracePeriod(pod)); err != nil && !errors.Is(err, ErrNotFound) {
					return 0, fmt.Errorf("stop superseded container %s of %s: %w", old.ID, key, err)
				}
				changed = true
			}
		}
		if terminal {
			delete(mem.waiting, name)
			continue
		}
		d := decideContainer(policy, h, mem.restart[name], now, k.bp)
		switch d.action {
		case actNone:
			delete(mem.waiting, name)
		case actWait:
			if waitingReason(mem.waiting[name]) != ReasonCrashLoopBackOff {
				k.rec.Eventf(pod, record.Warning, "BackOff", "Back-off restarting failed container %s in pod %s", name, key)
			}
			mem.waiting[name] = &corev1.ContainerStateWaiting{Reason: ReasonCrashLoopBackOff,
				Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", mem.restart[name].delay, name, pod.Name, pod.Namespace, pod.UID)}
			requeue = minPositive(requeue, d.wait)
		case actStart:
			var last *Container
			if len(h) > 0 {
				last = &h[0]
				// Keep only the attempt before the new one (the status' lastState).
				if err := k.killAll(ctx, h[1:], gracePeriod(pod), nil); err != nil {
					return 0, err
				}
			}
			requeue = minPositive(requeue, k.startContainer(ctx, pod, spec, d.attempt, last, mem, now))
			changed = true
		}
	}
	if changed {
		all, err := k.rt.List(ctx)
		if err != nil {
			return 0, fmt.Errorf("list containers: %w", err)
		}
		mine = mine[:0]
		for _, c := range all {
			if c.PodUID == string(pod.UID) {
				mine = append(mine, c)
			}
		}
		hist = byName(mine)
	}
	st := computePodStatus(&pod.Spec, prev, hist, mem.waiting, k.scheme, k.cfg.NodeIP, podIP, k.cfg.Clock.Now())
	if err := k.writeStatus(ctx, key, pod, st, mem); err != nil {
		return 0, err
	}
	return requeue, nil
}

func minPositive(a, b time.Duration) time.Duration {
	if a <= 0 || (b > 0 && b < a) {
		return b
	}
	return a
}

// startContainer pulls the image and starts one attempt of a container. Failures are
// expected outcomes: they leave the container waiting, with a reason, and return when
// to try again.
func (k *Kubelet) startContainer(ctx context.Context, pod *corev1.Pod, spec *corev1.Container, attempt int, last *Container, mem *podMemory, now time.Time) time.Duration {
	name, image := spec.Name, spec.Image
	if b := mem.restart[name]; waitingReason(mem.waiting[name]) == ReasonCreateError && b != nil && now.Before(b.updated.Add(b.delay)) {
		return b.updated.Add(b.delay).Sub(now)
	}
	if b := mem.pull[name]; !k.bp.stale(b, nil, now) && now.Before(b.updated.Add(b.delay)) {
		if waitingReason(mem.waiting[name]) != ReasonImagePullBackOff {
			k.rec.Eventf(pod, record.Normal, "BackOff", "Back-off pulling image %q", image)
		}
		mem.waiting[name] = &corev1.ContainerStateWaiting{Reason: ReasonImagePullBackOff, Message: fmt.Sprintf("Back-off pulling image %q", image)}
		return b.updated.Add(b.delay).Sub(now)
	}
	policy := pullPolicy(spec)
	began := k.cfg.Clock.Now()
	_, pulled, err := k.rt.EnsureImage(ctx, image, policy)
	if err != nil {
		reason := ReasonErrImagePull
		if errors.Is(err, ErrImageNeverPull) {
			reason = ReasonErrImageNeverPull
		} else {
			k.rec.Eventf(pod, record.Normal, "Pulling", "Pulling image %q", image)
		}
		k.rec.Eventf(pod, record.Warning, "Failed", "Failed to pull image %q: %v", image, err)
		k.rec.Eventf(pod, record.Warning, "Failed", "Error: %s", reason)
		mem.waiting[name] = &corev1.ContainerStateWaiting{Reason: reason, Message: err.Error()}
		b := k.bp.next(mem.pull[name], nil, now)
		mem.pull[name] = b
		return b.delay
	}
	delete(mem.pull, name)
	if pulled {
		k.rec.Eventf(pod, record.Normal, "Pulling", "Pulling image %q", image)
		k.rec.Eventf(pod, record.Normal, "Pulled", "Successfully pulled image %q in %s", image, k.cfg.Clock.Now().Sub(began).Round(time.Millisecond))
	} else {
		k.rec.Eventf(pod, record.Normal, "Pulled", "Container image %q already present on machine", image)
	}
	ccfg := containerConfig(pod, spec, attempt)
	ccfg.NetNSPath = k.netnsPath(pod)
	if _, err := k.rt.CreateAndStart(ctx, ccfg); err != nil {
		k.rec.Eventf(pod, record.Warning, "Failed", "Error: %v", err)
		mem.waiting[name] = &corev1.ContainerStateWaiting{Reason: ReasonCreateError, Message: err.Error()}
		b := k.bp.next(mem.restart[name], nil, now)
		mem.restart[name] = b
		return b.delay
	}
	k.rec.Eventf(pod, record.Normal, "Created", "Created container %s", name)
	k.rec.Eventf(pod, record.Normal, "Started", "Started container %s", name)
	delete(mem.waiting, name)
	if last != nil {
		mem.restart[name] = k.bp.next(mem.restart[name], last, now)
	}
	return 0
}

// waitingReason is why a container waits; "" when it does not (w is nil).
func waitingReason(w *corev1.ContainerStateWaiting) string {
	if w == nil {
		return ""
	}
	return w.Reason
}

// containerConfig is what the runtime needs to run a container of pod.
func containerConfig(pod *corev1.Pod, spec *corev1.Container, attempt int) ContainerConfig {
	cfg := ContainerConfig{
		PodUID: string(pod.UID), PodName: pod.Name, Namespace: pod.Namespace, Name: spec.Name,
		Image: spec.Image, Command: spec.Command, Args: spec.Args, WorkingDir: spec.WorkingDir, Attempt: attempt,
	}
	for _, e := range spec.Env {
		cfg.Env = append(cfg.Env, e.Name+"="+e.Value)
	}
	if q, ok := spec.Resources.Limits[corev1.ResourceCPU]; ok {
		cfg.CPUMillis = q.MilliValue()
	}
	if q, ok := spec.Resources.Limits[corev1.ResourceMemory]; ok {
		cfg.MemoryBytes = q.Value()
	}
	return cfg
}

// writeStatus writes st unless the pod already has it.
func (k *Kubelet) writeStatus(ctx context.Context, key string, pod *corev1.Pod, st *corev1.PodStatus, mem *podMemory) error {
	if equality.Semantic.DeepEqual(st, &pod.Status) || (mem.written != nil && equality.Semantic.DeepEqual(st, mem.written)) {
		return nil
	}
	// No resourceVersion: the kubelet owns the pod's status; the uid keeps the write
	// from landing on a new pod of the same name.
	upd := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID}, Status: *st}
	_, err := k.cs.Pods.UpdateStatus(ctx, upd)
	switch {
	case client.IsNotFound(err) || client.IsConflict(err):
		return nil // gone or replaced: its own events bring it back
	case err != nil:
		return fmt.Errorf("update pod %s status: %w", key, err)
	}
	mem.written = st
	if st.Phase != pod.Status.Phase {
		k.log.Debug("pod phase", "pod", key, "phase", st.Phase)
	}
	return nil
}

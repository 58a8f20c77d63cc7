package kubelet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	resourcehelper "k8s.io/component-helpers/resource"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/client/record"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/kubelet/volume"
)

// orphanGrace is the grace period of containers whose pod is gone (deleted with grace 0
// or while the kubelet was down): the pod's own period is no longer known.
const orphanGrace = 2 * time.Second

// syncPod reconciles one pod, by key: it reads the pod from the cache and its containers
// from the runtime and acts on the difference. It returns when it wants to look again
// (a back-off ending), or an error to be retried.
func (k *Kubelet) syncPod(ctx context.Context, key string) (time.Duration, error) {
	ns, name := cache.SplitKey(key)
	all, err := k.listPod(ctx, ns, name)
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
		uids := map[types.UID]bool{}
		for _, c := range stale {
			uids[types.UID(c.PodUID)] = true
		}
		for uid := range uids {
			if err := k.cleanUpPod(ctx, uid); err != nil {
				return 0, err
			}
			if err := k.tearDown(ctx, uid); err != nil {
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

// listPod lists the containers of the pod namespace/name (and perhaps others: callers
// pick theirs), by the runtime's PodLister when it has one.
func (k *Kubelet) listPod(ctx context.Context, namespace, name string) ([]Container, error) {
	if pl, ok := k.rt.(PodLister); ok {
		return pl.ListPod(ctx, namespace, name)
	}
	return k.rt.List(ctx)
}

func (k *Kubelet) memoryOf(key string, uid types.UID) *podMemory {
	k.mu.Lock()
	defer k.mu.Unlock()
	m := k.memory[key]
	if m == nil || m.uid != uid {
		m = &podMemory{uid: uid} // its maps are made on first use (put)
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

// killAll stops containers (running ones with grace; with pod set, each gets its
// preStop hook and a Killing event) and removes them.
func (k *Kubelet) killAll(ctx context.Context, ctrs []Container, grace time.Duration, pod *corev1.Pod) error {
	var live []Container
	for _, c := range ctrs {
		if c.State == StateRunning {
			live = append(live, c)
		}
	}
	if err := k.stopAll(ctx, pod, live, grace); err != nil {
		return err
	}
	for _, c := range ctrs {
		if err := k.rt.Remove(ctx, c.ID); err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("remove container %s (%s): %w", c.Name, c.ID, err)
		}
	}
	return nil
}

// stopAll stops running containers, each as stopContainer does (with pod nil: no hooks,
// no events), within grace: as Kubernetes stops a pod's, the others together, then its
// sidecars one at a time, the last one started first, with what is left of grace.
func (k *Kubelet) stopAll(ctx context.Context, pod *corev1.Pod, live []Container, grace time.Duration) error {
	var sidecars []Container
	if pod != nil {
		live, sidecars = splitSidecars(&pod.Spec, live)
	}
	deadline := k.cfg.Clock.Now().Add(grace)
	var wg sync.WaitGroup
	errs := make([]error, len(live))
	for i, c := range live {
		if pod != nil {
			k.rec.Eventf(pod, record.Normal, "Killing", "Stopping container %s", c.Name)
		}
		wg.Go(func() { errs[i] = k.stopContainer(ctx, pod, c, grace) })
	}
	wg.Wait()
	for _, c := range sidecars {
		k.rec.Eventf(pod, record.Normal, "Killing", "Stopping container %s", c.Name)
		errs = append(errs, k.stopContainer(ctx, pod, c, max(deadline.Sub(k.cfg.Clock.Now()), 0)))
	}
	return errors.Join(errs...)
}

// splitSidecars splits a pod's running containers into its sidecars, in the order they
// stop (the reverse of the spec's), and the others.
func splitSidecars(spec *corev1.PodSpec, live []Container) (others, sidecars []Container) {
	for i := len(spec.InitContainers) - 1; i >= 0; i-- {
		if c := &spec.InitContainers[i]; isSidecar(c) {
			for _, l := range live {
				if l.Name == c.Name {
					sidecars = append(sidecars, l)
				}
			}
		}
	}
	if len(sidecars) == 0 {
		return live, nil
	}
	for _, l := range live {
		if !slices.ContainsFunc(sidecars, func(s Container) bool { return s.ID == l.ID }) {
			others = append(others, l)
		}
	}
	return others, sidecars
}

// terminatePod ends a deleted pod: its containers get the grace period, its volumes,
// cgroup and network go, then the pod object (grace 0, only if it is still this pod):
// as Kubernetes' kubelet stops the pod's sandbox before it lets the object go, a pod
// that is gone holds no address.
func (k *Kubelet) terminatePod(ctx context.Context, key string, pod *corev1.Pod, mine []Container) error {
	if err := k.killAll(ctx, mine, gracePeriod(pod), pod); err != nil {
		return err
	}
	if err := k.cleanUpPod(ctx, pod.UID); err != nil {
		return err
	}
	if err := k.tearDown(ctx, pod.UID); err != nil {
		return err
	}
	_, err := k.cs.Pods.Delete(ctx, pod.Namespace, pod.Name,
		client.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0), UID: string(pod.UID)})
	if err != nil && !client.IsNotFound(err) && !client.IsConflict(err) {
		return fmt.Errorf("delete pod %s: %w", key, err)
	}
	return k.forget(ctx, key)
}

// cleanUpPod releases what a pod whose containers are all removed still holds: its
// probes, its directory (volumes unmounted) and its cgroup.
func (k *Kubelet) cleanUpPod(ctx context.Context, uid types.UID) error {
	k.prober.keep(string(uid), nil)
	k.tokens.forget(uid)
	k.podCerts.forget(uid)
	if k.volumes != nil {
		if err := k.volumes.TearDown(uid); err != nil {
			return err
		}
	}
	if err := k.rt.RemovePod(ctx, string(uid)); err != nil {
		return fmt.Errorf("remove pod %s: %w", uid, err)
	}
	return nil
}

// runPod moves a live pod's containers towards its spec and writes its status: its
// volumes first, then its init containers one at a time, in order, each to completion,
// then its app containers, with their probes and hooks.
func (k *Kubelet) runPod(ctx context.Context, key string, pod *corev1.Pod, mine []Container) (time.Duration, error) {
	mem := k.memoryOf(key, pod.UID)
	// The last status written is newer than the cache's when the cache lags.
	mem.caughtUp(pod)
	prev := &pod.Status
	if mem.written != nil {
		prev = mem.written
	}
	now := k.cfg.Clock.Now()
	// The pod runs with its allocated resources (a resize waits until the node fits it).
	var resizeConds []corev1.PodCondition
	var requeueResize time.Duration
	if !podTerminal(prev.Phase) {
		var pending *corev1.PodCondition
		if pod, pending = k.allocate(pod, mem); pending != nil {
			// Tried again at each sync; other pods' going does not sync this one.
			resizeConds = append(resizeConds, *pending)
			requeueResize = k.bp.initial
		}
	}
	// Admission, before the pod's sandbox takes its host ports: a pod asking for a host
	// port another pod of the node holds is refused, as Kubernetes' kubelet refuses it
	// (its NodePorts predicate); a pod already started keeps its ports.
	if !podTerminal(prev.Phase) && mem.failure == nil {
		if f := k.hostPortRefusal(pod, mem, len(mine) > 0 || prev.StartTime != nil); f != nil {
			mem.failure = f
			k.rec.Eventf(pod, record.Warning, f.reason, "%s", strings.TrimPrefix(f.message, podRejected))
		}
	}
	// A finished pod keeps the address it had in its status; its network goes.
	podIP := prev.PodIP
	if podTerminal(prev.Phase) {
		if err := k.tearDown(ctx, pod.UID); err != nil {
			return 0, err
		}
	} else if mem.failure == nil || !mem.failure.rejected {
		if _, err := k.runtimeHandler(ctx, pod, mem); err != nil {
			return 0, err
		}
		var err error
		if podIP, err = k.podIP(ctx, pod); err != nil {
			return 0, err
		}
		k.mu.Lock()
		mem.podIP = podIP
		k.mu.Unlock()
	}
	hist := byName(mine)
	policy := restartPolicy(&pod.Spec)
	var requeue time.Duration
	changed := false
	// Only the newest attempt may run: older ones still running were left by an
	// interrupted kubelet.
	for name, h := range hist {
		for _, old := range h[min(1, len(h)):] {
			if old.State == StateRunning {
				if err := k.rt.Stop(ctx, old.ID, gracePeriod(pod)); err != nil && !errors.Is(err, ErrNotFound) {
					return 0, fmt.Errorf("stop superseded container %s of %s (%s): %w", name, key, old.ID, err)
				}
				changed = true
			}
		}
	}
	// The active deadline, counted from the pod's start as Kubernetes counts it.
	if d := pod.Spec.ActiveDeadlineSeconds; d != nil && mem.failure == nil && !podTerminal(prev.Phase) && prev.StartTime != nil {
		deadline := prev.StartTime.Add(time.Duration(*d) * time.Second)
		if !now.Before(deadline) {
			mem.failure = &podFailure{reason: "DeadlineExceeded", message: "Pod was active on the node longer than the specified deadline"}
			k.rec.Eventf(pod, record.Warning, "DeadlineExceeded", "Pod was active on the node longer than the specified deadline")
		} else {
			requeue = deadline.Sub(now)
		}
	}
	// Over a storage limit (an emptyDir's sizeLimit, limits.ephemeral-storage): the pod
	// is evicted at once, as Kubernetes' eviction manager evicts it.
	if mem.failure == nil && !podTerminal(prev.Phase) && measuresStorage(&pod.Spec) {
		if f := k.storageEviction(ctx, pod, hist); f != nil {
			mem.failure = f
			k.rec.Eventf(pod, record.Warning, f.reason, "%s", f.message)
		}
	}
	// Admission: a pod whose sysctls this node does not allow is refused before anything
	// of it runs, as Kubernetes' kubelet refuses it (the API accepts any valid name).
	if mem.failure == nil && !podTerminal(prev.Phase) && len(hist) == 0 {
		if f := sysctlRefusal(pod); f != nil {
			mem.failure = f
			k.rec.Eventf(pod, record.Warning, f.reason, "%s", f.message)
		}
	}
	terminal := podTerminal(prev.Phase) || mem.failure != nil
	if mem.failure != nil {
		if live := liveContainers(hist); len(live) > 0 {
			var err error
			if g := mem.failure.grace; g != nil && *g == 0 {
				// An eviction's grace 0: no preStop hook, and the least window
				// Kubernetes gives a container between SIGTERM and SIGKILL.
				for _, c := range live {
					k.rec.Eventf(pod, record.Normal, "Killing", "Stopping container %s", c.Name)
				}
				err = k.stopAll(ctx, nil, live, minStopGrace)
			} else {
				err = k.stopAll(ctx, pod, live, gracePeriod(pod))
			}
			if err != nil {
				return 0, err
			}
			changed = true
		}
	}

	var paths map[string]string
	unmounted := ""
	if !terminal {
		var err error
		if paths, err = k.setUpVolumes(ctx, pod, mem); err != nil {
			unmounted = err.Error()
			requeue = minPositive(requeue, k.bp.initial)
		}
	}
	done := mem.failure == nil && (podTerminal(prev.Phase) || (unmounted == "" && podDone(&pod.Spec, hist, k.prober.containerResult)))
	switch {
	case done:
		// The app containers are done for good: the sidecars still running go, last
		// first, and the pod completes. Nothing waits to start any more.
		clear(mem.waiting)
		if live := liveContainers(hist); len(live) > 0 {
			if err := k.stopAll(ctx, pod, live, gracePeriod(pod)); err != nil {
				return 0, err
			}
			changed = true
		}
	case !terminal && unmounted == "":
		initDone, _, _ := initProgress(&pod.Spec, hist, k.prober.containerResult)
		r, ch, err := k.runInit(ctx, pod, hist, initDone, mem, now, paths)
		if err != nil {
			return 0, err
		}
		requeue, changed = minPositive(requeue, r), changed || ch
		if initDone {
			for i := range pod.Spec.Containers {
				spec := &pod.Spec.Containers[i]
				h := hist[spec.Name]
				if len(h) > 0 && h[0].State == StateRunning {
					if killed, err := k.checkProbes(ctx, pod, spec, h[0]); err != nil {
						return 0, err
					} else if killed {
						changed = true
						continue
					}
				}
				d := decideContainer(policy, h, mem.restart[spec.Name], now, k.bp)
				if mem.resizeRestart[spec.Name] && len(h) > 0 && h[0].State != StateRunning {
					// Stopped to take a resize: started again at once.
					d = decision{action: actStart, attempt: h[0].Attempt + 1}
					delete(mem.resizeRestart, spec.Name)
				}
				r, ch, err := k.act(ctx, pod, spec, h, d, mem, now, paths)
				if err != nil {
					return 0, err
				}
				requeue, changed = minPositive(requeue, r), changed || ch
			}
			r, ch := k.runEphemeral(ctx, pod, hist, mem, now, paths)
			requeue, changed = minPositive(requeue, r), changed || ch
			inProgress, ch, err := k.actuate(ctx, pod, hist, mem)
			if err != nil {
				return 0, err
			}
			if inProgress != nil {
				// Looked at again soon: done (the condition goes) or retried.
				resizeConds = append(resizeConds, *inProgress)
				requeueResize = k.bp.initial
			}
			if len(mem.resizeRestart) > 0 {
				requeueResize = k.bp.initial
			}
			changed = changed || ch
		}
	default:
		for name := range mem.waiting {
			if !terminal && unmounted != "" {
				continue
			}
			delete(mem.waiting, name)
		}
	}
	requeue = minPositive(requeue, requeueResize)
	if changed {
		all, err := k.listPod(ctx, pod.Namespace, pod.Name)
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
	live := map[string]bool{}
	for _, h := range hist {
		if len(h) > 0 && h[0].State == StateRunning && !terminal {
			live[h[0].ID] = true
		}
	}
	k.prober.keep(string(pod.UID), live)
	k.readMessages(ctx, pod, hist, mem)
	st := computePodStatus(podState{spec: &pod.Spec, old: prev, containers: hist, waiting: mem.waiting, scheme: k.scheme,
		hostIP: k.cfg.NodeIP, podIP: podIP, now: k.cfg.Clock.Now(), probe: k.prober.containerResult, messages: mem.messages,
		failed: mem.failure, unmounted: unmounted, generation: pod.Generation, allocated: mem.allocated, resize: resizeConds})
	if err := k.writeStatus(ctx, key, pod, st, mem); err != nil {
		return 0, err
	}
	if podTerminal(st.Phase) && !podTerminal(prev.Phase) {
		// Finished: its network goes now, as a sync of a finished pod lets it go (its
		// own status write coming back no longer brings that sync: changed).
		if err := k.tearDown(ctx, pod.UID); err != nil {
			return 0, err
		}
	}
	return requeue, nil
}

// runInit moves a live pod's init containers on, in order: until initDone, each runs
// to completion (a failed one again, unless restartPolicy is Never) before the next
// starts, and a sidecar must have started (its startup probe passed) before the next
// one does. Sidecars are probed and restarted whenever they stop, whatever the pod's
// restartPolicy, before and after initDone.
func (k *Kubelet) runInit(ctx context.Context, pod *corev1.Pod, hist map[string][]Container, initDone bool, mem *podMemory, now time.Time, paths map[string]string) (time.Duration, bool, error) {
	var requeue time.Duration
	changed := false
	for i := range pod.Spec.InitContainers {
		spec := &pod.Spec.InitContainers[i]
		h := hist[spec.Name]
		if !isSidecar(spec) {
			if initDone {
				continue
			}
			if len(h) > 0 && h[0].State == StateExited && h[0].ExitCode == 0 {
				delete(mem.waiting, spec.Name)
				continue
			}
			if len(h) > 0 && h[0].State != StateRunning && restartPolicy(&pod.Spec) == corev1.RestartPolicyNever {
				break // the pod has failed
			}
			// A failed init container runs again, whatever the policy but Never.
			d := decideContainer(corev1.RestartPolicyOnFailure, h, mem.restart[spec.Name], now, k.bp)
			r, ch, err := k.act(ctx, pod, spec, h, d, mem, now, paths)
			return minPositive(requeue, r), changed || ch, err
		}
		if len(h) > 0 && h[0].State == StateRunning {
			killed, err := k.checkProbes(ctx, pod, spec, h[0])
			if err != nil {
				return 0, false, err
			}
			if killed {
				changed = true
				if initDone {
					continue
				}
				break
			}
		}
		d := decideContainer(corev1.RestartPolicyAlways, h, mem.restart[spec.Name], now, k.bp)
		r, ch, err := k.act(ctx, pod, spec, h, d, mem, now, paths)
		if err != nil {
			return 0, false, err
		}
		requeue, changed = minPositive(requeue, r), changed || ch
		if !initDone && (d.action != actNone || !isStarted(spec, h[0], k.prober.containerResult)) {
			break // the next one waits for this one to start
		}
	}
	return requeue, changed, nil
}

// liveContainers are the containers of hist whose newest attempt runs.
func liveContainers(hist map[string][]Container) []Container {
	var live []Container
	for _, h := range hist {
		if len(h) > 0 && h[0].State == StateRunning {
			live = append(live, h[0])
		}
	}
	return live
}

// act carries a decision for one container out: start it, or hold it in back-off.
func (k *Kubelet) act(ctx context.Context, pod *corev1.Pod, spec *corev1.Container, h []Container, d decision, mem *podMemory, now time.Time, paths map[string]string) (time.Duration, bool, error) {
	name := spec.Name
	switch d.action {
	case actNone:
		delete(mem.waiting, name)
		if len(h) > 0 && h[0].State == StateRunning {
			k.prober.ensure(pod, spec, h[0])
		}
	case actWait:
		if waitingReason(mem.waiting[name]) != ReasonCrashLoopBackOff {
			k.rec.Eventf(pod, record.Warning, "BackOff", "Back-off restarting failed container %s in pod %s", name, cache.Key(pod))
		}
		put(&mem.waiting, name, &corev1.ContainerStateWaiting{Reason: ReasonCrashLoopBackOff,
			Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s", mem.restart[name].delay, name, podDesc(pod))})
		return d.wait, false, nil
	case actStart:
		var last *Container
		if len(h) > 0 {
			last = &h[0]
			// Keep only the attempt before the new one (the status' lastState).
			if err := k.killAll(ctx, h[1:], gracePeriod(pod), nil); err != nil {
				return 0, false, err
			}
		}
		return k.startContainer(ctx, pod, spec, d.attempt, last, mem, now, paths, ""), true, nil
	}
	return 0, false, nil
}

// checkProbes acts on a running container's failed liveness or startup probe: it is
// killed (preStop and grace as for a deletion), to be restarted per restartPolicy.
func (k *Kubelet) checkProbes(ctx context.Context, pod *corev1.Pod, spec *corev1.Container, c Container) (bool, error) {
	for _, p := range []struct {
		typ   probeType
		probe *corev1.Probe
	}{{liveness, spec.LivenessProbe}, {startup, spec.StartupProbe}} {
		if p.probe == nil || k.prober.result(c.ID, p.typ) != resultFailure {
			continue
		}
		k.rec.Eventf(pod, record.Normal, "Killing", "Container %s failed %s probe, will be restarted", spec.Name, strings.ToLower(p.typ.String()))
		grace := gracePeriod(pod)
		if g := p.probe.TerminationGracePeriodSeconds; g != nil {
			grace = time.Duration(*g) * time.Second
		}
		k.prober.keep(string(pod.UID), nil) // its results die with it
		return true, k.stopContainer(ctx, pod, c, grace)
	}
	return false, nil
}

// setUpVolumes sets the pod's volumes up; a failure is an event (once per message)
// and keeps the pod's containers from starting.
func (k *Kubelet) setUpVolumes(ctx context.Context, pod *corev1.Pod, mem *podMemory) (map[string]string, error) {
	if len(pod.Spec.Volumes) == 0 {
		return nil, nil
	}
	paths, err := k.volumes.SetUp(ctx, pod, volume.Inputs{
		ConfigMap: k.objects.configMap,
		Secret:    k.objects.secret,
		Downward: func(it *corev1.DownwardAPIVolumeFile) (string, error) {
			if it.FieldRef != nil {
				return fieldValue(pod, it.FieldRef.FieldPath, k.cfg.NodeIP, k.podAddr(pod))
			}
			return resourceValue(pod, nil, it.ResourceFieldRef, k.capacity)
		},
		PodMemory: k.podMemory(pod),
		Claim:     k.claimVolume,
		ServiceAccountToken: func(ctx context.Context, p *corev1.ServiceAccountTokenProjection) (string, error) {
			return k.tokens.token(ctx, pod, p)
		},
		Image: func(ctx context.Context, src *corev1.ImageVolumeSource, dir string) error {
			return k.mountImage(ctx, pod, src, dir)
		},
		ClusterTrustBundles: k.objects.clusterTrustBundles,
		PodCertificate: func(ctx context.Context, volume string, source int, p *corev1.PodCertificateProjection) ([]byte, []byte, error) {
			return k.podCerts.credentials(ctx, pod, volume, source, p)
		},
	})
	if err != nil {
		if msg := err.Error(); msg != mem.mountErr {
			mem.mountErr = msg
			k.rec.Eventf(pod, record.Warning, "FailedMount", "%s", msg)
		}
		var names []string
		for i := range pod.Spec.Volumes {
			if _, ok := paths[pod.Spec.Volumes[i].Name]; !ok {
				names = append(names, pod.Spec.Volumes[i].Name)
			}
		}
		return nil, fmt.Errorf("unmounted volumes=[%s]: %v", strings.Join(names, " "), err)
	}
	mem.mountErr = ""
	return paths, nil
}

// claimVolume is the PersistentVolume claim namespace/name is bound to, as Kubernetes'
// kubelet finds it: the claim must be Bound and name its volume, and the volume's
// claimRef must be the claim.
func (k *Kubelet) claimVolume(ctx context.Context, namespace, name string) (*corev1.PersistentVolume, error) {
	pvc, err := k.cs.PersistentVolumeClaims.Get(ctx, namespace, name)
	if err != nil {
		return nil, fmt.Errorf("error processing PVC %s/%s: %w", namespace, name, err)
	}
	if pvc.Status.Phase != corev1.ClaimBound || pvc.Spec.VolumeName == "" {
		return nil, fmt.Errorf("PVC %s/%s has non-bound phase (%q) or empty pvc.Spec.VolumeName (%q): %w",
			namespace, name, pvc.Status.Phase, pvc.Spec.VolumeName, volume.ErrClaimPending)
	}
	pv, err := k.cs.PersistentVolumes.Get(ctx, "", pvc.Spec.VolumeName)
	if err != nil {
		return nil, fmt.Errorf("error processing PVC %s/%s: %w", namespace, name, err)
	}
	if r := pv.Spec.ClaimRef; r == nil || r.Namespace != namespace || r.Name != name || (r.UID != "" && r.UID != pvc.UID) {
		return nil, fmt.Errorf("PVC %s/%s: volume %s is not bound to it: %w", namespace, name, pv.Name, volume.ErrClaimPending)
	}
	return pv, nil
}

// podMemory is the most memory pod may use: its cgroup's limit, else the node's
// allocatable memory (what sizes its memory-backed emptyDirs).
func (k *Kubelet) podMemory(pod *corev1.Pod) int64 {
	if m := podResources(&pod.Spec).MemoryBytes; m > 0 {
		return m
	}
	q := k.capacity[corev1.ResourceMemory]
	return q.Value()
}

// storageEviction is why pod is evicted for the local storage it uses, checked as
// Kubernetes' eviction manager checks it (localStorageEviction), in its order and with
// its words: an emptyDir holding more than its sizeLimit; the pod using more than its
// containers' limits.ephemeral-storage together (their writable layers and logs, and
// its emptyDirs on disk); a container using more than its own limit. nil if none is.
// An eviction's grace period is 0: no preStop hook, 2s to go.
func (k *Kubelet) storageEviction(ctx context.Context, pod *corev1.Pod, hist map[string][]Container) *podFailure {
	if k.volumes == nil {
		return nil
	}
	zero := time.Duration(0)
	evicted := func(format string, args ...any) *podFailure {
		return &podFailure{reason: "Evicted", message: fmt.Sprintf(format, args...), grace: &zero}
	}
	name, limit, err := k.volumes.ExceededEmptyDir(pod)
	if err != nil {
		k.log.Warn("measure emptyDir volumes", "pod", cache.Key(pod), "error", err)
		return nil
	}
	if name != "" {
		return evicted("Usage of EmptyDir volume %q exceeds the limit %q. ", name, limit.String())
	}
	podLimit, limited := podEphemeralLimit(&pod.Spec)
	if !limited {
		return nil
	}
	used, err := k.volumes.EmptyDirUsage(pod)
	if err != nil {
		k.log.Warn("measure emptyDir volumes", "pod", cache.Key(pod), "error", err)
		return nil
	}
	byContainer := map[string]int64{}
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range list {
			h := hist[list[i].Name]
			if len(h) == 0 {
				continue
			}
			n, err := k.rt.DiskUsage(ctx, h[0].ID)
			if err != nil {
				if !errors.Is(err, ErrNotFound) {
					k.log.Warn("measure a container's disk", "pod", cache.Key(pod), "container", list[i].Name, "error", err)
				}
				continue
			}
			byContainer[list[i].Name] = n
			used += n
		}
	}
	if used > podLimit.Value() {
		return evicted("Pod ephemeral local storage usage exceeds the total limit of containers %s. ", podLimit.String())
	}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		if l, ok := c.Resources.Limits[corev1.ResourceEphemeralStorage]; ok && l.Value() != 0 && byContainer[c.Name] > l.Value() {
			return evicted("Container %s exceeded its local ephemeral storage limit %q. ", c.Name, l.String())
		}
	}
	return nil
}

// podEphemeralLimit is the pod's limits.ephemeral-storage, as Kubernetes' PodLimits sums
// it (component-helpers'): its app containers' and sidecars' limits added up, or an init
// container's with the sidecars before it if that is more; false when no container has
// one.
//
// Most pods have none, and every sync of every pod asks (measuresStorage, the eviction
// check): they are answered without PodLimits, which copies the spec into a pod and
// sums every resource of every container into maps — at 150,000 pods, 9% of the
// simulated nodes' allocation (issue 26).
func podEphemeralLimit(spec *corev1.PodSpec) (resource.Quantity, bool) {
	if !anyEphemeralLimit(spec) {
		return resource.Quantity{}, false
	}
	l, ok := resourcehelper.PodLimits(&corev1.Pod{Spec: *spec}, resourcehelper.PodResourcesOptions{})[corev1.ResourceEphemeralStorage]
	return l, ok
}

// anyEphemeralLimit tells whether a container of the pod, or the pod itself, sets
// limits.ephemeral-storage: PodLimits has the resource only then.
func anyEphemeralLimit(spec *corev1.PodSpec) bool {
	if r := spec.Resources; r != nil {
		if _, ok := r.Limits[corev1.ResourceEphemeralStorage]; ok {
			return true
		}
	}
	for _, list := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for i := range list {
			if _, ok := list[i].Resources.Limits[corev1.ResourceEphemeralStorage]; ok {
				return true
			}
		}
	}
	return false
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
// target is the running container whose process namespace it joins ("": its own).
func (k *Kubelet) startContainer(ctx context.Context, pod *corev1.Pod, spec *corev1.Container, attempt int, last *Container, mem *podMemory, now time.Time, paths map[string]string, target string) time.Duration {
	name, image := spec.Name, spec.Image
	if b := mem.restart[name]; (waitingReason(mem.waiting[name]) == ReasonCreateError || waitingReason(mem.waiting[name]) == ReasonCreateConfigError) &&
		b != nil && now.Before(b.updated.Add(b.delay)) {
		return b.updated.Add(b.delay).Sub(now)
	}
	if b := mem.pull[name]; !k.bp.stale(b, nil, now) && now.Before(b.updated.Add(b.delay)) {
		if waitingReason(mem.waiting[name]) != ReasonImagePullBackOff {
			k.rec.Eventf(pod, record.Normal, "BackOff", "Back-off pulling image %q", image)
		}
		put(&mem.waiting, name, &corev1.ContainerStateWaiting{Reason: ReasonImagePullBackOff, Message: fmt.Sprintf("Back-off pulling image %q", image)})
		return b.updated.Add(b.delay).Sub(now)
	}
	policy := pullPolicy(spec)
	began := k.cfg.Clock.Now()
	_, pulled, err := k.rt.EnsureImage(ctx, image, policy, k.pullCredentials(ctx, pod))
	if err != nil {
		reason := ReasonErrImagePull
		if errors.Is(err, ErrImageNeverPull) {
			reason = ReasonErrImageNeverPull
		} else {
			k.rec.Eventf(pod, record.Normal, "Pulling", "Pulling image %q", image)
		}
		k.rec.Eventf(pod, record.Warning, "Failed", "Failed to pull image %q: %v", image, err)
		k.rec.Eventf(pod, record.Warning, "Failed", "Error: %s", reason)
		put(&mem.waiting, name, &corev1.ContainerStateWaiting{Reason: reason, Message: err.Error()})
		b := k.bp.next(mem.pull[name], nil, now)
		put(&mem.pull, name, b)
		return b.delay
	}
	delete(mem.pull, name)
	if pulled {
		k.rec.Eventf(pod, record.Normal, "Pulling", "Pulling image %q", image)
		k.rec.Eventf(pod, record.Normal, "Pulled", "Successfully pulled image %q in %s", image, k.cfg.Clock.Now().Sub(began).Round(time.Millisecond))
	} else {
		k.rec.Eventf(pod, record.Normal, "Pulled", "Container image %q already present on machine", image)
	}
	failed := func(reason string, err error) time.Duration {
		k.rec.Eventf(pod, record.Warning, "Failed", "Error: %v", err)
		put(&mem.waiting, name, &corev1.ContainerStateWaiting{Reason: reason, Message: err.Error()})
		b := k.bp.next(mem.restart[name], nil, now)
		put(&mem.restart, name, b)
		return b.delay
	}
	cfg, err := k.containerConfig(ctx, pod, spec, attempt, paths)
	if err != nil {
		return failed(ReasonCreateConfigError, err)
	}
	cfg.RuntimeHandler, cfg.TargetID = mem.handler, target
	id, err := k.rt.CreateAndStart(ctx, cfg)
	if err != nil {
		if errors.Is(err, ErrContainerConfig) {
			// The message is the runtime's reason, without the error class it wraps.
			return failed(ReasonCreateConfigError, errors.New(strings.TrimSuffix(err.Error(), ": "+ErrContainerConfig.Error())))
		}
		return failed(ReasonCreateError, err)
	}
	k.rec.Eventf(pod, record.Normal, "Created", "Created container %s", name)
	k.rec.Eventf(pod, record.Normal, "Started", "Started container %s", name)
	delete(mem.waiting, name)
	if last != nil {
		put(&mem.restart, name, k.bp.next(mem.restart[name], last, now))
	}
	if l := spec.Lifecycle; l != nil && l.PostStart != nil {
		// Kubernetes runs postStart before it counts the container started, and kills a
		// container whose hook fails.
		if err := k.runHook(ctx, pod, spec, id, l.PostStart); err != nil && ctx.Err() == nil {
			// The event does not carry the hook's output, which may hold secrets (as
			// Kubernetes'); the log does.
			k.log.Warn("postStart hook failed", "pod", cache.Key(pod), "container", name, "error", err)
			k.rec.Eventf(pod, record.Warning, "FailedPostStartHook", "PostStartHook failed")
			k.rec.Eventf(pod, record.Normal, "Killing", "FailedPostStartHook")
			if err := k.rt.Stop(ctx, id, gracePeriod(pod)); err != nil && !errors.Is(err, ErrNotFound) {
				k.log.Warn("stop container after its postStart hook failed", "pod", cache.Key(pod), "container", name, "error", err)
			}
		}
	}
	return 0
}

// mountImage pulls an image volume's image as its pullPolicy says, with the pod's
// registry credentials, and mounts its root filesystem read-only at dir, with the events
// Kubernetes' kubelet records for an image it pulls.
func (k *Kubelet) mountImage(ctx context.Context, pod *corev1.Pod, src *corev1.ImageVolumeSource, dir string) error {
	policy := string(src.PullPolicy)
	if policy == "" {
		policy = pullPolicy(&corev1.Container{Image: src.Reference})
	}
	began := k.cfg.Clock.Now()
	_, pulled, err := k.rt.EnsureImage(ctx, src.Reference, policy, k.pullCredentials(ctx, pod))
	if err != nil {
		k.rec.Eventf(pod, record.Warning, "Failed", "Failed to pull image %q: %v", src.Reference, err)
		return err
	}
	if pulled {
		k.rec.Eventf(pod, record.Normal, "Pulled", "Successfully pulled image %q in %s", src.Reference, k.cfg.Clock.Now().Sub(began).Round(time.Millisecond))
	}
	return k.rt.MountImage(ctx, string(pod.UID), src.Reference, dir)
}

// runEphemeral starts each ephemeral container of the pod that has not run yet, in the
// pod's sandbox (its network, volumes and files), in its target's process namespace
// when it names one. An ephemeral container runs once: it is never restarted.
func (k *Kubelet) runEphemeral(ctx context.Context, pod *corev1.Pod, hist map[string][]Container, mem *podMemory, now time.Time, paths map[string]string) (time.Duration, bool) {
	var requeue time.Duration
	changed := false
	for i := range pod.Spec.EphemeralContainers {
		ec := &pod.Spec.EphemeralContainers[i]
		if len(hist[ec.Name]) > 0 {
			delete(mem.waiting, ec.Name)
			continue
		}
		target := ""
		if t := ec.TargetContainerName; t != "" {
			h := hist[t]
			if len(h) == 0 || h[0].State != StateRunning {
				put(&mem.waiting, ec.Name, &corev1.ContainerStateWaiting{Reason: ReasonContainerCreating,
					Message: fmt.Sprintf("target container %q is not running", t)})
				requeue = minPositive(requeue, k.bp.initial)
				continue
			}
			target = h[0].ID
		}
		spec := (*corev1.Container)(&ec.EphemeralContainerCommon)
		requeue = minPositive(requeue, k.startContainer(ctx, pod, spec, 0, nil, mem, now, paths, target))
		changed = true
	}
	return requeue, changed
}

// waitingReason is why a container waits; "" when it does not (w is nil).
func waitingReason(w *corev1.ContainerStateWaiting) string {
	if w == nil {
		return ""
	}
	return w.Reason
}

// caughtUp forgets the status last written once the cache's pod is at or past the
// write's revision: the cache holds it (or newer) from then on.
func (m *podMemory) caughtUp(pod *corev1.Pod) {
	if m.written == nil {
		return
	}
	if rv, err := strconv.ParseInt(pod.ResourceVersion, 10, 64); err == nil && rv >= m.writtenRV {
		m.written = nil
	}
}

// changed tells whether a pod's update from old to cur changes anything its sync acts
// on, as Kubernetes' pod config drops updates that do not differ semantically before
// its sync loop: its spec (told by the generation, which the API server raises on every
// change of it), labels and annotations (the downward API's files), its deletion, or
// its status, unless that is the kubelet's own write of a finished pod coming back. A
// finalizer's release, a managed field, or a finished pod's own status write do not
// sync the pod again (two syncs of every Job pod). The own write of a pod still
// running does: that sync is when a waiting container's reason moves on (ErrImagePull
// to ImagePullBackOff) before its back-off's end brings the next one.
func (k *Kubelet) changed(old, cur *corev1.Pod) bool {
	if old.UID != cur.UID || old.Generation != cur.Generation ||
		!old.DeletionTimestamp.Equal(cur.DeletionTimestamp) || !ptr.Equal(old.DeletionGracePeriodSeconds, cur.DeletionGracePeriodSeconds) ||
		!maps.Equal(old.Labels, cur.Labels) || !maps.Equal(old.Annotations, cur.Annotations) {
		return true
	}
	if podTerminal(cur.Status.Phase) && k.ownStatus(cur) {
		return false
	}
	return !sameStatus(&old.Status, &cur.Status)
}

// ownStatus tells whether pod, as the cache has it, is the kubelet's last status write:
// the revision it made, or, while the write is not answered yet, its status.
func (k *Kubelet) ownStatus(pod *corev1.Pod) bool {
	k.mu.Lock()
	m := k.memory[cache.Key(pod)]
	k.mu.Unlock()
	if m == nil || m.uid != pod.UID {
		return false
	}
	if rv, err := strconv.ParseInt(pod.ResourceVersion, 10, 64); err == nil && m.ownRV.Load() == rv {
		return true
	}
	st := m.writing.Load()
	return st != nil && sameStatus(st, &pod.Status)
}

// writeStatus writes st unless the pod already has it.
func (k *Kubelet) writeStatus(ctx context.Context, key string, pod *corev1.Pod, st *corev1.PodStatus, mem *podMemory) error {
	if sameStatus(st, &pod.Status) || (mem.written != nil && sameStatus(st, mem.written)) {
		return nil
	}
	// No resourceVersion: the kubelet owns the pod's status; the uid keeps the write
	// from landing on a new pod of the same name.
	upd := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID}, Status: *st}
	mem.writing.Store(st)
	out, err := k.cs.Pods.UpdateStatusMeta(ctx, upd)
	mem.writing.Store(nil)
	switch {
	case client.IsNotFound(err) || client.IsConflict(err):
		return nil // gone or replaced: its own events bring it back
	case err != nil:
		return fmt.Errorf("update pod %s status: %w", key, err)
	}
	mem.written, mem.writtenRV = st, math.MaxInt64
	if rv, err := strconv.ParseInt(out.ResourceVersion, 10, 64); err == nil {
		mem.writtenRV = rv
		mem.ownRV.Store(rv)
	}
	if st.Phase != pod.Status.Phase {
		k.log.Debug("pod phase", "pod", key, "phase", st.Phase)
	}
	return nil
}

// sameStatus tells whether two pod statuses are the same as the API stores them: their
// protobuf encodings are equal. Quantities encode in their canonical form and times to
// the second, as the API keeps both, and nil and empty lists and maps alike; so two
// statuses that differ only where the stored one cannot are the same, and a write of one
// over the other would change nothing. Every pod's every sync and every update of it
// the kubelet sees compares two: apimachinery's Semantic.DeepEqual did it by reflection,
// 7% of the simulated nodes' allocation at 150,000 pods (issue 26); the encodings are
// written into pooled buffers.
func sameStatus(a, b *corev1.PodStatus) bool {
	if a == b {
		return true
	}
	n := a.Size()
	if b.Size() != n {
		return false
	}
	buf := statusBuffers.Get().(*[]byte)
	defer statusBuffers.Put(buf)
	if cap(*buf) < 2*n {
		*buf = make([]byte, 2*n)
	}
	ea, eb := (*buf)[:n], (*buf)[n:2*n]
	if _, err := a.MarshalToSizedBuffer(ea); err != nil {
		return equality.Semantic.DeepEqual(a, b)
	}
	if _, err := b.MarshalToSizedBuffer(eb); err != nil {
		return equality.Semantic.DeepEqual(a, b)
	}
	return bytes.Equal(ea, eb)
}

// statusBuffers hold sameStatus's encodings.
var statusBuffers = sync.Pool{New: func() any { return new([]byte) }}

// podRejected begins the status message of a pod the kubelet's admission refused
// (Kubernetes' rejectPod).
const podRejected = "Pod was rejected: "

// hostPortRefusal admits pod unless it asks for a host port that another admitted pod
// of the node, not finished, holds (Kubernetes' NodePorts predicate, in its words);
// started admits it whatever it asks, as it may hold its ports already. A pod admitted
// stays admitted.
func (k *Kubelet) hostPortRefusal(pod *corev1.Pod, mem *podMemory, started bool) *podFailure {
	ports := kinds.HostPorts(pod)
	var others []*corev1.Pod
	if len(ports) > 0 && !started {
		others = k.pods.Lister().List(labels.Everything())
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if mem.admitted {
		return nil
	}
	for _, o := range others {
		if o.UID == pod.UID || podTerminal(o.Status.Phase) {
			continue
		}
		m := k.memory[cache.Key(o)]
		if m != nil && m.uid == o.UID && m.failure != nil && m.failure.rejected {
			continue
		}
		if o.Status.StartTime == nil && (m == nil || m.uid != o.UID || !m.admitted) {
			continue // not admitted (yet): it will be refused if it conflicts
		}
		for _, held := range kinds.HostPorts(o) {
			if slices.ContainsFunc(ports, held.Conflicts) {
				return &podFailure{reason: "NodePorts", rejected: true,
					message: podRejected + "Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports"}
			}
		}
	}
	mem.admitted = true
	return nil
}

// sysctlRefusal is the failure of a pod setting a sysctl outside the safe set (Skiff's
// kubelet allows no more), or nil.
func sysctlRefusal(pod *corev1.Pod) *podFailure {
	if sc := pod.Spec.SecurityContext; sc != nil {
		for _, s := range sc.Sysctls {
			if !kinds.SafeSysctl(s.Name) {
				return &podFailure{reason: "SysctlForbidden", message: fmt.Sprintf("forbidden sysctl: %q not allowlisted", s.Name)}
			}
		}
	}
	return nil
}

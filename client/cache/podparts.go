package cache

import (
	"maps"
	"reflect"
	"slices"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// What a cache holds of a pod is mostly its template's: the pods of one ReplicaSet,
// DaemonSet or Job carry one set of labels, one container spec (command, resources,
// probes), one set of volume sources; each decoded from the wire is a copy of its own
// (issue 26: ~4.5 KB a Running pod decoded, most of it the same in every pod of a
// Deployment). PodParts makes the parts equal to the same owner's last pod one: a
// cached pod then holds its own names, uid, node, addresses and status, and points at
// the parts its siblings hold. Nothing is shared that is not equal (reflect.DeepEqual:
// the same bytes, not only the same meaning, so "1000m" stays "1000m" beside a sibling's
// "1"), so a pod reads as it was decoded; what is shared is read only, as every cached
// object is already (Handler: never modify the objects).

// podPartsSize bounds the owners a PodParts remembers: full, it starts over (what it
// held stays shared by the pods that hold it).
const podPartsSize = 4096

// PodParts shares equal parts between pods of one controller (their controller
// ownerReference's uid) as an informer's transform (SetTransform(parts.Share)), and
// drops their managedFields, which no cache reader reads (as Kubernetes' informers
// can with a transform). One PodParts may serve several informers (the simulated
// nodes of one process): it is safe for concurrent use. Pods without a controller are
// kept as they are, managedFields aside.
type PodParts struct {
	mu     sync.Mutex
	owners map[types.UID]*corev1.Pod // the last pod seen of each controller, shared
}

// NewPodParts makes an empty PodParts.
func NewPodParts() *PodParts { return &PodParts{owners: map[types.UID]*corev1.Pod{}} }

// Share makes pod's parts equal to its controller's last pod's those very parts, and
// returns pod (changed in place: an informer's transform owns what it is given).
func (s *PodParts) Share(pod *corev1.Pod) *corev1.Pod {
	pod.ManagedFields = nil
	ref := metav1.GetControllerOfNoCopy(pod)
	if ref == nil {
		return pod
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.owners[ref.UID]; ok {
		sharePod(pod, t)
	}
	if len(s.owners) >= podPartsSize {
		s.owners = map[types.UID]*corev1.Pod{}
	}
	s.owners[ref.UID] = pod
	return pod
}

// sharePod points p's parts at t's where they are equal.
func sharePod(p, t *corev1.Pod) {
	p.Namespace = same(p.Namespace, t.Namespace)
	p.GenerateName = same(p.GenerateName, t.GenerateName)
	p.Labels = sameMap(p.Labels, t.Labels)
	p.Annotations = sameMap(p.Annotations, t.Annotations)
	if slices.Equal(p.Finalizers, t.Finalizers) {
		p.Finalizers = t.Finalizers
	}
	if reflect.DeepEqual(p.OwnerReferences, t.OwnerReferences) {
		p.OwnerReferences = t.OwnerReferences
	}
	ps, ts := &p.Spec, &t.Spec
	shareContainers(ps.InitContainers, ts.InitContainers)
	shareContainers(ps.Containers, ts.Containers)
	for i := range min(len(ps.Volumes), len(ts.Volumes)) {
		if reflect.DeepEqual(ps.Volumes[i].VolumeSource, ts.Volumes[i].VolumeSource) {
			ps.Volumes[i].VolumeSource = ts.Volumes[i].VolumeSource // its pointers: the source's parts
		}
	}
	sharePtr(&ps.SecurityContext, ts.SecurityContext)
	sharePtr(&ps.Affinity, ts.Affinity)
	sharePtr(&ps.DNSConfig, ts.DNSConfig)
	sharePtr(&ps.TerminationGracePeriodSeconds, ts.TerminationGracePeriodSeconds)
	sharePtr(&ps.EnableServiceLinks, ts.EnableServiceLinks)
	sharePtr(&ps.PreemptionPolicy, ts.PreemptionPolicy)
	sharePtr(&ps.Priority, ts.Priority)
	ps.NodeSelector = sameMap(ps.NodeSelector, ts.NodeSelector)
	ps.Overhead = sameResources(ps.Overhead, ts.Overhead)
	shareSlice(&ps.Tolerations, ts.Tolerations)
	shareSlice(&ps.TopologySpreadConstraints, ts.TopologySpreadConstraints)
	shareSlice(&ps.ImagePullSecrets, ts.ImagePullSecrets)
	shareSlice(&ps.ReadinessGates, ts.ReadinessGates)
	ps.RestartPolicy = same(ps.RestartPolicy, ts.RestartPolicy)
	ps.DNSPolicy = same(ps.DNSPolicy, ts.DNSPolicy)
	ps.ServiceAccountName = same(ps.ServiceAccountName, ts.ServiceAccountName)
	ps.DeprecatedServiceAccount = same(ps.DeprecatedServiceAccount, ts.DeprecatedServiceAccount)
	ps.NodeName = same(ps.NodeName, ts.NodeName)
	ps.SchedulerName = same(ps.SchedulerName, ts.SchedulerName)
	ps.PriorityClassName = same(ps.PriorityClassName, ts.PriorityClassName)
	p.Status.Phase = same(p.Status.Phase, t.Status.Phase)
	p.Status.QOSClass = same(p.Status.QOSClass, t.Status.QOSClass)
	shareConditions(&p.Status.Conditions, t.Status.Conditions)
	sharePtr(&p.Status.StartTime, t.Status.StartTime)
	shareStatuses(p.Status.InitContainerStatuses, t.Status.InitContainerStatuses)
	shareStatuses(p.Status.ContainerStatuses, t.Status.ContainerStatuses)
	p.Status.HostIP = same(p.Status.HostIP, t.Status.HostIP)
	shareSlice(&p.Status.HostIPs, t.Status.HostIPs)
}

// shareContainers points each of cs' parts at the same container's of ts where equal.
// A container as a whole is not (the token volume's mount has a name of each pod's
// own), its command, environment, resources and probes are.
func shareContainers(cs, ts []corev1.Container) {
	for i := range min(len(cs), len(ts)) {
		c, t := &cs[i], &ts[i]
		if c.Name != t.Name {
			continue
		}
		c.Name, c.Image, c.WorkingDir = t.Name, same(c.Image, t.Image), same(c.WorkingDir, t.WorkingDir)
		c.TerminationMessagePath = same(c.TerminationMessagePath, t.TerminationMessagePath)
		c.TerminationMessagePolicy = same(c.TerminationMessagePolicy, t.TerminationMessagePolicy)
		c.ImagePullPolicy = same(c.ImagePullPolicy, t.ImagePullPolicy)
		shareSlice(&c.Command, t.Command)
		shareSlice(&c.Args, t.Args)
		shareSlice(&c.Ports, t.Ports)
		shareSlice(&c.EnvFrom, t.EnvFrom)
		shareSlice(&c.Env, t.Env)
		shareSlice(&c.VolumeMounts, t.VolumeMounts)
		shareSlice(&c.VolumeDevices, t.VolumeDevices)
		shareSlice(&c.ResizePolicy, t.ResizePolicy)
		c.Resources.Limits = sameResources(c.Resources.Limits, t.Resources.Limits)
		c.Resources.Requests = sameResources(c.Resources.Requests, t.Resources.Requests)
		shareSlice(&c.Resources.Claims, t.Resources.Claims)
		sharePtr(&c.LivenessProbe, t.LivenessProbe)
		sharePtr(&c.ReadinessProbe, t.ReadinessProbe)
		sharePtr(&c.StartupProbe, t.StartupProbe)
		sharePtr(&c.Lifecycle, t.Lifecycle)
		sharePtr(&c.SecurityContext, t.SecurityContext)
		sharePtr(&c.RestartPolicy, t.RestartPolicy)
	}
}

// shareConditions makes *cs ts when equal: a pod's conditions differ from its
// siblings' only in their times, which are whole seconds (metav1.Time's encoding), and
// the pods of a ReplicaSet start many a second in a rollout. Otherwise it points their
// strings at ts' and gives *cs the capacity of its length: decoded, five conditions
// hold eight slots (the decoder's appends), 360 bytes of the pod's 1,000 in them.
func shareConditions(cs *[]corev1.PodCondition, ts []corev1.PodCondition) {
	if len(*cs) > 0 && slices.Equal(*cs, ts) {
		*cs = ts
		return
	}
	for i := range min(len(*cs), len(ts)) {
		c, tc := &(*cs)[i], &ts[i]
		c.Type, c.Status = same(c.Type, tc.Type), same(c.Status, tc.Status)
		c.Reason, c.Message = same(c.Reason, tc.Reason), same(c.Message, tc.Message)
	}
	if cap(*cs) > len(*cs) {
		*cs = slices.Clone(*cs)
	}
}

// shareStatuses points each of cs' strings at the same container's of ts where equal.
func shareStatuses(cs, ts []corev1.ContainerStatus) {
	for i := range min(len(cs), len(ts)) {
		c, t := &cs[i], &ts[i]
		c.Name, c.Image, c.ImageID = same(c.Name, t.Name), same(c.Image, t.Image), same(c.ImageID, t.ImageID)
		c.Resources = sameRequirements(c.Resources, t.Resources)
		c.AllocatedResources = sameResources(c.AllocatedResources, t.AllocatedResources)
		shareSlice(&c.VolumeMounts, t.VolumeMounts)
		sharePtr(&c.State.Running, t.State.Running)
		sharePtr(&c.Started, t.Started)
	}
}

func sameRequirements(r, t *corev1.ResourceRequirements) *corev1.ResourceRequirements {
	sharePtr(&r, t)
	return r
}

// same returns t when it equals s: one string, not two.
func same[S ~string](s, t S) S {
	if s == t {
		return t
	}
	return s
}

func sameMap(m, t map[string]string) map[string]string {
	if len(m) > 0 && maps.Equal(m, t) {
		return t
	}
	return m
}

func sameResources(m, t corev1.ResourceList) corev1.ResourceList {
	if len(m) > 0 && len(m) == len(t) && reflect.DeepEqual(m, t) {
		return t
	}
	return m
}

func sharePtr[T any](p **T, t *T) {
	if *p != nil && t != nil && *p != t && reflect.DeepEqual(*p, t) {
		*p = t
	}
}

func shareSlice[T any](s *[]T, t []T) {
	if len(*s) > 0 && len(*s) == len(t) && reflect.DeepEqual(*s, t) {
		*s = t
	}
}

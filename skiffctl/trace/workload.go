package trace

import (
	"context"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
)

// The chain of a DaemonSet or StatefulSet: the same ten steps with its own controller at
// steps 2–5. It writes a ControllerRevision of the template (2–3) and makes the pods
// itself (4–5, its SuccessfulCreate events), with no ReplicaSet between.

// RevisionHashLabel is the label of a ControllerRevision holding its hash (Kubernetes'
// ControllerRevisionHashLabel), which a DaemonSet's pods carry as their
// controller-revision-hash.
const RevisionHashLabel = "controller.kubernetes.io/hash"

// FetchWorkload reads what the trace of a DaemonSet or StatefulSet needs.
func FetchWorkload(ctx context.Context, cs *client.Clientset, kind, namespace, name string) (*Trace, error) {
	var owner kinds.Object
	var err error
	switch kind {
	case kinds.DaemonSet:
		owner, err = cs.DaemonSets.Get(ctx, namespace, name)
	case kinds.StatefulSet:
		owner, err = cs.StatefulSets.Get(ctx, namespace, name)
	default:
		return nil, fmt.Errorf("no trace of %s", kind)
	}
	if err != nil {
		if client.IsNotFound(err) {
			return nil, fmt.Errorf("%s %q not found", strings.ToLower(kind), name)
		}
		return nil, err
	}
	revs, err := cs.ControllerRevisions.List(ctx, namespace, client.ListOptions{})
	if err != nil {
		return nil, err
	}
	pods, err := cs.Pods.List(ctx, namespace, client.ListOptions{})
	if err != nil {
		return nil, err
	}
	events, err := cs.Events.List(ctx, namespace, client.ListOptions{})
	if err != nil {
		return nil, err
	}
	return AssembleWorkload(owner, revs.Items, pods.Items, events.Items), nil
}

// AssembleWorkload builds the trace of the newest revision of owner, a DaemonSet or a
// StatefulSet: its pods are those of that revision (the revision's hash in their
// controller-revision-hash label for a DaemonSet, its name for a StatefulSet).
func AssembleWorkload(owner kinds.Object, revs []*appsv1.ControllerRevision, pods []*corev1.Pod, events []*corev1.Event) *Trace {
	byUID := eventsByObject(events)
	kind := kinds.Of(owner).Kind
	t := &Trace{Kind: kind, Name: owner.GetName(), Namespace: owner.GetNamespace(), Start: owner.GetCreationTimestamp().Time}
	if e := find(byUID[owner.GetUID()], StoredReason, ""); e != nil {
		t.Start = evTime(e)
		if m := storedByRE.FindStringSubmatch(e.Message); m != nil {
			t.StartedBy = m[1]
		}
	}
	var rev *appsv1.ControllerRevision
	for _, r := range revs {
		if owned(r, owner.GetUID()) && (rev == nil || r.Revision > rev.Revision) {
			rev = r
		}
	}
	step1 := Step{Steps: []int{1}, Title: kind + " stored", Component: "apiserver", Object: strings.ToLower(kind) + "/" + owner.GetName(),
		ResourceVersion: owner.GetResourceVersion(), Time: t.Start}
	if rev == nil {
		t.Steps = []Step{step1, missing([]int{2, 3}, "Revision created")}
		return finish(t)
	}
	t.Revision, t.ControllerRevision = rev.Revision, rev.Name
	// No event records the revision's making: its creation time, to the second.
	step23 := Step{Steps: []int{2, 3}, Title: "Revision created", Component: "controller-manager",
		Object: "controllerrevision/" + rev.Name, ResourceVersion: rev.ResourceVersion, Time: rev.CreationTimestamp.Time}
	mine := func(p *corev1.Pod) bool {
		return owned(p, owner.GetUID()) && p.Labels[appsv1.ControllerRevisionHashLabelKey] == rev.Name
	}
	if kind == kinds.DaemonSet {
		hash := rev.Labels[RevisionHashLabel]
		mine = func(p *corev1.Pod) bool {
			return owned(p, owner.GetUID()) && p.Labels[appsv1.DefaultDaemonSetUniqueLabelKey] == hash
		}
	}
	if t.Revision > 1 {
		// A rollout: the chain starts when the controller wrote the new revision.
		t.Start = step23.Time
		step1.Title = fmt.Sprintf("Template changed (rev %d)", t.Revision)
		step1.Time = t.Start
	}
	step23.Time = notBefore(step23.Time, step1.Time)
	t.Steps = []Step{step1, step23}
	summarise(t, step23.Time, pods, mine, byUID[owner.GetUID()], byUID)
	return finish(t)
}

package apiserver

import (
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"

	"github.com/skiffhq/skiff/apiserver/validation"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/store"
)

// admitPriority is Kubernetes' Priority admission on a pod being created: the
// PriorityClass it names (or, naming none, the global default class, whose name it
// then gets) gives it spec.priority and spec.preemptionPolicy; without a class and a
// default its priority is 0. A class that does not exist, or a priority or preemption
// policy of the pod's own that differs from the class's, is refused. Kubernetes puts
// the critical classes within no namespace's reach by default (a ResourceQuota with a
// PriorityClass scopeSelector limits them where an administrator wants), nor does Skiff.
func (r *resources) admitPriority(ctx context.Context, pod *corev1.Pod) error {
	podInfo := kinds.MustLookup(kinds.Pod)
	var pc *schedulingv1.PriorityClass
	var err error
	if pod.Spec.PriorityClassName == "" {
		if pc, err = r.defaultPriorityClass(ctx); err != nil {
			return err
		}
		if pc != nil {
			pod.Spec.PriorityClassName = pc.Name
		}
	} else {
		obj, err := r.lookupClass(ctx, kinds.MustLookup(kinds.PriorityClass), pod.Spec.PriorityClassName)
		if err != nil {
			return err
		}
		if obj == nil {
			return forbidden(podInfo, pod.Name, fmt.Sprintf("no PriorityClass with name %v was found", pod.Spec.PriorityClassName))
		}
		pc = obj.(*schedulingv1.PriorityClass)
	}
	var priority int32
	var policy *corev1.PreemptionPolicy
	if pc != nil {
		priority, policy = pc.Value, pc.PreemptionPolicy
	}
	if pod.Spec.Priority != nil && *pod.Spec.Priority != priority {
		return forbidden(podInfo, pod.Name, fmt.Sprintf("the integer value of priority (%d) must not be provided in pod spec; priority admission controller computed %d from the given PriorityClass name", *pod.Spec.Priority, priority))
	}
	pod.Spec.Priority = &priority
	if policy != nil {
		if pod.Spec.PreemptionPolicy != nil && *pod.Spec.PreemptionPolicy != *policy {
			return forbidden(podInfo, pod.Name, fmt.Sprintf("the string value of PreemptionPolicy (%s) must not be provided in pod spec; priority admission controller computed %s from the given PriorityClass name", *pod.Spec.PreemptionPolicy, *policy))
		}
		p := *policy
		pod.Spec.PreemptionPolicy = &p
	}
	return nil
}

// keepPriority is the Priority admission on a pod's update: the priority and preemption
// policy it set on create stay when the update leaves them out (a PUT of the manifest
// as written); a change is refused by the pod's update validation.
func keepPriority(old, pod *corev1.Pod) {
	if pod.Spec.Priority == nil && old.Spec.Priority != nil {
		pod.Spec.Priority = old.Spec.Priority
	}
	if pod.Spec.PreemptionPolicy == nil && old.Spec.PreemptionPolicy != nil {
		pod.Spec.PreemptionPolicy = old.Spec.PreemptionPolicy
	}
}

// admitPriorityClass is the Priority admission on a class created or updated: only one
// class may be the global default.
func (r *resources) admitPriorityClass(ctx context.Context, pc *schedulingv1.PriorityClass, update bool) error {
	if !pc.GlobalDefault {
		return nil
	}
	dpc, err := r.defaultPriorityClass(ctx)
	if err != nil {
		return err
	}
	if dpc != nil && (!update || dpc.Name != pc.Name) {
		return forbidden(kinds.MustLookup(kinds.PriorityClass), pc.Name, fmt.Sprintf("PriorityClass %v is already marked as default. Only one default can exist", dpc.Name))
	}
	return nil
}

// defaultPriorityClass is the global default class (of several, the lowest value, as
// Kubernetes picks), or nil. It reads this member's state, as Kubernetes' admission
// reads a cache: the list is kept while no class changes.
func (r *resources) defaultPriorityClass(ctx context.Context) (*schedulingv1.PriorityClass, error) {
	info := kinds.MustLookup(kinds.PriorityClass)
	objs, err := r.priorityClasses.list(ctx, r.store, "", false)
	if err != nil {
		return nil, storeError(info, "", err)
	}
	m := &r.defaultPriority
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(objs) > 0 && len(m.from) == len(objs) && &m.from[0] == &objs[0] {
		return m.chosen, nil // the same cached list: the same choice
	}
	var chosen *schedulingv1.PriorityClass
	for i := range objs {
		obj, err := decode(info, &objs[i])
		if err != nil {
			return nil, storeError(info, objs[i].Key.Name, err)
		}
		if pc := obj.(*schedulingv1.PriorityClass); pc.GlobalDefault && (chosen == nil || pc.Value < chosen.Value) {
			chosen = pc
		}
	}
	m.from, m.chosen = objs, chosen
	return chosen, nil
}

// defaultClassMemo is defaultPriorityClass's choice and the cached list it was made
// from (nsLists hands out the same slice until a class changes). The chosen class is
// shared: callers only read it.
type defaultClassMemo struct {
	mu     sync.Mutex
	from   []store.Object
	chosen *schedulingv1.PriorityClass
}

// systemPriorityClass reports whether name is a built-in class, which may not be
// deleted.
func systemPriorityClass(name string) bool {
	for _, pc := range validation.SystemPriorityClasses() {
		if pc.Name == name {
			return true
		}
	}
	return false
}

// ensureSystemPriorityClasses creates Kubernetes' built-in classes unless they exist,
// as its API servers do at start.
func (r *resources) ensureSystemPriorityClasses(ctx context.Context) error {
	for _, pc := range validation.SystemPriorityClasses() {
		if err := r.ensure(ctx, pc); err != nil {
			return fmt.Errorf("create PriorityClass %s: %w", pc.Name, err)
		}
	}
	return nil
}

package endpoints

import (
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// TriggerTimes is Kubernetes' TriggerTimeTracker: it remembers, per Service, the
// trigger times its last sync saw — each pod's (its Ready condition's last transition)
// and the Service's (its creation) — so that a sync can say which changes it is the
// first to reflect.
type TriggerTimes struct {
	mu       sync.Mutex
	services map[string]triggerState
}

type triggerState struct {
	service time.Time
	pods    map[string]time.Time
}

// NewTriggerTimes makes an empty tracker.
func NewTriggerTimes() *TriggerTimes { return &TriggerTimes{services: map[string]triggerState{}} }

// Compute is the endpoints.kubernetes.io/last-change-trigger-time of a sync of Service
// key over pods: a Service not seen before, its creation; else the earliest trigger time
// that changed since the last sync, zero when none did. It remembers what it saw.
func (t *TriggerTimes) Compute(key string, svc *corev1.Service, pods []*corev1.Pod) time.Time {
	t.mu.Lock()
	state, known := t.services[key]
	t.mu.Unlock()
	var earliest time.Time
	earlier := func(at time.Time) {
		if earliest.IsZero() || at.Before(earliest) {
			earliest = at
		}
	}
	next := triggerState{service: svc.CreationTimestamp.Time, pods: map[string]time.Time{}}
	for _, pod := range pods {
		at := podTriggerTime(pod)
		if at.IsZero() {
			continue
		}
		next.pods[pod.Name] = at
		if at.After(state.pods[pod.Name]) {
			earlier(at)
		}
	}
	if next.service.After(state.service) {
		earlier(next.service)
	}
	t.mu.Lock()
	t.services[key] = next
	t.mu.Unlock()
	if !known {
		return svc.CreationTimestamp.Time
	}
	return earliest
}

// Forget drops a Service gone.
func (t *TriggerTimes) Forget(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.services, key)
}

func podTriggerTime(pod *corev1.Pod) time.Time {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.LastTransitionTime.Time
		}
	}
	return time.Time{}
}

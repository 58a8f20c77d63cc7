package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/test/waitfor"
)

// TestPreemption: on a full simulated node, a pod of a Never class waits; a pod of a
// higher class preempts the low-priority pod there (marked DisruptionTarget, reason
// PreemptionByScheduler, with a Preempted Event), is nominated to the node and runs
// there once its victim is gone.
func TestPreemption(t *testing.T) {
	c := startAPIServers(t)
	s := c.servers()
	start(t, "controller-manager", "controller-manager", "--server", s, "--log-level", "warn")
	start(t, "scheduler", "scheduler", "--server", s, "--log-level", "warn")
	start(t, "kubelets", "kubelet", "--server", s, "--runtime", "sim", "--sim-nodes", "1", "--node-name", "sim",
		"--extended-resource", "example.com/dongle=2", "--kubelet-listen", "127.0.0.1:0", "--log-level", "warn")
	waitfor.Condition(t, time.Minute, "a Ready node", func() (bool, string) {
		out, _, err := ctl(s, "get", "nodes", "--no-headers")
		return err == nil && strings.Count(out, " Ready ") == 1, out
	})
	conn, err := client.Dial(c.apis, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cs := client.NewClientset(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	pod := func(name, class string) string {
		return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s}
spec:
  priorityClassName: %s
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: busybox
    resources:
      requests: {example.com/dongle: 2}
      limits: {example.com/dongle: 2}
`, name, class)
	}
	mustCtlStdin(t, s, `apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: low}
value: 10
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: high}
value: 1000
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: high-nonpreempting}
value: 1000
preemptionPolicy: Never
`, "apply", "-f", "-")
	mustCtlStdin(t, s, pod("low", "low"), "apply", "-f", "-")
	waitfor.Condition(t, time.Minute, "the low pod running on sim-0", func() (bool, string) {
		p, err := cs.Pods.Get(ctx, "default", "low")
		return err == nil && p.Spec.NodeName == "sim-0" && p.Status.Phase == corev1.PodRunning, fmt.Sprintf("%v %+v", err, p)
	})

	// Watch the low pod to the end: its last states carry the DisruptionTarget.
	l, err := cs.Pods.List(ctx, "default", client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := cs.Pods.Watch(ctx, "default", client.WatchOptions{ResourceVersion: l.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var disruption *corev1.PodCondition
	nominated := ""
	var watching sync.WaitGroup
	watching.Go(func() {
		for {
			evs, err := w.Next()
			if err != nil {
				return
			}
			for _, ev := range evs {
				if ev.Object != nil && ev.Object.Name == "important" && ev.Object.Status.NominatedNodeName != "" {
					mu.Lock()
					nominated = ev.Object.Status.NominatedNodeName
					mu.Unlock()
				}
				if ev.Object == nil || ev.Object.Name != "low" {
					continue
				}
				for _, cond := range ev.Object.Status.Conditions {
					if cond.Type == corev1.DisruptionTarget {
						mu.Lock()
						disruption = cond.DeepCopy()
						mu.Unlock()
					}
				}
			}
		}
	})
	defer func() { w.Stop(); watching.Wait() }()

	// A pod that may not preempt waits, saying so.
	mustCtlStdin(t, s, pod("polite", "high-nonpreempting"), "apply", "-f", "-")
	waitfor.Condition(t, time.Minute, "the polite pod waiting", func() (bool, string) {
		p, err := cs.Pods.Get(ctx, "default", "polite")
		if err != nil {
			return false, err.Error()
		}
		why := unschedulable(p)
		return strings.Contains(why, "Insufficient example.com/dongle") && strings.Contains(why, "preemption: not eligible due to preemptionPolicy=Never."), why
	})
	if p, err := cs.Pods.Get(ctx, "default", "low"); err != nil || p.DeletionTimestamp != nil {
		t.Fatalf("the Never pod preempted the low one: %v %+v", err, p)
	}

	mustCtlStdin(t, s, pod("important", "high"), "apply", "-f", "-")
	waitfor.Condition(t, 2*time.Minute, "the important pod on sim-0, the low one gone", func() (bool, string) {
		p, err := cs.Pods.Get(ctx, "default", "important")
		if err != nil {
			return false, err.Error()
		}
		_, lowErr := cs.Pods.Get(ctx, "default", "low")
		return p.Spec.NodeName == "sim-0" && client.IsNotFound(lowErr), fmt.Sprintf("important on %q; low: %v", p.Spec.NodeName, lowErr)
	})
	waitfor.Condition(t, 30*time.Second, "the important pod nominated to sim-0 before", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return nominated == "sim-0", nominated
	})
	waitfor.Condition(t, 30*time.Second, "the low pod marked DisruptionTarget", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return disruption != nil && disruption.Status == corev1.ConditionTrue && disruption.Reason == "PreemptionByScheduler" &&
			disruption.Message == "default-scheduler: preempting to accommodate a higher priority pod", fmt.Sprintf("%+v", disruption)
	})
	waitfor.Condition(t, 30*time.Second, "a Preempted event on the low pod", func() (bool, string) {
		out, _, err := ctl(s, "get", "events", "--field-selector", "reason=Preempted", "-o", "json")
		return err == nil && strings.Contains(out, `"name": "low"`) && strings.Contains(out, "Preempted by pod ") && strings.Contains(out, "on node sim-0"), out
	})
	if p, err := cs.Pods.Get(ctx, "default", "polite"); err != nil || p.Spec.NodeName != "" {
		t.Errorf("the polite pod: %v, on %q; want it still waiting", err, p.Spec.NodeName)
	}
}

// Package fakekubelet stands in for kubelets in controller tests: it marks every pod
// Running and Ready as soon as it appears, but for a pod whose first container's image
// is tagged 404 (Kubernetes' e2e tests stall a rollout with webserver:404): that one
// stays Pending, as an image that cannot be pulled leaves it.
package fakekubelet

import (
	"context"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
)

// Run marks pods ready until ctx ends.
func Run(ctx context.Context, cs *client.Clientset) {
	mark := func(p *corev1.Pod) {
		if p.Status.Phase == corev1.PodRunning || p.DeletionTimestamp != nil ||
			len(p.Spec.Containers) > 0 && strings.HasSuffix(p.Spec.Containers[0].Image, ":404") {
			return
		}
		p.Status = corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{
			{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}}}
		cs.Pods.UpdateStatus(ctx, p)
	}
	for ctx.Err() == nil {
		l, err := cs.Pods.List(ctx, "", client.ListOptions{})
		if err != nil {
			continue
		}
		for _, p := range l.Items {
			mark(p)
		}
		w, err := cs.Pods.Watch(ctx, "", client.WatchOptions{ResourceVersion: l.ResourceVersion})
		for err == nil {
			var evs []client.Event[*corev1.Pod]
			if evs, err = w.Next(); err == nil {
				for _, ev := range evs {
					if ev.Type == client.Added || ev.Type == client.Modified {
						mark(ev.Object)
					}
				}
			}
		}
	}
}

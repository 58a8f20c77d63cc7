// Package fakekubelet stands in for kubelets in controller tests: it marks every pod
// Running and Ready as soon as it appears.
package fakekubelet

import (
	"context"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/skiffhq/skiff/client"
	corev1 "github.com/skiffhq/skiff/proto/core/v1"
)

// Run marks pods ready until ctx ends.
func Run(ctx context.Context, cs *client.Clientset) {
	mark := func(p *corev1.Pod) {
		if p.GetStatus().GetPhase() == "Running" || p.GetMetadata().GetDeletionTimestamp() != nil {
			return
		}
		p.Status = &corev1.PodStatus{Phase: "Running", Conditions: []*corev1.PodCondition{{Type: "Ready", Status: "True", LastTransitionTime: timestamppb.Now()}}}
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

package client

import (
	"context"

	"google.golang.org/grpc"
	corev1 "k8s.io/api/core/v1"

	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
)

// EvictOptions tune an eviction.
type EvictOptions struct {
	// UID and ResourceVersion, when set, must match the pod.
	UID, ResourceVersion string
	// GracePeriodSeconds overrides the pod's grace period; 0 deletes at once.
	GracePeriodSeconds *int64
	// DryRun decides without writing anything.
	DryRun bool
}

// Evict deletes a pod unless that would violate its PodDisruptionBudget (Kubernetes'
// eviction subresource) and returns the pod's last state. A refusal by the budget is
// IsTooManyRequests: try again later. Repeated after a lost reply: a repeat finds the pod
// being deleted (and succeeds) or gone (NotFound).
func (c *Conn) Evict(ctx context.Context, namespace, name string, opts EvictOptions) (*corev1.Pod, error) {
	var out *apiv1.Object
	err := c.invokeVia(ctx, toLeader, idempotent, c.opts.AttemptTimeout, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		out, err = apiv1.NewPodsClient(cc).Evict(ctx, &apiv1.EvictRequest{
			Namespace: namespace, Name: name, GracePeriodSeconds: opts.GracePeriodSeconds, DryRun: opts.DryRun,
			Preconditions: &apiv1.Preconditions{Uid: opts.UID, ResourceVersion: opts.ResourceVersion},
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return For[*corev1.Pod](c).unwrap(out)
}

package scheduler

import (
	"context"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/leader"
)

// RunElected runs a scheduler only while this replica holds the Lease
// kube-system/skiff-scheduler, building a fresh one for every term, until ctx ends.
// Bind's compare-and-swap keeps pods bound once even when two replicas briefly overlap.
func RunElected(ctx context.Context, cs *client.Clientset, cfg Config, lc leader.Config, identity string) error {
	if cfg.Logger != nil {
		lc.Logger = cfg.Logger
	}
	lc.Namespace, lc.Name, lc.Identity = "kube-system", "skiff-scheduler", identity
	var runErr error
	lc.OnStartedLeading = func(ctx context.Context) {
		s, err := New(cs, cfg)
		if err != nil {
			runErr = err
			return
		}
		if err := s.Run(ctx); err != nil && ctx.Err() == nil {
			runErr = err
		}
	}
	e, err := leader.New(cs.Leases, lc)
	if err != nil {
		return err
	}
	e.Run(ctx)
	return runErr
}

// Package controllertest runs one controller against a real API server for a test: a
// one-member cluster (test/apicluster), the controller-manager's identity, a shared
// informer factory, and the controller's Run, all stopped when the test ends.
package controllertest

import (
	"context"
	"testing"
	"time"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/test/apicluster"
)

// Start makes the controller with newController on a factory of a new cluster's and
// runs both until the test ends or timeout passes. It returns the controller-manager's
// clientset and the context the controller runs in.
func Start[C interface{ Run(context.Context) error }](t *testing.T, timeout time.Duration,
	newController func(*client.Clientset, *cache.Factory) (C, error)) (*client.Clientset, context.Context) {
	t.Helper()
	c := apicluster.Start(t, 1, apicluster.Options{})
	cs := client.NewClientset(c.Dial(t, "controller-manager", client.Options{}))
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	f := cache.NewFactory(cs, nil)
	ctl, err := newController(cs, f)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	f.Start(ctx)
	done := make(chan struct{})
	go func() { defer close(done); ctl.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; f.Wait() })
	return cs, ctx
}

// Package controllertest runs one controller against a real API server for a test: a
// one-member cluster (test/apicluster), the controller-manager's identity, a shared
// informer factory, and the controller's Run, all stopped when the test ends; and pods'
// status as a kubelet would write it.
package controllertest

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/test/apicluster"
)

// Start makes the controller with newController and cfg (a controller package's New
// and config) on a factory of a new cluster's and runs both until the test ends or
// timeout passes. It returns the controller-manager's clientset and the context the
// controller runs in.
func Start[C interface{ Run(context.Context) error }, Cfg any](t *testing.T, timeout time.Duration,
	newController func(*client.Clientset, *cache.Factory, Cfg) (C, error), cfg Cfg) (*client.Clientset, context.Context) {
	t.Helper()
	c := apicluster.Start(t, 1, apicluster.Options{})
	cs := client.NewClientset(c.Dial(t, "controller-manager", client.Options{}))
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	f := cache.NewFactory(cs, nil)
	ctl, err := newController(cs, f, cfg)
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

// SetPodStatus makes pod namespace/name Running at ip, Ready or not since now, as its
// kubelet would.
func SetPodStatus(t *testing.T, ctx context.Context, cs *client.Clientset, namespace, name, ip string, ready bool) {
	t.Helper()
	p, err := cs.Pods.Get(ctx, namespace, name)
	if err != nil {
		t.Fatal(err)
	}
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	p.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}},
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: st, LastTransitionTime: metav1.Now()}}}
	if _, err := cs.Pods.UpdateStatus(ctx, p); err != nil {
		t.Fatal(err)
	}
}

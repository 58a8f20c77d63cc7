// Package serviceaccount is Kubernetes' ServiceAccounts controller: every namespace has a
// ServiceAccount named "default", made when the namespace appears and made again when it
// is deleted, so that a pod that names no account runs as that one (the API server's
// admission fills it in, and refuses a pod whose account does not exist). A namespace
// being deleted gets none.
package serviceaccount

import (
	"context"
	"fmt"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/controllers/internal/pernamespace"
)

// DefaultName is the account every namespace has, as Kubernetes names it.
const DefaultName = "default"

// Config tunes the controller (workers, and its logger, named "serviceaccount").
// Start from DefaultConfig; New validates it.
type Config = pernamespace.Config

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config { return pernamespace.DefaultConfig() }

// Controller is the ServiceAccounts controller.
type Controller struct {
	ctrl *pernamespace.Controller[*corev1.ServiceAccount]
}

// New makes the controller on the factory's informers; Run starts it.
func New(cs *client.Clientset, f *cache.Factory, cfg Config) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("serviceaccount controller config: %w", err)
	}
	return &Controller{ctrl: pernamespace.New(cs.ServiceAccounts, f, pernamespace.Spec[*corev1.ServiceAccount]{
		Name: DefaultName,
		New: func(ns string) *corev1.ServiceAccount {
			return &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: DefaultName}}
		},
	}, Config{Workers: cfg.Workers, Logger: cfg.Logger.Named("serviceaccount")})}, nil
}

// Run ensures the accounts until ctx ends. The factory must be started.
func (c *Controller) Run(ctx context.Context) error { return c.ctrl.Run(ctx) }

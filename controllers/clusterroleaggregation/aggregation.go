// Package clusterroleaggregation is Kubernetes' ClusterRole aggregation controller: a
// ClusterRole with an aggregationRule gets as its rules the union of the rules of every
// ClusterRole its selectors match (itself excepted), in name order, kept current as
// those roles come, change and go. This is how the default admin, edit and view roles
// grow the permissions other roles labelled rbac.authorization.k8s.io/aggregate-to-*
// add. The controller is level-triggered: any ClusterRole's change queues every
// aggregated role, and each is written only when its union differs from its rules.
package clusterroleaggregation

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/hashicorp/go-hclog"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/client/workqueue"
)

// Config tunes the controller. Start from DefaultConfig; New validates it.
type Config struct {
	// Workers reconcile different aggregated roles concurrently. Default 1.
	Workers int
	// Logger receives the controller's logs, named "clusterrole-aggregation". Default:
	// discarded.
	Logger hclog.Logger
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config { return Config{Workers: 1, Logger: hclog.NewNullLogger()} }

// Validate reports every invalid field.
func (c Config) Validate() error {
	var errs []error
	if c.Workers < 1 {
		errs = append(errs, fmt.Errorf("workers: %d must be at least 1", c.Workers))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("logger: must be set"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("clusterrole aggregation controller config: %w", err)
	}
	return nil
}

// Controller is the aggregation controller.
type Controller struct {
	cfg   Config
	roles *client.Client[*rbacv1.ClusterRole]
	inf   *cache.Informer[*rbacv1.ClusterRole]
	list  *cache.Lister[*rbacv1.ClusterRole]
	queue *workqueue.Queue
	log   hclog.Logger
}

// New makes the controller on the factory's informers; Run starts it.
func New(cs *client.Clientset, f *cache.Factory, cfg Config) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	inf := cache.InformerFor[*rbacv1.ClusterRole](f, "", client.ListOptions{})
	c := &Controller{cfg: cfg, roles: client.For[*rbacv1.ClusterRole](cs.Conn), inf: inf, list: inf.Lister(),
		queue: workqueue.New(workqueue.Config{}), log: cfg.Logger.Named("clusterrole-aggregation")}
	// Any role may be selected by any aggregated one: each change queues them all.
	all := func(*rbacv1.ClusterRole) { c.enqueueAggregated() }
	inf.AddHandler(cache.Handler[*rbacv1.ClusterRole]{OnAdd: all, OnUpdate: func(_, r *rbacv1.ClusterRole) { all(r) }, OnDelete: all})
	return c, nil
}

func (c *Controller) enqueueAggregated() {
	for _, r := range c.list.List(labels.Everything()) {
		if r.AggregationRule != nil {
			c.queue.Add(r.Name)
		}
	}
}

// Run aggregates until ctx ends. The factory must be started.
func (c *Controller) Run(ctx context.Context) error {
	if !cache.WaitForSync(ctx, c.inf) {
		return ctx.Err()
	}
	c.queue.Run(ctx, c.cfg.Workers, c.log, c.Reconcile)
	return nil
}

// Aggregate is the rules of the roles among all that role's aggregation rule selects:
// the roles in name order, each rule once (Kubernetes' order and de-duplication).
func Aggregate(role *rbacv1.ClusterRole, all []*rbacv1.ClusterRole) ([]rbacv1.PolicyRule, error) {
	var selected []*rbacv1.ClusterRole
	seen := map[string]bool{}
	for _, ls := range role.AggregationRule.ClusterRoleSelectors {
		sel, err := metav1.LabelSelectorAsSelector(&ls)
		if err != nil {
			return nil, fmt.Errorf("clusterrole %s: aggregationRule: %w", role.Name, err)
		}
		for _, r := range all {
			if r.Name != role.Name && !seen[r.Name] && sel.Matches(labels.Set(r.Labels)) {
				seen[r.Name] = true
				selected = append(selected, r)
			}
		}
	}
	sort.Slice(selected, func(i, j int) bool { return selected[i].Name < selected[j].Name })
	var rules []rbacv1.PolicyRule
	for _, r := range selected {
		for _, rule := range r.Rules {
			if !containsRule(rules, rule) {
				rules = append(rules, rule)
			}
		}
	}
	return rules, nil
}

func containsRule(rules []rbacv1.PolicyRule, rule rbacv1.PolicyRule) bool {
	for _, r := range rules {
		if equality.Semantic.DeepEqual(r, rule) {
			return true
		}
	}
	return false
}

// Reconcile writes one aggregated role's union of rules, if it differs.
func (c *Controller) Reconcile(ctx context.Context, name string) (time.Duration, error) {
	role, ok := c.list.Get("", name)
	if !ok || role.AggregationRule == nil {
		return 0, nil
	}
	rules, err := Aggregate(role, c.list.List(labels.Everything()))
	if err != nil {
		c.log.Warn("cannot aggregate", "clusterrole", name, "error", err)
		return 0, nil // a bad selector is the user's to fix: the role's next change queues it
	}
	if equality.Semantic.DeepEqual(rules, role.Rules) || len(rules) == 0 && len(role.Rules) == 0 {
		return 0, nil
	}
	next := role.DeepCopy()
	next.Rules = rules
	if _, err := c.roles.Update(ctx, next); err != nil {
		if client.IsNotFound(err) {
			return 0, nil
		}
		return 0, fmt.Errorf("update aggregated clusterrole %s: %w", name, err)
	}
	c.log.Debug("aggregated", "clusterrole", name, "rules", len(rules))
	return 0, nil
}

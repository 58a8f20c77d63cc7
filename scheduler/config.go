package scheduler

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/client/record"
)

// Config tunes a Scheduler. Start from DefaultConfig; Validate runs once in New.
type Config struct {
	// Name is the component name on Events (Event.source.component). Default
	// "default-scheduler", as Kubernetes.
	Name string
	// Host names the machine on Events (Event.source.host), so that a trace shows which
	// replica scheduled a pod. Default os.Hostname().
	Host string
	// Profile lists the filter and score plugins, by name, from Registry.
	// Default DefaultProfile().
	Profile Profile
	// Registry holds the plugins Profile may name. Default DefaultRegistry().
	Registry *Registry

	// PercentageOfNodesToScore bounds how many feasible nodes one scheduling cycle looks
	// for before it stops filtering and scores them: 1–100 percent of the nodes, or 0 for
	// Kubernetes' adaptive default (50% − nodes/125, at least 5%). Whatever the
	// percentage, at least 100 nodes (or all, when fewer) are looked for. Default 0.
	PercentageOfNodesToScore int
	// Parallelism is how many goroutines filter and score nodes in one cycle when
	// there are many. Default 2.
	Parallelism int
	// MaxConcurrentBinds bounds the pods assumed onto a node and not yet bound (and the
	// PodScheduled status writes in flight); when it is reached, the scheduling loop
	// waits. Default 1024.
	MaxConcurrentBinds int
	// BindBatchSize is the most bindings one call carries: the bindings waiting while
	// the calls before them are under way go together, in one BindBatch call that the
	// API servers commit in one store transaction. 1 binds each pod with its own Bind.
	// 1–100; default 100.
	BindBatchSize int
	// BindCalls bounds the Bind and BindBatch calls in flight. Default 4.
	BindCalls int
	// BindTimeout bounds one Bind or BindBatch call, retries included. Default 30s.
	BindTimeout time.Duration

	// PodInitialBackoff and PodMaxBackoff bound the wait before a pod that failed is
	// tried again: initial·2^(attempts−1), capped. Defaults 1s and 10s, as Kubernetes.
	PodInitialBackoff, PodMaxBackoff time.Duration
	// PodMaxUnschedulableDuration is how long an unschedulable pod waits for a cluster
	// event before it is tried again anyway. Default 5m, as Kubernetes.
	PodMaxUnschedulableDuration time.Duration

	// Seed seeds the random tie-breaks between equally scored nodes; 0 picks one at
	// random. Tests set it for reproducible placements.
	Seed uint64

	// Informers, when set, is the process's shared informer factory: the scheduler
	// asks it for its pod and node informers and expects the caller to Start it.
	// When nil, the scheduler makes and runs its own.
	Informers *cache.Factory
	// Recorder, when set, records the scheduler's Events; the caller runs it. When nil,
	// the scheduler makes and runs its own, named Name.
	Recorder *record.Recorder
	Logger   hclog.Logger
	// Now is the scheduler's clock. Default time.Now.
	Now func() time.Time
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	return Config{
		Name:                        "default-scheduler",
		Host:                        host,
		Profile:                     DefaultProfile(),
		Registry:                    DefaultRegistry(),
		PercentageOfNodesToScore:    0,
		Parallelism:                 2,
		MaxConcurrentBinds:          1024,
		BindBatchSize:               client.MaxBindBatch,
		BindCalls:                   4,
		BindTimeout:                 30 * time.Second,
		PodInitialBackoff:           time.Second,
		PodMaxBackoff:               10 * time.Second,
		PodMaxUnschedulableDuration: 5 * time.Minute,
		Logger:                      hclog.NewNullLogger(),
		Now:                         time.Now,
	}
}

// Validate reports every invalid field.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Name == "" {
		bad("name: must not be empty")
	}
	if c.Registry == nil {
		bad("registry: must be set")
	}
	if len(c.Profile.Filters) == 0 {
		bad("profile.filters: at least one filter plugin is required")
	}
	if c.PercentageOfNodesToScore < 0 || c.PercentageOfNodesToScore > 100 {
		bad("percentageOfNodesToScore: %d is not within 0 (adaptive) to 100", c.PercentageOfNodesToScore)
	}
	if c.Parallelism < 1 {
		bad("parallelism: %d must be at least 1", c.Parallelism)
	}
	if c.MaxConcurrentBinds < 1 {
		bad("maxConcurrentBinds: %d must be at least 1", c.MaxConcurrentBinds)
	}
	if c.BindBatchSize < 1 || c.BindBatchSize > client.MaxBindBatch {
		bad("bindBatchSize: %d is not within 1 to %d", c.BindBatchSize, client.MaxBindBatch)
	}
	if c.BindCalls < 1 {
		bad("bindCalls: %d must be at least 1", c.BindCalls)
	}
	if c.BindTimeout <= 0 {
		bad("bindTimeout: %v must be positive", c.BindTimeout)
	}
	if c.PodInitialBackoff <= 0 {
		bad("podInitialBackoff: %v must be positive", c.PodInitialBackoff)
	}
	if c.PodMaxBackoff < c.PodInitialBackoff {
		bad("podMaxBackoff: %v must not be below podInitialBackoff %v", c.PodMaxBackoff, c.PodInitialBackoff)
	}
	if c.PodMaxUnschedulableDuration <= 0 {
		bad("podMaxUnschedulableDuration: %v must be positive", c.PodMaxUnschedulableDuration)
	}
	if c.Logger == nil {
		bad("logger: must be set")
	}
	if c.Now == nil {
		bad("now: must be set")
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("scheduler config: %w", err)
	}
	return nil
}

// minFeasibleNodesToFind is the fewest feasible nodes a cycle looks for (Kubernetes'
// minFeasibleNodesToFind): with fewer nodes than this, every node is checked.
const minFeasibleNodesToFind = 100

// minFeasibleNodesPercentageToFind is the floor of the adaptive percentage.
const minFeasibleNodesPercentageToFind = 5

// numFeasibleNodesToFind is how many feasible nodes a cycle looks for among all, so
// that a cycle's cost stays flat as the cluster grows (Kubernetes' algorithm).
func numFeasibleNodesToFind(percentage, all int) int {
	if all < minFeasibleNodesToFind || percentage >= 100 {
		return all
	}
	if percentage == 0 {
		percentage = 50 - all/125
		if percentage < minFeasibleNodesPercentageToFind {
			percentage = minFeasibleNodesPercentageToFind
		}
	}
	n := all * percentage / 100
	if n < minFeasibleNodesToFind {
		return minFeasibleNodesToFind
	}
	return n
}

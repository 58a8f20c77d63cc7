// Package controllers wires the controllers into the controller-manager: one process (or
// several, of which one leads through a Lease) running the Deployment, ReplicaSet,
// garbage collector and node lifecycle controllers over one shared set of informers.
// Each controller lives in its own package below this one.
package controllers

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/client/leader"
	"github.com/skiffhq/skiff/client/record"
	"github.com/skiffhq/skiff/controllers/deployment"
	"github.com/skiffhq/skiff/controllers/garbagecollector"
	"github.com/skiffhq/skiff/controllers/nodelifecycle"
	"github.com/skiffhq/skiff/controllers/replicaset"
)

// Config configures the controller-manager.
type Config struct {
	// Identity names this replica in leader election and events (default: host name and pid).
	Identity string
	// LeaderElect runs the controllers only while this replica holds the Lease
	// kube-system/skiff-controller-manager. Default true.
	LeaderElect bool
	Leader      leader.Config
	// NodeGracePeriod and PodEvictionTimeout tune the node lifecycle controller.
	NodeGracePeriod    time.Duration
	PodEvictionTimeout time.Duration
	Logger             hclog.Logger
}

// DefaultConfig has Kubernetes' defaults.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	return Config{
		Identity: fmt.Sprintf("%s-%d", host, os.Getpid()), LeaderElect: true, Leader: leader.DefaultConfig(),
		NodeGracePeriod: 40 * time.Second, PodEvictionTimeout: 300 * time.Second,
	}
}

// Run runs the controller-manager until ctx ends.
func Run(ctx context.Context, conn *client.Conn, cfg Config) error {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	log := cfg.Logger.Named("controller-manager")
	cs := client.NewClientset(conn)
	if !cfg.LeaderElect {
		runControllers(ctx, cs, cfg, log)
		return nil
	}
	lc := cfg.Leader
	lc.Namespace, lc.Name, lc.Identity, lc.Logger = "kube-system", "skiff-controller-manager", cfg.Identity, log
	lc.OnStartedLeading = func(ctx context.Context) { runControllers(ctx, cs, cfg, log) }
	lc.OnNewLeader = func(id string) { log.Info("leader observed", "leader", id) }
	e, err := leader.New(cs.Leases, lc)
	if err != nil {
		return err
	}
	e.Run(ctx)
	return nil
}

// runControllers runs every controller until ctx ends and waits for them all to stop.
func runControllers(ctx context.Context, cs *client.Clientset, cfg Config, log hclog.Logger) {
	log.Info("starting controllers", "identity", cfg.Identity)
	f := cache.NewFactory(cs, log)
	rec := record.New(cs.Events, record.Config{Component: "controller-manager", Host: cfg.Identity, Logger: log})
	nl := nodelifecycle.DefaultConfig()
	nl.GracePeriod = cfg.NodeGracePeriod
	nl.DefaultTolerationSeconds = int64(cfg.PodEvictionTimeout / time.Second)
	runs := []func(context.Context) error{
		deployment.New(cs, f, rec, deployment.Config{}, log).Run,
		replicaset.New(cs, f, rec, replicaset.Config{}, log).Run,
		garbagecollector.New(cs, f, garbagecollector.Config{}, log).Run,
		nodelifecycle.New(cs, f, rec, nl, log).Run,
		func(ctx context.Context) error { rec.Run(ctx); return nil },
	}
	f.Start(ctx)
	var wg sync.WaitGroup
	for _, run := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(ctx); err != nil && ctx.Err() == nil {
				log.Error("controller stopped", "error", err)
			}
		}()
	}
	wg.Wait()
	f.Wait()
	log.Info("controllers stopped")
}

// Package controllers wires the controllers into the controller-manager: one process (or
// several, of which one leads through a Lease) running the Deployment, ReplicaSet,
// replication (ReplicationControllers), garbage collector, node lifecycle, namespace, pod
// garbage collector, disruption, service account, root CA publisher, legacy
// service-account token, EndpointSlice,
// endpoints, EndpointSlice mirroring, node IPAM, service load balancer, DaemonSet,
// StatefulSet, resource quota, ClusterRole aggregation, Job, CronJob and TTL-after-finished
// controllers and the local-path provisioner over one shared set of informers.
// Each controller lives in its own package below this one.
package controllers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/client/leader"
	"github.com/skiffhq/skiff/client/record"
	"github.com/skiffhq/skiff/controllers/clusterroleaggregation"
	"github.com/skiffhq/skiff/controllers/cronjob"
	"github.com/skiffhq/skiff/controllers/csrcleaner"
	"github.com/skiffhq/skiff/controllers/csrsigning"
	"github.com/skiffhq/skiff/controllers/daemonset"
	"github.com/skiffhq/skiff/controllers/deployment"
	"github.com/skiffhq/skiff/controllers/disruption"
	"github.com/skiffhq/skiff/controllers/endpoints"
	"github.com/skiffhq/skiff/controllers/endpointslice"
	"github.com/skiffhq/skiff/controllers/endpointslicemirroring"
	"github.com/skiffhq/skiff/controllers/garbagecollector"
	"github.com/skiffhq/skiff/controllers/job"
	"github.com/skiffhq/skiff/controllers/legacytoken"
	"github.com/skiffhq/skiff/controllers/localpath"
	"github.com/skiffhq/skiff/controllers/namespace"
	"github.com/skiffhq/skiff/controllers/nodeipam"
	"github.com/skiffhq/skiff/controllers/nodelifecycle"
	"github.com/skiffhq/skiff/controllers/podgc"
	"github.com/skiffhq/skiff/controllers/replicaset"
	"github.com/skiffhq/skiff/controllers/resourcequota"
	"github.com/skiffhq/skiff/controllers/rootcacert"
	"github.com/skiffhq/skiff/controllers/serviceaccount"
	"github.com/skiffhq/skiff/controllers/servicelb"
	"github.com/skiffhq/skiff/controllers/statefulset"
	"github.com/skiffhq/skiff/controllers/ttlafterfinished"
	sakeys "github.com/skiffhq/skiff/pki/serviceaccount"
)

// Config configures the controller-manager. Start from DefaultConfig; Run validates it.
type Config struct {
	// Identity names this replica in leader election and events (default: host name and pid).
	Identity string
	// LeaderElect runs the controllers only while this replica holds the Lease
	// kube-system/skiff-controller-manager. Default true.
	LeaderElect bool
	Leader      leader.Config
	// NodeGracePeriod, NodeStartupGracePeriod and PodEvictionTimeout tune the node
	// lifecycle controller: its GracePeriod (40s), StartupGracePeriod (1m) and
	// DefaultTolerationSeconds (300s).
	NodeGracePeriod, NodeStartupGracePeriod time.Duration
	PodEvictionTimeout                      time.Duration
	// NodeEvictionRate, SecondaryNodeEvictionRate, UnhealthyZoneThreshold and
	// LargeClusterSizeThreshold pace the node lifecycle controller's taints of
	// unreachable nodes, zone by zone (its Config's fields of the same names: 0.1 and
	// 0.01 nodes a second, 0.55, 50 nodes).
	NodeEvictionRate, SecondaryNodeEvictionRate float64
	UnhealthyZoneThreshold                      float64
	LargeClusterSizeThreshold                   int
	// TerminatedPodGCThreshold is how many finished pods the pod garbage collector keeps
	// (the oldest beyond it are deleted); 0 keeps them all. Default 12,500.
	TerminatedPodGCThreshold int
	// LocalPathRoot is the directory under which the local-path provisioner makes
	// volumes on the nodes. Default /var/lib/skiff/local-path.
	LocalPathRoot string
	// RootCAFile is the CA bundle file (PEM) published in every namespace as the
	// ConfigMap kube-root-ca.crt, as kube-controller-manager's --root-ca-file, and
	// published again when the file changes (a CA rotation); empty (a cluster without
	// TLS): not published.
	RootCAFile string
	// ClusterSigningCertFile and ClusterSigningKeyFile are the CA that signs the
	// approved CertificateSigningRequests of Kubernetes' signers (csrsigning), as
	// kube-controller-manager's --cluster-signing-cert-file and -key-file; empty: no
	// request is signed. ClusterSigningDuration is the longest it signs for (a year).
	ClusterSigningCertFile, ClusterSigningKeyFile string
	ClusterSigningDuration                        time.Duration
	// ServiceAccountKeyFile is the private key (PEM) that signs the tokens of legacy
	// service-account token Secrets, as kube-controller-manager's
	// --service-account-private-key-file (the API servers' signing key); empty: the
	// legacy token controller does not run.
	ServiceAccountKeyFile string
	// Informers, when set, is the process's shared informer factory (made by
	// NewInformers), which the caller starts and waits for: skiff up's scheduler reads
	// the same caches, so that one process holds each pod once, not once per component
	// (issue 26). Only without LeaderElect: each leadership term's controllers list
	// afresh, from a factory of their own. When nil, the controllers make their own.
	Informers *cache.Factory
	// Logger receives the controller-manager's logs, named "controller-manager", and
	// its controllers'. Default: discarded.
	Logger hclog.Logger
}

// DefaultConfig has Kubernetes' defaults.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	nl := nodelifecycle.DefaultConfig()
	return Config{
		Identity: fmt.Sprintf("%s-%d", host, os.Getpid()), LeaderElect: true, Leader: leader.DefaultConfig(),
		NodeGracePeriod: 40 * time.Second, NodeStartupGracePeriod: nl.StartupGracePeriod, PodEvictionTimeout: 300 * time.Second,
		NodeEvictionRate: nl.NodeEvictionRate, SecondaryNodeEvictionRate: nl.SecondaryNodeEvictionRate,
		UnhealthyZoneThreshold: nl.UnhealthyZoneThreshold, LargeClusterSizeThreshold: nl.LargeClusterSizeThreshold,
		TerminatedPodGCThreshold: podgc.DefaultConfig().TerminatedPodThreshold, LocalPathRoot: localpath.DefaultRoot, Logger: hclog.NewNullLogger(),
		ClusterSigningDuration: csrsigning.DefaultConfig().MaxDuration,
	}
}

// Validate reports every invalid field. The leader election's config is checked when
// the election starts.
func (c Config) Validate() error {
	var errs []error
	if c.NodeGracePeriod <= 0 {
		errs = append(errs, fmt.Errorf("nodeGracePeriod: %v must be positive", c.NodeGracePeriod))
	}
	if c.NodeStartupGracePeriod <= 0 {
		errs = append(errs, fmt.Errorf("nodeStartupGracePeriod: %v must be positive", c.NodeStartupGracePeriod))
	}
	if c.PodEvictionTimeout < time.Second {
		errs = append(errs, fmt.Errorf("podEvictionTimeout: %v must be at least 1s", c.PodEvictionTimeout))
	}
	if c.TerminatedPodGCThreshold < 0 {
		errs = append(errs, fmt.Errorf("terminatedPodGCThreshold: %d must not be negative", c.TerminatedPodGCThreshold))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("logger: must be set"))
	}
	if c.Informers != nil && c.LeaderElect {
		errs = append(errs, errors.New("informers: a shared factory only without leader election"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("controller-manager config: %w", err)
	}
	return nil
}

// Run runs the controller-manager until ctx ends.
func Run(ctx context.Context, conn *client.Conn, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := cfg.Logger.Named("controller-manager")
	cs := client.NewClientset(conn)
	if !cfg.LeaderElect {
		return runControllers(ctx, cs, cfg, log)
	}
	lc := cfg.Leader
	lc.Namespace, lc.Name, lc.Identity, lc.Logger = "kube-system", "skiff-controller-manager", cfg.Identity, log
	lc.OnStartedLeading = func(ctx context.Context) {
		if err := runControllers(ctx, cs, cfg, log); err != nil {
			log.Error("cannot run the controllers", "error", err)
		}
	}
	lc.OnNewLeader = func(id string) { log.Info("leader observed", "leader", id) }
	e, err := leader.New(cs.Leases, lc)
	if err != nil {
		return err
	}
	e.Run(ctx)
	return nil
}

// NewInformers makes the controllers' informer factory on cs: custom resources served
// as the API servers serve them (serveCRDs: the CRDs it sees; false in a process whose
// API server keeps the kinds registry they share, skiff up's, where the controllers'
// view, without the API server's conversion webhooks, would replace the API server's),
// and the one pod informer, which holds every pod of the cluster, holding the pods of
// one controller's template parts once between them (issue 26). Start it after the
// controllers have asked it for their informers.
func NewInformers(cs *client.Clientset, log hclog.Logger, serveCRDs bool) *cache.Factory {
	f := cache.NewFactory(cs, log)
	if serveCRDs {
		cache.ServeCRDs(f)
	}
	cache.InformerFor[*corev1.Pod](f, "", client.ListOptions{}).SetTransform(cache.NewPodParts().Share)
	return f
}

// runControllers runs every controller until ctx ends and waits for them all to stop.
func runControllers(ctx context.Context, cs *client.Clientset, cfg Config, log hclog.Logger) error {
	log.Info("starting controllers", "identity", cfg.Identity)
	f, own := cfg.Informers, cfg.Informers == nil
	if own {
		f = NewInformers(cs, log, true)
	}
	rec := record.New(cs.Events, record.Config{Component: "controller-manager", Host: cfg.Identity, Logger: log})
	dc, rc, gc, nl := deployment.DefaultConfig(), replicaset.DefaultConfig(), garbagecollector.DefaultConfig(), nodelifecycle.DefaultConfig()
	dc.Logger, rc.Logger, gc.Logger, nl.Logger = log, log, log, log
	nl.GracePeriod, nl.StartupGracePeriod = cfg.NodeGracePeriod, cfg.NodeStartupGracePeriod
	nl.DefaultTolerationSeconds = int64(cfg.PodEvictionTimeout / time.Second)
	nl.NodeEvictionRate, nl.SecondaryNodeEvictionRate = cfg.NodeEvictionRate, cfg.SecondaryNodeEvictionRate
	nl.UnhealthyZoneThreshold, nl.LargeClusterSizeThreshold = cfg.UnhealthyZoneThreshold, cfg.LargeClusterSizeThreshold
	d, err := deployment.New(cs, f, rec, dc)
	if err != nil {
		return err
	}
	r, err := replicaset.New(cs, f, rec, rc)
	if err != nil {
		return err
	}
	// The replication controller: the ReplicaSet controller, of ReplicationControllers.
	rcs, err := replicaset.NewReplicationController(cs, f, rec, rc)
	if err != nil {
		return err
	}
	g, err := garbagecollector.New(cs, f, rec, gc)
	if err != nil {
		return err
	}
	n, err := nodelifecycle.New(cs, f, rec, nl)
	if err != nil {
		return err
	}
	nc, pc, dic := namespace.DefaultConfig(), podgc.DefaultConfig(), disruption.DefaultConfig()
	nc.Logger, pc.Logger, dic.Logger = log, log, log
	pc.TerminatedPodThreshold = cfg.TerminatedPodGCThreshold
	ns, err := namespace.New(cs, f, nc)
	if err != nil {
		return err
	}
	pgc, err := podgc.New(cs, f, pc)
	if err != nil {
		return err
	}
	dis, err := disruption.New(cs, f, rec, dic)
	if err != nil {
		return err
	}
	sc := serviceaccount.DefaultConfig()
	sc.Logger = log
	sa, err := serviceaccount.New(cs, f, sc)
	if err != nil {
		return err
	}
	runRootCA := func(context.Context) error { return nil }
	if cfg.RootCAFile == "" {
		log.Warn("no root CA: namespaces get no kube-root-ca.crt config map")
	} else {
		rcc := rootcacert.DefaultConfig()
		rcc.RootCAFile, rcc.Logger = cfg.RootCAFile, log
		rca, err := rootcacert.New(cs, f, rcc)
		if err != nil {
			return err
		}
		runRootCA = rca.Run
	}
	runTokens, err := legacyTokens(cs, f, cfg, log)
	if err != nil {
		return err
	}
	esc := endpointslice.DefaultConfig()
	esc.Logger = log
	es, err := endpointslice.New(cs, f, esc)
	if err != nil {
		return err
	}
	epc, emc := endpoints.DefaultConfig(), endpointslicemirroring.DefaultConfig()
	epc.Logger, emc.Logger = log, log
	ep, err := endpoints.New(cs, f, epc)
	if err != nil {
		return err
	}
	em, err := endpointslicemirroring.New(cs, f, emc)
	if err != nil {
		return err
	}
	ipc := nodeipam.DefaultConfig()
	ipc.Logger = log
	clusterCIDR, err := clusterCIDR(ctx, cs)
	if err != nil {
		return fmt.Errorf("read the cluster's networking: %w", err)
	}
	runIPAM := func(context.Context) error { return nil }
	if ipc.ClusterCIDR = clusterCIDR; ipc.ClusterCIDR == "" {
		// API servers older than the cluster's networking: nodes get no ranges.
		log.Warn("the API servers report no cluster CIDR: the node IPAM controller does not run")
	} else {
		ipam, err := nodeipam.New(cs, f, rec, ipc)
		if err != nil {
			return err
		}
		runIPAM = ipam.Run
	}
	lbc := servicelb.DefaultConfig()
	lbc.Logger = log
	lb, err := servicelb.New(cs, f, lbc)
	if err != nil {
		return err
	}
	dsc := daemonset.DefaultConfig()
	dsc.Logger = log
	ds, err := daemonset.New(cs, f, rec, dsc)
	if err != nil {
		return err
	}
	ssc := statefulset.DefaultConfig()
	ssc.Logger = log
	ss, err := statefulset.New(cs, f, rec, ssc)
	if err != nil {
		return err
	}
	lpc := localpath.DefaultConfig()
	lpc.Logger, lpc.Root = log, cfg.LocalPathRoot
	lp, err := localpath.New(cs, f, rec, lpc)
	if err != nil {
		return err
	}
	qc := resourcequota.DefaultConfig()
	qc.Logger = log
	rq, err := resourcequota.New(cs, f, qc)
	if err != nil {
		return err
	}
	agc := clusterroleaggregation.DefaultConfig()
	agc.Logger = log
	agg, err := clusterroleaggregation.New(cs, f, agc)
	if err != nil {
		return err
	}
	batch, err := batchControllers(cs, f, rec, log)
	if err != nil {
		return err
	}
	certs, err := certificateControllers(cs, f, cfg, log)
	if err != nil {
		return err
	}
	batch = append(batch, certs...)
	runs := []func(context.Context) error{
		d.Run, r.Run, rcs.Run, g.Run, n.Run, ns.Run, pgc.Run, dis.Run, sa.Run, runRootCA, runTokens, es.Run, ep.Run, em.Run, runIPAM, lb.Run, ds.Run, ss.Run, lp.Run, rq.Run, agg.Run,
		func(ctx context.Context) error { rec.Run(ctx); return nil },
	}
	runs = append(runs, batch...)
	// This term's informers list from scratch (linearizable lists, so at a revision no
	// older than the Lease this replica just won), and no controller acts before every one
	// of them has: a controller that ran on a cache still empty of the pods its previous
	// terms made would make them again (a ReplicaSet's, a DaemonSet's), and would write
	// statuses that count none. Nothing is carried over from a previous term: the
	// factory, caches, queues, expectations and recorder are all made again above.
	if own {
		f.Start(ctx)
		defer f.Wait()
	}
	if !f.WaitForSync(ctx) {
		return nil
	}
	log.Info("caches synced; controllers start")
	// A controller that stops on an error is logged; the others go on.
	var wg sync.WaitGroup
	for _, run := range runs {
		wg.Go(func() {
			if err := run(ctx); err != nil && ctx.Err() == nil {
				log.Error("controller stopped", "error", err)
			}
		})
	}
	wg.Wait()
	log.Info("controllers stopped")
	return nil
}

// legacyTokens makes the legacy service-account token controller, when the
// controller-manager has the signing key; its Secrets' ca.crt is the root CA file's.
func legacyTokens(cs *client.Clientset, f *cache.Factory, cfg Config, log hclog.Logger) (func(context.Context) error, error) {
	if cfg.ServiceAccountKeyFile == "" {
		log.Warn("no service-account private key: legacy service-account token secrets get no token")
		return func(context.Context) error { return nil }, nil
	}
	tc := legacytoken.DefaultConfig()
	tc.Logger = log
	var err error
	if tc.SigningKey, err = sakeys.LoadSigningKey(cfg.ServiceAccountKeyFile); err != nil {
		return nil, fmt.Errorf("service-account private key: %w", err)
	}
	if cfg.RootCAFile != "" {
		if tc.RootCA, err = os.ReadFile(cfg.RootCAFile); err != nil {
			return nil, fmt.Errorf("root CA: %w", err)
		}
	}
	c, err := legacytoken.New(cs, f, tc)
	if err != nil {
		return nil, err
	}
	return c.Run, nil
}

// batchControllers makes the Job, CronJob and TTL-after-finished controllers.
func batchControllers(cs *client.Clientset, f *cache.Factory, rec *record.Recorder, log hclog.Logger) ([]func(context.Context) error, error) {
	jc, cc, tc := job.DefaultConfig(), cronjob.DefaultConfig(), ttlafterfinished.DefaultConfig()
	jc.Logger, cc.Logger, tc.Logger = log, log, log
	j, err := job.New(cs, f, rec, jc)
	if err != nil {
		return nil, err
	}
	c, err := cronjob.New(cs, f, rec, cc)
	if err != nil {
		return nil, err
	}
	t, err := ttlafterfinished.New(cs, f, tc)
	if err != nil {
		return nil, err
	}
	return []func(context.Context) error{j.Run, c.Run, t.Run}, nil
}

// certificateControllers makes the CSR cleaner and, with a signing CA, the CSR signer.
func certificateControllers(cs *client.Clientset, f *cache.Factory, cfg Config, log hclog.Logger) ([]func(context.Context) error, error) {
	clc := csrcleaner.DefaultConfig()
	clc.Logger = log
	cleaner, err := csrcleaner.New(cs, f, clc)
	if err != nil {
		return nil, err
	}
	if cfg.ClusterSigningCertFile == "" && cfg.ClusterSigningKeyFile == "" {
		log.Warn("no cluster signing CA: certificate signing requests are not signed")
		return []func(context.Context) error{cleaner.Run}, nil
	}
	sc := csrsigning.DefaultConfig()
	sc.SigningCertFile, sc.SigningKeyFile, sc.MaxDuration, sc.Logger = cfg.ClusterSigningCertFile, cfg.ClusterSigningKeyFile, cfg.ClusterSigningDuration, log
	signer, err := csrsigning.New(cs, f, sc)
	if err != nil {
		return nil, err
	}
	return []func(context.Context) error{cleaner.Run, signer.Run}, nil
}

// networkingWait is how long the controller-manager waits for the API servers to
// report the cluster's networking: a cluster bootstrapping (skiff up starts its
// components with its API server) records it moments after it serves.
const networkingWait = 30 * time.Second

// clusterCIDR is the cluster's pod range as the API servers report it; "" from API
// servers that report none within networkingWait (older than the cluster's networking).
func clusterCIDR(ctx context.Context, cs *client.Clientset) (string, error) {
	deadline := time.Now().Add(networkingWait)
	wait := 100 * time.Millisecond
	for {
		st, err := cs.Conn.ClusterStatus(ctx)
		if err != nil {
			return "", err
		}
		if c := st.GetNetworking().GetClusterCidr(); c != "" || time.Now().After(deadline) {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

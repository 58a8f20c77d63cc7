package kubelet

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/client/workqueue"
	"github.com/skiffhq/skiff/internal/workers"
	"github.com/skiffhq/skiff/kinds"
)

// Version is the kubelet version a node reports (nodeInfo.kubeletVersion).
const Version = "v0.1.0-skiff"

// Clock is the time the kubelet runs on: timestamps, back-off and its periodic loops.
// Tests inject a fake; the default is the wall clock.
type Clock = workqueue.Clock

// Config configures a kubelet. DefaultConfig fills every field; Validate checks it once
// at New.
type Config struct {
	// NodeName is the Node this kubelet registers and runs pods for. Default: the
	// host name, lowercased.
	NodeName string
	// NodeIP is the node's InternalIP, every pod's hostIP, and the podIP of pods that
	// use the host's network (all of them without a PodNetwork). Default: the first non-loopback IPv4 address, else 127.0.0.1.
	NodeIP string
	// Labels are added to the Node's labels (kubernetes.io/hostname, kubernetes.io/os
	// and kubernetes.io/arch are always set), as the kubelet's --node-labels: a zone
	// (topology.kubernetes.io/zone), a disk type, a pool.
	Labels map[string]string
	// Capacity is the node's capacity by resource (cpu, memory, pods, and extended
	// resources such as example.com/dongle, in whole units) as quantities ("4",
	// "8Gi"), as Kubernetes' kubelet configuration writes its resource amounts.
	// Default: the machine's CPU count and memory (/proc/meminfo), and 110 pods.
	// Allocatable equals capacity. Extended resources that someone else added to the
	// Node's status capacity (as Kubernetes' documentation does, with a status patch)
	// are kept there, and in allocatable, as Kubernetes' kubelet keeps them.
	Capacity map[string]string
	// LogPort is the port of the kubelet's log server (LogServer) on NodeIP, published
	// in the Node's status.daemonEndpoints.kubeletEndpoint for the API server to dial;
	// 0 publishes none (the node serves no logs). The kubelet does not listen itself:
	// whoever runs it serves a LogServer there.
	LogPort int

	// LeaseDuration is the node Lease's leaseDurationSeconds (40s); the Lease is
	// renewed every LeaseRenewInterval (10s).
	LeaseDuration, LeaseRenewInterval time.Duration
	// NodeStatusInterval is how often the Node's status is computed, and written if it
	// changed (10s). NodeStatusReportInterval is how often it is written (moving the
	// Ready condition's heartbeat) when it did not change (5m), as Kubernetes'
	// nodeStatusReportFrequency: the Lease is the kubelet's heartbeat.
	NodeStatusInterval, NodeStatusReportInterval time.Duration
	// RelistPeriod is how often the runtime's containers are listed to notice exits
	// (1s); ResyncPeriod how often every pod is reconciled regardless (1m).
	RelistPeriod, ResyncPeriod time.Duration
	// Restart back-off: BackoffInitial (10s) doubling to BackoffMax (5m) between
	// restarts of a crashing container (and pulls of a failing image); a container that
	// ran for BackoffReset (10m) starts again from BackoffInitial.
	BackoffInitial, BackoffMax, BackoffReset time.Duration
	// Workers reconcile pods concurrently (8).
	Workers int
	// ProbeConcurrency is how many probes run at once (16); more that are due wait for
	// one to end, at most its timeout (prober.go).
	ProbeConcurrency int
	// PodNetwork gives pods their own addresses, of the node's podCIDR; nil: every pod
	// has NodeIP.
	PodNetwork PodNetwork
	// Services, when set, is an informer of every Service that the kubelets of one
	// process (simulated nodes) share, run by whoever made it: a thousand simulated
	// nodes then hold one watch of Services, not a thousand. nil: the kubelet runs its
	// own.
	Services *cache.Informer[*corev1.Service]
	// PodParts shares the equal parts of cached pods of one controller (their
	// template's); the kubelets of one process (simulated nodes) share one, so that a
	// Deployment's pods spread over a thousand nodes hold its template once, not once a
	// node. nil: the kubelet makes its own.
	PodParts *cache.PodParts
	// SyncTurns, when set, bounds the pod syncs under way at once across the kubelets
	// that share it (the simulated nodes of one process): each sync takes a turn for its
	// length. Thousands of simulated nodes' syncs at once kept thousands of goroutines
	// runnable on the process's share of the cores, and every node's Lease renewal
	// waited behind all of them (issue 26's 150,000-pod point); a real node's heartbeat
	// has its machine to itself. nil: no bound.
	SyncTurns Turns
	// RootDir holds the pods' directories and volumes (/var/lib/skiff/kubelet), as
	// Kubernetes' --root-dir.
	RootDir string
	// Tmpfs mounts secret, projected and medium Memory volumes on tmpfs (true when
	// running as root, which mounting needs).
	Tmpfs bool
	// ContainerFiles writes the files real containers read — /etc/hosts,
	// /etc/resolv.conf, the termination log — under RootDir (true); simulated nodes
	// have no use for them.
	ContainerFiles bool
	// VolumeFiles writes the content of configMap, secret, downwardAPI and projected
	// volumes (true). Without it (a fleet of simulated nodes, SimulatedFleet) each such
	// volume is still resolved as on a real node — its ConfigMaps and Secrets read, its
	// service-account token requested, a missing source failing the pod the same way —
	// but nothing is written: no container reads it, and writing it is each node's own
	// work on its own machine, not the cluster's.
	VolumeFiles bool
	// LocalPathRoot is the directory of the local-path provisioner's volumes on this
	// node (/var/lib/skiff/local-path, the controller manager's LocalPathRoot): the
	// kubelet removes the directory of a Released one whose reclaimPolicy is Delete,
	// and then the volume (localpath.go). "": none (simulated nodes).
	LocalPathRoot string
	// CSINode has the kubelet create its node's CSINode (storage.k8s.io/v1) once
	// registered, as Kubernetes' kubelet does (true); simulated nodes make none, as
	// kwok's do not.
	CSINode bool
	// ResolvConf is the node's resolver configuration, which pods' /etc/resolv.conf
	// start from (/etc/resolv.conf), as Kubernetes' --resolv-conf; "": none (pods that
	// would use the node's resolvers get nameserver 127.0.0.1 and search ".").
	ResolvConf string
	// ClusterDomain is the cluster's DNS domain, in the names a pod with a subdomain
	// gets in its /etc/hosts and in the search path of a pod that uses the cluster DNS
	// (cluster.local).
	ClusterDomain string
	// ClusterDNS are the cluster DNS servers' IP addresses (Kubernetes' --cluster-dns),
	// the nameservers of pods with dnsPolicy ClusterFirst or ClusterFirstWithHostNet.
	// None: such pods fall back to Default (the node's resolvers), with a
	// MissingClusterDNS event.
	ClusterDNS []string
	// ObjectCacheTTL is how long a ConfigMap or Secret read for a pod is reused (10s):
	// a change reaches a pod's volumes within it and ResyncPeriod.
	ObjectCacheTTL time.Duration
	// Logger receives the kubelet's logs, keyed by "node". Default: discarded.
	Logger hclog.Logger
	// Clock defaults to the wall clock. It is the kubelet's Now, and the timers of its
	// loops and back-offs, which a test's fake clock drives.
	Clock Clock
	// Pool runs the kubelet's periodic steps, its pod workers and its recorder's
	// writers on goroutines kept warm (internal/workers); the simulated nodes of a
	// process share one. Default (nil): New makes the kubelet's own.
	Pool *workers.Pool
}

// Bounds of a kubelet's own Pool: its workers' grown stacks, kept while it is busy.
const (
	poolMaxWorkers = 32
	poolIdle       = 30 * time.Second
)

// DefaultConfig is the configuration for this machine.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	return Config{
		NodeName:                 strings.ToLower(host),
		NodeIP:                   hostIP(),
		Capacity:                 MachineCapacity(),
		LeaseDuration:            40 * time.Second,
		LeaseRenewInterval:       10 * time.Second,
		NodeStatusInterval:       10 * time.Second,
		NodeStatusReportInterval: 5 * time.Minute,
		RelistPeriod:             time.Second,
		ResyncPeriod:             time.Minute,
		BackoffInitial:           10 * time.Second,
		BackoffMax:               5 * time.Minute,
		BackoffReset:             10 * time.Minute,
		Workers:                  8,
		ProbeConcurrency:         16,
		RootDir:                  "/var/lib/skiff/kubelet",
		Tmpfs:                    os.Geteuid() == 0,
		ContainerFiles:           true,
		VolumeFiles:              true,
		LocalPathRoot:            "/var/lib/skiff/local-path",
		CSINode:                  true,
		ResolvConf:               "/etc/resolv.conf",
		ClusterDomain:            "cluster.local",
		ObjectCacheTTL:           10 * time.Second,
		Logger:                   hclog.NewNullLogger(),
		Clock:                    wallClock{},
	}
}

// Simulated is c for a simulated node (the sim runtime): simulated containers read no
// files, so volumes are plain directories (no tmpfs), nothing else is written for them,
// and the host's local-path volumes are no simulated node's. Its volumes' content is
// written, so that the one simulated node of `skiff up --runtime sim` shows it. Several simulated nodes in
// one process each need their own RootDir too: a node's housekeeping removes the pod
// directories under its root that none of its pods owns.
func (c Config) Simulated() Config {
	c.ContainerFiles, c.Tmpfs, c.CSINode = false, false, false
	c.LocalPathRoot = ""
	return c
}

// SimulatedFleet is Simulated for one of many simulated nodes in one process (`skiff
// kubelet --sim-nodes`, the benchmarks' clusters), which stand in for many machines:
// their volumes are resolved but their content is not written (VolumeFiles), as kwok's
// nodes write none. A thousand nodes' volumes written on the one machine they share
// would be a cost no real cluster's control plane bears.
func (c Config) SimulatedFleet() Config {
	c = c.Simulated()
	c.VolumeFiles = false
	return c
}

// Validate reports every invalid field.
func (c Config) Validate() error {
	var errs []error
	if len(validation.IsDNS1123Subdomain(c.NodeName)) > 0 {
		errs = append(errs, fmt.Errorf("nodeName %q: must be a lowercase RFC 1123 subdomain", c.NodeName))
	}
	if net.ParseIP(c.NodeIP) == nil {
		errs = append(errs, fmt.Errorf("nodeIP %q: not an IP address", c.NodeIP))
	}
	for name, q := range c.Capacity {
		errs = append(errs, validateCapacity(corev1.ResourceName(name), q))
	}
	for _, e := range metav1validation.ValidateLabels(c.Labels, field.NewPath("labels")) {
		errs = append(errs, e)
	}
	var reserved []string
	for k := range c.Labels {
		if !kinds.KubeletMaySetNodeLabel(k) {
			reserved = append(reserved, k)
		}
	}
	if len(reserved) > 0 {
		slices.Sort(reserved)
		errs = append(errs, fmt.Errorf("labels %s: a node may not set these on itself: under node-restriction.kubernetes.io/ "+
			"administrators mark nodes (skiffctl label node), and under kubernetes.io/ and k8s.io/ a node may set only "+
			"kubelet.kubernetes.io/, node.kubernetes.io/ and the well-known topology, os, arch and instance-type labels", strings.Join(reserved, ", ")))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"leaseDuration", c.LeaseDuration}, {"leaseRenewInterval", c.LeaseRenewInterval},
		{"nodeStatusInterval", c.NodeStatusInterval}, {"nodeStatusReportInterval", c.NodeStatusReportInterval}, {"relistPeriod", c.RelistPeriod}, {"resyncPeriod", c.ResyncPeriod},
		{"backoffInitial", c.BackoffInitial}, {"backoffMax", c.BackoffMax}, {"backoffReset", c.BackoffReset},
		{"objectCacheTTL", c.ObjectCacheTTL},
	} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s: %v: must be positive", d.name, d.v))
		}
	}
	if c.LogPort < 0 || c.LogPort > 65535 {
		errs = append(errs, fmt.Errorf("logPort %d: must be a port number (0: none)", c.LogPort))
	}
	if c.LeaseRenewInterval >= c.LeaseDuration {
		errs = append(errs, fmt.Errorf("leaseRenewInterval %v: must be shorter than leaseDuration %v", c.LeaseRenewInterval, c.LeaseDuration))
	}
	if c.BackoffMax < c.BackoffInitial {
		errs = append(errs, fmt.Errorf("backoffMax %v: must be at least backoffInitial %v", c.BackoffMax, c.BackoffInitial))
	}
	if c.RootDir == "" {
		errs = append(errs, errors.New("rootDir: required"))
	}
	if c.LocalPathRoot != "" && !filepath.IsAbs(c.LocalPathRoot) {
		errs = append(errs, fmt.Errorf("localPathRoot %q: must be an absolute path", c.LocalPathRoot))
	}
	if len(validation.IsDNS1123Subdomain(c.ClusterDomain)) > 0 {
		errs = append(errs, fmt.Errorf("clusterDomain %q: must be a lowercase RFC 1123 subdomain", c.ClusterDomain))
	}
	for i, ip := range c.ClusterDNS {
		if net.ParseIP(ip) == nil {
			errs = append(errs, fmt.Errorf("clusterDNS[%d] %q: not an IP address", i, ip))
		}
	}
	if c.Workers <= 0 {
		errs = append(errs, fmt.Errorf("workers %d: must be positive", c.Workers))
	}
	if c.ProbeConcurrency <= 0 {
		errs = append(errs, fmt.Errorf("probeConcurrency %d: must be positive", c.ProbeConcurrency))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("logger: required"))
	}
	if c.Clock == nil {
		errs = append(errs, errors.New("clock: required"))
	}
	return errors.Join(errs...)
}

// validateCapacity checks one resource a node advertises: a quantity, and for a
// resource other than the machine's own an extended resource in whole units.
func validateCapacity(name corev1.ResourceName, q string) error {
	v, err := resource.ParseQuantity(q)
	if err != nil {
		return fmt.Errorf("capacity[%s]: %w", name, err)
	}
	switch {
	case name == corev1.ResourceCPU || name == corev1.ResourceMemory || name == corev1.ResourcePods || name == corev1.ResourceEphemeralStorage:
	case !kinds.IsExtendedResourceName(name):
		return fmt.Errorf("capacity[%s]: not an extended resource name (a name in a domain of one's own, such as example.com/dongle)", name)
	case v.MilliValue()%1000 != 0 || v.Sign() < 0:
		return fmt.Errorf("capacity[%s]: %s: an extended resource is a whole, non-negative number", name, q)
	}
	return nil
}

// MachineCapacity is this machine's cpu count, memory (from /proc/meminfo) and 110 pods.
func MachineCapacity() map[string]string {
	c := map[string]string{"cpu": strconv.Itoa(runtime.NumCPU()), "pods": "110"}
	if b, err := memTotal("/proc/meminfo"); err == nil {
		c["memory"] = resource.NewQuantity(b, resource.BinarySI).String()
	}
	return c
}

// resourceList is Capacity as the Node's status holds it. Validate has parsed it.
func (c Config) resourceList() corev1.ResourceList {
	l := make(corev1.ResourceList, len(c.Capacity))
	for name, q := range c.Capacity {
		l[corev1.ResourceName(name)] = resource.MustParse(q)
	}
	return l
}

func memTotal(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		// MemTotal:       16310388 kB
		fields := strings.Fields(s.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse %s: %w", path, err)
			}
			return kb * 1024, nil
		}
	}
	if err := s.Err(); err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	return 0, fmt.Errorf("read %s: no MemTotal", path)
}

func hostIP() string {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
				return n.IP.String()
			}
		}
	}
	return "127.0.0.1"
}

type wallClock struct{}

func (wallClock) Now() time.Time                           { return time.Now() }
func (wallClock) NewTimer(d time.Duration) workqueue.Timer { return wallTimer{time.NewTimer(d)} }

// AfterFunc is time.AfterFunc: the kubelet's periodic work waits on it with no goroutine
// (every).
func (wallClock) AfterFunc(d time.Duration, f func()) workqueue.Timer {
	return wallTimer{time.AfterFunc(d, f)}
}

type wallTimer struct{ t *time.Timer }

func (t wallTimer) C() <-chan time.Time { return t.t.C }
func (t wallTimer) Stop() bool          { return t.t.Stop() }

// Package proxy is the node's service proxy, kube-proxy's nftables mode in small: it
// programs a table of nftables rules (github.com/google/nftables) that translate
// connections to a Service's cluster IP and port, and to its node port on any of the
// node's addresses, to one of its ready endpoints, at random or, with ClientIP session
// affinity, to the endpoint the client used last. It follows Services and
// EndpointSlices through informers and applies each change incrementally: only the
// chains of the Service ports that changed are rewritten, in one nftables transaction.
//
// Terminating endpoints drain: they get no new connection (unless no endpoint is
// ready, when the serving terminating ones do, as in Kubernetes) while the
// connections they have keep their translation (conntrack). Connections to a Service
// port without endpoints are refused (ICMP port unreachable). Traffic from outside the
// cluster CIDR to a cluster IP, to a node port, or from an endpoint to itself
// (hairpin) is masqueraded, and so is pods' traffic leaving the cluster CIDR.
//
// The Local traffic policies are kube-proxy's: internalTrafficPolicy Local sends a
// cluster IP's connections only to the node's own endpoints, externalTrafficPolicy
// Local a node port's, unmasqueraded (the endpoint sees the client); a Service with
// endpoints but none for the policy on the node drops them. The health check node
// port of a LoadBalancer with externalTrafficPolicy Local is served (health.go).
package proxy

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/hashicorp/go-hclog"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
)

// DefaultTable is the nftables table (family ip) the proxy owns.
const DefaultTable = "skiff-proxy"

// batchChains is about how many chains one nftables transaction writes at most (a
// netlink message is bounded by the socket's buffer).
const batchChains = 500

// Config configures a Proxier.
type Config struct {
	// ClusterCIDR is the cluster's pod range: connections to a cluster IP from
	// outside it are masqueraded, and so are pods' connections leaving it. Empty:
	// neither is.
	ClusterCIDR string
	// NodeName is the proxy's node: its endpoints are the local ones of Services
	// whose traffic policies are Local.
	NodeName string
	// Table is the nftables table's name (family ip). Default DefaultTable.
	Table string
	// NetNS, when not 0, is a file descriptor of the network namespace to program
	// (tests); 0: the proxy's own.
	NetNS int
	// LocalDNS, when valid, is the address (an IPv4 address of this node, not
	// loopback, and a port) of the cluster DNS this node runs: the kube-dns Service's
	// ports (KubeDNS) are translated to it rather than to the Service's endpoints
	// (localdns.go).
	LocalDNS netip.AddrPort
	// Logger receives the proxy's logs, named "proxy". Default: discarded.
	Logger hclog.Logger
}

// Proxier programs a node's nftables rules for Services.
type Proxier struct {
	mu          sync.Mutex
	cfg         Config
	clusterCIDR netip.Prefix
	conn        *nftables.Conn
	table       *nftables.Table
	sets        map[string]*nftables.Set
	state       map[string]*programmed // by servicePort key; nil: the table must be made anew
	stats       SyncStats
	model       modelCache // the servicePorts of the last Sync, by Service
	health      healthChecks
	// hairpin counts, for each endpoint address, the service ports it is an
	// endpoint of: the addresses in the hairpin set; clusterIPs, for each cluster
	// IP, its service ports: the cluster-ips set.
	hairpin, clusterIPs *countedSet
	// conntrack deletes UDP flows whose translation a sync made stale.
	conntrack conntrackCleaner
	log       hclog.Logger
}

// SyncStats describes the last Sync.
type SyncStats struct {
	// Full is true when the whole table was made anew.
	Full bool
	// ServicePortsWritten is how many service ports' chains were (re)written.
	ServicePortsWritten int
	// ServicePorts is how many service ports are programmed.
	ServicePorts int
}

// New makes a Proxier; nothing is programmed before the first Sync.
func New(cfg Config) (*Proxier, error) {
	if cfg.Table == "" {
		cfg.Table = DefaultTable
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	p := &Proxier{cfg: cfg, log: cfg.Logger.Named("proxy")}
	if cfg.ClusterCIDR != "" {
		pfx, err := netip.ParsePrefix(cfg.ClusterCIDR)
		if err != nil || !pfx.Addr().Is4() {
			return nil, fmt.Errorf("proxy config: cluster CIDR %q is not an IPv4 CIDR", cfg.ClusterCIDR)
		}
		p.clusterCIDR = pfx.Masked()
	}
	if a := cfg.LocalDNS; a.IsValid() && (!a.Addr().Is4() || a.Addr().IsLoopback() || a.Addr().IsUnspecified() || a.Port() == 0) {
		return nil, fmt.Errorf("proxy config: local DNS %s: want a non-loopback IPv4 address of the node and a port (pods cannot reach loopback)", a)
	}
	opts := []nftables.ConnOption{nftables.WithSockOptions(bigBuffers)}
	if cfg.NetNS != 0 {
		opts = append(opts, nftables.WithNetNSFd(cfg.NetNS))
	}
	conn, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("proxy: open nftables: %w", err)
	}
	p.conn = conn
	p.health = healthChecks{netns: cfg.NetNS, log: p.log}
	p.conntrack = conntrackCleaner{netns: cfg.NetNS}
	p.table = &nftables.Table{Name: cfg.Table, Family: nftables.TableFamilyIPv4}
	return p, nil
}

// bigBuffers gives the netlink socket buffers for large transactions (the first sync
// of many Services, whose every message the kernel acknowledges), beyond the system's
// default maximum as root may.
func bigBuffers(c *netlink.Conn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = raw.Control(func(fd uintptr) {
		for _, opt := range []int{unix.SO_SNDBUFFORCE, unix.SO_RCVBUFFORCE} {
			if e := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, opt, socketBuffer); e != nil {
				serr = fmt.Errorf("netlink socket buffer: %w", e)
			}
		}
	})
	if err != nil {
		return err
	}
	return serr
}

// socketBuffer is the netlink socket's send and receive buffer size.
const socketBuffer = 8 << 20

// Stats describes the last Sync.
func (p *Proxier) Stats() SyncStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// Sync programs svcs and eps: the first time (and after a failure) the table is made
// anew; then only the service ports that changed are rewritten.
func (p *Proxier) Sync(svcs []*corev1.Service, eps []*discoveryv1.EndpointSlice) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	want, model := servicePorts(p.cfg.NodeName, svcs, eps, p.model)
	p.model = model
	localDNS(want, p.cfg.LocalDNS)
	full := p.state == nil
	if full {
		// Adding the table first makes its deletion valid when it is not there.
		p.conn.AddTable(p.table)
		p.conn.DelTable(p.table)
		p.conn.AddTable(p.table)
		if err := p.baseChains(); err != nil {
			return err
		}
		p.state = map[string]*programmed{}
		p.hairpin = newCountedSet(p.sets[setHairpin], func(a [4]byte) []byte { return append(a[:], a[:]...) })
		p.clusterIPs = newCountedSet(p.sets[setClusterIPs], func(a [4]byte) []byte { return a[:] })
	}
	next, written, stale, err := p.apply(p.state, want)
	if err == nil {
		err = p.conn.Flush()
	}
	if err != nil {
		p.state = nil // start again from an empty table
		return fmt.Errorf("proxy: program nftables table %s: %w", p.cfg.Table, err)
	}
	p.state = next
	// After the rules: a flow deleted before them would be translated anew by
	// the old ones.
	if err := p.conntrack.clean(stale); err != nil {
		p.log.Warn("deleting stale UDP conntrack entries failed", "error", err)
	}
	p.health.sync(healthChecksOf(want))
	p.stats = SyncStats{Full: full, ServicePortsWritten: written, ServicePorts: len(next)}
	return nil
}

// apply queues the changes from have to want; it returns the new state, how many
// service ports it wrote and the UDP frontends whose conntrack entries may be stale.
func (p *Proxier) apply(have map[string]*programmed, want map[string]*servicePort) (map[string]*programmed, int, []udpFrontend, error) {
	c, t := p.conn, p.table
	next := make(map[string]*programmed, len(want))
	type staleChain struct {
		name     string
		affinity bool
	}
	var staleChains []staleChain // chains to delete once no rule refers to them
	var stale []udpFrontend
	written, pending := 0, 0
	// Gone: their map entries and chains.
	for key, pr := range have {
		if _, ok := want[key]; ok {
			continue
		}
		p.unmap(pr, ipEntryOf(pr.sp), nodePortEntryOf(pr.sp))
		for _, name := range []string{pr.svcChain, pr.extChain, pr.cluChain} {
			if name != "" {
				c.FlushChain(&nftables.Chain{Table: t, Name: name})
				staleChains = append(staleChains, staleChain{name, false})
			}
		}
		for _, name := range pr.endpoints {
			staleChains = append(staleChains, staleChain{name, true})
		}
		p.hairpin.add(pr.sp.endpoints, -1)
		p.clusterIPs.addIP(pr.sp.clusterIP, -1)
		stale = appendStaleUDP(stale, pr.sp, nil)
	}
	var keys []string // of the service ports to look at again
	for k, sp := range want {
		if old := have[k]; old != nil && old.sp == sp {
			next[k] = old // the Service and its slices are the ones programmed
			continue
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, key := range keys {
		sp := want[key]
		old := have[key]
		if old != nil {
			stale = appendStaleUDP(stale, old.sp, sp)
		} else {
			stale = appendStaleUDP(stale, nil, sp)
		}
		fp := sp.fingerprint()
		if old != nil && old.fingerprint == fp {
			kept := *old
			kept.sp = sp
			next[key] = &kept
			continue
		}
		written++
		pr := &programmed{sp: sp, fingerprint: fp, svcChain: chainName("svc", key), endpoints: map[string]string{}}
		svcChain := &nftables.Chain{Table: t, Name: pr.svcChain}
		if old == nil {
			c.AddChain(svcChain)
		} else {
			c.FlushChain(svcChain)
		}
		// Endpoint chains (only with ClientIP affinity, which needs a set per
		// endpoint): kept when their endpoint and the affinity are; made anew otherwise
		// (after the service chain's flush, nothing refers to them).
		for _, ep := range sp.endpoints {
			if sp.affinity == 0 {
				break
			}
			name := chainName("ep", key, fmt.Sprint(sp.proto), ep.String())
			pr.endpoints[ep.String()] = name
			if _, ok := old.endpointChain(ep); ok {
				if old.sp.affinity == sp.affinity {
					continue
				}
				p.dropChain(name, true) // the affinity's timeout changed
			}
			ch := c.AddChain(&nftables.Chain{Table: t, Name: name})
			aff := &nftables.Set{Table: t, Name: affinitySet(name), KeyType: nftables.TypeIPAddr, HasTimeout: true,
				Dynamic: true, Timeout: time.Duration(sp.affinity) * time.Second}
			if err := c.AddSet(aff, nil); err != nil {
				return nil, 0, nil, fmt.Errorf("add the affinity set of %s: %w", key, err)
			}
			p.endpointChainRules(ch, sp, ep, aff)
		}
		if old != nil {
			for epKey, name := range old.endpoints {
				if _, ok := pr.endpoints[epKey]; !ok {
					staleChains = append(staleChains, staleChain{name, true})
				}
			}
		}
		if err := p.serviceChainRules(svcChain, sp, pr.endpoints); err != nil {
			return nil, 0, nil, err
		}
		// The cluster chain: with both traffic policies Local, where the node port
		// sends its connections from pods and from the node.
		if sp.nodePort != 0 && sp.internalLocal && sp.externalLocal {
			pr.cluChain = chainName("clu", key)
			clu := &nftables.Chain{Table: t, Name: pr.cluChain}
			if old == nil || old.cluChain == "" {
				c.AddChain(clu)
			} else {
				c.FlushChain(clu)
			}
			if err := p.dispatchRules(clu, sp, sp.endpoints, pr.endpoints); err != nil {
				return nil, 0, nil, err
			}
		}
		if sp.nodePort != 0 && !sp.plain() {
			pr.extChain = chainName("ext", key)
			ext := &nftables.Chain{Table: t, Name: pr.extChain}
			if old == nil || old.extChain == "" {
				c.AddChain(ext)
			} else {
				c.FlushChain(ext)
			}
			cluster := pr.svcChain
			if pr.cluChain != "" {
				cluster = pr.cluChain
			}
			if err := p.externalChainRules(ext, sp, pr.endpoints, cluster); err != nil {
				return nil, 0, nil, err
			}
		}
		for _, name := range []string{old.extChainName(), old.cluChainName()} {
			if name != "" && name != pr.extChain && name != pr.cluChain {
				c.FlushChain(&nftables.Chain{Table: t, Name: name})
				staleChains = append(staleChains, staleChain{name, false})
			}
		}
		// The dispatch maps' entries change only when their keys or what they send
		// to do (the chains keep their names).
		ipe, npe := ipEntryOf(sp), nodePortEntryOf(sp)
		if old != nil {
			oipe, onpe := ipEntryOf(old.sp), nodePortEntryOf(old.sp)
			o := old.sp
			sameKeys := o.clusterIP == sp.clusterIP && o.proto == sp.proto && o.port == sp.port && o.nodePort == sp.nodePort
			if sameKeys && oipe == ipe && onpe == npe && old.extChain == pr.extChain {
				ipe, npe = entryKept, entryKept
			} else {
				p.unmap(old, oipe, onpe)
			}
		}
		if err := p.mapPort(pr, ipe, npe); err != nil {
			return nil, 0, nil, err
		}
		if old != nil {
			p.hairpin.add(old.sp.endpoints, -1)
			p.clusterIPs.addIP(old.sp.clusterIP, -1)
		}
		p.hairpin.add(sp.endpoints, +1)
		p.clusterIPs.addIP(sp.clusterIP, +1)
		next[key] = pr
		// A netlink message has a bounded size: a sync of many service ports (the
		// first) is committed in several transactions, each leaving a consistent
		// table (a port is mapped in the transaction that makes its chains).
		if pending += 1 + len(sp.endpoints); pending >= batchChains {
			if err := c.Flush(); err != nil {
				return nil, 0, nil, err
			}
			pending = 0
		}
	}
	for _, ch := range staleChains {
		p.dropChain(ch.name, ch.affinity)
	}
	if err := p.hairpin.sync(p.conn); err != nil {
		return nil, 0, nil, err
	}
	if err := p.clusterIPs.sync(p.conn); err != nil {
		return nil, 0, nil, err
	}
	return next, written, stale, nil
}

func (pr *programmed) extChainName() string {
	if pr == nil {
		return ""
	}
	return pr.extChain
}

func (pr *programmed) cluChainName() string {
	if pr == nil {
		return ""
	}
	return pr.cluChain
}

// entry is what a dispatch map holds for a cluster IP or node port.
type entry int

const (
	// entryNone: not in the map. A cluster IP is in no-endpoint-services instead
	// (refused); a node port is not translated (the node refuses it).
	entryNone entry = iota
	entryGoto       // to the service port's chain
	entryDrop       // endpoints, but none for the traffic policy: dropped, as kube-proxy does
	entryKept       // (mapPort) unchanged: nothing to do
)

func ipEntryOf(sp *servicePort) entry {
	switch {
	case len(sp.internal()) > 0:
		return entryGoto
	case len(sp.endpoints) > 0:
		return entryDrop
	}
	return entryNone
}

func nodePortEntryOf(sp *servicePort) entry {
	switch {
	case sp.nodePort == 0:
		return entryNone
	case len(sp.external()) > 0:
		return entryGoto
	case len(sp.endpoints) > 0:
		return entryDrop
	}
	return entryNone
}

// endpointChain is the chain of ep in pr (nil: none).
func (pr *programmed) endpointChain(ep endpoint) (string, bool) {
	if pr == nil {
		return "", false
	}
	name, ok := pr.endpoints[ep.String()]
	return name, ok
}

// elementChunk is how many set elements one message adds or deletes at most.
const elementChunk = 500

// dropChain deletes a chain and, with affinity, its endpoint chain's affinity set.
func (p *Proxier) dropChain(name string, affinity bool) {
	ch := &nftables.Chain{Table: p.table, Name: name}
	p.conn.FlushChain(ch)
	p.conn.DelChain(ch)
	if affinity {
		p.conn.DelSet(&nftables.Set{Table: p.table, Name: affinitySet(name)})
	}
}

// unmap removes pr's entries from the dispatch maps.
func (p *Proxier) unmap(pr *programmed, ipe, npe entry) {
	sp := pr.sp
	key := []nftables.SetElement{{Key: keyOf(sp.clusterIP, sp.proto, sp.port)}}
	if ipe == entryNone {
		p.conn.SetDeleteElements(p.sets[setNoEndpoints], key)
	} else {
		p.conn.SetDeleteElements(p.sets[mapServiceIPs], key)
	}
	if npe != entryNone {
		p.conn.SetDeleteElements(p.sets[mapNodePorts], []nftables.SetElement{{Key: nodePortKey(sp.proto, sp.nodePort)}})
		if pr.extChain == "" {
			p.conn.SetDeleteElements(p.sets[setNodePortMasq], []nftables.SetElement{{Key: nodePortKey(sp.proto, sp.nodePort)}})
		}
	}
}

// mapPort adds pr's entries to the dispatch maps.
func (p *Proxier) mapPort(pr *programmed, ipe, npe entry) error {
	sp := pr.sp
	var err error
	key := keyOf(sp.clusterIP, sp.proto, sp.port)
	switch ipe {
	case entryNone:
		err = p.conn.SetAddElements(p.sets[setNoEndpoints], []nftables.SetElement{{Key: key}})
	case entryGoto:
		err = p.conn.SetAddElements(p.sets[mapServiceIPs], []nftables.SetElement{{Key: key, VerdictData: gotoChain(pr.svcChain)}})
	case entryDrop:
		err = p.conn.SetAddElements(p.sets[mapServiceIPs], []nftables.SetElement{{Key: key, VerdictData: &expr.Verdict{Kind: expr.VerdictDrop}}})
	}
	// A node port without endpoints is not translated: the node, listening on no
	// such port, refuses the connection.
	if err == nil && (npe == entryGoto || npe == entryDrop) {
		// With both traffic policies Cluster, straight to the service chain, marked
		// for masquerade by the nodeports chain.
		key := []nftables.SetElement{{Key: nodePortKey(sp.proto, sp.nodePort)}}
		v := gotoChain(pr.extChain)
		if pr.extChain == "" {
			v = gotoChain(pr.svcChain)
			err = p.conn.SetAddElements(p.sets[setNodePortMasq], key)
		}
		if npe == entryDrop {
			v = &expr.Verdict{Kind: expr.VerdictDrop}
		}
		if err == nil {
			err = p.conn.SetAddElements(p.sets[mapNodePorts], []nftables.SetElement{{Key: key[0].Key, VerdictData: v}})
		}
	}
	if err != nil {
		return fmt.Errorf("map service port %s: %w", sp.key, err)
	}
	return nil
}

// Cleanup stops the health check servers and deletes the proxy's table, if it is there.
func (p *Proxier) Cleanup() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.health.close()
	p.conntrack.close()
	p.conn.AddTable(p.table)
	p.conn.DelTable(p.table)
	p.state = nil
	return p.conn.Flush()
}

// Run keeps the rules in sync with the Services and EndpointSlices of f's informers
// until ctx ends (the factory is started by the caller); a failed sync is retried
// with backoff from an empty table.
func (p *Proxier) Run(ctx context.Context, f *cache.Factory) error {
	svcInf := cache.InformerFor[*corev1.Service](f, "", client.ListOptions{})
	sliceInf := cache.InformerFor[*discoveryv1.EndpointSlice](f, "", client.ListOptions{})
	kick := make(chan struct{}, 1)
	poke := func() {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	svcInf.AddHandler(cache.Handler[*corev1.Service]{
		OnAdd: func(*corev1.Service) { poke() }, OnUpdate: func(_, _ *corev1.Service) { poke() }, OnDelete: func(*corev1.Service) { poke() },
	})
	sliceInf.AddHandler(cache.Handler[*discoveryv1.EndpointSlice]{
		OnAdd:    func(*discoveryv1.EndpointSlice) { poke() },
		OnUpdate: func(_, _ *discoveryv1.EndpointSlice) { poke() },
		OnDelete: func(*discoveryv1.EndpointSlice) { poke() },
	})
	if !cache.WaitForSync(ctx, svcInf, sliceInf) {
		return ctx.Err()
	}
	svcs, eps := svcInf.Lister(), sliceInf.Lister()
	backoff := time.Second
	poke()
	for {
		var retry <-chan time.Time
		select {
		case <-ctx.Done():
			return nil
		case <-kick:
		}
		start := time.Now()
		err := p.Sync(svcs.List(labels.Everything()), eps.List(labels.Everything()))
		if err != nil {
			p.log.Error("sync failed; retrying", "error", err, "in", backoff)
			retry = time.After(backoff)
			backoff = min(2*backoff, 30*time.Second)
		} else {
			backoff = time.Second
			st := p.Stats()
			p.log.Debug("synced", "took", time.Since(start), "written", st.ServicePortsWritten, "ports", st.ServicePorts)
		}
		if retry != nil {
			select {
			case <-ctx.Done():
				return nil
			case <-retry:
				poke()
			}
		}
	}
}

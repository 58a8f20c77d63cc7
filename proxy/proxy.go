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
package proxy

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/google/nftables"
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
	// hairpinRefs counts, for each endpoint address, the service ports it is an
	// endpoint of: the addresses in the hairpin set. hairpinBefore holds the counts
	// before the sync being made, of the addresses it changed.
	hairpinRefs, hairpinBefore map[netip.Addr]int
	log                        hclog.Logger
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
	want := servicePorts(svcs, eps)
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
		p.hairpinRefs, p.hairpinBefore = map[netip.Addr]int{}, map[netip.Addr]int{}
	}
	next, written, err := p.apply(p.state, want)
	if err == nil {
		err = p.conn.Flush()
	}
	if err != nil {
		p.state = nil // start again from an empty table
		return fmt.Errorf("proxy: program nftables table %s: %w", p.cfg.Table, err)
	}
	p.state = next
	p.stats = SyncStats{Full: full, ServicePortsWritten: written, ServicePorts: len(next)}
	return nil
}

// apply queues the changes from have to want; it returns the new state.
func (p *Proxier) apply(have map[string]*programmed, want map[string]*servicePort) (map[string]*programmed, int, error) {
	c, t := p.conn, p.table
	next := make(map[string]*programmed, len(want))
	type staleChain struct {
		name     string
		affinity bool
	}
	var stale []staleChain // chains to delete once no rule refers to them
	written, pending := 0, 0
	// Gone: their map entries and chains.
	for key, pr := range have {
		if _, ok := want[key]; ok {
			continue
		}
		p.unmap(pr.sp)
		c.FlushChain(&nftables.Chain{Table: t, Name: pr.svcChain})
		stale = append(stale, staleChain{pr.svcChain, false})
		if pr.extChain != "" {
			c.FlushChain(&nftables.Chain{Table: t, Name: pr.extChain})
			stale = append(stale, staleChain{pr.extChain, false})
		}
		for _, name := range pr.endpoints {
			stale = append(stale, staleChain{name, true})
		}
		p.hairpin(pr.sp.endpoints, -1)
	}
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, key := range keys {
		sp := want[key]
		fp := sp.fingerprint()
		old := have[key]
		if old != nil && old.fingerprint == fp {
			next[key] = old
			continue
		}
		written++
		pr := &programmed{sp: sp, fingerprint: fp, svcChain: chainName("svc", key), endpoints: map[string]string{}}
		svcChain := &nftables.Chain{Table: t, Name: pr.svcChain}
		if old == nil {
			c.AddChain(svcChain)
		} else {
			p.unmap(old.sp)
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
				return nil, 0, fmt.Errorf("add the affinity set of %s: %w", key, err)
			}
			p.endpointChainRules(ch, sp, ep, aff)
		}
		if old != nil {
			for epKey, name := range old.endpoints {
				if _, ok := pr.endpoints[epKey]; !ok {
					stale = append(stale, staleChain{name, true})
				}
			}
		}
		if err := p.serviceChainRules(svcChain, sp, pr.endpoints); err != nil {
			return nil, 0, err
		}
		if sp.nodePort != 0 {
			pr.extChain = chainName("ext", key)
			ext := &nftables.Chain{Table: t, Name: pr.extChain}
			if old == nil || old.extChain == "" {
				c.AddChain(ext)
			} else {
				c.FlushChain(ext)
			}
			c.AddRule(&nftables.Rule{Table: t, Chain: ext, Exprs: append(setMark(), gotoChain(pr.svcChain))})
		} else if old != nil && old.extChain != "" {
			c.FlushChain(&nftables.Chain{Table: t, Name: old.extChain})
			stale = append(stale, staleChain{old.extChain, false})
		}
		if err := p.mapPort(pr); err != nil {
			return nil, 0, err
		}
		if old != nil {
			p.hairpin(old.sp.endpoints, -1)
		}
		p.hairpin(sp.endpoints, +1)
		next[key] = pr
		// A netlink message has a bounded size: a sync of many service ports (the
		// first) is committed in several transactions, each leaving a consistent
		// table (a port is mapped in the transaction that makes its chains).
		if pending += 1 + len(sp.endpoints); pending >= batchChains {
			if err := c.Flush(); err != nil {
				return nil, 0, err
			}
			pending = 0
		}
	}
	for _, ch := range stale {
		p.dropChain(ch.name, ch.affinity)
	}
	if err := p.syncHairpin(); err != nil {
		return nil, 0, err
	}
	return next, written, nil
}

// endpointChain is the chain of ep in pr (nil: none).
func (pr *programmed) endpointChain(ep endpoint) (string, bool) {
	if pr == nil {
		return "", false
	}
	name, ok := pr.endpoints[ep.String()]
	return name, ok
}

// hairpin counts the service ports eps are endpoints of (by delta).
func (p *Proxier) hairpin(eps []endpoint, delta int) {
	for _, ep := range eps {
		if _, ok := p.hairpinBefore[ep.ip]; !ok {
			p.hairpinBefore[ep.ip] = p.hairpinRefs[ep.ip]
		}
		p.hairpinRefs[ep.ip] += delta
	}
}

// syncHairpin queues the changes of the hairpin set: an address enters it with its
// first service port and leaves it with its last.
func (p *Proxier) syncHairpin() error {
	var add, del []nftables.SetElement
	for ip, before := range p.hairpinBefore {
		now := p.hairpinRefs[ip]
		a := ip.As4()
		el := nftables.SetElement{Key: append(a[:], a[:]...)}
		switch {
		case before == 0 && now > 0:
			add = append(add, el)
		case before > 0 && now == 0:
			del = append(del, el)
		}
		if now == 0 {
			delete(p.hairpinRefs, ip)
		}
	}
	clear(p.hairpinBefore)
	// A netlink attribute's length is 16 bits: elements go in chunks.
	for len(del) > 0 {
		n := min(len(del), elementChunk)
		if err := p.conn.SetDeleteElements(p.sets[setHairpin], del[:n]); err != nil {
			return err
		}
		del = del[n:]
	}
	for len(add) > 0 {
		n := min(len(add), elementChunk)
		if err := p.conn.SetAddElements(p.sets[setHairpin], add[:n]); err != nil {
			return err
		}
		add = add[n:]
	}
	return nil
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

// unmap removes sp's entries from the dispatch maps.
func (p *Proxier) unmap(sp *servicePort) {
	if len(sp.endpoints) == 0 {
		p.conn.SetDeleteElements(p.sets[setNoEndpoints], []nftables.SetElement{{Key: keyOf(sp.clusterIP, sp.proto, sp.port)}})
	} else {
		p.conn.SetDeleteElements(p.sets[mapServiceIPs], []nftables.SetElement{{Key: keyOf(sp.clusterIP, sp.proto, sp.port)}})
	}
	if sp.nodePort != 0 && len(sp.endpoints) > 0 {
		p.conn.SetDeleteElements(p.sets[mapNodePorts], []nftables.SetElement{{Key: nodePortKey(sp.proto, sp.nodePort)}})
	}
}

// mapPort adds pr's entries to the dispatch maps.
func (p *Proxier) mapPort(pr *programmed) error {
	sp := pr.sp
	var err error
	if len(sp.endpoints) == 0 {
		err = p.conn.SetAddElements(p.sets[setNoEndpoints], []nftables.SetElement{{Key: keyOf(sp.clusterIP, sp.proto, sp.port)}})
	} else {
		err = p.conn.SetAddElements(p.sets[mapServiceIPs], []nftables.SetElement{{Key: keyOf(sp.clusterIP, sp.proto, sp.port),
			VerdictData: gotoChain(pr.svcChain)}})
	}
	// A node port without endpoints is not translated: the node, listening on no
	// such port, refuses the connection.
	if err == nil && sp.nodePort != 0 && len(sp.endpoints) > 0 {
		err = p.conn.SetAddElements(p.sets[mapNodePorts], []nftables.SetElement{{Key: nodePortKey(sp.proto, sp.nodePort),
			VerdictData: gotoChain(pr.extChain)}})
	}
	if err != nil {
		return fmt.Errorf("map service port %s: %w", sp.key, err)
	}
	return nil
}

// Cleanup deletes the proxy's table, if it is there.
func (p *Proxier) Cleanup() error {
	p.mu.Lock()
	defer p.mu.Unlock()
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

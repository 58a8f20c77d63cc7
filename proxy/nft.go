package proxy

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The table's layout, kube-proxy's nftables mode in small:
//
//	nat-prerouting (dstnat), nat-output (dstnat): jump services
//	services: ip saddr != cluster CIDR, ip daddr . meta l4proto . th dport @service-ips:
//	          mark for masquerade
//	          ip daddr . meta l4proto . th dport vmap @service-ips
//	          fib daddr type local, ip daddr != 127.0.0.0/8: jump nodeports
//	nodeports: meta l4proto . th dport @nodeports-masq: mark for masquerade
//	          meta l4proto . th dport vmap @service-nodeports
//	svc-X (a Service port): [ip saddr @aff-E: goto ep-E, for each endpoint E, with ClientIP affinity]
//	          [numgen random mod N vmap { 0: goto ep-E0, ... }, with affinity]
//	          (without affinity: dnat to numgen random mod N map { 0: E0 . port, ... })
//	ext-X (its node port, when a traffic policy is Local): see externalChainRules
//	clu-X (with both policies Local): an endpoint of any node
//	ep-E (an endpoint of a port with affinity): update @aff-E { ip saddr }; dnat to E
//
// A node port with both traffic policies Cluster maps to its service chain, and is in
// nodeports-masq: no chain of its own, which keeps the kernel's validation of the
// table's jumps (at every commit that adds a rule, a walk through every chain the
// base chains reach) short.
//
//	nat-postrouting (srcnat): ip saddr . ip daddr @hairpin: masquerade
//	          meta mark & 0x4000: clear it, masquerade
//	          ip saddr CLUSTER-CIDR ip daddr != CLUSTER-CIDR: masquerade (pods' egress)
//	filter-input, filter-forward, filter-output (filter - 10):
//	          ip daddr . meta l4proto . th dport @no-endpoint-services: reject
//	filter-forward, filter-output: ct state new, ip daddr @cluster-ips: reject
//
// The hairpin set holds E . E for every endpoint address E: an endpoint reaching
// itself through its Service is masqueraded, so that its answer comes back through the
// node. A Service port without endpoints is not in service-ips but in
// no-endpoint-services, so connections to it are refused at once, as in Kubernetes.
//
// The cluster-ips set holds every cluster IP: a new connection still addressed to
// one after the nat chains (the filter hooks come after them) is to a port or
// protocol its Service does not have, and is refused, as kube-proxy's
// cluster-ips-check does, rather than routed untranslated out of the node (where a
// network that answers port 80 of any address answers it).
const (
	mapServiceIPs   = "service-ips"
	mapNodePorts    = "service-nodeports"
	setNoEndpoints  = "no-endpoint-services"
	setNodePortMasq = "nodeports-masq"
	setHairpin      = "hairpin"
	setClusterIPs   = "cluster-ips"
	chainServices   = "services"
	chainNodePorts  = "nodeports"
	masqueradeMark  = 0x4000
	regAddr         = 1 // NFT_REG_1 (the 32-bit registers 8 to 11)
	regProto        = 9 // NFT_REG32_01
	regPort         = 10
	natPrioDst      = -100
	natPrioSrc      = 100
	filterPrio      = -10
	loopbackNetwork = "127.0.0.0/8"
)

var (
	keyIPProtoPort = nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetProto, nftables.TypeInetService)
	keyProtoPort   = nftables.MustConcatSetType(nftables.TypeInetProto, nftables.TypeInetService)
	keyIPIP        = nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeIPAddr)
	dataIPPort     = nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetService)
)

// loadIPProtoPort loads ip daddr . meta l4proto . th dport.
func loadIPProtoPort() []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: regAddr, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: regProto},
		&expr.Payload{DestRegister: regPort, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
	}
}

func keyOf(ip netip.Addr, proto byte, port uint16) []byte {
	a := ip.As4()
	return []byte{a[0], a[1], a[2], a[3], proto, 0, 0, 0, byte(port >> 8), byte(port), 0, 0}
}

func nodePortKey(proto byte, port uint16) []byte {
	return []byte{proto, 0, 0, 0, byte(port >> 8), byte(port), 0, 0}
}

// setMark sets the masquerade bit of the packet's mark.
func setMark() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binary.NativeEndian.AppendUint32(nil, ^uint32(masqueradeMark)),
			Xor:  binary.NativeEndian.AppendUint32(nil, masqueradeMark)},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
	}
}

// matchSourceNet matches ip saddr in (or, invert, not in) prefix.
func matchSourceNet(p netip.Prefix, invert bool) []expr.Any {
	m := binary.BigEndian.AppendUint32(nil, uint32(uint64(0xffffffff)<<(32-p.Bits())))
	a := p.Masked().Addr().As4()
	op := expr.CmpOpEq
	if invert {
		op = expr.CmpOpNeq
	}
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: m, Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: op, Register: 1, Data: a[:]},
	}
}

// matchDestNet matches ip daddr in (or, invert, not in) prefix.
func matchDestNet(p netip.Prefix, invert bool) []expr.Any {
	e := matchSourceNet(p, invert)
	e[0] = &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4}
	return e
}

// baseChains adds the table's fixed chains, sets and rules (to a table just made).
func (p *Proxier) baseChains() error {
	c, t := p.conn, p.table
	sets := []*nftables.Set{
		{Table: t, Name: mapServiceIPs, IsMap: true, Concatenation: true, KeyType: keyIPProtoPort, DataType: nftables.TypeVerdict},
		{Table: t, Name: mapNodePorts, IsMap: true, Concatenation: true, KeyType: keyProtoPort, DataType: nftables.TypeVerdict},
		{Table: t, Name: setNoEndpoints, Concatenation: true, KeyType: keyIPProtoPort},
		{Table: t, Name: setHairpin, Concatenation: true, KeyType: keyIPIP},
		{Table: t, Name: setNodePortMasq, Concatenation: true, KeyType: keyProtoPort},
		{Table: t, Name: setClusterIPs, KeyType: nftables.TypeIPAddr},
	}
	for _, s := range sets {
		if err := c.AddSet(s, nil); err != nil {
			return fmt.Errorf("add set %s: %w", s.Name, err)
		}
	}
	services := c.AddChain(&nftables.Chain{Name: chainServices, Table: t})
	nodeports := c.AddChain(&nftables.Chain{Name: chainNodePorts, Table: t})
	jumpServices := []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: chainServices}}
	for _, hc := range []struct {
		name string
		hook *nftables.ChainHook
	}{{"nat-prerouting", nftables.ChainHookPrerouting}, {"nat-output", nftables.ChainHookOutput}} {
		ch := c.AddChain(&nftables.Chain{Name: hc.name, Table: t, Type: nftables.ChainTypeNAT, Hooknum: hc.hook,
			Priority: nftables.ChainPriorityRef(natPrioDst)})
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: jumpServices})
	}
	post := c.AddChain(&nftables.Chain{Name: "nat-postrouting", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityRef(natPrioSrc)})
	markBit := binary.NativeEndian.AppendUint32(nil, masqueradeMark)
	// Hairpin: an endpoint reaching itself through its Service.
	c.AddRule(&nftables.Rule{Table: t, Chain: post, Exprs: []expr.Any{
		&expr.Payload{DestRegister: regAddr, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Payload{DestRegister: regProto, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Lookup{SourceRegister: regAddr, SetName: setHairpin, SetID: sets[3].ID},
		&expr.Masq{FullyRandom: true},
	}})
	c.AddRule(&nftables.Rule{Table: t, Chain: post, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: markBit, Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{0, 0, 0, 0}},
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binary.NativeEndian.AppendUint32(nil, ^uint32(masqueradeMark)), Xor: []byte{0, 0, 0, 0}},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
		&expr.Masq{FullyRandom: true},
	}})
	if p.clusterCIDR.IsValid() {
		// Pods' traffic leaving the cluster CIDR goes out as the node's (what
		// flannel's ipMasq does); translated traffic to endpoints stays inside it.
		c.AddRule(&nftables.Rule{Table: t, Chain: post, Exprs: append(append(matchSourceNet(p.clusterCIDR, false),
			matchDestNet(p.clusterCIDR, true)...), &expr.Masq{FullyRandom: true})})
	}
	if p.clusterCIDR.IsValid() {
		// A connection to a cluster IP from outside the cluster CIDR is masqueraded
		// (marked here, once, rather than in every service chain: the fewer rules the
		// chains the maps reach have, the quicker the kernel validates the table).
		c.AddRule(&nftables.Rule{Table: t, Chain: services, Exprs: append(append(append(matchSourceNet(p.clusterCIDR, true),
			loadIPProtoPort()...),
			&expr.Lookup{SourceRegister: regAddr, SetName: mapServiceIPs, SetID: sets[0].ID}),
			setMark()...)})
	}
	c.AddRule(&nftables.Rule{Table: t, Chain: services, Exprs: append(loadIPProtoPort(),
		&expr.Lookup{SourceRegister: regAddr, DestRegister: 0, IsDestRegSet: true, SetName: mapServiceIPs, SetID: sets[0].ID})})
	lo := netip.MustParsePrefix(loopbackNetwork)
	c.AddRule(&nftables.Rule{Table: t, Chain: services, Exprs: []expr.Any{
		&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.NativeEndian.AppendUint32(nil, unix.RTN_LOCAL)},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: []byte{255, 0, 0, 0}, Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: lo.Addr().AsSlice()},
		&expr.Verdict{Kind: expr.VerdictJump, Chain: chainNodePorts},
	}})
	c.AddRule(&nftables.Rule{Table: t, Chain: nodeports, Exprs: append([]expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: regAddr},
		&expr.Payload{DestRegister: regAddr + 8, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: regAddr, SetName: setNodePortMasq, SetID: sets[4].ID},
	}, setMark()...)})
	c.AddRule(&nftables.Rule{Table: t, Chain: nodeports, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: regAddr},
		&expr.Payload{DestRegister: regAddr + 8, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: regAddr, DestRegister: 0, IsDestRegSet: true, SetName: mapNodePorts, SetID: sets[1].ID},
	}})
	reject := append(loadIPProtoPort(),
		&expr.Lookup{SourceRegister: regAddr, SetName: setNoEndpoints, SetID: sets[2].ID},
		&expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: 3}) // port unreachable
	rejectClusterIPs := []expr.Any{
		&expr.Ct{Key: expr.CtKeySTATE, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binary.NativeEndian.AppendUint32(nil, expr.CtStateBitNEW), Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{0, 0, 0, 0}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Lookup{SourceRegister: 1, SetName: setClusterIPs, SetID: sets[5].ID},
		&expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: 3}, // port unreachable
	}
	for _, hc := range []struct {
		name string
		hook *nftables.ChainHook
	}{{"filter-input", nftables.ChainHookInput}, {"filter-forward", nftables.ChainHookForward}, {"filter-output", nftables.ChainHookOutput}} {
		ch := c.AddChain(&nftables.Chain{Name: hc.name, Table: t, Type: nftables.ChainTypeFilter, Hooknum: hc.hook,
			Priority: nftables.ChainPriorityRef(filterPrio)})
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: reject})
		if hc.hook != nftables.ChainHookInput {
			c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: rejectClusterIPs})
		}
	}
	p.sets = map[string]*nftables.Set{}
	for _, s := range sets {
		p.sets[s.Name] = s
	}
	return nil
}

// programmed is what the table holds for one servicePort.
type programmed struct {
	sp          *servicePort
	fingerprint string
	svcChain    string
	extChain    string // "" without a node port, or with both traffic policies Cluster
	// cluChain, with both traffic policies Local and a node port, sends to an
	// endpoint of any node (the node port's connections from pods and the node).
	cluChain  string
	endpoints map[string]string // endpoint chain by endpoint "ip:port"
}

// endpointChainRules writes ep's chain (a Service port with ClientIP affinity): the
// client's address remembered, DNAT.
func (p *Proxier) endpointChainRules(ch *nftables.Chain, sp *servicePort, ep endpoint, affSet *nftables.Set) {
	c, t := p.conn, p.table
	if affSet != nil {
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
			&expr.Dynset{SrcRegKey: 1, SetName: affSet.Name, SetID: affSet.ID, Operation: unix.NFT_DYNSET_OP_UPDATE,
				Timeout: time.Duration(sp.affinity) * time.Second},
		}})
	}
	a := ep.ip.As4()
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{sp.proto}},
		&expr.Immediate{Register: 1, Data: a[:]},
		&expr.Immediate{Register: 2, Data: binary.BigEndian.AppendUint16(nil, ep.port)},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
	}})
}

// serviceChainRules writes sp's service chain (its cluster IP's): an endpoint of the
// internal traffic policy's. (The services chain has marked a connection from
// outside the cluster for masquerade, the nodeports chain or the node port's own
// chain a node port's.)
func (p *Proxier) serviceChainRules(ch *nftables.Chain, sp *servicePort, epChains map[string]string) error {
	return p.dispatchRules(ch, sp, sp.internal(), epChains)
}

// externalChainRules writes the chain of sp's node port, when a traffic policy is
// Local. With externalTrafficPolicy Cluster (and internalTrafficPolicy Local): mark
// for masquerade, an endpoint of any node. With externalTrafficPolicy Local, as kube-proxy: connections from the
// cluster's pods and from the node itself go to an endpoint of any node (the node's
// own masqueraded), others to an endpoint of this node, keeping the client's
// address. cluster is the chain of the first: the service chain or sp's cluster chain.
func (p *Proxier) externalChainRules(ch *nftables.Chain, sp *servicePort, epChains map[string]string, cluster string) error {
	c, t := p.conn, p.table
	if !sp.externalLocal {
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: setMark()})
		return p.dispatchRules(ch, sp, sp.endpoints, epChains)
	}
	if p.clusterCIDR.IsValid() {
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: append(matchSourceNet(p.clusterCIDR, false), gotoChain(cluster))})
	}
	local := []expr.Any{
		&expr.Fib{Register: 1, FlagSADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.NativeEndian.AppendUint32(nil, unix.RTN_LOCAL)},
	}
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: append(append(local, setMark()...), gotoChain(cluster))})
	return p.dispatchRules(ch, sp, sp.local, epChains)
}

// dispatchRules writes the rules sending a connection to one of eps: with ClientIP
// affinity, the one the client used last (its endpoint chain's set), else one at
// random.
func (p *Proxier) dispatchRules(ch *nftables.Chain, sp *servicePort, eps []endpoint, epChains map[string]string) error {
	c, t := p.conn, p.table
	if sp.affinity > 0 {
		for _, ep := range eps {
			name := epChains[ep.String()]
			c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
				&expr.Lookup{SourceRegister: 1, SetName: affinitySet(name)},
				&expr.Verdict{Kind: expr.VerdictGoto, Chain: name},
			}})
		}
	}
	n := len(eps)
	if n == 0 {
		return nil
	}
	if sp.affinity > 0 {
		// An endpoint chain each, for their affinity sets.
		vmap := &nftables.Set{Table: t, Anonymous: true, Constant: true, IsMap: true,
			KeyType: nftables.TypeInteger, DataType: nftables.TypeVerdict}
		elems := make([]nftables.SetElement, n)
		for i, ep := range eps {
			elems[i] = nftables.SetElement{Key: binary.NativeEndian.AppendUint32(nil, uint32(i)),
				VerdictData: &expr.Verdict{Kind: expr.VerdictGoto, Chain: epChains[ep.String()]}}
		}
		if err := c.AddSet(vmap, elems); err != nil {
			return fmt.Errorf("add the endpoints' map of %s: %w", sp.key, err)
		}
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
			&expr.Numgen{Register: 1, Modulus: uint32(n), Type: unix.NFT_NG_RANDOM},
			&expr.Lookup{SourceRegister: 1, DestRegister: 0, IsDestRegSet: true, SetName: vmap.Name, SetID: vmap.ID},
		}})
		return nil
	}
	// Without affinity no chain per endpoint (fewer chains make each transaction's
	// validation quicker): dnat ip addr . port to numgen random mod N map { i: ep_i }.
	dmap := &nftables.Set{Table: t, Anonymous: true, Constant: true, IsMap: true,
		KeyType: nftables.TypeInteger, DataType: dataIPPort}
	elems := make([]nftables.SetElement, n)
	for i, ep := range eps {
		a := ep.ip.As4()
		elems[i] = nftables.SetElement{Key: binary.NativeEndian.AppendUint32(nil, uint32(i)),
			Val: []byte{a[0], a[1], a[2], a[3], byte(ep.port >> 8), byte(ep.port), 0, 0}}
	}
	if err := c.AddSet(dmap, elems); err != nil {
		return fmt.Errorf("add the endpoints' map of %s: %w", sp.key, err)
	}
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
		&expr.Numgen{Register: 1, Modulus: uint32(n), Type: unix.NFT_NG_RANDOM},
		&expr.Lookup{SourceRegister: 1, DestRegister: regAddr, IsDestRegSet: true, SetName: dmap.Name, SetID: dmap.ID},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: regAddr, RegProtoMin: regProto, Specified: true},
	}})
	return nil
}

func affinitySet(epChain string) string { return "aff" + epChain[2:] }

// gotoChain is a vmap element's verdict.
func gotoChain(name string) *expr.Verdict { return &expr.Verdict{Kind: expr.VerdictGoto, Chain: name} }

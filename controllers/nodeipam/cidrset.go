package nodeipam

import (
	"math/bits"
	"net/netip"
)

// cidrSet is the cluster CIDR cut into ranges of one prefix length, with a bit per range
// set while some node has it (Kubernetes' cidrset, but handing out the lowest free range
// as this controller always has). Every range below next is in use, so allocate starts
// there and each range it steps over stays behind it until one is released: O(1)
// amortised. Not safe for concurrent use.
type cidrSet struct {
	base  uint32 // the cluster CIDR's first address
	bits  int    // the ranges' prefix length
	count int    // how many ranges the cluster CIDR holds
	used  []uint64
	inUse int
	next  int // every range below it is in use
	// probes counts the words of used allocate examined (tests).
	probes int
}

func newCIDRSet(cluster netip.Prefix, nodeBits int) *cidrSet {
	count := 1 << (nodeBits - cluster.Bits())
	return &cidrSet{base: addrUint(cluster.Masked().Addr()), bits: nodeBits, count: count, used: make([]uint64, (count+63)/64)}
}

func addrUint(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// nth is the i-th range.
func (s *cidrSet) nth(i int) netip.Prefix {
	a := s.base + uint32(i)<<(32-s.bits)
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}), s.bits)
}

// span is the ranges p covers or lies in, [first, last); empty when p is no IPv4 range
// of the cluster CIDR.
func (s *cidrSet) span(p netip.Prefix) (first, last int) {
	if !p.IsValid() || !p.Addr().Is4() {
		return 0, 0
	}
	p = p.Masked()
	lo := uint64(addrUint(p.Addr()))
	hi := lo + 1<<(32-p.Bits()) // one past p's last address
	shift := 32 - s.bits
	clusterHi := uint64(s.base) + uint64(s.count)<<shift
	lo, hi = max(lo, uint64(s.base)), min(hi, clusterHi)
	if lo >= hi {
		return 0, 0
	}
	return int((lo - uint64(s.base)) >> shift), int((hi - uint64(s.base) + 1<<shift - 1) >> shift)
}

func (s *cidrSet) has(i int) bool { return s.used[i/64]&(1<<(i%64)) != 0 }

// occupy marks every range p covers (or the one it lies in) as in use.
func (s *cidrSet) occupy(p netip.Prefix) {
	first, last := s.span(p)
	for i := first; i < last; i++ {
		if !s.has(i) {
			s.used[i/64] |= 1 << (i % 64)
			s.inUse++
		}
	}
}

// release frees every range p covers (or the one it lies in).
func (s *cidrSet) release(p netip.Prefix) {
	first, last := s.span(p)
	for i := first; i < last; i++ {
		if s.has(i) {
			s.used[i/64] &^= 1 << (i % 64)
			s.inUse--
		}
	}
	if first < last {
		s.next = min(s.next, first)
	}
}

// allocate marks the lowest free range in use and returns it; false when all are in use.
func (s *cidrSet) allocate() (netip.Prefix, bool) {
	if s.inUse == s.count {
		return netip.Prefix{}, false
	}
	// Skip whole words in use, then take the word's lowest free bit (the bits below
	// next are in use).
	for w := s.next / 64; w < len(s.used); w++ {
		s.probes++
		free := ^s.used[w]
		if free == 0 {
			continue
		}
		i := w*64 + bits.TrailingZeros64(free)
		if i >= s.count {
			break
		}
		s.used[w] |= 1 << (i % 64)
		s.inUse++
		s.next = i + 1
		return s.nth(i), true
	}
	return netip.Prefix{}, false
}

package proxy

import (
	"net/netip"

	"github.com/google/nftables"
)

// countedSet is a set of the table whose elements are addresses that service ports
// hold: an address is in the set from its first holder to its last. A sync counts
// the holders it adds and removes (add), then queues the set's changes (sync).
type countedSet struct {
	set *nftables.Set
	key func([4]byte) []byte // the set element of an address
	// refs counts each address's holders; before, the counts before the sync being
	// made, of the addresses it changed.
	refs, before map[netip.Addr]int
}

func newCountedSet(set *nftables.Set, key func([4]byte) []byte) *countedSet {
	return &countedSet{set: set, key: key, refs: map[netip.Addr]int{}, before: map[netip.Addr]int{}}
}

// addIP counts a holder of ip (by delta).
func (s *countedSet) addIP(ip netip.Addr, delta int) {
	if _, ok := s.before[ip]; !ok {
		s.before[ip] = s.refs[ip]
	}
	s.refs[ip] += delta
}

// add counts a holder of each endpoint's address (by delta).
func (s *countedSet) add(eps []endpoint, delta int) {
	for _, ep := range eps {
		s.addIP(ep.ip, delta)
	}
}

// sync queues the set's changes on c: an address enters it with its first holder
// and leaves it with its last.
func (s *countedSet) sync(c *nftables.Conn) error {
	var add, del []nftables.SetElement
	for ip, before := range s.before {
		now := s.refs[ip]
		el := nftables.SetElement{Key: s.key(ip.As4())}
		switch {
		case before == 0 && now > 0:
			add = append(add, el)
		case before > 0 && now == 0:
			del = append(del, el)
		}
		if now == 0 {
			delete(s.refs, ip)
		}
	}
	clear(s.before)
	// A netlink attribute's length is 16 bits: elements go in chunks.
	for len(del) > 0 {
		n := min(len(del), elementChunk)
		if err := c.SetDeleteElements(s.set, del[:n]); err != nil {
			return err
		}
		del = del[n:]
	}
	for len(add) > 0 {
		n := min(len(add), elementChunk)
		if err := c.SetAddElements(s.set, add[:n]); err != nil {
			return err
		}
		add = add[n:]
	}
	return nil
}

package store

import (
	"fmt"

	utilversion "k8s.io/apimachinery/pkg/util/version"
)

// Version skew.
//
// A rolling upgrade replaces members one at a time, so a cluster runs two releases for a
// while; it must never run releases further apart than one minor version, the skew the
// state format, the commands in the log and the peer protocol are kept compatible over
// (as Kubernetes' API servers in an HA control plane). Every peer connection's hello says
// the member's release; a member refuses a peer of another major version or more than one
// minor version away, naming both members and both versions. A peer that says no
// version (a build before the hello carried one) is accepted.

// checkSkew says why a member running mine may not talk to peer running theirs, or nil.
func checkSkew(self, mine, peer, theirs string) error {
	if mine == "" || theirs == "" {
		return nil
	}
	a, errA := utilversion.ParseGeneric(mine)
	b, errB := utilversion.ParseGeneric(theirs)
	if errA != nil || errB != nil {
		return &RefusedError{Reason: fmt.Sprintf("member %s runs Skiff %q and member %s runs %q: a version that does not parse cannot be checked for skew",
			orUnnamed(peer), theirs, self, mine)}
	}
	if a.Major() == b.Major() && minorDistance(a, b) <= 1 {
		return nil
	}
	older, newer := a, b
	if b.LessThan(a) {
		older, newer = b, a
	}
	step := fmt.Sprintf("a v%d.%d release", older.Major(), older.Minor()+1)
	if older.Major() != newer.Major() {
		step = fmt.Sprintf("the last minor release of v%d", older.Major())
	}
	return &RefusedError{Reason: fmt.Sprintf("member %s runs Skiff %s and member %s runs %s: members may be at most one minor version apart; upgrade one minor version at a time (every member to %s first)",
		orUnnamed(peer), theirs, self, mine, step)}
}

func minorDistance(a, b *utilversion.Version) uint {
	if a.Minor() > b.Minor() {
		return a.Minor() - b.Minor()
	}
	return b.Minor() - a.Minor()
}

// memberVersion is the release member runs: this member's own, or what the member said
// on its last peer connection with this one.
func (s *Store) memberVersion(member string) string {
	if member == s.cfg.ID {
		return s.cfg.Version
	}
	if v, ok := s.peerVersions.Load(member); ok {
		return v.(string)
	}
	return ""
}

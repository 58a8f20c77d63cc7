package store

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/test/waitfor"
)

func TestCheckSkew(t *testing.T) {
	for _, tc := range []struct {
		mine, theirs string
		refused      []string // what the refusal names; nil: accepted
	}{
		{"v0.2.0", "v0.2.0", nil},
		{"v0.2.0", "v0.2.7", nil},
		{"v0.2.0", "v0.3.0", nil},
		{"v0.2.0", "v0.1.4", nil},
		{"v1.10.0", "v1.9.3-rc.1", nil},
		{"v0.2.0", "", nil}, // a build that says no version
		{"v0.1.0", "v0.3.0", []string{"v0.1.0", "v0.3.0", "at most one minor version apart", "every member to a v0.2 release first"}},
		{"v0.4.1", "v0.2.0", []string{"v0.4.1", "v0.2.0", "every member to a v0.3 release first"}},
		{"v1.0.0", "v0.9.0", []string{"v1.0.0", "v0.9.0", "the last minor release of v0"}},
		{"v0.2.0", "not-a-version", []string{"not-a-version", "does not parse"}},
	} {
		err := checkSkew("n1", tc.mine, "n2", tc.theirs)
		if tc.refused == nil {
			if err != nil {
				t.Errorf("%s with a peer at %q: %v, want accepted", tc.mine, tc.theirs, err)
			}
			continue
		}
		var re *RefusedError
		if !errors.As(err, &re) {
			t.Errorf("%s with a peer at %q: %v, want a refusal", tc.mine, tc.theirs, err)
			continue
		}
		for _, want := range append(tc.refused, "n1", "n2") {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s with a peer at %q: refusal %q does not say %q", tc.mine, tc.theirs, err, want)
			}
		}
	}
}

// TestVersionSkewRefused: a member more than one minor version (or a major version) away
// from the cluster is refused at join, with both versions named, and nothing changes; a
// member one minor version away joins and replicates (a rolling upgrade's mixed cluster).
func TestVersionSkewRefused(t *testing.T) {
	c := newCluster(t, 1, func(cfg *Config) { cfg.Version = "v0.2.0" })
	ctx := ctxT(t, 90*time.Second)
	leader := c.nodes[c.leader()]
	waitClusterID(t, c)
	if _, err := leader.Txn(ctx, Op{Type: Create, Key: key("before"), Value: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	add := func(name, version string) *Store {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		cfg := testConfig(name, t.TempDir())
		cfg.Listener = ln
		cfg.Logger = c.cfgs[0].Logger
		cfg.Version = version
		c.cfgs = append(c.cfgs, cfg)
		c.nodes = append(c.nodes, nil)
		return c.start(len(c.nodes) - 1)
	}

	for _, v := range []string{"v0.4.0", "v1.2.0"} {
		name := "n-" + strings.ReplaceAll(v, ".", "-")
		s := add(name, v)
		err := leader.AddVoter(ctx, name, s.PeerAddress())
		if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), v) || !strings.Contains(err.Error(), "v0.2.0") {
			t.Fatalf("join of a member at %s into a cluster at v0.2.0: %v; want ErrRefused naming both versions", v, err)
		}
		if st, _ := leader.Status(); len(st.Members) != 1 {
			t.Fatalf("the refused join of %s changed the members: %+v", v, st.Members)
		}
		// And the other way round: the new member refuses the cluster's connections.
		var re *RefusedError
		if _, err := s.mux.dial(ctx, leader.PeerAddress(), protoRaft); !errors.As(err, &re) || !strings.Contains(err.Error(), "one minor version") {
			t.Fatalf("a member at %s dialing one at v0.2.0: %v; want a refusal", v, err)
		}
	}

	older := add("n-old", "v0.1.3")
	if err := leader.AddVoter(ctx, "n-old", older.PeerAddress()); err != nil {
		t.Fatalf("join of a member one minor version older: %v", err)
	}
	waitfor.Condition(t, time.Minute, "the member one minor version older has the data", func() (bool, string) {
		_, _, err := older.GetLocal(key("before"))
		return err == nil, fmt.Sprint(err)
	})
	// The status says which release each member runs.
	st, err := leader.Status()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, m := range st.Members {
		got[m.ID] = m.Version
	}
	if got["n1"] != "v0.2.0" || got["n-old"] != "v0.1.3" || len(got) != 2 {
		t.Fatalf("members' versions in the status: %v", got)
	}
}

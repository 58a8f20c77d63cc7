package up

import (
	"fmt"
	"strings"
	"testing"

	"github.com/skiffhq/skiff/store"
)

func TestLayout(t *testing.T) {
	for _, tc := range []struct {
		listen  string
		members int
		want    string // members then API addresses; or the error
	}{
		{"127.0.0.1:7443", 1, "[{up1 127.0.0.1:7543}] [127.0.0.1:7443]"},
		{"127.0.0.1:7443", 3, "[{up1 127.0.0.1:7543} {up2 127.0.0.1:7544} {up3 127.0.0.1:7545}] [127.0.0.1:7443 127.0.0.1:7444 127.0.0.1:7445]"},
		{"[::1]:9000", 1, "[{up1 [::1]:9100}] [[::1]:9000]"},
		{":7443", 1, "[{up1 :7543}] [:7443]"},
		{"127.0.0.1:65434", 1, "[{up1 127.0.0.1:65534}] [127.0.0.1:65434]"},
		{"127.0.0.1:65432", 3, "[{up1 127.0.0.1:65532} {up2 127.0.0.1:65533} {up3 127.0.0.1:65534}] [127.0.0.1:65432 127.0.0.1:65433 127.0.0.1:65434]"},
		{"127.0.0.1:65433", 3, `--listen "127.0.0.1:65433": need a fixed port below 65400 (Raft uses port+100 and up)`},
		{"127.0.0.1:0", 1, `--listen "127.0.0.1:0": need a fixed port below 65400 (Raft uses port+100 and up)`},
		{"127.0.0.1:http", 1, `--listen "127.0.0.1:http": need a fixed port below 65400 (Raft uses port+100 and up)`},
		{"127.0.0.1", 1, `--listen "127.0.0.1": address 127.0.0.1: missing port in address`},
	} {
		t.Run(fmt.Sprintf("%s×%d", tc.listen, tc.members), func(t *testing.T) {
			l, err := newLayout(tc.listen, tc.members)
			got := fmt.Sprint(l.members, " ", l.apiAddrs)
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
	// Every member of the cluster is told of every other.
	l, _ := newLayout("127.0.0.1:7443", 3)
	if l.host != "127.0.0.1" || len(l.members) != 3 || l.members[2] != (store.Server{ID: "up3", Address: "127.0.0.1:7545"}) {
		t.Fatalf("layout %+v", l)
	}
}

func TestConfig(t *testing.T) {
	valid := DefaultConfig()
	valid.Kubelet.NodeName, valid.Kubelet.NodeIP = "node-1", "127.0.0.1"
	if err := valid.Validate(); err != nil {
		t.Fatalf("the default config is invalid: %v", err)
	}
	def := DefaultConfig()
	for what, got := range map[string]any{"listen": def.Listen, "members": def.Members, "runtime": def.Runtime,
		"containerd": def.ContainerdAddress} {
		want := map[string]any{"listen": "127.0.0.1:7443", "members": 1, "runtime": RuntimeAuto,
			"containerd": "/run/containerd/containerd.sock"}[what]
		if got != want {
			t.Errorf("default %s %v, want %v", what, got, want)
		}
	}
	if !strings.HasSuffix(def.DataDir, "/.skiff/up") || def.Out == nil || def.Logger == nil {
		t.Errorf("defaults: data dir %q, out %v, logger %v", def.DataDir, def.Out, def.Logger)
	}

	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   []string // the error's lines
	}{
		{"two members", func(c *Config) { c.Members = 2 }, []string{"--nodes: Unsupported value: 2: supported values: 1, 3"}},
		{"no port", func(c *Config) { c.Listen = "localhost" }, []string{`--listen "localhost": address localhost: missing port in address`}},
		{"three members too high", func(c *Config) { c.Members, c.Listen = 3, "127.0.0.1:65434" },
			[]string{`--listen "127.0.0.1:65434": need a fixed port below 65400 (Raft uses port+100 and up)`}},
		{"unknown runtime", func(c *Config) { c.Runtime = "docker" },
			[]string{`--runtime: Unsupported value: "docker": supported values: auto, containerd, sim`}},
		{"bad node name", func(c *Config) { c.Kubelet.NodeName = "Node_1" },
			[]string{`kubelet config: nodeName "Node_1": must be a lowercase RFC 1123 subdomain`}},
		{"everything at once", func(c *Config) { c.DataDir, c.Members, c.Runtime, c.Out, c.Logger = "", 0, "", nil, nil },
			[]string{"--data-dir: must be set", "--nodes: Unsupported value: 0: supported values: 1, 3",
				`--runtime: Unsupported value: "": supported values: auto, containerd, sim`, "out: must be set", "logger: must be set"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid
			tc.change(&c)
			err := c.Validate()
			if err == nil || err.Error() != strings.Join(tc.want, "\n") {
				t.Fatalf("error:\n%v\nwant:\n%s", err, strings.Join(tc.want, "\n"))
			}
		})
	}
}

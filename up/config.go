package up

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/hashicorp/go-hclog"

	"github.com/skiffhq/skiff/apiserver/auth"
	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kubelet"
	"github.com/skiffhq/skiff/kubelet/containerd"
	"github.com/skiffhq/skiff/skiffctl/ui"
	"github.com/skiffhq/skiff/store"
)

// The runtimes skiff up can run the pods' containers with.
const (
	// RuntimeAuto is containerd when it can (the machine's, else a private one), else
	// simulated containers, said clearly.
	RuntimeAuto       = "auto"
	RuntimeContainerd = "containerd"
	RuntimeSim        = "sim"
)

// Config configures a skiff up. Start from DefaultConfig; Run validates it.
type Config struct {
	// DataDir keeps everything skiff up makes: each member's store (DataDir/up1, …), the
	// CA, the certificates and the key file that encrypts Secrets at rest (DataDir/pki),
	// a copy of the admin's client config (DataDir/client.config) and a kubeconfig
	// (DataDir/kubeconfig), the containers' output (DataDir/containers) and a private
	// containerd's root and log. Starting again on it continues where it stopped.
	// Default $HOME/.skiff/up.
	DataDir string
	// Listen is the first member's API address, with a fixed port below 65400: member i
	// (up1, up2, …) serves the API on port+i and Raft on port+100+i. Default
	// 127.0.0.1:7443.
	Listen string
	// Members is how many API servers run: 1, or 3 for a local high-availability demo.
	// Default 1.
	Members int
	// Runtime runs the pods' containers: RuntimeAuto (the default), RuntimeContainerd
	// or RuntimeSim.
	Runtime string
	// ContainerdAddress is the machine's containerd's socket; when nothing answers there
	// and containerd is installed, skiff up runs a private containerd (its images and
	// containers in DataDir, its state in /run/skiff). Default
	// /run/containerd/containerd.sock.
	ContainerdAddress string
	// InsecureRegistries are registries (HOST or HOST:PORT) containerd pulls from
	// without TLS verification, falling back to plain HTTP. Loopback registries always
	// are.
	InsecureRegistries []string
	// Network is the pod network the node runs with containerd as root (network.go).
	// Default DefaultNetwork(): all of it.
	Network Network
	// Kubelet configures the node's kubelet. NodeName and NodeIP default to this
	// machine's; its Logger and LogPort are skiff up's to set.
	Kubelet kubelet.Config
	// ClientConfig is the client config skiffctl reads by default
	// (client.DefaultConfigPath()); skiff up writes the admin's credentials there as
	// well as in DataDir ("": only in DataDir), and a kubeconfig for kubectl beside each
	// (~/.skiff/kubeconfig for the default).
	ClientConfig string
	// UIListen is where skiff up serves the live map (skiffctl ui's page, with the
	// admin's credentials): a loopback host:port, or "" for none. When the port is taken
	// (a skiffctl ui already serves there) skiff up says so and runs without it.
	// Default 127.0.0.1:7480, skiffctl ui's.
	UIListen string
	// Out receives what skiff up tells its user: where the API is, what runs the
	// containers, what to try. Default os.Stdout.
	Out io.Writer
	// Logger receives the logs of every member and component. Default: discarded.
	Logger hclog.Logger
	// Tokens are bearer tokens the API servers accept beside certificates (users
	// whose access RBAC grants, as a token file's); nil: none.
	Tokens *auth.Tokens
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	home, _ := os.UserHomeDir()
	return Config{
		DataDir:           filepath.Join(home, ".skiff", "up"),
		Listen:            "127.0.0.1:7443",
		Members:           1,
		Runtime:           RuntimeAuto,
		ContainerdAddress: containerd.DefaultSocket,
		Network:           DefaultNetwork(),
		Kubelet:           kubelet.DefaultConfig(),
		ClientConfig:      client.DefaultConfigPath(),
		UIListen:          ui.DefaultListen,
		Out:               os.Stdout,
		Logger:            hclog.NewNullLogger(),
	}
}

// Validate reports every invalid field. The errors name skiff up's flags.
func (c Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("--data-dir: must be set"))
	}
	if c.Members != 1 && c.Members != 3 {
		errs = append(errs, fmt.Errorf("--nodes: Unsupported value: %d: supported values: 1, 3", c.Members))
	} else if _, err := newLayout(c.Listen, c.Members); err != nil {
		errs = append(errs, err)
	}
	switch c.Runtime {
	case RuntimeAuto, RuntimeContainerd, RuntimeSim:
	default:
		errs = append(errs, fmt.Errorf("--runtime: Unsupported value: %q: supported values: auto, containerd, sim", c.Runtime))
	}
	if err := c.Kubelet.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("kubelet config: %w", err))
	}
	if c.UIListen != "" {
		if err := ui.CheckLoopback(c.UIListen); err != nil {
			errs = append(errs, fmt.Errorf("--ui-listen: Invalid value: %q: %v", c.UIListen, err))
		}
	}
	if c.Out == nil {
		errs = append(errs, errors.New("out: must be set"))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("logger: must be set"))
	}
	return errors.Join(errs...)
}

// layout is where skiff up's members listen.
type layout struct {
	host string
	// members are the Raft members, up1 … upN, member i on port+100+i.
	members []store.Server
	// apiAddrs are their API addresses, member i on port+i.
	apiAddrs []string
}

// newLayout lays out n members from the first one's API address.
func newLayout(listen string, n int) (layout, error) {
	host, portText, err := net.SplitHostPort(listen)
	if err != nil {
		return layout{}, fmt.Errorf("--listen %q: %w", listen, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port <= 0 || port+100+n > 65535 {
		return layout{}, fmt.Errorf("--listen %q: need a fixed port below 65400 (Raft uses port+100 and up)", listen)
	}
	l := layout{host: host}
	for i := 0; i < n; i++ {
		l.members = append(l.members, store.Server{ID: fmt.Sprintf("up%d", i+1), Address: net.JoinHostPort(host, strconv.Itoa(port+100+i))})
		l.apiAddrs = append(l.apiAddrs, net.JoinHostPort(host, strconv.Itoa(port+i)))
	}
	return l, nil
}

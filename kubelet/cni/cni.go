// Package cni is the kubelet's pod network over CNI: each pod gets a network namespace
// of its own (a file bind-mounted under NetNSDir, held by that mount rather than by a
// pause container, which Skiff does not run), set up by the reference plugins through
// libcni (github.com/containernetworking/cni): bridge (the node's bridge, its gateway
// the range's first address, hairpin mode for pods reaching themselves through a
// Service), host-local IPAM on the node's podCIDR, loopback, and portmap for
// hostPort. The plugins are Debian's containernetworking-plugins (/usr/lib/cni).
//
// The address of a pod set up already is its cached CNI result, so a kubelet that
// restarts keeps its pods' addresses, and host-local's reservations (in StateDir)
// keep it from handing a live pod's address to another. The pods a Network set up
// are recorded in StateDir too: the namespaces' directory (/run/netns) may hold other
// kubelets' pods (several nodes on one machine), which are not its to tear down.
package cni

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/containernetworking/cni/libcni"
	cnitypes "github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffhq/skiff/kubelet"
)

// Config configures a Network.
type Config struct {
	// BinDirs are where the plugins are looked for. Default: /usr/lib/cni (Debian's
	// containernetworking-plugins) and /opt/cni/bin.
	BinDirs []string
	// StateDir keeps host-local's reservations and libcni's cached results. Default
	// /var/lib/skiff/cni.
	StateDir string
	// NetNSDir is where the pods' namespaces are mounted. Default /run/netns.
	NetNSDir string
	// Bridge is the node's bridge. Default cni0.
	Bridge string
	// NodeNetNS, when not 0, is a file descriptor of the namespace the plugins run in
	// (the node's, in tests); 0: the kubelet's own.
	NodeNetNS int
	// Logger receives the network's logs, named "cni". Default: discarded.
	Logger hclog.Logger
}

// Network is a kubelet.PodNetwork over CNI.
type Network struct {
	cfg  Config
	cni  *libcni.CNIConfig
	mu   sync.Mutex
	log  hclog.Logger
	list func(podCIDR string) (*libcni.NetworkConfigList, error)
	lo   *libcni.NetworkConfigList
}

var _ kubelet.PodNetwork = (*Network)(nil)

// New makes a Network; it checks that the plugins are there.
func New(cfg Config) (*Network, error) {
	if len(cfg.BinDirs) == 0 {
		cfg.BinDirs = []string{"/usr/lib/cni", "/opt/cni/bin"}
	}
	if cfg.StateDir == "" {
		cfg.StateDir = "/var/lib/skiff/cni"
	}
	if cfg.NetNSDir == "" {
		cfg.NetNSDir = "/run/netns"
	}
	if cfg.Bridge == "" {
		cfg.Bridge = "cni0"
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	for _, p := range []string{"bridge", "host-local", "loopback", "portmap"} {
		found := false
		for _, d := range cfg.BinDirs {
			if _, err := os.Stat(filepath.Join(d, p)); err == nil {
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("cni: plugin %s not found in %v (Debian: apt-get install containernetworking-plugins)", p, cfg.BinDirs)
		}
	}
	for _, d := range []string{cfg.StateDir, filepath.Join(cfg.StateDir, "pods"), cfg.NetNSDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("cni: %w", err)
		}
	}
	lo, err := libcni.ConfListFromBytes([]byte(`{"cniVersion":"1.0.0","name":"skiff-lo","plugins":[{"type":"loopback"}]}`))
	if err != nil {
		return nil, err
	}
	n := &Network{cfg: cfg, log: cfg.Logger.Named("cni"), lo: lo,
		cni: libcni.NewCNIConfigWithCacheDir(cfg.BinDirs, filepath.Join(cfg.StateDir, "cache"), nil)}
	n.list = func(podCIDR string) (*libcni.NetworkConfigList, error) {
		conf := map[string]any{
			"cniVersion": "1.0.0", "name": "skiff",
			"plugins": []any{
				map[string]any{"type": "bridge", "bridge": cfg.Bridge, "isGateway": true, "ipMasq": false, "hairpinMode": true,
					"ipam": map[string]any{"type": "host-local", "ranges": [][]map[string]string{{{"subnet": podCIDR}}},
						"routes": []map[string]string{{"dst": "0.0.0.0/0"}}, "dataDir": filepath.Join(cfg.StateDir, "ipam")}},
				map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}, "snat": true},
			},
		}
		b, err := json.Marshal(conf)
		if err != nil {
			return nil, err
		}
		return libcni.ConfListFromBytes(b)
	}
	return n, nil
}

// teardownRange is the range of the plugins' configuration when a pod is torn down
// without its cached result: host-local releases by container ID and the bridge
// deletes the pod's link by name, so neither uses it, but both refuse a range too
// small to allocate from.
const teardownRange = "192.0.2.0/24"

// SetUpPods are the pods this network set up and has not torn down yet: those it
// recorded in StateDir, and those under NetNSDir with a cached result in StateDir
// (set up before the records were kept). Other namespaces under NetNSDir, another
// kubelet's pods', are left out.
func (n *Network) SetUpPods() ([]types.UID, error) {
	records, err := os.ReadDir(n.recordDir())
	if err != nil {
		return nil, err
	}
	var out []types.UID
	for _, e := range records {
		out = append(out, types.UID(e.Name()))
	}
	entries, err := os.ReadDir(n.cfg.NetNSDir)
	if err != nil {
		return nil, err
	}
	list, err := n.list(teardownRange)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		uid, ok := strings.CutPrefix(e.Name(), "skiff-")
		if !ok || slices.Contains(out, types.UID(uid)) {
			continue
		}
		rt := &libcni.RuntimeConf{ContainerID: uid, NetNS: filepath.Join(n.cfg.NetNSDir, e.Name()), IfName: "eth0"}
		if res, err := n.cni.GetNetworkListCachedResult(list, rt); err == nil && res != nil {
			out = append(out, types.UID(uid))
		}
	}
	return out, nil
}

func (n *Network) recordDir() string { return filepath.Join(n.cfg.StateDir, "pods") }

// record notes that this network sets up the pod (before its namespace is made).
func (n *Network) record(uid types.UID) error {
	return os.WriteFile(filepath.Join(n.recordDir(), string(uid)), nil, 0o600)
}

// forget removes the pod's record (once its namespace is gone).
func (n *Network) forget(uid types.UID) error {
	if err := os.Remove(filepath.Join(n.recordDir(), string(uid))); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

var _ kubelet.PodNetworkLister = (*Network)(nil)

// NetNSPath is the path of a pod's network namespace, which its containers join.
func (n *Network) NetNSPath(uid types.UID) string {
	return filepath.Join(n.cfg.NetNSDir, "skiff-"+string(uid))
}

func (n *Network) runtimeConf(pod kubelet.PodRef) *libcni.RuntimeConf {
	rt := &libcni.RuntimeConf{ContainerID: string(pod.UID), NetNS: n.NetNSPath(pod.UID), IfName: "eth0",
		Args: [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", pod.Namespace}, {"K8S_POD_NAME", pod.Name}, {"K8S_POD_UID", string(pod.UID)}}}
	if len(pod.HostPorts) > 0 {
		var pm []map[string]any
		for _, p := range pod.HostPorts {
			proto := "tcp"
			if p.Protocol == "UDP" {
				proto = "udp"
			} else if p.Protocol == "SCTP" {
				proto = "sctp"
			}
			pm = append(pm, map[string]any{"hostPort": p.HostPort, "containerPort": p.ContainerPort, "protocol": proto, "hostIP": p.HostIP})
		}
		rt.CapabilityArgs = map[string]any{"portMappings": pm}
	}
	return rt
}

// SetUp gives the pod its namespace and address; a pod set up already keeps them.
func (n *Network) SetUp(ctx context.Context, pod kubelet.PodRef, podCIDR string) (string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	list, err := n.list(podCIDR)
	if err != nil {
		return "", err
	}
	rt := n.runtimeConf(pod)
	if _, err := os.Stat(rt.NetNS); err == nil {
		if res, err := n.cni.GetNetworkListCachedResult(list, rt); err == nil && res != nil {
			if ip, err := firstIP(res); err == nil {
				return ip, nil
			}
		}
		// A namespace without a result: set up anew.
		n.teardown(ctx, list, pod.UID)
	}
	if err := n.record(pod.UID); err != nil {
		return "", fmt.Errorf("record the pod's network: %w", err)
	}
	if err := newNetNS(rt.NetNS); err != nil {
		n.forget(pod.UID)
		return "", fmt.Errorf("create the pod's network namespace: %w", err)
	}
	var res cnitypes.Result
	err = n.inNode(func() error {
		if _, err := n.cni.AddNetworkList(ctx, n.lo, &libcni.RuntimeConf{ContainerID: rt.ContainerID, NetNS: rt.NetNS, IfName: "lo"}); err != nil {
			return fmt.Errorf("loopback: %w", err)
		}
		r, err := n.cni.AddNetworkList(ctx, list, rt)
		res = r
		return err
	})
	if err != nil {
		n.teardown(ctx, list, pod.UID)
		return "", err
	}
	ip, err := firstIP(res)
	if err != nil {
		n.teardown(ctx, list, pod.UID)
		return "", err
	}
	n.log.Debug("pod network set up", "pod", pod.Namespace+"/"+pod.Name, "ip", ip)
	return ip, nil
}

// TearDown releases the pod's address and namespace.
func (n *Network) TearDown(ctx context.Context, uid types.UID) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	// The range is not needed to delete: host-local releases by container ID.
	list, err := n.list(teardownRange)
	if err != nil {
		return err
	}
	return n.teardown(ctx, list, uid)
}

func (n *Network) teardown(ctx context.Context, list *libcni.NetworkConfigList, uid types.UID) error {
	path := n.NetNSPath(uid)
	if _, err := os.Stat(path); err != nil {
		return n.forget(uid) // never set up, or torn down already
	}
	rt := &libcni.RuntimeConf{ContainerID: string(uid), NetNS: path, IfName: "eth0"}
	// With the set-up's capability arguments (its port mappings: the portmap plugin
	// removes a pod's hostPort rules only when the delete names them, as containerd's
	// CRI plugin names them) and the cached result (its range) when there are.
	if _, cachedRT, err := n.cni.GetNetworkListCachedConfig(list, rt); err == nil && cachedRT != nil {
		rt.CapabilityArgs = cachedRT.CapabilityArgs
	}
	if cached, err := n.cni.GetNetworkListCachedResult(list, rt); err == nil && cached != nil {
		if r, err := types100.NewResultFromResult(cached); err == nil && len(r.IPs) > 0 {
			a := r.IPs[0].Address
			if l, err := n.list((&net.IPNet{IP: a.IP.Mask(a.Mask), Mask: a.Mask}).String()); err == nil {
				list = l
			}
		}
	}
	err := n.inNode(func() error {
		if err := n.cni.DelNetworkList(ctx, list, rt); err != nil {
			return err
		}
		// The loopback's delete changes nothing in a namespace about to go, but it
		// removes libcni's cached result of the set-up's loopback add (as containerd's
		// CRI deletes its loopback network), which would otherwise stay in the cache
		// directory for every pod the node ever ran.
		return n.cni.DelNetworkList(ctx, n.lo, &libcni.RuntimeConf{ContainerID: rt.ContainerID, NetNS: path, IfName: "lo"})
	})
	if err != nil {
		return fmt.Errorf("cni delete: %w", err)
	}
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("unmount the pod's network namespace: %w", err)
	}
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return err
	}
	return n.forget(uid)
}

// firstIP is the first IPv4 address of a CNI result.
func firstIP(res cnitypes.Result) (string, error) {
	r, err := types100.NewResultFromResult(res)
	if err != nil {
		return "", err
	}
	for _, ip := range r.IPs {
		if ip.Address.IP.To4() != nil {
			return ip.Address.IP.String(), nil
		}
	}
	return "", errors.New("cni: the result has no IPv4 address")
}

// inNode runs f (which execs the plugins) on a thread in the node's namespace.
func (n *Network) inNode(f func() error) error {
	if n.cfg.NodeNetNS == 0 {
		return f()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			errc <- err
			return
		}
		if err := unix.Setns(n.cfg.NodeNetNS, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("enter the node's namespace: %w", err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// newNetNS makes a network namespace held by a bind mount at path.
func newNetNS(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return err
	}
	f.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread, in the new namespace, ends with the goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		errc <- unix.Mount(src, path, "", unix.MS_BIND, "")
	}()
	if err := <-errc; err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

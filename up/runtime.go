package up

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/skiffhq/skiff/kubelet"
	"github.com/skiffhq/skiff/up/daemon"
)

// machine is what picking a runtime asks of the machine; the tests fake it.
type machine struct {
	// answers says whether something accepts connections on a unix socket.
	answers func(socket string) bool
	// privateUsable says why a private containerd cannot run here, or nil.
	privateUsable func() error
	// startPrivate starts a private containerd and returns its socket and what stops it.
	startPrivate func(ctx context.Context) (socket string, stop func(), err error)
	// connect connects the containerd runtime to a socket, and prepares it.
	connect func(ctx context.Context, socket string) (kubelet.Runtime, error)
}

// realMachine is this machine, with a private containerd kept in dataDir.
func realMachine(dataDir string, connect func(ctx context.Context, socket string) (kubelet.Runtime, error)) machine {
	return machine{
		answers:       answers,
		privateUsable: daemon.Usable,
		startPrivate:  func(ctx context.Context) (string, func(), error) { return startPrivateContainerd(ctx, dataDir) },
		connect:       connect,
	}
}

// pickRuntime picks what runs the node's containers and says which in one line. With
// RuntimeAuto or RuntimeContainerd: containerd at address when it answers there;
// otherwise, when containerd is installed, a private containerd (its images and
// containers kept in dataDir; stopped once the components have, its containers first);
// otherwise, with RuntimeAuto, simulated containers. A nil runtime is simulated.
// onStopped registers what must stop after the components.
func pickRuntime(ctx context.Context, m machine, mode, address, dataDir string, onStopped func(func()), log hclog.Logger) (kubelet.Runtime, string, error) {
	if mode == RuntimeSim {
		return nil, "simulated (--runtime sim)", nil
	}
	why := "no containerd answering at " + address
	private := false
	if !m.answers(address) {
		if err := m.privateUsable(); err != nil {
			why += ", and no private one: " + err.Error()
		} else {
			socket, stop, err := m.startPrivate(ctx)
			if err != nil {
				return nil, "", err
			}
			address, private = socket, true
			onStopped(stop)
		}
	}
	if !private && !m.answers(address) {
		if mode == RuntimeContainerd {
			return nil, "", fmt.Errorf("--runtime containerd: %s", why)
		}
		return nil, "simulated (" + why + ")", nil
	}
	rt, err := m.connect(ctx, address)
	if err != nil {
		if mode == RuntimeContainerd || private {
			return nil, "", fmt.Errorf("containerd at %s: %w", address, err)
		}
		return nil, "simulated (containerd unusable: " + err.Error() + ")", nil
	}
	if !private {
		return rt, "containerd at " + address, nil
	}
	// Stop the containers before containerd: its shims would outlive it.
	onStopped(func() { stopAll(rt, log) })
	return rt, fmt.Sprintf("a private containerd at %s (%s; images and containers in %s, its log in %s)",
		address, why, filepath.Join(dataDir, "containerd"), filepath.Join(dataDir, "containerd.log")), nil
}

// answers says whether something accepts connections on the unix socket at path: a
// socket file left by a containerd that is gone does not count.
func answers(path string) bool {
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// startPrivateContainerd starts skiff up's own containerd — root in the data directory,
// state and sockets in /run (a tmpfs: they describe running processes), one directory per
// data directory — and returns its socket and what stops it.
func startPrivateContainerd(ctx context.Context, dataDir string) (string, func(), error) {
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return "", nil, err
	}
	out, err := os.OpenFile(filepath.Join(dataDir, "containerd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return "", nil, err
	}
	sum := sha256.Sum256([]byte(abs))
	state := filepath.Join("/run/skiff", "containerd-"+hex.EncodeToString(sum[:6]))
	d, err := daemon.Start(ctx, filepath.Join(dataDir, "containerd"), state, out)
	if err != nil {
		out.Close()
		return "", nil, fmt.Errorf("%w (its log: %s)", err, out.Name())
	}
	return d.Socket, func() { d.Stop(); out.Close() }, nil
}

// stopAll stops every container of a runtime about to go away, at once, each with a
// short grace period: skiff up is stopping, and its Ctrl-C should not wait half a minute.
func stopAll(rt kubelet.Runtime, log hclog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ctrs, err := rt.List(ctx)
	if err != nil {
		log.Warn("cannot list containers to stop them", "error", err)
		return
	}
	var wg sync.WaitGroup
	for _, c := range ctrs {
		if c.State != kubelet.StateRunning {
			continue
		}
		wg.Go(func() {
			if err := rt.Stop(ctx, c.ID, 2*time.Second); err != nil {
				log.Warn("cannot stop a container", "container", c.ID, "pod", c.Namespace+"/"+c.PodName, "error", err)
			}
		})
	}
	wg.Wait()
}

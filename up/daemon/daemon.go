// Package daemon runs a private containerd: one this process starts for itself, apart
// from the machine's, with its own configuration, root (images, snapshots, container
// records) and state directory (sockets and running tasks), so it neither needs nor
// touches /run/containerd. `skiff up` runs one when the machine has containerd installed
// but not running; the tests that need containerd run one each (test/containerdtest).
package daemon

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/skiffhq/skiff/internal/deathsig"
)

// Daemon is a running private containerd.
type Daemon struct {
	// Socket is its gRPC address.
	Socket string
	state  string
	cmd    *exec.Cmd
	exited chan struct{}
}

// Binaries are the programs a private containerd needs.
var Binaries = []string{"containerd", "containerd-shim-runc-v2", "runc"}

// Usable says why this process cannot run a private containerd, or nil if it can: it
// needs root and Binaries.
func Usable() error {
	if os.Geteuid() != 0 {
		return errors.New("running containers needs root")
	}
	var missing []string
	for _, bin := range Binaries {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, bin)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s not installed (Debian: apt-get install containerd runc)", strings.Join(missing, ", "))
	}
	return nil
}

// maxSocketPath is the longest path a unix socket may have (sun_path, less its NUL).
const maxSocketPath = 107

// Start starts containerd with its root under root and its state and sockets under
// state (best on a tmpfs such as /run: it describes running processes), writing its
// output to out, and returns once it answers on its socket (or ctx ends). The same root
// on the next start finds the same images and containers.
func Start(ctx context.Context, root, state string, out io.Writer) (*Daemon, error) {
	if err := Usable(); err != nil {
		return nil, fmt.Errorf("private containerd: %w", err)
	}
	socket := filepath.Join(state, "containerd.sock")
	if len(socket)+len(".ttrpc") > maxSocketPath {
		return nil, fmt.Errorf("private containerd: state directory %s is too long for a socket path (at most %d bytes with the socket's name)", state, maxSocketPath)
	}
	for _, dir := range []string{root, state} {
		if err := os.MkdirAll(dir, 0o711); err != nil {
			return nil, fmt.Errorf("private containerd: %w", err)
		}
	}
	config := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %q
[ttrpc]
  address = %q
[debug]
  address = %q
`, root, state, socket, socket+".ttrpc", filepath.Join(state, "debug.sock"))
	cfgPath := filepath.Join(state, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		return nil, fmt.Errorf("private containerd: %w", err)
	}
	cmd := exec.Command("containerd", "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group: a terminal's Ctrl-C reaches the process that started it,
	// which stops the containers before containerd. It dies with that process.
	// (deathsig: from a thread of its own, as the kubelet ends threads it moved into
	// pods' network namespaces.)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	done, err := deathsig.Start(cmd)
	if err != nil {
		return nil, fmt.Errorf("private containerd: start: %w", err)
	}
	p := &Daemon{Socket: socket, state: state, cmd: cmd, exited: make(chan struct{})}
	go func() { <-done; close(p.exited) }()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for {
		if c, err := net.Dial("unix", socket); err == nil {
			c.Close()
			return p, nil
		}
		select {
		case <-p.exited:
			p.Stop()
			return nil, fmt.Errorf("private containerd exited at start: %v", cmd.ProcessState)
		case <-deadline.C:
			p.Stop()
			return nil, fmt.Errorf("private containerd did not listen on %s within 30s", socket)
		case <-ctx.Done():
			p.Stop()
			return nil, fmt.Errorf("private containerd: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// Stop stops containerd, then cleans up after it (Cleanup). The root stays.
func (p *Daemon) Stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
	}
	Cleanup(p.state)
}

// Cleanup removes what a stopped private containerd with this state directory leaves
// behind by design: the shims of containers still there, and so their containers; what
// is mounted under the directory; the directory. For a containerd that died without Stop
// too.
func Cleanup(state string) {
	if state = filepath.Clean(state); !filepath.IsAbs(state) || state == "/" {
		return // a mistake: every process's command line would name it
	}
	killNaming(state)
	unmountUnder(state)
	os.RemoveAll(state)
}

// killNaming kills the processes whose command line names dir — the shims started for a
// private containerd name its socket — and their children first: a container's first
// process is its shim's child, and killing it ends the container's PID namespace, where
// killing only the shim would leave the container running.
func killNaming(dir string) {
	procs, _ := os.ReadDir("/proc")
	parent := map[int]int{}
	var named []int
	for _, e := range procs {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil {
			// pid (comm) state ppid ...: comm may hold spaces and parentheses.
			if i := bytes.LastIndexByte(stat, ')'); i > 0 {
				if f := strings.Fields(string(stat[i+1:])); len(f) > 1 {
					parent[pid], _ = strconv.Atoi(f[1])
				}
			}
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(cmdline, []byte(dir)) {
			named = append(named, pid)
		}
	}
	for _, shim := range named {
		for pid, ppid := range parent {
			if ppid == shim {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		syscall.Kill(shim, syscall.SIGKILL)
	}
}

// unmountUnder unmounts whatever is still mounted below dir (containers' root file
// systems), deepest first.
func unmountUnder(dir string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return
	}
	defer f.Close()
	var mounts []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			mounts = append(mounts, fields[4])
		}
	}
	for i := len(mounts) - 1; i >= 0; i-- {
		syscall.Unmount(mounts[i], syscall.MNT_DETACH)
	}
}

package skiffctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
)

// forwardedPort is one LOCAL:REMOTE of port-forward.
type forwardedPort struct {
	local  int // 0: any free port
	remote int
}

// parsePorts reads kubectl's port specs: REMOTE, LOCAL:REMOTE or :REMOTE, REMOTE being a
// number or the name of a port of one of the pod's containers.
func parsePorts(specs []string, pod *corev1.Pod) ([]forwardedPort, error) {
	var out []forwardedPort
	for _, spec := range specs {
		local, remote, split := strings.Cut(spec, ":")
		if !split {
			remote = local
		}
		var p forwardedPort
		if split && local != "" {
			n, err := strconv.Atoi(local)
			if err != nil || n < 0 || n > 65535 {
				return nil, fmt.Errorf("error parsing local port %q: must be a port number between 0 and 65535", local)
			}
			p.local = n
		}
		n, err := strconv.Atoi(remote)
		switch {
		case err != nil:
			n, err = namedPort(pod, remote)
			if err != nil {
				return nil, err
			}
		case n < 1 || n > 65535:
			return nil, fmt.Errorf("error parsing remote port %q: must be a port number between 1 and 65535", remote)
		}
		p.remote = n
		if !split {
			p.local = n
		}
		out = append(out, p)
	}
	return out, nil
}

// namedPort is the number of the container port called name.
func namedPort(pod *corev1.Pod, name string) (int, error) {
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == name {
				return int(p.ContainerPort), nil
			}
		}
	}
	return 0, fmt.Errorf("pod %s does not have a named port %q", pod.Name, name)
}

// listenAddresses are the hosts --address names; "localhost" is 127.0.0.1 and ::1.
func listenAddresses(addrs []string) ([]string, error) {
	var out []string
	for _, a := range addrs {
		for _, h := range strings.Split(a, ",") {
			switch h = strings.TrimSpace(h); {
			case h == "localhost":
				out = append(out, "127.0.0.1", "::1")
			case net.ParseIP(h) != nil:
				out = append(out, h)
			default:
				return nil, fmt.Errorf("--address: %q is not an IP address or localhost", h)
			}
		}
	}
	return out, nil
}

func portForwardCmd(g *globals) *cobra.Command {
	var addresses []string
	cmd := &cobra.Command{
		Use:   "port-forward POD [LOCAL_PORT:]REMOTE_PORT [...]",
		Short: "Forward local ports to a pod",
		Long: `Listen on local ports and forward each connection to a port of the pod, through the API
server and the kubelet of the pod's node, as kubectl port-forward does. POD is NAME or
pod/NAME; a port is REMOTE (the same number locally), LOCAL:REMOTE, or :REMOTE (any free
local port); REMOTE may name a port of the pod's containers. It runs until interrupted.

The pod's port is reached in the pod's network namespace, which is the node's for now
(pods use the host network). Allowed to administrators only by default (create
pods/portforward).`,
		Example: `  skiffctl port-forward web-7d4b9c-x2x9k 8080:80
  skiffctl port-forward pod/web-7d4b9c-x2x9k 8080:80 :9090 --address 0.0.0.0`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return fmt.Errorf("expected POD and at least one port, as in 'port-forward POD [LOCAL_PORT:]REMOTE_PORT'")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := podArg("port-forward", args[0])
			if err != nil {
				return err
			}
			hosts, err := listenAddresses(addresses)
			if err != nil {
				return err
			}
			conn, ctx, cancel, err := g.connect(cmd, g.timeout)
			if err != nil {
				return err
			}
			pod, err := client.For[*corev1.Pod](conn).Get(ctx, g.ns(), name)
			cancel()
			if err != nil {
				return notFound(kinds.MustLookup(kinds.Pod), name, err)
			}
			if pod.Status.Phase != corev1.PodRunning {
				return fmt.Errorf("unable to forward port because pod is not running. Current status=%s", pod.Status.Phase)
			}
			ports, err := parsePorts(args[1:], pod)
			if err != nil {
				return err
			}
			conn, ctx, cancel, err = g.connect(cmd, noTimeout)
			if err != nil {
				return err
			}
			defer cancel()
			return g.forward(ctx, conn, name, hosts, ports)
		},
	}
	cmd.Flags().StringSliceVar(&addresses, "address", []string{"localhost"}, "addresses to listen on (comma-separated IPs or localhost)")
	return cmd
}

// forward listens on every host for every port and serves the connections until ctx
// ends. A port that cannot be listened on at all is an error; localhost's IPv6 half
// may fail alone (a machine without IPv6).
func (g *globals) forward(ctx context.Context, conn *client.Conn, pod string, hosts []string, ports []forwardedPort) error {
	// On the way out: connections are cut, listeners closed, then their goroutines
	// waited for.
	var wg sync.WaitGroup
	defer wg.Wait()
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var outMu sync.Mutex
	say := func(w io.Writer, format string, args ...any) {
		outMu.Lock()
		defer outMu.Unlock()
		fmt.Fprintf(w, format, args...)
	}
	for _, p := range ports {
		local := p.local
		var errs []error
		opened := 0
		for _, h := range hosts {
			ln, err := net.Listen("tcp", net.JoinHostPort(h, strconv.Itoa(local)))
			if err != nil {
				errs = append(errs, err)
				continue
			}
			opened++
			lns = append(lns, ln)
			local = ln.Addr().(*net.TCPAddr).Port // :REMOTE picks one free port for every host
			say(g.streams.Out, "Forwarding from %s -> %d\n", ln.Addr(), p.remote)
			wg.Add(1)
			go func(ln net.Listener, p forwardedPort) {
				defer wg.Done()
				g.accept(ctx, conn, pod, ln, p.remote, say, &wg)
			}(ln, p)
		}
		if opened == 0 {
			return fmt.Errorf("unable to listen on port %d: %w", p.local, errors.Join(errs...))
		}
	}
	<-ctx.Done()
	return nil
}

// accept serves ln's connections until it is closed.
func (g *globals) accept(ctx context.Context, conn *client.Conn, pod string, ln net.Listener, remote int, say func(io.Writer, string, ...any), wg *sync.WaitGroup) {
	localPort := ln.Addr().(*net.TCPAddr).Port
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		say(g.streams.Out, "Handling connection for %d\n", localPort)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			if err := pipe(ctx, conn, g.ns(), pod, remote, c.(*net.TCPConn)); err != nil && ctx.Err() == nil {
				say(g.streams.Err, "error forwarding port %d to pod %s: %s\n", remote, pod, Message(err))
			}
		}()
	}
}

// pipe connects local to the pod's port: local's end half-closes the remote side, and
// the remote side's end ends the connection (as kubectl's does).
func pipe(ctx context.Context, conn *client.Conn, ns, pod string, remote int, local *net.TCPConn) error {
	fc, err := conn.PortForward(ctx, ns, pod, remote)
	if err != nil {
		return err
	}
	defer fc.Close()
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		if _, err := io.Copy(fc, local); err == nil {
			_ = fc.CloseWrite()
		}
	}()
	_, err = io.Copy(local, fc)
	local.Close() // unblocks the copy above
	<-sent
	if err != nil && ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

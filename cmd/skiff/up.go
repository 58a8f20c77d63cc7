package main

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/apiserver"
	"github.com/skiffhq/skiff/apiserver/pki"
	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/controllers"
	"github.com/skiffhq/skiff/kubelet"
	"github.com/skiffhq/skiff/scheduler"
	"github.com/skiffhq/skiff/store"
	"github.com/skiffhq/skiff/up/daemon"
)

func upCmd(logger func(string) hclog.Logger) *cobra.Command {
	home, _ := os.UserHomeDir()
	dataDir := filepath.Join(home, ".skiff", "up")
	listen := "127.0.0.1:7443"
	nodes := 1
	kcfg := kubelet.DefaultConfig()
	kcfg.NodeName, kcfg.NodeIP = "", ""
	opts := kubeletOptions{runtime: "auto", containerdAddress: defaultContainerdSocket, containerdNamespace: "skiff",
		busybox: "docker.io/library/busybox:latest"}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run all of Skiff in one process: API server, controllers, scheduler and a kubelet",
		Long: `Run a whole Skiff on this machine: an API server with an embedded single-node store (or
three, with --nodes 3), the controller-manager, the scheduler and a kubelet. The kubelet
uses containerd when it can (--runtime auto): the one at --containerd-address, or when
none answers there and containerd is installed, a private containerd that skiff up runs
itself (images and containers kept in --data-dir, state in /run/skiff); otherwise
simulated containers. Data is kept in --data-dir: starting again continues where it
stopped. Ctrl-C stops everything (with a private containerd, its containers too).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := logger("skiff")
			machineDefaults(&kcfg)
			opts.logDir = filepath.Join(dataDir, "containers")
			if !cmd.Flag("log-level").Changed {
				log.SetLevel(hclog.Warn)
			}
			if nodes != 1 && nodes != 3 {
				return fmt.Errorf("--nodes: Unsupported value: %d: supported values: 1, 3", nodes)
			}
			host, portText, err := net.SplitHostPort(listen)
			if err != nil {
				return fmt.Errorf("--listen %q: %w", listen, err)
			}
			port, err := strconv.Atoi(portText)
			if err != nil || port <= 0 || port+100+nodes > 65535 {
				return fmt.Errorf("--listen %q: need a fixed port below 65400 (Raft uses port+100 and up)", listen)
			}
			ctx, cancel := signalContext()
			defer cancel()

			// API servers: node i serves the API on port+i and Raft on port+100+i.
			var initial []store.Server
			var apiAddrs []string
			for i := 0; i < nodes; i++ {
				initial = append(initial, store.Server{ID: fmt.Sprintf("up%d", i+1), Address: net.JoinHostPort(host, strconv.Itoa(port+100+i))})
				apiAddrs = append(apiAddrs, net.JoinHostPort(host, strconv.Itoa(port+i)))
			}
			// Security: a CA and certificates of its own, kept in the data directory; the
			// admin's credentials go into the client config skiffctl reads by default.
			pkiDir := filepath.Join(dataDir, "pki")
			if err := upCerts(pkiDir, kcfg.NodeName, host); err != nil {
				return err
			}
			p := func(name string) string { return filepath.Join(pkiDir, name) }
			serverCerts, err := pki.NewReloader(p("apiserver.crt"), p("apiserver.key"), p(pki.CACertFile))
			if err != nil {
				return err
			}
			clientConfig := client.DefaultConfigPath()
			cf := client.ConfigFile{Servers: apiAddrs, CAFile: p(pki.CACertFile), CertFile: p("admin.crt"), KeyFile: p("admin.key")}
			for _, path := range []string{filepath.Join(dataDir, "client.config"), clientConfig} {
				if path == "" {
					continue
				}
				if err := client.WriteConfigFile(path, cf); err != nil {
					return err
				}
			}
			dialAs := func(cert string) (*client.Conn, error) {
				return dialCert(apiAddrs, pkiDir, cert, "skiff-up-"+cert, log)
			}

			var wg sync.WaitGroup
			errs := make(chan error, nodes+3)
			// What must wait until every component has stopped (a private containerd),
			// run last first.
			var afterStop []func()
			defer func() {
				for i := len(afterStop) - 1; i >= 0; i-- {
					afterStop[i]()
				}
			}()
			runCtx, stop := context.WithCancel(ctx)
			defer func() { stop(); wg.Wait() }()
			goRun := func(what string, fn func() error) {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := fn(); err != nil && runCtx.Err() == nil {
						errs <- fmt.Errorf("%s: %w", what, err)
					}
				}()
			}
			for i := 0; i < nodes; i++ {
				cfg := apiserver.DefaultConfig()
				cfg.Name = initial[i].ID
				cfg.DataDir = filepath.Join(dataDir, cfg.Name)
				cfg.Listen = apiAddrs[i]
				cfg.RaftListen = initial[i].Address
				cfg.InitialCluster = initial
				cfg.Logger = log
				cfg.TLS, cfg.ClientRoots, cfg.JoinTLS, cfg.Store.PeerTLS = serverCerts.ServerTLS(), serverCerts.Pool, serverCerts.ClientTLS(), serverCerts.PeerTLS()
				cfg.KubeletTLS = serverCerts.KubeletClientTLS
				s, err := apiserver.New(cfg)
				if err != nil {
					return err
				}
				goRun("apiserver "+cfg.Name, func() error { return s.Run(runCtx) })
			}
			cmConn, err := dialAs("controller-manager")
			if err != nil {
				return err
			}
			defer cmConn.Close()
			schedConn, err := dialAs("scheduler")
			if err != nil {
				return err
			}
			defer schedConn.Close()
			kubeletConn, err := dialAs("kubelet-" + kcfg.NodeName)
			if err != nil {
				return err
			}
			defer kubeletConn.Close()
			kubeletCerts, err := pki.NewReloader(p("kubelet-"+kcfg.NodeName+".crt"), p("kubelet-"+kcfg.NodeName+".key"), p(pki.CACertFile))
			if err != nil {
				return err
			}
			// The log server: on the node's address, any free port (published in the
			// Node's status), so that several skiff ups do not collide.
			opts.kubeletListen, opts.logTLS = net.JoinHostPort(kcfg.NodeIP, "0"), kubeletCerts.KubeletServerTLS()

			mcfg := controllers.DefaultConfig()
			mcfg.LeaderElect, mcfg.Logger = false, log
			goRun("controller-manager", func() error { return controllers.Run(runCtx, cmConn, mcfg) })
			scfg := scheduler.DefaultConfig()
			scfg.Logger = log
			sched, err := scheduler.New(client.NewClientset(schedConn), scfg)
			if err != nil {
				return err
			}
			goRun("scheduler", func() error { return sched.Run(runCtx) })

			runtimeNote, err := upRuntime(runCtx, &opts, dataDir, &afterStop, log)
			if err != nil {
				return err
			}
			goRun("kubelet", func() error { return runKubelets(runCtx, client.NewClientset(kubeletConn), kcfg, opts, log) })

			fmt.Printf("Skiff is up: API on %s, data in %s\n", strings.Join(apiAddrs, ","), dataDir)
			fmt.Printf("Node %s runs containers: %s\n", kcfg.NodeName, runtimeNote)
			fmt.Printf("TLS on; certificates in %s; skiffctl's admin credentials in %s\n", pkiDir, firstNonEmpty(clientConfig, filepath.Join(dataDir, "client.config")))
			fmt.Printf("Try:\n  ./bin/skiffctl apply -f examples/nginx-deployment.yaml\n  ./bin/skiffctl get pods -o wide\n  ./bin/skiffctl trace deployment nginx-deployment\nCtrl-C stops everything.\n")
			select {
			case <-ctx.Done():
				fmt.Println("Stopping...")
				return nil
			case err := <-errs:
				return err
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data-dir", dataDir, "where the store keeps its data")
	f.StringVar(&listen, "listen", listen, "API address (with --nodes 3, the next two ports too; Raft uses port+100 and up)")
	f.IntVar(&nodes, "nodes", nodes, "API servers: 1, or 3 for a local high-availability demo")
	f.StringVar(&opts.runtime, "runtime", opts.runtime, "container runtime: auto (containerd when it can, else simulated), containerd or sim")
	f.StringVar(&opts.containerdAddress, "containerd-address", opts.containerdAddress, "containerd's socket; when none answers there and containerd is installed, skiff up runs a private one")
	f.StringVar(&kcfg.NodeName, "node-name", kcfg.NodeName, "the kubelet's node name (default: the host name)")
	f.StringArrayVar(&opts.insecureRegistries, "insecure-registry", nil, "with --runtime containerd: a registry (HOST or HOST:PORT) pulled from without TLS verification, falling back to plain HTTP; repeatable (loopback registries always are)")
	return cmd
}

// upCerts makes skiff up's CA and certificates on the first start, and a kubelet
// certificate for a node name it has not seen (or made before kubelets served logs,
// without server usage).
func upCerts(dir, nodeName, host string) error {
	if _, err := os.Stat(filepath.Join(dir, pki.CAKeyFile)); errors.Is(err, os.ErrNotExist) {
		_, err := pki.InitDir(dir, pki.InitOptions{Nodes: []string{nodeName}, Hosts: []string{host}})
		return err
	}
	if certs, err := pki.ReadCerts(filepath.Join(dir, "kubelet-"+nodeName+".crt")); err == nil && slices.Contains(certs[0].ExtKeyUsage, x509.ExtKeyUsageServerAuth) {
		return nil
	}
	ca, err := pki.LoadCA(dir)
	if err != nil {
		return err
	}
	req := pki.InitOptions{Nodes: []string{nodeName}}.Leaves()["kubelet-"+nodeName]
	pair, err := ca.Issue(req)
	if err != nil {
		return err
	}
	_, _, err = pair.Write(dir, "kubelet-"+nodeName)
	return err
}

// dialCert connects with certificate NAME of a certificate directory.
func dialCert(servers []string, dir, name, userAgent string, log hclog.Logger) (*client.Conn, error) {
	return (&connFlags{s: client.Settings{Server: strings.Join(servers, ","), CAFile: filepath.Join(dir, pki.CACertFile),
		CertFile: filepath.Join(dir, name+".crt"), KeyFile: filepath.Join(dir, name+".key")}}).dial(userAgent, log)
}

// upRuntime picks skiff up's container runtime and says which in one line. With --runtime
// auto or containerd: containerd at --containerd-address when it answers there; otherwise,
// when containerd is installed, a private containerd skiff up starts itself (its images
// and containers kept in the data directory, stopped with skiff up, containers first);
// otherwise, with auto, simulated containers.
func upRuntime(ctx context.Context, opts *kubeletOptions, dataDir string, afterStop *[]func(), log hclog.Logger) (string, error) {
	switch opts.runtime {
	case "sim":
		return "simulated (--runtime sim)", nil
	case "auto", "containerd":
	default:
		return "", fmt.Errorf("--runtime: Unsupported value: %q: supported values: auto, containerd, sim", opts.runtime)
	}
	why := "no containerd answering at " + opts.containerdAddress
	private := false
	if !answers(opts.containerdAddress) {
		if err := daemon.Usable(); err != nil {
			why += ", and no private one: " + err.Error()
		} else {
			socket, stop, err := startPrivateContainerd(ctx, dataDir)
			if err != nil {
				return "", err
			}
			opts.containerdAddress, private = socket, true
			*afterStop = append(*afterStop, stop)
		}
	}
	if !private && !answers(opts.containerdAddress) {
		if opts.runtime == "containerd" {
			return "", fmt.Errorf("--runtime containerd: %s", why)
		}
		opts.runtime = "sim"
		return "simulated (" + why + ")", nil
	}
	rt, err := newContainerdRuntime(ctx, *opts, log)
	if err != nil {
		if opts.runtime == "containerd" || private {
			return "", fmt.Errorf("containerd at %s: %w", opts.containerdAddress, err)
		}
		opts.runtime = "sim"
		return "simulated (containerd unusable: " + err.Error() + ")", nil
	}
	opts.runtime, opts.rt = "containerd", rt
	if !private {
		return "containerd at " + opts.containerdAddress, nil
	}
	// Stop the containers before containerd: its shims would outlive it.
	*afterStop = append(*afterStop, func() { stopAll(rt, log) })
	return fmt.Sprintf("a private containerd at %s (%s; images and containers in %s, its log in %s)",
		opts.containerdAddress, why, filepath.Join(dataDir, "containerd"), filepath.Join(dataDir, "containerd.log")), nil
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
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := rt.Stop(ctx, c.ID, 2*time.Second); err != nil {
				log.Warn("cannot stop a container", "container", c.ID, "pod", c.Namespace+"/"+c.PodName, "error", err)
			}
		}()
	}
	wg.Wait()
}

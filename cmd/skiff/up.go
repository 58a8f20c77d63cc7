package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/apiserver"
	"github.com/skiffhq/skiff/apiserver/pki"
	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/controllers"
	"github.com/skiffhq/skiff/kubelet"
	"github.com/skiffhq/skiff/scheduler"
	"github.com/skiffhq/skiff/store"
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
uses containerd when it can (--runtime auto) and simulated containers otherwise. Data is
kept in --data-dir: starting again continues where it stopped. Ctrl-C stops everything.`,
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

			runtimeNote := "simulated (--runtime sim)"
			switch opts.runtime {
			case "auto":
				opts.runtime = "sim"
				runtimeNote = "simulated (no containerd socket at " + opts.containerdAddress + ")"
				if _, err := os.Stat(opts.containerdAddress); err == nil {
					rt, err := newContainerdRuntime(runCtx, opts, log)
					if err != nil {
						runtimeNote = "simulated (containerd unusable: " + err.Error() + ")"
						break
					}
					opts.runtime, opts.rt = "containerd", rt
					runtimeNote = "containerd at " + opts.containerdAddress
				}
			case "containerd":
				runtimeNote = "containerd at " + opts.containerdAddress
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
	f.StringVar(&opts.runtime, "runtime", opts.runtime, "container runtime: auto, containerd or sim")
	f.StringVar(&opts.containerdAddress, "containerd-address", opts.containerdAddress, "containerd's socket")
	f.StringVar(&kcfg.NodeName, "node-name", kcfg.NodeName, "the kubelet's node name (default: the host name)")
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

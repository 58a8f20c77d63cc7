// Package up runs a whole Skiff on one machine, as `skiff up` does: the members (one
// API server with its embedded store, or three), the components (controller-manager,
// scheduler), the kubelet and, when the machine has containerd installed but none
// running, a private containerd (package up/daemon).
//
// Everything runs in one process, under one supervisor: the first component to fail
// stops the others and is Run's error; Run's context ending stops them all, then the
// private containerd, its containers first. Security is on: skiff up keeps its own CA
// and certificates in its data directory, and writes the admin's client config where
// skiffctl reads it, so skiffctl and kubectl work without flags. The data directory
// keeps the store: a second Run continues where the first stopped.
//
// The members of a three-member skiff up share the machine, so they share its faults:
// it demonstrates Raft (leadership moves, a member stops), it does not make the
// machine highly available.
package up

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/skiffhq/skiff/apiserver"
	"github.com/skiffhq/skiff/apiserver/encryption"
	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/controllers"
	"github.com/skiffhq/skiff/kubelet"
	"github.com/skiffhq/skiff/kubelet/agent"
	"github.com/skiffhq/skiff/pki"
	"github.com/skiffhq/skiff/pki/serviceaccount"
	"github.com/skiffhq/skiff/scheduler"
	"github.com/skiffhq/skiff/skiffctl/ui"
)

// busybox is the image the examples use, provided from the host's static busybox when
// containerd lacks it.
const busybox = "docker.io/library/busybox:latest"

// Run runs Skiff until ctx ends (it then returns nil) or a component fails (it returns
// that component's error). Either way, everything it started has stopped when it
// returns.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	l, err := newLayout(cfg.Listen, cfg.Members)
	if err != nil {
		return err
	}
	log, dataDir, nodeName := cfg.Logger, cfg.DataDir, cfg.Kubelet.NodeName

	// Security: a CA and certificates of its own, kept in the data directory; the
	// admin's credentials go into the client config skiffctl reads by default.
	pkiDir := filepath.Join(dataDir, "pki")
	if err := makeCerts(pkiDir, nodeName, l.host); err != nil {
		return err
	}
	p := func(name string) string { return filepath.Join(pkiDir, name) }
	// Secrets are encrypted at rest with a key of its own, beside the CA.
	if _, err := encryption.EnsureFile(p(encryption.FileName)); err != nil {
		return err
	}
	serverCerts, err := pki.NewReloader(p("apiserver.crt"), p("apiserver.key"), p(pki.CACertFile))
	if err != nil {
		return err
	}
	cf := client.ConfigFile{Servers: l.apiAddrs, CAFile: p(pki.CACertFile), CertFile: p("admin.crt"), KeyFile: p("admin.key")}
	for _, path := range []string{filepath.Join(dataDir, "client.config"), cfg.ClientConfig} {
		if path == "" {
			continue
		}
		if err := client.WriteConfigFile(path, cf); err != nil {
			return err
		}
		// kubectl's, beside it: ~/.skiff/kubeconfig for the default client config.
		if err := client.WriteKubeconfig(filepath.Join(filepath.Dir(path), "kubeconfig"), "skiff", cf); err != nil {
			return err
		}
	}
	dialAs := func(cert string) (*client.Conn, error) {
		servers, opts, err := client.Resolve(client.Settings{Server: strings.Join(l.apiAddrs, ","), CAFile: p(pki.CACertFile),
			CertFile: p(cert + ".crt"), KeyFile: p(cert + ".key")}, client.Options{UserAgent: "skiff-up-" + cert, Logger: log})
		if err != nil {
			return nil, err
		}
		return client.Dial(servers, opts)
	}

	// Stopping, in order: the connections close, the components stop and are awaited,
	// then what must outlive them (a private containerd, its containers first).
	g := newGroup(ctx)
	defer g.stop()
	saKey, err := serviceaccount.LoadSigningKey(p(serviceaccount.SigningKeyFile))
	if err != nil {
		return err
	}
	for i, m := range l.members {
		acfg := apiserver.DefaultConfig()
		acfg.Name = m.ID
		acfg.DataDir = filepath.Join(dataDir, acfg.Name)
		acfg.Listen = l.apiAddrs[i]
		acfg.RaftListen = m.Address
		acfg.InitialCluster = l.members
		acfg.Logger = log
		acfg.TLS, acfg.ClientRoots, acfg.JoinTLS, acfg.Store.PeerTLS = serverCerts.ServerTLS(), serverCerts.Pool, serverCerts.ClientTLS(), serverCerts.PeerTLS()
		acfg.KubeletTLS = serverCerts.KubeletClientTLS
		acfg.EncryptionKeyFile = p(encryption.FileName)
		acfg.Tokens = cfg.Tokens
		acfg.ServiceAccounts.SigningKey = saKey
		acfg.Aggregator = apiserver.Aggregator{ProxyClientCertFile: p(pki.FrontProxyClient + ".crt"), ProxyClientKeyFile: p(pki.FrontProxyClient + ".key"),
			RequestHeaderCAFile: p(pki.FrontProxyCACertFile), ClientCAFile: p(pki.CACertFile)}
		if i == 0 {
			// The first member keeps every certificate of the directory renewed (one
			// member only: they share the files); every component reads them anew.
			if acfg.Certificates, err = leafCertificates(pkiDir); err != nil {
				return err
			}
			acfg.SigningCertFile, acfg.SigningKeyFile = p(pki.CACertFile), p(pki.CAKeyFile)
		}
		s, err := apiserver.New(acfg)
		if err != nil {
			return err
		}
		g.run("apiserver "+acfg.Name, s.Run)
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
	kubeletConn, err := dialAs("kubelet-" + nodeName)
	if err != nil {
		return err
	}
	defer kubeletConn.Close()
	// The log server's: the kubelet serving certificate, renewed with the others.
	kubeletCerts, err := pki.NewReloader(p("kubelet-"+nodeName+"-serving.crt"), p("kubelet-"+nodeName+"-serving.key"), p(pki.CACertFile))
	if err != nil {
		return err
	}

	mcfg := controllers.DefaultConfig()
	mcfg.LeaderElect, mcfg.Logger = false, log
	// Claims' volumes live with the rest of skiff up's data, as its pods' volumes do.
	mcfg.LocalPathRoot = filepath.Join(dataDir, "local-path")
	// Pods verify the API servers with the cluster CA, published in every namespace
	// (again when the file changes: a CA rotation).
	mcfg.RootCAFile = p(pki.CACertFile)
	// Approved certificate signing requests of Kubernetes' signers are signed by the
	// cluster CA, as kube-controller-manager's --cluster-signing-cert-file and -key-file.
	mcfg.ClusterSigningCertFile, mcfg.ClusterSigningKeyFile = p(pki.CACertFile), p(pki.CAKeyFile)
	mcfg.ServiceAccountKeyFile = p(serviceaccount.SigningKeyFile)
	// The controllers and the scheduler read one set of caches (the controller-manager's
	// credentials list and watch everything the scheduler reads): each pod is held once
	// in the process, not once per component (issue 26).
	// The custom kinds are the API server's, in this process's registry: the controllers
	// leave them (and its conversion webhooks) as it serves them.
	informers := controllers.NewInformers(client.NewClientset(cmConn), log, false)
	mcfg.Informers = informers
	g.run("controller-manager", func(ctx context.Context) error { return controllers.Run(ctx, cmConn, mcfg) })
	scfg := scheduler.DefaultConfig()
	scfg.Logger, scfg.Informers = log, informers
	sched, err := scheduler.New(client.NewClientset(schedConn), scfg)
	if err != nil {
		return err
	}
	g.run("scheduler", sched.Run)
	g.run("informers", func(ctx context.Context) error {
		informers.Start(ctx)
		<-ctx.Done()
		informers.Wait()
		return nil
	})

	node := agent.DefaultConfig()
	node.Kubelet, node.Logger, node.Busybox = cfg.Kubelet, log, busybox
	if node.Kubelet.RootDir == kubelet.DefaultConfig().RootDir {
		node.Kubelet.RootDir = filepath.Join(dataDir, "kubelet") // pods' volumes live with the rest of skiff up's data
	}
	if node.Kubelet.LocalPathRoot == kubelet.DefaultConfig().LocalPathRoot {
		node.Kubelet.LocalPathRoot = mcfg.LocalPathRoot // the provisioner's volumes, which the kubelet reclaims
	}
	node.Containerd.Socket, node.Containerd.LogDir, node.Containerd.InsecureRegistries = cfg.ContainerdAddress, filepath.Join(dataDir, "containers"), cfg.InsecureRegistries
	// The log server: on the node's address, any free port (published in the Node's
	// status), so that several skiff ups do not collide.
	node.LogListen, node.LogTLS = net.JoinHostPort(cfg.Kubelet.NodeIP, "0"), kubeletCerts.KubeletServerTLS()
	connect := func(ctx context.Context, socket string) (kubelet.Runtime, error) {
		c := node
		c.Containerd.Socket = socket
		rt, err := agent.Containerd(ctx, c)
		if err != nil {
			return nil, err
		}
		return rt, nil
	}
	rt, runtimeNote, err := pickRuntime(g.ctx, realMachine(dataDir, connect), cfg.Runtime, cfg.ContainerdAddress, dataDir, g.onStopped, log)
	if err != nil {
		return err
	}
	node.Runtime = agent.RuntimeSim
	if rt != nil {
		node.Runtime, node.Connected = agent.RuntimeContainerd, rt
	}
	netNote := wireNetwork(cfg.Network, &node, rt != nil, dataDir, realHost())
	if node.CNI && node.ServiceProxy {
		prepareBridgeNetfilter(log)
	}
	g.run("kubelet", func(ctx context.Context) error { return agent.Run(ctx, client.NewClientset(kubeletConn), node) })

	// The live map, as the admin: the URL skiffctl ui serves on by default.
	uiNote := ""
	if cfg.UIListen != "" {
		servers, opts, err := client.Resolve(client.Settings{Server: strings.Join(l.apiAddrs, ","), CAFile: p(pki.CACertFile),
			CertFile: p("admin.crt"), KeyFile: p("admin.key")}, client.Options{UserAgent: "skiff-up-ui", Logger: log})
		if err != nil {
			return err
		}
		srv, err := ui.New(ui.Config{Listen: cfg.UIListen, Servers: servers, Options: opts, Log: log})
		if err != nil {
			// A skiffctl ui may serve there already: Skiff runs without its own.
			uiNote = fmt.Sprintf("The live map is not served by skiff up: %v\n", err)
		} else {
			g.run("ui", srv.Run)
			uiNote = fmt.Sprintf("The live map of the cluster and its workloads: %s\n", srv.URL())
		}
	}

	out := cfg.Out
	fmt.Fprintf(out, "Skiff is up: API on %s, data in %s\n", strings.Join(l.apiAddrs, ","), dataDir)
	fmt.Fprintf(out, "Node %s runs containers: %s\n", nodeName, runtimeNote)
	fmt.Fprintf(out, "Pod network: %s\n", netNote)
	credentials := cfg.ClientConfig
	if credentials == "" {
		credentials = filepath.Join(dataDir, "client.config")
	}
	fmt.Fprintf(out, "TLS on; certificates in %s; skiffctl's admin credentials in %s, kubectl's in %s\n", pkiDir, credentials,
		filepath.Join(filepath.Dir(credentials), "kubeconfig"))
	fmt.Fprint(out, uiNote)
	fmt.Fprintf(out, "Try:\n  ./bin/skiffctl apply -f examples/nginx-deployment.yaml\n  ./bin/skiffctl get pods -o wide\n  ./bin/skiffctl trace deployment nginx-deployment\nCtrl-C stops everything.\n")
	return g.wait(out)
}

// makeCerts makes skiff up's CA and certificates on the first start, and the kubelet
// certificates, client and serving, of a node name it has not seen (or made before
// kubelets served logs, without server usage, or before they had a serving one). The
// API servers' certificate names host (--listen's) and the kubernetes Service's names
// and cluster IP, which pods reach it by; one that lacks any of them (made for another
// --listen, or before the Service's names were added) is issued again with them added.
func makeCerts(dir, nodeName, host string) error {
	svcHosts, err := apiserver.KubernetesServiceHosts(apiserver.Networking{})
	if err != nil {
		return err
	}
	hosts := append([]string{host}, svcHosts...)
	if _, err := os.Stat(filepath.Join(dir, pki.CAKeyFile)); errors.Is(err, os.ErrNotExist) {
		_, err := pki.InitDir(dir, pki.InitOptions{Nodes: []string{nodeName}, Hosts: hosts})
		return err
	}
	// A directory made before service-account tokens gets their key, one made before
	// the aggregation layer the front proxy's CA and certificate.
	if _, err := serviceaccount.EnsureKey(dir); err != nil {
		return err
	}
	if _, err := pki.EnsureFrontProxy(dir, time.Now(), 0, 0); err != nil {
		return err
	}
	leaves := pki.InitOptions{Nodes: []string{nodeName}, Hosts: hosts}.Leaves()
	var ca *pki.CA
	issue := func(name string, req pki.Request) error {
		var err error
		if ca == nil {
			if ca, err = pki.LoadCA(dir); err != nil {
				return err
			}
		}
		pair, err := ca.Issue(req)
		if err != nil {
			return err
		}
		_, _, err = pair.Write(dir, name)
		return err
	}
	for _, name := range []string{"kubelet-" + nodeName, "kubelet-" + nodeName + "-serving"} {
		if certs, err := pki.ReadCerts(filepath.Join(dir, name+".crt")); err == nil && slices.Contains(certs[0].ExtKeyUsage, x509.ExtKeyUsageServerAuth) {
			continue
		}
		if err := issue(name, leaves[name]); err != nil {
			return err
		}
	}
	certs, err := pki.ReadCerts(filepath.Join(dir, "apiserver.crt"))
	if err != nil {
		return err
	}
	req := pki.RequestFor(certs[0])
	missing := false
	for _, h := range leaves["apiserver"].Hosts {
		if h != "" && certs[0].VerifyHostname(h) != nil {
			req.Hosts, missing = append(req.Hosts, h), true
		}
	}
	if missing {
		return issue("apiserver", req)
	}
	return nil
}

// leafCertificates lists the certificates of a directory made by pki.InitDir, but the
// CAs', named by their file: the front-proxy client's renewed by its own CA.
func leafCertificates(dir string) ([]apiserver.CertFile, error) {
	crts, err := filepath.Glob(filepath.Join(dir, "*.crt"))
	if err != nil {
		return nil, err
	}
	var out []apiserver.CertFile
	for _, crt := range crts {
		if b := filepath.Base(crt); b == pki.CACertFile || b == pki.FrontProxyCACertFile {
			continue
		}
		name := strings.TrimSuffix(filepath.Base(crt), ".crt")
		cf := apiserver.CertFile{Name: name, CertFile: crt, KeyFile: filepath.Join(dir, name+".key")}
		if name == pki.FrontProxyClient {
			cf.CACertFile, cf.CAKeyFile = filepath.Join(dir, pki.FrontProxyCACertFile), filepath.Join(dir, pki.FrontProxyCAKeyFile)
		}
		out = append(out, cf)
	}
	return out, nil
}

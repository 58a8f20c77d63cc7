package pki

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestIssue(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	ca, err := NewCA("test-ca", now, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := ca.Cert.NotAfter.Sub(now); got != CAValidity {
		t.Errorf("CA lifetime %v, want %v", got, CAValidity)
	}
	tests := []struct {
		name    string
		req     Request
		wantErr string
		dns     []string
		ips     []string
		usages  []x509.ExtKeyUsage
		life    time.Duration
	}{
		{name: "server with hosts", req: Request{CommonName: UserAPIServer, Organization: []string{GroupAPIServers}, Hosts: []string{"a.example", "10.0.0.1", "a.example", "::1"}, Server: true, Client: true},
			dns: []string{"a.example"}, ips: []string{"10.0.0.1", "::1"}, usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, life: LeafValidity},
		{name: "kubelet client", req: Request{CommonName: "system:node:w1", Organization: []string{GroupNodes}, Client: true},
			usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, life: LeafValidity},
		{name: "short-lived", req: Request{CommonName: "x", Client: true, Validity: time.Hour}, usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, life: time.Hour},
		{name: "never outlives the CA", req: Request{CommonName: "x", Client: true, Validity: 20 * CAValidity}, usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, life: CAValidity + time.Minute},
		{name: "no name", req: Request{Client: true}, wantErr: "common name is required"},
		{name: "no usage", req: Request{CommonName: "x"}, wantErr: "neither server nor client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.NotBefore = now.Add(-time.Minute)
			p, err := ca.Issue(tt.req)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			user, groups := Identity(p.Cert)
			if user != tt.req.CommonName || !slices.Equal(groups, tt.req.Organization) {
				t.Errorf("identity %q %v", user, groups)
			}
			if !slices.Equal(p.Cert.DNSNames, tt.dns) {
				t.Errorf("DNS SANs %v, want %v", p.Cert.DNSNames, tt.dns)
			}
			var ips []string
			for _, ip := range p.Cert.IPAddresses {
				ips = append(ips, ip.String())
			}
			if !slices.Equal(ips, tt.ips) {
				t.Errorf("IP SANs %v, want %v", ips, tt.ips)
			}
			if !slices.Equal(p.Cert.ExtKeyUsage, tt.usages) {
				t.Errorf("usages %v, want %v", p.Cert.ExtKeyUsage, tt.usages)
			}
			if got := p.Cert.NotAfter.Sub(p.Cert.NotBefore); got != tt.life {
				t.Errorf("lifetime %v, want %v", got, tt.life)
			}
			roots := x509.NewCertPool()
			roots.AddCert(ca.Cert)
			if err := Verify(p.Cert, roots, tt.usages[0], now); err != nil {
				t.Errorf("does not verify: %v", err)
			}
		})
	}
}

func TestVerifyPeer(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	if _, err := InitDir(dir, InitOptions{Nodes: []string{"w1"}}); err != nil {
		t.Fatal(err)
	}
	ca, err := LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	foreign, _ := NewCA("foreign", now, 0)
	r, err := NewReloader("", "", filepath.Join(dir, CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	issue := func(ca *CA, cn, group string, notBefore time.Time, life time.Duration) []*x509.Certificate {
		p, err := ca.Issue(Request{CommonName: cn, Organization: []string{group}, Server: true, Client: true, NotBefore: notBefore, Validity: life})
		if err != nil {
			t.Fatal(err)
		}
		return []*x509.Certificate{p.Cert}
	}
	tests := []struct {
		name    string
		chain   []*x509.Certificate
		group   string
		wantErr string
	}{
		{name: "apiserver", chain: issue(ca, UserAPIServer, GroupAPIServers, now, 0), group: GroupAPIServers},
		{name: "any group", chain: issue(ca, "admin", GroupAdmin, now, 0)},
		{name: "wrong group", chain: issue(ca, "system:node:w1", GroupNodes, now, 0), group: GroupAPIServers, wantErr: `not in group "skiff:apiservers"`},
		{name: "foreign CA", chain: issue(foreign, UserAPIServer, GroupAPIServers, now, 0), group: GroupAPIServers, wantErr: "unknown authority"},
		{name: "expired", chain: issue(ca, UserAPIServer, GroupAPIServers, now.Add(-2*time.Hour), time.Hour), wantErr: "expired"},
		{name: "none", wantErr: "no certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := r.VerifyPeer(tt.chain, x509.ExtKeyUsageClientAuth, tt.group, now)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestInitAndRotate(t *testing.T) {
	dir := t.TempDir()
	files, err := InitDir(dir, InitOptions{Nodes: []string{"w1", "w2"}, Hosts: []string{"skiff.example", "192.0.2.7"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2+2*8+2+4 { // CA, leaves, service-account key pair, front proxy's CA and client
		t.Fatalf("wrote %d files: %v", len(files), files)
	}
	if _, err := InitDir(dir, InitOptions{}); err == nil || !strings.Contains(err.Error(), "already holds a CA") {
		t.Fatalf("second init: %v", err)
	}
	before, err := LoadPair(filepath.Join(dir, "kubelet-w2.crt"), filepath.Join(dir, "kubelet-w2.key"))
	if err != nil {
		t.Fatal(err)
	}
	if before.Cert.Subject.CommonName != "system:node:w2" || !slices.Equal(before.Cert.Subject.Organization, []string{GroupNodes}) {
		t.Fatalf("kubelet subject %v", before.Cert.Subject)
	}
	api, _ := ReadCerts(filepath.Join(dir, "apiserver.crt"))
	if !slices.Contains(api[0].DNSNames, "skiff.example") || !slices.ContainsFunc(api[0].IPAddresses, net.ParseIP("192.0.2.7").Equal) {
		t.Fatalf("apiserver SANs %v %v", api[0].DNSNames, api[0].IPAddresses)
	}

	rotated, err := RotateDir(dir, time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(rotated) != 9 { // the leaves and the front-proxy client
		t.Fatalf("rotated %v", rotated)
	}
	fp, err := ReadCerts(filepath.Join(dir, FrontProxyClient+".crt"))
	if err != nil {
		t.Fatal(err)
	}
	fpCA, err := LoadCAFiles(filepath.Join(dir, FrontProxyCACertFile), filepath.Join(dir, FrontProxyCAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fp[0].CheckSignatureFrom(fpCA.Cert) != nil || fp[0].Subject.CommonName != FrontProxyClient {
		t.Fatalf("rotated front-proxy client: %v, issuer %v", fp[0].Subject, fp[0].Issuer)
	}
	after, err := LoadPair(filepath.Join(dir, "kubelet-w2.crt"), filepath.Join(dir, "kubelet-w2.key"))
	if err != nil {
		t.Fatal(err)
	}
	if after.Cert.SerialNumber.Cmp(before.Cert.SerialNumber) == 0 || after.Key.Equal(before.Key) {
		t.Fatal("rotation kept the certificate or key")
	}
	if after.Cert.Subject.String() != before.Cert.Subject.String() {
		t.Fatalf("rotation changed the subject: %v", after.Cert.Subject)
	}
	api2, _ := ReadCerts(filepath.Join(dir, "apiserver.crt"))
	if !slices.Equal(api2[0].DNSNames, api[0].DNSNames) || len(api2[0].IPAddresses) != len(api[0].IPAddresses) {
		t.Fatal("rotation changed the SANs")
	}
	serves := func(c *x509.Certificate) bool { return slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageServerAuth) }
	if !serves(before.Cert) || !serves(after.Cert) {
		t.Fatal("a kubelet certificate cannot serve logs")
	}
	// The kubelet serving certificate: the node's identity, server usage only, its name.
	serving, err := ReadCerts(filepath.Join(dir, "kubelet-w2-serving.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if s := serving[0]; s.Subject.String() != before.Cert.Subject.String() || !slices.Equal(s.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) ||
		!slices.Equal(s.DNSNames, []string{"w2"}) {
		t.Fatalf("kubelet serving certificate: %v, usages %v, names %v", s.Subject, s.ExtKeyUsage, s.DNSNames)
	}
}

// TestRotateGivesOldKubeletCertificatesServerUsage: a kubelet certificate made before
// kubelets served logs (client usage only) gains server usage when rotated.
func TestRotateGivesOldKubeletCertificatesServerUsage(t *testing.T) {
	dir := t.TempDir()
	if _, err := InitDir(dir, InitOptions{}); err != nil {
		t.Fatal(err)
	}
	ca, err := LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	old, err := ca.Issue(Request{CommonName: NodeUserPrefix + "w1", Organization: []string{GroupNodes}, Client: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := old.Write(dir, "kubelet-w1"); err != nil {
		t.Fatal(err)
	}
	if _, err := RotateDir(dir, time.Now(), 0); err != nil {
		t.Fatal(err)
	}
	certs, err := ReadCerts(filepath.Join(dir, "kubelet-w1.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if u := certs[0].ExtKeyUsage; !slices.Contains(u, x509.ExtKeyUsageServerAuth) || !slices.Contains(u, x509.ExtKeyUsageClientAuth) {
		t.Fatalf("rotated kubelet certificate's usages: %v", u)
	}
	admin, _ := ReadCerts(filepath.Join(dir, "admin.crt"))
	if slices.Contains(admin[0].ExtKeyUsage, x509.ExtKeyUsageServerAuth) {
		t.Fatal("rotation gave the admin certificate server usage")
	}
}

// TestReloadHandshake: a server and a client over the reloading configs; after a
// rotation new handshakes present the new certificates, without new configs.
func TestReloadHandshake(t *testing.T) {
	dir := t.TempDir()
	if _, err := InitDir(dir, InitOptions{}); err != nil {
		t.Fatal(err)
	}
	p := func(n string) string { return filepath.Join(dir, n) }
	srv, err := NewReloader(p("apiserver.crt"), p("apiserver.key"), p("ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	cli, err := NewReloader(p("admin.crt"), p("admin.key"), p("ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	handshake := func() (serverSerial, clientSerial string) {
		t.Helper()
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		sc := tls.Server(a, srv.ServerTLS())
		cc := tls.Client(b, cli.ClientTLS())
		errc := make(chan error, 1)
		go func() { errc <- sc.Handshake() }()
		if err := cc.Handshake(); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		return cc.ConnectionState().PeerCertificates[0].SerialNumber.String(), sc.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	s1, c1 := handshake()
	if _, err := RotateDir(dir, time.Now(), 0); err != nil {
		t.Fatal(err)
	}
	s2, c2 := handshake()
	if s1 == s2 || c1 == c2 {
		t.Fatalf("serials before %s %s, after %s %s: not reloaded", s1, c1, s2, c2)
	}
}

// TestTLSSendsFullRecords: every configuration sends full-size records from a
// connection's first byte (see DynamicRecordSizingDisabled in reload.go).
func TestTLSSendsFullRecords(t *testing.T) {
	dir := t.TempDir()
	if _, err := InitDir(dir, InitOptions{Nodes: []string{"w1"}}); err != nil {
		t.Fatal(err)
	}
	r, err := NewReloader(filepath.Join(dir, "apiserver.crt"), filepath.Join(dir, "apiserver.key"), filepath.Join(dir, CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	peerServer, err := r.PeerTLS().GetConfigForClient(nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*tls.Config{"server": r.ServerTLS(), "client": r.ClientTLS(), "peer": r.PeerTLS(),
		"peer (server side)": peerServer, "kubelet client": r.KubeletClientTLS("w1"), "kubelet server": r.KubeletServerTLS()} {
		if !c.DynamicRecordSizingDisabled {
			t.Errorf("%s: dynamic record sizing is on", name)
		}
	}
}

// TestEnsureFrontProxy: a directory made before the aggregation layer gets the front
// proxy's CA and client certificate, signed by that CA and not by the cluster CA; a
// second call changes nothing.
func TestEnsureFrontProxy(t *testing.T) {
	dir := t.TempDir()
	if _, err := InitDir(dir, InitOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{FrontProxyCACertFile, FrontProxyCAKeyFile, FrontProxyClient + ".crt", FrontProxyClient + ".key"} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	files, err := EnsureFrontProxy(dir, time.Now(), 0, 0)
	if err != nil || len(files) != 4 {
		t.Fatalf("EnsureFrontProxy = %v, %v", files, err)
	}
	client, err := ReadCerts(filepath.Join(dir, FrontProxyClient+".crt"))
	if err != nil {
		t.Fatal(err)
	}
	fpCA, _ := ReadCerts(filepath.Join(dir, FrontProxyCACertFile))
	cluster, _ := ReadCerts(filepath.Join(dir, CACertFile))
	c := client[0]
	if c.CheckSignatureFrom(fpCA[0]) != nil || c.CheckSignatureFrom(cluster[0]) == nil || c.Subject.CommonName != FrontProxyClient ||
		!slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) {
		t.Fatalf("front-proxy client %v by %v, usages %v", c.Subject, c.Issuer, c.ExtKeyUsage)
	}
	if again, err := EnsureFrontProxy(dir, time.Now(), 0, 0); err != nil || len(again) != 0 {
		t.Fatalf("second EnsureFrontProxy = %v, %v", again, err)
	}
	if leaves, _ := leafFiles(dir); slices.ContainsFunc(leaves, IsFrontProxyFile) {
		t.Fatalf("the cluster CA's leaves include the front proxy's: %v", leaves)
	}
}

package main

import (
	"context"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/pflag"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/internal/statusz"
)

// connFlags are a component's flags for reaching the API servers.
type connFlags struct {
	s client.Settings
	// rotate: renew the client certificate through the API servers when it is due.
	rotate bool
	// httpListen: the address of the component's /healthz, /livez and /metrics.
	httpListen string
}

func (c *connFlags) register(f *pflag.FlagSet) {
	f.StringVar(&c.s.Server, "server", "", "API servers, comma-separated (default $SKIFF_SERVER, the client config's, or 127.0.0.1:7443)")
	f.StringVar(&c.s.CAFile, "ca-file", "", "the cluster CA: API servers must present a certificate it signed (turns TLS on)")
	f.StringVar(&c.s.CertFile, "cert-file", "", "client certificate (reloaded when the file changes)")
	f.StringVar(&c.s.KeyFile, "key-file", "", "the client certificate's key")
	f.StringVar(&c.s.Token, "token", "", "bearer token (with --ca-file)")
	f.StringVar(&c.s.Config, "config", "", "client config file with servers and credential files (default $SKIFF_CONFIG, if set)")
	f.StringVar(&c.httpListen, "http-listen", "", "address for /healthz, /livez and /metrics over plain HTTP, e.g. 127.0.0.1:10257 (default: off)")
	f.BoolVar(&c.rotate, "rotate-certificates", true, "renew the client certificate (--cert-file, --key-file), and a kubelet's serving certificate (--tls-cert-file, --tls-private-key-file), at two thirds of its life, or when --ca-file's first CA is a new one, by asking the API servers to sign a new key for the same identity; the files are replaced and used without a restart")
}

// renewCertificates keeps the client certificate of s renewed through cc while ctx
// lasts (client.CertificateManager), if it has one and --rotate-certificates; wait
// returns once it stopped.
func (c *connFlags) renewCertificates(ctx context.Context, s client.Settings, cc *client.Conn, log hclog.Logger) (wait func()) {
	return c.renewCertificate(ctx, s, cc, "", "", log)
}

// renewCertificate is renewCertificates for servingCert and servingKey, a kubelet
// serving certificate of the same identity, when they are given and are not the
// client certificate's files.
func (c *connFlags) renewCertificate(ctx context.Context, s client.Settings, cc *client.Conn, servingCert, servingKey string, log hclog.Logger) (wait func()) {
	ca, cert, key, err := s.Files()
	if err != nil || !c.rotate || ca == "" || cert == "" {
		return func() {}
	}
	m := &client.CertificateManager{Conn: cc, CertFile: cert, KeyFile: key, CAFile: ca, Logger: log}
	if servingCert != "" {
		if servingCert == cert {
			return func() {}
		}
		m.CertFile, m.KeyFile, m.Serving = servingCert, servingKey, true
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.Run(ctx)
	}()
	return func() { <-done }
}

// serveStatus serves /healthz, /livez and /metrics on --http-listen while ctx lasts;
// wait returns once the server stopped.
func (c *connFlags) serveStatus(ctx context.Context, log hclog.Logger) (wait func(), err error) {
	return statusz.Serve(ctx, c.httpListen, log)
}

// dial connects with the flags' settings and opts (UserAgent, Logger, ...).
func (c *connFlags) dial(opts client.Options) (*client.Conn, error) {
	servers, opts, err := client.Resolve(c.s, opts)
	if err != nil {
		return nil, err
	}
	return client.Dial(servers, opts)
}

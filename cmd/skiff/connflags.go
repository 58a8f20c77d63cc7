package main

import (
	"github.com/hashicorp/go-hclog"
	"github.com/spf13/pflag"

	"github.com/skiffhq/skiff/client"
)

// connFlags are a component's flags for reaching the API servers.
type connFlags struct{ s client.Settings }

func (c *connFlags) register(f *pflag.FlagSet) {
	f.StringVar(&c.s.Server, "server", "", "API servers, comma-separated (default $SKIFF_SERVER, the client config's, or 127.0.0.1:7443)")
	f.StringVar(&c.s.CAFile, "ca-file", "", "the cluster CA: API servers must present a certificate it signed (turns TLS on)")
	f.StringVar(&c.s.CertFile, "cert-file", "", "client certificate (reloaded when the file changes)")
	f.StringVar(&c.s.KeyFile, "key-file", "", "the client certificate's key")
	f.StringVar(&c.s.Token, "token", "", "bearer token (with --ca-file)")
	f.StringVar(&c.s.Config, "config", "", "client config file with servers and credential files (default $SKIFF_CONFIG, if set)")
}

func (c *connFlags) dial(userAgent string, log hclog.Logger) (*client.Conn, error) {
	servers, opts, err := client.Resolve(c.s, client.Options{UserAgent: userAgent, Logger: log})
	if err != nil {
		return nil, err
	}
	return client.Dial(servers, opts)
}

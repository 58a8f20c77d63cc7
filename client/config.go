package client

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/skiffhq/skiff/pki"
)

// ConfigFile is a client config file, YAML or JSON:
//
//	servers: [10.0.0.1:7443, 10.0.0.2:7443]
//	caFile: ca.crt          # the cluster CA: turns TLS on
//	certFile: admin.crt     # a client certificate and its key
//	keyFile: admin.key
//	token: ...              # or a bearer token (tokenFile: a file holding it)
//
// Relative paths are relative to the file's directory. skiffctl reads $SKIFF_CONFIG, else
// ~/.skiff/config (what `skiff up` writes); flags override each field.
type ConfigFile struct {
	Servers   []string `json:"servers,omitempty"`
	CAFile    string   `json:"caFile,omitempty"`
	CertFile  string   `json:"certFile,omitempty"`
	KeyFile   string   `json:"keyFile,omitempty"`
	Token     string   `json:"token,omitempty"`
	TokenFile string   `json:"tokenFile,omitempty"`
}

// DefaultConfigPath is $SKIFF_CONFIG, else ~/.skiff/config.
func DefaultConfigPath() string {
	if p := os.Getenv("SKIFF_CONFIG"); p != "" {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".skiff", "config")
}

// LoadConfigFile reads a client config file, making its paths absolute.
func LoadConfigFile(path string) (*ConfigFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("client config: %w", err)
	}
	var c ConfigFile
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		return nil, fmt.Errorf("client config %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	for _, p := range []*string{&c.CAFile, &c.CertFile, &c.KeyFile, &c.TokenFile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	return &c, nil
}

// WriteConfigFile writes c to path (mode 0600: it may hold a token), creating its directory.
func WriteConfigFile(path string, c ConfigFile) error {
	b, err := yaml.Marshal(c)
	if err != nil {
		return fmt.Errorf("client config: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("client config: %w", err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("client config: %w", err)
	}
	return nil
}

// Settings are a client's connection flags. Empty fields fall back to the config file.
type Settings struct {
	// Config is the config file to read; "" reads DefaultConfigPath when
	// UseDefaultConfig is set (skiffctl), and none otherwise (the components, unless
	// $SKIFF_CONFIG is set).
	Config           string
	UseDefaultConfig bool
	// Server is a comma-separated list; "" falls back to $SKIFF_SERVER, the config
	// file, then DefaultServer.
	Server                    string
	CAFile, CertFile, KeyFile string
	Token                     string
}

// resolved is what settings come to, flags over the config file.
type resolved struct {
	server, ca, cert, key, token string
}

func (s Settings) resolve() (resolved, error) {
	path := s.Config
	if path == "" && (s.UseDefaultConfig || os.Getenv("SKIFF_CONFIG") != "") {
		path = DefaultConfigPath()
	}
	var cf ConfigFile
	if path != "" {
		c, err := LoadConfigFile(path)
		switch {
		case err == nil:
			cf = *c
		case s.Config != "" || !errors.Is(err, os.ErrNotExist):
			return resolved{}, err
		}
	}
	pick := func(flag, file string) string {
		if flag != "" {
			return flag
		}
		return file
	}
	r := resolved{server: s.Server}
	if r.server == "" && os.Getenv("SKIFF_SERVER") == "" && len(cf.Servers) > 0 {
		r.server = strings.Join(cf.Servers, ",")
	}
	r.ca, r.cert, r.key = pick(s.CAFile, cf.CAFile), pick(s.CertFile, cf.CertFile), pick(s.KeyFile, cf.KeyFile)
	r.token = pick(s.Token, cf.Token)
	if r.token == "" && cf.TokenFile != "" {
		b, err := os.ReadFile(cf.TokenFile)
		if err != nil {
			return resolved{}, fmt.Errorf("client config %s: %w", path, err)
		}
		r.token = strings.TrimSpace(string(b))
	}
	return r, nil
}

// ConfigFile is what the settings come to, flags over the config file: the servers
// (DefaultServer when none is given), the CA, certificate and key files and the token.
func (s Settings) ConfigFile() (ConfigFile, error) {
	r, err := s.resolve()
	if err != nil {
		return ConfigFile{}, err
	}
	return ConfigFile{Servers: Servers(r.server), CAFile: r.ca, CertFile: r.cert, KeyFile: r.key, Token: r.token}, nil
}

// Files are the CA, certificate and key files the settings name, by flag or through the
// config file ("" where none): a kubelet serves its log server with them.
func (s Settings) Files() (ca, cert, key string, err error) {
	r, err := s.resolve()
	return r.ca, r.cert, r.key, err
}

// Resolve turns settings into the servers to dial and the connection's TLS and
// credentials (set on opts, which keeps its other fields).
func Resolve(s Settings, opts Options) ([]string, Options, error) {
	rs, err := s.resolve()
	if err != nil {
		return nil, opts, err
	}
	servers := Servers(rs.server)
	if rs.ca == "" {
		if rs.cert != "" || rs.token != "" {
			return nil, opts, errors.New("a client certificate or token needs TLS: give the cluster CA with --ca-file (or caFile in the client config)")
		}
		return servers, opts, nil
	}
	r, err := pki.NewReloader(rs.cert, rs.key, rs.ca)
	if err != nil {
		return nil, opts, err
	}
	opts.TLS = r.ClientTLS()
	if rs.cert != "" {
		opts.Certificate = r.Certificate
	}
	if rs.token != "" {
		opts.PerRPCCredentials = BearerToken(rs.token)
	}
	return servers, opts, nil
}

// BearerToken sends "authorization: Bearer TOKEN" with every call (over TLS only).
type BearerToken string

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (t BearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(t)}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials.
func (BearerToken) RequireTransportSecurity() bool { return true }

package client

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"sigs.k8s.io/yaml"
)

// A kubeconfig is kubectl's (and client-go's, and Helm's) client config. Skiff writes one
// for the same API servers and credentials as a client config: the REST API is served on
// the API port, so the addresses are the same. A kubeconfig's cluster has one server,
// so each API server gets a cluster and a context of its own (NAME, NAME-2, NAME-3, ...),
// the first current: `kubectl --context NAME-2` talks to the second member.

type kubeconfig struct {
	APIVersion     string         `json:"apiVersion"`
	Kind           string         `json:"kind"`
	Clusters       []namedCluster `json:"clusters"`
	Users          []namedUser    `json:"users"`
	Contexts       []namedContext `json:"contexts"`
	CurrentContext string         `json:"current-context"`
	Preferences    struct{}       `json:"preferences"`
}

type namedCluster struct {
	Name    string `json:"name"`
	Cluster struct {
		Server               string `json:"server"`
		CertificateAuthority string `json:"certificate-authority,omitempty"`
	} `json:"cluster"`
}

type namedUser struct {
	Name string `json:"name"`
	User struct {
		ClientCertificate string `json:"client-certificate,omitempty"`
		ClientKey         string `json:"client-key,omitempty"`
		Token             string `json:"token,omitempty"`
		TokenFile         string `json:"tokenFile,omitempty"`
	} `json:"user"`
}

type namedContext struct {
	Name    string `json:"name"`
	Context struct {
		Cluster   string `json:"cluster"`
		User      string `json:"user"`
		Namespace string `json:"namespace,omitempty"`
	} `json:"context"`
}

// DefaultKubeconfigPath is ~/.skiff/kubeconfig, where skiff up writes its kubeconfig.
func DefaultKubeconfigPath() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".skiff", "kubeconfig")
}

// Kubeconfig is the kubeconfig of a client config, its clusters and contexts named after
// name. Paths stay paths (made absolute); a server without a CA is reached over http.
func Kubeconfig(name string, c ConfigFile) ([]byte, error) {
	if len(c.Servers) == 0 {
		return nil, fmt.Errorf("kubeconfig: no API server")
	}
	abs := func(p string) string {
		if p == "" {
			return ""
		}
		if a, err := filepath.Abs(p); err == nil {
			return a
		}
		return p
	}
	k := kubeconfig{APIVersion: "v1", Kind: "Config", CurrentContext: name}
	user := namedUser{Name: name + "-admin"}
	user.User.ClientCertificate, user.User.ClientKey = abs(c.CertFile), abs(c.KeyFile)
	user.User.Token, user.User.TokenFile = c.Token, abs(c.TokenFile)
	k.Users = []namedUser{user}
	scheme := "https://"
	if c.CAFile == "" {
		scheme = "http://"
	}
	for i, s := range c.Servers {
		n := name
		if i > 0 {
			n += "-" + strconv.Itoa(i+1)
		}
		cl := namedCluster{Name: n}
		cl.Cluster.Server, cl.Cluster.CertificateAuthority = scheme+s, abs(c.CAFile)
		ctx := namedContext{Name: n}
		ctx.Context.Cluster, ctx.Context.User, ctx.Context.Namespace = n, user.Name, "default"
		k.Clusters, k.Contexts = append(k.Clusters, cl), append(k.Contexts, ctx)
	}
	return yaml.Marshal(k)
}

// WriteKubeconfig writes the kubeconfig of c to path (mode 0600), creating its directory.
func WriteKubeconfig(path, name string, c ConfigFile) error {
	b, err := Kubeconfig(name, c)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	return nil
}

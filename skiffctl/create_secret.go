package skiffctl

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// kubectl's create secret generic|tls|docker-registry and create serviceaccount: an
// object made from flags, created (createObject, with create's --dry-run and -o).

func createSecretCmd(g *globals, dry *dryRun, o *output) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secret (generic | tls | docker-registry) NAME [flags]",
		Short: "Create a Secret from files, literals, a certificate and key, or registry credentials",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(createSecretGenericCmd(g, dry, o), createSecretTLSCmd(g, dry, o), createSecretDockerRegistryCmd(g, dry, o))
	return cmd
}

// secretData is a Secret's data from kubectl's --from-literal, --from-file and
// --from-env-file.
func secretData(literals, files, envFiles []string) (map[string][]byte, error) {
	data := map[string][]byte{}
	err := readSources(literals, files, envFiles, func(key string, value []byte, source string) error {
		_, taken := data[key]
		if err := checkDataKey("Secret", source, key, taken); err != nil {
			return err
		}
		data[key] = value
		return nil
	})
	return data, err
}

// newSecret is a Secret named name of typ holding data, with kubectl's --append-hash.
func newSecret(name string, typ corev1.SecretType, data map[string][]byte, appendHash bool) (*corev1.Secret, error) {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}, Type: typ, Data: data}
	if appendHash {
		h, err := secretHash(s)
		if err != nil {
			return nil, err
		}
		s.Name += "-" + h
	}
	return s, nil
}

func createSecretGenericCmd(g *globals, dry *dryRun, o *output) *cobra.Command {
	var literals, files, envFiles []string
	var typ string
	var appendHash bool
	cmd := &cobra.Command{
		Use:   "generic NAME [--type=string] [--from-file=[key=]source] [--from-literal=key1=value1] [--dry-run=server|client|none]",
		Short: "Create a Secret from a local file, directory or literal value",
		Long: `Create a Secret from files, directories or literal values, as kubectl does.

A --from-file key is the file's name unless given (key=path); a directory adds each
regular file in it. --from-env-file reads KEY=VALUE lines. The values are stored
encrypted when the API servers have an encryption key file.`,
		Example: `  skiffctl create secret generic db-user-pass --from-literal=username=admin --from-literal=password='S!B\*d$zDsb='
  skiffctl create secret generic ssh-key --from-file=ssh-privatekey=$HOME/.ssh/id_ed25519 --type=kubernetes.io/ssh-auth
  skiffctl create secret generic app-env --from-env-file=app.env --dry-run=client -o yaml`,
		Args: oneName("secret"),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := secretData(literals, files, envFiles)
			if err != nil {
				return err
			}
			s, err := newSecret(args[0], corev1.SecretType(typ), data, appendHash)
			if err != nil {
				return err
			}
			return g.createObject(cmd, s, *dry, *o)
		},
	}
	addSourceFlags(cmd.Flags(), &literals, &files, &envFiles)
	cmd.Flags().StringVar(&typ, "type", "", "the Secret's type (default Opaque)")
	cmd.Flags().BoolVar(&appendHash, "append-hash", false, "append a hash of the Secret to its name")
	return cmd
}

func createSecretTLSCmd(g *globals, dry *dryRun, o *output) *cobra.Command {
	var certFile, keyFile string
	var appendHash bool
	cmd := &cobra.Command{
		Use:   "tls NAME --cert=path/to/cert/file --key=path/to/key/file [--dry-run=server|client|none]",
		Short: "Create a TLS Secret from a certificate and its key",
		Long: `Create a kubernetes.io/tls Secret holding a PEM certificate (tls.crt) and its private
key (tls.key), which must match.`,
		Example: `  skiffctl create secret tls web-tls --cert=web.crt --key=web.key`,
		Args:    oneName("secret"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if certFile == "" || keyFile == "" {
				return fmt.Errorf("key and cert must be specified")
			}
			cert, err := os.ReadFile(certFile)
			if err != nil {
				return err
			}
			key, err := os.ReadFile(keyFile)
			if err != nil {
				return err
			}
			if _, err := tls.X509KeyPair(cert, key); err != nil {
				return fmt.Errorf("failed to load key pair %s, %s: %w", certFile, keyFile, err)
			}
			s, err := newSecret(args[0], corev1.SecretTypeTLS, map[string][]byte{corev1.TLSCertKey: cert, corev1.TLSPrivateKeyKey: key}, appendHash)
			if err != nil {
				return err
			}
			return g.createObject(cmd, s, *dry, *o)
		},
	}
	cmd.Flags().StringVar(&certFile, "cert", "", "the PEM certificate (chain)")
	cmd.Flags().StringVar(&keyFile, "key", "", "the certificate's PEM private key")
	cmd.Flags().BoolVar(&appendHash, "append-hash", false, "append a hash of the Secret to its name")
	return cmd
}

// dockerConfigEntry is one registry's credentials in a .dockerconfigjson.
type dockerConfigEntry struct {
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	Email    string `json:"email,omitempty"`
	Auth     string `json:"auth,omitempty"`
}

func createSecretDockerRegistryCmd(g *globals, dry *dryRun, o *output) *cobra.Command {
	var user, password, email, server string
	var files []string
	var appendHash bool
	cmd := &cobra.Command{
		Use:   "docker-registry NAME --docker-username=user --docker-password=password --docker-email=email [--docker-server=string] [--from-file=[key=]source] [--dry-run=server|client|none]",
		Short: "Create a Secret of registry credentials, for imagePullSecrets",
		Long: `Create a kubernetes.io/dockerconfigjson Secret: a registry's credentials, as a pod's
imagePullSecrets (or its service account's) names them for the kubelet to pull with; or,
with --from-file=.dockerconfigjson=PATH, a Docker config file's.`,
		Example: `  skiffctl create secret docker-registry regcred --docker-server=registry.example.com:5000 \
      --docker-username=alice --docker-password=s3cret --docker-email=alice@example.com`,
		Args: oneName("secret"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var data map[string][]byte
			if len(files) > 0 {
				var err error
				if data, err = secretData(nil, files, nil); err != nil {
					return err
				}
			} else {
				if user == "" || password == "" || server == "" {
					return fmt.Errorf("either --from-file or the combination of --docker-username, --docker-password and --docker-server is required")
				}
				cfg, err := json.Marshal(map[string]map[string]dockerConfigEntry{"auths": {server: {Username: user, Password: password, Email: email,
					Auth: base64.StdEncoding.EncodeToString([]byte(user + ":" + password))}}})
				if err != nil {
					return err
				}
				data = map[string][]byte{corev1.DockerConfigJsonKey: cfg}
			}
			s, err := newSecret(args[0], corev1.SecretTypeDockerConfigJson, data, appendHash)
			if err != nil {
				return err
			}
			return g.createObject(cmd, s, *dry, *o)
		},
	}
	cmd.Flags().StringVar(&user, "docker-username", "", "the registry user name")
	cmd.Flags().StringVar(&password, "docker-password", "", "the registry password")
	cmd.Flags().StringVar(&email, "docker-email", "", "the registry user's email")
	cmd.Flags().StringVar(&server, "docker-server", "https://index.docker.io/v1/", "the registry's address")
	cmd.Flags().StringArrayVar(&files, "from-file", nil, "a Docker config file instead ([KEY=]PATH; the key .dockerconfigjson)")
	cmd.Flags().BoolVar(&appendHash, "append-hash", false, "append a hash of the Secret to its name")
	return cmd
}

func createServiceAccountCmd(g *globals, dry *dryRun, o *output) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "serviceaccount NAME [--dry-run=server|client|none]",
		Aliases: []string{"sa"},
		Short:   "Create a ServiceAccount",
		Example: `  skiffctl create serviceaccount build-robot`,
		Args:    oneName("service account"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.createObject(cmd, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: args[0]}}, *dry, *o)
		},
	}
	return cmd
}

// secretHash is kubectl's --append-hash suffix: ten characters of the SHA-256 of the
// Secret's kind, name, type and data, with the characters that could spell words
// replaced.
func secretHash(s *corev1.Secret) (string, error) {
	m := map[string]any{"kind": "Secret", "type": s.Type, "name": s.Name, "data": s.Data}
	b, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	enc := []byte(hex.EncodeToString(sum[:])[:10])
	for i, c := range enc {
		switch c {
		case '0':
			enc[i] = 'g'
		case '1':
			enc[i] = 'h'
		case '3':
			enc[i] = 'k'
		case 'a':
			enc[i] = 'm'
		case 'e':
			enc[i] = 't'
		}
	}
	return string(enc), nil
}

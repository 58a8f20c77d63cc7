package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/apiserver"
	"github.com/skiffhq/skiff/apiserver/auth"
	"github.com/skiffhq/skiff/apiserver/encryption"
	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/pki"
)

func certsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "Create and rotate the cluster's CA and certificates",
		Args:  cobra.NoArgs,
	}
	var dir, nodes, hosts, servers string
	var leafValidity time.Duration
	initCmd := &cobra.Command{
		Use:   "init",
		Short: "Create a CA and certificates for apiservers, controller-manager, scheduler, kubelets and an admin",
		Long: `Create, in --dir, a CA (ca.crt, ca.key) and certificates signed by it:
apiserver (every API server, for its API, its Raft peers and joins; SANs: --hosts,
localhost and loopback, and the names and cluster IP pods reach it by through the
kubernetes Service with the default networking: kubernetes, kubernetes.default,
kubernetes.default.svc, kubernetes.default.svc.cluster.local, 10.43.0.1),
controller-manager, scheduler, admin, and for each of --nodes
kubelet-NAME (user system:node:NAME, group skiff:nodes: the kubelet's client
certificate) and kubelet-NAME-serving (the same user, server usage only: its log and
exec server's, skiff kubelet --tls-cert-file). The aggregation layer's front proxy gets a
CA of its own (front-proxy-ca.crt, .key) and front-proxy-client (the certificate API
servers present to extension API servers: --proxy-client-cert-file).
Keys are ECDSA P-256; the CA is valid ten years, the others one. It also writes a
kubeconfig with the admin's credentials, a cluster and context per API server of
--servers (skiff, skiff-2, ...), for kubectl and client-go.

Also the encryption key file, encryption.yaml (unless there is one): a random AES-256 key
that encrypts Secrets at rest, for every API server's --encryption-key-file.`,
		Example: `  skiff certs init --dir /etc/skiff/pki --nodes w1,w2,w3 --hosts skiff.internal,10.0.0.1,10.0.0.2,10.0.0.3`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			svcHosts, err := apiserver.KubernetesServiceHosts(apiserver.Networking{})
			if err != nil {
				return err
			}
			files, err := pki.InitDir(dir, pki.InitOptions{Nodes: splitList(nodes), Hosts: append(splitList(hosts), svcHosts...), LeafValidity: leafValidity})
			if err != nil {
				return err
			}
			apis := splitList(servers)
			if len(apis) == 0 {
				for _, h := range splitList(hosts) {
					apis = append(apis, net.JoinHostPort(h, "7443"))
				}
			}
			if len(apis) == 0 {
				apis = []string{client.DefaultServer}
			}
			kc := filepath.Join(dir, "kubeconfig")
			if err := client.WriteKubeconfig(kc, "skiff", client.ConfigFile{Servers: apis, CAFile: filepath.Join(dir, pki.CACertFile),
				CertFile: filepath.Join(dir, "admin.crt"), KeyFile: filepath.Join(dir, "admin.key")}); err != nil {
				return err
			}
			files = append(files, kc)
			keyFile := filepath.Join(dir, encryption.FileName)
			if made, err := encryption.EnsureFile(keyFile); err != nil {
				return err
			} else if made {
				files = append(files, keyFile)
			}
			for _, f := range files {
				fmt.Fprintln(cmd.OutOrStdout(), "wrote", f)
			}
			return nil
		},
	}
	initCmd.Flags().StringVar(&dir, "dir", "", "directory for the CA and certificates (required)")
	initCmd.Flags().StringVar(&nodes, "nodes", "", "kubelet node names, comma-separated: one certificate each")
	initCmd.Flags().StringVar(&hosts, "hosts", "", "API servers' host names and IP addresses, comma-separated (certificate SANs)")
	initCmd.Flags().StringVar(&servers, "servers", "", "API servers' addresses (host:port, comma-separated) for the kubeconfig (default: each of --hosts on port 7443, else 127.0.0.1:7443)")
	initCmd.Flags().DurationVar(&leafValidity, "validity", pki.LeafValidity, "lifetime of the leaf certificates")
	initCmd.MarkFlagRequired("dir")

	var rotateDir string
	var rotateValidity time.Duration
	rotateCmd := &cobra.Command{
		Use:   "rotate",
		Short: "Re-issue every leaf certificate in --dir from its CA, with new keys",
		Long: `Re-issue every certificate in --dir except the CAs', keeping subjects, names and usages
(kubelet certificates gain server usage, for their log server, if they lack it):
front-proxy-client from the front-proxy CA, the others from the cluster CA.
Files are replaced atomically; running servers and clients pick the new ones up for new
connections without a restart.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			files, err := pki.RotateDir(rotateDir, time.Now(), rotateValidity)
			for _, f := range files {
				fmt.Fprintln(cmd.OutOrStdout(), "rotated", f)
			}
			return err
		},
	}
	rotateCmd.Flags().StringVar(&rotateDir, "dir", "", "directory made by skiff certs init (required)")
	rotateCmd.Flags().DurationVar(&rotateValidity, "validity", pki.LeafValidity, "lifetime of the new certificates")
	rotateCmd.MarkFlagRequired("dir")
	var rotateCADir string
	rotateCACmd := &cobra.Command{
		Use:       "rotate-ca add|switch|drop",
		Short:     "Replace the CA of --dir with a new one, in three steps that never refuse a component",
		ValidArgs: []string{pki.RotateCAAdd, pki.RotateCASwitch, pki.RotateCADrop},
		Long: `Replace the CA of --dir, one step at a time; after each, copy ca.crt to every machine
(and, after switch, ca.key to the API servers that renew certificates).

  add     make a new CA: ca.crt lists the old CA (which still signs) and the new one, so
          that everyone trusts both; the new key waits in ca-next.key
  switch  the new CA signs: ca.crt lists it first and ca.key is its key; every
          certificate of --dir is re-issued by it. API servers re-issue their own
          certificates, and components renew theirs through them, when their copy of
          ca.crt names the new CA first
  drop    ca.crt lists the new CA alone; refused while a certificate of --dir is still
          the old CA's. Run it once every certificate in use is the new CA's
          (skiffctl cluster certs, and the components' files)

Running servers and clients read the files anew, without a restart.`,
		Example: `  skiff certs rotate-ca add --dir /etc/skiff/pki
  skiff certs rotate-ca switch --dir /etc/skiff/pki
  skiff certs rotate-ca drop --dir /etc/skiff/pki`,
		Args: cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			files, err := pki.RotateCA(rotateCADir, args[0], time.Now())
			for _, f := range files {
				fmt.Fprintln(cmd.OutOrStdout(), "wrote", f)
			}
			return err
		},
	}
	rotateCACmd.Flags().StringVar(&rotateCADir, "dir", "", "directory made by skiff certs init (required)")
	rotateCACmd.MarkFlagRequired("dir")
	var user, group string
	tokenCmd := &cobra.Command{
		Use:   "token",
		Short: "Make a random bearer token and its --token-file line",
		Long: `Print a new random bearer token on the first line, and on the second the line to add to
the API servers' --token-file (which holds only the token's SHA-256).`,
		Example: `  skiff certs token --user ci --group skiff:admin`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if user == "" {
				return fmt.Errorf("--user is required")
			}
			var b [32]byte
			if _, err := rand.Read(b[:]); err != nil {
				return err
			}
			tok := hex.EncodeToString(b[:])
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			fmt.Fprintf(cmd.OutOrStdout(), "%s,%s,%s\n", auth.HashToken(tok), user, group)
			return nil
		},
	}
	tokenCmd.Flags().StringVar(&user, "user", "", "the identity the token stands for (required)")
	tokenCmd.Flags().StringVar(&group, "group", "", "its group (skiff:admin, skiff:controller-manager, skiff:scheduler, skiff:nodes)")
	cmd.AddCommand(initCmd, rotateCmd, rotateCACmd, tokenCmd, encryptionKeyCmd())
	return cmd
}

func encryptionKeyCmd() *cobra.Command {
	var file, promote, remove string
	var secondary bool
	cmd := &cobra.Command{
		Use:   "encryption-key --file FILE [--secondary | --promote NAME | --remove NAME]",
		Short: "Make the encryption key file, or add, promote and remove its keys",
		Long: `Edit the encryption key file that encrypts Secrets at rest (the API servers'
--encryption-key-file, Kubernetes' EncryptionConfiguration). Without --promote or
--remove it adds a new random AES-256 key (key1, key2, ...), making the file if there is
none: the primary, which encrypts every write, or with --secondary the last, which only
reads. --promote makes a key the primary; --remove deletes one that is not.

The API servers read the file again when it changes; the leader then re-encrypts every
Secret not under the primary key. To rotate the key of a cluster of several members,
add the new key as --secondary and copy the file to every member, then --promote it and
copy again; remove the old key once the leader logs that every Secret is re-encrypted
(metric skiff_apiserver_secrets_unreadable is 0 on every member).`,
		Example: `  skiff certs encryption-key --file /etc/skiff/pki/encryption.yaml --secondary
  skiff certs encryption-key --file /etc/skiff/pki/encryption.yaml --promote key2
  skiff certs encryption-key --file /etc/skiff/pki/encryption.yaml --remove key1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if promote != "" && remove != "" || (promote != "" || remove != "") && secondary {
				return fmt.Errorf("give one of --secondary, --promote and --remove")
			}
			made, err := encryption.EnsureFile(file)
			if err != nil {
				return err
			}
			if made {
				fmt.Fprintln(cmd.OutOrStdout(), "wrote", file, "with key key1, the primary")
				return nil
			}
			c, err := encryption.Load(file)
			if err != nil {
				return err
			}
			var msg string
			switch {
			case promote != "":
				err, msg = c.Promote(promote), "key "+promote+" is the primary"
			case remove != "":
				err, msg = c.Remove(remove), "removed key "+remove
			default:
				name := c.AddKey(!secondary)
				msg = "added key " + name + ", the primary"
				if secondary {
					msg = "added key " + name + ", to read with until it is promoted"
				}
			}
			if err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			if err := c.Write(file); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s\n", file, msg)
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "file", "", "the encryption key file (required)")
	cmd.Flags().BoolVar(&secondary, "secondary", false, "add the new key last, to read with, not as the primary")
	cmd.Flags().StringVar(&promote, "promote", "", "make this key the primary")
	cmd.Flags().StringVar(&remove, "remove", "", "remove this key (not the primary)")
	cmd.MarkFlagRequired("file")
	return cmd
}

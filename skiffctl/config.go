package skiffctl

import (
	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/client"
)

func configCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show skiffctl's client configuration in other forms",
		Args:  cobra.NoArgs,
	}
	name := "skiff"
	kc := &cobra.Command{
		Use:   "kubeconfig",
		Short: "Print a kubeconfig for kubectl, client-go and Helm, with skiffctl's servers and credentials",
		Long: `Print a kubeconfig (kubectl's client config) for the API servers and credentials skiffctl
uses (flags over the client config): Skiff serves Kubernetes' REST API on the API port. A
kubeconfig cluster has one server, so each API server gets a cluster and a context: NAME,
NAME-2, NAME-3, ..., the first one current.`,
		Example: `  skiffctl config kubeconfig > ~/.kube/config
  kubectl --kubeconfig <(skiffctl config kubeconfig) get pods`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s := g.settings
			s.UseDefaultConfig = true
			cf, err := s.ConfigFile()
			if err != nil {
				return err
			}
			b, err := client.Kubeconfig(name, cf)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(b)
			return err
		},
	}
	kc.Flags().StringVar(&name, "name", name, "name of the clusters, contexts and user")
	cmd.AddCommand(kc)
	return cmd
}

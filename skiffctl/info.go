package skiffctl

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	apimachineryversion "k8s.io/apimachinery/pkg/version"
	"sigs.k8s.io/yaml"

	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/version"
)

func versionCmd(g *globals) *cobra.Command {
	var clientOnly bool
	var format string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print skiffctl's version and the API server's",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := struct {
				Client *apimachineryversion.Info `json:"clientVersion,omitempty"`
				Server *apimachineryversion.Info `json:"serverVersion,omitempty"`
			}{}
			c := version.Get()
			v.Client = &c
			var serverErr error
			if !clientOnly {
				conn, ctx, cancel, err := g.connect(cmd, g.timeout)
				if err != nil {
					return err
				}
				st, err := conn.ClusterStatus(ctx)
				cancel()
				if err != nil {
					serverErr = err
				} else {
					v.Server = &apimachineryversion.Info{GitVersion: st.GetSelf().GetVersion()}
				}
			}
			switch format {
			case "":
				fmt.Fprintf(g.streams.Out, "Client Version: %s\n", v.Client.GitVersion)
				if v.Server != nil {
					fmt.Fprintf(g.streams.Out, "Server Version: %s\n", v.Server.GitVersion)
				}
			case "yaml", "json":
				b, err := encodeValue(v, format)
				if err != nil {
					return err
				}
				g.streams.Out.Write(b)
			default:
				return fmt.Errorf("--output: Unsupported value: %q: supported values: yaml, json", format)
			}
			return serverErr
		},
	}
	cmd.Flags().BoolVar(&clientOnly, "client", false, "only skiffctl's version")
	cmd.Flags().StringVarP(&format, "output", "o", "", "yaml or json")
	return cmd
}

func apiResourcesCmd(g *globals) *cobra.Command {
	var format string
	var noHeaders bool
	var namespaced string
	cmd := &cobra.Command{
		Use:   "api-resources",
		Short: "List the kinds the server serves",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			all := slices.Clone(kinds.All())
			// kubectl's order: by group, then by name.
			slices.SortFunc(all, func(a, b *kinds.Info) int {
				if c := strings.Compare(a.Group, b.Group); c != 0 {
					return c
				}
				return strings.Compare(a.Plural, b.Plural)
			})
			if namespaced != "" {
				all = slices.DeleteFunc(all, func(in *kinds.Info) bool { return fmt.Sprint(in.Namespaced) != namespaced })
			}
			switch format {
			case "name":
				for _, in := range all {
					if in.Group == "" {
						fmt.Fprintln(g.streams.Out, in.Plural)
					} else {
						fmt.Fprintln(g.streams.Out, in.Plural+"."+in.Group)
					}
				}
				return nil
			case "", "wide":
			default:
				return fmt.Errorf("--output: Unsupported value: %q: supported values: wide, name", format)
			}
			tw := tabwriter.NewWriter(g.streams.Out, 0, 8, 3, ' ', 0)
			if !noHeaders {
				h := "NAME\tSHORTNAMES\tAPIVERSION\tNAMESPACED\tKIND"
				if format == "wide" {
					h += "\tCATEGORIES"
				}
				fmt.Fprintln(tw, h)
			}
			for _, in := range all {
				row := fmt.Sprintf("%s\t%s\t%s\t%v\t%s", in.Plural, strings.Join(in.ShortNames, ","), in.APIVersion, in.Namespaced, in.Kind)
				if format == "wide" {
					row += "\t" + strings.Join(in.Categories, ",")
				}
				fmt.Fprintln(tw, row)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVarP(&format, "output", "o", "", "wide or name")
	cmd.Flags().BoolVar(&noHeaders, "no-headers", false, "leave out the table's header")
	cmd.Flags().StringVar(&namespaced, "namespaced", "", "true: only namespaced kinds; false: only cluster-scoped ones")
	return cmd
}

// encodeValue writes v as kubectl writes a non-object value: JSON indented by two
// spaces, or YAML.
func encodeValue(v any, format string) ([]byte, error) {
	if format == "yaml" {
		return yaml.Marshal(v)
	}
	b, err := json.MarshalIndent(v, "", "  ")
	return append(b, '\n'), err
}

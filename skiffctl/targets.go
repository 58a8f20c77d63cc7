package skiffctl

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/client"
)

// selection is how a command picks objects besides naming them: -l, --field-selector,
// --all and -A.
type selection struct {
	labels, fields string
	all            bool
	allNamespaces  bool
}

func (s selection) selects() bool { return s.labels != "" || s.fields != "" || s.all }

// targets resolves the objects a command acts on: KIND NAME..., KIND/NAME..., or the
// objects of KIND[,KIND...] that the selection picks (listed). Picking none is not an
// error: kubectl's "No resources found" goes to stderr.
func (g *globals) targets(cmd *cobra.Command, args []string, sel selection) ([]target, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("you must specify the type of resource and a name, KIND/NAME, or a selector (-l, --all)")
	}
	reqs, _, err := getArgs(args)
	if err != nil {
		return nil, err
	}
	var out []target
	for _, r := range reqs {
		switch {
		case len(r.names) > 0 && sel.selects():
			return nil, fmt.Errorf("name cannot be provided when a selector (-l, --field-selector or --all) is specified")
		case len(r.names) > 0:
			for _, n := range r.names {
				out = append(out, target{r.info, g.namespaceOf(r.info), n})
			}
		case !sel.selects():
			return nil, fmt.Errorf("resource(s) were provided, but no name was specified")
		default:
			conn, ctx, cancel, err := g.connect(cmd, g.timeout)
			if err != nil {
				return nil, err
			}
			l, err := client.ForKind(conn, r.info).List(ctx, g.listNamespace(r.info, sel.allNamespaces),
				client.ListOptions{LabelSelector: sel.labels, FieldSelector: sel.fields})
			cancel()
			if err != nil {
				return nil, err
			}
			for _, o := range l.Items {
				out = append(out, target{r.info, o.GetNamespace(), o.GetName()})
			}
		}
	}
	if len(out) == 0 {
		fmt.Fprintf(g.streams.Err, "No resources found%s.\n", g.where(reqs, sel.allNamespaces))
	}
	return out, nil
}

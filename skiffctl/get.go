package skiffctl

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/client"
	corev1 "github.com/skiffhq/skiff/proto/core/v1"
	"github.com/skiffhq/skiff/proto/kinds"
	"github.com/skiffhq/skiff/skiffctl/manifest"
	"github.com/skiffhq/skiff/skiffctl/printers"
)

// output writes objects in one of get's formats.
type output struct {
	format    string // "", wide, yaml, json, name
	allNS     bool
	noHeaders bool
}

func (o output) validate() error {
	switch o.format {
	case "", "wide", "yaml", "json", "name":
		return nil
	}
	return fmt.Errorf("--output: Unsupported value: %q: supported values: wide, yaml, json, name", o.format)
}

func (g *globals) print(w io.Writer, info *kinds.Info, objs []kinds.Object, o output, list bool) error {
	switch o.format {
	case "yaml", "json":
		enc := manifest.YAML
		if o.format == "json" {
			enc = manifest.JSON
		}
		if len(objs) == 0 && !list {
			return nil
		}
		b, err := enc(objs, list)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	case "name":
		for _, obj := range objs {
			fmt.Fprintln(w, ref(info, kinds.Meta(obj).GetName()))
		}
		return nil
	}
	return printers.Table(w, info, objs, printers.TableOptions{Wide: o.format == "wide", AllNamespaces: o.allNS, NoHeaders: o.noHeaders, Now: g.now()})
}

func getCmd(g *globals) *cobra.Command {
	var o output
	var labelSel, fieldSel string
	var watch, watchOnly bool
	cmd := &cobra.Command{
		Use:   "get KIND [NAME...]",
		Short: "List objects or show some",
		Long:  "List objects of a kind, or show the named ones. KIND is a Kubernetes name or short name: pods/po, deployments/deploy, replicasets/rs, nodes/no, events/ev, configmaps/cm, leases, namespaces/ns.",
		Args:  cobra.MinimumNArgs(1),
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return kinds.Names(), cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			info, names, err := kindArgs(args)
			if err != nil {
				return err
			}
			ns := g.namespaceOf(info)
			if o.allNS {
				ns = ""
			}
			var objs []kinds.Object
			rv := ""
			if len(names) > 0 {
				for _, name := range names {
					conn, ctx, cancel, err := g.connect(cmd, g.timeout)
					if err != nil {
						return err
					}
					obj, err := client.ForKind(conn, info).Get(ctx, g.namespaceOf(info), name)
					cancel()
					if err != nil {
						return notFound(info, name, err)
					}
					objs = append(objs, obj)
				}
			} else {
				conn, ctx, cancel, err := g.connect(cmd, g.timeout)
				if err != nil {
					return err
				}
				l, err := client.ForKind(conn, info).List(ctx, ns, client.ListOptions{LabelSelector: labelSel, FieldSelector: fieldSel})
				cancel()
				if err != nil {
					return err
				}
				objs, rv = l.Items, l.ResourceVersion
			}
			if !watchOnly {
				if len(objs) == 0 && len(names) == 0 && o.format != "yaml" && o.format != "json" {
					where := fmt.Sprintf(" in %s namespace", ns)
					if ns == "" {
						where = ""
					}
					fmt.Fprintf(g.streams.Err, "No resources found%s.\n", where)
				} else if err := g.print(g.streams.Out, info, objs, o, len(names) == 0); err != nil {
					return err
				}
			}
			if !watch && !watchOnly {
				return nil
			}
			return g.watch(cmd, info, ns, names, rv, labelSel, fieldSel, o, len(objs) > 0 && !watchOnly)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.format, "output", "o", "", "output format: wide, yaml, json or name")
	f.BoolVarP(&o.allNS, "all-namespaces", "A", false, "list across all namespaces")
	f.BoolVar(&o.noHeaders, "no-headers", false, "leave out the table's header")
	f.StringVarP(&labelSel, "selector", "l", "", "label selector, e.g. app=web,tier!=db")
	f.StringVar(&fieldSel, "field-selector", "", "field selector, e.g. spec.nodeName=w1")
	f.BoolVarP(&watch, "watch", "w", false, "after listing, keep printing changes")
	f.BoolVar(&watchOnly, "watch-only", false, "print only changes, not the current list")
	return cmd
}

// kindArgs parses "KIND [NAME...]" and "KIND/NAME...".
func kindArgs(args []string) (*kinds.Info, []string, error) {
	if len(args) >= 1 {
		if k, n, ok := cutSlash(args[0]); ok {
			info, err := kind(k)
			if err != nil {
				return nil, nil, err
			}
			names := []string{n}
			for _, a := range args[1:] {
				k2, n2, ok := cutSlash(a)
				if !ok || k2 != k {
					return nil, nil, fmt.Errorf("mixing %q with %q: give KIND/NAME for each, of one kind", args[0], a)
				}
				names = append(names, n2)
			}
			return info, names, nil
		}
	}
	info, err := kind(args[0])
	return info, args[1:], err
}

func cutSlash(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			return s[:i], s[i+1:], true
		}
	}
	return "", "", false
}

// watch prints changes until the command's context ends or the stream breaks for good;
// it resumes a broken stream from the last revision it printed.
func (g *globals) watch(cmd *cobra.Command, info *kinds.Info, ns string, names []string, rv, labelSel, fieldSel string, o output, printed bool) error {
	conn, ctx, cancel, err := g.connect(cmd, noTimeout)
	if err != nil {
		return err
	}
	defer cancel()
	c := client.ForKind(conn, info)
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	o.noHeaders = o.noHeaders || printed
	for {
		w, err := c.Watch(ctx, ns, client.WatchOptions{ListOptions: client.ListOptions{LabelSelector: labelSel, FieldSelector: fieldSel}, ResourceVersion: rv})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		for {
			evs, err := w.Next()
			if err != nil {
				w.Stop()
				if ctx.Err() != nil {
					return nil
				}
				if client.IsTooOld(err) {
					return fmt.Errorf("watch fell too far behind: %w", err)
				}
				break // resume from rv
			}
			for _, ev := range evs {
				rv = ev.ResourceVersion
				if ev.Type == client.Bookmark || (len(want) > 0 && !want[kinds.Meta(ev.Object).GetName()]) {
					continue
				}
				if err := g.print(g.streams.Out, info, []kinds.Object{ev.Object}, o, false); err != nil {
					return err
				}
				o.noHeaders = true
			}
		}
	}
}

func describeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "describe KIND NAME",
		Short: "Show an object in detail, with its events",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			info, name, err := kindAndName(args)
			if err != nil {
				return err
			}
			conn, ctx, cancel, err := g.connect(cmd, g.timeout)
			if err != nil {
				return err
			}
			defer cancel()
			obj, err := client.ForKind(conn, info).Get(ctx, g.namespaceOf(info), name)
			if err != nil {
				return notFound(info, name, err)
			}
			var events []*corev1.Event
			if uid := kinds.Meta(obj).GetUid(); uid != "" && info.Kind != kinds.Event {
				l, err := client.For[*corev1.Event](conn).List(ctx, "", client.ListOptions{FieldSelector: "involvedObject.uid=" + uid})
				if err != nil {
					return fmt.Errorf("list events of %s: %w", ref(info, name), err)
				}
				events = l.Items
			}
			return printers.Describe(g.streams.Out, obj, events, g.now())
		},
	}
}

package skiffctl

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/skiffctl/printers"
)

func getCmd(g *globals) *cobra.Command {
	var o output
	var labelSel, fieldSel string
	var watch, watchOnly bool
	cmd := &cobra.Command{
		Use:   "get KIND[,KIND...] [NAME...] | KIND/NAME...",
		Short: "List objects or show some",
		Long: `List objects of a kind, or show the named ones. KIND is a Kubernetes name, short name or
kind.group form: pods/po, deployments/deploy (deployments.apps), replicasets/rs, nodes/no,
events/ev, configmaps/cm, leases, namespaces/ns, poddisruptionbudgets/pdb, services/svc,
endpoints/ep, endpointslices (endpointslices.discovery.k8s.io), resourcequotas/quota,
limitranges/limits. Several kinds are listed at once as KIND,KIND (deploy,po), and "all"
names the kinds of the "all" category (pods, services, deployments, replicasets); tables
then name each object KIND/NAME.`,
		Example: `  skiffctl get pods -o wide
  skiffctl get deployments.apps web -o yaml
  skiffctl get deploy,po -l app=web
  skiffctl get all -A`,
		Args: cobra.MinimumNArgs(1),
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return kinds.Names(), cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			reqs, withKind, err := getArgs(args)
			if err != nil {
				return err
			}
			if (watch || watchOnly) && len(reqs) > 1 {
				return fmt.Errorf("you may only specify a single resource type with --watch")
			}
			named := false
			var groups []group
			rv := ""
			for _, r := range reqs {
				gr := group{info: r.info}
				if len(r.names) > 0 {
					named = true
					for _, name := range r.names {
						conn, ctx, cancel, err := g.connect(cmd, g.timeout)
						if err != nil {
							return err
						}
						obj, err := client.ForKind(conn, r.info).Get(ctx, g.namespaceOf(r.info), name)
						cancel()
						if err != nil {
							return notFound(r.info, name, err)
						}
						gr.objs = append(gr.objs, obj)
					}
				} else {
					conn, ctx, cancel, err := g.connect(cmd, g.timeout)
					if err != nil {
						return err
					}
					l, err := client.ForKind(conn, r.info).List(ctx, g.listNamespace(r.info, o.allNS), client.ListOptions{LabelSelector: labelSel, FieldSelector: fieldSel})
					cancel()
					if err != nil {
						return err
					}
					gr.objs, rv = l.Items, l.ResourceVersion
				}
				groups = append(groups, gr)
			}
			total := 0
			for _, gr := range groups {
				total += len(gr.objs)
			}
			if !watchOnly {
				list := !(len(reqs) == 1 && len(reqs[0].names) == 1)
				if total == 0 && !named && o.format != "yaml" && o.format != "json" {
					fmt.Fprintf(g.streams.Err, "No resources found%s.\n", g.where(reqs, o.allNS))
				} else if err := g.print(g.streams.Out, groups, o, list, withKind); err != nil {
					return err
				}
			}
			if !watch && !watchOnly {
				return nil
			}
			r := reqs[0]
			return g.watch(cmd, r.info, g.listNamespace(r.info, o.allNS), r.names, rv, labelSel, fieldSel, o, total > 0 && !watchOnly)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.format, "output", "o", "", "output format: "+formats)
	f.BoolVarP(&o.allNS, "all-namespaces", "A", false, "list across all namespaces")
	o.addTableFlags(f)
	f.StringVarP(&labelSel, "selector", "l", "", "label selector, e.g. app=web,tier!=db")
	f.StringVar(&fieldSel, "field-selector", "", "field selector, e.g. spec.nodeName=w1")
	f.BoolVarP(&watch, "watch", "w", false, "after listing, keep printing changes")
	f.BoolVar(&watchOnly, "watch-only", false, "print only changes, not the current list")
	return cmd
}

// listNamespace is the namespace a list of info's kind reads: "" for every namespace
// (-A) and for cluster-scoped kinds.
func (g *globals) listNamespace(info *kinds.Info, allNS bool) string {
	if allNS {
		return ""
	}
	return g.namespaceOf(info)
}

// where ends "No resources found": " in NS namespace" when a namespaced kind was listed
// in one namespace.
func (g *globals) where(reqs []request, allNS bool) string {
	for _, r := range reqs {
		if ns := g.listNamespace(r.info, allNS); ns != "" {
			return fmt.Sprintf(" in %s namespace", ns)
		}
	}
	return ""
}

// request is one kind get reads, and the names asked for (none: list).
type request struct {
	info  *kinds.Info
	names []string
}

// getArgs parses get's arguments, "KIND[,KIND...] [NAME...]" or "KIND/NAME...", into
// one request per kind in the order given. withKind says several kinds were asked for
// (or "all"), so that tables name each object KIND/NAME.
func getArgs(args []string) (reqs []request, withKind bool, err error) {
	add := func(info *kinds.Info, names ...string) {
		for i := range reqs {
			if reqs[i].info == info {
				reqs[i].names = append(reqs[i].names, names...)
				return
			}
		}
		reqs = append(reqs, request{info: info, names: names})
	}
	if strings.Contains(args[0], "/") {
		for _, a := range args {
			k, name, ok := strings.Cut(a, "/")
			if !ok {
				return nil, false, fmt.Errorf("there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'skiffctl get resource/<resource_name>' instead of 'skiffctl get resource resource/<resource_name>'")
			}
			info, err := kind(k)
			if err != nil {
				return nil, false, err
			}
			if name == "" {
				return nil, false, fmt.Errorf("%q: a %s name is required after the /", a, info.Singular)
			}
			add(info, name)
		}
		return reqs, len(reqs) > 1, nil
	}
	for _, name := range args[1:] {
		if strings.Contains(name, "/") {
			return nil, false, fmt.Errorf("there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'skiffctl get resource/<resource_name>' instead of 'skiffctl get resource resource/<resource_name>'")
		}
	}
	for _, k := range strings.Split(args[0], ",") {
		if k == "" {
			return nil, false, fmt.Errorf("%q: an empty kind in the list", args[0])
		}
		if strings.EqualFold(k, "all") {
			withKind = true
			for _, info := range category("all") {
				add(info, args[1:]...)
			}
			continue
		}
		info, err := kind(k)
		if err != nil {
			return nil, false, err
		}
		add(info, args[1:]...)
	}
	return reqs, withKind || len(reqs) > 1, nil
}

// category lists the kinds of a category in the order kubectl lists "all": pods first,
// then the workloads that own them.
func category(name string) []*kinds.Info {
	order := []string{"pods", "services", "daemonsets", "deployments", "replicasets", "statefulsets", "horizontalpodautoscalers", "cronjobs", "jobs"}
	var out []*kinds.Info
	for _, info := range kinds.All() {
		if slices.Contains(info.Categories, name) {
			out = append(out, info)
		}
	}
	rank := func(info *kinds.Info) int {
		if i := slices.Index(order, info.Plural); i >= 0 {
			return i
		}
		return len(order)
	}
	slices.SortStableFunc(out, func(a, b *kinds.Info) int { return rank(a) - rank(b) })
	return out
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
				if ev.Type == client.Bookmark || (len(want) > 0 && !want[ev.Object.GetName()]) {
					continue
				}
				if err := g.print(g.streams.Out, []group{{info, []kinds.Object{ev.Object}}}, o, false, false); err != nil {
					return err
				}
				o.noHeaders = true
			}
		}
	}
}

func describeCmd(g *globals) *cobra.Command {
	var sel selection
	cmd := &cobra.Command{
		Use:   "describe KIND [NAME_PREFIX | -l SELECTOR] | KIND/NAME",
		Short: "Show objects in detail, with their events",
		Long: `Show an object in detail, with its events. Without a name, every object of the kind
(matching -l when given); a name that no object has shows the objects whose names start
with it, as kubectl describe does.`,
		Example: `  skiffctl describe deployment web
  skiffctl describe pods -l app=web
  skiffctl describe pods web-`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var info *kinds.Info
			var name string
			var err error
			if len(args) == 1 && !strings.Contains(args[0], "/") {
				info, err = kind(args[0])
			} else {
				info, name, err = kindAndName(args)
			}
			if err != nil {
				return err
			}
			if name != "" && (sel.labels != "" || sel.allNamespaces) {
				return fmt.Errorf("name cannot be provided when a selector is specified")
			}
			conn, ctx, cancel, err := g.connect(cmd, g.timeout)
			if err != nil {
				return err
			}
			defer cancel()
			c := client.ForKind(conn, info)
			var objs []kinds.Object
			if name != "" {
				obj, err := c.Get(ctx, g.namespaceOf(info), name)
				switch {
				case err == nil:
					objs = []kinds.Object{obj}
				case !client.IsNotFound(err):
					return err
				}
			}
			if objs == nil {
				l, err := c.List(ctx, g.listNamespace(info, sel.allNamespaces), client.ListOptions{LabelSelector: sel.labels})
				if err != nil {
					return err
				}
				for _, o := range l.Items {
					if strings.HasPrefix(o.GetName(), name) {
						objs = append(objs, o)
					}
				}
				if len(objs) == 0 && name != "" {
					return fmt.Errorf("%s %q not found", info.Singular, name)
				}
				if len(objs) == 0 {
					fmt.Fprintf(g.streams.Err, "No resources found%s.\n", g.where([]request{{info: info}}, sel.allNamespaces))
					return nil
				}
			}
			for i, obj := range objs {
				if i > 0 {
					fmt.Fprint(g.streams.Out, "\n\n")
				}
				var events []*corev1.Event
				if uid := obj.GetUID(); uid != "" && info.Kind != kinds.Event {
					l, err := client.For[*corev1.Event](conn).List(ctx, "", client.ListOptions{FieldSelector: "involvedObject.uid=" + string(uid)})
					if err != nil {
						return fmt.Errorf("list events of %s: %w", ref(info, obj.GetName()), err)
					}
					events = l.Items
				}
				if err := printers.Describe(g.streams.Out, obj, events, g.now()); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&sel.labels, "selector", "l", "", "describe the objects matching this label selector")
	cmd.Flags().BoolVarP(&sel.allNamespaces, "all-namespaces", "A", false, "in every namespace")
	return cmd
}

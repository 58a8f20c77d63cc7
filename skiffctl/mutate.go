package skiffctl

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
)

// mutate is the read-modify-write of the verbs that change an object in place (scale,
// set image, label, annotate, patch, cordon, ...): read the object, change a copy, write
// it back with the resourceVersion read (change gets a copy, which it may change and
// return), and on a conflict (someone wrote in between)
// start again from the object read afresh, as kubectl's verbs do. changed says whether
// change changed anything; nothing is written when it did not. In a client dry run
// nothing is written either; in a server dry run the server checks the change.
func (g *globals) mutate(ctx context.Context, conn *client.Conn, t target, dry dryRun, change func(kinds.Object) (kinds.Object, error)) (after kinds.Object, changed bool, err error) {
	c := client.ForKind(conn, t.info)
	err = client.RetryOnConflict(ctx, func() error {
		cur, err := c.Get(ctx, t.ns, t.name)
		if err != nil {
			return notFound(t.info, t.name, err)
		}
		next, err := change(cur.DeepCopyObject().(kinds.Object))
		if err != nil {
			return err
		}
		if changed = !equality.Semantic.DeepEqual(cur, next); !changed || dry == dryRunClient {
			after = next
			return nil
		}
		after, err = c.UpdateWithOptions(ctx, next, client.UpdateOptions{DryRun: dry == dryRunServer})
		return err
	})
	return after, changed, err
}

// mutateEach runs mutate on each target, reporting each with report; it goes on past
// failures and returns them all.
func (g *globals) mutateEach(cmd *cobra.Command, targets []target, dry dryRun, change func(kinds.Object) (kinds.Object, error),
	report func(t target, after kinds.Object, changed bool) error) error {
	var errs []error
	for _, t := range targets {
		conn, ctx, cancel, err := g.connect(cmd, g.timeout)
		if err != nil {
			return err
		}
		after, changed, err := g.mutate(ctx, conn, t, dry, change)
		cancel()
		if err == nil {
			err = report(t, after, changed)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// metaChanges are label's or annotate's arguments: KEY=VALUE to set, KEY- to remove.
type metaChanges struct {
	set    map[string]string
	order  []string // keys to set, in the order given
	remove []string
}

// splitMetaArgs separates label's and annotate's object arguments from their changes, as
// kubectl does: an argument with "=" or ending in "-" is a change.
func splitMetaArgs(args []string, labels bool) (objects []string, ch metaChanges, err error) {
	ch.set = map[string]string{}
	for _, a := range args {
		switch k, v, ok := strings.Cut(a, "="); {
		case ok:
			if errs := validation.IsQualifiedName(k); len(errs) > 0 {
				return nil, ch, fmt.Errorf("invalid %s spec: %s: %s", kindOfMeta(labels), a, strings.Join(errs, "; "))
			}
			if errs := validation.IsValidLabelValue(v); labels && len(errs) > 0 {
				return nil, ch, fmt.Errorf("invalid label spec: %s: %s", a, strings.Join(errs, "; "))
			}
			if _, dup := ch.set[k]; !dup {
				ch.order = append(ch.order, k)
			}
			ch.set[k] = v
		case strings.HasSuffix(a, "-") && len(a) > 1:
			ch.remove = append(ch.remove, strings.TrimSuffix(a, "-"))
		default:
			objects = append(objects, a)
		}
	}
	for _, k := range ch.remove {
		if _, both := ch.set[k]; both {
			return nil, ch, fmt.Errorf("can not both modify and remove the %s %q in the same command", kindOfMeta(labels), k)
		}
	}
	if len(ch.set)+len(ch.remove) == 0 {
		return nil, ch, fmt.Errorf("at least one %s update is required", kindOfMeta(labels))
	}
	return objects, ch, nil
}

func kindOfMeta(labels bool) string {
	if labels {
		return "label"
	}
	return "annotation"
}

// apply makes the changes to m, refusing to change an existing key without overwrite.
func (ch metaChanges) apply(m map[string]string, overwrite, labels bool, warn func(string)) (map[string]string, error) {
	if !overwrite {
		var problems []string
		for _, k := range ch.order {
			if v, ok := m[k]; ok {
				problems = append(problems, fmt.Sprintf("'%s' already has a value (%s)", k, v))
			}
		}
		if len(problems) > 0 {
			if labels {
				return nil, fmt.Errorf("%s, and --overwrite is false", strings.Join(problems, ", "))
			}
			return nil, fmt.Errorf("--overwrite is false but found the following declared annotation(s): %s", strings.Join(problems, ", "))
		}
	}
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	for _, k := range ch.remove {
		if _, ok := out[k]; !ok {
			warn(fmt.Sprintf("%s %q not found.", kindOfMeta(labels), k))
		}
		delete(out, k)
	}
	for k, v := range ch.set {
		out[k] = v
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// metaCmd is label (labels) or annotate.
func metaCmd(g *globals, labels bool) *cobra.Command {
	var overwrite, all, allNS bool
	var labelSel, fieldSel string
	var dry dryRun
	noun, verb := "annotation", "annotated"
	use := "annotate (KIND NAME | KIND/NAME | KIND -l SELECTOR | KIND --all) KEY=VALUE... KEY-..."
	short := "Set or remove annotations of objects"
	if labels {
		noun, verb = "label", "labeled"
		use = "label (KIND NAME | KIND/NAME | KIND -l SELECTOR | KIND --all) KEY=VALUE... KEY-..."
		short = "Set or remove labels of objects"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long: fmt.Sprintf(`%s objects: KEY=VALUE sets a %s, KEY- removes one. An existing %s keeps its
value unless --overwrite is given. Objects are named, or picked with -l or --all.`, strings.ToUpper(short[:1])+short[1:], noun, noun),
		Example: fmt.Sprintf(`  skiffctl %s deployment web tier=front
  skiffctl %s pods -l app=web tier=back --overwrite
  skiffctl %s deploy/web tier-`, map[bool]string{true: "label", false: "annotate"}[labels],
			map[bool]string{true: "label", false: "annotate"}[labels], map[bool]string{true: "label", false: "annotate"}[labels]),
		RunE: func(cmd *cobra.Command, args []string) error {
			objects, ch, err := splitMetaArgs(args, labels)
			if err != nil {
				return err
			}
			targets, err := g.targets(cmd, objects, selection{labels: labelSel, fields: fieldSel, all: all, allNamespaces: allNS})
			if err != nil {
				return err
			}
			warn := func(msg string) { fmt.Fprintln(g.streams.Err, msg) }
			return g.mutateEach(cmd, targets, dry, func(obj kinds.Object) (kinds.Object, error) {
				if labels {
					m, err := ch.apply(obj.GetLabels(), overwrite, true, warn)
					obj.SetLabels(m)
					return obj, err
				}
				m, err := ch.apply(obj.GetAnnotations(), overwrite, false, warn)
				obj.SetAnnotations(m)
				return obj, err
			}, func(t target, _ kinds.Object, changed bool) error {
				msg := verb
				if !changed {
					msg = "not " + verb
				} else if labels && len(ch.set) == 0 {
					msg = "unlabeled"
				}
				fmt.Fprintf(g.streams.Out, "%s %s%s\n", ref(t.info, t.name), msg, dry.suffix())
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.BoolVar(&overwrite, "overwrite", false, "replace the value of an existing "+noun)
	f.BoolVar(&all, "all", false, "every object of KIND in the namespace")
	f.BoolVarP(&allNS, "all-namespaces", "A", false, "with -l or --all: in every namespace")
	f.StringVarP(&labelSel, "selector", "l", "", "the objects of KIND matching this label selector")
	f.StringVar(&fieldSel, "field-selector", "", "the objects of KIND matching this field selector")
	addDryRun(f, &dry)
	return cmd
}

func patchCmd(g *globals) *cobra.Command {
	var patch, patchFile, typ string
	var dry dryRun
	var o output
	cmd := &cobra.Command{
		Use:   "patch (KIND NAME | KIND/NAME) (-p PATCH | --patch-file FILE) [--type strategic|merge|json]",
		Short: "Change fields of an object with a patch",
		Long: `Patch an object as kubectl patch does: a strategic merge patch (the default: lists with
merge keys, like containers by name, are merged), a JSON merge patch (RFC 7386: lists are
replaced, null removes a field) or a JSON patch (RFC 6902: a list of operations). PATCH is
JSON or YAML.`,
		Example: `  skiffctl patch deployment web -p '{"spec":{"replicas":3}}'
  skiffctl patch deploy/web --type merge -p '{"metadata":{"labels":{"tier":null}}}'
  skiffctl patch deploy/web --type json -p '[{"op":"replace","path":"/spec/replicas","value":1}]'`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			pt, ok := map[string]types.PatchType{"strategic": kinds.StrategicMergePatch, "merge": kinds.MergePatch, "json": kinds.JSONPatch}[typ]
			if !ok {
				return fmt.Errorf("--type: Unsupported value: %q: supported values: strategic, merge, json", typ)
			}
			body, err := patchBody(patch, patchFile)
			if err != nil {
				return err
			}
			info, name, err := kindAndName(args)
			if err != nil {
				return err
			}
			t := target{info, g.namespaceOf(info), name}
			return g.mutateEach(cmd, []target{t}, dry, func(obj kinds.Object) (kinds.Object, error) {
				return kinds.Patch(obj, pt, body)
			}, func(t target, after kinds.Object, changed bool) error {
				if o.format != "" {
					return g.result(t.info, after, "", o, dry)
				}
				msg := "patched"
				if !changed {
					msg = "patched (no change)"
				}
				fmt.Fprintf(g.streams.Out, "%s %s%s\n", ref(t.info, t.name), msg, dry.suffix())
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVarP(&patch, "patch", "p", "", "the patch, JSON or YAML")
	f.StringVar(&patchFile, "patch-file", "", "a file holding the patch")
	f.StringVar(&typ, "type", "strategic", "the patch's type: strategic, merge or json")
	addDryRun(f, &dry)
	f.StringVarP(&o.format, "output", "o", "", "print the patched object as yaml, json or name instead of a message")
	return cmd
}

// patchBody is -p or --patch-file's patch, as JSON (YAML is accepted, as kubectl does).
func patchBody(patch, file string) ([]byte, error) {
	switch {
	case patch != "" && file != "":
		return nil, fmt.Errorf("give either -p or --patch-file, not both")
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		patch = string(b)
	case patch == "":
		return nil, fmt.Errorf("must specify -p PATCH or --patch-file FILE")
	}
	js, err := yaml.YAMLToJSON([]byte(patch))
	if err != nil {
		return nil, fmt.Errorf("the patch is not valid JSON or YAML: %w", err)
	}
	return js, nil
}

package skiffctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/skiffctl/manifest"
)

// files are the -f and -R flags of the commands that read manifests.
type files struct {
	names     []string
	recursive bool
}

func (f *files) addFlags(fs *pflag.FlagSet, what string) {
	fs.StringArrayVarP(&f.names, "filename", "f", nil, what+": a file, a directory (its .json, .yaml and .yml files) or - for standard input; repeatable")
	fs.BoolVarP(&f.recursive, "recursive", "R", false, "read the directories of -f recursively")
}

// manifestExtensions are the files of a directory that -f reads, as kubectl's.
var manifestExtensions = []string{".json", ".yaml", ".yml"}

// read decodes every document of every file named, in order. A document or a file that
// cannot be read does not stop the others: its error comes with the documents that were
// read (errors.Join, one per failure).
func (g *globals) read(f files) ([]manifest.Document, error) {
	if len(f.names) == 0 {
		return nil, fmt.Errorf("must specify -f FILE (or -f - for standard input)")
	}
	var docs []manifest.Document
	var errs []error
	add := func(r io.Reader, source string) {
		d, err := manifest.Decode(r, source)
		docs = append(docs, d...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	for _, name := range f.names {
		if name == "-" {
			add(g.streams.In, "-")
			continue
		}
		paths, err := manifestPaths(name, f.recursive)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, p := range paths {
			file, err := os.Open(p)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			add(file, p)
			file.Close()
		}
	}
	if len(docs) == 0 && len(errs) == 0 {
		return nil, fmt.Errorf("no objects passed: %s holds no manifest", strings.Join(f.names, ", "))
	}
	return docs, errors.Join(errs...)
}

// manifestPaths are the files -f name means: name itself, or a directory's manifests
// (lexical order; subdirectories too when recursive).
func manifestPaths(name string, recursive bool) ([]string, error) {
	st, err := os.Stat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("the path %q does not exist", name)
	}
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return []string{name}, nil
	}
	var out []string
	err = filepath.WalkDir(name, func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && p != name && !recursive:
			return filepath.SkipDir
		case !d.IsDir() && slices.Contains(manifestExtensions, filepath.Ext(p)):
			out = append(out, p)
		}
		return nil
	})
	return out, err
}

// place puts a namespaced object without a namespace into -n's (or "default"), and
// refuses a manifest namespace that contradicts -n; a cluster-scoped object has none.
func (g *globals) place(d *manifest.Document) error {
	if !kinds.Of(d.Object).Namespaced {
		return d.SetNamespace("")
	}
	switch ns := d.Object.GetNamespace(); {
	case ns == "":
		return d.SetNamespace(g.ns())
	case g.namespace != "" && ns != g.namespace:
		return fmt.Errorf("the namespace from the manifest (%q) does not match the namespace from -n (%q)", ns, g.namespace)
	}
	return nil
}

// dryRun is --dry-run: none, client (print what would be sent) or server (the server
// checks everything and stores nothing).
type dryRun string

const (
	dryRunNone   dryRun = "none"
	dryRunClient dryRun = "client"
	dryRunServer dryRun = "server"
)

func (d *dryRun) String() string { return string(*d) }
func (d *dryRun) Type() string   { return "string" }
func (d *dryRun) Set(v string) error {
	switch v {
	case "none", "client", "server":
		*d = dryRun(v)
		return nil
	case "", "true": // kubectl's old boolean form, deprecated there
		*d = dryRunClient
		return nil
	case "false":
		*d = dryRunNone
		return nil
	}
	return fmt.Errorf("Unsupported value: %q: supported values: none, client, server", v)
}

func addDryRun(fs *pflag.FlagSet, d *dryRun) {
	*d = dryRunNone
	fs.Var(d, "dry-run", `"none", "client" (print what would be sent, send nothing) or "server" (the server checks everything and stores nothing)`)
	fs.Lookup("dry-run").NoOptDefVal = "client"
}

// suffix is what kubectl adds to its messages in a dry run.
func (d dryRun) suffix() string {
	switch d {
	case dryRunClient:
		return " (dry run)"
	case dryRunServer:
		return " (server dry run)"
	}
	return ""
}

// result reports what a command did to one object: the message ("created"), or the
// object itself in -o's format.
func (g *globals) result(info *kinds.Info, obj kinds.Object, verb string, o output, dry dryRun) error {
	if o.format == "" {
		fmt.Fprintf(g.streams.Out, "%s %s%s\n", ref(info, obj.GetName()), verb, dry.suffix())
		return nil
	}
	return g.print(g.streams.Out, []group{{info, []kinds.Object{obj}}}, o, false, false)
}

// forEachDocument does one thing to each object of the files, in order, each with a
// context of its own (--request-timeout bounds one object's requests). It goes on past
// failures, as kubectl does, and returns them all, each naming its file, document and
// object.
func (g *globals) forEachDocument(cmd *cobra.Command, f files, do func(context.Context, *client.Conn, *manifest.Document) error) error {
	docs, readErr := g.read(f)
	errs := []error{readErr}
	for i := range docs {
		d := &docs[i]
		if err := g.place(d); err != nil {
			errs = append(errs, d.Fail(err))
			continue
		}
		conn, ctx, cancel, err := g.connect(cmd, g.timeout)
		if err != nil {
			return err
		}
		err = do(ctx, conn, d)
		cancel()
		if err != nil {
			errs = append(errs, d.Fail(err))
		}
	}
	return errors.Join(errs...)
}

func applyCmd(g *globals) *cobra.Command {
	var f files
	var dry dryRun
	var o output
	cmd := &cobra.Command{
		Use:   "apply -f FILENAME",
		Short: "Create objects, or update them to match the manifest (kubectl's client-side apply)",
		Long: `Create the objects of the manifests, or update them to match, as kubectl apply does
(client-side apply): the configuration applied is kept in the object's
kubectl.kubernetes.io/last-applied-configuration annotation, and the next apply sends a
three-way strategic merge patch between that configuration, the new manifest and the
object as it is (a three-way JSON merge patch for custom resources, which have no
strategic merge: their lists are replaced whole, as kubectl does). A field the manifest sets is set; a field the last apply set that the
manifest no longer has is removed; a field never applied (replicas set by scale, an
annotation a controller wrote) is kept. An unchanged manifest writes nothing and
reports "unchanged". Every document of every file is applied, past failures; each
failure names its file, document and object, and the exit status is then 1. A write
that loses a race with another writer is retried on the object read again.`,
		Example: `  skiffctl apply -f deploy.yaml
  skiffctl apply -f manifests/ -R
  skiffctl apply -f a.yaml -f b.yaml --dry-run=server -o yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			return g.forEachDocument(cmd, f, func(ctx context.Context, conn *client.Conn, d *manifest.Document) error {
				return g.applyOne(ctx, conn, d, dry, o)
			})
		},
	}
	f.addFlags(cmd.Flags(), "the manifests to apply")
	addDryRun(cmd.Flags(), &dry)
	cmd.Flags().StringVarP(&o.format, "output", "o", "", "print the objects as yaml, json or name instead of a message")
	return cmd
}

// applyOne applies one document, as kubectl apply does.
func (g *globals) applyOne(ctx context.Context, conn *client.Conn, d *manifest.Document, dry dryRun, o output) error {
	info := kinds.Of(d.Object)
	name := d.Object.GetName()
	if name == "" {
		return fmt.Errorf("metadata.name: Required value (apply needs a name; use create for generateName)")
	}
	modified, err := kinds.AppliedConfiguration(d.JSON)
	if err != nil {
		return err
	}
	c := client.ForKind(conn, info)
	warned := false
	return client.RetryOnConflict(ctx, func() error {
		cur, err := c.Get(ctx, d.Object.GetNamespace(), name)
		switch {
		case client.IsNotFound(err):
			obj, err := kinds.DecodeManifest(modified)
			if err != nil {
				return err
			}
			return g.create(ctx, c, obj, dry, o)
		case err != nil:
			return err
		}
		if _, ok := cur.GetAnnotations()[kinds.LastAppliedAnnotation]; !ok && !warned {
			warned = true
			fmt.Fprintf(g.streams.Err, "Warning: resource %s/%s is missing the %s annotation which is required by skiffctl apply. "+
				"skiffctl apply should only be used on resources created declaratively by either skiffctl create --save-config or skiffctl apply. "+
				"The missing annotation will be patched automatically.\n", info.Plural, name, kinds.LastAppliedAnnotation)
		}
		patch, pt, err := kinds.ApplyPatch(cur, modified)
		if err != nil {
			return err
		}
		if string(patch) == "{}" {
			return g.result(info, cur, "unchanged", o, dry)
		}
		next, err := kinds.Patch(cur, pt, patch)
		if err != nil {
			return err
		}
		if dry == dryRunClient {
			return g.result(info, next, "configured", o, dry)
		}
		out, err := c.UpdateWithOptions(ctx, next, client.UpdateOptions{DryRun: dry == dryRunServer})
		if err != nil {
			return err
		}
		verb := "configured"
		if dry == dryRunNone && out.GetResourceVersion() == cur.GetResourceVersion() {
			verb = "unchanged" // the patch changed nothing the server keeps (1000m for 1)
		}
		return g.result(info, out, verb, o, dry)
	})
}

// create creates obj (or, in a dry run, says it would) and reports it.
func (g *globals) create(ctx context.Context, c *client.Client[kinds.Object], obj kinds.Object, dry dryRun, o output) error {
	info := c.Kind()
	if dry == dryRunClient {
		return g.result(info, obj, "created", o, dry)
	}
	out, err := c.CreateWithOptions(ctx, obj, client.CreateOptions{DryRun: dry == dryRunServer})
	if client.IsRetriedCreate(err) {
		out, err = obj, nil // an earlier attempt of this call created it
	}
	if err != nil {
		return err
	}
	return g.result(info, out, "created", o, dry)
}

func createCmd(g *globals) *cobra.Command {
	var f files
	var dry dryRun
	var o output
	var saveConfig bool
	cmd := &cobra.Command{
		Use:   "create -f FILENAME | create KIND NAME [options]",
		Short: "Create objects from manifests, or one object from options; an existing one is an error",
		Long: `Create the objects of the manifests (every document of every file, past failures), or
one object of a kind from its subcommand's options. An object that exists is an error.
With --save-config the object keeps its configuration in the
kubectl.kubernetes.io/last-applied-configuration annotation, as apply does, so that a
later apply merges with it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			return g.forEachDocument(cmd, f, func(ctx context.Context, conn *client.Conn, d *manifest.Document) error {
				obj := d.Object
				if saveConfig {
					modified, err := kinds.AppliedConfiguration(d.JSON)
					if err != nil {
						return err
					}
					if obj, err = kinds.DecodeManifest(modified); err != nil {
						return err
					}
				}
				return g.create(ctx, client.ForKind(conn, kinds.Of(obj)), obj, dry, o)
			})
		},
	}
	f.addFlags(cmd.Flags(), "the manifests to create")
	addDryRun(cmd.PersistentFlags(), &dry)
	cmd.PersistentFlags().StringVarP(&o.format, "output", "o", "", "print the objects as yaml, json or name instead of a message")
	cmd.Flags().BoolVar(&saveConfig, "save-config", false, "keep the configuration in the last-applied annotation, for a later apply")
	cmd.AddCommand(createNamespaceCmd(g, &dry, &o), createDeploymentCmd(g, &dry, &o), createConfigMapCmd(g, &dry, &o),
		createSecretCmd(g, &dry, &o), createServiceAccountCmd(g, &dry, &o), createJobCmd(g, &dry, &o))
	return cmd
}

func replaceCmd(g *globals) *cobra.Command {
	var f files
	var dry dryRun
	var o output
	cmd := &cobra.Command{
		Use:   "replace -f FILENAME",
		Short: "Replace objects by the manifests' (they must exist)",
		Long: `Replace each object by its manifest: metadata and spec become the manifest's; the
status and what the server owns stay. With a resourceVersion in the manifest the replace
happens only if the object has not changed since.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			return g.forEachDocument(cmd, f, func(ctx context.Context, conn *client.Conn, d *manifest.Document) error {
				info := kinds.Of(d.Object)
				c := client.ForKind(conn, info)
				if dry == dryRunClient {
					return g.result(info, d.Object, "replaced", o, dry)
				}
				out, err := c.UpdateWithOptions(ctx, d.Object, client.UpdateOptions{DryRun: dry == dryRunServer})
				if err != nil {
					return notFound(info, d.Object.GetName(), err)
				}
				return g.result(info, out, "replaced", o, dry)
			})
		},
	}
	f.addFlags(cmd.Flags(), "the manifests of the objects to replace")
	addDryRun(cmd.Flags(), &dry)
	cmd.Flags().StringVarP(&o.format, "output", "o", "", "print the objects as yaml, json or name instead of a message")
	return cmd
}

// target is an object a command acts on by name.
type target struct {
	info     *kinds.Info
	ns, name string
}

func deleteCmd(g *globals) *cobra.Command {
	var f files
	var cascade, labelSel, fieldSel string
	var grace int64
	var ignoreNotFound, all, allNS bool
	var dry dryRun
	cmd := &cobra.Command{
		Use:   "delete (-f FILENAME | KIND NAME... | KIND/NAME... | KIND -l SELECTOR | KIND --all)",
		Short: "Delete objects",
		Long: `Delete objects: those of the manifests (every document of every file, past failures),
the ones named, or every object of a kind that matches -l (or all of them with --all).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			policy, err := propagation(cascade)
			if err != nil {
				return err
			}
			opts := client.DeleteOptions{PropagationPolicy: policy, DryRun: dry == dryRunServer}
			if cmd.Flags().Changed("grace-period") {
				opts.GracePeriodSeconds = &grace
			}
			del := func(ctx context.Context, conn *client.Conn, t target) error {
				if dry == dryRunClient {
					fmt.Fprintf(g.streams.Out, "%s deleted%s\n", ref(t.info, t.name), dry.suffix())
					return nil
				}
				_, err := client.ForKind(conn, t.info).Delete(ctx, t.ns, t.name, opts)
				if client.IsNotFound(err) && ignoreNotFound {
					return nil
				}
				if err != nil {
					return notFound(t.info, t.name, err)
				}
				fmt.Fprintf(g.streams.Out, "%s deleted%s\n", ref(t.info, t.name), dry.suffix())
				return nil
			}
			switch {
			case len(f.names) > 0 && len(args) > 0:
				return fmt.Errorf("give either -f FILENAME or KIND NAME, not both")
			case len(f.names) > 0:
				return g.forEachDocument(cmd, f, func(ctx context.Context, conn *client.Conn, d *manifest.Document) error {
					return del(ctx, conn, target{kinds.Of(d.Object), d.Object.GetNamespace(), d.Object.GetName()})
				})
			}
			targets, err := g.targets(cmd, args, selection{labels: labelSel, fields: fieldSel, all: all, allNamespaces: allNS})
			if err != nil {
				return err
			}
			var errs []error
			for _, t := range targets {
				conn, ctx, cancel, err := g.connect(cmd, g.timeout)
				if err != nil {
					return err
				}
				errs = append(errs, del(ctx, conn, t))
				cancel()
			}
			return errors.Join(errs...)
		},
	}
	f.addFlags(cmd.Flags(), "delete the objects of these manifests")
	cmd.Flags().StringVar(&cascade, "cascade", "background", "dependents: background, foreground or orphan")
	cmd.Flags().Int64Var(&grace, "grace-period", -1, "seconds a pod gets to stop; 0 deletes at once")
	cmd.Flags().BoolVar(&ignoreNotFound, "ignore-not-found", false, "a missing object is not an error")
	cmd.Flags().StringVarP(&labelSel, "selector", "l", "", "delete the objects of KIND matching this label selector")
	cmd.Flags().StringVar(&fieldSel, "field-selector", "", "delete the objects of KIND matching this field selector")
	cmd.Flags().BoolVar(&all, "all", false, "delete every object of KIND in the namespace")
	cmd.Flags().BoolVarP(&allNS, "all-namespaces", "A", false, "with -l or --all: in every namespace")
	addDryRun(cmd.Flags(), &dry)
	return cmd
}

func propagation(cascade string) (string, error) {
	switch cascade {
	case "background", "true", "":
		return "Background", nil
	case "foreground":
		return "Foreground", nil
	case "orphan", "false":
		return "Orphan", nil
	}
	return "", fmt.Errorf("--cascade: Unsupported value: %q: supported values: background, foreground, orphan", cascade)
}

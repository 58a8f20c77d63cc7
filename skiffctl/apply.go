package skiffctl

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/skiffctl/manifest"
)

// readManifests reads -f FILE (or - for stdin).
func (g *globals) readManifests(file string) ([]manifest.Document, error) {
	if file == "" {
		return nil, fmt.Errorf("must specify -f FILE (or -f - for standard input)")
	}
	var r io.Reader = g.streams.In
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	docs, err := manifest.Decode(r, file)
	if err != nil {
		return nil, err
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("%s: no objects to apply", file)
	}
	return docs, nil
}

// place sets the namespace of a namespaced object from -n when the manifest has none,
// and refuses a manifest namespace that contradicts -n.
func (g *globals) place(obj kinds.Object) error {
	if !kinds.Of(obj).Namespaced {
		obj.SetNamespace("")
		return nil
	}
	switch ns := obj.GetNamespace(); {
	case ns == "":
		obj.SetNamespace(g.ns())
	case g.namespace != "" && ns != g.namespace:
		return fmt.Errorf("the namespace from the manifest (%q) does not match the namespace from -n (%q)", ns, g.namespace)
	}
	return nil
}

// manifestCmd is a command that does one thing to each object of -f FILE, in order: do
// gets the object, placed in its namespace, with the connection and a context for the
// object's requests.
func manifestCmd(g *globals, use, short string, do func(context.Context, *client.Conn, kinds.Object) error) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			docs, err := g.readManifests(file)
			if err != nil {
				return err
			}
			for _, d := range docs {
				if err := g.eachObject(cmd, d.Object, do); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "filename", "f", "", "manifest file, or - for standard input")
	return cmd
}

// eachObject does one object of manifestCmd's, with a context of its own: --request-timeout
// bounds each object's requests, not the whole file's.
func (g *globals) eachObject(cmd *cobra.Command, obj kinds.Object, do func(context.Context, *client.Conn, kinds.Object) error) error {
	conn, ctx, cancel, err := g.connect(cmd, g.timeout)
	if err != nil {
		return err
	}
	defer cancel()
	if err := g.place(obj); err != nil {
		return err
	}
	return do(ctx, conn, obj)
}

func applyCmd(g *globals) *cobra.Command {
	return manifestCmd(g, "apply -f FILE", "Create objects, or update them to match the manifest", g.applyOne)
}

func (g *globals) applyOne(ctx context.Context, conn *client.Conn, obj kinds.Object) error {
	info := kinds.Of(obj)
	name := obj.GetName()
	c := client.ForKind(conn, info)
	if name == "" {
		return fmt.Errorf("%s: metadata.name: Required value (apply needs a name; use create for generateName)", info.Kind)
	}
	cur, err := c.Get(ctx, obj.GetNamespace(), name)
	switch {
	case client.IsNotFound(err):
		if _, err := c.Create(ctx, obj); err != nil && !client.IsRetriedCreate(err) {
			return fmt.Errorf("create %s: %w", ref(info, name), err)
		}
		fmt.Fprintf(g.streams.Out, "%s created\n", ref(info, name))
		return nil
	case err != nil:
		return fmt.Errorf("get %s: %w", ref(info, name), err)
	}
	out, err := c.Update(ctx, merge(cur, obj))
	if err != nil {
		return fmt.Errorf("apply %s: %w", ref(info, name), err)
	}
	verb := "configured"
	if out.GetResourceVersion() == cur.GetResourceVersion() {
		verb = "unchanged"
	}
	fmt.Fprintf(g.streams.Out, "%s %s\n", ref(info, name), verb)
	return nil
}

// merge is what apply writes: the current object with the manifest's labels, annotations
// and spec. Fields others own stay: owner references, finalizers, a pod's node, and
// the service account and image pull secrets its admission gave it.
func merge(cur, want kinds.Object) kinds.Object {
	next := cur.DeepCopyObject().(kinds.Object)
	kinds.CopySection(next, want.DeepCopyObject().(kinds.Object), kinds.SpecSection)
	next.SetLabels(want.GetLabels())
	next.SetAnnotations(want.GetAnnotations())
	if p, ok := next.(*corev1.Pod); ok {
		c := &cur.(*corev1.Pod).Spec
		if p.Spec.NodeName == "" {
			p.Spec.NodeName = c.NodeName
		}
		if p.Spec.ServiceAccountName == "" && p.Spec.DeprecatedServiceAccount == "" {
			p.Spec.ServiceAccountName, p.Spec.DeprecatedServiceAccount = c.ServiceAccountName, c.DeprecatedServiceAccount
		}
		if len(p.Spec.ImagePullSecrets) == 0 {
			p.Spec.ImagePullSecrets = c.ImagePullSecrets
		}
	}
	return next
}

func createCmd(g *globals) *cobra.Command {
	cmd := manifestCmd(g, "create -f FILE", "Create objects; an existing one is an error", g.createOne)
	cmd.AddCommand(createSecretCmd(g), createServiceAccountCmd(g))
	return cmd
}

func (g *globals) createOne(ctx context.Context, conn *client.Conn, obj kinds.Object) error {
	info := kinds.Of(obj)
	out, err := client.ForKind(conn, info).Create(ctx, obj)
	if err != nil {
		return fmt.Errorf("create %s: %w", ref(info, obj.GetName()+obj.GetGenerateName()), err)
	}
	fmt.Fprintf(g.streams.Out, "%s created\n", ref(info, out.GetName()))
	return nil
}

func deleteCmd(g *globals) *cobra.Command {
	var file, cascade string
	var grace int64
	var ignoreNotFound bool
	cmd := &cobra.Command{
		Use:   "delete KIND NAME... | KIND/NAME | -f FILE",
		Short: "Delete objects",
		RunE: func(cmd *cobra.Command, args []string) error {
			policy, err := propagation(cascade)
			if err != nil {
				return err
			}
			type target struct {
				info     *kinds.Info
				ns, name string
			}
			var targets []target
			switch {
			case file != "" && len(args) > 0:
				return fmt.Errorf("give either -f FILE or KIND NAME, not both")
			case file != "":
				docs, err := g.readManifests(file)
				if err != nil {
					return err
				}
				for _, d := range docs {
					if err := g.place(d.Object); err != nil {
						return err
					}
					targets = append(targets, target{kinds.Of(d.Object), d.Object.GetNamespace(), d.Object.GetName()})
				}
			case len(args) == 1:
				info, name, err := kindAndName(args)
				if err != nil {
					return err
				}
				targets = append(targets, target{info, g.namespaceOf(info), name})
			case len(args) >= 2:
				info, err := kind(args[0])
				if err != nil {
					return err
				}
				for _, name := range args[1:] {
					targets = append(targets, target{info, g.namespaceOf(info), name})
				}
			default:
				return fmt.Errorf("give KIND NAME, KIND/NAME or -f FILE")
			}
			opts := client.DeleteOptions{PropagationPolicy: policy}
			if cmd.Flags().Changed("grace-period") {
				opts.GracePeriodSeconds = &grace
			}
			for _, t := range targets {
				conn, ctx, cancel, err := g.connect(cmd, g.timeout)
				if err != nil {
					return err
				}
				_, err = client.ForKind(conn, t.info).Delete(ctx, t.ns, t.name, opts)
				cancel()
				if err != nil {
					if client.IsNotFound(err) && ignoreNotFound {
						continue
					}
					return notFound(t.info, t.name, err)
				}
				fmt.Fprintf(g.streams.Out, "%s deleted\n", ref(t.info, t.name))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "filename", "f", "", "delete the objects of this manifest")
	cmd.Flags().StringVar(&cascade, "cascade", "background", "dependents: background, foreground or orphan")
	cmd.Flags().Int64Var(&grace, "grace-period", -1, "seconds a pod gets to stop; 0 deletes at once")
	cmd.Flags().BoolVar(&ignoreNotFound, "ignore-not-found", false, "a missing object is not an error")
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

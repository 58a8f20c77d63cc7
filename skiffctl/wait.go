package skiffctl

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/skiffctl/manifest"
	"k8s.io/client-go/util/jsonpath"
)

// watchObject calls check with the object as it is, then after each change, until check
// says done (or fails) or ctx ends; obj is nil while the object does not exist (or once
// it is deleted). It lists and watches the one object by name, resuming a broken watch.
func watchObject(ctx context.Context, conn *client.Conn, t target, check func(obj kinds.Object) (done bool, err error)) error {
	c := client.ForKind(conn, t.info)
	byName := client.ListOptions{FieldSelector: "metadata.name=" + t.name}
	for {
		l, err := c.List(ctx, t.ns, byName)
		if err != nil {
			return err
		}
		var obj kinds.Object
		if len(l.Items) > 0 {
			obj = l.Items[0]
		}
		if done, err := check(obj); done || err != nil {
			return err
		}
		w, err := c.Watch(ctx, t.ns, client.WatchOptions{ListOptions: byName, ResourceVersion: l.ResourceVersion})
		if err != nil {
			return err
		}
		for err == nil {
			var evs []client.Event[kinds.Object]
			evs, err = w.Next()
			for _, ev := range evs {
				var done bool
				var cerr error
				switch ev.Type {
				case client.Deleted:
					done, cerr = check(nil)
				case client.Added, client.Modified:
					done, cerr = check(ev.Object)
				}
				if done || cerr != nil {
					w.Stop()
					return cerr
				}
			}
		}
		w.Stop()
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// condition is what wait --for waits for.
type condition struct {
	deleted bool
	// condition=NAME[=VALUE]
	name, value string
	// jsonpath=EXPR[=VALUE]
	path     *jsonpath.JSONPath
	hasValue bool
}

func parseFor(s string) (condition, error) {
	switch k, v, _ := strings.Cut(s, "="); {
	case s == "delete":
		return condition{deleted: true}, nil
	case k == "condition" && v != "":
		name, value, ok := strings.Cut(v, "=")
		if !ok {
			value = "true"
		}
		return condition{name: name, value: value}, nil
	case k == "jsonpath" && v != "":
		expr, value, ok := strings.Cut(v, "}=")
		if ok {
			expr += "}"
		} else if i := strings.LastIndex(v, "="); !strings.HasPrefix(v, "{") && i > 0 {
			expr, value, ok = v[:i], v[i+1:], true
		}
		jp, err := relaxed(expr)
		if err != nil {
			return condition{}, fmt.Errorf("--for: %w", err)
		}
		return condition{path: jp, value: value, hasValue: ok}, nil
	}
	return condition{}, fmt.Errorf("--for: Unsupported value: %q: supported values: delete, condition=NAME[=VALUE], jsonpath='{EXPR}'[=VALUE]", s)
}

// met says whether obj meets the condition.
func (c condition) met(obj kinds.Object) (bool, error) {
	if c.deleted || obj == nil {
		return c.deleted && obj == nil, nil
	}
	tree, err := manifest.Tree(obj)
	if err != nil {
		return false, err
	}
	if c.path != nil {
		results, err := c.path.FindResults(tree)
		if err != nil {
			return false, err
		}
		var vals []any
		for _, r := range results {
			for _, v := range r {
				vals = append(vals, v.Interface())
			}
		}
		switch {
		case len(vals) > 1:
			return false, fmt.Errorf("given jsonpath expression matches more than one value")
		case len(vals) == 0:
			return false, nil
		case !c.hasValue:
			return true, nil
		}
		return fmt.Sprint(vals[0]) == c.value, nil
	}
	status, _ := tree["status"].(map[string]any)
	conds, _ := status["conditions"].([]any)
	meta, _ := tree["metadata"].(map[string]any)
	for _, x := range conds {
		cond, _ := x.(map[string]any)
		if t, _ := cond["type"].(string); !strings.EqualFold(t, c.name) {
			continue
		}
		if s, _ := cond["status"].(string); !strings.EqualFold(s, c.value) {
			return false, nil
		}
		// A condition about an older generation says nothing yet, as kubectl reads it.
		if og, ok := cond["observedGeneration"]; ok && fmt.Sprint(og) != fmt.Sprint(meta["generation"]) {
			return false, nil
		}
		return true, nil
	}
	return false, nil
}

func waitCmd(g *globals) *cobra.Command {
	var forCond string
	var timeout time.Duration
	var sel selection
	cmd := &cobra.Command{
		Use:   "wait (KIND NAME... | KIND/NAME... | KIND -l SELECTOR | KIND --all) --for=delete|condition=NAME[=VALUE]|jsonpath='{EXPR}'[=VALUE]",
		Short: "Wait until objects meet a condition, or are deleted",
		Long: `Wait, as kubectl wait does, until each object is deleted (--for=delete), has a status
condition of that type and status (--for=condition=Available, =True by default, read
case-insensitively), or has that value at a JSONPath expression (without a value: has
the field at all). --timeout bounds the whole wait (default 30s; 0 checks once).`,
		Example: `  skiffctl wait deployment/web --for=condition=Available --timeout=2m
  skiffctl wait pods -l app=web --for=jsonpath='{.status.phase}'=Running
  skiffctl wait pod/web-1 --for=delete`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if forCond == "" {
				return fmt.Errorf("--for: Required value: delete, condition=NAME[=VALUE] or jsonpath='{EXPR}'[=VALUE]")
			}
			cond, err := parseFor(forCond)
			if err != nil {
				return err
			}
			targets, err := g.targets(cmd, args, sel)
			if err != nil {
				return err
			}
			if len(targets) == 0 && !cond.deleted {
				return fmt.Errorf("no matching resources found")
			}
			conn, ctx, cancel, err := g.connect(cmd, timeout)
			if err != nil {
				return err
			}
			defer cancel()
			var errs []error
			for _, t := range targets {
				check := func(obj kinds.Object) (bool, error) {
					if obj == nil && !cond.deleted {
						return false, fmt.Errorf("%s %q not found", t.info.Singular, t.name)
					}
					return cond.met(obj)
				}
				if timeout <= 0 { // check once
					obj, err := client.ForKind(conn, t.info).Get(ctx, t.ns, t.name)
					if client.IsNotFound(err) {
						obj, err = nil, nil
					}
					if err == nil {
						var done bool
						if done, err = check(obj); err == nil && !done {
							err = context.DeadlineExceeded
						}
					}
					errs = append(errs, g.waited(t, cond, err))
					continue
				}
				err := watchObject(ctx, conn, t, check)
				if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
					// The wait ran out of time, whatever the call it cut short says (a
					// first read still in flight: "did not answer within 0s").
					err = context.DeadlineExceeded
				}
				errs = append(errs, g.waited(t, cond, err))
			}
			return errors.Join(errs...)
		},
	}
	f := cmd.Flags()
	f.StringVar(&forCond, "for", "", "delete, condition=NAME[=VALUE] or jsonpath='{EXPR}'[=VALUE]")
	f.DurationVar(&timeout, "timeout", 30*time.Second, "how long to wait in all")
	f.StringVarP(&sel.labels, "selector", "l", "", "the objects of KIND matching this label selector")
	f.StringVar(&sel.fields, "field-selector", "", "the objects of KIND matching this field selector")
	f.BoolVar(&sel.all, "all", false, "every object of KIND in the namespace")
	f.BoolVarP(&sel.allNamespaces, "all-namespaces", "A", false, "with -l or --all: in every namespace")
	return cmd
}

// waited reports the outcome of waiting for t, as kubectl does.
func (g *globals) waited(t target, cond condition, err error) error {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("timed out waiting for the condition on %s/%s", t.info.Plural, t.name)
	case err != nil:
		return err
	case cond.deleted:
		fmt.Fprintf(g.streams.Out, "%s deleted\n", ref(t.info, t.name))
	default:
		fmt.Fprintf(g.streams.Out, "%s condition met\n", ref(t.info, t.name))
	}
	return nil
}

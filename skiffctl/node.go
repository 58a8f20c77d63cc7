package skiffctl

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/skiffhq/skiff/kinds"
)

// nodeTargets are the nodes named (NAME or node/NAME) or picked by -l.
func (g *globals) nodeTargets(cmd *cobra.Command, args []string, sel selection) ([]target, error) {
	nodes := kinds.MustLookup(kinds.Node)
	if sel.selects() {
		if len(args) > 0 {
			return nil, fmt.Errorf("name cannot be provided when a selector is specified")
		}
		return g.targets(cmd, []string{"nodes"}, sel)
	}
	if len(args) == 0 {
		return nil, fmt.Errorf("a node name (or -l SELECTOR) is required")
	}
	var out []target
	for _, a := range args {
		k, name, ok := strings.Cut(a, "/")
		if !ok {
			name = a
		} else if info, found := kinds.Lookup(k); !found || info != nodes {
			return nil, fmt.Errorf("%q: only nodes can be %s", a, cmd.Name()+"ed")
		}
		out = append(out, target{nodes, "", name})
	}
	return out, nil
}

// cordonCmd is cordon (unschedulable) and uncordon.
func cordonCmd(g *globals, unschedulable bool) *cobra.Command {
	var sel selection
	var dry dryRun
	verb, short := "uncordon", "Mark nodes as schedulable again"
	if unschedulable {
		verb, short = "cordon", "Mark nodes as unschedulable: new pods are not scheduled there"
	}
	cmd := &cobra.Command{
		Use:   verb + " NODE... | -l SELECTOR",
		Short: short,
		RunE: func(cmd *cobra.Command, args []string) error {
			targets, err := g.nodeTargets(cmd, args, sel)
			if err != nil {
				return err
			}
			return g.mutateEach(cmd, targets, dry, func(obj kinds.Object) (kinds.Object, error) {
				obj.(*corev1.Node).Spec.Unschedulable = unschedulable
				return obj, nil
			}, func(t target, _ kinds.Object, changed bool) error {
				msg := verb + "ed"
				if !changed {
					msg = "already " + msg
				}
				fmt.Fprintf(g.streams.Out, "%s %s%s\n", ref(t.info, t.name), msg, dry.suffix())
				return nil
			})
		},
	}
	cmd.Flags().StringVarP(&sel.labels, "selector", "l", "", "the nodes matching this label selector")
	addDryRun(cmd.Flags(), &dry)
	return cmd
}

// taintChange is one argument of taint: KEY[=VALUE]:EFFECT to add, KEY[:EFFECT]- to
// remove.
type taintChange struct {
	taint  corev1.Taint
	remove bool
}

var taintEffects = []corev1.TaintEffect{corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute}

func parseTaint(s string) (taintChange, error) {
	var ch taintChange
	spec := s
	if strings.HasSuffix(s, "-") {
		ch.remove, spec = true, strings.TrimSuffix(s, "-")
	}
	kv, effect, hasEffect := strings.Cut(spec, ":")
	key, value, hasValue := strings.Cut(kv, "=")
	ch.taint = corev1.Taint{Key: key, Value: value, Effect: corev1.TaintEffect(effect)}
	switch {
	case len(validation.IsQualifiedName(key)) > 0:
		return ch, fmt.Errorf("invalid taint spec: %v, %s", s, strings.Join(validation.IsQualifiedName(key), "; "))
	case ch.remove && hasValue:
		return ch, fmt.Errorf("invalid taint spec: %v: a taint to remove is KEY or KEY:EFFECT", s)
	case !ch.remove && !hasEffect:
		return ch, fmt.Errorf("invalid taint spec: %v: a taint to add is KEY[=VALUE]:EFFECT", s)
	case hasValue && len(validation.IsValidLabelValue(value)) > 0:
		return ch, fmt.Errorf("invalid taint spec: %v, %s", s, strings.Join(validation.IsValidLabelValue(value), "; "))
	case hasEffect && !slices.Contains(taintEffects, ch.taint.Effect):
		return ch, fmt.Errorf("invalid taint effect: %v, unsupported taint effect", effect)
	}
	return ch, nil
}

func taintCmd(g *globals) *cobra.Command {
	var sel selection
	var overwrite bool
	var dry dryRun
	cmd := &cobra.Command{
		Use:   "taint NODE... KEY[=VALUE]:EFFECT... KEY[:EFFECT]-...",
		Short: "Add or remove taints on nodes",
		Long: `Add taints to nodes (KEY=VALUE:EFFECT, EFFECT one of NoSchedule, PreferNoSchedule,
NoExecute) or remove them (KEY:EFFECT- removes that one, KEY- every taint with the key),
as kubectl taint does. A taint with the same key and effect is changed only with
--overwrite.`,
		Example: `  skiffctl taint nodes w1 dedicated=shop:NoSchedule
  skiffctl taint node w1 dedicated:NoSchedule-
  skiffctl taint nodes -l pool=gpu gpu-`,
		RunE: func(cmd *cobra.Command, args []string) error {
			var names []string
			var changes []taintChange
			for i, a := range args {
				if i == 0 && (a == "node" || a == "nodes" || a == "no") {
					continue
				}
				if strings.Contains(a, ":") || strings.Contains(a, "=") || strings.HasSuffix(a, "-") {
					ch, err := parseTaint(a)
					if err != nil {
						return err
					}
					changes = append(changes, ch)
				} else {
					names = append(names, a)
				}
			}
			if len(changes) == 0 {
				return fmt.Errorf("at least one taint update is required")
			}
			targets, err := g.nodeTargets(cmd, names, sel)
			if err != nil {
				return err
			}
			return g.mutateEach(cmd, targets, dry, func(obj kinds.Object) (kinds.Object, error) {
				node := obj.(*corev1.Node)
				taints, err := applyTaints(node.Name, node.Spec.Taints, changes, overwrite)
				node.Spec.Taints = taints
				return node, err
			}, func(t target, after kinds.Object, changed bool) error {
				msg := "tainted"
				if !changed {
					msg = "not tainted"
				} else if len(after.(*corev1.Node).Spec.Taints) == 0 || onlyRemovals(changes) {
					msg = "untainted"
				}
				fmt.Fprintf(g.streams.Out, "%s %s%s\n", ref(t.info, t.name), msg, dry.suffix())
				return nil
			})
		},
	}
	cmd.Flags().StringVarP(&sel.labels, "selector", "l", "", "the nodes matching this label selector")
	cmd.Flags().BoolVar(&sel.all, "all", false, "every node")
	cmd.Flags().BoolVar(&overwrite, "overwrite", false, "change a taint that has the same key and effect")
	addDryRun(cmd.Flags(), &dry)
	return cmd
}

func onlyRemovals(changes []taintChange) bool {
	for _, ch := range changes {
		if !ch.remove {
			return false
		}
	}
	return true
}

// applyTaints makes the changes to a node's taints, as kubectl taint does.
func applyTaints(node string, taints []corev1.Taint, changes []taintChange, overwrite bool) ([]corev1.Taint, error) {
	out := slices.Clone(taints)
	for _, ch := range changes {
		if ch.remove {
			n := len(out)
			out = slices.DeleteFunc(out, func(t corev1.Taint) bool {
				return t.Key == ch.taint.Key && (ch.taint.Effect == "" || t.Effect == ch.taint.Effect)
			})
			if n == len(out) {
				return nil, fmt.Errorf("taint %q not found", strings.TrimSuffix(ch.taint.ToString(), ":"))
			}
			continue
		}
		i := slices.IndexFunc(out, func(t corev1.Taint) bool { return t.MatchTaint(&ch.taint) })
		switch {
		case i < 0:
			out = append(out, ch.taint)
		case !overwrite:
			return nil, fmt.Errorf("node %s already has %s taint(s) with same effect(s) and --overwrite is false", node, ch.taint.Key)
		default:
			out[i] = ch.taint
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

package skiffctl

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/skiffctl/manifest"
)

func diffCmd(g *globals) *cobra.Command {
	var f files
	var showSecret bool
	cmd := &cobra.Command{
		Use:   "diff -f FILENAME",
		Short: "Show what apply would change, as the server would store it",
		Long: `Show how the objects would change if the manifests were applied, as kubectl diff does:
each object's live state and what apply would make of it, as the server answers a
server-side dry run of the apply (defaults, validation and all), are written as YAML
to two directories and compared by "diff -u -N" (or $KUBECTL_EXTERNAL_DIFF).
A Secret's values are masked, as kubectl masks them: "***", or "*** (before)" and
"*** (after)" where a value changes (--show-secret shows them).
The exit status is 0 when nothing would change, 1 when something would, and greater
than 1 when skiffctl or diff failed.`,
		Example: `  skiffctl diff -f deploy.yaml`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			err := g.diff(cmd, f, showSecret)
			var ee *ExitError
			if err != nil && !errors.As(err, &ee) {
				return &ExitError{Code: 2, Err: err}
			}
			return err
		},
	}
	f.addFlags(cmd.Flags(), "the manifests to compare")
	cmd.Flags().BoolVar(&showSecret, "show-secret", false, "show a Secret's values instead of masking them")
	return cmd
}

// The masks of a Secret's values in a diff, kubectl's.
const (
	secretMask       = "***"
	secretMaskBefore = "*** (before)"
	secretMaskAfter  = "*** (after)"
)

// maskSecretData replaces the values of two versions of a Secret (either may be nil:
// absent) by masks, as kubectl diff does: a key whose value changes shows as
// "*** (before)" and "*** (after)", every other as "***", so that a diff shows which
// keys came, went or changed and never a value.
func maskSecretData(from, to map[string]any) {
	fromData, _ := from["data"].(map[string]any)
	toData, _ := to["data"].(map[string]any)
	for k, v := range fromData {
		if w, ok := toData[k]; ok && w != v {
			fromData[k], toData[k] = secretMaskBefore, secretMaskAfter
			continue
		}
		fromData[k] = secretMask
	}
	for k, v := range toData {
		if v != secretMaskAfter {
			toData[k] = secretMask
		}
	}
}

func (g *globals) diff(cmd *cobra.Command, f files, showSecret bool) error {
	top, err := os.MkdirTemp("", "skiffctl-diff-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(top)
	live, merged := filepath.Join(top, "LIVE"), filepath.Join(top, "MERGED")
	for _, d := range []string{live, merged} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return err
		}
	}
	err = g.forEachDocument(cmd, f, func(ctx context.Context, conn *client.Conn, d *manifest.Document) error {
		cur, next, err := g.dryRunApply(ctx, conn, d)
		if err != nil {
			return err
		}
		info := kinds.Of(d.Object)
		file := strings.Join([]string{strings.ReplaceAll(info.APIVersion, "/", "."), info.Kind, d.Object.GetNamespace(), d.Object.GetName()}, ".")
		sides := []struct {
			dir  string
			obj  kinds.Object
			tree map[string]any
		}{{dir: live, obj: cur}, {dir: merged, obj: next}}
		for i := range sides {
			if sides[i].obj != nil {
				if sides[i].tree, err = manifest.Tree(sides[i].obj); err != nil {
					return err
				}
			}
		}
		if info.Kind == kinds.Secret && !showSecret {
			maskSecretData(sides[0].tree, sides[1].tree)
		}
		for _, side := range sides {
			if side.tree == nil {
				continue // absent on that side: diff -N compares it with nothing
			}
			y, err := yaml.Marshal(side.tree)
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(side.dir, file), y, 0o600); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return g.runDiff(live, merged)
}

// dryRunApply is what apply would store for a document, as the server answers a dry
// run, and the object as it is (nil when it does not exist).
func (g *globals) dryRunApply(ctx context.Context, conn *client.Conn, d *manifest.Document) (cur, next kinds.Object, err error) {
	modified, err := kinds.AppliedConfiguration(d.JSON)
	if err != nil {
		return nil, nil, err
	}
	c := client.ForKind(conn, kinds.Of(d.Object))
	cur, err = c.Get(ctx, d.Object.GetNamespace(), d.Object.GetName())
	if client.IsNotFound(err) {
		obj, err := kinds.DecodeManifest(modified)
		if err != nil {
			return nil, nil, err
		}
		next, err = c.CreateWithOptions(ctx, obj, client.CreateOptions{DryRun: true})
		return nil, next, err
	}
	if err != nil {
		return nil, nil, err
	}
	patch, pt, err := kinds.ApplyPatch(cur, modified)
	if err != nil || string(patch) == "{}" {
		return cur, cur, err
	}
	patched, err := kinds.Patch(cur, pt, patch)
	if err != nil {
		return nil, nil, err
	}
	next, err = c.UpdateWithOptions(ctx, patched, client.UpdateOptions{DryRun: true})
	return cur, next, err
}

// runDiff compares the two directories as kubectl diff does, with diff -u -N or the
// program $KUBECTL_EXTERNAL_DIFF names (its arguments after it); diff's exit status
// becomes skiffctl's.
func (g *globals) runDiff(live, merged string) error {
	args := []string{"diff", "-u", "-N"}
	if ext := strings.Fields(os.Getenv("KUBECTL_EXTERNAL_DIFF")); len(ext) > 0 {
		args = ext
	}
	c := exec.Command(args[0], append(args[1:], live, merged)...)
	c.Stdout, c.Stderr = g.streams.Out, g.streams.Err
	err := c.Run()
	var xe *exec.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &xe) && xe.ExitCode() == 1:
		return &ExitError{Code: 1} // differences found
	case errors.As(err, &xe):
		return &ExitError{Code: xe.ExitCode(), Err: fmt.Errorf("%s failed: %w", args[0], err)}
	}
	return fmt.Errorf("run %s: %w", args[0], err)
}

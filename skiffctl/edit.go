package skiffctl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/skiffctl/manifest"
)

// editHeader opens the file edit hands to the editor, in kubectl's words.
const editHeader = `# Please edit the object below. Lines beginning with a '#' will be ignored,
# and an empty file will abort the edit. If an error occurs while saving this file will be
# reopened with the relevant failures.
#
`

func editCmd(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "edit (KIND NAME | KIND/NAME)",
		Short: "Edit an object in your editor and save it back",
		Long: `Open an object in an editor ($KUBE_EDITOR, else $EDITOR, else vi), as kubectl edit
does, and save what you change: the difference is sent as a strategic merge patch on the
object as it is then (a write that races another is retried on the object read again).
If the change is refused (an invalid value, a field that does not decode), the file is
reopened with the error at its top, as comments; saving it unchanged gives up. An empty
file, or a file saved without changes, cancels the edit.`,
		Example: `  skiffctl edit deployment web
  KUBE_EDITOR="nano" skiffctl edit deploy/web -o json`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "yaml" && format != "json" {
				return fmt.Errorf("--output: Unsupported value: %q: supported values: yaml, json", format)
			}
			info, name, err := kindAndName(args)
			if err != nil {
				return err
			}
			return g.edit(cmd, target{info, g.namespaceOf(info), name}, format)
		},
	}
	cmd.Flags().StringVarP(&format, "output", "o", "yaml", "the format to edit in: yaml or json")
	return cmd
}

func (g *globals) edit(cmd *cobra.Command, t target, format string) error {
	conn, ctx, cancel, err := g.connect(cmd, g.timeout)
	if err != nil {
		return err
	}
	obj, err := client.ForKind(conn, t.info).Get(ctx, t.ns, t.name)
	cancel()
	if err != nil {
		return notFound(t.info, t.name, err)
	}
	encode := manifest.YAML
	if format == "json" {
		encode = manifest.JSON
	}
	original, err := encode([]kinds.Object{obj}, false)
	if err != nil {
		return err
	}
	origJSON, err := yaml.YAMLToJSON(original)
	if err != nil {
		return err
	}
	file, err := os.CreateTemp("", "skiffctl-edit-*."+format)
	if err != nil {
		return err
	}
	path := file.Name()
	file.Close()
	keep := false // a copy of changes that could not be saved stays for the user
	defer func() {
		if !keep {
			os.Remove(path)
		}
	}()
	buf, problem := original, ""
	for {
		content := editHeader
		if problem != "" {
			for _, l := range strings.Split(strings.TrimRight(problem, "\n"), "\n") {
				content += "# " + l + "\n"
			}
			content += "#\n"
		}
		if err := os.WriteFile(path, append([]byte(content), buf...), 0o600); err != nil {
			return err
		}
		if err := g.runEditor(path); err != nil {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		edited := stripComments(raw)
		switch {
		case len(bytes.TrimSpace(edited)) == 0:
			fmt.Fprintln(g.streams.Err, "Edit cancelled, saved file was empty.")
			return nil
		case problem != "" && bytes.Equal(edited, stripComments(buf)):
			keep = true
			return fmt.Errorf("Edit cancelled, no valid changes were saved.\nA copy of your changes has been stored to %q", path)
		case problem == "" && bytes.Equal(edited, stripComments(original)):
			fmt.Fprintln(g.streams.Err, "Edit cancelled, no changes made.")
			return nil
		}
		buf = edited
		problem = ""
		if err := g.saveEdit(cmd, t, origJSON, edited); err != nil {
			problem = editProblem(t, err)
			continue
		}
		fmt.Fprintf(g.streams.Out, "%s edited\n", ref(t.info, t.name))
		return nil
	}
}

// saveEdit sends the difference between the object as opened and as edited.
func (g *globals) saveEdit(cmd *cobra.Command, t target, origJSON, edited []byte) error {
	editedJSON, err := yaml.YAMLToJSONStrict(edited)
	if err != nil {
		return fmt.Errorf("the edited file is not valid YAML or JSON: %w", err)
	}
	// The edited object must decode (a misspelled field names its path), and stay the
	// object it was.
	obj, err := kinds.DecodeManifest(editedJSON)
	if err != nil {
		return err
	}
	if kinds.Of(obj) != t.info || obj.GetName() != t.name {
		return fmt.Errorf("At least one of apiVersion, kind and name was changed")
	}
	patch, err := kinds.TwoWayPatch(t.info, origJSON, editedJSON)
	if err != nil {
		return err
	}
	conn, ctx, cancel, err := g.connect(cmd, g.timeout)
	if err != nil {
		return err
	}
	defer cancel()
	_, _, err = g.mutate(ctx, conn, t, dryRunNone, func(cur kinds.Object) (kinds.Object, error) {
		return kinds.Patch(cur, kinds.StrategicMergePatch, patch)
	})
	return err
}

// editProblem is how an error is shown at the top of the reopened file: an invalid
// object as kubectl says it ("deployments.apps "web" was not valid:" then each cause).
func editProblem(t target, err error) string {
	msg := Message(err)
	if client.IsInvalid(err) {
		causes := msg
		if i := strings.Index(msg, " is invalid: "); i >= 0 {
			causes = msg[i+len(" is invalid: "):]
		}
		var b strings.Builder
		fmt.Fprintf(&b, "%s %q was not valid:\n", resourceName(t.info), t.name)
		for _, c := range splitCauses(causes) {
			b.WriteString("* " + c + "\n")
		}
		return b.String()
	}
	var me *kinds.ManifestError
	if errors.As(err, &me) {
		var b strings.Builder
		fmt.Fprintf(&b, "%s %q was not valid:\n", resourceName(t.info), t.name)
		for _, p := range me.Problems {
			b.WriteString("* " + p + "\n")
		}
		return b.String()
	}
	return msg
}

// splitCauses splits a validation message listing several causes ("[a, b]") into them.
func splitCauses(msg string) []string {
	if strings.HasPrefix(msg, "[") && strings.HasSuffix(msg, "]") {
		return strings.Split(msg[1:len(msg)-1], ", ")
	}
	return []string{msg}
}

// resourceName is an API resource as kubectl names it in messages: "deployments.apps".
func resourceName(info *kinds.Info) string {
	if info.Group == "" {
		return info.Plural
	}
	return info.Plural + "." + info.Group
}

// stripComments drops the lines that are comments (the header and the errors).
func stripComments(b []byte) []byte {
	var out bytes.Buffer
	for _, l := range bytes.SplitAfter(b, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimLeft(l, " \t"), []byte("#")) {
			out.Write(l)
		}
	}
	return out.Bytes()
}

// runEditor runs the user's editor on path, on the command's terminal, as kubectl does:
// $KUBE_EDITOR, else $EDITOR, else vi; an editor with spaces or arguments runs through
// the shell.
func (g *globals) runEditor(path string) error {
	editor := os.Getenv("KUBE_EDITOR")
	if editor == "" {
		editor = os.Getenv("EDITOR")
	}
	if editor == "" {
		editor = "vi"
	}
	var c *exec.Cmd
	if strings.ContainsAny(editor, " \t'\"") {
		quoted, _ := json.Marshal(path)
		c = exec.Command("sh", "-c", editor+" "+string(quoted))
	} else {
		c = exec.Command(editor, path)
	}
	c.Stdin, c.Stdout, c.Stderr = g.streams.In, g.streams.Out, g.streams.Err
	if err := c.Run(); err != nil {
		return fmt.Errorf("there was a problem with the editor %q: %w", editor, err)
	}
	return nil
}

package skiffctl

import (
	"bytes"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// Reference renders every command of root as one Markdown document.
func Reference(root *cobra.Command, title string) []byte {
	var b bytes.Buffer
	b.WriteString("# " + title + "\n\nGenerated from the commands' own help; do not edit.\n\n")
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if !c.IsAvailableCommand() && c != root {
			return
		}
		c.DisableAutoGenTag = true
		var one bytes.Buffer
		doc.GenMarkdownCustom(c, &one, func(file string) string {
			return "#" + strings.ReplaceAll(strings.TrimSuffix(file, ".md"), "_", "-")
		})
		b.Write(bytes.ReplaceAll(one.Bytes(), []byte("\n## "), []byte("\n### ")))
		b.WriteString("\n")
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return b.Bytes()
}

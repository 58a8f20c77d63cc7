// Package printers renders objects for people: kubectl's tables (with -o wide columns),
// describe views and ages, over Kubernetes' types. Machine formats (yaml, json) are
// skiffctl/manifest's.
package printers

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/kinds/table"
)

// TableOptions shape a table.
type TableOptions struct {
	Wide          bool // -o wide: more columns
	AllNamespaces bool // -A: a NAMESPACE column first
	NoHeaders     bool
	// WithKind names each object kind/name (deployment.apps/web), as kubectl does when
	// several kinds are listed at once.
	WithKind bool
	// ShowLabels adds a LABELS column (--show-labels); LabelColumns a column per label
	// key (-L), headed by the key's last segment in capitals.
	ShowLabels   bool
	LabelColumns []string
	Now          time.Time // for ages; zero means time.Now()
}

// Table writes objects of one kind as kubectl prints them: the kind's columns (package
// kinds/table, which the API server's Table responses use too), names upper-cased.
func Table(w io.Writer, info *kinds.Info, objs []kinds.Object, opts TableOptions) error {
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	var use []table.Column
	if opts.AllNamespaces && info.Namespaced {
		use = append(use, table.Column{TableColumnDefinition: metav1.TableColumnDefinition{Name: "Namespace"},
			Cell: func(o kinds.Object, _ time.Time) any { return o.GetNamespace() }})
	}
	for _, c := range table.Columns(info) {
		if c.Priority > 0 && !opts.Wide {
			continue
		}
		if c.Format == "name" && c.Priority == 0 && opts.WithKind {
			c.Cell = func(o kinds.Object, _ time.Time) any { return KindName(info, o.GetName()) }
		}
		use = append(use, c)
	}
	for _, key := range opts.LabelColumns {
		parts := strings.Split(key, "/")
		use = append(use, table.Column{TableColumnDefinition: metav1.TableColumnDefinition{Name: parts[len(parts)-1]},
			Cell: func(o kinds.Object, _ time.Time) any { return o.GetLabels()[key] }})
	}
	if opts.ShowLabels {
		use = append(use, table.Column{TableColumnDefinition: metav1.TableColumnDefinition{Name: "Labels"},
			Cell: func(o kinds.Object, _ time.Time) any { return labels.FormatLabels(o.GetLabels()) }}) // "<none>" when there is none
	}
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	if !opts.NoHeaders {
		hs := make([]string, len(use))
		for i, c := range use {
			hs[i] = strings.ToUpper(c.Name)
		}
		fmt.Fprintln(tw, strings.Join(hs, "\t"))
	}
	for _, o := range objs {
		cells := make([]string, len(use))
		for i, c := range use {
			cells[i] = strings.ReplaceAll(fmt.Sprint(c.Cell(o, now)), "\t", " ")
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// KindName is how kubectl names an object of a kind: "deployment.apps/web", "pod/web-1".
func KindName(info *kinds.Info, name string) string {
	if info.Group != "" {
		return info.Singular + "." + info.Group + "/" + name
	}
	return info.Singular + "/" + name
}

// PodStatus is the STATUS column of a pod (table.PodStatus).
func PodStatus(p *corev1.Pod) string { return table.PodStatus(p) }

// NodeStatus is the STATUS column of a node (table.NodeStatus).
func NodeStatus(n *corev1.Node) string { return table.NodeStatus(n) }

func replicas(n *int32) int32 {
	if n == nil {
		return 0
	}
	return *n
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

// Age formats the time from t to now as kubectl does (table.Age).
func Age(t, now time.Time) string { return table.Age(t, now) }

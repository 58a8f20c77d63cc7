// Package printers renders resources for people: kubectl-style tables (with -o wide
// columns), describe views and ages. Machine formats (yaml, json) are skiffctl/manifest's.
package printers

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	corev1 "github.com/skiffhq/skiff/proto/core/v1"
	"github.com/skiffhq/skiff/proto/kinds"
)

// TableOptions shape a table.
type TableOptions struct {
	Wide          bool // -o wide: more columns
	AllNamespaces bool // -A: a NAMESPACE column first
	NoHeaders     bool
	Now           time.Time // for ages; zero means time.Now()
}

// column is one table column: its header, whether it is wide-only, and its cell.
type column struct {
	header string
	wide   bool
	cell   func(obj kinds.Object, now time.Time) string
}

func age(obj kinds.Object, now time.Time) string {
	return Age(kinds.Meta(obj).GetCreationTimestamp(), now)
}

var nameColumn = column{header: "NAME", cell: func(o kinds.Object, _ time.Time) string { return kinds.Meta(o).GetName() }}
var ageColumn = column{header: "AGE", cell: age}

// columns lists each kind's table, as kubectl prints it.
var columns = map[string][]column{
	kinds.Pod: {nameColumn,
		{header: "READY", cell: func(o kinds.Object, _ time.Time) string {
			p := o.(*corev1.Pod)
			ready := 0
			for _, cs := range p.GetStatus().GetContainerStatuses() {
				if cs.GetReady() {
					ready++
				}
			}
			return fmt.Sprintf("%d/%d", ready, len(p.GetSpec().GetContainers()))
		}},
		{header: "STATUS", cell: func(o kinds.Object, _ time.Time) string { return PodStatus(o.(*corev1.Pod)) }},
		{header: "RESTARTS", cell: func(o kinds.Object, _ time.Time) string {
			n := int32(0)
			for _, cs := range o.(*corev1.Pod).GetStatus().GetContainerStatuses() {
				n += cs.GetRestartCount()
			}
			return strconv.Itoa(int(n))
		}},
		ageColumn,
		{header: "IP", wide: true, cell: func(o kinds.Object, _ time.Time) string { return orNone(o.(*corev1.Pod).GetStatus().GetPodIp()) }},
		{header: "NODE", wide: true, cell: func(o kinds.Object, _ time.Time) string { return orNone(o.(*corev1.Pod).GetSpec().GetNodeName()) }},
	},
	kinds.Deployment: {nameColumn,
		{header: "READY", cell: func(o kinds.Object, _ time.Time) string {
			d := o.(*corev1.Deployment)
			return fmt.Sprintf("%d/%d", d.GetStatus().GetReadyReplicas(), d.GetSpec().GetReplicas())
		}},
		{header: "UP-TO-DATE", cell: func(o kinds.Object, _ time.Time) string {
			return strconv.Itoa(int(o.(*corev1.Deployment).GetStatus().GetUpdatedReplicas()))
		}},
		{header: "AVAILABLE", cell: func(o kinds.Object, _ time.Time) string {
			return strconv.Itoa(int(o.(*corev1.Deployment).GetStatus().GetAvailableReplicas()))
		}},
		ageColumn,
		{header: "CONTAINERS", wide: true, cell: func(o kinds.Object, _ time.Time) string {
			return containerNames(o.(*corev1.Deployment).GetSpec().GetTemplate().GetSpec())
		}},
		{header: "IMAGES", wide: true, cell: func(o kinds.Object, _ time.Time) string {
			return containerImages(o.(*corev1.Deployment).GetSpec().GetTemplate().GetSpec())
		}},
		{header: "SELECTOR", wide: true, cell: func(o kinds.Object, _ time.Time) string {
			return Selector(o.(*corev1.Deployment).GetSpec().GetSelector())
		}},
	},
	kinds.ReplicaSet: {nameColumn,
		{header: "DESIRED", cell: func(o kinds.Object, _ time.Time) string {
			return strconv.Itoa(int(o.(*corev1.ReplicaSet).GetSpec().GetReplicas()))
		}},
		{header: "CURRENT", cell: func(o kinds.Object, _ time.Time) string {
			return strconv.Itoa(int(o.(*corev1.ReplicaSet).GetStatus().GetReplicas()))
		}},
		{header: "READY", cell: func(o kinds.Object, _ time.Time) string {
			return strconv.Itoa(int(o.(*corev1.ReplicaSet).GetStatus().GetReadyReplicas()))
		}},
		ageColumn,
		{header: "CONTAINERS", wide: true, cell: func(o kinds.Object, _ time.Time) string {
			return containerNames(o.(*corev1.ReplicaSet).GetSpec().GetTemplate().GetSpec())
		}},
		{header: "IMAGES", wide: true, cell: func(o kinds.Object, _ time.Time) string {
			return containerImages(o.(*corev1.ReplicaSet).GetSpec().GetTemplate().GetSpec())
		}},
		{header: "SELECTOR", wide: true, cell: func(o kinds.Object, _ time.Time) string {
			return Selector(o.(*corev1.ReplicaSet).GetSpec().GetSelector())
		}},
	},
	kinds.Node: {nameColumn,
		{header: "STATUS", cell: func(o kinds.Object, _ time.Time) string { return NodeStatus(o.(*corev1.Node)) }},
		{header: "ROLES", cell: func(o kinds.Object, _ time.Time) string { return nodeRoles(o.(*corev1.Node)) }},
		ageColumn,
		{header: "VERSION", cell: func(o kinds.Object, _ time.Time) string {
			return orNone(o.(*corev1.Node).GetStatus().GetNodeInfo().GetKubeletVersion())
		}},
		{header: "INTERNAL-IP", wide: true, cell: func(o kinds.Object, _ time.Time) string {
			for _, a := range o.(*corev1.Node).GetStatus().GetAddresses() {
				if a.GetType() == "InternalIP" {
					return a.GetAddress()
				}
			}
			return "<none>"
		}},
		{header: "OS-IMAGE", wide: true, cell: func(o kinds.Object, _ time.Time) string {
			return orNone(o.(*corev1.Node).GetStatus().GetNodeInfo().GetOsImage())
		}},
		{header: "CONTAINER-RUNTIME", wide: true, cell: func(o kinds.Object, _ time.Time) string {
			return orNone(o.(*corev1.Node).GetStatus().GetNodeInfo().GetContainerRuntimeVersion())
		}},
	},
	kinds.Event: {
		{header: "LAST SEEN", cell: func(o kinds.Object, now time.Time) string {
			e := o.(*corev1.Event)
			ts := e.GetLastTimestamp()
			if ts == nil {
				ts = e.GetEventTime()
			}
			return Age(ts, now)
		}},
		{header: "TYPE", cell: func(o kinds.Object, _ time.Time) string { return o.(*corev1.Event).GetType() }},
		{header: "REASON", cell: func(o kinds.Object, _ time.Time) string { return o.(*corev1.Event).GetReason() }},
		{header: "OBJECT", cell: func(o kinds.Object, _ time.Time) string {
			ref := o.(*corev1.Event).GetInvolvedObject()
			return strings.ToLower(ref.GetKind()) + "/" + ref.GetName()
		}},
		{header: "SOURCE", wide: true, cell: func(o kinds.Object, _ time.Time) string {
			s := o.(*corev1.Event).GetSource()
			if s.GetHost() != "" {
				return s.GetComponent() + ", " + s.GetHost()
			}
			return s.GetComponent()
		}},
		{header: "COUNT", wide: true, cell: func(o kinds.Object, _ time.Time) string { return strconv.Itoa(int(o.(*corev1.Event).GetCount())) }},
		{header: "MESSAGE", cell: func(o kinds.Object, _ time.Time) string { return o.(*corev1.Event).GetMessage() }},
	},
	kinds.ConfigMap: {nameColumn,
		{header: "DATA", cell: func(o kinds.Object, _ time.Time) string {
			c := o.(*corev1.ConfigMap)
			return strconv.Itoa(len(c.GetData()) + len(c.GetBinaryData()))
		}},
		ageColumn,
	},
	kinds.Lease: {nameColumn,
		{header: "HOLDER", cell: func(o kinds.Object, _ time.Time) string { return o.(*corev1.Lease).GetSpec().GetHolderIdentity() }},
		ageColumn,
	},
	kinds.Namespace: {nameColumn,
		{header: "STATUS", cell: func(o kinds.Object, _ time.Time) string {
			if p := o.(*corev1.Namespace).GetStatus().GetPhase(); p != "" {
				return p
			}
			return "Active"
		}},
		ageColumn,
	},
}

// Table writes objects of one kind as a kubectl-style table.
func Table(w io.Writer, info *kinds.Info, objs []kinds.Object, opts TableOptions) error {
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	cols := columns[info.Kind]
	if cols == nil {
		cols = []column{nameColumn, ageColumn}
	}
	var use []column
	if opts.AllNamespaces && info.Namespaced {
		use = append(use, column{header: "NAMESPACE", cell: func(o kinds.Object, _ time.Time) string { return kinds.Meta(o).GetNamespace() }})
	}
	for _, c := range cols {
		if !c.wide || opts.Wide {
			use = append(use, c)
		}
	}
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	if !opts.NoHeaders {
		hs := make([]string, len(use))
		for i, c := range use {
			hs[i] = c.header
		}
		fmt.Fprintln(tw, strings.Join(hs, "\t"))
	}
	for _, o := range objs {
		cells := make([]string, len(use))
		for i, c := range use {
			cells[i] = strings.ReplaceAll(c.cell(o, now), "\t", " ")
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// PodStatus is the STATUS column of a pod, computed as kubectl does: Terminating while
// being deleted, else the first container's waiting or terminated reason, else the phase.
func PodStatus(p *corev1.Pod) string {
	if p.GetMetadata().GetDeletionTimestamp() != nil {
		return "Terminating"
	}
	reason := p.GetStatus().GetPhase()
	if r := p.GetStatus().GetReason(); r != "" {
		reason = r
	}
	running := false
	for i := len(p.GetStatus().GetContainerStatuses()) - 1; i >= 0; i-- {
		cs := p.GetStatus().GetContainerStatuses()[i]
		st := cs.GetState()
		switch {
		case st.GetWaiting().GetReason() != "":
			reason = st.GetWaiting().GetReason()
		case st.GetTerminated().GetReason() != "":
			reason = st.GetTerminated().GetReason()
		case st.GetTerminated() != nil:
			reason = fmt.Sprintf("ExitCode:%d", st.GetTerminated().GetExitCode())
		case st.GetRunning() != nil && cs.GetReady():
			running = true
		}
	}
	if reason == "Completed" && running {
		reason = "Running"
	}
	if reason == "" {
		reason = "Pending"
	}
	return reason
}

// NodeStatus is the STATUS column of a node: Ready, NotReady or Unknown, and
// SchedulingDisabled when cordoned.
func NodeStatus(n *corev1.Node) string {
	st := "Unknown"
	for _, c := range n.GetStatus().GetConditions() {
		if c.GetType() == "Ready" {
			switch c.GetStatus() {
			case "True":
				st = "Ready"
			case "False":
				st = "NotReady"
			}
		}
	}
	if n.GetSpec().GetUnschedulable() {
		st += ",SchedulingDisabled"
	}
	return st
}

func nodeRoles(n *corev1.Node) string {
	var roles []string
	for k := range n.GetMetadata().GetLabels() {
		if r, ok := strings.CutPrefix(k, "node-role.kubernetes.io/"); ok && r != "" {
			roles = append(roles, r)
		}
	}
	if len(roles) == 0 {
		return "<none>"
	}
	sort.Strings(roles)
	return strings.Join(roles, ",")
}

func containerNames(s *corev1.PodSpec) string {
	var out []string
	for _, c := range s.GetContainers() {
		out = append(out, c.GetName())
	}
	return strings.Join(out, ",")
}

func containerImages(s *corev1.PodSpec) string {
	var out []string
	for _, c := range s.GetContainers() {
		out = append(out, c.GetImage())
	}
	return strings.Join(out, ",")
}

// Selector writes a label selector as kubectl does: "app=web,tier in (a,b)".
func Selector(ls *corev1.LabelSelector) string {
	var parts []string
	keys := make([]string, 0, len(ls.GetMatchLabels()))
	for k := range ls.GetMatchLabels() {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		parts = append(parts, k+"="+ls.GetMatchLabels()[k])
	}
	for _, r := range ls.GetMatchExpressions() {
		switch r.GetOperator() {
		case "In":
			parts = append(parts, fmt.Sprintf("%s in (%s)", r.GetKey(), strings.Join(r.GetValues(), ",")))
		case "NotIn":
			parts = append(parts, fmt.Sprintf("%s notin (%s)", r.GetKey(), strings.Join(r.GetValues(), ",")))
		case "Exists":
			parts = append(parts, r.GetKey())
		case "DoesNotExist":
			parts = append(parts, "!"+r.GetKey())
		}
	}
	if len(parts) == 0 {
		return "<none>"
	}
	return strings.Join(parts, ",")
}

// IntOrString formats an int-or-percent value ("25%", "1").
func IntOrString(v *structpb.Value) string {
	switch k := v.GetKind().(type) {
	case *structpb.Value_NumberValue:
		return strconv.FormatFloat(k.NumberValue, 'f', -1, 64)
	case *structpb.Value_StringValue:
		return k.StringValue
	}
	return "<unset>"
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

// Age formats the time since ts as kubectl does ("45s", "3m12s", "5h", "12d").
func Age(ts *timestamppb.Timestamp, now time.Time) string {
	if ts == nil {
		return "<unknown>"
	}
	return ShortDuration(now.Sub(ts.AsTime()))
}

// ShortDuration is kubectl's human duration.
func ShortDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int(d.Seconds())
	switch {
	case s < 120:
		return fmt.Sprintf("%ds", s)
	case d < 10*time.Minute:
		return fmt.Sprintf("%dm%ds", s/60, s%60)
	case d < 3*time.Hour:
		return fmt.Sprintf("%dm", s/60)
	case d < 8*time.Hour:
		if m := (s / 60) % 60; m != 0 {
			return fmt.Sprintf("%dh%dm", s/3600, m)
		}
		return fmt.Sprintf("%dh", s/3600)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", s/3600)
	case d < 8*24*time.Hour:
		if h := (s / 3600) % 24; h != 0 {
			return fmt.Sprintf("%dd%dh", s/86400, h)
		}
		return fmt.Sprintf("%dd", s/86400)
	case d < 2*365*24*time.Hour:
		return fmt.Sprintf("%dd", s/86400)
	}
	return fmt.Sprintf("%dy", s/(365*86400))
}

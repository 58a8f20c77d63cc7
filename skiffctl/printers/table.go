// Package printers renders objects for people: kubectl's tables (with -o wide columns),
// describe views and ages, over Kubernetes' types. Machine formats (yaml, json) are
// skiffctl/manifest's.
package printers

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiffhq/skiff/kinds"
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

// column is one table column: its header, whether it is wide-only, and its cell.
type column struct {
	header string
	wide   bool
	cell   func(obj kinds.Object, now time.Time) string
}

func age(obj kinds.Object, now time.Time) string {
	return Age(obj.GetCreationTimestamp().Time, now)
}

var nameColumn = column{header: "NAME", cell: func(o kinds.Object, _ time.Time) string { return o.GetName() }}
var ageColumn = column{header: "AGE", cell: age}

// columns lists each kind's table, as kubectl prints it.
var columns = map[string][]column{
	kinds.Pod: {nameColumn,
		{header: "READY", cell: func(o kinds.Object, _ time.Time) string {
			p := o.(*corev1.Pod)
			ready := 0
			for _, cs := range p.Status.ContainerStatuses {
				if cs.Ready {
					ready++
				}
			}
			return fmt.Sprintf("%d/%d", ready, len(p.Spec.Containers))
		}},
		{header: "STATUS", cell: func(o kinds.Object, _ time.Time) string { return PodStatus(o.(*corev1.Pod)) }},
		{header: "RESTARTS", cell: func(o kinds.Object, _ time.Time) string {
			n := int32(0)
			for _, cs := range o.(*corev1.Pod).Status.ContainerStatuses {
				n += cs.RestartCount
			}
			return strconv.Itoa(int(n))
		}},
		ageColumn,
		{header: "IP", wide: true, cell: func(o kinds.Object, _ time.Time) string { return orNone(o.(*corev1.Pod).Status.PodIP) }},
		{header: "NODE", wide: true, cell: func(o kinds.Object, _ time.Time) string { return orNone(o.(*corev1.Pod).Spec.NodeName) }},
	},
	kinds.Deployment: {nameColumn,
		{header: "READY", cell: func(o kinds.Object, _ time.Time) string {
			d := o.(*appsv1.Deployment)
			return fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, replicas(d.Spec.Replicas))
		}},
		{header: "UP-TO-DATE", cell: func(o kinds.Object, _ time.Time) string {
			return strconv.Itoa(int(o.(*appsv1.Deployment).Status.UpdatedReplicas))
		}},
		{header: "AVAILABLE", cell: func(o kinds.Object, _ time.Time) string {
			return strconv.Itoa(int(o.(*appsv1.Deployment).Status.AvailableReplicas))
		}},
		ageColumn,
		{header: "CONTAINERS", wide: true, cell: func(o kinds.Object, _ time.Time) string {
			return containerNames(&o.(*appsv1.Deployment).Spec.Template.Spec)
		}},
		{header: "IMAGES", wide: true, cell: func(o kinds.Object, _ time.Time) string {
			return containerImages(&o.(*appsv1.Deployment).Spec.Template.Spec)
		}},
		{header: "SELECTOR", wide: true, cell: func(o kinds.Object, _ time.Time) string {
			return metav1.FormatLabelSelector(o.(*appsv1.Deployment).Spec.Selector)
		}},
	},
	kinds.ReplicaSet: {nameColumn,
		{header: "DESIRED", cell: func(o kinds.Object, _ time.Time) string {
			return strconv.Itoa(int(replicas(o.(*appsv1.ReplicaSet).Spec.Replicas)))
		}},
		{header: "CURRENT", cell: func(o kinds.Object, _ time.Time) string {
			return strconv.Itoa(int(o.(*appsv1.ReplicaSet).Status.Replicas))
		}},
		{header: "READY", cell: func(o kinds.Object, _ time.Time) string {
			return strconv.Itoa(int(o.(*appsv1.ReplicaSet).Status.ReadyReplicas))
		}},
		ageColumn,
		{header: "CONTAINERS", wide: true, cell: func(o kinds.Object, _ time.Time) string {
			return containerNames(&o.(*appsv1.ReplicaSet).Spec.Template.Spec)
		}},
		{header: "IMAGES", wide: true, cell: func(o kinds.Object, _ time.Time) string {
			return containerImages(&o.(*appsv1.ReplicaSet).Spec.Template.Spec)
		}},
		{header: "SELECTOR", wide: true, cell: func(o kinds.Object, _ time.Time) string {
			return metav1.FormatLabelSelector(o.(*appsv1.ReplicaSet).Spec.Selector)
		}},
	},
	kinds.Node: {nameColumn,
		{header: "STATUS", cell: func(o kinds.Object, _ time.Time) string { return NodeStatus(o.(*corev1.Node)) }},
		{header: "ROLES", cell: func(o kinds.Object, _ time.Time) string { return nodeRoles(o.(*corev1.Node)) }},
		ageColumn,
		{header: "VERSION", cell: func(o kinds.Object, _ time.Time) string {
			return orNone(o.(*corev1.Node).Status.NodeInfo.KubeletVersion)
		}},
		{header: "INTERNAL-IP", wide: true, cell: func(o kinds.Object, _ time.Time) string {
			for _, a := range o.(*corev1.Node).Status.Addresses {
				if a.Type == corev1.NodeInternalIP {
					return a.Address
				}
			}
			return "<none>"
		}},
		{header: "OS-IMAGE", wide: true, cell: func(o kinds.Object, _ time.Time) string {
			return orNone(o.(*corev1.Node).Status.NodeInfo.OSImage)
		}},
		{header: "CONTAINER-RUNTIME", wide: true, cell: func(o kinds.Object, _ time.Time) string {
			return orNone(o.(*corev1.Node).Status.NodeInfo.ContainerRuntimeVersion)
		}},
	},
	kinds.Event: {
		{header: "LAST SEEN", cell: func(o kinds.Object, now time.Time) string { return Age(lastSeen(o.(*corev1.Event)), now) }},
		{header: "TYPE", cell: func(o kinds.Object, _ time.Time) string { return o.(*corev1.Event).Type }},
		{header: "REASON", cell: func(o kinds.Object, _ time.Time) string { return o.(*corev1.Event).Reason }},
		{header: "OBJECT", cell: func(o kinds.Object, _ time.Time) string {
			ref := o.(*corev1.Event).InvolvedObject
			return strings.ToLower(ref.Kind) + "/" + ref.Name
		}},
		{header: "SOURCE", wide: true, cell: func(o kinds.Object, _ time.Time) string { return source(o.(*corev1.Event)) }},
		{header: "COUNT", wide: true, cell: func(o kinds.Object, _ time.Time) string { return strconv.Itoa(int(count(o.(*corev1.Event)))) }},
		{header: "MESSAGE", cell: func(o kinds.Object, _ time.Time) string { return o.(*corev1.Event).Message }},
	},
	kinds.ConfigMap: {nameColumn,
		{header: "DATA", cell: func(o kinds.Object, _ time.Time) string {
			c := o.(*corev1.ConfigMap)
			return strconv.Itoa(len(c.Data) + len(c.BinaryData))
		}},
		ageColumn,
	},
	kinds.Secret: {nameColumn,
		{header: "TYPE", cell: func(o kinds.Object, _ time.Time) string { return string(o.(*corev1.Secret).Type) }},
		{header: "DATA", cell: func(o kinds.Object, _ time.Time) string { return strconv.Itoa(len(o.(*corev1.Secret).Data)) }},
		ageColumn,
	},
	kinds.ServiceAccount: {nameColumn,
		{header: "SECRETS", cell: func(o kinds.Object, _ time.Time) string {
			return strconv.Itoa(len(o.(*corev1.ServiceAccount).Secrets))
		}},
		ageColumn,
	},
	kinds.Lease: {nameColumn,
		{header: "HOLDER", cell: func(o kinds.Object, _ time.Time) string { return deref(o.(*coordinationv1.Lease).Spec.HolderIdentity) }},
		ageColumn,
	},
	kinds.PodDisruptionBudget: {nameColumn,
		{header: "MIN AVAILABLE", cell: func(o kinds.Object, _ time.Time) string {
			return intOrPercent(o.(*policyv1.PodDisruptionBudget).Spec.MinAvailable)
		}},
		{header: "MAX UNAVAILABLE", cell: func(o kinds.Object, _ time.Time) string {
			return intOrPercent(o.(*policyv1.PodDisruptionBudget).Spec.MaxUnavailable)
		}},
		{header: "ALLOWED DISRUPTIONS", cell: func(o kinds.Object, _ time.Time) string {
			return strconv.Itoa(int(o.(*policyv1.PodDisruptionBudget).Status.DisruptionsAllowed))
		}},
		ageColumn,
	},
	kinds.Namespace: {nameColumn,
		{header: "STATUS", cell: func(o kinds.Object, _ time.Time) string { return namespacePhase(o.(*corev1.Namespace)) }},
		ageColumn,
	},
	kinds.Service: {nameColumn,
		{header: "TYPE", cell: func(o kinds.Object, _ time.Time) string { return string(o.(*corev1.Service).Spec.Type) }},
		{header: "CLUSTER-IP", cell: func(o kinds.Object, _ time.Time) string { return orNone(o.(*corev1.Service).Spec.ClusterIP) }},
		{header: "EXTERNAL-IP", cell: func(o kinds.Object, _ time.Time) string { return serviceExternalIP(o.(*corev1.Service)) }},
		{header: "PORT(S)", cell: func(o kinds.Object, _ time.Time) string { return servicePorts(o.(*corev1.Service).Spec.Ports) }},
		ageColumn,
		{header: "SELECTOR", wide: true, cell: func(o kinds.Object, _ time.Time) string {
			return orNone(labels.FormatLabels(o.(*corev1.Service).Spec.Selector))
		}},
	},
	kinds.EndpointSlice: {nameColumn,
		{header: "ADDRESSTYPE", cell: func(o kinds.Object, _ time.Time) string { return string(o.(*discoveryv1.EndpointSlice).AddressType) }},
		{header: "PORTS", cell: func(o kinds.Object, _ time.Time) string { return slicePorts(o.(*discoveryv1.EndpointSlice).Ports) }},
		{header: "ENDPOINTS", cell: func(o kinds.Object, _ time.Time) string {
			return sliceEndpoints(o.(*discoveryv1.EndpointSlice).Endpoints)
		}},
		ageColumn,
	},
	kinds.ResourceQuota: {nameColumn, ageColumn,
		{header: "REQUEST", cell: func(o kinds.Object, _ time.Time) string { return quotaColumn(o.(*corev1.ResourceQuota), false) }},
		{header: "LIMIT", cell: func(o kinds.Object, _ time.Time) string { return quotaColumn(o.(*corev1.ResourceQuota), true) }},
	},
	kinds.LimitRange: {nameColumn,
		{header: "CREATED AT", cell: func(o kinds.Object, _ time.Time) string {
			return o.GetCreationTimestamp().UTC().Format(time.RFC3339)
		}},
	},
}

// serviceExternalIP is kubectl's EXTERNAL-IP: an ExternalName Service's name, a load
// balancer's ingress points (<pending> until it has some), or the external IPs.
func serviceExternalIP(svc *corev1.Service) string {
	switch svc.Spec.Type {
	case corev1.ServiceTypeExternalName:
		return svc.Spec.ExternalName
	case corev1.ServiceTypeLoadBalancer:
		var ips []string
		for _, in := range svc.Status.LoadBalancer.Ingress {
			ips = append(ips, in.IP+in.Hostname)
		}
		ips = append(ips, svc.Spec.ExternalIPs...)
		if len(ips) == 0 {
			return "<pending>"
		}
		return strings.Join(ips, ",")
	}
	if len(svc.Spec.ExternalIPs) > 0 {
		return strings.Join(svc.Spec.ExternalIPs, ",")
	}
	return "<none>"
}

// servicePorts is kubectl's PORT(S): port[:nodePort]/protocol, comma-separated.
func servicePorts(ports []corev1.ServicePort) string {
	if len(ports) == 0 {
		return "<none>"
	}
	out := make([]string, len(ports))
	for i, p := range ports {
		out[i] = fmt.Sprintf("%d/%s", p.Port, p.Protocol)
		if p.NodePort > 0 {
			out[i] = fmt.Sprintf("%d:%d/%s", p.Port, p.NodePort, p.Protocol)
		}
	}
	return strings.Join(out, ",")
}

// slicePorts is kubectl's PORTS of an EndpointSlice: the port numbers, <unset> for a port
// without a number, <unset> when there are none.
func slicePorts(ports []discoveryv1.EndpointPort) string {
	if len(ports) == 0 {
		return "<unset>"
	}
	out := make([]string, len(ports))
	for i, p := range ports {
		out[i] = "<unset>"
		if p.Port != nil {
			out[i] = strconv.Itoa(int(*p.Port))
		}
	}
	return strings.Join(out, ",")
}

// sliceEndpoints is kubectl's ENDPOINTS: the first three addresses and how many more.
func sliceEndpoints(eps []discoveryv1.Endpoint) string {
	var addrs []string
	for _, e := range eps {
		addrs = append(addrs, e.Addresses...)
	}
	if len(addrs) == 0 {
		return "<unset>"
	}
	if len(addrs) > 3 {
		return fmt.Sprintf("%s + %d more...", strings.Join(addrs[:3], ","), len(addrs)-3)
	}
	return strings.Join(addrs, ",")
}

// quotaColumn is kubectl's REQUEST (limits false) or LIMIT column of a quota: each
// resource of status.hard as "name: used/hard", the limits.* ones in LIMIT.
func quotaColumn(q *corev1.ResourceQuota, limits bool) string {
	var parts []string
	for _, name := range sortedKeys(q.Status.Hard) {
		if strings.HasPrefix(string(name), "limits.") != limits {
			continue
		}
		used, hard := q.Status.Used[name], q.Status.Hard[name]
		parts = append(parts, fmt.Sprintf("%s: %s/%s", name, used.String(), hard.String()))
	}
	return strings.Join(parts, ", ")
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
		use = append(use, column{header: "NAMESPACE", cell: func(o kinds.Object, _ time.Time) string { return o.GetNamespace() }})
	}
	for _, c := range cols {
		if c.wide && !opts.Wide {
			continue
		}
		if c.header == "NAME" && opts.WithKind {
			c.cell = func(o kinds.Object, _ time.Time) string { return KindName(info, o.GetName()) }
		}
		use = append(use, c)
	}
	for _, key := range opts.LabelColumns {
		parts := strings.Split(key, "/")
		use = append(use, column{header: strings.ToUpper(parts[len(parts)-1]), cell: func(o kinds.Object, _ time.Time) string {
			return o.GetLabels()[key]
		}})
	}
	if opts.ShowLabels {
		use = append(use, column{header: "LABELS", cell: func(o kinds.Object, _ time.Time) string {
			return labels.FormatLabels(o.GetLabels()) // "<none>" when there is none
		}})
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

// KindName is how kubectl names an object of a kind: "deployment.apps/web", "pod/web-1".
func KindName(info *kinds.Info, name string) string {
	if info.Group != "" {
		return info.Singular + "." + info.Group + "/" + name
	}
	return info.Singular + "/" + name
}

// PodStatus is the STATUS column of a pod, computed as kubectl does: Terminating while
// being deleted, else the first container's waiting or terminated reason, else the phase.
func PodStatus(p *corev1.Pod) string {
	if p.DeletionTimestamp != nil {
		return "Terminating"
	}
	reason := string(p.Status.Phase)
	if p.Status.Reason != "" {
		reason = p.Status.Reason
	}
	running := false
	for i := len(p.Status.ContainerStatuses) - 1; i >= 0; i-- {
		cs := p.Status.ContainerStatuses[i]
		st := cs.State
		switch {
		case st.Waiting != nil && st.Waiting.Reason != "":
			reason = st.Waiting.Reason
		case st.Terminated != nil && st.Terminated.Reason != "":
			reason = st.Terminated.Reason
		case st.Terminated != nil:
			reason = fmt.Sprintf("ExitCode:%d", st.Terminated.ExitCode)
		case st.Running != nil && cs.Ready:
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
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			switch c.Status {
			case corev1.ConditionTrue:
				st = "Ready"
			case corev1.ConditionFalse:
				st = "NotReady"
			}
		}
	}
	if n.Spec.Unschedulable {
		st += ",SchedulingDisabled"
	}
	return st
}

func nodeRoles(n *corev1.Node) string {
	var roles []string
	for k := range n.Labels {
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

func namespacePhase(ns *corev1.Namespace) string {
	if ns.Status.Phase != "" {
		return string(ns.Status.Phase)
	}
	return string(corev1.NamespaceActive)
}

// intOrPercent prints a budget's count or percent, N/A when unset (kubectl's).
func intOrPercent(v *intstr.IntOrString) string {
	if v == nil {
		return "N/A"
	}
	return v.String()
}

func containerNames(s *corev1.PodSpec) string {
	var out []string
	for _, c := range s.Containers {
		out = append(out, c.Name)
	}
	return strings.Join(out, ",")
}

func containerImages(s *corev1.PodSpec) string {
	var out []string
	for _, c := range s.Containers {
		out = append(out, c.Image)
	}
	return strings.Join(out, ",")
}

// lastSeen is when an event last happened, as kubectl's LAST SEEN reads it: the series'
// last observation, else lastTimestamp, else firstTimestamp, else eventTime.
func lastSeen(e *corev1.Event) time.Time {
	switch {
	case e.Series != nil:
		return e.Series.LastObservedTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.FirstTimestamp.IsZero():
		return e.FirstTimestamp.Time
	}
	return e.EventTime.Time
}

// firstSeen is when an event first happened: eventTime, else firstTimestamp.
func firstSeen(e *corev1.Event) time.Time {
	if !e.EventTime.IsZero() {
		return e.EventTime.Time
	}
	return e.FirstTimestamp.Time
}

// count is how many times an event happened: the series' count, else count (a singleton
// event of the events.k8s.io API has none: 1).
func count(e *corev1.Event) int32 {
	switch {
	case e.Series != nil:
		return e.Series.Count
	case e.Count == 0:
		return 1
	}
	return e.Count
}

// source is who reported an event, as kubectl names it: "component, host", from the
// source or else the reporting controller and instance.
func source(e *corev1.Event) string {
	c, h := e.Source.Component, e.Source.Host
	if c == "" {
		c = e.ReportingController
	}
	if h == "" {
		h = e.ReportingInstance
	}
	if h != "" {
		return c + ", " + h
	}
	return c
}

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

// Age formats the time from t to now as kubectl does ("45s", "3m12s", "5h", "12d"):
// apimachinery's HumanDuration, and "<unknown>" for an unset time.
func Age(t, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(t))
}

// Package table holds the columns Kubernetes prints for each kind: the API server's
// Table responses (what kubectl get shows) and skiffctl's tables read the same
// definitions, so both print a kind alike. Names, types, priorities (1: -o wide only) and
// cells are Kubernetes' own (its API server's printers): kubectl prints a column's name
// upper-cased, and a cell is a string or an int64.
package table

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiffhq/skiff/kinds"
)

// Column is one column of a kind's table.
type Column struct {
	metav1.TableColumnDefinition
	// Cell is obj's value in the column at time now: a string or an int64.
	Cell func(obj kinds.Object, now time.Time) any
}

var (
	metaDoc = metav1.ObjectMeta{}.SwaggerDoc()
	nameCol = Column{metav1.TableColumnDefinition{Name: "Name", Type: "string", Format: "name", Description: metaDoc["name"]},
		func(o kinds.Object, _ time.Time) any { return o.GetName() }}
	ageCol = Column{metav1.TableColumnDefinition{Name: "Age", Type: "string", Description: metaDoc["creationTimestamp"]},
		func(o kinds.Object, now time.Time) any { return Age(o.GetCreationTimestamp().Time, now) }}
	// defaultColumns are Kubernetes' for a kind without a printer of its own.
	defaultColumns = []Column{nameCol,
		{metav1.TableColumnDefinition{Name: "Created At", Type: "date", Description: metaDoc["creationTimestamp"]},
			func(o kinds.Object, _ time.Time) any { return o.GetCreationTimestamp().UTC().Format(time.RFC3339) }}}
)

func col(name, typ string, priority int32, desc string, cell func(kinds.Object, time.Time) any) Column {
	return Column{metav1.TableColumnDefinition{Name: name, Type: typ, Priority: priority, Description: desc}, cell}
}

// typed gives a cell function its object typed (T the kind's Go type); pod,
// deployment, replicaSet and node are its most used instances.
func typed[T kinds.Object](f func(T) any) func(kinds.Object, time.Time) any {
	return func(o kinds.Object, _ time.Time) any { return f(o.(T)) }
}

var (
	pod        = typed[*corev1.Pod]
	deployment = typed[*appsv1.Deployment]
	replicaSet = typed[*appsv1.ReplicaSet]
	node       = typed[*corev1.Node]
)

func event(f func(*corev1.Event, time.Time) any) func(kinds.Object, time.Time) any {
	return func(o kinds.Object, now time.Time) any { return f(o.(*corev1.Event), now) }
}

var (
	podDoc, podSpecDoc, podStatusDoc = corev1.Pod{}.SwaggerDoc(), corev1.PodSpec{}.SwaggerDoc(), corev1.PodStatus{}.SwaggerDoc()
	deployStatusDoc, rsSpecDoc       = appsv1.DeploymentStatus{}.SwaggerDoc(), appsv1.ReplicaSetSpec{}.SwaggerDoc()
	rsStatusDoc                      = appsv1.ReplicaSetStatus{}.SwaggerDoc()
	nodeInfoDoc, nodeStatusDoc       = corev1.NodeSystemInfo{}.SwaggerDoc(), corev1.NodeStatus{}.SwaggerDoc()
	eventDoc, refDoc                 = corev1.Event{}.SwaggerDoc(), corev1.ObjectReference{}.SwaggerDoc()
	templateCols                     = func(spec func(kinds.Object) *corev1.PodSpec, selector func(kinds.Object) *metav1.LabelSelector) []Column {
		return []Column{
			col("Containers", "string", 1, "Names of each container in the template.", func(o kinds.Object, _ time.Time) any { return containerNames(spec(o)) }),
			col("Images", "string", 1, "Images referenced by each container in the template.", func(o kinds.Object, _ time.Time) any { return containerImages(spec(o)) }),
			col("Selector", "string", 1, rsSpecDoc["selector"], func(o kinds.Object, _ time.Time) any { return metav1.FormatLabelSelector(selector(o)) }),
		}
	}
)

// columns lists each kind's columns, as Kubernetes' printers define them.
var columns = map[string][]Column{
	kinds.Pod: {nameCol,
		col("Ready", "string", 0, "The aggregate readiness state of this pod for accepting traffic.", pod(func(p *corev1.Pod) any {
			s := summarize(p)
			return fmt.Sprintf("%d/%d", s.ready, s.total)
		})),
		col("Status", "string", 0, "The aggregate status of the containers in this pod.", pod(func(p *corev1.Pod) any { return PodStatus(p) })),
		{metav1.TableColumnDefinition{Name: "Restarts", Type: "string", Description: "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."},
			func(o kinds.Object, now time.Time) any {
				s := summarize(o.(*corev1.Pod))
				if s.restarts != 0 && !s.lastRestart.IsZero() {
					return fmt.Sprintf("%d (%s ago)", s.restarts, Age(s.lastRestart, now))
				}
				return strconv.Itoa(s.restarts)
			}},
		ageCol,
		col("IP", "string", 1, podStatusDoc["podIP"], pod(func(p *corev1.Pod) any { return orNone(p.Status.PodIP) })),
		col("Node", "string", 1, podSpecDoc["nodeName"], pod(func(p *corev1.Pod) any { return orNone(p.Spec.NodeName) })),
		col("Nominated Node", "string", 1, podStatusDoc["nominatedNodeName"], pod(func(p *corev1.Pod) any { return orNone(p.Status.NominatedNodeName) })),
		col("Readiness Gates", "string", 1, podSpecDoc["readinessGates"], pod(func(p *corev1.Pod) any { return readinessGates(p) })),
	},
	kinds.Deployment: append([]Column{nameCol,
		col("Ready", "string", 0, "Number of the pod with ready state", deployment(func(d *appsv1.Deployment) any {
			return fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, replicas(d.Spec.Replicas))
		})),
		col("Up-to-date", "string", 0, deployStatusDoc["updatedReplicas"], deployment(func(d *appsv1.Deployment) any { return int64(d.Status.UpdatedReplicas) })),
		col("Available", "string", 0, deployStatusDoc["availableReplicas"], deployment(func(d *appsv1.Deployment) any { return int64(d.Status.AvailableReplicas) })),
		ageCol},
		templateCols(func(o kinds.Object) *corev1.PodSpec { return &o.(*appsv1.Deployment).Spec.Template.Spec },
			func(o kinds.Object) *metav1.LabelSelector { return o.(*appsv1.Deployment).Spec.Selector })...),
	kinds.ReplicaSet: append([]Column{nameCol,
		col("Desired", "integer", 0, rsSpecDoc["replicas"], replicaSet(func(r *appsv1.ReplicaSet) any { return int64(replicas(r.Spec.Replicas)) })),
		col("Current", "integer", 0, rsStatusDoc["replicas"], replicaSet(func(r *appsv1.ReplicaSet) any { return int64(r.Status.Replicas) })),
		col("Ready", "integer", 0, rsStatusDoc["readyReplicas"], replicaSet(func(r *appsv1.ReplicaSet) any { return int64(r.Status.ReadyReplicas) })),
		ageCol},
		templateCols(func(o kinds.Object) *corev1.PodSpec { return &o.(*appsv1.ReplicaSet).Spec.Template.Spec },
			func(o kinds.Object) *metav1.LabelSelector { return o.(*appsv1.ReplicaSet).Spec.Selector })...),
	kinds.Node: {nameCol,
		col("Status", "string", 0, "The status of the node", node(func(n *corev1.Node) any { return NodeStatus(n) })),
		col("Roles", "string", 0, "The roles of the node", node(func(n *corev1.Node) any { return NodeRoles(n) })),
		ageCol,
		col("Version", "string", 0, nodeInfoDoc["kubeletVersion"], node(func(n *corev1.Node) any { return n.Status.NodeInfo.KubeletVersion })),
		col("Internal-IP", "string", 1, nodeStatusDoc["addresses"], node(func(n *corev1.Node) any { return nodeAddress(n, corev1.NodeInternalIP) })),
		col("External-IP", "string", 1, nodeStatusDoc["addresses"], node(func(n *corev1.Node) any { return nodeAddress(n, corev1.NodeExternalIP) })),
		col("OS-Image", "string", 1, nodeInfoDoc["osImage"], node(func(n *corev1.Node) any { return orUnknown(n.Status.NodeInfo.OSImage) })),
		col("Kernel-Version", "string", 1, nodeInfoDoc["kernelVersion"], node(func(n *corev1.Node) any { return orUnknown(n.Status.NodeInfo.KernelVersion) })),
		col("Container-Runtime", "string", 1, nodeInfoDoc["containerRuntimeVersion"], node(func(n *corev1.Node) any {
			return orUnknown(n.Status.NodeInfo.ContainerRuntimeVersion)
		})),
	},
	kinds.Event: {
		col("Last Seen", "string", 0, eventDoc["lastTimestamp"], event(func(e *corev1.Event, now time.Time) any { return Age(LastSeen(e), now) })),
		col("Type", "string", 0, eventDoc["type"], event(func(e *corev1.Event, _ time.Time) any { return e.Type })),
		col("Reason", "string", 0, eventDoc["reason"], event(func(e *corev1.Event, _ time.Time) any { return e.Reason })),
		col("Object", "string", 0, eventDoc["involvedObject"], event(func(e *corev1.Event, _ time.Time) any {
			return strings.ToLower(e.InvolvedObject.Kind) + "/" + e.InvolvedObject.Name
		})),
		col("Subobject", "string", 1, refDoc["fieldPath"], event(func(e *corev1.Event, _ time.Time) any { return e.InvolvedObject.FieldPath })),
		col("Source", "string", 1, eventDoc["source"], event(func(e *corev1.Event, _ time.Time) any { return EventSource(e) })),
		col("Message", "string", 0, eventDoc["message"], event(func(e *corev1.Event, _ time.Time) any { return strings.TrimSpace(e.Message) })),
		col("First Seen", "string", 1, eventDoc["firstTimestamp"], event(func(e *corev1.Event, now time.Time) any { return Age(FirstSeen(e), now) })),
		col("Count", "string", 1, eventDoc["count"], event(func(e *corev1.Event, _ time.Time) any { return int64(EventCount(e)) })),
		{metav1.TableColumnDefinition{Name: "Name", Type: "string", Format: "name", Priority: 1, Description: metaDoc["name"]},
			func(o kinds.Object, _ time.Time) any { return o.GetName() }},
	},
	kinds.ConfigMap: {nameCol,
		col("Data", "integer", 0, corev1.ConfigMap{}.SwaggerDoc()["data"], func(o kinds.Object, _ time.Time) any {
			c := o.(*corev1.ConfigMap)
			return int64(len(c.Data) + len(c.BinaryData))
		}),
		ageCol},
	kinds.Secret: {nameCol,
		col("Type", "string", 0, corev1.Secret{}.SwaggerDoc()["type"], func(o kinds.Object, _ time.Time) any {
			return string(o.(*corev1.Secret).Type)
		}),
		col("Data", "string", 0, corev1.Secret{}.SwaggerDoc()["data"], func(o kinds.Object, _ time.Time) any {
			return int64(len(o.(*corev1.Secret).Data))
		}),
		ageCol},
	kinds.ServiceAccount: {nameCol,
		col("Secrets", "string", 0, corev1.ServiceAccount{}.SwaggerDoc()["secrets"], func(o kinds.Object, _ time.Time) any {
			return int64(len(o.(*corev1.ServiceAccount).Secrets))
		}),
		ageCol},
	kinds.Lease: {nameCol,
		col("Holder", "string", 0, coordinationv1.LeaseSpec{}.SwaggerDoc()["holderIdentity"], func(o kinds.Object, _ time.Time) any {
			if h := o.(*coordinationv1.Lease).Spec.HolderIdentity; h != nil {
				return *h
			}
			return ""
		}),
		ageCol},
	kinds.PodDisruptionBudget: {nameCol,
		col("Min Available", "string", 0, "The minimum number of pods that must be available", func(o kinds.Object, _ time.Time) any {
			return intOrPercent(o.(*policyv1.PodDisruptionBudget).Spec.MinAvailable)
		}),
		col("Max Unavailable", "string", 0, "The maximum number of pods that may be unavailable", func(o kinds.Object, _ time.Time) any {
			return intOrPercent(o.(*policyv1.PodDisruptionBudget).Spec.MaxUnavailable)
		}),
		col("Allowed Disruptions", "integer", 0, "Calculated number of pods that may be disrupted at this time", func(o kinds.Object, _ time.Time) any {
			return int64(o.(*policyv1.PodDisruptionBudget).Status.DisruptionsAllowed)
		}),
		ageCol},
	kinds.Namespace: {nameCol,
		col("Status", "string", 0, "The status of the namespace", func(o kinds.Object, _ time.Time) any { return NamespacePhase(o.(*corev1.Namespace)) }),
		ageCol},
}

// Columns returns a kind's columns, wide ones (priority 1) included.
func Columns(info *kinds.Info) []Column {
	if info.Custom != nil {
		return customColumns(info)
	}
	if cols, ok := columns[info.Kind]; ok {
		return cols
	}
	return defaultColumns
}

// Definitions are the column definitions of cols.
func Definitions(cols []Column) []metav1.TableColumnDefinition {
	out := make([]metav1.TableColumnDefinition, len(cols))
	for i, c := range cols {
		out[i] = c.TableColumnDefinition
	}
	return out
}

// Cells is obj's row.
func Cells(cols []Column, obj kinds.Object, now time.Time) []any {
	out := make([]any, len(cols))
	for i, c := range cols {
		out[i] = c.Cell(obj, now)
	}
	return out
}

// PodStatus is the Status column of a pod, computed as Kubernetes' printer does:
// Terminating while being deleted; while its init containers run, Init:N/M or the
// failing one's reason (Init:CrashLoopBackOff); else the last app container's waiting or
// terminated reason that says one, or the phase.
func PodStatus(p *corev1.Pod) string { return summarize(p).status }

// podSummary is what Kubernetes' pod printer (printPod) makes of a pod's containers: the
// Ready, Status and Restarts columns. Sidecars (init containers with restartPolicy
// Always) count as containers once they have started.
type podSummary struct {
	ready, total int
	status       string
	restarts     int
	lastRestart  time.Time
}

func summarize(p *corev1.Pod) podSummary {
	s := podSummary{total: len(p.Spec.Containers), status: string(p.Status.Phase)}
	if p.Status.Reason != "" {
		s.status = p.Status.Reason
	}
	sidecars := map[string]bool{}
	for i := range p.Spec.InitContainers {
		if c := &p.Spec.InitContainers[i]; c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			sidecars[c.Name] = true
			s.total++
		}
	}
	lastExit := func(cs *corev1.ContainerStatus, last *time.Time) {
		if t := cs.LastTerminationState.Terminated; t != nil && t.FinishedAt.After(*last) {
			*last = t.FinishedAt.Time
		}
	}
	sidecarRestarts, sidecarLast := 0, time.Time{}
	initializing := false
	for i := range p.Status.InitContainerStatuses {
		cs := &p.Status.InitContainerStatuses[i]
		s.restarts += int(cs.RestartCount)
		lastExit(cs, &s.lastRestart)
		if sidecars[cs.Name] {
			sidecarRestarts += int(cs.RestartCount)
			lastExit(cs, &sidecarLast)
		}
		st := cs.State
		switch {
		case st.Terminated != nil && st.Terminated.ExitCode == 0:
			continue
		case sidecars[cs.Name] && cs.Started != nil && *cs.Started:
			if cs.Ready {
				s.ready++
			}
			continue
		case st.Terminated != nil && st.Terminated.Reason == "":
			s.status = fmt.Sprintf("Init:ExitCode:%d", st.Terminated.ExitCode)
		case st.Terminated != nil:
			s.status = "Init:" + st.Terminated.Reason
		case st.Waiting != nil && st.Waiting.Reason != "" && st.Waiting.Reason != "PodInitializing":
			s.status = "Init:" + st.Waiting.Reason
		default:
			s.status = fmt.Sprintf("Init:%d/%d", i, len(p.Spec.InitContainers))
		}
		initializing = true
		break
	}
	if !initializing || hasCondition(p, corev1.PodInitialized) {
		s.restarts, s.lastRestart = sidecarRestarts, sidecarLast
		running, failed := false, ""
		for i := len(p.Status.ContainerStatuses) - 1; i >= 0; i-- {
			cs := &p.Status.ContainerStatuses[i]
			s.restarts += int(cs.RestartCount)
			lastExit(cs, &s.lastRestart)
			switch st := cs.State; {
			case st.Waiting != nil && st.Waiting.Reason != "":
				s.status = st.Waiting.Reason
			case st.Terminated != nil:
				s.status = st.Terminated.Reason
				if s.status == "" {
					s.status = fmt.Sprintf("ExitCode:%d", st.Terminated.ExitCode)
				}
				if st.Terminated.ExitCode != 0 {
					failed = s.status
				}
			case cs.Ready && st.Running != nil:
				running = true
				s.ready++
			}
		}
		// Completed, but a container still runs: the pod is Running.
		if s.status == "Completed" {
			switch {
			case running && hasCondition(p, corev1.PodReady):
				s.status = "Running"
			case failed != "":
				s.status = failed
			case running:
				s.status = "NotReady"
			}
		}
	}
	if p.DeletionTimestamp != nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
		s.status = "Terminating"
	}
	if s.status == "" {
		s.status = "Pending"
	}
	return s
}

// hasCondition reports whether the pod's condition typ is True.
func hasCondition(p *corev1.Pod, typ corev1.PodConditionType) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == typ {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func readinessGates(p *corev1.Pod) string {
	if len(p.Spec.ReadinessGates) == 0 {
		return "<none>"
	}
	ready := 0
	for _, g := range p.Spec.ReadinessGates {
		for _, c := range p.Status.Conditions {
			if c.Type == g.ConditionType && c.Status == corev1.ConditionTrue {
				ready++
			}
		}
	}
	return fmt.Sprintf("%d/%d", ready, len(p.Spec.ReadinessGates))
}

// NamespacePhase is the Status column of a namespace.
func NamespacePhase(ns *corev1.Namespace) string {
	if ns.Status.Phase != "" {
		return string(ns.Status.Phase)
	}
	return string(corev1.NamespaceActive)
}

// NodeStatus is the Status column of a node: Ready, NotReady or Unknown, and
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

// NodeRoles is the Roles column of a node: its node-role.kubernetes.io/ labels.
func NodeRoles(n *corev1.Node) string {
	var roles []string
	for k, v := range n.Labels {
		switch {
		case strings.HasPrefix(k, "node-role.kubernetes.io/"):
			if r := strings.TrimPrefix(k, "node-role.kubernetes.io/"); r != "" {
				roles = append(roles, r)
			}
		case k == "kubernetes.io/role" && v != "":
			roles = append(roles, v)
		}
	}
	if len(roles) == 0 {
		return "<none>"
	}
	sort.Strings(roles)
	return strings.Join(roles, ",")
}

func nodeAddress(n *corev1.Node, typ corev1.NodeAddressType) string {
	for _, a := range n.Status.Addresses {
		if a.Type == typ {
			return a.Address
		}
	}
	return "<none>"
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

// LastSeen is when an event last happened, as kubectl's LAST SEEN reads it: the series'
// last observation, else lastTimestamp, else firstTimestamp, else eventTime.
func LastSeen(e *corev1.Event) time.Time {
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

// FirstSeen is when an event first happened: eventTime, else firstTimestamp.
func FirstSeen(e *corev1.Event) time.Time {
	if !e.EventTime.IsZero() {
		return e.EventTime.Time
	}
	return e.FirstTimestamp.Time
}

// EventCount is how many times an event happened: the series' count, else count (a
// singleton event of the events.k8s.io API has none: 1).
func EventCount(e *corev1.Event) int32 {
	switch {
	case e.Series != nil:
		return e.Series.Count
	case e.Count == 0:
		return 1
	}
	return e.Count
}

// EventSource is who reported an event, as kubectl names it: "component, host", from the
// source or else the reporting controller and instance.
func EventSource(e *corev1.Event) string {
	c, h := e.Source.Component, e.Source.Host
	if c == "" {
		c = e.ReportingController
	}
	if h == "" {
		h = e.ReportingInstance
	}
	switch {
	case c != "" && h != "":
		return c + ", " + h
	case c != "":
		return c
	}
	return h
}

func replicas(n *int32) int32 {
	if n == nil {
		return 0
	}
	return *n
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

// intOrPercent prints a budget's count or percent, N/A when unset (kubectl's).
func intOrPercent(v *intstr.IntOrString) string {
	if v == nil {
		return "N/A"
	}
	return v.String()
}

func orUnknown(s string) string {
	if s == "" {
		return "<unknown>"
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

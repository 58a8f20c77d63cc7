package printers

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	corev1 "github.com/skiffhq/skiff/proto/core/v1"
	"github.com/skiffhq/skiff/proto/kinds"
)

// describer writes "Key:  value" lines at indentation levels, aligned per block.
type describer struct {
	tw  *tabwriter.Writer
	now time.Time
}

func (d *describer) line(level int, key string, value any) {
	indent := strings.Repeat("  ", level)
	if key == "" {
		fmt.Fprintf(d.tw, "%s%v\n", indent, value)
		return
	}
	fmt.Fprintf(d.tw, "%s%s:\t%v\n", indent, key, value)
}

func (d *describer) section(level int, key string) {
	fmt.Fprintf(d.tw, "%s%s:\n", strings.Repeat("  ", level), key)
}

func (d *describer) mapping(level int, key string, m map[string]string) {
	if len(m) == 0 {
		d.line(level, key, "<none>")
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		name := ""
		if i == 0 {
			name = key
		}
		if name == "" {
			fmt.Fprintf(d.tw, "%s\t%s=%s\n", strings.Repeat("  ", level), k, m[k])
		} else {
			fmt.Fprintf(d.tw, "%s%s:\t%s=%s\n", strings.Repeat("  ", level), name, k, m[k])
		}
	}
}

func (d *describer) stamp(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "<unset>"
	}
	return ts.AsTime().In(d.now.Location()).Format(time.RFC1123Z)
}

// Describe writes a kubectl-style description of obj followed by its events (newest
// last).
func Describe(w io.Writer, obj kinds.Object, events []*corev1.Event, now time.Time) error {
	if now.IsZero() {
		now = time.Now()
	}
	d := &describer{tw: tabwriter.NewWriter(w, 0, 8, 2, ' ', 0), now: now}
	md := kinds.Meta(obj)
	info := kinds.Of(obj)
	d.line(0, "Name", md.GetName())
	if info.Namespaced {
		d.line(0, "Namespace", md.GetNamespace())
	}
	d.mapping(0, "Labels", md.GetLabels())
	d.mapping(0, "Annotations", md.GetAnnotations())
	d.line(0, "CreationTimestamp", d.stamp(md.GetCreationTimestamp()))
	d.line(0, "UID", md.GetUid())
	d.line(0, "ResourceVersion", md.GetResourceVersion())
	if ts := md.GetDeletionTimestamp(); ts != nil {
		d.line(0, "DeletionTimestamp", d.stamp(ts))
	}
	if len(md.GetFinalizers()) > 0 {
		d.line(0, "Finalizers", "["+strings.Join(md.GetFinalizers(), " ")+"]")
	}
	for _, ref := range md.GetOwnerReferences() {
		if ref.GetController() {
			d.line(0, "Controlled By", ref.GetKind()+"/"+ref.GetName())
		}
	}
	switch o := obj.(type) {
	case *corev1.Pod:
		describePod(d, o)
	case *corev1.Deployment:
		describeDeployment(d, o)
	case *corev1.ReplicaSet:
		describeReplicaSet(d, o)
	case *corev1.Node:
		describeNode(d, o)
	case *corev1.ConfigMap:
		d.section(0, "Data")
		keys := make([]string, 0, len(o.GetData()))
		for k := range o.GetData() {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			d.line(0, "", k+":")
			d.line(0, "", "----")
			d.line(0, "", o.GetData()[k])
		}
	case *corev1.Lease:
		d.line(0, "Holder Identity", o.GetSpec().GetHolderIdentity())
		d.line(0, "Lease Duration", fmt.Sprintf("%ds", o.GetSpec().GetLeaseDurationSeconds()))
		d.line(0, "Acquire Time", d.stamp(o.GetSpec().GetAcquireTime()))
		d.line(0, "Renew Time", d.stamp(o.GetSpec().GetRenewTime()))
		d.line(0, "Transitions", o.GetSpec().GetLeaseTransitions())
	case *corev1.Namespace:
		phase := o.GetStatus().GetPhase()
		if phase == "" {
			phase = "Active"
		}
		d.line(0, "Status", phase)
	case *corev1.Event:
		ref := o.GetInvolvedObject()
		d.line(0, "Involved Object", fmt.Sprintf("%s/%s", ref.GetKind(), ref.GetName()))
		d.line(0, "Type", o.GetType())
		d.line(0, "Reason", o.GetReason())
		d.line(0, "Message", o.GetMessage())
		d.line(0, "Source", strings.TrimSuffix(o.GetSource().GetComponent()+", "+o.GetSource().GetHost(), ", "))
		d.line(0, "Count", o.GetCount())
		d.line(0, "First Seen", d.stamp(o.GetFirstTimestamp()))
		d.line(0, "Last Seen", d.stamp(o.GetLastTimestamp()))
	}
	if info.Kind != kinds.Event {
		describeEvents(d, events)
	}
	return d.tw.Flush()
}

func describePod(d *describer, p *corev1.Pod) {
	d.line(0, "Node", orNone(p.GetSpec().GetNodeName()))
	if st := p.GetStatus().GetStartTime(); st != nil {
		d.line(0, "Start Time", d.stamp(st))
	}
	d.line(0, "Status", PodStatus(p))
	if r := p.GetStatus().GetReason(); r != "" {
		d.line(0, "Reason", r)
	}
	if m := p.GetStatus().GetMessage(); m != "" {
		d.line(0, "Message", m)
	}
	d.line(0, "IP", orNone(p.GetStatus().GetPodIp()))
	statuses := map[string]*corev1.ContainerStatus{}
	for _, cs := range p.GetStatus().GetContainerStatuses() {
		statuses[cs.GetName()] = cs
	}
	d.section(0, "Containers")
	for _, c := range p.GetSpec().GetContainers() {
		d.section(1, c.GetName())
		cs := statuses[c.GetName()]
		if id := cs.GetContainerId(); id != "" {
			d.line(2, "Container ID", id)
		}
		d.line(2, "Image", c.GetImage())
		if id := cs.GetImageId(); id != "" {
			d.line(2, "Image ID", id)
		}
		for _, port := range c.GetPorts() {
			d.line(2, "Port", fmt.Sprintf("%d/%s", port.GetContainerPort(), port.GetProtocol()))
		}
		if len(c.GetCommand()) > 0 {
			d.line(2, "Command", strings.Join(c.GetCommand(), " "))
		}
		if len(c.GetArgs()) > 0 {
			d.line(2, "Args", strings.Join(c.GetArgs(), " "))
		}
		if cs != nil {
			describeState(d, "State", cs.GetState())
			if ls := cs.GetLastState(); ls.GetTerminated() != nil {
				describeState(d, "Last State", ls)
			}
			d.line(2, "Ready", cs.GetReady())
			d.line(2, "Restart Count", cs.GetRestartCount())
		}
		if lim := c.GetResources().GetLimits(); len(lim) > 0 {
			d.section(2, "Limits")
			for _, k := range sortedKeys(lim) {
				d.line(3, k, lim[k])
			}
		}
		if req := c.GetResources().GetRequests(); len(req) > 0 {
			d.section(2, "Requests")
			for _, k := range sortedKeys(req) {
				d.line(3, k, req[k])
			}
		}
		if len(c.GetEnv()) > 0 {
			d.section(2, "Environment")
			for _, e := range c.GetEnv() {
				d.line(3, e.GetName(), e.GetValue())
			}
		}
	}
	if conds := p.GetStatus().GetConditions(); len(conds) > 0 {
		d.section(0, "Conditions")
		d.line(1, "Type", "Status")
		for _, c := range conds {
			d.line(1, c.GetType(), c.GetStatus())
		}
	}
	d.mapping(0, "Node-Selectors", p.GetSpec().GetNodeSelector())
	var tols []string
	for _, t := range p.GetSpec().GetTolerations() {
		s := t.GetKey()
		if t.GetOperator() == "Equal" || t.GetValue() != "" {
			s += "=" + t.GetValue()
		}
		if t.GetEffect() != "" {
			s += ":" + t.GetEffect()
		}
		if t.TolerationSeconds != nil {
			s += fmt.Sprintf(" for %ds", t.GetTolerationSeconds())
		}
		tols = append(tols, s)
	}
	if len(tols) == 0 {
		tols = []string{"<none>"}
	}
	d.line(0, "Tolerations", strings.Join(tols, ", "))
}

func describeState(d *describer, key string, st *corev1.ContainerState) {
	switch {
	case st.GetRunning() != nil:
		d.line(2, key, "Running")
		d.line(3, "Started", d.stamp(st.GetRunning().GetStartedAt()))
	case st.GetTerminated() != nil:
		t := st.GetTerminated()
		d.line(2, key, "Terminated")
		d.line(3, "Reason", t.GetReason())
		d.line(3, "Exit Code", t.GetExitCode())
		d.line(3, "Started", d.stamp(t.GetStartedAt()))
		d.line(3, "Finished", d.stamp(t.GetFinishedAt()))
	case st.GetWaiting() != nil:
		d.line(2, key, "Waiting")
		d.line(3, "Reason", st.GetWaiting().GetReason())
		if m := st.GetWaiting().GetMessage(); m != "" {
			d.line(3, "Message", m)
		}
	default:
		d.line(2, key, "<unknown>")
	}
}

func describeTemplate(d *describer, t *corev1.PodTemplateSpec) {
	d.section(0, "Pod Template")
	d.mapping(1, "Labels", t.GetMetadata().GetLabels())
	d.section(1, "Containers")
	for _, c := range t.GetSpec().GetContainers() {
		d.section(2, c.GetName())
		d.line(3, "Image", c.GetImage())
		if len(c.GetCommand()) > 0 {
			d.line(3, "Command", strings.Join(c.GetCommand(), " "))
		}
	}
}

func describeDeployment(d *describer, dep *corev1.Deployment) {
	s, st := dep.GetSpec(), dep.GetStatus()
	d.line(0, "Selector", Selector(s.GetSelector()))
	d.line(0, "Replicas", fmt.Sprintf("%d desired | %d updated | %d total | %d available | %d unavailable",
		s.GetReplicas(), st.GetUpdatedReplicas(), st.GetReplicas(), st.GetAvailableReplicas(), st.GetUnavailableReplicas()))
	d.line(0, "StrategyType", s.GetStrategy().GetType())
	d.line(0, "MinReadySeconds", s.GetMinReadySeconds())
	if ru := s.GetStrategy().GetRollingUpdate(); ru != nil {
		d.line(0, "RollingUpdateStrategy", fmt.Sprintf("%s max unavailable, %s max surge", IntOrString(ru.GetMaxUnavailable()), IntOrString(ru.GetMaxSurge())))
	}
	if s.GetPaused() {
		d.line(0, "Paused", "true")
	}
	describeTemplate(d, s.GetTemplate())
	if len(st.GetConditions()) > 0 {
		d.section(0, "Conditions")
		d.line(1, "Type", "Status\tReason")
		for _, c := range st.GetConditions() {
			d.line(1, c.GetType(), c.GetStatus()+"\t"+c.GetReason())
		}
	}
}

func describeReplicaSet(d *describer, rs *corev1.ReplicaSet) {
	d.line(0, "Selector", Selector(rs.GetSpec().GetSelector()))
	d.line(0, "Replicas", fmt.Sprintf("%d current / %d desired", rs.GetStatus().GetReplicas(), rs.GetSpec().GetReplicas()))
	d.line(0, "Pods Status", fmt.Sprintf("%d Ready / %d Available", rs.GetStatus().GetReadyReplicas(), rs.GetStatus().GetAvailableReplicas()))
	describeTemplate(d, rs.GetSpec().GetTemplate())
}

func describeNode(d *describer, n *corev1.Node) {
	d.line(0, "Roles", nodeRoles(n))
	d.line(0, "Unschedulable", n.GetSpec().GetUnschedulable())
	var taints []string
	for _, t := range n.GetSpec().GetTaints() {
		s := t.GetKey()
		if t.GetValue() != "" {
			s += "=" + t.GetValue()
		}
		taints = append(taints, s+":"+t.GetEffect())
	}
	if len(taints) == 0 {
		taints = []string{"<none>"}
	}
	d.line(0, "Taints", strings.Join(taints, ", "))
	d.section(0, "Conditions")
	d.line(1, "Type", "Status\tLastHeartbeatTime\tReason\tMessage")
	for _, c := range n.GetStatus().GetConditions() {
		d.line(1, c.GetType(), strings.Join([]string{c.GetStatus(), d.stamp(c.GetLastHeartbeatTime()), c.GetReason(), c.GetMessage()}, "\t"))
	}
	d.section(0, "Addresses")
	for _, a := range n.GetStatus().GetAddresses() {
		d.line(1, a.GetType(), a.GetAddress())
	}
	for _, sec := range []struct {
		name string
		m    map[string]string
	}{{"Capacity", n.GetStatus().GetCapacity()}, {"Allocatable", n.GetStatus().GetAllocatable()}} {
		d.section(0, sec.name)
		for _, k := range sortedKeys(sec.m) {
			d.line(1, k, sec.m[k])
		}
	}
	if ni := n.GetStatus().GetNodeInfo(); ni != nil {
		d.section(0, "System Info")
		d.line(1, "Kernel Version", ni.GetKernelVersion())
		d.line(1, "OS Image", ni.GetOsImage())
		d.line(1, "Operating System", ni.GetOperatingSystem())
		d.line(1, "Architecture", ni.GetArchitecture())
		d.line(1, "Container Runtime Version", ni.GetContainerRuntimeVersion())
		d.line(1, "Kubelet Version", ni.GetKubeletVersion())
	}
}

func describeEvents(d *describer, events []*corev1.Event) {
	if len(events) == 0 {
		d.line(0, "Events", "<none>")
		return
	}
	sort.SliceStable(events, func(i, j int) bool {
		return events[i].GetLastTimestamp().AsTime().Before(events[j].GetLastTimestamp().AsTime())
	})
	d.section(0, "Events")
	d.line(1, "", "Type\tReason\tAge\tFrom\tMessage")
	d.line(1, "", "----\t------\t----\t----\t-------")
	for _, e := range events {
		a := Age(e.GetLastTimestamp(), d.now)
		if e.GetCount() > 1 {
			a = fmt.Sprintf("%s (x%d over %s)", a, e.GetCount(), Age(e.GetFirstTimestamp(), d.now))
		}
		from := e.GetSource().GetComponent()
		if h := e.GetSource().GetHost(); h != "" {
			from += ", " + h
		}
		d.line(1, "", strings.Join([]string{e.GetType(), e.GetReason(), a, from, e.GetMessage()}, "\t"))
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

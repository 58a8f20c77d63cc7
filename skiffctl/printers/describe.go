package printers

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/kinds/table"
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
	for i, k := range sortedKeys(m) {
		if i == 0 {
			fmt.Fprintf(d.tw, "%s%s:\t%s=%s\n", strings.Repeat("  ", level), key, k, m[k])
		} else {
			fmt.Fprintf(d.tw, "%s\t%s=%s\n", strings.Repeat("  ", level), k, m[k])
		}
	}
}

// resources writes a resource list (capacity, limits) one quantity a line.
func (d *describer) resources(level int, key string, rl corev1.ResourceList) {
	d.section(level, key)
	for _, k := range sortedKeys(rl) {
		q := rl[k]
		d.line(level+1, string(k), q.String())
	}
}

// stamp formats a time as kubectl's describe does (RFC 1123 with a numeric zone).
func (d *describer) stamp(t time.Time) string {
	if t.IsZero() {
		return "<unset>"
	}
	return t.In(d.now.Location()).Format(time.RFC1123Z)
}

// Describe writes a kubectl-style description of obj followed by its events (newest
// last).
func Describe(w io.Writer, obj kinds.Object, events []*corev1.Event, now time.Time) error {
	if now.IsZero() {
		now = time.Now()
	}
	d := &describer{tw: tabwriter.NewWriter(w, 0, 8, 2, ' ', 0), now: now}
	info := kinds.Of(obj)
	d.line(0, "Name", obj.GetName())
	if info.Namespaced {
		d.line(0, "Namespace", obj.GetNamespace())
	}
	d.mapping(0, "Labels", obj.GetLabels())
	d.mapping(0, "Annotations", describedAnnotations(obj.GetAnnotations()))
	d.line(0, "CreationTimestamp", d.stamp(obj.GetCreationTimestamp().Time))
	d.line(0, "UID", obj.GetUID())
	d.line(0, "ResourceVersion", obj.GetResourceVersion())
	if ts := obj.GetDeletionTimestamp(); ts != nil {
		d.line(0, "DeletionTimestamp", d.stamp(ts.Time))
	}
	if len(obj.GetFinalizers()) > 0 {
		d.line(0, "Finalizers", "["+strings.Join(obj.GetFinalizers(), " ")+"]")
	}
	if ref := metav1.GetControllerOfNoCopy(obj); ref != nil {
		d.line(0, "Controlled By", ref.Kind+"/"+ref.Name)
	}
	switch o := obj.(type) {
	case *corev1.Pod:
		describePod(d, o)
	case *appsv1.Deployment:
		describeDeployment(d, o)
	case *appsv1.ReplicaSet:
		describeReplicaSet(d, o)
	case *corev1.Node:
		describeNode(d, o)
	case *corev1.ConfigMap:
		d.section(0, "Data")
		for _, k := range sortedKeys(o.Data) {
			d.line(0, "", k+":")
			d.line(0, "", "----")
			d.line(0, "", o.Data[k])
		}
	case *corev1.Secret:
		describeSecret(d, o)
	case *corev1.ServiceAccount:
		describeServiceAccount(d, o)
	case *coordinationv1.Lease:
		s := o.Spec
		d.line(0, "Holder Identity", deref(s.HolderIdentity))
		d.line(0, "Lease Duration", fmt.Sprintf("%ds", deref(s.LeaseDurationSeconds)))
		d.line(0, "Acquire Time", d.stamp(microTime(s.AcquireTime)))
		d.line(0, "Renew Time", d.stamp(microTime(s.RenewTime)))
		d.line(0, "Transitions", deref(s.LeaseTransitions))
	case *corev1.Namespace:
		describeNamespace(d, o)
	case *policyv1.PodDisruptionBudget:
		describePodDisruptionBudget(d, o)
	case *corev1.Service:
		describeService(d, o)
	case *batchv1.Job:
		describeJob(d, o)
	case *batchv1.CronJob:
		describeCronJob(d, o)
	case *corev1.ResourceQuota:
		describeResourceQuota(d, o)
	case *corev1.LimitRange:
		describeLimitRange(d, o)
	case *corev1.Endpoints:
		describeEndpoints(d, o)
	case *corev1.Event:
		ref := o.InvolvedObject
		d.line(0, "Involved Object", fmt.Sprintf("%s/%s", ref.Kind, ref.Name))
		d.line(0, "Type", o.Type)
		d.line(0, "Reason", o.Reason)
		d.line(0, "Message", o.Message)
		d.line(0, "Source", table.EventSource(o))
		d.line(0, "Count", table.EventCount(o))
		d.line(0, "First Seen", d.stamp(table.FirstSeen(o)))
		d.line(0, "Last Seen", d.stamp(table.LastSeen(o)))
	}
	if info.Kind != kinds.Event {
		describeEvents(d, events)
	}
	return d.tw.Flush()
}

// describedAnnotations are the annotations describe shows: all but the configuration
// apply keeps, as kubectl's describe leaves it out (it repeats the object, and a
// Secret's values with it).
func describedAnnotations(a map[string]string) map[string]string {
	if _, ok := a[corev1.LastAppliedConfigAnnotation]; !ok {
		return a
	}
	out := make(map[string]string, len(a))
	for k, v := range a {
		if k != corev1.LastAppliedConfigAnnotation {
			out[k] = v
		}
	}
	return out
}

func microTime(t *metav1.MicroTime) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.Time
}

func describePod(d *describer, p *corev1.Pod) {
	d.line(0, "Node", orNone(p.Spec.NodeName))
	if st := p.Status.StartTime; st != nil {
		d.line(0, "Start Time", d.stamp(st.Time))
	}
	d.line(0, "Status", PodStatus(p))
	if r := p.Status.Reason; r != "" {
		d.line(0, "Reason", r)
	}
	if m := p.Status.Message; m != "" {
		d.line(0, "Message", m)
	}
	d.line(0, "IP", orNone(p.Status.PodIP))
	statuses := map[string]*corev1.ContainerStatus{}
	for i := range p.Status.ContainerStatuses {
		cs := &p.Status.ContainerStatuses[i]
		statuses[cs.Name] = cs
	}
	d.section(0, "Containers")
	for _, c := range p.Spec.Containers {
		d.section(1, c.Name)
		cs := statuses[c.Name]
		if cs != nil && cs.ContainerID != "" {
			d.line(2, "Container ID", cs.ContainerID)
		}
		d.line(2, "Image", c.Image)
		if cs != nil && cs.ImageID != "" {
			d.line(2, "Image ID", cs.ImageID)
		}
		for _, port := range c.Ports {
			d.line(2, "Port", fmt.Sprintf("%d/%s", port.ContainerPort, port.Protocol))
		}
		if len(c.Command) > 0 {
			d.line(2, "Command", strings.Join(c.Command, " "))
		}
		if len(c.Args) > 0 {
			d.line(2, "Args", strings.Join(c.Args, " "))
		}
		if cs != nil {
			describeState(d, "State", cs.State)
			if cs.LastTerminationState.Terminated != nil {
				describeState(d, "Last State", cs.LastTerminationState)
			}
			d.line(2, "Ready", cs.Ready)
			d.line(2, "Restart Count", cs.RestartCount)
		}
		if lim := c.Resources.Limits; len(lim) > 0 {
			d.resources(2, "Limits", lim)
		}
		if req := c.Resources.Requests; len(req) > 0 {
			d.resources(2, "Requests", req)
		}
		if len(c.Env) > 0 {
			d.section(2, "Environment")
			for _, e := range c.Env {
				d.line(3, e.Name, e.Value)
			}
		}
	}
	if conds := p.Status.Conditions; len(conds) > 0 {
		d.section(0, "Conditions")
		d.line(1, "Type", "Status")
		for _, c := range conds {
			d.line(1, string(c.Type), c.Status)
		}
	}
	d.mapping(0, "Node-Selectors", p.Spec.NodeSelector)
	var tols []string
	for _, t := range p.Spec.Tolerations {
		s := t.Key
		if t.Operator == corev1.TolerationOpEqual || t.Value != "" {
			s += "=" + t.Value
		}
		if t.Effect != "" {
			s += ":" + string(t.Effect)
		}
		if t.TolerationSeconds != nil {
			s += fmt.Sprintf(" for %ds", *t.TolerationSeconds)
		}
		tols = append(tols, s)
	}
	if len(tols) == 0 {
		tols = []string{"<none>"}
	}
	d.line(0, "Tolerations", strings.Join(tols, ", "))
}

func describeState(d *describer, key string, st corev1.ContainerState) {
	switch {
	case st.Running != nil:
		d.line(2, key, "Running")
		d.line(3, "Started", d.stamp(st.Running.StartedAt.Time))
	case st.Terminated != nil:
		t := st.Terminated
		d.line(2, key, "Terminated")
		d.line(3, "Reason", t.Reason)
		d.line(3, "Exit Code", t.ExitCode)
		d.line(3, "Started", d.stamp(t.StartedAt.Time))
		d.line(3, "Finished", d.stamp(t.FinishedAt.Time))
	case st.Waiting != nil:
		d.line(2, key, "Waiting")
		d.line(3, "Reason", st.Waiting.Reason)
		if m := st.Waiting.Message; m != "" {
			d.line(3, "Message", m)
		}
	default:
		d.line(2, key, "<unknown>")
	}
}

// describeSecret shows a Secret's type and each key's size, as kubectl does: never a
// value.
func describeSecret(d *describer, s *corev1.Secret) {
	d.line(0, "", "")
	d.line(0, "Type", s.Type)
	d.line(0, "", "")
	d.line(0, "", "Data")
	d.line(0, "", "====")
	for _, k := range sortedKeys(s.Data) {
		d.line(0, k, fmt.Sprintf("%d bytes", len(s.Data[k])))
	}
	d.line(0, "", "")
}

func describeServiceAccount(d *describer, sa *corev1.ServiceAccount) {
	names := func(refs []string) string {
		if len(refs) == 0 {
			return "<none>"
		}
		return strings.Join(refs, ", ")
	}
	var pull, mountable []string
	for _, r := range sa.ImagePullSecrets {
		pull = append(pull, r.Name)
	}
	for _, r := range sa.Secrets {
		mountable = append(mountable, r.Name)
	}
	d.line(0, "Image pull secrets", names(pull))
	d.line(0, "Mountable secrets", names(mountable))
	d.line(0, "Tokens", "<none>")
}

func describeTemplate(d *describer, t *corev1.PodTemplateSpec) {
	d.section(0, "Pod Template")
	d.mapping(1, "Labels", t.Labels)
	d.section(1, "Containers")
	for _, c := range t.Spec.Containers {
		d.section(2, c.Name)
		d.line(3, "Image", c.Image)
		if len(c.Command) > 0 {
			d.line(3, "Command", strings.Join(c.Command, " "))
		}
	}
}

func describeDeployment(d *describer, dep *appsv1.Deployment) {
	s, st := &dep.Spec, &dep.Status
	d.line(0, "Selector", metav1.FormatLabelSelector(s.Selector))
	d.line(0, "Replicas", fmt.Sprintf("%d desired | %d updated | %d total | %d available | %d unavailable",
		replicas(s.Replicas), st.UpdatedReplicas, st.Replicas, st.AvailableReplicas, st.UnavailableReplicas))
	d.line(0, "StrategyType", s.Strategy.Type)
	d.line(0, "MinReadySeconds", s.MinReadySeconds)
	if ru := s.Strategy.RollingUpdate; ru != nil {
		d.line(0, "RollingUpdateStrategy", fmt.Sprintf("%s max unavailable, %s max surge", ru.MaxUnavailable.String(), ru.MaxSurge.String()))
	}
	if s.Paused {
		d.line(0, "Paused", "true")
	}
	describeTemplate(d, &s.Template)
	if len(st.Conditions) > 0 {
		d.section(0, "Conditions")
		d.line(1, "Type", "Status\tReason")
		for _, c := range st.Conditions {
			d.line(1, string(c.Type), string(c.Status)+"\t"+c.Reason)
		}
	}
}

func describeReplicaSet(d *describer, rs *appsv1.ReplicaSet) {
	d.line(0, "Selector", metav1.FormatLabelSelector(rs.Spec.Selector))
	d.line(0, "Replicas", fmt.Sprintf("%d current / %d desired", rs.Status.Replicas, replicas(rs.Spec.Replicas)))
	d.line(0, "Pods Status", fmt.Sprintf("%d Ready / %d Available", rs.Status.ReadyReplicas, rs.Status.AvailableReplicas))
	describeTemplate(d, &rs.Spec.Template)
}

func describeNode(d *describer, n *corev1.Node) {
	d.line(0, "Roles", table.NodeRoles(n))
	d.line(0, "Unschedulable", n.Spec.Unschedulable)
	var taints []string
	for _, t := range n.Spec.Taints {
		s := t.Key
		if t.Value != "" {
			s += "=" + t.Value
		}
		taints = append(taints, s+":"+string(t.Effect))
	}
	if len(taints) == 0 {
		taints = []string{"<none>"}
	}
	d.line(0, "Taints", strings.Join(taints, ", "))
	d.section(0, "Conditions")
	d.line(1, "Type", "Status\tLastHeartbeatTime\tReason\tMessage")
	for _, c := range n.Status.Conditions {
		d.line(1, string(c.Type), strings.Join([]string{string(c.Status), d.stamp(c.LastHeartbeatTime.Time), c.Reason, c.Message}, "\t"))
	}
	d.section(0, "Addresses")
	for _, a := range n.Status.Addresses {
		d.line(1, string(a.Type), a.Address)
	}
	d.resources(0, "Capacity", n.Status.Capacity)
	d.resources(0, "Allocatable", n.Status.Allocatable)
	if ni := n.Status.NodeInfo; ni != (corev1.NodeSystemInfo{}) {
		d.section(0, "System Info")
		d.line(1, "Kernel Version", ni.KernelVersion)
		d.line(1, "OS Image", ni.OSImage)
		d.line(1, "Operating System", ni.OperatingSystem)
		d.line(1, "Architecture", ni.Architecture)
		d.line(1, "Container Runtime Version", ni.ContainerRuntimeVersion)
		d.line(1, "Kubelet Version", ni.KubeletVersion)
	}
}

// describeNamespace is kubectl's: the phase, and the conditions that say what holds a
// terminating namespace.
func describeNamespace(d *describer, ns *corev1.Namespace) {
	d.line(0, "Status", table.NamespacePhase(ns))
	if len(ns.Status.Conditions) == 0 {
		return
	}
	d.section(0, "Conditions")
	d.line(1, "", "Type\tStatus\tLastTransitionTime\tReason\tMessage")
	d.line(1, "", "----\t------\t------------------\t------\t-------")
	for _, c := range ns.Status.Conditions {
		d.line(1, "", fmt.Sprintf("%s\t%s\t%s\t%s\t%s", c.Type, c.Status, d.stamp(c.LastTransitionTime.Time), c.Reason, c.Message))
	}
}

// describePodDisruptionBudget is kubectl's.
func describePodDisruptionBudget(d *describer, pdb *policyv1.PodDisruptionBudget) {
	switch {
	case pdb.Spec.MinAvailable != nil:
		d.line(0, "Min available", pdb.Spec.MinAvailable.String())
	case pdb.Spec.MaxUnavailable != nil:
		d.line(0, "Max unavailable", pdb.Spec.MaxUnavailable.String())
	}
	if sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector); err == nil {
		d.line(0, "Selector", sel.String())
	} else {
		d.line(0, "Selector", "<unset>")
	}
	st := pdb.Status
	d.section(0, "Status")
	d.line(2, "Allowed disruptions", st.DisruptionsAllowed)
	d.line(2, "Current", st.CurrentHealthy)
	d.line(2, "Desired", st.DesiredHealthy)
	d.line(2, "Total", st.ExpectedPods)
}

// describeResourceQuota is kubectl's: each resource of status.hard, used and hard (used
// in hard's format).
func describeResourceQuota(d *describer, q *corev1.ResourceQuota) {
	if len(q.Spec.Scopes) > 0 {
		scopes := make([]string, len(q.Spec.Scopes))
		for i, s := range q.Spec.Scopes {
			scopes[i] = string(s)
		}
		sort.Strings(scopes)
		d.line(0, "Scopes", strings.Join(scopes, ", "))
		for _, s := range scopes {
			if help := scopeHelp[corev1.ResourceQuotaScope(s)]; help != "" {
				d.line(0, "", " * "+help)
			}
		}
	}
	d.line(0, "", "Resource\tUsed\tHard")
	d.line(0, "", "--------\t----\t----")
	for _, name := range sortedKeys(q.Status.Hard) {
		hard, used := q.Status.Hard[name], q.Status.Used[name]
		if hard.Format != used.Format {
			used = *resource.NewQuantity(used.Value(), hard.Format)
		}
		d.line(0, "", fmt.Sprintf("%s\t%s\t%s", name, used.String(), hard.String()))
	}
}

// scopeHelp is kubectl's explanation of each quota scope.
var scopeHelp = map[corev1.ResourceQuotaScope]string{
	corev1.ResourceQuotaScopeTerminating:    "Matches all pods that have an active deadline. These pods have a limited lifespan on a node before being actively terminated by the system.",
	corev1.ResourceQuotaScopeNotTerminating: "Matches all pods that do not have an active deadline. These pods usually include long running pods whose container command is not expected to terminate.",
	corev1.ResourceQuotaScopeBestEffort:     "Matches all pods that do not have resource requirements set. These pods have a best effort quality of service.",
	corev1.ResourceQuotaScopeNotBestEffort:  "Matches all pods that have at least one resource requirement set. These pods have a burstable or guaranteed quality of service.",
}

// describeLimitRange is kubectl's: a row per type and resource, "-" where unset.
func describeLimitRange(d *describer, lr *corev1.LimitRange) {
	d.line(0, "", "Type\tResource\tMin\tMax\tDefault Request\tDefault Limit\tMax Limit/Request Ratio")
	d.line(0, "", "----\t--------\t---\t---\t---------------\t-------------\t-----------------------")
	for _, item := range lr.Spec.Limits {
		names := map[corev1.ResourceName]bool{}
		lists := []corev1.ResourceList{item.Min, item.Max, item.DefaultRequest, item.Default, item.MaxLimitRequestRatio}
		for _, l := range lists {
			for name := range l {
				names[name] = true
			}
		}
		for _, name := range sortedKeys(names) {
			cells := []string{string(item.Type), string(name)}
			for _, l := range lists {
				cell := "-"
				if q, ok := l[name]; ok {
					cell = q.String()
				}
				cells = append(cells, cell)
			}
			d.line(0, "", strings.Join(cells, "\t"))
		}
	}
}

// describeEvents writes the events as kubectl's describe does: oldest first, each aged
// from its first occurrence, with its count and span when it repeated.
func describeEvents(d *describer, events []*corev1.Event) {
	if len(events) == 0 {
		d.line(0, "Events", "<none>")
		return
	}
	events = append([]*corev1.Event(nil), events...)
	sort.SliceStable(events, func(i, j int) bool { return table.LastSeen(events[i]).Before(table.LastSeen(events[j])) })
	d.section(0, "Events")
	d.line(1, "", "Type\tReason\tAge\tFrom\tMessage")
	d.line(1, "", "----\t------\t----\t----\t-------")
	for _, e := range events {
		a := Age(table.FirstSeen(e), d.now)
		if n := table.EventCount(e); n > 1 {
			a = fmt.Sprintf("%s (x%d over %s)", Age(table.LastSeen(e), d.now), n, a)
		}
		d.line(1, "", strings.Join([]string{e.Type, e.Reason, a, table.EventSource(e), e.Message}, "\t"))
	}
}

func sortedKeys[K ~string, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	return keys
}

// PodTemplate writes a pod template as describe shows it (rollout history --revision).
func PodTemplate(w io.Writer, t *corev1.PodTemplateSpec) error {
	d := &describer{tw: tabwriter.NewWriter(w, 0, 8, 2, ' ', 0), now: time.Now()}
	describeTemplate(d, t)
	return d.tw.Flush()
}

// describeEndpoints is kubectl's: each subset's ready and not ready addresses, and its
// ports.
func describeEndpoints(d *describer, ep *corev1.Endpoints) {
	d.section(0, "Subsets")
	ips := func(addrs []corev1.EndpointAddress) string {
		out := make([]string, len(addrs))
		for i, a := range addrs {
			out[i] = a.IP
		}
		return orNone(strings.Join(out, ","))
	}
	for _, ss := range ep.Subsets {
		d.line(1, "Addresses", ips(ss.Addresses))
		d.line(1, "NotReadyAddresses", ips(ss.NotReadyAddresses))
		if len(ss.Ports) > 0 {
			d.section(1, "Ports")
			d.line(2, "", "Name\tPort\tProtocol")
			d.line(2, "", "----\t----\t--------")
			for _, p := range ss.Ports {
				name := p.Name
				if name == "" {
					name = "<unset>"
				}
				d.line(2, "", fmt.Sprintf("%s\t%d\t%s", name, p.Port, p.Protocol))
			}
		}
		d.line(0, "", "")
	}
}

// describeService is kubectl's, without the Endpoints line (they are in the Service's
// EndpointSlices: skiffctl get endpointslices -l kubernetes.io/service-name=NAME).
func describeService(d *describer, svc *corev1.Service) {
	s := svc.Spec
	d.mapping(0, "Selector", s.Selector)
	d.line(0, "Type", s.Type)
	if s.IPFamilyPolicy != nil {
		d.line(0, "IP Family Policy", *s.IPFamilyPolicy)
	}
	if len(s.IPFamilies) > 0 {
		fams := make([]string, len(s.IPFamilies))
		for i, f := range s.IPFamilies {
			fams[i] = string(f)
		}
		d.line(0, "IP Families", strings.Join(fams, ","))
	}
	if s.ClusterIP != "" {
		d.line(0, "IP", s.ClusterIP)
		d.line(0, "IPs", strings.Join(s.ClusterIPs, ","))
	}
	if len(s.ExternalIPs) > 0 {
		d.line(0, "External IPs", strings.Join(s.ExternalIPs, ","))
	}
	if s.Type == corev1.ServiceTypeLoadBalancer {
		var in []string
		for _, i := range svc.Status.LoadBalancer.Ingress {
			in = append(in, i.IP+i.Hostname)
		}
		d.line(0, "LoadBalancer Ingress", strings.Join(in, ", "))
	}
	if s.ExternalName != "" {
		d.line(0, "External Name", s.ExternalName)
	}
	for _, p := range s.Ports {
		name := p.Name
		if name == "" {
			name = "<unset>"
		}
		d.line(0, "Port", fmt.Sprintf("%s  %d/%s", name, p.Port, p.Protocol))
		if p.TargetPort.Type == intstr.String {
			d.line(0, "TargetPort", fmt.Sprintf("%s/%s", p.TargetPort.StrVal, p.Protocol))
		} else {
			d.line(0, "TargetPort", fmt.Sprintf("%d/%s", p.TargetPort.IntVal, p.Protocol))
		}
		if p.NodePort != 0 {
			d.line(0, "NodePort", fmt.Sprintf("%s  %d/%s", name, p.NodePort, p.Protocol))
		}
	}
	d.line(0, "Session Affinity", s.SessionAffinity)
	if s.ExternalTrafficPolicy != "" {
		d.line(0, "External Traffic Policy", s.ExternalTrafficPolicy)
	}
	if s.HealthCheckNodePort != 0 {
		d.line(0, "HealthCheck NodePort", fmt.Sprint(s.HealthCheckNodePort))
	}
	if s.InternalTrafficPolicy != nil {
		d.line(0, "Internal Traffic Policy", *s.InternalTrafficPolicy)
	}
}

package kubelet

import (
	"context"
	"fmt"
	"maps"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
)

// LeaseNamespace holds the nodes' heartbeat Leases.
const LeaseNamespace = "kube-node-lease"

// retryWait is how long the node and lease loops wait after a failure: 200ms doubling,
// never longer than their period.
func retryWait(failures int, period time.Duration) time.Duration {
	d := 200 * time.Millisecond << min(failures, 10)
	return min(d, period)
}

// logFailure says whether the node and lease loops log their failure after failures
// failures in a row: the first, then the 2nd, 4th, 8th and so on. Thousands of
// simulated nodes share one logger, whose lock and output (a pipe, under a benchmark)
// every line passes through; with a line for each failed attempt, 2,500 nodes retrying
// against slow API servers waited on the log rather than retried (issue 26).
func logFailure(failures int) bool { return failures&(failures+1) == 0 }

// within makes one call of a heartbeat — a Lease renewal, a node status check or write
// — with a deadline of period (at most the Lease's duration), as Kubernetes' kubelet
// gives each request of its heartbeat client a timeout of the status update frequency.
// Without it one renewal could outlast the Lease many times over: the client waits out
// an overloaded API server's retry delays (up to 32 s, ten times over) and retries a
// server that does not answer until it does, while the node lifecycle controller, 40 s
// after the last renewal, marks the node Unknown. Cut short, the loop tries again at
// once (retryWait). The deadline is each call's, not the heartbeat's: a Lease's first
// write takes two calls (look, create), and on a saturated machine,
// where each took seconds, 1,154 simulated nodes registered in five minutes (one call
// without a deadline) while 19 got their Lease (issue 26).
func (k *Kubelet) within(ctx context.Context, period time.Duration, call func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, min(period, k.cfg.LeaseDuration))
	defer cancel()
	return call(ctx)
}

// nodeLoop registers the Node, then checks its status every NodeStatusInterval and
// writes it when it changed or NodeStatusReportInterval passed since the last write, on
// a timer (every) until ctx ends; wg counts it. The client fails over between API
// servers; the loop just tries again.
func (k *Kubelet) nodeLoop(ctx context.Context, wg *sync.WaitGroup) {
	registered, failures := false, 0
	csiNode := !k.cfg.CSINode // made, or not to be made
	var reported time.Time
	k.every(ctx, wg, func(ctx context.Context) time.Duration {
		var err error
		if !registered {
			// Not a heartbeat: a thousand nodes registering at once may take longer
			// than one (TLS handshakes), and nothing expires meanwhile.
			err = k.registerNode(ctx)
			registered = err == nil
			if registered {
				reported = k.cfg.Clock.Now()
				k.log.Info("node registered")
			}
		} else {
			report := k.cfg.Clock.Now().Sub(reported) >= k.cfg.NodeStatusReportInterval
			var wrote bool
			wrote, err = k.updateNodeStatus(ctx, report)
			if client.IsNotFound(err) {
				registered = false // deleted under us: register again
				csiNode = !k.cfg.CSINode
			}
			if wrote {
				reported = k.cfg.Clock.Now()
			}
		}
		if registered && !csiNode {
			// After the Node, its owner; tried again on the loop's next turn, the
			// Node's status going on meanwhile.
			if cerr := k.ensureCSINode(ctx); cerr != nil {
				k.log.Warn("csinode not created; retrying", "error", cerr)
			} else {
				csiNode = true
			}
		}
		wait := k.cfg.NodeStatusInterval
		if err != nil && ctx.Err() == nil {
			if logFailure(failures) {
				k.log.Warn("node status write failed; retrying", "failures", failures+1, "error", err)
			}
			wait = retryWait(failures, wait)
			failures++
		} else {
			failures = 0
		}
		return wait
	})
}

func (k *Kubelet) nodeLabels() map[string]string {
	l := map[string]string{
		corev1.LabelHostname:   k.cfg.NodeName,
		corev1.LabelOSStable:   runtime.GOOS,
		corev1.LabelArchStable: runtime.GOARCH,
	}
	maps.Copy(l, k.cfg.Labels)
	return l
}

// registerNode creates the Node, or takes over an existing one: its labels gain ours and
// its status becomes ours.
func (k *Kubelet) registerNode(ctx context.Context) error {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: k.cfg.NodeName, Labels: k.nodeLabels()},
		Status:     k.nodeStatus(nil),
	}
	_, err := k.cs.Nodes.Create(ctx, node)
	if err == nil {
		return nil
	}
	if !client.IsAlreadyExists(err) {
		return fmt.Errorf("register node %s: %w", k.cfg.NodeName, err)
	}
	cur, err := k.cs.Nodes.Get(ctx, "", k.cfg.NodeName)
	if err != nil {
		return fmt.Errorf("register node %s: %w", k.cfg.NodeName, err)
	}
	want := maps.Clone(cur.Labels)
	if want == nil {
		want = map[string]string{}
	}
	maps.Copy(want, k.nodeLabels())
	if !maps.Equal(want, cur.Labels) {
		upd := cur.DeepCopy()
		upd.Labels = want
		if cur, err = k.cs.Nodes.Update(ctx, upd); err != nil {
			return fmt.Errorf("register node %s: update labels: %w", k.cfg.NodeName, err)
		}
	}
	return k.writeNodeStatus(ctx, cur)
}

// ensureCSINode creates the node's CSINode unless it exists, as Kubernetes' kubelet
// does at start (its CSI plugin's node info manager): named after the node, owned by
// the Node (the garbage collector removes it with the Node), listing no drivers — the
// kubelet registers no CSI plugins. One that exists is left as it is.
func (k *Kubelet) ensureCSINode(ctx context.Context) error {
	csiNodes := client.For[*storagev1.CSINode](k.cs.Conn)
	if _, err := csiNodes.Get(ctx, "", k.cfg.NodeName); !client.IsNotFound(err) {
		if err != nil {
			return fmt.Errorf("get csinode %s: %w", k.cfg.NodeName, err)
		}
		return nil
	}
	node, err := k.cs.Nodes.Get(ctx, "", k.cfg.NodeName)
	if err != nil {
		return fmt.Errorf("create csinode %s: get its node: %w", k.cfg.NodeName, err)
	}
	_, err = csiNodes.Create(ctx, &storagev1.CSINode{
		ObjectMeta: metav1.ObjectMeta{Name: k.cfg.NodeName, OwnerReferences: []metav1.OwnerReference{
			{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID}}},
		Spec: storagev1.CSINodeSpec{Drivers: []storagev1.CSINodeDriver{}},
	})
	if err != nil && !client.IsAlreadyExists(err) {
		return fmt.Errorf("create csinode %s: %w", k.cfg.NodeName, err)
	}
	return nil
}

// updateNodeStatus writes the Node's status if it differs from the stored one beyond
// heartbeat times, or if report is set. A thousand nodes rewriting an unchanged status
// every few seconds would be most of a cluster's writes.
// Each call has a deadline of NodeStatusInterval (within).
func (k *Kubelet) updateNodeStatus(ctx context.Context, report bool) (wrote bool, err error) {
	var cur *corev1.Node
	if err := k.within(ctx, k.cfg.NodeStatusInterval, func(ctx context.Context) (err error) {
		cur, err = k.cs.Nodes.Get(ctx, "", k.cfg.NodeName, client.GetOptions{Stale: true})
		return err
	}); err != nil {
		return false, fmt.Errorf("get node %s: %w", k.cfg.NodeName, err)
	}
	if st := k.nodeStatus(&cur.Status); !report && sameButHeartbeats(&st, &cur.Status) {
		return false, nil
	}
	return true, k.within(ctx, k.cfg.NodeStatusInterval, func(ctx context.Context) error { return k.writeNodeStatus(ctx, cur) })
}

// sameButHeartbeats compares two node statuses, ignoring the conditions' heartbeat times.
func sameButHeartbeats(a, b *corev1.NodeStatus) bool {
	if len(a.Conditions) != len(b.Conditions) {
		return false
	}
	// Shallow copies, with conditions of their own: only the heartbeats differ.
	strip := func(st corev1.NodeStatus) corev1.NodeStatus {
		st.Conditions = slices.Clone(st.Conditions)
		for i := range st.Conditions {
			st.Conditions[i].LastHeartbeatTime = metav1.Time{}
		}
		return st
	}
	return equality.Semantic.DeepEqual(strip(*a), strip(*b))
}

func (k *Kubelet) writeNodeStatus(ctx context.Context, cur *corev1.Node) error {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: k.cfg.NodeName, UID: cur.UID}, Status: k.nodeStatus(&cur.Status)}
	// No resourceVersion: the kubelet owns the node's status and writes it whole. The
	// reply is not read: its metadata alone is decoded.
	if _, err := k.cs.Nodes.UpdateStatusMeta(ctx, node); err != nil {
		return fmt.Errorf("update node %s status: %w", k.cfg.NodeName, err)
	}
	return nil
}

// nodeStatus is the Node's status now; conditions that did not change keep their
// transition times from old (nil: none). Its times are whole seconds, as the API keeps
// them (wireTime).
func (k *Kubelet) nodeStatus(old *corev1.NodeStatus) corev1.NodeStatus {
	now := wireTime(k.cfg.Clock.Now())
	st := corev1.NodeStatus{
		Capacity: k.capacity.DeepCopy(), Allocatable: k.capacity.DeepCopy(),
		Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: k.cfg.NodeIP}, {Type: corev1.NodeHostName, Address: k.cfg.NodeName}},
		NodeInfo:  k.info,
	}
	if old != nil {
		// Extended resources advertised by someone else (a status patch, as
		// Kubernetes' documentation shows) stay, and are allocatable.
		for name, q := range old.Capacity {
			if _, ours := k.capacity[name]; !ours && kinds.IsExtendedResourceName(name) {
				st.Capacity[name], st.Allocatable[name] = q.DeepCopy(), q.DeepCopy()
			}
		}
	}
	if k.cfg.LogPort > 0 {
		st.DaemonEndpoints.KubeletEndpoint.Port = int32(k.cfg.LogPort)
	}
	for _, c := range []corev1.NodeCondition{
		{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "kubelet is posting ready status"},
		{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientMemory", Message: "kubelet has sufficient memory available"},
		{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasNoDiskPressure", Message: "kubelet has no disk pressure"},
		{Type: corev1.NodePIDPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientPID", Message: "kubelet has sufficient PID available"},
	} {
		c.LastHeartbeatTime, c.LastTransitionTime = now, now
		if old != nil {
			for _, o := range old.Conditions {
				if o.Type == c.Type && o.Status == c.Status && !o.LastTransitionTime.IsZero() {
					c.LastTransitionTime = o.LastTransitionTime
				}
			}
		}
		st.Conditions = append(st.Conditions, c)
	}
	return st
}

// systemInfo describes this machine, as far as it tells.
func systemInfo(runtimeVersion string) corev1.NodeSystemInfo {
	read := func(path string) string {
		b, _ := os.ReadFile(path)
		return strings.TrimSpace(string(b))
	}
	osImage := runtime.GOOS
	for _, line := range strings.Split(read("/etc/os-release"), "\n") {
		if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
			osImage = strings.Trim(v, `"`)
		}
	}
	return corev1.NodeSystemInfo{
		MachineID: read("/etc/machine-id"), BootID: read("/proc/sys/kernel/random/boot_id"),
		KernelVersion: read("/proc/sys/kernel/osrelease"), OSImage: osImage,
		ContainerRuntimeVersion: runtimeVersion, KubeletVersion: Version,
		OperatingSystem: runtime.GOOS, Architecture: runtime.GOARCH,
	}
}

// leaseLoop keeps the node's Lease renewed every LeaseRenewInterval, on a timer (every)
// until ctx ends; wg counts it.
func (k *Kubelet) leaseLoop(ctx context.Context, wg *sync.WaitGroup) {
	var lease *coordinationv1.Lease
	failures := 0
	k.every(ctx, wg, func(ctx context.Context) time.Duration {
		var err error
		lease, err = k.renewLease(ctx, lease)
		wait := k.cfg.LeaseRenewInterval
		if err != nil && ctx.Err() == nil {
			if logFailure(failures) {
				k.log.Warn("lease renewal failed; retrying", "failures", failures+1, "error", err)
			}
			wait = retryWait(failures, wait)
			failures++
		} else if err == nil {
			if failures > 0 {
				k.log.Info("lease renewed", "after_failures", failures)
			}
			failures = 0
		}
		return wait
	})
}

// renewLease renews the Lease last written (a compare-and-swap on its
// resourceVersion), or finds or creates it when there is none or it changed. Each call
// has a deadline of LeaseRenewInterval (within).
func (k *Kubelet) renewLease(ctx context.Context, last *coordinationv1.Lease) (*coordinationv1.Lease, error) {
	now := metav1.NewMicroTime(k.cfg.Clock.Now())
	call := func(f func(context.Context) error) error { return k.within(ctx, k.cfg.LeaseRenewInterval, f) }
	var out *coordinationv1.Lease
	if last != nil {
		l := last.DeepCopy()
		l.Spec.RenewTime = &now
		err := call(func(ctx context.Context) (err error) { out, err = k.cs.Leases.Update(ctx, l); return err })
		if err == nil {
			return out, nil
		}
		if !client.IsConflict(err) && !client.IsNotFound(err) {
			return last, fmt.Errorf("renew lease %s/%s: %w", LeaseNamespace, k.cfg.NodeName, err)
		}
	}
	var cur *coordinationv1.Lease
	err := call(func(ctx context.Context) (err error) {
		cur, err = k.cs.Leases.Get(ctx, LeaseNamespace, k.cfg.NodeName)
		return err
	})
	if err == nil {
		cur.Spec = k.leaseSpec(&cur.Spec, now)
		if err := call(func(ctx context.Context) (err error) { out, err = k.cs.Leases.Update(ctx, cur); return err }); err != nil {
			return nil, fmt.Errorf("renew lease %s/%s: %w", LeaseNamespace, k.cfg.NodeName, err)
		}
		return out, nil
	}
	if !client.IsNotFound(err) {
		return nil, fmt.Errorf("get lease %s/%s: %w", LeaseNamespace, k.cfg.NodeName, err)
	}
	create := func() error {
		return call(func(ctx context.Context) (err error) {
			out, err = k.cs.Leases.Create(ctx, &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{Namespace: LeaseNamespace, Name: k.cfg.NodeName},
				Spec:       k.leaseSpec(nil, now),
			})
			return err
		})
	}
	// The API servers make the namespace when the cluster starts; it is made here only
	// when it is missing (deleted), not tried every time: each try was a write (refused
	// as existing) on every member, one for each of 2,500 nodes registering at once.
	err = create()
	if client.IsNotFound(err) {
		if err := call(func(ctx context.Context) error {
			_, err := k.cs.Namespaces.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: LeaseNamespace}})
			return err
		}); err != nil && !client.IsAlreadyExists(err) {
			return nil, fmt.Errorf("create namespace %s: %w", LeaseNamespace, err)
		}
		err = create()
	}
	if err != nil {
		return nil, fmt.Errorf("create lease %s/%s: %w", LeaseNamespace, k.cfg.NodeName, err)
	}
	return out, nil
}

// leaseSpec is the spec of the node's Lease renewed at now, from its previous spec
// (nil: none): acquired now unless this node held it already.
func (k *Kubelet) leaseSpec(prev *coordinationv1.LeaseSpec, now metav1.MicroTime) coordinationv1.LeaseSpec {
	s := coordinationv1.LeaseSpec{
		HolderIdentity:       ptr.To(k.cfg.NodeName),
		LeaseDurationSeconds: ptr.To(int32(max(k.cfg.LeaseDuration/time.Second, 1))),
		RenewTime:            &now,
	}
	if prev != nil {
		s.AcquireTime, s.LeaseTransitions = prev.AcquireTime, prev.LeaseTransitions
	}
	if prev == nil || ptr.Deref(prev.HolderIdentity, "") != k.cfg.NodeName || s.AcquireTime == nil {
		s.AcquireTime = ptr.To(now)
	}
	return s
}

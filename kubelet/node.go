package kubelet

import (
	"context"
	"fmt"
	"maps"
	"os"
	"runtime"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/skiffhq/skiff/client"
	corev1 "github.com/skiffhq/skiff/proto/core/v1"
)

// LeaseNamespace holds the nodes' heartbeat Leases.
const LeaseNamespace = "kube-node-lease"

// retryWait is how long the node and lease loops wait after a failure: 200ms doubling,
// never longer than their period.
func retryWait(failures int, period time.Duration) time.Duration {
	d := 200 * time.Millisecond << min(failures, 10)
	return min(d, period)
}

// nodeLoop registers the Node, then checks its status every NodeStatusInterval and
// writes it when it changed or NodeStatusReportInterval passed since the last write. The
// client fails over between API servers; the loop just tries again.
func (k *Kubelet) nodeLoop(ctx context.Context) {
	registered, failures := false, 0
	var reported time.Time
	for {
		var err error
		if !registered {
			err = k.registerNode(ctx)
			registered = err == nil
			if registered {
				reported = k.cfg.Clock.Now()
				k.log.Info("node registered")
			}
		} else {
			report := k.cfg.Clock.Now().Sub(reported) >= k.cfg.NodeStatusReportInterval
			var wrote bool
			if wrote, err = k.updateNodeStatus(ctx, report); client.IsNotFound(err) {
				registered = false // deleted under us: register again
			}
			if wrote {
				reported = k.cfg.Clock.Now()
			}
		}
		wait := k.cfg.NodeStatusInterval
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			k.log.Warn("node status write failed; retrying", "error", err)
			wait = retryWait(failures, wait)
			failures++
		} else {
			failures = 0
		}
		if !k.sleep(ctx, wait) {
			return
		}
	}
}

func (k *Kubelet) nodeLabels() map[string]string {
	l := map[string]string{
		"kubernetes.io/hostname": k.cfg.NodeName,
		"kubernetes.io/os":       runtime.GOOS,
		"kubernetes.io/arch":     runtime.GOARCH,
	}
	maps.Copy(l, k.cfg.Labels)
	return l
}

// registerNode creates the Node, or takes over an existing one: its labels gain ours and
// its status becomes ours.
func (k *Kubelet) registerNode(ctx context.Context) error {
	node := &corev1.Node{
		Metadata: &corev1.ObjectMeta{Name: k.cfg.NodeName, Labels: k.nodeLabels()},
		Spec:     &corev1.NodeSpec{},
		Status:   k.nodeStatus(nil),
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
	want := maps.Clone(cur.GetMetadata().GetLabels())
	if want == nil {
		want = map[string]string{}
	}
	maps.Copy(want, k.nodeLabels())
	if !maps.Equal(want, cur.GetMetadata().GetLabels()) {
		upd := proto.Clone(cur).(*corev1.Node)
		upd.Metadata.Labels = want
		if cur, err = k.cs.Nodes.Update(ctx, upd); err != nil {
			return fmt.Errorf("register node %s: update labels: %w", k.cfg.NodeName, err)
		}
	}
	return k.writeNodeStatus(ctx, cur)
}

// updateNodeStatus writes the Node's status if it differs from the stored one beyond
// heartbeat times, or if report is set. A thousand nodes rewriting an unchanged status
// every few seconds would be most of a cluster's writes.
func (k *Kubelet) updateNodeStatus(ctx context.Context, report bool) (wrote bool, err error) {
	cur, err := k.cs.Nodes.Get(ctx, "", k.cfg.NodeName, client.GetOptions{Stale: true})
	if err != nil {
		return false, fmt.Errorf("get node %s: %w", k.cfg.NodeName, err)
	}
	if !report && sameButHeartbeats(k.nodeStatus(cur.GetStatus()), cur.GetStatus()) {
		return false, nil
	}
	return true, k.writeNodeStatus(ctx, cur)
}

// sameButHeartbeats compares two node statuses, ignoring the conditions' heartbeat times.
func sameButHeartbeats(a, b *corev1.NodeStatus) bool {
	if len(a.GetConditions()) != len(b.GetConditions()) {
		return false
	}
	a, b = proto.Clone(a).(*corev1.NodeStatus), proto.Clone(b).(*corev1.NodeStatus)
	for _, st := range []*corev1.NodeStatus{a, b} {
		for _, c := range st.GetConditions() {
			c.LastHeartbeatTime = nil
		}
	}
	return proto.Equal(a, b)
}

func (k *Kubelet) writeNodeStatus(ctx context.Context, cur *corev1.Node) error {
	node := &corev1.Node{Metadata: &corev1.ObjectMeta{Name: k.cfg.NodeName, Uid: cur.GetMetadata().GetUid()}, Status: k.nodeStatus(cur.GetStatus())}
	// No resourceVersion: the kubelet owns the node's status and writes it whole.
	if _, err := k.cs.Nodes.UpdateStatus(ctx, node); err != nil {
		return fmt.Errorf("update node %s status: %w", k.cfg.NodeName, err)
	}
	return nil
}

// nodeStatus is the Node's status now; conditions that did not change keep their
// transition times from old.
func (k *Kubelet) nodeStatus(old *corev1.NodeStatus) *corev1.NodeStatus {
	now := timestamppb.New(k.cfg.Clock.Now())
	st := &corev1.NodeStatus{
		Capacity: maps.Clone(k.cfg.Capacity), Allocatable: maps.Clone(k.cfg.Capacity),
		Addresses: []*corev1.NodeAddress{{Type: "InternalIP", Address: k.cfg.NodeIP}, {Type: "Hostname", Address: k.cfg.NodeName}},
		NodeInfo:  k.info,
	}
	if k.cfg.LogPort > 0 {
		st.DaemonEndpoints = &corev1.NodeDaemonEndpoints{KubeletEndpoint: &corev1.DaemonEndpoint{Port: int32(k.cfg.LogPort)}}
	}
	for _, c := range []*corev1.NodeCondition{
		{Type: "Ready", Status: "True", Reason: "KubeletReady", Message: "kubelet is posting ready status"},
		{Type: "MemoryPressure", Status: "False", Reason: "KubeletHasSufficientMemory", Message: "kubelet has sufficient memory available"},
		{Type: "DiskPressure", Status: "False", Reason: "KubeletHasNoDiskPressure", Message: "kubelet has no disk pressure"},
		{Type: "PIDPressure", Status: "False", Reason: "KubeletHasSufficientPID", Message: "kubelet has sufficient PID available"},
	} {
		c.LastHeartbeatTime, c.LastTransitionTime = now, now
		for _, o := range old.GetConditions() {
			if o.GetType() == c.GetType() && o.GetStatus() == c.GetStatus() && o.GetLastTransitionTime() != nil {
				c.LastTransitionTime = o.GetLastTransitionTime()
			}
		}
		st.Conditions = append(st.Conditions, c)
	}
	return st
}

// systemInfo describes this machine, as far as it tells.
func systemInfo(runtimeVersion string) *corev1.NodeSystemInfo {
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
	return &corev1.NodeSystemInfo{
		MachineId: read("/etc/machine-id"), BootId: read("/proc/sys/kernel/random/boot_id"),
		KernelVersion: read("/proc/sys/kernel/osrelease"), OsImage: osImage,
		ContainerRuntimeVersion: runtimeVersion, KubeletVersion: Version,
		OperatingSystem: runtime.GOOS, Architecture: runtime.GOARCH,
	}
}

// leaseLoop keeps the node's Lease renewed every LeaseRenewInterval.
func (k *Kubelet) leaseLoop(ctx context.Context) {
	var lease *corev1.Lease
	failures := 0
	for {
		var err error
		lease, err = k.renewLease(ctx, lease)
		wait := k.cfg.LeaseRenewInterval
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			k.log.Warn("lease renewal failed; retrying", "error", err)
			wait = retryWait(failures, wait)
			failures++
		} else {
			failures = 0
		}
		if !k.sleep(ctx, wait) {
			return
		}
	}
}

// renewLease renews the Lease last written (a compare-and-swap on its
// resourceVersion), or finds or creates it when there is none or it changed.
func (k *Kubelet) renewLease(ctx context.Context, last *corev1.Lease) (*corev1.Lease, error) {
	now := timestamppb.New(k.cfg.Clock.Now())
	if last != nil {
		l := proto.Clone(last).(*corev1.Lease)
		l.Spec.RenewTime = now
		out, err := k.cs.Leases.Update(ctx, l)
		if err == nil {
			return out, nil
		}
		if !client.IsConflict(err) && !client.IsNotFound(err) {
			return last, fmt.Errorf("renew lease %s/%s: %w", LeaseNamespace, k.cfg.NodeName, err)
		}
	}
	cur, err := k.cs.Leases.Get(ctx, LeaseNamespace, k.cfg.NodeName)
	if err == nil {
		cur.Spec = k.leaseSpec(cur.GetSpec(), now)
		out, err := k.cs.Leases.Update(ctx, cur)
		if err != nil {
			return nil, fmt.Errorf("renew lease %s/%s: %w", LeaseNamespace, k.cfg.NodeName, err)
		}
		return out, nil
	}
	if !client.IsNotFound(err) {
		return nil, fmt.Errorf("get lease %s/%s: %w", LeaseNamespace, k.cfg.NodeName, err)
	}
	if _, err := k.cs.Namespaces.Create(ctx, &corev1.Namespace{Metadata: &corev1.ObjectMeta{Name: LeaseNamespace}}); err != nil && !client.IsAlreadyExists(err) {
		return nil, fmt.Errorf("create namespace %s: %w", LeaseNamespace, err)
	}
	out, err := k.cs.Leases.Create(ctx, &corev1.Lease{
		Metadata: &corev1.ObjectMeta{Namespace: LeaseNamespace, Name: k.cfg.NodeName},
		Spec:     k.leaseSpec(nil, now),
	})
	if err != nil {
		return nil, fmt.Errorf("create lease %s/%s: %w", LeaseNamespace, k.cfg.NodeName, err)
	}
	return out, nil
}

func (k *Kubelet) leaseSpec(prev *corev1.LeaseSpec, now *timestamppb.Timestamp) *corev1.LeaseSpec {
	s := &corev1.LeaseSpec{
		HolderIdentity:       k.cfg.NodeName,
		LeaseDurationSeconds: proto.Int32(int32(max(k.cfg.LeaseDuration/time.Second, 1))),
		AcquireTime:          prev.GetAcquireTime(),
		RenewTime:            now,
	}
	if prev != nil {
		s.LeaseTransitions = prev.LeaseTransitions
	}
	if prev.GetHolderIdentity() != k.cfg.NodeName || s.AcquireTime == nil {
		s.AcquireTime = now
	}
	return s
}

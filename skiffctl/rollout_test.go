package skiffctl_test

import (
	"encoding/json"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/skiffctl"
	"github.com/skiffhq/skiff/test/apicluster"
)

const agentDaemonSet = `apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers:
      - {name: agent, image: busybox:1.36}
`

// revisionOf is a ControllerRevision of owner holding template as the controllers
// write it: a strategic merge patch replacing spec.template.
func revisionOf(t *testing.T, owner kinds.Object, name string, n int64, template corev1.PodTemplateSpec) *appsv1.ControllerRevision {
	t.Helper()
	b, _ := json.Marshal(template)
	var m map[string]any
	json.Unmarshal(b, &m)
	m["$patch"] = "replace"
	data, err := json.Marshal(map[string]any{"spec": map[string]any{"template": m}})
	if err != nil {
		t.Fatal(err)
	}
	return &appsv1.ControllerRevision{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default",
		Annotations:     map[string]string{"kubernetes.io/change-cause": "image " + template.Spec.Containers[0].Image},
		OwnerReferences: []metav1.OwnerReference{kinds.NewControllerRef(owner)}}, Data: runtime.RawExtension{Raw: data}, Revision: n}
}

// TestRolloutDaemonSet: history lists a DaemonSet's revisions and shows one; undo puts
// the previous template back; restart annotates the template.
func TestRolloutDaemonSet(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	s, conn := c.Addr(0), dial(t, c)
	applyStdin(t, s, agentDaemonSet)
	dss := client.For[*appsv1.DaemonSet](conn)
	ds, err := dss.Get(ctx10(t), "default", "agent")
	if err != nil {
		t.Fatal(err)
	}
	old := *ds.Spec.Template.DeepCopy()
	old.Spec.Containers[0].Image = "busybox:1.35"
	revs := client.For[*appsv1.ControllerRevision](conn)
	for _, r := range []*appsv1.ControllerRevision{revisionOf(t, ds, "agent-1", 1, old), revisionOf(t, ds, "agent-2", 2, ds.Spec.Template)} {
		if _, err := revs.Create(ctx10(t), r); err != nil {
			t.Fatal(err)
		}
	}
	contains(t, "history", must(t, s, "rollout", "history", "daemonset/agent"), "daemonset.apps/agent", "REVISION", "1         image busybox:1.35",
		"2         image busybox:1.36")
	contains(t, "history --revision", must(t, s, "rollout", "history", "ds/agent", "--revision", "1"), "daemonset.apps/agent with revision #1",
		"Pod Template:", "busybox:1.35")
	fails(t, s, "", "unable to find the specified revision", "rollout", "history", "ds/agent", "--revision", "7")

	contains(t, "undo", must(t, s, "rollout", "undo", "daemonset/agent"), "daemonset.apps/agent rolled back")
	if ds, _ := dss.Get(ctx10(t), "default", "agent"); ds.Spec.Template.Spec.Containers[0].Image != "busybox:1.35" {
		t.Errorf("after undo: image %s", ds.Spec.Template.Spec.Containers[0].Image)
	}
	contains(t, "undo to the same", must(t, s, "rollout", "undo", "daemonset/agent", "--to-revision", "1"),
		"skipped rollback (current template already matches revision 1)")
	fails(t, s, "", "unable to find specified revision 9 in history", "rollout", "undo", "ds/agent", "--to-revision", "9")

	contains(t, "restart", must(t, s, "rollout", "restart", "ds/agent"), "daemonset.apps/agent restarted")
	if ds, _ := dss.Get(ctx10(t), "default", "agent"); ds.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] == "" {
		t.Errorf("restart: template annotations %v", ds.Spec.Template.Annotations)
	}
	fails(t, s, "", "no rollout support for configmaps", "rollout", "status", "configmap/x")
}

func TestRolloutProgress(t *testing.T) {
	ds := func(mut func(*appsv1.DaemonSet)) *appsv1.DaemonSet {
		d := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent", Generation: 2}, Spec: appsv1.DaemonSetSpec{
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType}},
			Status: appsv1.DaemonSetStatus{ObservedGeneration: 2, DesiredNumberScheduled: 3, UpdatedNumberScheduled: 3, NumberAvailable: 3}}
		mut(d)
		return d
	}
	sts := func(mut func(*appsv1.StatefulSet)) *appsv1.StatefulSet {
		s := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "web", Generation: 2}, Spec: appsv1.StatefulSetSpec{Replicas: new(int32(3)),
			UpdateStrategy: appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType}},
			Status: appsv1.StatefulSetStatus{ObservedGeneration: 2, ReadyReplicas: 3, UpdatedReplicas: 3, CurrentReplicas: 3,
				CurrentRevision: "web-2", UpdateRevision: "web-2"}}
		mut(s)
		return s
	}
	for _, tc := range []struct {
		name string
		msg  string
		done bool
		err  string
		got  func() (string, bool, error)
	}{
		{"ds done", "daemon set \"agent\" successfully rolled out\n", true, "", func() (string, bool, error) {
			return skiffctl.DaemonSetProgress(ds(func(*appsv1.DaemonSet) {}))
		}},
		{"ds not observed", "Waiting for daemon set spec update to be observed...\n", false, "", func() (string, bool, error) {
			return skiffctl.DaemonSetProgress(ds(func(d *appsv1.DaemonSet) { d.Generation = 3 }))
		}},
		{"ds updating", "Waiting for daemon set \"agent\" rollout to finish: 1 out of 3 new pods have been updated...\n", false, "",
			func() (string, bool, error) {
				return skiffctl.DaemonSetProgress(ds(func(d *appsv1.DaemonSet) { d.Status.UpdatedNumberScheduled = 1 }))
			}},
		{"ds available", "Waiting for daemon set \"agent\" rollout to finish: 2 of 3 updated pods are available...\n", false, "",
			func() (string, bool, error) {
				return skiffctl.DaemonSetProgress(ds(func(d *appsv1.DaemonSet) { d.Status.NumberAvailable = 2 }))
			}},
		{"ds on delete", "", true, "rollout status is only available for RollingUpdate strategy type", func() (string, bool, error) {
			return skiffctl.DaemonSetProgress(ds(func(d *appsv1.DaemonSet) { d.Spec.UpdateStrategy.Type = appsv1.OnDeleteDaemonSetStrategyType }))
		}},
		{"sts done", "statefulset rolling update complete 3 pods at revision web-2...\n", true, "", func() (string, bool, error) {
			return skiffctl.StatefulSetProgress(sts(func(*appsv1.StatefulSet) {}))
		}},
		{"sts ready", "Waiting for 1 pods to be ready...\n", false, "", func() (string, bool, error) {
			return skiffctl.StatefulSetProgress(sts(func(s *appsv1.StatefulSet) { s.Status.ReadyReplicas = 2 }))
		}},
		{"sts partition", "Waiting for partitioned roll out to finish: 0 out of 1 new pods have been updated...\n", false, "",
			func() (string, bool, error) {
				return skiffctl.StatefulSetProgress(sts(func(s *appsv1.StatefulSet) {
					s.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{Partition: new(int32(2))}
					s.Status.UpdatedReplicas = 0
				}))
			}},
		{"sts rolling", "waiting for statefulset rolling update to complete 1 pods at revision web-3...\n", false, "",
			func() (string, bool, error) {
				return skiffctl.StatefulSetProgress(sts(func(s *appsv1.StatefulSet) { s.Status.UpdateRevision, s.Status.UpdatedReplicas = "web-3", 1 }))
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg, done, err := tc.got()
			if msg != tc.msg || done != tc.done || (err == nil) != (tc.err == "") || (err != nil && err.Error() != tc.err) {
				t.Errorf("got %q %v %v, want %q %v %q", msg, done, err, tc.msg, tc.done, tc.err)
			}
		})
	}
}

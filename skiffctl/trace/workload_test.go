package trace

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffhq/skiff/kinds"
)

// workloadFixture: owner's revisions 1 and 2 (made at 30 ms, kept as 0 s), three pods of
// revision 2 (ready at 1.4 s, 2.05 s and 2.9 s) and one of revision 1, not in the chain.
// label is the pods' controller-revision-hash for a revision: its hash for a DaemonSet,
// its name for a StatefulSet.
func workloadFixture(owner kinds.Object, label func(rev *appsv1.ControllerRevision) string) ([]*appsv1.ControllerRevision, []*corev1.Pod, []*corev1.Event) {
	owner.SetName("web")
	owner.SetNamespace("default")
	owner.SetUID("o1")
	owner.SetResourceVersion("10")
	owner.SetCreationTimestamp(sec(0))
	var revs []*appsv1.ControllerRevision
	for n, hash := range []string{"aaa", "bbb"} {
		revs = append(revs, &appsv1.ControllerRevision{ObjectMeta: metav1.ObjectMeta{Name: "web-" + hash, Namespace: "default",
			UID: types.UID("r" + hash), ResourceVersion: "11", CreationTimestamp: sec(30), Labels: map[string]string{RevisionHashLabel: hash},
			OwnerReferences: controllerRef(owner)}, Revision: int64(n + 1)})
	}
	events := []*corev1.Event{event("o1", StoredReason, "stored", "apiserver", "cp1", 0)}
	var pods []*corev1.Pod
	for i, readyAt := range []int{2900, 1400, 2050, 500} {
		name := fmt.Sprintf("web-%d", i)
		rev := revs[1]
		if i == 3 {
			rev = revs[0]
		}
		uid := types.UID(fmt.Sprintf("p%d", i))
		pods = append(pods, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: uid, ResourceVersion: "30", CreationTimestamp: sec(40),
				OwnerReferences: controllerRef(owner), Labels: map[string]string{appsv1.ControllerRevisionHashLabelKey: label(rev)}},
			Spec: corev1.PodSpec{NodeName: "w1"},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{
				{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: sec(readyAt)}}},
		})
		events = append(events,
			event("o1", "SuccessfulCreate", "create Pod "+name+" in StatefulSet web successful", "controller-manager", "cp1", 40+i),
			event(uid, "Scheduled", "Successfully assigned default/"+name+" to w1", "default-scheduler", "cp2", 60),
			event(uid, "Pulled", "Container image already present", "kubelet", "w1", readyAt-200),
			event(uid, "Started", "Started container web", "kubelet", "w1", readyAt-100))
	}
	return revs, pods, events
}

func TestAssembleWorkload(t *testing.T) {
	for _, tc := range []struct {
		owner kinds.Object
		label func(*appsv1.ControllerRevision) string
	}{
		{&appsv1.DaemonSet{}, func(r *appsv1.ControllerRevision) string { return r.Labels[RevisionHashLabel] }},
		{&appsv1.StatefulSet{}, func(r *appsv1.ControllerRevision) string { return r.Name }},
	} {
		kind := kinds.Of(tc.owner).Kind
		t.Run(kind, func(t *testing.T) {
			revs, pods, events := workloadFixture(tc.owner, tc.label)
			tr := AssembleWorkload(tc.owner, revs, pods, events)
			var labels []string
			for _, s := range tr.Steps {
				labels = append(labels, s.Label())
				if s.Missing {
					t.Errorf("step %s missing", s.Label())
				}
			}
			if got := strings.Join(labels, " "); got != "1 2-3 4-5 6-7 8 9 10" {
				t.Fatalf("steps %q", got)
			}
			if tr.Kind != kind || tr.Revision != 2 || tr.ControllerRevision != "web-bbb" || tr.Pods.Total != 3 || tr.Pods.Slowest.Name != "web-0" {
				t.Fatalf("trace %+v pods %+v", tr, tr.Pods)
			}
			// Revision 2 is a rollout: the chain starts at the revision (to the second: 0).
			if s := tr.Steps; s[0].Title != "Template changed (rev 2)" || s[1].Object != "controllerrevision/web-bbb" ||
				s[2].Title != "Pod created" || s[2].SinceStartMs != 40 || s[6].SinceStartMs != 2800 {
				t.Errorf("steps %+v", s)
			}
			var b bytes.Buffer
			if err := WriteJSON(&b, tr); err != nil {
				t.Fatal(err)
			}
			var doc struct {
				Kind, Name, ControllerRevision string
				Deployment                     *string
			}
			if err := json.Unmarshal(b.Bytes(), &doc); err != nil || doc.Kind != kind || doc.Name != "web" || doc.ControllerRevision != "web-bbb" ||
				doc.Deployment != nil {
				t.Fatalf("json (%v):\n%s", err, b.String())
			}
			b.Reset()
			if err := WriteText(&b, tr, 80); err != nil {
				t.Fatal(err)
			}
			if want := strings.ToLower(kind) + " default/web  revision 2  controllerrevision web-bbb"; !strings.Contains(b.String(), want) {
				t.Errorf("text lacks %q:\n%s", want, b.String())
			}
			b.Reset()
			if err := WriteSVG(&b, tr); err != nil {
				t.Fatal(err)
			}
			var svg struct {
				Texts []string `xml:"text"`
			}
			if err := xml.Unmarshal(b.Bytes(), &svg); err != nil {
				t.Fatal(err)
			}
			all := strings.Join(svg.Texts, "\n")
			for _, want := range []string{kind + " controller", "writes a revision", "makes the pods", "4-5 Pod created"} {
				if !strings.Contains(all, want) {
					t.Errorf("diagram lacks %q:\n%s", want, all)
				}
			}
		})
	}
}

// TestAssembleWorkloadBeforeRevision: a set the controller has not seen yet.
func TestAssembleWorkloadBeforeRevision(t *testing.T) {
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent", UID: "o1", CreationTimestamp: sec(0)}}
	tr := AssembleWorkload(ds, nil, nil, nil)
	if len(tr.Steps) != 2 || tr.Steps[0].Title != "DaemonSet stored" || !tr.Steps[1].Missing {
		t.Fatalf("steps %+v", tr.Steps)
	}
}

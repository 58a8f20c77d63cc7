package printers

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	corev1 "github.com/skiffhq/skiff/proto/core/v1"
	"github.com/skiffhq/skiff/proto/kinds"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func ago(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(now.Add(-d)) }

func meta(name string, d time.Duration) *corev1.ObjectMeta {
	return &corev1.ObjectMeta{Name: name, Namespace: "default", Uid: "uid-" + name, ResourceVersion: "42",
		CreationTimestamp: ago(d), Labels: map[string]string{"app": "web"}}
}

func fixtures() map[string][]kinds.Object {
	replicas := int32(3)
	tmpl := &corev1.PodTemplateSpec{Metadata: &corev1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec: &corev1.PodSpec{Containers: []*corev1.Container{{Name: "web", Image: "busybox:1.36", Command: []string{"sleep", "3600"}}}}}
	running := &corev1.Pod{Metadata: meta("web-1", 90*time.Second), Spec: &corev1.PodSpec{NodeName: "w1", Containers: tmpl.Spec.Containers},
		Status: &corev1.PodStatus{Phase: "Running", PodIp: "10.0.0.5", StartTime: ago(80 * time.Second),
			Conditions: []*corev1.PodCondition{{Type: "Ready", Status: "True"}},
			ContainerStatuses: []*corev1.ContainerStatus{{Name: "web", Ready: true, RestartCount: 2,
				State: &corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: ago(70 * time.Second)}}}}}}
	crashing := &corev1.Pod{Metadata: meta("web-2", 5*time.Minute), Spec: &corev1.PodSpec{NodeName: "w2", Containers: tmpl.Spec.Containers},
		Status: &corev1.PodStatus{Phase: "Running", ContainerStatuses: []*corev1.ContainerStatus{{Name: "web", RestartCount: 5,
			State: &corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}}}}}
	pending := &corev1.Pod{Metadata: meta("web-3", 3*time.Hour), Spec: &corev1.PodSpec{Containers: tmpl.Spec.Containers}}
	deleting := &corev1.Pod{Metadata: meta("web-4", 50*time.Hour), Spec: &corev1.PodSpec{Containers: tmpl.Spec.Containers},
		Status: &corev1.PodStatus{Phase: "Running"}}
	deleting.Metadata.DeletionTimestamp = ago(time.Second)
	dep := &corev1.Deployment{Metadata: meta("web", 10*24*time.Hour), Spec: &corev1.DeploymentSpec{Replicas: &replicas,
		Selector: &corev1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}, Template: tmpl,
		Strategy: &corev1.DeploymentStrategy{Type: "RollingUpdate", RollingUpdate: &corev1.RollingUpdateDeployment{
			MaxSurge: structpb.NewStringValue("25%"), MaxUnavailable: structpb.NewNumberValue(1)}}},
		Status: &corev1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 2, AvailableReplicas: 2, UnavailableReplicas: 1,
			Conditions: []*corev1.DeploymentCondition{{Type: "Available", Status: "False", Reason: "MinimumReplicasUnavailable"}}}}
	rs := &corev1.ReplicaSet{Metadata: meta("web-5d4f8b", 10*24*time.Hour), Spec: &corev1.ReplicaSetSpec{Replicas: &replicas,
		Selector: dep.Spec.Selector, Template: tmpl}, Status: &corev1.ReplicaSetStatus{Replicas: 3, ReadyReplicas: 2}}
	rs.Metadata.OwnerReferences = []*corev1.OwnerReference{{Kind: "Deployment", Name: "web", Controller: new(bool)}}
	*rs.Metadata.OwnerReferences[0].Controller = true
	node := &corev1.Node{Metadata: &corev1.ObjectMeta{Name: "w1", CreationTimestamp: ago(7 * time.Hour),
		Labels: map[string]string{"node-role.kubernetes.io/worker": ""}},
		Spec: &corev1.NodeSpec{Unschedulable: true, Taints: []*corev1.Taint{{Key: "dedicated", Value: "db", Effect: "NoSchedule"}}},
		Status: &corev1.NodeStatus{Capacity: map[string]string{"cpu": "2", "memory": "24Gi", "pods": "110"},
			Allocatable: map[string]string{"cpu": "2", "memory": "24Gi", "pods": "110"},
			Conditions:  []*corev1.NodeCondition{{Type: "Ready", Status: "True", Reason: "KubeletReady", LastHeartbeatTime: ago(5 * time.Second)}},
			Addresses:   []*corev1.NodeAddress{{Type: "InternalIP", Address: "10.0.0.1"}},
			NodeInfo:    &corev1.NodeSystemInfo{KubeletVersion: "skiff-0.1", ContainerRuntimeVersion: "containerd://1.6.20", OsImage: "Debian"}}}
	ev := &corev1.Event{Metadata: meta("web-1.1", time.Minute), InvolvedObject: &corev1.ObjectReference{Kind: "Pod", Name: "web-1"},
		Reason: "Scheduled", Message: "Successfully assigned default/web-1 to w1", Type: "Normal", Count: 1,
		Source: &corev1.EventSource{Component: "scheduler", Host: "cp1"}, FirstTimestamp: ago(time.Minute), LastTimestamp: ago(time.Minute)}
	return map[string][]kinds.Object{
		"pods":        {running, crashing, pending, deleting},
		"deployments": {dep},
		"replicasets": {rs},
		"nodes":       {node},
		"events":      {ev},
		"configmaps":  {&corev1.ConfigMap{Metadata: meta("settings", time.Hour), Data: map[string]string{"a": "1", "b": "2"}}},
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from %s:\n%s\nwant:\n%s", name, path, got, want)
	}
}

func TestTables(t *testing.T) {
	for plural, objs := range fixtures() {
		info := kinds.MustLookup(plural)
		for _, v := range []struct {
			suffix string
			opts   TableOptions
		}{{"", TableOptions{}}, {"-wide", TableOptions{Wide: true}}, {"-all", TableOptions{AllNamespaces: true}}} {
			var b bytes.Buffer
			v.opts.Now = now
			if err := Table(&b, info, objs, v.opts); err != nil {
				t.Fatal(err)
			}
			golden(t, "table-"+plural+v.suffix, b.Bytes())
		}
	}
}

func TestDescribe(t *testing.T) {
	f := fixtures()
	events := f["events"]
	for _, o := range []kinds.Object{f["pods"][0], f["deployments"][0], f["replicasets"][0], f["nodes"][0], f["configmaps"][0]} {
		var evs []*corev1.Event
		if kinds.Of(o).Kind == kinds.Pod {
			evs = []*corev1.Event{events[0].(*corev1.Event)}
		}
		var b bytes.Buffer
		if err := Describe(&b, o, evs, now); err != nil {
			t.Fatal(err)
		}
		golden(t, "describe-"+kinds.Of(o).Singular, b.Bytes())
	}
}

func TestShortDuration(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"}, {-time.Second, "0s"}, {119 * time.Second, "119s"}, {150 * time.Second, "2m30s"},
		{45 * time.Minute, "45m"}, {5*time.Hour + 7*time.Minute, "5h7m"}, {5 * time.Hour, "5h"},
		{30 * time.Hour, "30h"}, {3*24*time.Hour + 4*time.Hour, "3d4h"}, {100 * 24 * time.Hour, "100d"},
		{3 * 365 * 24 * time.Hour, "3y"},
	} {
		if got := ShortDuration(tc.d); got != tc.want {
			t.Errorf("ShortDuration(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

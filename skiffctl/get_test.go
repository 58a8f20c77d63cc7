package skiffctl

import (
	"strings"
	"testing"
)

func TestGetArgs(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		want     string // kind:names;...
		withKind bool
		err      string
	}{
		{args: []string{"pods"}, want: "Pod:"},
		{args: []string{"deployments.apps", "web"}, want: "Deployment:web"},
		{args: []string{"Deployment.apps", "web", "api"}, want: "Deployment:web,api"},
		{args: []string{"deployments.v1.apps/web"}, want: "Deployment:web"},
		{args: []string{"deploy,po"}, want: "Deployment:;Pod:", withKind: true},
		{args: []string{"deploy,deployments"}, want: "Deployment:"},
		{args: []string{"all"}, want: "Pod:;ReplicationController:;Service:;DaemonSet:;Deployment:;ReplicaSet:;StatefulSet:;HorizontalPodAutoscaler:;CronJob:;Job:", withKind: true},
		{args: []string{"all,cm"}, want: "Pod:;ReplicationController:;Service:;DaemonSet:;Deployment:;ReplicaSet:;StatefulSet:;HorizontalPodAutoscaler:;CronJob:;Job:;ConfigMap:", withKind: true},
		{args: []string{"deploy/a", "po/b", "deployment/c"}, want: "Deployment:a,c;Pod:b", withKind: true},
		{args: []string{"deploy/a", "deploy/b"}, want: "Deployment:a,b"},
		{args: []string{"widgets"}, err: `doesn't have a resource type "widgets"`},
		{args: []string{"deploy,widgets"}, err: `doesn't have a resource type "widgets"`},
		{args: []string{"deploy,"}, err: "an empty kind"},
		{args: []string{"deploy", "po/a"}, err: "no need to specify a resource type as a separate argument"},
		{args: []string{"deploy/a", "b"}, err: "no need to specify a resource type as a separate argument"},
		{args: []string{"deploy/"}, err: "a deployment name is required"},
	} {
		reqs, withKind, err := getArgs(tc.args)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("getArgs(%q): error %v, want one containing %q", tc.args, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("getArgs(%q): %v", tc.args, err)
			continue
		}
		var got []string
		for _, r := range reqs {
			got = append(got, r.info.Kind+":"+strings.Join(r.names, ","))
		}
		if strings.Join(got, ";") != tc.want || withKind != tc.withKind {
			t.Errorf("getArgs(%q) = %q, %v; want %q, %v", tc.args, strings.Join(got, ";"), withKind, tc.want, tc.withKind)
		}
	}
}

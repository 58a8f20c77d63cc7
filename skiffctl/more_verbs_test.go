package skiffctl_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/test/apicluster"
)

func ctx10(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestNodeVerbs: cordon, uncordon and taint, with kubectl's messages.
func TestNodeVerbs(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	s, conn := c.Addr(0), dial(t, c)
	for _, n := range []string{"w1", "w2"} {
		if _, err := client.For[*corev1.Node](conn).Create(ctx10(t), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n, Labels: map[string]string{"pool": "a"}}}); err != nil {
			t.Fatal(err)
		}
	}
	node := func(name string) *corev1.Node {
		n, err := client.For[*corev1.Node](conn).Get(ctx10(t), "", name)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	contains(t, "cordon", must(t, s, "cordon", "w1"), "node/w1 cordoned")
	contains(t, "cordon again", must(t, s, "cordon", "node/w1"), "node/w1 already cordoned")
	if !node("w1").Spec.Unschedulable {
		t.Error("w1 is not unschedulable")
	}
	contains(t, "get nodes", must(t, s, "get", "nodes"), "SchedulingDisabled")
	contains(t, "uncordon -l", must(t, s, "uncordon", "-l", "pool=a"), "node/w1 uncordoned", "node/w2 already uncordoned")

	contains(t, "taint", must(t, s, "taint", "nodes", "w1", "dedicated=shop:NoSchedule", "gpu:NoExecute"), "node/w1 tainted")
	if ts := node("w1").Spec.Taints; len(ts) != 2 || ts[0].Key != "dedicated" || ts[0].Value != "shop" || ts[0].Effect != corev1.TaintEffectNoSchedule {
		t.Errorf("taints %v", ts)
	}
	fails(t, s, "", "node w1 already has dedicated taint(s) with same effect(s) and --overwrite is false", "taint", "node", "w1", "dedicated=other:NoSchedule")
	must(t, s, "taint", "node", "w1", "dedicated=other:NoSchedule", "--overwrite")
	if ts := node("w1").Spec.Taints; ts[0].Value != "other" {
		t.Errorf("overwritten taints %v", ts)
	}
	contains(t, "untaint", must(t, s, "taint", "node", "w1", "dedicated:NoSchedule-", "gpu-"), "node/w1 untainted")
	if ts := node("w1").Spec.Taints; len(ts) != 0 {
		t.Errorf("taints left %v", ts)
	}
	fails(t, s, "", `taint "gpu" not found`, "taint", "node", "w1", "gpu-")
	fails(t, s, "", "invalid taint effect", "taint", "node", "w1", "a=b:Sometimes")
	fails(t, s, "", "a taint to add is KEY[=VALUE]:EFFECT", "taint", "node", "w1", "a=b")
	fails(t, s, "", `node "w9" not found`, "cordon", "w9")
}

// TestWait: wait --for=condition, --for=jsonpath and --for=delete, and its timeout.
func TestWait(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	s, conn := c.Addr(0), dial(t, c)
	applyStdin(t, s, webDeployment)
	deps := client.For[*appsv1.Deployment](conn)

	var out, errs string
	var code int
	done := make(chan struct{})
	go func() {
		defer close(done)
		code, out, errs = run(t, s, "", "wait", "deployment/web", "--for=condition=Available", "--timeout=20s")
	}()
	// The status a controller would write.
	d := getDeployment(t, conn, "web")
	d.Status.ObservedGeneration = d.Generation
	d.Status.Conditions = []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable"}}
	if _, err := deps.UpdateStatus(ctx10(t), d); err != nil {
		t.Fatal(err)
	}
	<-done
	if code != 0 || out != "deployment.apps/web condition met\n" {
		t.Fatalf("wait --for=condition=Available: %d %q %q", code, out, errs)
	}
	contains(t, "jsonpath", must(t, s, "wait", "deploy", "web", "--for=jsonpath={.status.conditions[0].reason}=MinimumReplicasAvailable"), "condition met")
	contains(t, "jsonpath exists", must(t, s, "wait", "deploy", "-l", "team=a", "--for", "jsonpath={.spec.replicas}"), "deployment.apps/web condition met")
	fails(t, s, "", "timed out waiting for the condition on deployments/web", "wait", "deploy/web", "--for=condition=Progressing", "--timeout=200ms")
	fails(t, s, "", "timed out waiting for the condition on deployments/web", "wait", "deploy/web", "--for=condition=Available=False", "--timeout=0")
	fails(t, s, "", "--for: Unsupported value", "wait", "deploy/web", "--for=ready")

	deleted := make(chan struct{})
	go func() {
		defer close(deleted)
		code, out, errs = run(t, s, "", "wait", "deploy/web", "--for=delete", "--timeout=20s")
	}()
	must(t, s, "delete", "deploy", "web")
	<-deleted
	if code != 0 || out != "deployment.apps/web deleted\n" {
		t.Fatalf("wait --for=delete: %d %q %q", code, out, errs)
	}
}

// TestRolloutHistoryAndRestart: a revision's pod template, and a restart's annotation.
func TestRolloutHistoryAndRestart(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	s, conn := c.Addr(0), dial(t, c)
	applyStdin(t, s, webDeployment)
	d := getDeployment(t, conn, "web")
	// The ReplicaSet the controller would make for revision 1.
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "default",
		Annotations:     map[string]string{"deployment.kubernetes.io/revision": "1"},
		OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(d, appsv1.SchemeGroupVersion.WithKind("Deployment"))}},
		Spec: appsv1.ReplicaSetSpec{Selector: d.Spec.Selector, Template: *d.Spec.Template.DeepCopy()}}
	rs.Spec.Template.Labels["pod-template-hash"] = "1"
	rs.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web", "pod-template-hash": "1"}}
	if _, err := client.For[*appsv1.ReplicaSet](conn).Create(ctx10(t), rs); err != nil {
		t.Fatal(err)
	}
	out := must(t, s, "rollout", "history", "deployment/web", "--revision", "1")
	contains(t, "rollout history --revision", out, "deployment.apps/web with revision #1", "Pod Template:", "pod-template-hash=1", "Image:", "busybox:1.36")
	fails(t, s, "", "unable to find the specified revision", "rollout", "history", "deploy/web", "--revision", "7")

	contains(t, "restart", must(t, s, "rollout", "restart", "deployment/web"), "deployment.apps/web restarted")
	if d := getDeployment(t, conn, "web"); d.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] == "" || d.Generation != 2 {
		t.Errorf("restart: annotations %v generation %d", d.Spec.Template.Annotations, d.Generation)
	}
}

// TestDeleteAndDescribeBySelector: delete -l and --all; describe without a name, with
// -l, and by name prefix.
func TestDeleteAndDescribeBySelector(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	s := c.Addr(0)
	for _, n := range []string{"web-1", "web-2", "db-1"} {
		must(t, s, "create", "configmap", n)
	}
	must(t, s, "label", "cm", "web-1", "web-2", "app=web")
	out := must(t, s, "describe", "cm")
	if strings.Count(out, "Name:") != 3 {
		t.Errorf("describe cm:\n%s", out)
	}
	if out := must(t, s, "describe", "cm", "-l", "app=web"); strings.Count(out, "Name:") != 2 || strings.Contains(out, "db-1") {
		t.Errorf("describe cm -l:\n%s", out)
	}
	if out := must(t, s, "describe", "cm", "web-"); strings.Count(out, "Name:") != 2 {
		t.Errorf("describe by prefix:\n%s", out)
	}
	fails(t, s, "", `configmap "nope" not found`, "describe", "cm", "nope")

	out = must(t, s, "delete", "cm", "-l", "app=web")
	contains(t, "delete -l", out, "configmap/web-1 deleted", "configmap/web-2 deleted")
	if strings.Contains(out, "db-1") {
		t.Errorf("delete -l deleted db-1: %s", out)
	}
	fails(t, s, "", "resource(s) were provided, but no name was specified", "delete", "cm")
	contains(t, "delete --all", must(t, s, "delete", "cm", "--all"), "configmap/db-1 deleted")
	code, _, errs := run(t, s, "", "delete", "cm", "--all")
	if code != 0 || !strings.Contains(errs, "No resources found in default namespace.") {
		t.Errorf("delete --all of nothing: %d %q", code, errs)
	}
}

// TestInfoVerbs: version, api-resources and explain.
func TestInfoVerbs(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	s := c.Addr(0)
	contains(t, "version", must(t, s, "version"), "Client Version: v", "Server Version: v")
	contains(t, "version -o json", must(t, s, "version", "--client", "-o", "json"), `"clientVersion"`, `"gitVersion"`)

	out := must(t, s, "api-resources")
	contains(t, "api-resources", out, "NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND", "apps/v1")
	// Column widths follow the longest name, which grows as kinds are added.
	if !regexp.MustCompile(`(?m)^deployments +deploy +apps/v1 +true +Deployment$`).MatchString(out) {
		t.Errorf("api-resources has no deployments row:\n%s", out)
	}
	contains(t, "api-resources -o name", must(t, s, "api-resources", "-o", "name"), "pods\n", "deployments.apps\n")

	out = must(t, s, "explain", "deployment.spec.strategy")
	contains(t, "explain", out, "GROUP:      apps", "KIND:       Deployment", "FIELD: strategy <DeploymentStrategy>",
		"The deployment strategy to use to replace existing pods with new ones.", "rollingUpdate\t<RollingUpdateDeployment>", "type\t<string>")
	contains(t, "explain pods", must(t, s, "explain", "pods"), "KIND:       Pod", "spec\t<PodSpec>", "Pod is a collection of containers")
	contains(t, "explain --recursive", must(t, s, "explain", "po.spec.containers", "--recursive"), "FIELD: containers <[]Container>", "  env\t<[]EnvVar>\n    name\t<string>")
	fails(t, s, "", `field "nope" does not exist in deployments.spec`, "explain", "deploy.spec.nope")
}

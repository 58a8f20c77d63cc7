package k8sclients

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiffhq/skiff/test/waitfor"
)

const crontabCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: crontabs.stable.example.com
spec:
  group: stable.example.com
  scope: Namespaced
  names: {plural: crontabs, singular: crontab, kind: CronTab, shortNames: [ct]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Spec, type: string, jsonPath: .spec.cronSpec}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              cronSpec: {type: string}
              image: {type: string}
              replicas: {type: integer, default: 1}
    selectableFields:
    - {jsonPath: .spec.image}
`

const crontab = `apiVersion: stable.example.com/v1
kind: CronTab
metadata:
  name: nightly
spec:
  cronSpec: "0 3 * * *"
  image: %s
`

// TestKubectlCustomResources: kubectl applies a CRD and a custom resource of it, finds
// the resource by its short name with the CRD's columns and by its selectable field,
// and client-go's dynamic client creates, lists and deletes custom resources.
func TestKubectlCustomResources(t *testing.T) {
	s := startSkiff(t)
	apply := func(manifest string) string {
		t.Helper()
		out, err := s.runEnv(nil, manifest, "apply", "-f", "-")
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if out := apply(crontabCRD); !strings.Contains(out, "customresourcedefinition.apiextensions.k8s.io/crontabs.stable.example.com created") {
		t.Fatalf("apply CRD: %s", out)
	}
	s.must("wait", "--for", "condition=established", "--timeout=60s", "crd/crontabs.stable.example.com")
	s.wantOut(`(?m)^crontabs\s+ct\s+stable.example.com/v1\s+true\s+CronTab$`, "api-resources", "--api-group=stable.example.com")
	// kubectl's discovery cache may predate the CRD: it refreshes on a miss.
	waitfor.Condition(t, time.Minute, "kubectl apply of a CronTab", func() (bool, string) {
		out, err := s.runEnv(nil, fmt.Sprintf(crontab, "busybox"), "apply", "-f", "-")
		return err == nil && strings.Contains(out, "crontab.stable.example.com/nightly created"), out
	})
	s.wantOut(`(?m)^NAME\s+SPEC\s+AGE\nnightly\s+0 3 \* \* \*\s+\S+$`, "get", "ct")
	s.wantOut(`^1$`, "get", "crontab", "nightly", "-o", "jsonpath={.spec.replicas}")
	// apply again: kubectl's merge patch of a custom resource.
	if out := apply(fmt.Sprintf(crontab, "nginx")); !strings.Contains(out, "crontab.stable.example.com/nightly configured") {
		t.Fatalf("apply again: %s", out)
	}
	s.wantOut(`^nginx 2$`, "get", "ct", "nightly", "-o", "jsonpath={.spec.image} {.metadata.generation}")
	// The CRD's selectable field.
	s.wantOut(`^nightly$`, "get", "ct", "--field-selector", "spec.image=nginx", "-o", "jsonpath={.items[*].metadata.name}")
	s.wantOut(`^$`, "get", "ct", "--field-selector", "spec.image=busybox", "-o", "jsonpath={.items[*].metadata.name}")
	if out, err := s.run("get", "ct", "--field-selector", "spec.cronSpec=x"); err == nil || !strings.Contains(out, "field label not supported: spec.cronSpec") {
		t.Errorf("get by a field not selectable: %v %s", err, out)
	}

	// client-go's dynamic client.
	cfg, err := clientcmd.BuildConfigFromFlags("", s.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, time.Minute)
	res := dc.Resource(schema.GroupVersionResource{Group: "stable.example.com", Version: "v1", Resource: "crontabs"}).Namespace("default")
	obj := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "stable.example.com/v1", "kind": "CronTab",
		"metadata": map[string]any{"name": "hourly"}, "spec": map[string]any{"cronSpec": "0 * * * *"}}}
	created, err := res.Create(ctx, obj, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r, _, _ := unstructured.NestedInt64(created.Object, "spec", "replicas"); r != 1 {
		t.Errorf("created = %v", created.Object)
	}
	l, err := res.List(ctx, metav1.ListOptions{})
	if err != nil || len(l.Items) != 2 {
		t.Fatalf("list = %v, %v", l, err)
	}
	if err := res.Delete(ctx, "hourly", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// A deleted namespace is emptied of its custom resources by the namespace controller.
	s.must("create", "namespace", "crns")
	inNS := dc.Resource(schema.GroupVersionResource{Group: "stable.example.com", Version: "v1", Resource: "crontabs"}).Namespace("crns")
	obj.SetName("in-ns")
	if _, err := inNS.Create(ctx, obj, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	s.must("delete", "namespace", "crns", "--timeout=90s")
	if l, err := inNS.List(ctx, metav1.ListOptions{}); err != nil || len(l.Items) != 0 {
		t.Errorf("custom resources left in a deleted namespace: %v, %v", l, err)
	}
	s.must("delete", "crd", "crontabs.stable.example.com", "--timeout=60s")
	if out, err := s.run("get", "crontabs.stable.example.com"); err == nil {
		t.Errorf("crontabs still served after the CRD's deletion: %s", out)
	}
}

const gadgetCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: gadgets, singular: gadget, kind: Gadget}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        description: A Gadget is a thing with replicas.
        properties:
          spec:
            type: object
            description: What the gadget should be.
            x-kubernetes-validations:
            - rule: self.replicas <= self.maxReplicas
              message: replicas may not exceed maxReplicas
            properties:
              replicas: {type: integer, description: How many gadgets run.}
              maxReplicas: {type: integer, default: 10}
          status:
            type: object
            properties:
              ready: {type: boolean}
`

func gadget(replicas int) string {
	return fmt.Sprintf("apiVersion: example.com/v1\nkind: Gadget\nmetadata:\n  name: g\nspec:\n  replicas: %d\n", replicas)
}

// TestKubectlCustomResourceSchemas: a CRD's schema at work with kubectl: explain reads
// it from the OpenAPI documents, apply --validate=strict refuses a field it does not
// have, apply --server-side takes ownership and a second manager's apply conflicts
// (then forces), as does apply --server-side --subresource=status, and a custom
// resource that breaks a CEL rule is refused with the rule's message.
func TestKubectlCustomResourceSchemas(t *testing.T) {
	s := startSkiff(t)
	if _, err := s.runEnv(nil, gadgetCRD, "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	s.must("wait", "--for", "condition=established", "--timeout=60s", "crd/gadgets.example.com")

	// kubectl's discovery cache may predate the CRD: it refreshes on a miss.
	waitfor.Condition(t, time.Minute, "kubectl explain of a Gadget", func() (bool, string) {
		out, err := s.run("explain", "gadgets.spec")
		return err == nil && regexp.MustCompile(`KIND:\s+Gadget`).MatchString(out) && strings.Contains(out, "What the gadget should be.") &&
			regexp.MustCompile(`replicas\s+<integer>`).MatchString(out) && strings.Contains(out, "How many gadgets run."), out
	})

	// Server-side apply: kubectl's manager owns replicas; another's apply conflicts.
	waitfor.Condition(t, time.Minute, "kubectl apply --server-side of a Gadget", func() (bool, string) {
		out, err := s.runEnv(nil, gadget(2), "apply", "--server-side", "-f", "-")
		return err == nil && strings.Contains(out, "gadget.example.com/g serverside-applied"), out
	})
	s.wantOut(`"manager":"kubectl","operation":"Apply"`, "get", "gadget", "g", "-o", "jsonpath={.metadata.managedFields}")
	out, err := s.runEnv(nil, gadget(3), "apply", "--server-side", "--field-manager=other", "-f", "-")
	if err == nil || !strings.Contains(out, `Apply failed with 1 conflict: conflict with "kubectl": .spec.replicas`) {
		t.Fatalf("a second manager's apply: %v: %s", err, out)
	}
	if out, err := s.runEnv(nil, gadget(3), "apply", "--server-side", "--field-manager=other", "--force-conflicts", "-f", "-"); err != nil {
		t.Fatalf("forced apply: %v: %s", err, out)
	}
	s.wantOut(`^3$`, "get", "gadget", "g", "-o", "jsonpath={.spec.replicas}")
	// Apply to the status subresource: its manager's entry says so, the spec it carries
	// is ignored, another manager's apply of the same field conflicts until forced.
	ready := func(ready bool) string { return gadget(5) + fmt.Sprintf("status:\n  ready: %t\n", ready) }
	if out, err := s.runEnv(nil, ready(true), "apply", "--server-side", "--subresource=status", "--field-manager=ctrl", "-f", "-"); err != nil ||
		!strings.Contains(out, "gadget.example.com/g serverside-applied") {
		t.Fatalf("apply --subresource=status: %v: %s", err, out)
	}
	s.wantOut(`^3 true status$`, "get", "gadget", "g", "-o", `jsonpath={.spec.replicas} {.status.ready} {.metadata.managedFields[?(@.manager=="ctrl")].subresource}`)
	out, err = s.runEnv(nil, ready(false), "apply", "--server-side", "--subresource=status", "--field-manager=other-ctrl", "-f", "-")
	if err == nil || !strings.Contains(out, `Apply failed with 1 conflict: conflict with "ctrl" with subresource "status": .status.ready`) {
		t.Fatalf("a second manager's status apply: %v: %s", err, out)
	}
	if out, err := s.runEnv(nil, ready(false), "apply", "--server-side", "--subresource=status", "--field-manager=other-ctrl", "--force-conflicts", "-f", "-"); err != nil {
		t.Fatalf("forced status apply: %v: %s", err, out)
	}
	s.wantOut(`^3 false$`, "get", "gadget", "g", "-o", "jsonpath={.spec.replicas} {.status.ready}")
	// Strategic merge patch: refused for custom resources, as Kubernetes does.
	if out, err := s.run("patch", "gadget", "g", "--type=strategic", "-p", `{"spec":{"replicas":4}}`); err == nil ||
		!strings.Contains(out, "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml") {
		t.Errorf("strategic merge patch of a custom resource: %v: %s", err, out)
	}

	// A field the schema does not have, with --validate=strict.
	if out, err := s.runEnv(nil, gadget(1)+"  colour: red\n", "apply", "--validate=strict", "-f", "-"); err == nil || !strings.Contains(out, `unknown field "spec.colour"`) {
		t.Errorf("apply --validate=strict of an unknown field: %v: %s", err, out)
	}

	// The CEL rule, with its message.
	if out, err := s.runEnv(nil, gadget(11), "apply", "--server-side", "--force-conflicts", "-f", "-"); err == nil ||
		!strings.Contains(out, `The Gadget "g" is invalid: spec: Invalid value: replicas may not exceed maxReplicas`) {
		t.Errorf("a Gadget breaking the rule: %v: %s", err, out)
	}
	if out, err := s.runEnv(nil, strings.Replace(gadget(20), "name: g", "name: h", 1), "create", "-f", "-"); err == nil ||
		!strings.Contains(out, `The Gadget "h" is invalid: spec: Invalid value: replicas may not exceed maxReplicas`) {
		t.Errorf("a Gadget created breaking the rule: %v: %s", err, out)
	}
}

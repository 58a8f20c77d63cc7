package k8sclients

import (
	"fmt"
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
// the resource by its short name with the CRD's columns, and client-go's dynamic client
// creates, lists and deletes custom resources.
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

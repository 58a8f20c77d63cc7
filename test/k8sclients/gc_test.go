package k8sclients

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/test/waitfor"
)

// ownedManifest is a ConfigMap, a Secret and a Service, each owned (blocking its
// deletion) by the ConfigMap %[1]s of uid %[2]s.
const ownedManifest = `apiVersion: v1
kind: ConfigMap
metadata:
  name: %[1]s-cm
  ownerReferences:
  - {apiVersion: v1, kind: ConfigMap, name: %[1]s, uid: %[2]s, blockOwnerDeletion: true}
data: {k: v}
---
apiVersion: v1
kind: Secret
metadata:
  name: %[1]s-secret
  ownerReferences:
  - {apiVersion: v1, kind: ConfigMap, name: %[1]s, uid: %[2]s, blockOwnerDeletion: true}
stringData: {password: x}
---
apiVersion: v1
kind: Service
metadata:
  name: %[1]s-svc
  ownerReferences:
  - {apiVersion: v1, kind: ConfigMap, name: %[1]s, uid: %[2]s, blockOwnerDeletion: true}
spec:
  ports: [{port: 80}]
`

// TestKubectlCascadeEveryKind: kubectl delete --cascade of a ConfigMap owning a
// ConfigMap, a Secret and a Service, kinds no controller caches: foreground (kubectl
// waits for the owner, which goes after its dependents), background and orphan.
func TestKubectlCascadeEveryKind(t *testing.T) {
	s := startSkiff(t)
	dir := t.TempDir()
	owned := func(owner string) {
		t.Helper()
		s.must("create", "configmap", owner)
		uid := strings.TrimSpace(s.must("get", "configmap", owner, "-o", "jsonpath={.metadata.uid}"))
		manifest := filepath.Join(dir, owner+".yaml")
		if err := os.WriteFile(manifest, []byte(fmt.Sprintf(ownedManifest, owner, uid)), 0o644); err != nil {
			t.Fatal(err)
		}
		s.must("create", "-f", manifest)
	}
	dependents := []string{"configmap/%s-cm", "secret/%s-secret", "service/%s-svc"}
	notFound := func(owner string) func() (bool, string) {
		return func() (bool, string) {
			for _, d := range dependents {
				if out, err := s.run("get", fmt.Sprintf(d, owner)); err == nil || !strings.Contains(out, "NotFound") {
					return false, out
				}
			}
			return true, ""
		}
	}

	owned("fg")
	s.wantOut(`^configmap "fg" deleted`, "delete", "configmap", "fg", "--cascade=foreground", "--timeout=60s")
	if ok, out := notFound("fg")(); !ok {
		t.Fatalf("the owner deleted in the foreground went before its dependents: %s", out)
	}

	owned("bg")
	s.wantOut(`^configmap "bg" deleted`, "delete", "configmap", "bg", "--cascade=background")
	waitfor.Condition(t, 60*time.Second, "the background owner's dependents collected", notFound("bg"))

	owned("or")
	s.wantOut(`^configmap "or" deleted`, "delete", "configmap", "or", "--cascade=orphan", "--timeout=60s")
	for _, d := range dependents {
		s.wantOut(`^refs=$`, "get", fmt.Sprintf(d, "or"), "-o", "jsonpath=refs={.metadata.ownerReferences}")
	}
}

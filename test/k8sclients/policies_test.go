package k8sclients

import (
	"strings"
	"testing"
)

// TestKubectlValidatingAdmissionPolicy: kubectl applies a ValidatingAdmissionPolicy
// (its CEL validated) and its binding, lists them with Kubernetes' columns, sees a
// Deployment of more than 5 replicas refused in Kubernetes' words and a warning for a
// ConfigMap of a Warn binding; a policy whose expression does not compile is refused at
// its field path.
func TestKubectlValidatingAdmissionPolicy(t *testing.T) {
	s := startSkiff(t)
	const policies = `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: max-replicas
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - apiGroups: ["apps"]
      apiVersions: ["v1"]
      operations: ["CREATE", "UPDATE"]
      resources: ["deployments"]
  validations:
  - expression: "object.spec.replicas <= 5"
    messageExpression: "'replicas must be no greater than 5, got ' + string(object.spec.replicas)"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: max-replicas
spec:
  policyName: max-replicas
  validationActions: [Deny]
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: owner
spec:
  matchConstraints:
    resourceRules:
    - apiGroups: [""]
      apiVersions: ["v1"]
      operations: ["CREATE"]
      resources: ["configmaps"]
  validations:
  - expression: "has(object.metadata.labels) && 'owner' in object.metadata.labels"
    message: "an owner label is expected"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: owner-warn
spec:
  policyName: owner
  validationActions: [Warn]
`
	if out, err := s.runEnv(nil, policies, "apply", "-f", "-"); err != nil ||
		!strings.Contains(out, "validatingadmissionpolicy.admissionregistration.k8s.io/max-replicas created") ||
		!strings.Contains(out, "validatingadmissionpolicybinding.admissionregistration.k8s.io/owner-warn created") {
		t.Fatalf("apply the policies: %v %s", err, out)
	}
	s.wantOut(`(?m)^NAME\s+VALIDATIONS\s+PARAMKIND\s+AGE\nmax-replicas\s+1\s+<unset>\s+\S+\nowner\s+1\s+<unset>\s+\S+\n$`, "get", "validatingadmissionpolicies")
	s.wantOut(`(?m)^NAME\s+POLICYNAME\s+PARAMREF\s+AGE\nmax-replicas\s+max-replicas\s+<unset>\s+\S+\nowner-warn\s+owner\s+<unset>\s+\S+\n$`, "get", "validatingadmissionpolicybindings")

	out, errOut, err := s.runStreams(nil, "", "create", "deployment", "big", "--image=nginx:1.25", "--replicas=6")
	if err == nil || !strings.Contains(errOut, `deployments.apps "big" is forbidden: ValidatingAdmissionPolicy 'max-replicas' with binding 'max-replicas' denied request: replicas must be no greater than 5, got 6`) {
		t.Errorf("a Deployment of 6 replicas: %v\n%s%s", err, out, errOut)
	}
	if out, err := s.run("create", "deployment", "small", "--image=nginx:1.25", "--replicas=2"); err != nil {
		t.Errorf("a Deployment of 2 replicas: %v %s", err, out)
	}
	out, errOut, err = s.runStreams(nil, "", "create", "configmap", "unowned", "--from-literal=a=b")
	if err != nil || !strings.Contains(out, "configmap/unowned created") ||
		!strings.Contains(errOut, "Warning: Validation failed for ValidatingAdmissionPolicy 'owner' with binding 'owner-warn': an owner label is expected") {
		t.Errorf("a ConfigMap without owner: %v\n%s%s", err, out, errOut)
	}

	const bad = `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: bad
spec:
  matchConstraints:
    resourceRules:
    - apiGroups: ["apps"]
      apiVersions: ["v1"]
      operations: ["CREATE"]
      resources: ["deployments"]
  validations:
  - expression: "object.spec.replicas"
`
	out, errOut, err = s.runStreams(nil, bad, "apply", "-f", "-")
	if err == nil || !strings.Contains(errOut, `spec.validations[0].expression: Invalid value: "object.spec.replicas": must evaluate to bool`) {
		t.Errorf("a policy that does not compile: %v\n%s%s", err, out, errOut)
	}
}

// TestKubectlMutatingAdmissionPolicy: kubectl applies a MutatingAdmissionPolicy (its CEL
// compiled when written) and its binding, lists them with Kubernetes' columns, and the
// Deployment it then creates is mutated: the label of the policy's ApplyConfiguration
// merged beside its own, the annotation of its JSONPatch, the sidecar container added
// beside the Deployment's own (nginx), merged by name. A policy whose mutation is not an Object is
// refused at its field path.
func TestKubectlMutatingAdmissionPolicy(t *testing.T) {
	s := startSkiff(t)
	const policy = `apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicy
metadata:
  name: platform
spec:
  matchConstraints:
    resourceRules:
    - apiGroups: ["apps"]
      apiVersions: ["v1"]
      operations: ["CREATE"]
      resources: ["deployments"]
  matchConditions:
  - name: labelled
    expression: "has(object.metadata.labels) && 'app' in object.metadata.labels"
  reinvocationPolicy: Never
  mutations:
  - patchType: ApplyConfiguration
    applyConfiguration:
      expression: >
        Object{
          metadata: Object.metadata{labels: {"owner": "platform"}},
          spec: Object.spec{template: Object.spec.template{spec: Object.spec.template.spec{
            containers: [Object.spec.template.spec.containers{name: "sidecar", image: "busybox:1.36"}]
          }}}
        }
  - patchType: JSONPatch
    jsonPatch:
      expression: >
        [JSONPatch{op: "add", path: "/metadata/annotations", value: {"team": "platform"}}]
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicyBinding
metadata:
  name: platform
spec:
  policyName: platform
`
	if out, err := s.runEnv(nil, policy, "apply", "-f", "-"); err != nil ||
		!strings.Contains(out, "mutatingadmissionpolicy.admissionregistration.k8s.io/platform created") ||
		!strings.Contains(out, "mutatingadmissionpolicybinding.admissionregistration.k8s.io/platform created") {
		t.Fatalf("apply the policy: %v %s", err, out)
	}
	s.wantOut(`(?m)^NAME\s+MUTATIONS\s+PARAMKIND\s+AGE\nplatform\s+2\s+<unset>\s+\S+\n$`, "get", "mutatingadmissionpolicies")
	s.wantOut(`(?m)^NAME\s+POLICYNAME\s+PARAMREF\s+AGE\nplatform\s+platform\s+<unset>\s+\S+\n$`, "get", "mutatingadmissionpolicybindings")

	if out, err := s.run("create", "deployment", "web", "--image=nginx:1.25"); err != nil {
		t.Fatalf("create a Deployment: %v %s", err, out)
	}
	s.wantOut(`^app=web,owner=platform platform nginx,sidecar$`, "get", "deployment", "web", "-o",
		`jsonpath=app={.metadata.labels.app},owner={.metadata.labels.owner} {.metadata.annotations.team} {.spec.template.spec.containers[0].name},{.spec.template.spec.containers[1].name}`)

	const bad = `apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicy
metadata:
  name: bad
spec:
  matchConstraints:
    resourceRules:
    - apiGroups: ["apps"]
      apiVersions: ["v1"]
      operations: ["CREATE"]
      resources: ["deployments"]
  reinvocationPolicy: Never
  mutations:
  - patchType: ApplyConfiguration
    applyConfiguration:
      expression: "object.metadata"
`
	out, errOut, err := s.runStreams(nil, bad, "apply", "-f", "-")
	if err == nil || !strings.Contains(errOut, `spec.mutations[0].applyConfiguration.expression: Invalid value: "object.metadata": must evaluate to Object`) {
		t.Errorf("a policy that does not compile: %v\n%s%s", err, out, errOut)
	}
}

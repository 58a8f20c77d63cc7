package apiserver_test

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/test/apicluster"
)

// wantInvalid checks that r is a 422 whose message holds each of msgs.
func (rc *restClient) wantInvalid(r reply, what string, msgs ...string) {
	rc.t.Helper()
	st := rc.want(r, 422, what).status()
	for _, m := range msgs {
		if !strings.Contains(st.Message, m) {
			rc.t.Errorf("%s: message %q, want %q in it", what, st.Message, m)
		}
	}
}

// TestRESTEphemeralContainers: pods/ephemeralcontainers adds ephemeral containers to a
// pod (a patch, as kubectl debug sends, or a PUT of the pod), counts a generation, and
// refuses what Kubernetes refuses in its words; nothing else of the pod changes through
// it, and neither create nor a plain update may set them.
func TestRESTEphemeralContainers(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	rc := newREST(t, c.Addr(0), true)
	base := "/api/v1/namespaces/default/pods"
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "target"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "busybox:1.36"}}}}
	kinds.SetTypeMeta(pod)
	withEC := pod.DeepCopy()
	withEC.Name = "born-with"
	withEC.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "d", Image: "busybox:1.36"}}}
	rc.wantInvalid(rc.do("POST", base, "application/json", "", withEC), "create with one", "spec.ephemeralContainers: Forbidden: cannot be set on create")
	rc.want(rc.do("POST", base, "application/json", "", pod), 201, "create")

	// kubectl debug's patch: a strategic merge of the list, by name.
	out := decodeJSON[corev1.Pod](t, rc.want(rc.do("PATCH", base+"/target/ephemeralcontainers", "application/strategic-merge-patch+json", "",
		`{"metadata":{"labels":{"sneaky":"1"}},"spec":{"ephemeralContainers":[{"name":"debugger","image":"busybox:1.36","stdin":true,"tty":true,"targetContainerName":"app"}]}}`),
		200, "patch ephemeralcontainers").body)
	if ec := out.Spec.EphemeralContainers; len(ec) != 1 || ec[0].TargetContainerName != "app" || ec[0].TerminationMessagePolicy != corev1.TerminationMessageReadFile ||
		ec[0].ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("ephemeral containers = %+v", ec)
	}
	if out.Generation != 2 || out.Labels["sneaky"] != "" {
		t.Errorf("generation %d, labels %v: want 2 and none (only ephemeralContainers change)", out.Generation, out.Labels)
	}
	got := decodeJSON[corev1.Pod](t, rc.want(rc.do("GET", base+"/target/ephemeralcontainers", "", "", nil), 200, "get").body)
	if len(got.Spec.EphemeralContainers) != 1 || got.Kind != "Pod" {
		t.Errorf("get ephemeralcontainers = %s %+v", got.Kind, got.Spec.EphemeralContainers)
	}

	// PUT: the pod with one more.
	put := got.DeepCopy()
	put.Spec.EphemeralContainers = append(put.Spec.EphemeralContainers, corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debugger2", Image: "busybox:1.36"}})
	out = decodeJSON[corev1.Pod](t, rc.want(rc.do("PUT", base+"/target/ephemeralcontainers", "application/json", "", put), 200, "put").body)
	if len(out.Spec.EphemeralContainers) != 2 || out.Generation != 3 {
		t.Errorf("after put: %d ephemeral containers, generation %d", len(out.Spec.EphemeralContainers), out.Generation)
	}
	rc.want(rc.do("PUT", base+"/target/ephemeralcontainers", "application/json", "", put), 409, "a stale resourceVersion")

	for _, tc := range []struct {
		name, patch string
		msgs        []string
	}{
		{"ports", `[{"op":"add","path":"/spec/ephemeralContainers/-","value":{"name":"p","image":"x","ports":[{"containerPort":80}]}}]`,
			[]string{"spec.ephemeralContainers[2].ports: Forbidden: cannot be set for an Ephemeral Container"}},
		{"resources and probes", `[{"op":"add","path":"/spec/ephemeralContainers/-","value":{"name":"p","image":"x","resources":{"limits":{"cpu":"1"}},"readinessProbe":{"exec":{"command":["true"]}}}}]`,
			[]string{"spec.ephemeralContainers[2].resources: Forbidden: cannot be set for an Ephemeral Container",
				"spec.ephemeralContainers[2].readinessProbe: Forbidden: cannot be set for an Ephemeral Container"}},
		{"a taken name", `[{"op":"add","path":"/spec/ephemeralContainers/-","value":{"name":"app","image":"x"}}]`,
			[]string{`spec.ephemeralContainers[2].name: Duplicate value: "app"`}},
		{"an unknown target", `[{"op":"add","path":"/spec/ephemeralContainers/-","value":{"name":"e","image":"x","targetContainerName":"nope"}}]`,
			[]string{`spec.ephemeralContainers[2].targetContainerName: Not found: "nope"`}},
		{"a subPath", `[{"op":"add","path":"/spec/ephemeralContainers/-","value":{"name":"e","image":"x","volumeMounts":[{"name":"v","mountPath":"/v","subPath":"s"}]}}]`,
			[]string{"spec.ephemeralContainers[2].volumeMounts[0].subPath: Forbidden: cannot be set for an Ephemeral Container"}},
		{"a removal", `[{"op":"remove","path":"/spec/ephemeralContainers/1"}]`,
			[]string{`spec.ephemeralContainers: Forbidden: existing ephemeral containers "debugger2" may not be removed`}},
		{"a change", `[{"op":"replace","path":"/spec/ephemeralContainers/0/image","value":"busybox:1.37"}]`,
			[]string{`spec.ephemeralContainers: Forbidden: existing ephemeral containers "debugger" may not be changed`}},
	} {
		rc.wantInvalid(rc.do("PATCH", base+"/target/ephemeralcontainers", "application/json-patch+json", "", tc.patch), tc.name, tc.msgs...)
	}
	// A plain update may not change them.
	cur := decodeJSON[corev1.Pod](t, rc.want(rc.do("GET", base+"/target", "", "", nil), 200, "get pod").body)
	cur.Spec.EphemeralContainers = cur.Spec.EphemeralContainers[:1]
	rc.wantInvalid(rc.do("PUT", base+"/target", "application/json", "", cur), "a plain update", "spec: Forbidden: pod updates may not change fields")
}

// TestRESTResize: pods/resize changes the cpu and memory of a pod's containers (and
// their resize policy), counts a generation, and refuses, in Kubernetes' words, what
// would change the QoS class, remove a request or a limit, or touch another resource;
// another field written through it does not change.
func TestRESTResize(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	rc := newREST(t, c.Addr(0), true)
	base := "/api/v1/namespaces/default/pods"
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "r"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "busybox:1.36",
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
				Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("200m"), corev1.ResourceMemory: resource.MustParse("128Mi"),
					corev1.ResourceEphemeralStorage: resource.MustParse("1Gi")}}}}}}
	kinds.SetTypeMeta(pod)
	rc.want(rc.do("POST", base, "application/json", "", pod), 201, "create")
	// kubectl patch --subresource resize's strategic merge.
	out := decodeJSON[corev1.Pod](t, rc.want(rc.do("PATCH", base+"/r/resize", "application/strategic-merge-patch+json", "",
		`{"spec":{"containers":[{"name":"app","image":"other:1","resources":{"requests":{"cpu":"150m"},"limits":{"cpu":"300m","memory":"256Mi"}},`+
			`"resizePolicy":[{"resourceName":"memory","restartPolicy":"RestartContainer"}]}]}}`), 200, "resize").body)
	c0 := out.Spec.Containers[0]
	if cpu := c0.Resources.Limits[corev1.ResourceCPU]; cpu.String() != "300m" || c0.Image != "busybox:1.36" || out.Generation != 2 ||
		len(c0.ResizePolicy) != 1 || c0.ResizePolicy[0].RestartPolicy != corev1.RestartContainer {
		t.Errorf("after resize: %+v image %s generation %d", c0.Resources, c0.Image, out.Generation)
	}
	if got := decodeJSON[corev1.Pod](t, rc.want(rc.do("GET", base+"/r/resize", "", "", nil), 200, "get").body); got.Generation != 2 {
		t.Errorf("get resize: generation %d", got.Generation)
	}
	for _, tc := range []struct {
		name, patch string
		msgs        []string
	}{
		{"to Guaranteed", `{"spec":{"containers":[{"name":"app","resources":{"requests":{"cpu":"300m","memory":"256Mi"}}}]}}`,
			[]string{"spec: Invalid value: \"Burstable\": Pod QOS Class may not change as a result of resizing"}},
		{"a limit removed", `{"spec":{"containers":[{"name":"app","resources":{"limits":{"memory":null}}}]}}`,
			[]string{"spec.containers[0].resources.limits: Forbidden: resource limits cannot be removed"}},
		{"ephemeral storage", `{"spec":{"containers":[{"name":"app","resources":{"limits":{"ephemeral-storage":"2Gi"}}}]}}`,
			[]string{"spec: Forbidden: only cpu and memory resources are mutable"}},
		{"a request over its limit", `{"spec":{"containers":[{"name":"app","resources":{"requests":{"cpu":"1"}}}]}}`,
			[]string{"spec.containers[0].resources.requests[cpu]: Invalid value: \"1\": must be less than or equal to cpu limit of 300m"}},
	} {
		rc.wantInvalid(rc.do("PATCH", base+"/r/resize", "application/strategic-merge-patch+json", "", tc.patch), tc.name, tc.msgs...)
	}
	// A plain update may not resize.
	cur := decodeJSON[corev1.Pod](t, rc.want(rc.do("GET", base+"/r", "", "", nil), 200, "get pod").body)
	cur.Spec.Containers[0].Resources.Limits[corev1.ResourceCPU] = resource.MustParse("250m")
	rc.wantInvalid(rc.do("PUT", base+"/r", "application/json", "", cur), "a plain update", "spec: Forbidden: pod updates may not change fields")
}

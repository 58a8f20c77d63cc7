package validation

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/kinds"
)

func TestValidateUTF8(t *testing.T) {
	for _, tc := range []struct {
		name string
		obj  kinds.Object
		want string // "" valid
	}{
		{"configmap value", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c"}, Data: map[string]string{"k": "bad\xff"}},
			`data[k]: Invalid value: "bad\xff": must be valid UTF-8`},
		{"annotation key", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c", Annotations: map[string]string{"a\xfe": "v"}}},
			`metadata.annotations: Invalid value: "a\xfe": must be valid UTF-8`},
		{"container command", &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox", Command: []string{"sh", "-c", "echo \xc3"}}}}},
			`spec.containers[0].command[2]: Invalid value: "echo \xc3": must be valid UTF-8`},
		{"a Secret's bytes are bytes", &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s"}, Data: map[string][]byte{"k": []byte("\xff\xfe")}}, ""},
		{"a binaryData value", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c"}, BinaryData: map[string][]byte{"k": {0xff}}}, ""},
		{"UTF-8 beyond ASCII", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c"}, Data: map[string]string{"k": "héllo, 世界"}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := validateUTF8(tc.obj)
			got := errs.ToAggregate()
			switch {
			case tc.want == "" && got != nil:
				t.Fatalf("refused: %v", got)
			case tc.want != "" && (got == nil || !strings.Contains(got.Error(), tc.want)):
				t.Fatalf("got %v, want %q", got, tc.want)
			}
		})
	}
}

// TestValidateRefusesNotUTF8: the check runs on every write, and for status writes.
func TestValidateRefusesNotUTF8(t *testing.T) {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "default"}, Data: map[string]string{"k": "bad\xff"}}
	if err := Validate(cm); err == nil || !strings.Contains(err.Error(), `data[k]: Invalid value: "bad\xff": must be valid UTF-8`) {
		t.Fatalf("Validate: %v", err)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default"}, Status: corev1.PodStatus{Message: "oom\xff"}}
	if err := ValidateStatus(pod); err == nil || !strings.Contains(err.Error(), `status.message: Invalid value: "oom\xff": must be valid UTF-8`) {
		t.Fatalf("ValidateStatus: %v", err)
	}
}

// TestValidateStatusLooksAtTheStatusOnly: a status write is checked in its status, as
// Kubernetes' status strategies validate the status update alone; the spec and metadata
// are the stored object's, not walked again (a pod stored with a string that is not
// UTF-8, as before the check existed, still takes its kubelet's status).
func TestValidateStatusLooksAtTheStatusOnly(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", Annotations: map[string]string{"a": "old\xfe"}},
		Spec:   corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox", Command: []string{"echo \xc3"}}}},
		Status: corev1.PodStatus{Phase: corev1.PodSucceeded, Message: "done"}}
	if err := ValidateStatus(pod); err != nil {
		t.Fatalf("a status write was refused for the stored spec and metadata: %v", err)
	}
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", State: corev1.ContainerState{
		Terminated: &corev1.ContainerStateTerminated{Reason: "Completed", Message: "bye\xff"}}}}
	want := `status.containerStatuses[0].state.terminated.message: Invalid value: "bye\xff": must be valid UTF-8`
	if err := ValidateStatus(pod); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want %q", err, want)
	}
}

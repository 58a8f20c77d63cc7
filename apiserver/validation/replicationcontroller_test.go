package validation

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func replicationController(mut func(*corev1.ReplicationController)) *corev1.ReplicationController {
	lbl := map[string]string{"name": "web"}
	rc := &corev1.ReplicationController{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.ReplicationControllerSpec{Template: &corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbl},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx"}}}}}}
	if mut != nil {
		mut(rc)
	}
	return rc
}

// TestReplicationControllerDefaults is Kubernetes' SetDefaults_ReplicationController: the
// selector and labels come from the template's labels (copies, not the same map), one
// replica, unless set; a missing template defaults nothing from it.
func TestReplicationControllerDefaults(t *testing.T) {
	rc := replicationController(nil)
	Default(rc)
	if rc.Spec.Selector["name"] != "web" || rc.Labels["name"] != "web" || *rc.Spec.Replicas != 1 ||
		rc.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		t.Fatalf("defaults: %+v", rc)
	}
	rc.Spec.Selector["extra"] = "x"
	if _, ok := rc.Spec.Template.Labels["extra"]; ok {
		t.Error("the selector is the template's labels' map")
	}
	set := replicationController(func(rc *corev1.ReplicationController) {
		rc.Labels, rc.Spec.Selector, rc.Spec.Replicas = map[string]string{"own": "1"}, map[string]string{"name": "web"}, new(int32(0))
		rc.Spec.Template.Labels["tier"] = "front"
	})
	Default(set)
	if len(set.Spec.Selector) != 1 || set.Labels["own"] != "1" || len(set.Labels) != 1 || *set.Spec.Replicas != 0 {
		t.Errorf("set values overwritten: %+v", set)
	}
	none := replicationController(func(rc *corev1.ReplicationController) { rc.Spec.Template = nil })
	Default(none)
	if none.Spec.Selector != nil || *none.Spec.Replicas != 1 {
		t.Errorf("without a template: %+v", none.Spec)
	}
	if err := Validate(none); err == nil || !strings.Contains(err.Error(), "spec.template: Required value") {
		t.Errorf("without a template: %v", err)
	}
	if err := Validate(rc); err == nil || !strings.Contains(err.Error(), "`selector` does not match template `labels`") {
		t.Errorf("a selector the template's labels do not match: %v", err)
	}
	ok := replicationController(nil)
	Default(ok)
	if err := Validate(ok); err != nil {
		t.Errorf("a defaulted ReplicationController: %v", err)
	}
}

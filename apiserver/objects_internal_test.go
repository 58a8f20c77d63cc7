package apiserver

import (
	"testing"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/store"
)

// TestSelectableFields: the field selectors Kubernetes serves for nodes, namespaces,
// secrets and events select (e2e's framework waits for nodes by spec.unschedulable=false
// and dumps a node's events by source), and a field the kind does not have is refused.
func TestSelectableFields(t *testing.T) {
	stored := func(obj kinds.Object) *store.Object {
		_, labels, fields, err := encode(obj)
		if err != nil {
			t.Fatal(err)
		}
		return &store.Object{Key: keyOf(kinds.Of(obj), obj), Labels: labels, Fields: fields}
	}
	cordoned := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Spec: corev1.NodeSpec{Unschedulable: true}}
	active := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n2"}}
	for _, tc := range []struct {
		obj      kinds.Object
		selector string
		want     bool
	}{
		{cordoned, "spec.unschedulable=false", false},
		{active, "spec.unschedulable=false", true},
		{cordoned, "spec.unschedulable!=false,metadata.name=n1", true},
		{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a"}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}}, "status.phase=Active", true},
		{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "b"}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating}}, "status.phase=Active", false},
		{&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "s"}, Type: corev1.SecretTypeTLS}, "type=kubernetes.io/tls", true},
		{&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "s"}, Type: corev1.SecretTypeOpaque}, "type=kubernetes.io/tls", false},
		{&corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "e1"}, Source: corev1.EventSource{Component: "kubelet", Host: "n1"}}, "source=kubelet", true},
		{&corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "e2"}, ReportingController: "test-controller"}, "source=test-controller,reportingComponent=test-controller", true},
		{&corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "e3"}, InvolvedObject: corev1.ObjectReference{APIVersion: "v1", FieldPath: "spec.containers{c}"}}, "involvedObject.fieldPath=spec.containers{c},involvedObject.apiVersion=v1", true},
		{&corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "e4"}, Source: corev1.EventSource{Component: "scheduler"}}, "source=kubelet", false},
		{&certificatesv1.CertificateSigningRequest{ObjectMeta: metav1.ObjectMeta{Name: "c1"}, Spec: certificatesv1.CertificateSigningRequestSpec{SignerName: "example.com/a"}}, "spec.signerName=example.com/a", true},
		{&certificatesv1.CertificateSigningRequest{ObjectMeta: metav1.ObjectMeta{Name: "c2"}, Spec: certificatesv1.CertificateSigningRequestSpec{SignerName: "example.com/b"}}, "spec.signerName=example.com/a", false},
		{&certificatesv1.ClusterTrustBundle{ObjectMeta: metav1.ObjectMeta{Name: "example.com:a:1"}, Spec: certificatesv1.ClusterTrustBundleSpec{SignerName: "example.com/a"}}, "spec.signerName=example.com/a", true},
	} {
		pred, _, _, err := selector(kinds.Of(tc.obj), "", tc.selector)
		if err != nil {
			t.Fatalf("%T %s: %v", tc.obj, tc.selector, err)
		}
		if got := pred(stored(tc.obj)); got != tc.want {
			t.Errorf("%T %s %s: matches = %v, want %v", tc.obj, tc.obj.GetName(), tc.selector, got, tc.want)
		}
	}
	if _, _, _, err := selector(kinds.MustLookup(kinds.Node), "", "status.phase=Running"); err == nil {
		t.Error("a node field selector on status.phase was accepted")
	}
}

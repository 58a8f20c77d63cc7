package apiserver

import (
	"strings"
	"testing"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
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
		ss, err := selector(kinds.Of(tc.obj), selectable(kinds.Of(tc.obj)), "", tc.selector, "")
		if err != nil {
			t.Fatalf("%T %s: %v", tc.obj, tc.selector, err)
		}
		if got := ss.pred(stored(tc.obj)); got != tc.want {
			t.Errorf("%T %s %s: matches = %v, want %v", tc.obj, tc.obj.GetName(), tc.selector, got, tc.want)
		}
	}
	if _, err := selector(kinds.MustLookup(kinds.Node), selectable(kinds.MustLookup(kinds.Node)), "", "status.phase=Running", ""); err == nil {
		t.Error("a node field selector on status.phase was accepted")
	}
	// What the store is asked to read through: the name of an equality on it (its key and
	// the index of names), an indexed field's equality.
	pod := kinds.MustLookup(kinds.Pod)
	for _, tc := range []struct {
		selector, name, field, value string
	}{
		{"", "", "", ""},
		{"metadata.name=web", "web", "", ""},
		{"metadata.name==web,status.phase=Running", "web", "", ""},
		{"metadata.name!=web", "", "", ""},
		{"spec.nodeName=w1,metadata.name=web", "web", "spec.nodeName", "w1"},
		{"spec.nodeName!=w1", "", "", ""},
	} {
		ss, err := selector(pod, selectable(pod), "", tc.selector, "")
		if err != nil || ss.name != tc.name || ss.indexField != tc.field || ss.indexValue != tc.value {
			t.Errorf("pods %q: name %q, index %q=%q, %v; want name %q, index %q=%q", tc.selector, ss.name, ss.indexField, ss.indexValue, err, tc.name, tc.field, tc.value)
		}
	}
}

// TestCustomSelectableFields: a custom kind's field selectors name its CRD version's
// selectableFields (and metadata.name, metadata.namespace), in Kubernetes' words
// otherwise; an object stored before its CRD declared a field is read for it.
func TestCustomSelectableFields(t *testing.T) {
	t.Cleanup(func() { kinds.SetCustom(nil) })
	crd := &apiextensionsv1.CustomResourceDefinition{ObjectMeta: metav1.ObjectMeta{Name: "widgets.example.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{Group: "example.com", Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "widgets", Singular: "widget", Kind: "Widget"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{
				{Name: "v1", Served: true, Storage: true, SelectableFields: []apiextensionsv1.SelectableField{{JSONPath: ".spec.color"}, {JSONPath: ".spec.size"}}},
				{Name: "v2", Served: true, SelectableFields: []apiextensionsv1.SelectableField{{JSONPath: ".spec.shape"}}}}},
		Status: apiextensionsv1.CustomResourceDefinitionStatus{Conditions: []apiextensionsv1.CustomResourceDefinitionCondition{
			{Type: apiextensionsv1.Established, Status: apiextensionsv1.ConditionTrue}}}}
	kinds.ServeCRDs([]*apiextensionsv1.CustomResourceDefinition{crd}, nil)
	v1, _ := kinds.ForGroupVersionKind("example.com/v1", "Widget")
	v2, _ := kinds.ForGroupVersionKind("example.com/v2", "Widget")
	widget := func(name string, spec map[string]any) *store.Object {
		obj := v1.New().(*kinds.Custom)
		obj.Namespace, obj.Name, obj.Content = "default", name, map[string]any{"spec": spec}
		value, labels, fields, err := encode(obj)
		if err != nil {
			t.Fatal(err)
		}
		return &store.Object{Key: keyOf(v1, obj), Value: value, Labels: labels, Fields: fields, ModRevision: 1}
	}
	blue := widget("blue", map[string]any{"color": "blue", "size": int64(3), "shape": "round"})
	red := widget("red", map[string]any{"color": "red"})
	old := widget("old", map[string]any{"color": "blue", "shape": "square"})
	old.Fields = nil // stored before the CRD declared any selectable field
	for _, tc := range []struct {
		view     *kinds.Info
		selector string
		obj      *store.Object
		want     bool
	}{
		{v1, "spec.color=blue", blue, true},
		{v1, "spec.color=blue", red, false},
		{v1, "spec.color!=blue", red, true},
		{v1, "spec.size=3", blue, true},
		{v1, "spec.size=", red, true}, // no value: ""
		{v1, "spec.color=blue,metadata.name=blue", blue, true},
		{v1, "metadata.namespace=default", red, true},
		{v1, "spec.color=blue", old, true},
		{v2, "spec.shape=round", blue, true},
		{v2, "spec.shape=round", old, false},
		{v2, "spec.shape=square", old, true},
	} {
		stored, sel, allowed, err := storageFieldSelector(tc.view, tc.selector)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.view.APIVersion, tc.selector, err)
		}
		ss, err := selector(stored, allowed, "", sel, "")
		if err != nil {
			t.Fatalf("%s %s: %v", tc.view.APIVersion, tc.selector, err)
		}
		if got := ss.pred(tc.obj); got != tc.want {
			t.Errorf("%s %s on %s: matches = %v, want %v", tc.view.APIVersion, tc.selector, tc.obj.Name, got, tc.want)
		}
	}
	for _, tc := range []struct {
		view     *kinds.Info
		selector string
	}{{v1, "spec.shape=round"}, {v2, "spec.color=blue"}, {v1, "status.phase=Ready"}} {
		stored, sel, allowed, err := storageFieldSelector(tc.view, tc.selector)
		if err == nil {
			_, err = selector(stored, allowed, "", sel, "")
		}
		if want := "field label not supported: " + strings.SplitN(tc.selector, "=", 2)[0]; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s %s: error = %v, want %q", tc.view.APIVersion, tc.selector, err, want)
		}
	}
}

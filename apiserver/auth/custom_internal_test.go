package auth

import (
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/kinds"
)

// TestControllerManagerUpdatesCustomResources: the garbage collector removes owner
// references and finalizers from custom resources, as from the built-in kinds; the
// controller-manager may not write their status, nor update a kind not served.
func TestControllerManagerUpdatesCustomResources(t *testing.T) {
	names := apiextensionsv1.CustomResourceDefinitionNames{Plural: "gadgets", Singular: "gadget", Kind: "Gadget", ListKind: "GadgetList"}
	kinds.ServeCRDs([]*apiextensionsv1.CustomResourceDefinition{{ObjectMeta: metav1.ObjectMeta{Name: "gadgets.example.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{Group: "example.com", Scope: apiextensionsv1.NamespaceScoped, Names: names,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{Name: "v1", Served: true, Storage: true}}},
		Status: apiextensionsv1.CustomResourceDefinitionStatus{AcceptedNames: names,
			Conditions: []apiextensionsv1.CustomResourceDefinitionCondition{{Type: apiextensionsv1.Established, Status: apiextensionsv1.ConditionTrue}}}}}, nil)
	t.Cleanup(func() { kinds.SetCustom(nil) })
	for _, tc := range []struct {
		name string
		a    Attributes
		want bool
	}{
		{"update a gadget", Attributes{User: cm, Verb: Update, Resource: "gadgets", Namespace: "default", Name: "g"}, true},
		{"update a gadget, group named", Attributes{User: cm, Verb: Update, APIGroup: "example.com", Resource: "gadgets", Namespace: "default", Name: "g"}, true},
		{"update gadgets of another group", Attributes{User: cm, Verb: Update, APIGroup: "other.io", Resource: "gadgets", Namespace: "default", Name: "g"}, false},
		{"update a gadget's status", Attributes{User: cm, Verb: Update, Resource: "gadgets", Subresource: "status", Namespace: "default", Name: "g"}, false},
		{"create a gadget", Attributes{User: cm, Verb: Create, Resource: "gadgets", Namespace: "default", Name: "g"}, false},
		{"update a role", Attributes{User: cm, Verb: Update, Resource: "roles", Namespace: "default", Name: "r"}, true},
		{"update a role of another group", Attributes{User: cm, Verb: Update, APIGroup: "other.io", Resource: "roles", Namespace: "default", Name: "r"}, false},
	} {
		if got := controllerManagerMay(tc.a); got != tc.want {
			t.Errorf("%s: controllerManagerMay = %v, want %v", tc.name, got, tc.want)
		}
	}
}

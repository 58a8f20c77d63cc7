package admissioncel

import (
	"context"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/admission"

	"github.com/skiffhq/skiff/apiserver/openapi"
)

// podTemplated is a Deployment with a container app, as mutations see it.
func podTemplated() *unstructured.Unstructured {
	d := deployment(1, map[string]any{"tier": "web"})
	d.Object["spec"] = map[string]any{"replicas": int64(1), "selector": map[string]any{"matchLabels": map[string]any{"app": "web"}},
		"template": map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": "web"}},
			"spec": map[string]any{"containers": []any{map[string]any{"name": "app", "image": "nginx"}}}}}
	return d
}

// TestMutatingPolicyMutate: a mutating policy's mutations, a table: an ApplyConfiguration
// is merged as server-side apply merges (a label added beside the others, a container
// added to the list keyed by name, a change to an atomic field refused); a JSONPatch
// reads variables and params; a failed "test" leaves the object as it was; a patch that
// cannot be applied, or a matchCondition that cannot be evaluated, is the policy's
// error; a false matchCondition skips the policy; mutations apply in order, each on the
// previous one's result.
func TestMutatingPolicyMutate(t *testing.T) {
	tc, err := openapi.TypeConverter()
	if err != nil {
		t.Fatal(err)
	}
	apply := func(expr string) admissionregistrationv1.Mutation {
		return admissionregistrationv1.Mutation{PatchType: admissionregistrationv1.PatchTypeApplyConfiguration,
			ApplyConfiguration: &admissionregistrationv1.ApplyConfiguration{Expression: expr}}
	}
	jsonPatch := func(expr string) admissionregistrationv1.Mutation {
		return admissionregistrationv1.Mutation{PatchType: admissionregistrationv1.PatchTypeJSONPatch, JSONPatch: &admissionregistrationv1.JSONPatch{Expression: expr}}
	}
	params := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "team"}, "data": map[string]any{"team": "blue"}}}
	withLabels := func(l map[string]any) *unstructured.Unstructured {
		d := podTemplated()
		d.Object["metadata"].(map[string]any)["labels"] = l
		return d
	}
	withContainers := func(cs ...any) *unstructured.Unstructured {
		d := podTemplated()
		d.Object["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"] = cs
		return d
	}
	for _, c := range []struct {
		name      string
		spec      admissionregistrationv1.MutatingAdmissionPolicySpec
		params    *unstructured.Unstructured
		matched   bool
		want      *unstructured.Unstructured // nil: unchanged
		wantError string
	}{
		{name: "an ApplyConfiguration adds a label", matched: true,
			spec: admissionregistrationv1.MutatingAdmissionPolicySpec{Mutations: []admissionregistrationv1.Mutation{
				apply(`Object{metadata: Object.metadata{labels: {"owner": "platform"}}}`)}},
			want: withLabels(map[string]any{"tier": "web", "owner": "platform"})},
		{name: "an ApplyConfiguration merges a container by name", matched: true,
			spec: admissionregistrationv1.MutatingAdmissionPolicySpec{Mutations: []admissionregistrationv1.Mutation{
				apply(`Object{spec: Object.spec{template: Object.spec.template{spec: Object.spec.template.spec{containers: [` +
					`Object.spec.template.spec.containers{name: "sidecar", image: "envoy"}]}}}}`)}},
			want: withContainers(map[string]any{"name": "app", "image": "nginx"}, map[string]any{"name": "sidecar", "image": "envoy"})},
		{name: "an ApplyConfiguration of an atomic field", matched: true,
			spec: admissionregistrationv1.MutatingAdmissionPolicySpec{Mutations: []admissionregistrationv1.Mutation{
				apply(`Object{spec: Object.spec{template: Object.spec.template{spec: Object.spec.template.spec{containers: [` +
					`Object.spec.template.spec.containers{name: "app", command: ["sh"]}]}}}}`)}},
			wantError: "may not mutate atomic arrays, maps or structs: .spec.template.spec.containers[0].command"},
		{name: "a JSONPatch of variables and params", matched: true, params: params,
			spec: admissionregistrationv1.MutatingAdmissionPolicySpec{ParamKind: &admissionregistrationv1.ParamKind{APIVersion: "v1", Kind: "ConfigMap"},
				Variables: []admissionregistrationv1.Variable{{Name: "team", Expression: "params.data.team"}},
				Mutations: []admissionregistrationv1.Mutation{jsonPatch(`[JSONPatch{op: "add", path: "/metadata/labels/team", value: variables.team}]`)}},
			want: withLabels(map[string]any{"tier": "web", "team": "blue"})},
		{name: "a failed test", matched: true,
			spec: admissionregistrationv1.MutatingAdmissionPolicySpec{Mutations: []admissionregistrationv1.Mutation{jsonPatch(
				`[JSONPatch{op: "test", path: "/spec/replicas", value: 3}, JSONPatch{op: "replace", path: "/spec/replicas", value: 4}]`)}}},
		{name: "a patch that cannot be applied", matched: true,
			spec: admissionregistrationv1.MutatingAdmissionPolicySpec{Mutations: []admissionregistrationv1.Mutation{jsonPatch(
				`[JSONPatch{op: "remove", path: "/spec/paused"}]`)}},
			wantError: "JSON Patch"},
		{name: "mutations in order", matched: true,
			spec: admissionregistrationv1.MutatingAdmissionPolicySpec{Mutations: []admissionregistrationv1.Mutation{
				apply(`Object{metadata: Object.metadata{labels: {"owner": "platform"}}}`),
				jsonPatch(`[JSONPatch{op: "add", path: "/metadata/labels/copy", value: object.metadata.labels.owner}]`)}},
			want: withLabels(map[string]any{"tier": "web", "owner": "platform", "copy": "platform"})},
		{name: "a false matchCondition",
			spec: admissionregistrationv1.MutatingAdmissionPolicySpec{
				MatchConditions: []admissionregistrationv1.MatchCondition{{Name: "batch", Expression: "object.metadata.labels.tier == 'batch'"}},
				Mutations:       []admissionregistrationv1.Mutation{apply(`Object{metadata: Object.metadata{labels: {"owner": "platform"}}}`)}}},
		{name: "a matchCondition in error",
			spec: admissionregistrationv1.MutatingAdmissionPolicySpec{
				MatchConditions: []admissionregistrationv1.MatchCondition{{Name: "missing", Expression: "object.metadata.annotations.x == 'y'"}},
				Mutations:       []admissionregistrationv1.Mutation{apply(`Object{metadata: Object.metadata{labels: {"owner": "platform"}}}`)}},
			wantError: "no such key: annotations"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if errs := ValidateMutatingPolicySpec(&c.spec, nil); len(errs) > 0 {
				t.Fatalf("the policy does not compile: %v", errs)
			}
			obj := podTemplated()
			in := MutationInput{Input: input(obj, c.params), TypeConverter: tc, Objects: admission.NewObjectInterfacesFromScheme(runtime.NewScheme())}
			matched, err := CompileMutatingPolicy("p", &c.spec).Mutate(context.Background(), in)
			switch {
			case c.wantError == "" && err != nil:
				t.Fatalf("error: %v", err)
			case c.wantError != "" && (err == nil || !strings.Contains(err.Error(), c.wantError)):
				t.Fatalf("error %v, want %q", err, c.wantError)
			case matched != c.matched && c.wantError == "":
				t.Errorf("matched %v, want %v", matched, c.matched)
			}
			want := c.want
			if want == nil {
				want = podTemplated()
			}
			got := in.Attributes.VersionedObject.Object().(*unstructured.Unstructured)
			if !equality.Semantic.DeepEqual(got.Object, want.Object) {
				t.Errorf("object:\n%v\nwant\n%v", got.Object, want.Object)
			}
			if !equality.Semantic.DeepEqual(obj.Object, podTemplated().Object) {
				t.Errorf("the original object was changed: %v", obj.Object)
			}
		})
	}
}

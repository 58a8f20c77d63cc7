package validation_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utiljson "k8s.io/apimachinery/pkg/util/json"

	"github.com/skiffhq/skiff/apiserver/validation"
	"github.com/skiffhq/skiff/kinds"
)

func schemaCRD(schema string) *apiextensionsv1.CustomResourceDefinition {
	var props apiextensionsv1.JSONSchemaProps
	if err := json.Unmarshal([]byte(schema), &props); err != nil {
		panic(err)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{ObjectMeta: metav1.ObjectMeta{Name: "widgets.example.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{Group: "example.com", Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "widgets", Singular: "widget", Kind: "Widget", ListKind: "WidgetList"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &props}}}}}
	kinds.SetTypeMeta(crd)
	return crd
}

const widgetSchema = `{"type":"object","properties":{"spec":{"type":"object","properties":{
  "size":{"type":"integer","minimum":1,"default":2},
  "color":{"type":"string","enum":["red","blue"]},
  "free":{"type":"object","x-kubernetes-preserve-unknown-fields":true}}}}}`

// TestValidateCRD: Kubernetes' rules for the CRD itself (selectable fields and conversion
// webhooks among them), in its words.
func TestValidateCRD(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*apiextensionsv1.CustomResourceDefinition)
		want   string // "": valid
	}{
		{"valid", func(*apiextensionsv1.CustomResourceDefinition) {}, ""},
		{"name", func(c *apiextensionsv1.CustomResourceDefinition) { c.Name = "w.example.com" },
			`metadata.name: Invalid value: "w.example.com": must be spec.names.plural+"."+spec.group`},
		{"no storage version", func(c *apiextensionsv1.CustomResourceDefinition) { c.Spec.Versions[0].Storage = false },
			"must have exactly one version marked as storage version"},
		{"scope", func(c *apiextensionsv1.CustomResourceDefinition) { c.Spec.Scope = "Everywhere" },
			`spec.scope: Unsupported value: "Everywhere": supported values: "Cluster", "Namespaced"`},
		{"not structural", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties["size"] = apiextensionsv1.JSONSchemaProps{}
			// One version's schema is the CRD's (Kubernetes' conversion hoists it), named so.
		}, "spec.validation.openAPIV3Schema.properties[spec].properties[size].type: Required value: must not be empty for specified object fields"},
		{"webhook", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Conversion = &apiextensionsv1.CustomResourceConversion{Strategy: apiextensionsv1.WebhookConverter,
				Webhook: &apiextensionsv1.WebhookConversion{ConversionReviewVersions: []string{"v1"}, ClientConfig: &apiextensionsv1.WebhookClientConfig{URL: new("https://example.com/convert")}}}
		}, ""},
		{"webhook without a client config", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Conversion = &apiextensionsv1.CustomResourceConversion{Strategy: apiextensionsv1.WebhookConverter,
				Webhook: &apiextensionsv1.WebhookConversion{ConversionReviewVersions: []string{"v1"}}}
		}, "spec.conversion.webhookClientConfig: Required value: required when strategy is set to Webhook"},
		{"webhook over http", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Conversion = &apiextensionsv1.CustomResourceConversion{Strategy: apiextensionsv1.WebhookConverter,
				Webhook: &apiextensionsv1.WebhookConversion{ConversionReviewVersions: []string{"v1"}, ClientConfig: &apiextensionsv1.WebhookClientConfig{URL: new("http://example.com/convert")}}}
		}, `spec.conversion.webhookClientConfig.url: Invalid value: "http": 'https' is the only allowed URL scheme`},
		{"selectable fields", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Versions[0].SelectableFields = []apiextensionsv1.SelectableField{{JSONPath: ".spec.color"}, {JSONPath: ".spec.size"}}
		}, ""},
		{"selectable field not a scalar", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Versions[0].SelectableFields = []apiextensionsv1.SelectableField{{JSONPath: ".spec.free"}}
		}, `spec.selectableFields[0].jsonPath: Invalid value: ".spec.free": must point to a field of type string, boolean or integer. Enum string fields and strings with formats are allowed.`},
		{"selectable field not in the schema", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Versions[0].SelectableFields = []apiextensionsv1.SelectableField{{JSONPath: ".spec.shape"}}
		}, `spec.selectableFields[0].jsonPath: Invalid value: ".spec.shape": is an invalid path: does not refer to a valid field`},
		{"selectable field in metadata", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["metadata"] = apiextensionsv1.JSONSchemaProps{Type: "object",
				Properties: map[string]apiextensionsv1.JSONSchemaProps{"name": {Type: "string"}}}
			c.Spec.Versions[0].SelectableFields = []apiextensionsv1.SelectableField{{JSONPath: ".metadata.name"}}
		}, `spec.selectableFields[0].jsonPath: Invalid value: ".metadata.name": must not point to fields in metadata`},
		{"selectable field twice", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Versions[0].SelectableFields = []apiextensionsv1.SelectableField{{JSONPath: ".spec.color"}, {JSONPath: ".spec.color"}}
		}, `spec.selectableFields[1].jsonPath: Duplicate value: ".spec.color"`},
		{"more than 8 selectable fields", func(c *apiextensionsv1.CustomResourceDefinition) {
			props := c.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"]
			for i := range 9 {
				f := fmt.Sprintf("f%d", i)
				props.Properties[f] = apiextensionsv1.JSONSchemaProps{Type: "string"}
				c.Spec.Versions[0].SelectableFields = append(c.Spec.Versions[0].SelectableFields, apiextensionsv1.SelectableField{JSONPath: ".spec." + f})
			}
			c.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"] = props
		}, "spec.selectableFields: Too many: 9: must have at most 8 items"},
		{"selectable field of a second version", func(c *apiextensionsv1.CustomResourceDefinition) {
			v2 := *c.Spec.Versions[0].DeepCopy()
			v2.Name, v2.Storage = "v2", false
			delete(v2.Schema.OpenAPIV3Schema.Properties["spec"].Properties, "size") // another schema: each version keeps its own
			c.Spec.Versions[0].SelectableFields = []apiextensionsv1.SelectableField{{JSONPath: ".spec.color"}}
			v2.SelectableFields = []apiextensionsv1.SelectableField{{JSONPath: ".spec.size"}}
			c.Spec.Versions = append(c.Spec.Versions, v2)
		}, `spec.versions[1].selectableFields[0].jsonPath: Invalid value: ".spec.size": is an invalid path: does not refer to a valid field`},
		{"CEL rule", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"] = withRules(c, apiextensionsv1.ValidationRule{Rule: "self.size <= 10"})
		}, ""},
		{"CEL rule that does not compile", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"] = withRules(c, apiextensionsv1.ValidationRule{Rule: "self.weight > 1"})
		}, "spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: Invalid value: {\"Rule\":\"self.weight \\u003e 1\",\"Message\":\"\",\"MessageExpression\":\"\",\"Reason\":null,\"FieldPath\":\"\",\"OptionalOldSelf\":null}: compilation failed: ERROR: <input>:1:5: undefined field 'weight'"},
		{"CEL rule not boolean", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"] = withRules(c, apiextensionsv1.ValidationRule{Rule: "self.size"})
		}, "x-kubernetes-validations[0].rule: Invalid value: {\"Rule\":\"self.size\",\"Message\":\"\",\"MessageExpression\":\"\",\"Reason\":null,\"FieldPath\":\"\",\"OptionalOldSelf\":null}: cel expression must evaluate to a bool"},
		{"CEL messageExpression that does not compile", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"] = withRules(c, apiextensionsv1.ValidationRule{Rule: "true", MessageExpression: "self.nope"})
		}, "x-kubernetes-validations[0].messageExpression: Invalid value: {\"Rule\":\"true\",\"Message\":\"\",\"MessageExpression\":\"self.nope\",\"Reason\":null,\"FieldPath\":\"\",\"OptionalOldSelf\":null}: messageExpression compilation failed: ERROR: <input>:1:5: undefined field 'nope'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			crd := schemaCRD(widgetSchema)
			validation.Default(crd)
			tc.change(crd)
			err := validation.Validate(crd)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("invalid: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error = %v, want %q", err, tc.want)
			}
		})
	}
}

// withRules is the widget CRD's spec schema with rules.
func withRules(c *apiextensionsv1.CustomResourceDefinition, rules ...apiextensionsv1.ValidationRule) apiextensionsv1.JSONSchemaProps {
	spec := c.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"]
	spec.XValidations = append(spec.XValidations, rules...)
	return spec
}

// TestCustomCELRules: a custom resource's x-kubernetes-validations, on create and on
// update: the rule's message (or messageExpression's) with the field's path, the
// transition rules (oldSelf) on updates only, a reason's and a fieldPath's own words,
// and no rule evaluated over values of the wrong type.
func TestCustomCELRules(t *testing.T) {
	t.Cleanup(func() { kinds.SetCustom(nil) })
	crd := schemaCRD(widgetSchema)
	color := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties["color"]
	color.MaxLength = new(int64(10)) // bounds the messageExpression's estimated cost
	crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties["color"] = color
	crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"] = withRules(crd,
		apiextensionsv1.ValidationRule{Rule: "self.size <= 10", Message: "a widget is at most 10 big"},
		apiextensionsv1.ValidationRule{Rule: "!has(self.color) || self.color != 'blue' || self.size > 2",
			MessageExpression: "'a ' + self.color + ' widget must be bigger than 2'"},
		apiextensionsv1.ValidationRule{Rule: "!has(oldSelf.color) || has(self.color) && self.color == oldSelf.color",
			Message: "color is immutable once set", FieldPath: ".color"},
		apiextensionsv1.ValidationRule{Rule: "self.size != 7", Message: "not seven", Reason: new(apiextensionsv1.FieldValueForbidden)},
	)
	crd.Status.Conditions = []apiextensionsv1.CustomResourceDefinitionCondition{{Type: apiextensionsv1.Established, Status: apiextensionsv1.ConditionTrue}}
	validation.Default(crd)
	if err := validation.Validate(crd); err != nil {
		t.Fatalf("CRD: %v", err)
	}
	kinds.ServeCRDs([]*apiextensionsv1.CustomResourceDefinition{crd}, nil)
	in, _ := kinds.ForGroupVersionKind("example.com/v1", "Widget")
	widget := func(content string) *kinds.Custom {
		t.Helper()
		obj := in.New().(*kinds.Custom)
		obj.Name, obj.Namespace = "w", "default"
		if err := utiljson.Unmarshal([]byte(content), &obj.Content); err != nil { // integers as int64, as a Custom holds them
			t.Fatal(err)
		}
		validation.Default(obj)
		return obj
	}
	for _, tc := range []struct {
		name, old, obj, err string
	}{
		{name: "valid", obj: `{"spec":{"size":3,"color":"blue"}}`},
		{name: "rule", obj: `{"spec":{"size":11}}`, err: "spec: Invalid value: a widget is at most 10 big"},
		{name: "messageExpression", obj: `{"spec":{"size":2,"color":"blue"}}`, err: "spec: Invalid value: a blue widget must be bigger than 2"},
		{name: "reason", obj: `{"spec":{"size":7}}`, err: "spec: Forbidden: not seven"},
		{name: "not checked over a wrong type", obj: `{"spec":{"size":"big"}}`,
			err: "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation"},
		{name: "transition rule not on create", obj: `{"spec":{"size":3}}`},
		{name: "transition rule kept", old: `{"spec":{"size":3,"color":"red"}}`, obj: `{"spec":{"size":4,"color":"red"}}`},
		{name: "transition rule broken", old: `{"spec":{"size":3,"color":"red"}}`, obj: `{"spec":{"size":3,"color":"blue"}}`,
			err: "spec.color: Invalid value: color is immutable once set"},
		// A write that leaves the spec as it was (a label's, say) is not refused for it.
		{name: "ratcheting: an unchanged invalid value stays", old: `{"spec":{"size":11}}`, obj: `{"spec":{"size":11}}`},
		{name: "ratcheting: a changed one is checked", old: `{"spec":{"size":11}}`, obj: `{"spec":{"size":12}}`, err: "a widget is at most 10 big"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obj := widget(tc.obj)
			var err error
			if tc.old == "" {
				err = validation.Validate(obj)
			} else {
				err = validation.ValidateUpdate(widget(tc.old), obj)
			}
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("invalid: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("error = %v, want %q", err, tc.err)
			}
		})
	}
}

// TestCustomSchema: pruning (but what preserve-unknown-fields keeps), defaulting and
// validation with field paths, by the CRD's structural schema.
func TestCustomSchema(t *testing.T) {
	t.Cleanup(func() { kinds.SetCustom(nil) })
	crd := schemaCRD(widgetSchema)
	crd.Status.Conditions = []apiextensionsv1.CustomResourceDefinitionCondition{{Type: apiextensionsv1.Established, Status: apiextensionsv1.ConditionTrue}}
	kinds.ServeCRDs([]*apiextensionsv1.CustomResourceDefinition{crd}, nil)
	in, _ := kinds.ForGroupVersionKind("example.com/v1", "Widget")
	for _, tc := range []struct {
		name, obj, want, err string
		pruned               []string
	}{
		{name: "defaulted", obj: `{"spec":{}}`, want: `{"spec":{"size":2}}`},
		{name: "pruned", obj: `{"spec":{"size":1,"shape":"round"},"other":1}`, want: `{"spec":{"size":1}}`, pruned: []string{"other", "spec.shape"}},
		{name: "preserved", obj: `{"spec":{"size":1,"free":{"any":{"thing":true}}}}`, want: `{"spec":{"free":{"any":{"thing":true}},"size":1}}`},
		{name: "minimum", obj: `{"spec":{"size":0}}`, err: "spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1"},
		{name: "enum", obj: `{"spec":{"color":"green"}}`, err: `spec.color: Unsupported value: "green": supported values: "red", "blue"`},
		{name: "type", obj: `{"spec":{"size":"big"}}`, err: `spec.size: Invalid value: "string": spec.size in body must be of type integer: "string"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obj := in.New().(*kinds.Custom)
			obj.Name, obj.Namespace = "w", "default"
			if err := json.Unmarshal([]byte(tc.obj), &obj.Content); err != nil {
				t.Fatal(err)
			}
			s, err := validation.SchemaOf(in.Custom)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(s.Prune(obj.DeepCopy()), ","); got != strings.Join(tc.pruned, ",") {
				t.Errorf("pruned = %s, want %v", got, tc.pruned)
			}
			validation.Default(obj)
			err = validation.Validate(obj)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("error = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if js, _ := json.Marshal(obj.Content); string(js) != tc.want {
				t.Errorf("content = %s, want %s", js, tc.want)
			}
		})
	}
}

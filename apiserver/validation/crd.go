package validation

import (
	"context"
	"fmt"
	"sync"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	crdvalidation "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	schemavalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiffhq/skiff/kinds"
)

// CustomResourceDefinitions are validated by Kubernetes' own rules, its
// apiextensions-apiserver's (names, versions with exactly one storage version, a
// structural schema, scope, ...), in its words. What Skiff does not do is refused:
// conversion webhooks and CEL validation rules (x-kubernetes-validations).

// internalCRD converts crd to apiextensions' internal type, which its validation takes.
func internalCRD(crd *apiextensionsv1.CustomResourceDefinition) (*apiextensions.CustomResourceDefinition, error) {
	out := &apiextensions.CustomResourceDefinition{}
	if err := apiextensionsv1.Convert_v1_CustomResourceDefinition_To_apiextensions_CustomResourceDefinition(crd, out, nil); err != nil {
		return nil, fmt.Errorf("convert %s: %w", crd.Name, err)
	}
	return out, nil
}

func validateCRD(crd *apiextensionsv1.CustomResourceDefinition) field.ErrorList {
	in, err := internalCRD(crd)
	if err != nil {
		return field.ErrorList{field.InternalError(nil, err)}
	}
	return append(crdvalidation.ValidateCustomResourceDefinition(context.Background(), in), crdUnsupported(crd)...)
}

func validateCRDUpdate(old, crd *apiextensionsv1.CustomResourceDefinition) field.ErrorList {
	in, err := internalCRD(crd)
	if err != nil {
		return field.ErrorList{field.InternalError(nil, err)}
	}
	oldIn, err := internalCRD(old)
	if err != nil {
		return field.ErrorList{field.InternalError(nil, err)}
	}
	return append(crdvalidation.ValidateCustomResourceDefinitionUpdate(context.Background(), in, oldIn), crdUnsupported(crd)...)
}

func validateCRDStatus(crd *apiextensionsv1.CustomResourceDefinition) field.ErrorList {
	in, err := internalCRD(crd)
	if err != nil {
		return field.ErrorList{field.InternalError(nil, err)}
	}
	return crdvalidation.ValidateUpdateCustomResourceDefinitionStatus(context.Background(), in, in)
}

// crdUnsupported refuses what Skiff does not do: a conversion webhook, and CEL rules.
func crdUnsupported(crd *apiextensionsv1.CustomResourceDefinition) field.ErrorList {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	if c := crd.Spec.Conversion; c != nil && c.Strategy == apiextensionsv1.WebhookConverter {
		errs = append(errs, field.Forbidden(spec.Child("conversion", "strategy"), "Webhook: not supported by Skiff"))
	}
	for i, v := range crd.Spec.Versions {
		if v.Schema != nil && v.Schema.OpenAPIV3Schema != nil {
			errs = append(errs, celRules(v.Schema.OpenAPIV3Schema, spec.Child("versions").Index(i).Child("schema", "openAPIV3Schema"))...)
		}
		for j, f := range v.SelectableFields {
			errs = append(errs, field.Forbidden(spec.Child("versions").Index(i).Child("selectableFields").Index(j), fmt.Sprintf("%s: not supported by Skiff", f.JSONPath)))
		}
	}
	return errs
}

func celRules(s *apiextensionsv1.JSONSchemaProps, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(s.XValidations) > 0 {
		errs = append(errs, field.Forbidden(p.Child("x-kubernetes-validations"), "CEL validation rules are not supported by Skiff"))
	}
	for name, sub := range s.Properties {
		errs = append(errs, celRules(&sub, p.Child("properties").Key(name))...)
	}
	if s.Items != nil && s.Items.Schema != nil {
		errs = append(errs, celRules(s.Items.Schema, p.Child("items"))...)
	}
	if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
		errs = append(errs, celRules(s.AdditionalProperties.Schema, p.Child("additionalProperties"))...)
	}
	return errs
}

// CustomSchema is a custom kind's schema, ready to prune, default and validate its
// objects.
type CustomSchema struct {
	structural *structuralschema.Structural // nil: no schema
	validator  schemavalidation.SchemaValidator
}

// schemas caches each custom kind's compiled schema (an Info is made anew when its CRD
// changes).
var schemas sync.Map // *kinds.CustomKind → *CustomSchema

// SchemaOf compiles (once) the schema of a custom kind's version.
func SchemaOf(ck *kinds.CustomKind) (*CustomSchema, error) {
	if s, ok := schemas.Load(ck); ok {
		return s.(*CustomSchema), nil
	}
	out := &CustomSchema{}
	if v := ck.Version; v.Schema != nil && v.Schema.OpenAPIV3Schema != nil {
		internal := &apiextensions.JSONSchemaProps{}
		if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(v.Schema.OpenAPIV3Schema, internal, nil); err != nil {
			return nil, fmt.Errorf("schema of %s %s: %w", ck.CRD.Name, v.Name, err)
		}
		st, err := structuralschema.NewStructural(internal)
		if err != nil {
			return nil, fmt.Errorf("schema of %s %s: %w", ck.CRD.Name, v.Name, err)
		}
		out.structural = st
		if out.validator, _, err = schemavalidation.NewSchemaValidator(internal); err != nil {
			return nil, fmt.Errorf("schema of %s %s: %w", ck.CRD.Name, v.Name, err)
		}
	}
	actual, _ := schemas.LoadOrStore(ck, out)
	return actual.(*CustomSchema), nil
}

// Prune drops the fields of obj its schema does not name (unless
// x-kubernetes-preserve-unknown-fields keeps them) and returns their paths, sorted.
func (s *CustomSchema) Prune(obj *kinds.Custom) []string {
	if s.structural == nil {
		return nil
	}
	root := rootOf(obj)
	paths := pruning.PruneWithOptions(root, s.structural, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true})
	setContent(obj, root)
	return paths
}

// Default sets the schema's defaults on what obj leaves out.
func (s *CustomSchema) Default(obj *kinds.Custom) {
	if s.structural == nil {
		return
	}
	root := rootOf(obj)
	defaulting.Default(root, s.structural)
	setContent(obj, root)
}

// Validate checks obj's content against the schema, errors naming each field's path.
func (s *CustomSchema) Validate(obj *kinds.Custom) field.ErrorList {
	if s.validator == nil {
		return nil
	}
	root := rootOf(obj)
	delete(root, "metadata") // validated as every object's metadata is
	return schemavalidation.ValidateCustomResource(nil, root, s.validator)
}

// rootOf is obj as the schema sees it: apiVersion, kind and the content (sharing it).
func rootOf(obj *kinds.Custom) map[string]any {
	root := make(map[string]any, len(obj.Content)+2)
	for k, v := range obj.Content {
		root[k] = v
	}
	root["apiVersion"], root["kind"] = obj.APIVersion, obj.Kind
	return root
}

func setContent(obj *kinds.Custom, root map[string]any) {
	delete(root, "apiVersion")
	delete(root, "kind")
	delete(root, "metadata")
	obj.Content = root
}

// customSchema is the schema of obj's kind; an error says the CRD's schema cannot be
// compiled, which its validation prevents.
func customSchema(obj *kinds.Custom) (*CustomSchema, field.ErrorList) {
	in := kinds.Of(obj)
	if in.Conversion != nil {
		in = in.Stored()
	}
	s, err := SchemaOf(in.Custom)
	if err != nil {
		return nil, field.ErrorList{field.InternalError(nil, err)}
	}
	return s, nil
}

// defaultCustom prunes and defaults a custom resource, as Kubernetes does on every write.
func defaultCustom(obj *kinds.Custom) {
	s, errs := customSchema(obj)
	if errs != nil {
		return
	}
	s.Prune(obj)
	s.Default(obj)
}

func validateCustom(obj *kinds.Custom) field.ErrorList {
	errs := validateObjectMeta(obj, kinds.Of(obj))
	s, serrs := customSchema(obj)
	if serrs != nil {
		return append(errs, serrs...)
	}
	return append(errs, s.Validate(obj)...)
}

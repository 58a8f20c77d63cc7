package validation

import (
	"context"
	"fmt"
	"sync"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	crdvalidation "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel/model"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	schemavalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"k8s.io/apiserver/pkg/cel/common"

	"github.com/skiffhq/skiff/kinds"
)

// CustomResourceDefinitions are validated by Kubernetes' own rules, its
// apiextensions-apiserver's (names, versions with exactly one storage version, a
// structural schema, scope, CEL validation rules that compile within their cost, ...),
// in its words (selectableFields among them: a path to a string, integer or boolean of
// the schema, not in metadata, at most 8, none twice; a conversion webhook's url or
// service, caBundle and conversionReviewVersions).
//
// Custom resources are pruned, defaulted and validated by their schema as
// apiextensions-apiserver's strategy does it: the OpenAPI value validations, then the
// CEL rules (x-kubernetes-validations, with oldSelf on an update, messageExpression,
// and ratcheting: a value an update does not change is not refused again) unless the
// object already failed a check that makes them meaningless.

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
	return crdvalidation.ValidateCustomResourceDefinition(context.Background(), in)
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
	return crdvalidation.ValidateCustomResourceDefinitionUpdate(context.Background(), in, oldIn)
}

func validateCRDStatus(crd *apiextensionsv1.CustomResourceDefinition) field.ErrorList {
	in, err := internalCRD(crd)
	if err != nil {
		return field.ErrorList{field.InternalError(nil, err)}
	}
	return crdvalidation.ValidateUpdateCustomResourceDefinitionStatus(context.Background(), in, in)
}

// CustomSchema is a custom kind's schema, ready to prune, default and validate its
// objects.
type CustomSchema struct {
	structural *structuralschema.Structural // nil: no schema
	validator  schemavalidation.SchemaValidator
	cel        *cel.Validator // nil: no x-kubernetes-validations
}

// schemas caches the compiled schemas of each CRD's versions, by CRD name. The
// registry makes a custom kind's Info anew whenever it serves the CRDs again (every
// second, on the API server), but over the same CRD object until the CRD changes: an
// entry lives as long as its CRD object is the one served, so a CRD's schemas and CEL
// programs are compiled once per change, and a changed CRD's replace the old ones.
var schemas struct {
	sync.Mutex
	m map[string]*crdSchemas
}

type crdSchemas struct {
	crd      *apiextensionsv1.CustomResourceDefinition
	versions map[string]*CustomSchema
}

// SchemaOf compiles (once) the schema of a custom kind's version.
func SchemaOf(ck *kinds.CustomKind) (*CustomSchema, error) {
	schemas.Lock()
	defer schemas.Unlock()
	e := schemas.m[ck.CRD.Name]
	if e == nil || e.crd != ck.CRD {
		e = &crdSchemas{crd: ck.CRD, versions: map[string]*CustomSchema{}}
		if schemas.m == nil {
			schemas.m = map[string]*crdSchemas{}
		}
		schemas.m[ck.CRD.Name] = e
	}
	if s := e.versions[ck.Version.Name]; s != nil {
		return s, nil
	}
	s, err := compileSchema(ck)
	if err != nil {
		return nil, err
	}
	e.versions[ck.Version.Name] = s
	return s, nil
}

func compileSchema(ck *kinds.CustomKind) (*CustomSchema, error) {
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
		// The rules are compiled here, once (the CRD's validation compiled them too,
		// refusing those that do not compile).
		out.cel = cel.NewValidator(st, true, celconfig.PerCallLimit)
	}
	return out, nil
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

// DefaultContent sets the schema's defaults in an object's JSON (apiVersion, kind,
// metadata and content), as unstructured objects hold it.
func (s *CustomSchema) DefaultContent(obj map[string]any) {
	if s.structural != nil {
		defaulting.Default(obj, s.structural)
	}
}

// Validate checks obj's content against the schema, errors naming each field's path:
// its value validations, then its CEL rules. old is the object obj replaces (nil on
// create): the transition rules (oldSelf) are checked on updates only, and a value the
// update leaves as it was is not refused again (Kubernetes' validation ratcheting).
func (s *CustomSchema) Validate(ctx context.Context, obj, old *kinds.Custom) field.ErrorList {
	if s.validator == nil {
		return nil
	}
	root := celRoot(obj)
	errs := schemavalidation.ValidateCustomResource(nil, withoutMetadata(root), s.validator)
	if s.cel == nil {
		return errs
	}
	if blocking := blockingError(errs); blocking != nil {
		return append(errs, blocking)
	}
	var oldRoot map[string]any
	var opts []cel.Option
	if old != nil {
		oldRoot = celRoot(old)
		opts = append(opts, cel.WithRatcheting(common.NewCorrelatedObject(root, oldRoot, &model.Structural{Structural: s.structural})))
	}
	celErrs, _ := s.cel.Validate(ctx, nil, s.structural, root, oldRoot, celconfig.RuntimeCELCostBudget, opts...)
	return append(errs, celErrs...)
}

// celRoot is obj as its rules see it: apiVersion, kind, the content (shared) and the
// metadata a rule may read (name and generateName, as Kubernetes' CEL declares them).
func celRoot(obj *kinds.Custom) map[string]any {
	root := rootOf(obj)
	md := map[string]any{}
	if obj.Name != "" {
		md["name"] = obj.Name
	}
	if obj.GenerateName != "" {
		md["generateName"] = obj.GenerateName
	}
	root["metadata"] = md
	return root
}

// withoutMetadata is root but its metadata, validated as every object's metadata is.
func withoutMetadata(root map[string]any) map[string]any {
	out := make(map[string]any, len(root))
	for k, v := range root {
		if k != "metadata" {
			out[k] = v
		}
	}
	return out
}

// blockingError is the error apiextensions-apiserver adds instead of evaluating the CEL
// rules of an object whose values already failed in a way the rules would trip over
// (a missing required field, a wrong type, too long or too many, a value not allowed).
func blockingError(errs field.ErrorList) *field.Error {
	for _, err := range errs {
		switch err.Type {
		case field.ErrorTypeNotSupported, field.ErrorTypeRequired, field.ErrorTypeTooLong, field.ErrorTypeTooMany, field.ErrorTypeTypeInvalid:
			return field.Invalid(nil, nil, "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation")
		}
	}
	return nil
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
	if v, ok := kinds.ForGroupVersionKind(obj.APIVersion, obj.Kind); ok && v.Custom != nil && v.Custom.CRD.Name == in.Custom.CRD.Name {
		// The schema of the version the object is in, as Kubernetes prunes, defaults and
		// validates it: an object read in v2 of a CRD converted by a webhook has v2's
		// fields, which v1's schema would prune.
		in = v
	} else if in.Conversion != nil {
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

// validateCustom checks a custom resource written over old (nil on create).
func validateCustom(obj, old *kinds.Custom) field.ErrorList {
	errs := validateObjectMeta(obj, kinds.Of(obj))
	s, serrs := customSchema(obj)
	if serrs != nil {
		return append(errs, serrs...)
	}
	return append(errs, s.Validate(context.Background(), obj, old)...)
}

// ValidateCustomStatus checks a custom resource written over old through its status
// subresource: its schema and rules, the transition rules against old.
func ValidateCustomStatus(old, obj *kinds.Custom) error {
	return asError(validateCustom(obj, old))
}

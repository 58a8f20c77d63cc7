package openapi

import (
	"fmt"
	"slices"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	crdbuilder "k8s.io/apiextensions-apiserver/pkg/controller/openapi/builder"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/kube-openapi/pkg/handler"
	"k8s.io/kube-openapi/pkg/spec3"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

// The documents of CustomResourceDefinitions, as kube-apiserver's apiextensions-apiserver
// publishes them (its pkg/controller/openapi and openapiv3 controllers, whose builder
// makes each served version's paths and schemas from the CRD's structural schema, with
// x-kubernetes-group-version-kind): in /openapi/v2 merged with the built-in kinds'
// (which win a conflict), and in /openapi/v3 one document per group-version. A
// non-structural schema is published as an object of any content, as Kubernetes does.

// SetCRDs replaces the CRDs whose documents are served: the established ones, whose
// resources are served. The documents are made again on their next read.
func (h *Handler) SetCRDs(crds []*apiextensionsv1.CustomResourceDefinition) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if slices.EqualFunc(h.crds, crds, sameCRD) {
		return
	}
	h.crds, h.dirty = slices.Clone(crds), true
}

// sameCRD says a and b make the same documents: the same object, not changed since.
func sameCRD(a, b *apiextensionsv1.CustomResourceDefinition) bool {
	return a.UID == b.UID && a.ResourceVersion == b.ResourceVersion
}

// updateCRDs makes the CRDs' documents and serves them, dropping the group-versions no
// CRD has any more. h.mu is held.
func (h *Handler) updateCRDs() error {
	var v2s []*spec.Swagger
	v3s := map[string][]*spec3.OpenAPI{}
	for _, crd := range h.crds {
		for _, v := range crd.Spec.Versions {
			if !v.Served {
				continue
			}
			s2, err := crdbuilder.BuildOpenAPIV2(crd, v.Name, crdbuilder.Options{V2: true})
			if err != nil {
				return fmt.Errorf("openapi v2 of %s %s: %w", crd.Name, v.Name, err)
			}
			// The built-in definitions carry no defaults (kube-openapi prunes them):
			// neither may a CRD's, to merge with them.
			s2.Definitions = handler.PruneDefaults(s2.Definitions)
			v2s = append(v2s, s2)
			s3, err := crdbuilder.BuildOpenAPIV3(crd, v.Name, crdbuilder.Options{})
			if err != nil {
				return fmt.Errorf("openapi v3 of %s %s: %w", crd.Name, v.Name, err)
			}
			gv := "apis/" + crd.Spec.Group + "/" + v.Name
			v3s[gv] = append(v3s[gv], s3)
		}
	}
	merged, err := crdbuilder.MergeSpecs(h.static, v2s...)
	if err != nil {
		return fmt.Errorf("openapi v2: %w", err)
	}
	if err := h.v2.UpdateSpec(merged); err != nil {
		return fmt.Errorf("openapi v2: %w", err)
	}
	gvs := map[string]bool{}
	for gv, docs := range v3s {
		if h.staticGVs[gv] {
			continue // a built-in group-version's document stays the built-in one
		}
		doc, err := crdbuilder.MergeSpecsV3(docs...)
		if err != nil {
			return fmt.Errorf("openapi v3 %s: %w", gv, err)
		}
		h.v3.UpdateGroupVersion(gv, doc)
		gvs[gv] = true
	}
	for gv := range h.crdGVs {
		if !gvs[gv] {
			h.v3.DeleteGroupVersion(gv)
		}
	}
	h.crdGVs = gvs
	return nil
}

// CRDTypeConverter converts a CRD's custom resources, of every version, to
// structured-merge-diff's typed values, from the schemas the OpenAPI documents serve:
// what server-side apply merges them with, as kube-apiserver's CRD handler builds it.
// A CRD that keeps unknown fields (spec.preserveUnknownFields) keeps them here too.
func CRDTypeConverter(crd *apiextensionsv1.CustomResourceDefinition) (managedfields.TypeConverter, error) {
	var docs []*spec3.OpenAPI
	for _, v := range crd.Spec.Versions {
		s, err := crdbuilder.BuildOpenAPIV3(crd, v.Name, crdbuilder.Options{})
		if err != nil {
			return nil, fmt.Errorf("openapi of %s %s: %w", crd.Name, v.Name, err)
		}
		docs = append(docs, s)
	}
	merged, err := crdbuilder.MergeSpecsV3(docs...)
	if err != nil {
		return nil, fmt.Errorf("openapi of %s: %w", crd.Name, err)
	}
	tc, err := managedfields.NewTypeConverter(merged.Components.Schemas, crd.Spec.PreserveUnknownFields)
	if err != nil {
		return nil, fmt.Errorf("type converter of %s: %w", crd.Name, err)
	}
	return tc, nil
}

package openapi

import (
	"fmt"
	"sync"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/kube-openapi/pkg/builder"
	"k8s.io/kube-openapi/pkg/common"
	"k8s.io/kube-openapi/pkg/validation/spec"

	"github.com/skiffhq/skiff/apiserver/openapi/generated"
	"github.com/skiffhq/skiff/kinds"
)

var typeConverter = sync.OnceValues(func() (managedfields.TypeConverter, error) {
	var names []string
	for _, in := range kinds.Served() {
		if in.Custom != nil {
			continue // a CRD's kind: no Go type, no generated model
		}
		names = append(names, modelName(in))
	}
	// The subresources' objects: the scale subresource's field manager, the mutating
	// admission policies' patches of them.
	names = append(names, autoscalingv1.Scale{}.OpenAPIModelName(), corev1.Binding{}.OpenAPIModelName(), policyv1.Eviction{}.OpenAPIModelName())
	sw, err := builder.BuildOpenAPIDefinitionsForResources(&common.Config{
		GetDefinitions: generated.GetOpenAPIDefinitions, GetDefinitionName: definitionName}, names...)
	if err != nil {
		return nil, fmt.Errorf("openapi definitions: %w", err)
	}
	defs := make(map[string]*spec.Schema, len(sw.Definitions))
	for name, s := range sw.Definitions {
		defs[name] = &s
	}
	tc, err := managedfields.NewTypeConverter(defs, false)
	if err != nil {
		return nil, fmt.Errorf("type converter: %w", err)
	}
	return tc, nil
})

// TypeConverter converts the served kinds' objects to structured-merge-diff's typed
// values, from the same schemas the OpenAPI documents serve (their list types, map keys
// and x-kubernetes-group-version-kind): what server-side apply's field manager merges and
// tracks ownership with, as kube-apiserver builds it. Built once, on first use.
func TypeConverter() (managedfields.TypeConverter, error) { return typeConverter() }

package cache

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
)

// ServeCRDs keeps the kinds registry of this process serving the established
// CustomResourceDefinitions the factory's informer sees (kinds.ServeCRDs), so that its
// controllers name, decode and list custom resources as the API server serves them
// (the namespace controller empties a deleted namespace of them, the garbage collector
// resolves owner references to them). Start the factory after.
func ServeCRDs(f *Factory) {
	inf := InformerFor[*apiextensionsv1.CustomResourceDefinition](f, "", client.ListOptions{})
	l := inf.Lister()
	serve := func() { kinds.ServeCRDs(l.List(labels.Everything()), nil) }
	inf.AddHandler(Handler[*apiextensionsv1.CustomResourceDefinition]{
		OnAdd:    func(*apiextensionsv1.CustomResourceDefinition) { serve() },
		OnUpdate: func(_, _ *apiextensionsv1.CustomResourceDefinition) { serve() },
		OnDelete: func(*apiextensionsv1.CustomResourceDefinition) { serve() },
	})
}

package garbagecollector

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/test/waitfor"
)

// gadgetCRD defines Gadget (example.com, namespaced) in versions v1 and v2, v2 stored.
func gadgetCRD(established bool) *apiextensionsv1.CustomResourceDefinition {
	schema := &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{Type: "object",
		Properties: map[string]apiextensionsv1.JSONSchemaProps{"spec": {Type: "object", XPreserveUnknownFields: ptr.To(true)}}}}
	crd := &apiextensionsv1.CustomResourceDefinition{ObjectMeta: metav1.ObjectMeta{Name: "gadgets.example.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{Group: "example.com", Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "gadgets", Singular: "gadget", Kind: "Gadget", ListKind: "GadgetList"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{
				{Name: "v1", Served: true, Schema: schema},
				{Name: "v2", Served: true, Storage: true, Schema: schema},
			}}}
	if established {
		crd.Status.AcceptedNames = crd.Spec.Names
		crd.Status.Conditions = []apiextensionsv1.CustomResourceDefinitionCondition{{Type: apiextensionsv1.Established, Status: apiextensionsv1.ConditionTrue}}
	}
	return crd
}

// TestCustomKinds: the collector follows the storage version of each established CRD
// that is not being deleted.
func TestCustomKinds(t *testing.T) {
	terminating := gadgetCRD(true)
	terminating.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	for _, tc := range []struct {
		name string
		crd  *apiextensionsv1.CustomResourceDefinition
		want string // "" for none, else the followed kind's apiVersion
	}{
		{"established", gadgetCRD(true), "example.com/v2"},
		{"not established", gadgetCRD(false), ""},
		{"being deleted", terminating, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := customKinds([]*apiextensionsv1.CustomResourceDefinition{tc.crd})
			switch {
			case tc.want == "" && len(got) != 0:
				t.Errorf("followed %v", got)
			case tc.want != "" && (len(got) != 1 || got["Gadget"] == nil || got["Gadget"].APIVersion != tc.want || !got["Gadget"].Namespaced):
				t.Errorf("got %v, want Gadget %s", got, tc.want)
			}
		})
	}
	a, b := gadgetCRD(true), gadgetCRD(true)
	b.Spec.Scope = apiextensionsv1.ClusterScoped
	if sameKind(customKinds([]*apiextensionsv1.CustomResourceDefinition{a})["Gadget"], customKinds([]*apiextensionsv1.CustomResourceDefinition{b})["Gadget"]) {
		t.Error("a change of scope keeps the informer")
	}
}

// gadgets creates the Gadget CRD on the cluster and waits until the collector follows it;
// it returns the client of its kind.
func gadgets(t *testing.T, ctx context.Context, cs *client.Clientset, gc *Collector) *client.Client[kinds.Object] {
	crds := client.For[*apiextensionsv1.CustomResourceDefinition](cs.Conn)
	if _, err := crds.Create(ctx, gadgetCRD(false)); err != nil {
		t.Fatal(err)
	}
	waitfor.Condition(t, 30*time.Second, "gadgets followed", func() (bool, string) {
		tr := gc.tracked("Gadget")
		return tr != nil && tr.synced(), ""
	})
	return client.ForKind(cs.Conn, gc.tracked("Gadget").info)
}

func newGadget(t *testing.T, ctx context.Context, c *client.Client[kinds.Object], name string, owners ...metav1.OwnerReference) *kinds.Custom {
	g := c.Kind().New().(*kinds.Custom)
	g.Name, g.Namespace, g.OwnerReferences = name, "default", owners
	g.Content = map[string]any{"spec": map[string]any{"size": int64(1)}}
	o, err := c.Create(ctx, g)
	if err != nil {
		t.Fatalf("create gadget %s: %v", name, err)
	}
	return o.(*kinds.Custom)
}

func refTo(o kinds.Object, apiVersion string) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: apiVersion, Kind: kinds.Of(o).Kind, Name: o.GetName(), UID: o.GetUID(), BlockOwnerDeletion: ptr.To(true)}
}

// TestCustomResourcesOwnAndAreOwned: custom resources as owners and as dependents, of
// each other and of built-in kinds, in the three propagation policies.
func TestCustomResourcesOwnAndAreOwned(t *testing.T) {
	cs, ctx, gc := setupCollector(t)
	g := gadgets(t, ctx, cs, gc)
	spec := corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}

	t.Run("background: a gadget owned by a gadget (named in another version)", func(t *testing.T) {
		owner := newGadget(t, ctx, g, "bg-owner")
		newGadget(t, ctx, g, "bg-dep", refTo(owner, "example.com/v1"))
		if _, err := g.Delete(ctx, "default", "bg-owner", client.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		waitfor.ConditionErr(t, 30*time.Second, "dependent gadget collected", gone(ctx, g, "bg-dep"))
	})
	t.Run("foreground: a gadget owning a pod", func(t *testing.T) {
		owner := newGadget(t, ctx, g, "fg-owner")
		if _, err := cs.Pods.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "fg-pod", Namespace: "default",
			OwnerReferences: []metav1.OwnerReference{refTo(owner, "example.com/v2")}}, Spec: spec}); err != nil {
			t.Fatal(err)
		}
		o, err := g.Delete(ctx, "default", "fg-owner", client.DeleteOptions{PropagationPolicy: "Foreground"})
		if err != nil {
			t.Fatal(err)
		}
		if o.GetDeletionTimestamp() == nil {
			t.Fatal("foreground delete removed the owner at once")
		}
		waitfor.ConditionErr(t, 30*time.Second, "pod deleted", gone(ctx, cs.Pods, "fg-pod"))
		waitfor.ConditionErr(t, 30*time.Second, "gadget deleted once its pod went", gone(ctx, g, "fg-owner"))
	})
	t.Run("orphan: a gadget owning a gadget", func(t *testing.T) {
		owner := newGadget(t, ctx, g, "or-owner")
		newGadget(t, ctx, g, "or-dep", refTo(owner, "example.com/v2"))
		if _, err := g.Delete(ctx, "default", "or-owner", client.DeleteOptions{PropagationPolicy: "Orphan"}); err != nil {
			t.Fatal(err)
		}
		waitfor.ConditionErr(t, 30*time.Second, "owner deleted once its dependent is orphaned", gone(ctx, g, "or-owner"))
		got, err := g.Get(ctx, "default", "or-dep")
		if err != nil {
			t.Fatalf("orphaned gadget deleted: %v", err)
		}
		if len(got.GetOwnerReferences()) != 0 {
			t.Fatalf("orphaned gadget still owned: %v", got.GetOwnerReferences())
		}
	})
	for _, policy := range []string{"Background", "Foreground", "Orphan"} {
		t.Run(policy+": a gadget owned by a configmap", func(t *testing.T) {
			name := "cm-" + strings.ToLower(policy)
			cm, err := cs.ConfigMaps.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}})
			if err != nil {
				t.Fatal(err)
			}
			dep := "of-" + name
			newGadget(t, ctx, g, dep, refTo(cm, "v1"))
			if _, err := cs.ConfigMaps.Delete(ctx, "default", name, client.DeleteOptions{PropagationPolicy: policy}); err != nil {
				t.Fatal(err)
			}
			waitfor.ConditionErr(t, 30*time.Second, "configmap deleted", gone(ctx, cs.ConfigMaps, name))
			if policy != "Orphan" {
				waitfor.ConditionErr(t, 30*time.Second, "gadget collected", gone(ctx, g, dep))
				return
			}
			got, err := g.Get(ctx, "default", dep)
			if err != nil {
				t.Fatalf("orphaned gadget deleted: %v", err)
			}
			if len(got.GetOwnerReferences()) != 0 {
				t.Fatalf("orphaned gadget still owned: %v", got.GetOwnerReferences())
			}
		})
	}
	t.Run("the CRD's deletion stops following its kind", func(t *testing.T) {
		crds := client.For[*apiextensionsv1.CustomResourceDefinition](cs.Conn)
		if _, err := crds.Delete(ctx, "", "gadgets.example.com", client.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		waitfor.Condition(t, 30*time.Second, "gadgets no longer followed", func() (bool, string) {
			return gc.tracked("Gadget") == nil, ""
		})
	})
}

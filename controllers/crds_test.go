package controllers

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

// TestInformersLeaveTheAPIServersKinds: in a process whose API server keeps the kinds
// registry (skiff up's; this test's, whose API server runs in it), informers made with
// serveCRDs false leave the custom kinds as the API server serves them, with its
// conversion webhook: a conversion of a CRD's object is sent to the webhook (here
// unreachable), not refused as a process's that calls none ("should be able to convert
// a non homogeneous list of CRs" failed so in skiff up). A controller-manager of its
// own (serveCRDs true) serves the CRDs it sees, without a converter.
func TestInformersLeaveTheAPIServersKinds(t *testing.T) {
	t.Cleanup(func() { kinds.SetCustom(nil) })
	cs := client.NewClientset(apicluster.Start(t, 1, apicluster.Options{}).Dial(t, "", client.Options{}))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	url := "https://127.0.0.1:1/convert"
	preserve := true
	schema := &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{Type: "object", XPreserveUnknownFields: &preserve}}
	crd := &apiextensionsv1.CustomResourceDefinition{ObjectMeta: metav1.ObjectMeta{Name: "gadgets.example.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{Group: "example.com", Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "gadgets", Singular: "gadget", Kind: "Gadget"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{Name: "v1", Served: true, Storage: true, Schema: schema},
				{Name: "v2", Served: true, Schema: schema}},
			Conversion: &apiextensionsv1.CustomResourceConversion{Strategy: apiextensionsv1.WebhookConverter,
				Webhook: &apiextensionsv1.WebhookConversion{ConversionReviewVersions: []string{"v1"},
					ClientConfig: &apiextensionsv1.WebhookClientConfig{URL: &url}}}}}
	if _, err := client.For[*apiextensionsv1.CustomResourceDefinition](cs.Conn).Create(ctx, crd); err != nil {
		t.Fatal(err)
	}
	convert := func() error {
		v2, ok := kinds.ForGroupVersionKind("example.com/v2", "Gadget")
		if !ok {
			return nil
		}
		obj := &kinds.Custom{TypeMeta: metav1.TypeMeta{APIVersion: "example.com/v1", Kind: "Gadget"}, ObjectMeta: metav1.ObjectMeta{Name: "g", Namespace: "default"}}
		_, err := v2.ConvertCustom([]*kinds.Custom{obj})
		return err
	}
	const refused = "this process does not call conversion webhooks"
	waitfor.Condition(t, 30*time.Second, "the API server serving the CRD, with its webhook", func() (bool, string) {
		err := convert()
		return err != nil && !strings.Contains(err.Error(), refused), "conversion: " + errString(err)
	})
	for _, serve := range []bool{false, true} {
		f := NewInformers(cs, hclog.NewNullLogger(), serve)
		seen := make(chan struct{}, 1)
		// Handlers run in the order they were added: this one after the factory's own.
		cache.InformerFor[*apiextensionsv1.CustomResourceDefinition](f, "", client.ListOptions{}).AddHandler(
			cache.Handler[*apiextensionsv1.CustomResourceDefinition]{OnAdd: func(c *apiextensionsv1.CustomResourceDefinition) {
				if c.Name == crd.Name {
					select {
					case seen <- struct{}{}:
					default:
					}
				}
			}})
		fctx, stop := context.WithCancel(ctx)
		f.Start(fctx)
		select {
		case <-seen:
		case <-ctx.Done():
			t.Fatal("the informers never saw the CRD")
		}
		err := convert()
		stop()
		f.Wait()
		if got := err != nil && strings.Contains(err.Error(), refused); got != serve {
			t.Errorf("informers serving CRDs %v: conversion %v", serve, err)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return "none"
	}
	return err.Error()
}

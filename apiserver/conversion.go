package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsv1beta1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1beta1"
	"k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiffhq/skiff/kinds"
)

// A CRD whose spec.conversion.strategy is Webhook has its custom resources converted
// between its versions by its webhook, as apiextensions-apiserver's webhook converter
// does: the objects not already in the version wanted are sent in one ConversionReview
// (a list's in one review, not one each) of the first version of the webhook's
// conversionReviewVersions that Skiff knows (apiextensions.k8s.io/v1 or v1beta1, the
// same on the wire), the answer's result checked (and, in v1, its apiVersion, kind and
// uid: Kubernetes never checked them in v1beta1, and does not), and each converted object must have the apiVersion
// asked for and keep its kind, name, namespace and uid; of its metadata only labels and
// annotations are taken from the webhook, the rest is the original's. Errors read as
// Kubernetes': "conversion webhook for stable.example.com/v1, Kind=CronTab failed: ...".
//
// The call is the admission webhooks' (postJSON: the url, or a ready endpoint of the
// Service through its EndpointSlices, its certificate verified against caBundle as
// NAME.NAMESPACE.svc), within conversionTimeout, which kube-apiserver's webhook client
// takes too. It is not bound to a request: as Kubernetes', a conversion runs to its
// end (or its timeout) once started.

const conversionTimeout = 30 * time.Second

// convertWebhook is the API server's kinds.Converter.
func (wh *webhooks) convertWebhook(crd *apiextensionsv1.CustomResourceDefinition, objs []*kinds.Custom, to *kinds.Info) ([]*kinds.Custom, error) {
	gvk := fmt.Sprintf("%s, Kind=%s", objs[0].APIVersion, objs[0].Kind)
	if len(objs) > 1 {
		gvk = fmt.Sprintf("%s, Kind=%sList", objs[0].APIVersion, objs[0].Kind)
	}
	out, err := wh.convert(context.Background(), crd, objs, to.APIVersion)
	if err != nil {
		return nil, fmt.Errorf("conversion webhook for %s %w", gvk, err)
	}
	return out, nil
}

// convert sends objs to crd's webhook to be converted to apiVersion. Its errors follow
// "conversion webhook for GVK".
func (wh *webhooks) convert(ctx context.Context, crd *apiextensionsv1.CustomResourceDefinition, objs []*kinds.Custom, apiVersion string) ([]*kinds.Custom, error) {
	conv := crd.Spec.Conversion
	if conv == nil || conv.Webhook == nil || conv.Webhook.ClientConfig == nil {
		return nil, errors.New("failed: the CRD has no webhook clientConfig")
	}
	reviewVersion := ""
	for _, v := range conv.Webhook.ConversionReviewVersions {
		if v == apiextensionsv1.SchemeGroupVersion.Version || v == apiextensionsv1beta1.SchemeGroupVersion.Version {
			reviewVersion = v
			break
		}
	}
	if reviewVersion == "" {
		return nil, errors.New("failed: no supported conversion review versions")
	}
	// v1beta1's ConversionReview is v1's, field for field: only the apiVersion differs.
	review := apiextensionsv1.ConversionReview{TypeMeta: metav1.TypeMeta{APIVersion: apiextensionsv1.GroupName + "/" + reviewVersion, Kind: "ConversionReview"},
		Request: &apiextensionsv1.ConversionRequest{UID: uuid.NewUUID(), DesiredAPIVersion: apiVersion}}
	for _, c := range objs {
		b, err := json.Marshal(c)
		if err != nil {
			return nil, fmt.Errorf("failed: %w", err)
		}
		review.Request.Objects = append(review.Request.Objects, runtime.RawExtension{Raw: b})
	}
	body, err := json.Marshal(&review)
	if err != nil {
		return nil, fmt.Errorf("failed: %w", err)
	}
	cc := conv.Webhook.ClientConfig
	acc := &admissionregistrationv1.WebhookClientConfig{URL: cc.URL, CABundle: cc.CABundle}
	if s := cc.Service; s != nil {
		acc.Service = &admissionregistrationv1.ServiceReference{Namespace: s.Namespace, Name: s.Name, Path: s.Path, Port: s.Port}
	}
	data, err := wh.postJSON(ctx, acc, conversionTimeout, body)
	if err != nil {
		return nil, fmt.Errorf("failed: %w", err)
	}
	converted, err := convertedObjects(reviewVersion, review.Request.UID, data)
	if err != nil {
		return nil, fmt.Errorf("failed: %w", err)
	}
	if len(converted) != len(objs) {
		return nil, fmt.Errorf("returned %d objects, expected %d", len(converted), len(objs))
	}
	out := make([]*kinds.Custom, len(objs))
	for i, raw := range converted {
		c, err := convertedObject(objs[i], raw.Raw, apiVersion)
		if err != nil {
			return nil, fmt.Errorf("returned invalid converted object at index %d: %w", i, err)
		}
		out[i] = c
	}
	return out, nil
}

// convertedObjects reads the answer to a ConversionReview of reviewVersion: its objects
// when it succeeded. A v1beta1 answer's apiVersion, kind and uid are not checked, as
// Kubernetes never did.
func convertedObjects(reviewVersion string, uid types.UID, data []byte) ([]runtime.RawExtension, error) {
	var resp apiextensionsv1.ConversionReview
	if err := json.Unmarshal(data, &resp); err != nil {
		return nil, fmt.Errorf("received invalid webhook response: %w", err)
	}
	v1 := reviewVersion == apiextensionsv1.SchemeGroupVersion.Version
	switch {
	case v1 && (resp.APIVersion != "apiextensions.k8s.io/v1" || resp.Kind != "ConversionReview"):
		return nil, fmt.Errorf("expected webhook response of apiextensions.k8s.io/v1, Kind=ConversionReview, got %s, Kind=%s", resp.APIVersion, resp.Kind)
	case resp.Response == nil:
		return nil, errors.New("no response provided")
	case v1 && resp.Response.UID != uid:
		return nil, fmt.Errorf("expected response.uid=%q, got %q", uid, resp.Response.UID)
	case resp.Response.Result.Status != metav1.StatusSuccess:
		if resp.Response.Result.Message != "" {
			return nil, errors.New(resp.Response.Result.Message)
		}
		return nil, fmt.Errorf("response.result.status was '%s', not 'Success'", resp.Response.Result.Status)
	}
	return resp.Response.ConvertedObjects, nil
}

// convertedObject checks one converted object against its original and returns it with
// the original's metadata, but for the labels and annotations the webhook gave.
func convertedObject(in *kinds.Custom, raw []byte, apiVersion string) (*kinds.Custom, error) {
	var out kinds.Custom
	if err := out.UnmarshalJSON(raw); err != nil {
		return nil, err
	}
	switch {
	case out.APIVersion != apiVersion:
		return nil, fmt.Errorf("invalid groupVersion (expected %s, received %s)", apiVersion, out.APIVersion)
	case out.Kind != in.Kind:
		return nil, fmt.Errorf("invalid kind (expected %s, received %s)", in.Kind, out.Kind)
	case out.Name != in.Name:
		return nil, fmt.Errorf("must have the same name: %s != %s", in.Name, out.Name)
	case out.Namespace != in.Namespace:
		return nil, fmt.Errorf("must have the same namespace: %s != %s", in.Namespace, out.Namespace)
	case out.UID != in.UID:
		return nil, fmt.Errorf("must have the same UID: %s != %s", in.UID, out.UID)
	}
	labels, annotations := out.Labels, out.Annotations
	errs := metav1validation.ValidateLabels(labels, field.NewPath("metadata", "labels"))
	errs = append(errs, validation.ValidateAnnotations(annotations, field.NewPath("metadata", "annotations"))...)
	if len(errs) > 0 {
		return nil, errs.ToAggregate()
	}
	in.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	out.Labels, out.Annotations = labels, annotations
	return &out, nil
}

// conversionFailed is the API error of a failed conversion: an internal error, as
// Kubernetes answers it.
func conversionFailed(err error) error {
	return statusError(codes.Internal, ReasonInternal, nil, "Internal error occurred: %v", err)
}

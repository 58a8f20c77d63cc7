package apiserver

import (
	"context"
	"fmt"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/skiffhq/skiff/apiserver/validation"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/store"
)

// The subresources that write part of a pod's spec, which a plain update may not change:
// pods/ephemeralcontainers (kubectl debug adds a container to a running pod) and
// pods/resize (in-place resize of the containers' cpu and memory). Each reads as the pod
// and takes a Pod (PUT) or a patch of one; only its fields of the written pod are kept
// (metadata, status and the rest of the spec are the stored pod's), validated in
// Kubernetes' words, and a change counts a generation, as Kubernetes' strategies do.

const (
	subresourceEphemeralContainers = "ephemeralcontainers"
	subresourceResize              = "resize"
)

// podSpecWrite is one such subresource: the pod it makes of the stored one and the
// written one, and its check of the result.
type podSpecWrite struct {
	prepare  func(old, written *corev1.Pod) *corev1.Pod
	validate func(old, next *corev1.Pod) error
}

var podSpecWrites = map[string]podSpecWrite{
	subresourceEphemeralContainers: {validation.PrepareEphemeralContainers, validation.ValidateEphemeralContainersUpdate},
	subresourceResize:              {validation.PrepareResize, validation.ValidateResize},
}

// podSpecSubresource serves GET, PUT and PATCH of pods/ephemeralcontainers and pods/resize.
func (a *restAPI) podSpecSubresource(w http.ResponseWriter, r *http.Request, req *restRequest) {
	ctx := r.Context()
	switch req.verb {
	case verbGet:
		res, err := a.res.getObject(ctx, req.info, req.namespace, req.name, readOptions(r.URL.Query().Get("resourceVersion")))
		a.respond(w, r, http.StatusOK, res, err)
	case verbUpdate:
		obj, opts, ok := a.updateBody(w, r, req)
		if !ok {
			return
		}
		wantRV, err := parseRV(req.info, req.name, obj.GetResourceVersion())
		if err != nil {
			a.fail(w, r, err)
			return
		}
		res, err := a.res.update(ctx, req.info, keyOf(req.info, obj), wantRV, opts, func(cur kinds.Object, _ *store.Object) (kinds.Object, error) {
			return preparePodSpecWrite(ctx, req.subresource, cur, obj)
		})
		a.respond(w, r, http.StatusOK, res, err)
	case verbPatch:
		a.patch(w, r, req, func(cur, patched kinds.Object) (kinds.Object, error) {
			return preparePodSpecWrite(ctx, req.subresource, cur, patched)
		})
	}
}

// preparePodSpecWrite is the next stored state of cur, a pod, written through
// subresource with the pod written.
func preparePodSpecWrite(ctx context.Context, subresource string, cur, written kinds.Object) (kinds.Object, error) {
	info := kinds.Of(cur)
	old, pod := cur.(*corev1.Pod), written.(*corev1.Pod)
	if pod.UID != "" && pod.UID != old.UID {
		return nil, conflict(info, pod.Name, 0, fmt.Sprintf("Precondition failed: UID in object meta: %s, current UID: %s", pod.UID, old.UID))
	}
	sw := podSpecWrites[subresource]
	next := sw.prepare(old, pod)
	validation.Default(next)
	if err := sw.validate(old, next); err != nil {
		return nil, invalid(info, pod.Name, err)
	}
	if !equality.Semantic.DeepEqual(old.Spec, next.Spec) {
		next.Generation = old.Generation + 1
	}
	return track(ctx, info, subresource, cur, next)
}

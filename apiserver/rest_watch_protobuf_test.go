package apiserver_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"

	"github.com/skiffhq/skiff/apiserver"
	"github.com/skiffhq/skiff/test/apicluster"
)

// TestRESTWatchProtobuf: a watch asked for in protobuf, as client-go's typed clients ask,
// is Kubernetes' protobuf stream, read here by client-go's own watch decoder: the
// changes, the initial-events-end bookmark, and an ERROR event with 410 Expired.
func TestRESTWatchProtobuf(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{HistorySize: 20})
	rc := newREST(t, c.Addr(0), true)
	base := "/api/v1/namespaces/default/configmaps"
	cm := decodeJSON[corev1.ConfigMap](t, rc.want(rc.do("POST", base, "application/json", "", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "a"}}), 201, "create").body)
	client, err := rest.RESTClientFor(&rest.Config{Host: "http://" + c.Addr(0), ContentConfig: rest.ContentConfig{
		GroupVersion: &corev1.SchemeGroupVersion, ContentType: "application/vnd.kubernetes.protobuf",
		NegotiatedSerializer: scheme.Codecs.WithoutConversion()}, APIPath: "/api"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	open := func(opts metav1.ListOptions) watch.Interface {
		t.Helper()
		opts.Watch = true
		w, err := client.Get().Namespace("default").Resource("configmaps").VersionedParams(&opts, scheme.ParameterCodec).Watch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Stop)
		return w
	}
	next := func(w watch.Interface) watch.Event {
		t.Helper()
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatal("watch ended")
			}
			return ev
		case <-ctx.Done():
			t.Fatal("no watch event")
		}
		return watch.Event{}
	}
	name := func(ev watch.Event) string {
		if o, ok := ev.Object.(*corev1.ConfigMap); ok {
			return fmt.Sprintf("%s %s", ev.Type, o.Name)
		}
		return fmt.Sprintf("%s %T", ev.Type, ev.Object)
	}

	// The stream's media type, which client-go picks its decoder by (JSON would do too).
	r := rc.want(rc.do("GET", base+"?watch=1&timeoutSeconds=1&resourceVersion=0", "", "application/vnd.kubernetes.protobuf, */*", nil), 200, "watch in protobuf")
	if ct := r.header.Get("Content-Type"); ct != "application/vnd.kubernetes.protobuf;stream=watch" || len(r.body) < 8 || string(r.body[4:6]) != "\n\x05" {
		t.Errorf("watch in protobuf: Content-Type %q, %q", ct, r.body)
	}

	w := open(metav1.ListOptions{ResourceVersion: cm.ResourceVersion})
	rc.want(rc.do("POST", base, "application/json", "", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "b"}, Data: map[string]string{"k": "v"}}), 201, "create b")
	rc.want(rc.do("DELETE", base+"/a", "", "", nil), 200, "delete a")
	ev := next(w)
	if b, ok := ev.Object.(*corev1.ConfigMap); name(ev) != "ADDED b" || !ok || b.Data["k"] != "v" || b.ResourceVersion == "" {
		t.Errorf("first event = %s %+v", name(ev), ev.Object)
	}
	if ev = next(w); name(ev) != "DELETED a" {
		t.Errorf("second event = %s", name(ev))
	}

	// Watch-list: the state, then the bookmark that ends it (an empty ConfigMap).
	yes := true
	initial := open(metav1.ListOptions{SendInitialEvents: &yes, AllowWatchBookmarks: true, ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan})
	if ev = next(initial); name(ev) != "ADDED b" {
		t.Errorf("first initial event = %s", name(ev))
	}
	ev = next(initial)
	if o, ok := ev.Object.(*corev1.ConfigMap); name(ev) != "BOOKMARK " || !ok || o.Annotations[apiserver.InitialEventsAnnotation] != "true" || o.ResourceVersion == "" {
		t.Errorf("end of initial events = %s %+v", name(ev), ev.Object)
	}

	// Too old: an ERROR event carrying the 410 Status.
	for i := 0; i < 30; i++ {
		rc.want(rc.do("POST", base, "application/json", "", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("n%d", i)}}), 201, "create")
	}
	ev = next(open(metav1.ListOptions{ResourceVersion: cm.ResourceVersion}))
	if st, ok := ev.Object.(*metav1.Status); ev.Type != watch.Error || !ok || !apierrors.IsResourceExpired(apierrors.FromObject(st)) && !apierrors.IsGone(apierrors.FromObject(st)) {
		t.Errorf("too old watch = %s %+v", ev.Type, ev.Object)
	}
}

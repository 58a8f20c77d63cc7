package apiserver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/store"
)

// listedPod is a Running pod as the scale runs hold them (owner, labels, requests, the
// status a kubelet writes), with strings encoding/json escapes (HTML, control and
// non-ASCII characters) in an annotation.
func listedPod(i int) *corev1.Pod {
	at := metav1.NewTime(time.Date(2026, 12, 6, 11, 0, i%60, 0, time.UTC))
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("web-5d8f9c7b6-%05d", i), Namespace: "default", UID: types.UID(fmt.Sprintf("00000000-0000-0000-0001-%012d", i)),
			CreationTimestamp: at, Labels: map[string]string{"app": "web", "pod-template-hash": "5d8f9c7b6"},
			Annotations: map[string]string{"note": "<a href=\"x\">&amp;</a>\u2028\t é"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-5d8f9c7b6",
				UID: "00000000-0000-0000-0000-000000000001", Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}}},
		Spec: corev1.PodSpec{NodeName: fmt.Sprintf("sim-%d", i%100), Containers: []corev1.Container{{Name: "app", Image: "busybox",
			Command: []string{"sleep", "3600"}, Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, QOSClass: corev1.PodQOSBurstable, StartTime: &at, HostIP: "127.0.0.1",
			PodIP: "10.42.0.1", PodIPs: []corev1.PodIP{{IP: "10.42.0.1"}}},
	}
	for _, c := range []corev1.PodConditionType{corev1.PodInitialized, corev1.PodReady, corev1.ContainersReady, corev1.PodScheduled} {
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: c, Status: corev1.ConditionTrue, LastTransitionTime: at})
	}
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", Image: "docker.io/library/busybox:latest", Ready: true, Started: ptr.To(true),
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: at}}}}
	return p
}

// storedPods is a page of n listed pods as the store returns them, and the pods as
// Kubernetes would list them (resourceVersion set, no kind or apiVersion).
func storedPods(t testing.TB, n int) ([]store.Object, []corev1.Pod) {
	info := kinds.OfType[*corev1.Pod]()
	var items []store.Object
	var pods []corev1.Pod
	for i := range n {
		p := listedPod(i)
		value, labels, fields, err := encode(p)
		if err != nil {
			t.Fatal(err)
		}
		rev := int64(1000 + i)
		items = append(items, store.Object{Key: keyOf(info, p), Value: value, UID: string(p.UID), Labels: labels, Fields: fields, CreateRevision: rev, ModRevision: rev})
		p.ResourceVersion = strconv.FormatInt(rev, 10)
		pods = append(pods, *p)
	}
	return items, pods
}

// TestRESTListJSONIsKubernetes: a list's JSON is, byte for byte, what Kubernetes' JSON
// serializer (encoding/json's Encoder) writes for the same list: items without kind and
// apiVersion, the list's metadata with its continue token and remaining count, and an
// empty list's items as [].
func TestRESTListJSONIsKubernetes(t *testing.T) {
	info := kinds.OfType[*corev1.Pod]()
	a := &restAPI{}
	for _, n := range []int{0, 1, 3, 120} {
		items, pods := storedPods(t, n)
		l := listResult{items: items, rev: 5000}
		meta := metav1.ListMeta{ResourceVersion: "5000"}
		if n > 1 {
			left := int64(40)
			l.continueToken, l.remaining = "eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ", &left
			meta.Continue, meta.RemainingItemCount = l.continueToken, &left
		}
		if pods == nil {
			pods = []corev1.Pod{}
		}
		var want bytes.Buffer
		if err := json.NewEncoder(&want).Encode(&corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}, ListMeta: meta, Items: pods}); err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/api/v1/pods", nil)
		req.Header.Set("Accept", "application/json")
		a.respondList(rec, req, info, l)
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("%d pods: %d %s: %s", n, rec.Code, rec.Header().Get("Content-Type"), rec.Body)
		}
		if got := rec.Body.Bytes(); !bytes.Equal(got, want.Bytes()) {
			i := 0
			for i < len(got) && i < len(want.Bytes()) && got[i] == want.Bytes()[i] {
				i++
			}
			t.Fatalf("%d pods: the list's JSON differs from Kubernetes' at byte %d:\n got  …%s\n want …%s", n, i,
				got[max(i-80, 0):min(i+80, len(got))], want.Bytes()[max(i-80, 0):min(i+80, want.Len())])
		}
	}
}

// BenchmarkRESTListJSONPage is the server's part of one page of a JSON list (500 pods as
// the scale runs hold them): from the store's objects to the reply's bytes.
func BenchmarkRESTListJSONPage(b *testing.B) {
	info := kinds.OfType[*corev1.Pod]()
	items, _ := storedPods(b, 500)
	a := &restAPI{}
	req := httptest.NewRequest(http.MethodGet, "/api/v1/pods?limit=500", nil)
	req.Header.Set("Accept", "application/json")
	w := &discardResponse{header: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		a.respondList(w, req, info, listResult{items: items, rev: 5000})
	}
	b.ReportMetric(float64(w.n)/float64(b.N), "B/page")
}

// discardResponse is an http.ResponseWriter that counts what is written.
type discardResponse struct {
	header http.Header
	n      int
}

func (d *discardResponse) Header() http.Header { return d.header }
func (d *discardResponse) WriteHeader(int)     {}
func (d *discardResponse) Write(p []byte) (int, error) {
	d.n += len(p)
	return len(p), nil
}

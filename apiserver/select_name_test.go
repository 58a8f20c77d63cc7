package apiserver_test

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
	"github.com/skiffhq/skiff/test/apicluster"
)

// TestSelectByName: a list or watch with fieldSelector metadata.name=NAME (kubectl wait,
// rollout status, an informer of one object), served from the store's key and its index
// of names, answers what the selector says: in a namespace or across them, a kind
// without namespaces, with other selectors, by page; a watch sees its object's events
// and no other's, over REST and gRPC.
func TestSelectByName(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	rc := newREST(t, c.Addr(0), true)
	for _, ns := range []string{"a", "b"} {
		rc.want(rc.do("POST", "/api/v1/namespaces", "application/json", "", &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}), 201, "create namespace "+ns)
	}
	cm := func(ns, name, tier string) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"tier": tier}}}
	}
	for _, o := range []*corev1.ConfigMap{cm("a", "web", "front"), cm("a", "db", "back"), cm("b", "web", "front")} {
		rc.want(rc.do("POST", "/api/v1/namespaces/"+o.Namespace+"/configmaps", "application/json", "", o), 201, "create "+o.Namespace+"/"+o.Name)
	}
	for _, n := range []string{"n1", "n2", "n3"} {
		rc.want(rc.do("POST", "/api/v1/nodes", "application/json", "", &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n}}), 201, "create node "+n)
	}
	list := func(path string) (string, metav1.ListMeta) {
		t.Helper()
		l := decodeJSON[corev1.ConfigMapList](t, rc.want(rc.do("GET", path, "", "", nil), 200, "list "+path).body)
		var out []string
		for _, it := range l.Items {
			out = append(out, strings.TrimPrefix(it.Namespace+"/", "/")+it.Name)
		}
		return strings.Join(out, ","), l.ListMeta
	}
	for path, want := range map[string]string{
		"/api/v1/namespaces/a/configmaps?fieldSelector=metadata.name%3Dweb":                                        "a/web",
		"/api/v1/namespaces/b/configmaps?fieldSelector=metadata.name%3Ddb":                                         "",
		"/api/v1/configmaps?fieldSelector=metadata.name%3Dweb":                                                     "a/web,b/web",
		"/api/v1/configmaps?fieldSelector=metadata.name%3D%3Dweb,metadata.namespace%3Db":                           "b/web",
		"/api/v1/configmaps?fieldSelector=metadata.name%3Dweb&labelSelector=tier%3Dback":                           "",
		"/api/v1/namespaces/a/configmaps?fieldSelector=metadata.name%21%3Dweb&labelSelector=tier":                  "a/db",
		"/api/v1/configmaps?fieldSelector=metadata.name%3Dweb,metadata.name%3Ddb":                                  "",
		"/api/v1/nodes?fieldSelector=metadata.name%3Dn2":                                                           "n2",
		"/api/v1/nodes?fieldSelector=metadata.name%3Dn9":                                                           "",
		"/api/v1/nodes?fieldSelector=metadata.name%21%3Dn2":                                                        "n1,n3",
		"/api/v1/namespaces/a/configmaps?fieldSelector=metadata.name%3Dweb&resourceVersion=0":                      "a/web",
		"/api/v1/configmaps?fieldSelector=metadata.name%3Dweb&resourceVersionMatch=NotOlderThan&resourceVersion=1": "a/web,b/web",
	} {
		if got, _ := list(path); got != want {
			t.Errorf("list %s = %q, want %q", path, got, want)
		}
	}
	// By page: one, then the rest with the token.
	first, meta := list("/api/v1/configmaps?fieldSelector=metadata.name%3Dweb&limit=1")
	if first != "a/web" || meta.Continue == "" {
		t.Fatalf("first page of web = %q, continue %q", first, meta.Continue)
	}
	if rest, meta := list("/api/v1/configmaps?fieldSelector=metadata.name%3Dweb&limit=1&continue=" + meta.Continue); rest != "b/web" || meta.Continue != "" {
		t.Errorf("second page of web = %q, continue %q", rest, meta.Continue)
	}

	// Watches of a/web from the list's revision, over REST and gRPC: other objects'
	// changes (another name, the same name elsewhere) are not theirs.
	_, meta = list("/api/v1/namespaces/a/configmaps?fieldSelector=metadata.name%3Dweb")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	events := rc.watch(ctx, "/api/v1/namespaces/a/configmaps?watch=1&fieldSelector=metadata.name%3Dweb&resourceVersion="+meta.ResourceVersion)
	grpc, _ := dial(t, c.Addr(0))
	gw, err := grpc.Watch(ctx, &apiv1.WatchRequest{Kind: "ConfigMap", Namespace: "a", FieldSelector: "metadata.name=web", ResourceVersion: meta.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []*corev1.ConfigMap{cm("a", "db", "back"), cm("b", "web", "front"), cm("a", "web", "front")} {
		o.Data = map[string]string{"k": "changed"}
		rc.want(rc.do("PUT", "/api/v1/namespaces/"+o.Namespace+"/configmaps/"+o.Name, "application/json", "", o), 200, "update "+o.Namespace+"/"+o.Name)
	}
	rc.want(rc.do("DELETE", "/api/v1/namespaces/a/configmaps/web", "", "", nil), 200, "delete a/web")
	for _, want := range []string{"MODIFIED", "DELETED"} {
		select {
		case ev := <-events:
			if ev.Type != want || ev.Object.Namespace != "a" || ev.Object.Name != "web" {
				t.Errorf("REST watch of a/web: %s %s/%s, want %s a/web", ev.Type, ev.Object.Namespace, ev.Object.Name, want)
			}
		case <-ctx.Done():
			t.Fatalf("REST watch of a/web: no %s event", want)
		}
		resp, err := gw.Recv()
		if err != nil || len(resp.GetEvents()) == 0 {
			t.Fatalf("gRPC watch of a/web: %v %v", resp, err)
		}
		ev := resp.GetEvents()[0]
		if o := unwrap[*corev1.ConfigMap](t, ev.GetObject()); ev.GetType() != want || o.Namespace != "a" || o.Name != "web" {
			t.Errorf("gRPC watch of a/web: %s %s/%s, want %s a/web", ev.GetType(), o.Namespace, o.Name, want)
		}
	}
}

package apiserver

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffhq/skiff/apiserver/auth"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/pki"
	"github.com/skiffhq/skiff/store"
)

// TestAdmitNodeEventFromGraph: a kubelet's event that names a pod the node graph has
// bound (by uid) is admitted or refused from the graph alone, with no read of the pod
// (the resources have no store here: a read would panic); the graph's pod of another
// uid is not taken for the pod the event names.
func TestAdmitNodeEventFromGraph(t *testing.T) {
	g := newNodeGraph(nil, hclog.NewNullLogger())
	bound := func(name, uid, node string) {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}, Spec: corev1.PodSpec{NodeName: node}}
		g.put(&store.Object{Key: store.Key{Kind: kinds.Pod, Namespace: "default", Name: name}, UID: uid, Value: kinds.MustEncode(p),
			Fields: map[string]string{"spec.nodeName": node}})
	}
	bound("mine", "u1", "w1")
	bound("theirs", "u2", "w2")
	r := &resources{graph: g}
	ctx := context.WithValue(context.Background(), userKey{}, auth.User{Name: pki.NodeUserPrefix + "w1", Groups: []string{pki.GroupNodes}})
	event := func(pod, uid string) *corev1.Event {
		return &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: pod + ".1"},
			InvolvedObject: corev1.ObjectReference{Kind: kinds.Pod, Namespace: "default", Name: pod, UID: types.UID(uid)}}
	}
	info := kinds.MustLookup(kinds.Event)
	if err := r.admitNodeWrite(ctx, info, nil, event("mine", "u1")); err != nil {
		t.Fatalf("an event about its own pod: %v", err)
	}
	err := r.admitNodeWrite(ctx, info, nil, event("theirs", "u2"))
	if err == nil || !strings.Contains(err.Error(), `may not record events about pod "default/theirs": it is not bound to this node`) {
		t.Fatalf("an event about another node's pod: %v", err)
	}
	// Not the graph's pod (another uid): the graph does not answer, the store would.
	if node, ok := g.nodeOf(store.Key{Kind: kinds.Pod, Namespace: "default", Name: "theirs"}, "u3"); ok {
		t.Fatalf("the graph answered %q for another uid", node)
	}
	if _, ok := g.nodeOf(store.Key{Kind: kinds.Pod, Namespace: "default", Name: "mine"}, ""); ok {
		t.Fatal("the graph answered for an event without a uid")
	}
}

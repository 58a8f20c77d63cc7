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

// trailingStore answers a stale read from one state and a current read from another, as
// a member that has not yet applied what the leader committed does.
type trailingStore struct {
	stale, current map[string]string // pod name -> node ("" unbound); absent: no pod
	currentReads   int
}

func (s *trailingStore) Get(_ context.Context, k store.Key, opts store.ReadOptions) (store.Object, error) {
	state := s.current
	if opts.Stale {
		state = s.stale
	} else {
		s.currentReads++
	}
	node, ok := state[k.Name]
	if !ok {
		return store.Object{}, store.ErrNotFound
	}
	return store.Object{Key: k, Fields: map[string]string{"spec.nodeName": node}}, nil
}

// TestBoundNodeConfirmsANo: NodeRestriction's read of a pod's node takes the member's
// own state when it shows the pod bound (a bound pod's node never changes), but a pod
// the member lacks or has unbound is read again, current, before the answer stands:
// the kubelet may have seen the binding through another member.
func TestBoundNodeConfirmsANo(t *testing.T) {
	for _, tc := range []struct {
		name           string
		stale, current map[string]string
		wantNode       string
		wantFound      bool
		wantCurrent    int
	}{
		{"bound here", map[string]string{"p": "w1"}, map[string]string{"p": "w1"}, "w1", true, 0},
		{"bound elsewhere here", map[string]string{"p": "w2"}, map[string]string{"p": "w2"}, "w2", true, 0},
		{"unbound here, bound in the cluster", map[string]string{"p": ""}, map[string]string{"p": "w1"}, "w1", true, 1},
		{"absent here, bound in the cluster", map[string]string{}, map[string]string{"p": "w1"}, "w1", true, 1},
		{"unbound everywhere", map[string]string{"p": ""}, map[string]string{"p": ""}, "", true, 1},
		{"no such pod", map[string]string{}, map[string]string{}, "", false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &trailingStore{stale: tc.stale, current: tc.current}
			node, found, err := boundNode(context.Background(), s, store.Key{Kind: kinds.Pod, Namespace: "default", Name: "p"})
			if err != nil || node != tc.wantNode || found != tc.wantFound || s.currentReads != tc.wantCurrent {
				t.Errorf("boundNode = %q, %v, %v with %d current reads; want %q, %v, nil with %d",
					node, found, err, s.currentReads, tc.wantNode, tc.wantFound, tc.wantCurrent)
			}
		})
	}
}

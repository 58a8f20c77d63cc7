package apiserver

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/apiserver/auth"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/store"
)

// nodeGraph is Kubernetes' node authorizer graph for the objects Skiff's kubelet reads:
// for each node, the Secrets, ConfigMaps and PersistentVolumeClaims that the pods bound
// to it reference. It
// follows this member's store (a list of pods, then their watch), so what it says is
// what the store says, a moment later; a question it answers no waits for it to catch
// up with the cluster before the answer stands (References).
//
// A pod's references cannot change once it is bound (its spec is immutable but for
// images and tolerations), so the graph decodes a pod once, when it first sees it bound;
// every later event of the pod (its status) costs a map lookup.
type nodeGraph struct {
	store *store.Store
	log   hclog.Logger

	mu sync.RWMutex
	// pods are every pod, bound or not (node ""): the uid is what a pod-bound
	// service-account token's authentication checks (podUID), without a store read per
	// request. One map, not a map of uids beside one of bound pods: a member holds an
	// entry per pod of the cluster (issue 26).
	pods map[store.Key]graphPod
	refs map[graphRef]int // how many pods on the node reference the object
	rev  int64            // the revision the graph reflects
	// last is the references the last pod put holds: a pod whose references are equal
	// holds that same slice (the pods of a namespace mostly reference the same account
	// and the same ConfigMap of its CA), not a copy of its own.
	last []graphRef
	// advanced is closed, and replaced, when rev advances.
	advanced chan struct{}
}

// graphPod is what the graph keeps of a pod: its uid, and once it is bound its node,
// account and references.
type graphPod struct {
	uid, node string
	account   string // spec.serviceAccountName
	// refs are the objects the pod references, without the node (graphRef.node ""):
	// shared by pods whose references are equal. Read only.
	refs []graphRef
}

// graphRef is an object a pod on a node references.
type graphRef struct {
	node, resource, namespace, name string
}

var _ auth.Graph = (*nodeGraph)(nil)

// graphCatchUp bounds how long a no waits for the graph to catch up.
const graphCatchUp = 2 * time.Second

func newNodeGraph(s *store.Store, log hclog.Logger) *nodeGraph {
	return &nodeGraph{store: s, log: log.Named("nodegraph"), pods: map[store.Key]graphPod{}, refs: map[graphRef]int{},
		advanced: make(chan struct{})}
}

// References implements auth.Graph. A no may be the graph trailing the cluster (a pod
// bound a moment ago, which the kubelet already saw through another member): the answer
// stands once this member has applied everything committed and the graph has every pod
// change it applied.
func (g *nodeGraph) References(node, resource, namespace, name string) bool {
	ref := graphRef{node: node, resource: resource, namespace: namespace, name: name}
	if g.has(ref) {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), graphCatchUp)
	defer cancel()
	if err := g.store.Sync(ctx); err != nil {
		return false
	}
	target := g.store.LastChange(kinds.Pod)
	for {
		g.mu.RLock()
		rev, advanced, found := g.rev, g.advanced, g.refs[ref] > 0
		g.mu.RUnlock()
		if found || rev >= target {
			return found
		}
		select {
		case <-advanced:
		case <-ctx.Done():
			return false
		}
	}
}

// nodeOf is the node the pod at k with uid is bound to, when the graph has that pod: a
// bound pod's node never changes, so a known uid's answer is never stale (NodeRestriction's
// check of a kubelet's events, without a read of the pod for each).
func (g *nodeGraph) nodeOf(k store.Key, uid string) (string, bool) {
	if g == nil || uid == "" {
		return "", false
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	p, ok := g.pods[k]
	if !ok || p.uid != uid || p.node == "" {
		return "", false
	}
	return p.node, true
}

// boundPod is the bound pod at k with uid (its node and account, which never change
// while it is bound), as this member's state has it: the graph answers once it has every
// pod change this member had applied when asked, so a pod deleted through this member is
// not found. ok is false when the graph does not have that pod bound (not bound yet, or
// not seen yet: the graph may trail the cluster, so the caller reads the store rather
// than take the miss as an answer), or did not catch up within graphCatchUp.
func (g *nodeGraph) boundPod(k store.Key, uid string) (p graphPod, ok bool) {
	if g == nil || uid == "" {
		return graphPod{}, false
	}
	target := g.store.LastChange(kinds.Pod)
	var timeout <-chan time.Time
	for {
		g.mu.RLock()
		rev, advanced := g.rev, g.advanced
		p, ok = g.pods[k]
		g.mu.RUnlock()
		if !ok || p.uid != uid || p.node == "" {
			return graphPod{}, false
		}
		if rev >= target {
			return p, true
		}
		if timeout == nil {
			t := time.NewTimer(graphCatchUp)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-advanced:
		case <-timeout:
			return graphPod{}, false
		}
	}
}

// podUID is the uid of the pod at k ("" when there is none). A pod the graph does not
// have, or has with another uid, may be the graph trailing the cluster: that answer
// stands once this member has applied everything committed and the graph has caught
// up, as References' no.
func (g *nodeGraph) podUID(k store.Key, want string) string {
	g.mu.RLock()
	uid := g.pods[k].uid
	g.mu.RUnlock()
	if uid == want {
		return uid
	}
	ctx, cancel := context.WithTimeout(context.Background(), graphCatchUp)
	defer cancel()
	if err := g.store.Sync(ctx); err != nil {
		return uid
	}
	target := g.store.LastChange(kinds.Pod)
	for {
		g.mu.RLock()
		rev, advanced := g.rev, g.advanced
		uid = g.pods[k].uid
		g.mu.RUnlock()
		if uid == want || rev >= target {
			return uid
		}
		select {
		case <-advanced:
		case <-ctx.Done():
			return uid
		}
	}
}

func (g *nodeGraph) has(ref graphRef) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.refs[ref] > 0
}

// run keeps the graph current until ctx ends.
func (g *nodeGraph) run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := g.follow(ctx)
		if ctx.Err() != nil || errors.Is(err, store.ErrClosed) {
			return
		}
		g.log.Debug("following pods again", "error", err, "in", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// follow lists the pods into a new graph, then applies their changes.
func (g *nodeGraph) follow(ctx context.Context) error {
	objs, rev, err := g.store.List(ctx, kinds.Pod, store.ListOptions{Stale: true})
	if err != nil {
		return err
	}
	g.mu.Lock()
	clear(g.pods)
	clear(g.refs)
	g.last = nil
	for i := range objs {
		g.put(&objs[i])
	}
	g.advance(rev)
	g.mu.Unlock()
	w, err := g.store.Watch(store.WatchOptions{Kind: kinds.Pod, After: rev})
	if err != nil {
		return err
	}
	defer w.Close()
	for {
		evs, err := w.Next(ctx)
		if err != nil {
			return err
		}
		g.mu.Lock()
		for i := range evs {
			ev := &evs[i]
			switch ev.Type {
			case store.Added, store.Modified:
				g.put(&ev.Object)
			case store.Deleted:
				g.remove(ev.Object.Key)
			}
			g.advance(ev.Revision)
		}
		g.mu.Unlock()
	}
}

// advance records that the graph reflects revision rev. g.mu is held.
func (g *nodeGraph) advance(rev int64) {
	if rev <= g.rev {
		return
	}
	g.rev = rev
	close(g.advanced)
	g.advanced = make(chan struct{})
}

// put adds or updates a stored pod. g.mu is held.
func (g *nodeGraph) put(o *store.Object) {
	node := o.Fields["spec.nodeName"]
	cur, known := g.pods[o.Key]
	if known && cur.uid == o.UID && cur.node == node {
		return // a bound pod's references do not change
	}
	g.remove(o.Key)
	p := graphPod{uid: o.UID}
	defer func() { g.pods[o.Key] = p }()
	if node == "" {
		return
	}
	obj, err := decode(kinds.MustLookup(kinds.Pod), o)
	if err != nil {
		g.log.Warn("a pod the node graph cannot read: its node reads nothing through it", "pod", o.Key.String(), "error", err)
		return
	}
	pod := obj.(*corev1.Pod)
	refs := podReferences(pod)
	if slices.Equal(refs, g.last) {
		refs = g.last
	}
	g.last = refs
	p.node, p.refs = node, refs
	p.account = pod.Spec.ServiceAccountName
	accounts := kinds.MustLookup(kinds.ServiceAccount).Plural
	for _, r := range refs {
		if r.resource == accounts && r.name == p.account {
			p.account = r.name // the shared string
		}
		r.node = node
		g.refs[r]++
	}
}

// remove takes a pod's references out of the graph and the pod with them. g.mu is held.
func (g *nodeGraph) remove(k store.Key) {
	p, ok := g.pods[k]
	if !ok {
		return
	}
	for _, r := range p.refs {
		r.node = p.node
		if g.refs[r]--; g.refs[r] <= 0 {
			delete(g.refs, r)
		}
	}
	delete(g.pods, k)
}

// podReferences lists the Secrets, ConfigMaps and PersistentVolumeClaims a pod
// references, as Kubernetes' node authorizer finds them: volumes (secret, configMap,
// and both in projected; persistentVolumeClaim), every
// container's env valueFrom and envFrom (init and ephemeral containers too), and
// imagePullSecrets; and its ServiceAccount (whose tokens the node may request for it).
// The node is left for the caller to fill.
func podReferences(pod *corev1.Pod) []graphRef {
	var out []graphRef
	seen := map[graphRef]bool{}
	add := func(resource, name string) {
		r := graphRef{resource: resource, namespace: pod.Namespace, name: name}
		if name != "" && !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	secrets, configMaps := kinds.MustLookup(kinds.Secret).Plural, kinds.MustLookup(kinds.ConfigMap).Plural
	claims := kinds.MustLookup(kinds.PersistentVolumeClaim).Plural
	spec := &pod.Spec
	add(kinds.MustLookup(kinds.ServiceAccount).Plural, spec.ServiceAccountName)
	for _, s := range spec.ImagePullSecrets {
		add(secrets, s.Name)
	}
	env := func(c []corev1.EnvVar, from []corev1.EnvFromSource) {
		for _, e := range from {
			if e.SecretRef != nil {
				add(secrets, e.SecretRef.Name)
			}
			if e.ConfigMapRef != nil {
				add(configMaps, e.ConfigMapRef.Name)
			}
		}
		for _, e := range c {
			if e.ValueFrom == nil {
				continue
			}
			if r := e.ValueFrom.SecretKeyRef; r != nil {
				add(secrets, r.Name)
			}
			if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
				add(configMaps, r.Name)
			}
		}
	}
	for _, c := range spec.InitContainers {
		env(c.Env, c.EnvFrom)
	}
	for _, c := range spec.Containers {
		env(c.Env, c.EnvFrom)
	}
	for _, c := range spec.EphemeralContainers {
		env(c.Env, c.EnvFrom)
	}
	for _, v := range spec.Volumes {
		if v.Secret != nil {
			add(secrets, v.Secret.SecretName)
		}
		if v.ConfigMap != nil {
			add(configMaps, v.ConfigMap.Name)
		}
		if v.Projected != nil {
			for _, src := range v.Projected.Sources {
				if src.Secret != nil {
					add(secrets, src.Secret.Name)
				}
				if src.ConfigMap != nil {
					add(configMaps, src.ConfigMap.Name)
				}
			}
		}
		if v.PersistentVolumeClaim != nil {
			add(claims, v.PersistentVolumeClaim.ClaimName)
		}
	}
	return out
}

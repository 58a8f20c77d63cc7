// Package history keeps the revision history of DaemonSets and StatefulSets in
// ControllerRevisions, as Kubernetes' controller/history does: each revision is a
// snapshot of the owner's pod template (a strategic merge patch that replaces it, so that
// `rollout undo` applies it and `rollout history` shows it), named after the owner and a
// hash of the snapshot, numbered in the order the templates were current. A template
// that becomes current again (a rollback, or a change undone by hand) takes its old
// revision back with the newest number, rather than a copy.
package history

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"sort"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/rand"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
)

// HashLabel is the label of a revision that holds its hash (Kubernetes'
// ControllerRevisionHashLabel).
const HashLabel = "controller.kubernetes.io/hash"

// Hash is the hash of a revision's data and the owner's collision count: FNV-32a,
// written with Kubernetes' safe alphabet (Kubernetes' HashControllerRevision).
func Hash(data []byte, collisions *int32) string {
	h := fnv.New32a()
	h.Write(data)
	if collisions != nil {
		h.Write([]byte(strconv.FormatInt(int64(*collisions), 10)))
	}
	return rand.SafeEncodeString(fmt.Sprint(h.Sum32()))
}

// Name is a revision's name: the owner's, a dash and the hash, the owner's name cut so
// that the whole is a valid name.
func Name(owner, hash string) string {
	if len(owner) > 223 {
		owner = owner[:223]
	}
	return owner + "-" + hash
}

// TemplatePatch is the data of a revision of template: a strategic merge patch of its
// owner that replaces spec.template (Kubernetes' getPatch for DaemonSets and
// StatefulSets).
func TemplatePatch(t *corev1.PodTemplateSpec) ([]byte, error) {
	b, err := json.Marshal(t)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	m["$patch"] = "replace"
	return json.Marshal(map[string]any{"spec": map[string]any{"template": m}})
}

// Template reads the pod template a revision holds.
func Template(rev *appsv1.ControllerRevision) (*corev1.PodTemplateSpec, error) {
	var patch struct {
		Spec struct {
			Template json.RawMessage `json:"template"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(rev.Data.Raw, &patch); err != nil {
		return nil, fmt.Errorf("revision %s: %w", rev.Name, err)
	}
	var m map[string]any
	if err := json.Unmarshal(patch.Spec.Template, &m); err != nil {
		return nil, fmt.Errorf("revision %s: %w", rev.Name, err)
	}
	delete(m, "$patch")
	b, _ := json.Marshal(m)
	var t corev1.PodTemplateSpec
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("revision %s: %w", rev.Name, err)
	}
	return &t, nil
}

// New makes a revision of owner holding data, numbered revision, labelled with labels
// and its hash.
func New(owner kinds.Object, labels map[string]string, data []byte, revision int64, collisions *int32) *appsv1.ControllerRevision {
	hash := Hash(data, collisions)
	l := maps.Clone(labels)
	if l == nil {
		l = map[string]string{}
	}
	l[HashLabel] = hash
	return &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{Name: Name(owner.GetName(), hash), Namespace: owner.GetNamespace(), Labels: l,
			OwnerReferences: []metav1.OwnerReference{kinds.NewControllerRef(owner)}},
		Data: runtime.RawExtension{Raw: data}, Revision: revision,
	}
}

// Sort orders revisions oldest first: by number, then creation, then name.
func Sort(revs []*appsv1.ControllerRevision) {
	sort.SliceStable(revs, func(i, j int) bool {
		a, b := revs[i], revs[j]
		if a.Revision != b.Revision {
			return a.Revision < b.Revision
		}
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		return a.Name < b.Name
	})
}

// Equal says whether two revisions hold the same snapshot.
func Equal(a, b *appsv1.ControllerRevision) bool { return bytes.Equal(a.Data.Raw, b.Data.Raw) }

// Next is the number the next revision takes: one more than the newest of revs.
func Next(revs []*appsv1.ControllerRevision) int64 {
	var n int64
	for _, r := range revs {
		n = max(n, r.Revision)
	}
	return n + 1
}

// History writes an owner's revisions.
type History struct {
	Revisions *client.Client[*appsv1.ControllerRevision]
}

// Current returns the revision holding data among revs (sorted oldest first), made
// current: the newest already, an older one renumbered as the newest, or a new one.
// collisions is the owner's status.collisionCount: when a revision of another snapshot
// has the name this one's hash gives, it is raised and the name hashed again; the caller
// writes it back to the owner's status.
func (h History) Current(ctx context.Context, owner kinds.Object, labels map[string]string, data []byte,
	revs []*appsv1.ControllerRevision, collisions *int32) (*appsv1.ControllerRevision, error) {
	next := Next(revs)
	want := New(owner, labels, data, next, collisions)
	var equal *appsv1.ControllerRevision
	for _, r := range revs {
		if Equal(r, want) {
			equal = r
		}
	}
	switch {
	case equal != nil && len(revs) > 0 && equal == revs[len(revs)-1]:
		return equal, nil
	case equal != nil:
		cur := equal.DeepCopy()
		cur.Revision = next
		out, err := h.Revisions.Update(ctx, cur)
		if err != nil {
			return nil, fmt.Errorf("renumber revision %s: %w", equal.Name, err)
		}
		return out, nil
	}
	for range 10 {
		out, err := h.Revisions.Create(ctx, want)
		if err == nil {
			return out, nil
		}
		if !client.IsAlreadyExists(err) {
			return nil, fmt.Errorf("create revision %s: %w", want.Name, err)
		}
		existing, gerr := h.Revisions.Get(ctx, want.Namespace, want.Name)
		if gerr != nil {
			return nil, fmt.Errorf("read revision %s: %w", want.Name, gerr)
		}
		if Equal(existing, want) && metav1.IsControlledBy(existing, owner) {
			// Ours, not yet in the caller's cache.
			return existing, nil
		}
		*collisions++
		want = New(owner, labels, data, next, collisions)
	}
	return nil, fmt.Errorf("create a revision of %s: too many hash collisions", owner.GetName())
}

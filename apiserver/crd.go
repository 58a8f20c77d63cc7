package apiserver

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/store"
)

// CustomResourceDefinitions become served kinds as kube-apiserver's
// apiextensions-apiserver makes them: its naming controller accepts a CRD's names when
// no other CRD of the group holds them (NamesAccepted, status.acceptedNames), its
// establishing controller then marks it Established, and from then on its custom
// resources are served; deleting a CRD (finalizer customresourcecleanup) stops serving
// them and deletes them all before the CRD goes.
//
// Here one loop per API server does all of it (crdController): every member follows the
// CRDs from its own state and serves the established ones (kinds.SetCustom), and the
// leader writes their status and empties the deleted ones. It runs in the API server,
// not the controller-manager, as Kubernetes' does: what it decides is what this very
// server routes, and an API server without a controller-manager (its tests, a cluster
// being brought up) must still serve the CRDs users create.

// FinalizerCustomResourceCleanup holds a deleted CRD until its custom resources are gone.
const FinalizerCustomResourceCleanup = "customresourcecleanup.apiextensions.k8s.io"

type crdController struct {
	s    *Server
	crds map[string]*apiextensionsv1.CustomResourceDefinition
}

// run follows the CRDs until ctx ends.
func (c *crdController) run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := c.follow(ctx)
		if ctx.Err() != nil || errors.Is(err, store.ErrClosed) {
			return
		}
		c.s.log.Debug("following CustomResourceDefinitions again", "error", err, "in", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (c *crdController) follow(ctx context.Context) error {
	info := kinds.MustLookup(kinds.CustomResourceDefinition)
	objs, rev, err := c.s.store.List(ctx, info.Kind, store.ListOptions{Stale: true})
	if err != nil {
		return err
	}
	c.crds = map[string]*apiextensionsv1.CustomResourceDefinition{}
	for i := range objs {
		c.put(info, &objs[i])
	}
	c.reconcile(ctx)
	w, err := c.s.store.Watch(store.WatchOptions{Kind: info.Kind, After: rev})
	if err != nil {
		return err
	}
	defer w.Close()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	type next struct {
		evs []store.Event
		err error
	}
	for {
		// The watch is read on its own goroutine so that the tick (leadership moved, CRs
		// left to delete) is seen while no CRD changes.
		nc := make(chan next, 1)
		wctx, cancel := context.WithCancel(ctx)
		go func() {
			evs, err := w.Next(wctx)
			nc <- next{evs, err}
		}()
		var got next
	wait:
		for {
			select {
			case got = <-nc:
				break wait
			case <-tick.C:
				c.reconcile(ctx)
			}
		}
		cancel()
		if got.err != nil {
			return got.err
		}
		for i := range got.evs {
			ev := &got.evs[i]
			switch ev.Type {
			case store.Added, store.Modified:
				c.put(info, &ev.Object)
			case store.Deleted:
				delete(c.crds, ev.Object.Key.Name)
			}
		}
		c.reconcile(ctx)
	}
}

func (c *crdController) put(info *kinds.Info, o *store.Object) {
	obj, err := decode(info, o)
	if err != nil {
		c.s.log.Warn("a CustomResourceDefinition this server cannot read: not served", "object", o.Key.String(), "error", err)
		delete(c.crds, o.Key.Name)
		return
	}
	c.crds[o.Key.Name] = obj.(*apiextensionsv1.CustomResourceDefinition)
}

// reconcile serves the established CRDs and, on the leader, writes the status and
// deletes what deleted CRDs leave.
func (c *crdController) reconcile(ctx context.Context) {
	all := slices.Collect(maps.Values(c.crds))
	kinds.ServeCRDs(all, c.s.resources.webhooks.convertWebhook)
	c.s.openapi.SetCRDs(servedCRDs(all))
	if c.s.store.LeaderID() != c.s.cfg.Name {
		return
	}
	for name, crd := range c.crds {
		if crd.DeletionTimestamp != nil {
			if err := c.cleanUp(ctx, crd); err != nil && ctx.Err() == nil {
				c.s.log.Warn("deleting the custom resources of a deleted CRD", "crd", name, "error", err)
			}
			continue
		}
		want := crdStatus(crd, c.crds)
		if equalCRDStatus(&crd.Status, want) {
			continue
		}
		if err := c.writeStatus(ctx, crd.Name, func(cur *apiextensionsv1.CustomResourceDefinition) { cur.Status = *want }); err != nil && ctx.Err() == nil {
			c.s.log.Warn("writing a CRD's status", "crd", name, "error", err)
		}
	}
}

// servedCRDs are those of crds whose resources are served (kinds.ServeCRDs), by name.
func servedCRDs(crds []*apiextensionsv1.CustomResourceDefinition) []*apiextensionsv1.CustomResourceDefinition {
	var out []*apiextensionsv1.CustomResourceDefinition
	for _, crd := range crds {
		if kinds.Established(crd) && crd.DeletionTimestamp == nil {
			out = append(out, crd)
		}
	}
	slices.SortFunc(out, func(a, b *apiextensionsv1.CustomResourceDefinition) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (c *crdController) writeStatus(ctx context.Context, name string, mutate func(*apiextensionsv1.CustomResourceDefinition)) error {
	info := kinds.MustLookup(kinds.CustomResourceDefinition)
	_, err := c.s.resources.update(ctx, info, store.Key{Kind: info.Kind, Name: name}, 0, writeOptions{},
		func(cur kinds.Object, _ *store.Object) (kinds.Object, error) {
			next := cur.DeepCopyObject().(*apiextensionsv1.CustomResourceDefinition)
			mutate(next)
			return next, nil
		})
	return err
}

// cleanUp deletes a deleted CRD's custom resources, then lets the CRD go.
func (c *crdController) cleanUp(ctx context.Context, crd *apiextensionsv1.CustomResourceDefinition) error {
	if !slices.Contains(crd.Finalizers, FinalizerCustomResourceCleanup) {
		return nil
	}
	if !hasCondition(crd, apiextensionsv1.Terminating, apiextensionsv1.ConditionTrue) {
		return c.writeStatus(ctx, crd.Name, func(cur *apiextensionsv1.CustomResourceDefinition) {
			setCRDCondition(&cur.Status, apiextensionsv1.CustomResourceDefinitionCondition{Type: apiextensionsv1.Terminating,
				Status: apiextensionsv1.ConditionTrue, Reason: "InstanceDeletionInProgress", Message: "CustomResource deletion is in progress"})
		})
	}
	infos := kinds.NewCustomKinds(crd, c.s.resources.webhooks.convertWebhook)
	var stored *kinds.Info
	for _, in := range infos {
		if in.Conversion == nil {
			stored = in
		}
	}
	if stored != nil {
		objs, _, err := c.s.store.List(ctx, stored.Kind, store.ListOptions{})
		if err != nil {
			return err
		}
		remaining := 0
		for i := range objs {
			o := &objs[i]
			remaining++
			if _, err := c.s.resources.delete(ctx, stored, o.Key.Namespace, o.Key.Name, deleteOptions{}); err != nil && !isNotFound(err) {
				return fmt.Errorf("delete %s: %w", o.Key, err)
			}
		}
		if remaining > 0 {
			return nil // deleted or marked; the tick looks again
		}
	}
	return c.writeStatus(ctx, crd.Name, func(cur *apiextensionsv1.CustomResourceDefinition) {
		cur.Finalizers = slices.DeleteFunc(cur.Finalizers, func(f string) bool { return f == FinalizerCustomResourceCleanup })
	})
}

func hasCondition(crd *apiextensionsv1.CustomResourceDefinition, t apiextensionsv1.CustomResourceDefinitionConditionType, s apiextensionsv1.ConditionStatus) bool {
	for _, c := range crd.Status.Conditions {
		if c.Type == t {
			return c.Status == s
		}
	}
	return false
}

// crdStatus is the status crd should have among all: its accepted names and the
// NamesAccepted and Established conditions (Kubernetes' naming and establishing
// controllers), and its storage version among storedVersions.
func crdStatus(crd *apiextensionsv1.CustomResourceDefinition, all map[string]*apiextensionsv1.CustomResourceDefinition) *apiextensionsv1.CustomResourceDefinitionStatus {
	st := crd.Status.DeepCopy()
	names, reason, msg := acceptNames(crd, all)
	now := metav1.Now()
	if reason == "" {
		st.AcceptedNames = names
		setCRDCondition(st, apiextensionsv1.CustomResourceDefinitionCondition{Type: apiextensionsv1.NamesAccepted,
			Status: apiextensionsv1.ConditionTrue, Reason: "NoConflicts", Message: "no conflicts found", LastTransitionTime: now})
		if !hasCondition(&apiextensionsv1.CustomResourceDefinition{Status: *st}, apiextensionsv1.Established, apiextensionsv1.ConditionTrue) {
			setCRDCondition(st, apiextensionsv1.CustomResourceDefinitionCondition{Type: apiextensionsv1.Established,
				Status: apiextensionsv1.ConditionTrue, Reason: "InitialNamesAccepted", Message: "the initial names have been accepted", LastTransitionTime: now})
		}
	} else {
		setCRDCondition(st, apiextensionsv1.CustomResourceDefinitionCondition{Type: apiextensionsv1.NamesAccepted,
			Status: apiextensionsv1.ConditionFalse, Reason: reason, Message: msg, LastTransitionTime: now})
		if !kinds.Established(crd) {
			setCRDCondition(st, apiextensionsv1.CustomResourceDefinitionCondition{Type: apiextensionsv1.Established,
				Status: apiextensionsv1.ConditionFalse, Reason: "NotAccepted", Message: "not all names are accepted", LastTransitionTime: now})
		}
	}
	addStoredVersion(&crd.Spec, st)
	return st
}

// addStoredVersion adds spec's storage version to status.storedVersions, as
// Kubernetes' CRD strategy does on every write: a new storage version is recorded
// with the change that makes it one (the objects stored before stay in theirs).
func addStoredVersion(spec *apiextensionsv1.CustomResourceDefinitionSpec, st *apiextensionsv1.CustomResourceDefinitionStatus) {
	for _, v := range spec.Versions {
		if v.Storage && !slices.Contains(st.StoredVersions, v.Name) {
			st.StoredVersions = append(st.StoredVersions, v.Name)
		}
	}
}

// acceptNames is the naming controller's decision: crd's requested names, unless another
// CRD of its group accepted one of them first ("PluralConflict", ...). Skiff adds one
// rule: a kind's objects are stored under the kind's name, so a kind another group's
// CRD or a built-in kind has is refused too (KindConflict).
func acceptNames(crd *apiextensionsv1.CustomResourceDefinition, all map[string]*apiextensionsv1.CustomResourceDefinition) (apiextensionsv1.CustomResourceDefinitionNames, string, string) {
	want := crd.Spec.Names
	if want.ListKind == "" {
		want.ListKind = want.Kind + "List"
	}
	if want.Singular == "" {
		want.Singular = lower(want.Kind)
	}
	for _, in := range kinds.All() {
		if in.Kind == want.Kind {
			return want, "KindConflict", fmt.Sprintf("%q is already in use", want.Kind)
		}
	}
	for _, other := range all {
		if other.Name == crd.Name {
			continue
		}
		// The one accepted first keeps its names.
		if other.CreationTimestamp.After(crd.CreationTimestamp.Time) || other.CreationTimestamp.Equal(&crd.CreationTimestamp) && other.Name > crd.Name {
			continue
		}
		on := other.Status.AcceptedNames
		if on.Kind == "" {
			on = other.Spec.Names
		}
		if on.Kind == want.Kind && other.Spec.Group != crd.Spec.Group {
			return want, "KindConflict", fmt.Sprintf("%q is already in use", want.Kind)
		}
		if other.Spec.Group != crd.Spec.Group {
			continue
		}
		switch {
		case on.Plural == want.Plural:
			return want, "PluralConflict", fmt.Sprintf("%q is already in use", want.Plural)
		case on.Singular != "" && on.Singular == want.Singular:
			return want, "SingularConflict", fmt.Sprintf("%q is already in use", want.Singular)
		case on.Kind == want.Kind:
			return want, "KindConflict", fmt.Sprintf("%q is already in use", want.Kind)
		case on.ListKind != "" && on.ListKind == want.ListKind:
			return want, "ListKindConflict", fmt.Sprintf("%q is already in use", want.ListKind)
		}
		for _, s := range want.ShortNames {
			if slices.Contains(on.ShortNames, s) {
				return want, "ShortNamesConflict", fmt.Sprintf("%q is already in use", s)
			}
		}
	}
	return want, "", ""
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// setCRDCondition sets a condition, keeping its transition time when its status holds.
func setCRDCondition(st *apiextensionsv1.CustomResourceDefinitionStatus, c apiextensionsv1.CustomResourceDefinitionCondition) {
	for i := range st.Conditions {
		if st.Conditions[i].Type == c.Type {
			if st.Conditions[i].Status == c.Status {
				c.LastTransitionTime = st.Conditions[i].LastTransitionTime
			}
			st.Conditions[i] = c
			return
		}
	}
	st.Conditions = append(st.Conditions, c)
}

// equalCRDStatus compares what crdStatus decides (not the transition times).
func equalCRDStatus(a, b *apiextensionsv1.CustomResourceDefinitionStatus) bool {
	if len(a.Conditions) != len(b.Conditions) || !slices.Equal(a.StoredVersions, b.StoredVersions) ||
		a.AcceptedNames.Kind != b.AcceptedNames.Kind || a.AcceptedNames.Plural != b.AcceptedNames.Plural ||
		a.AcceptedNames.Singular != b.AcceptedNames.Singular || a.AcceptedNames.ListKind != b.AcceptedNames.ListKind ||
		!slices.Equal(a.AcceptedNames.ShortNames, b.AcceptedNames.ShortNames) || !slices.Equal(a.AcceptedNames.Categories, b.AcceptedNames.Categories) {
		return false
	}
	for i := range a.Conditions {
		x, y := a.Conditions[i], b.Conditions[i]
		if x.Type != y.Type || x.Status != y.Status || x.Reason != y.Reason || x.Message != y.Message {
			return false
		}
	}
	return true
}

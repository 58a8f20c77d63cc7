package apiserver

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	rbacvalidation "k8s.io/component-helpers/auth/rbac/validation"

	"github.com/skiffhq/skiff/apiserver/auth"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/store"
)

// rbacKinds are the kinds the RBAC authorizer reads.
var rbacKinds = []string{kinds.Role, kinds.ClusterRole, kinds.RoleBinding, kinds.ClusterRoleBinding}

// rbacFollower keeps the RBAC authorizer's index (auth.RBAC) current with this member's
// store: a list of each RBAC kind, then its watch, as nodeGraph follows pods. No
// request reads the store to be authorized; the index is a moment behind the store,
// and a refusal first waits for it to catch up with what this member has applied
// (catchUp), so a binding created through this member holds for the next request.
type rbacFollower struct {
	store *store.Store
	log   hclog.Logger
	index *auth.RBAC

	mu  sync.Mutex
	rev map[string]int64 // per kind, the revision the index reflects
	// advanced is closed, and replaced, when a revision advances.
	advanced chan struct{}
}

// rbacCatchUp bounds how long a refusal waits for the index to catch up.
const rbacCatchUp = 2 * time.Second

func newRBACFollower(s *store.Store, log hclog.Logger) *rbacFollower {
	f := &rbacFollower{store: s, log: log.Named("rbac"), index: auth.NewRBAC(), rev: map[string]int64{}, advanced: make(chan struct{})}
	f.index.CatchUp = f.catchUp
	return f
}

// catchUp waits until the index reflects every RBAC change this member had applied
// when it was called (at most rbacCatchUp), and reports whether it waited for anything.
// Changes applied meanwhile are not waited for: a stream of RBAC writes does not hold a
// refusal for the whole bound.
func (f *rbacFollower) catchUp() bool {
	var timer <-chan time.Time
	target := make([]int64, len(rbacKinds))
	for i, k := range rbacKinds {
		target[i] = f.store.LastChange(k)
	}
	waited := false
	for {
		f.mu.Lock()
		behind, advanced := false, f.advanced
		for i, k := range rbacKinds {
			if f.rev[k] < target[i] {
				behind = true
			}
		}
		f.mu.Unlock()
		if !behind {
			return waited
		}
		if timer == nil {
			timer = time.After(rbacCatchUp)
		}
		waited = true
		select {
		case <-advanced:
		case <-timer:
			return true
		}
	}
}

// run keeps the index current until ctx ends.
func (f *rbacFollower) run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, kind := range rbacKinds {
		wg.Go(func() {
			backoff := 100 * time.Millisecond
			for ctx.Err() == nil {
				err := f.follow(ctx, kind)
				if ctx.Err() != nil || errors.Is(err, store.ErrClosed) {
					return
				}
				f.log.Debug("following again", "kind", kind, "error", err, "in", backoff)
				select {
				case <-time.After(backoff):
				case <-ctx.Done():
					return
				}
				backoff = min(2*backoff, 5*time.Second)
			}
		})
	}
	wg.Wait()
}

// follow lists kind into the index (dropping what is gone), then applies its changes.
func (f *rbacFollower) follow(ctx context.Context, kind string) error {
	info := kinds.MustLookup(kind)
	objs, rev, err := f.store.List(ctx, kind, store.ListOptions{Stale: true})
	if err != nil {
		return err
	}
	known := map[store.Key]bool{}
	for i := range objs {
		f.put(info, &objs[i])
		known[objs[i].Key] = true
	}
	f.index.RemoveUnless(kind, func(namespace, name string) bool {
		return known[store.Key{Kind: kind, Namespace: namespace, Name: name}]
	})
	f.advance(kind, rev)
	w, err := f.store.Watch(store.WatchOptions{Kind: kind, After: rev})
	if err != nil {
		return err
	}
	defer w.Close()
	for {
		evs, err := w.Next(ctx)
		if err != nil {
			return err
		}
		for i := range evs {
			ev := &evs[i]
			switch ev.Type {
			case store.Added, store.Modified:
				f.put(info, &ev.Object)
			case store.Deleted:
				f.index.Remove(kind, ev.Object.Key.Namespace, ev.Object.Key.Name)
			}
			f.advance(kind, ev.Revision)
		}
	}
}

func (f *rbacFollower) put(info *kinds.Info, o *store.Object) {
	obj, err := decode(info, o)
	if err != nil {
		f.log.Warn("an RBAC object the authorizer cannot read: it grants nothing", "kind", info.Kind, "object", o.Key.String(), "error", err)
		f.index.Remove(info.Kind, o.Key.Namespace, o.Key.Name)
		return
	}
	f.index.Put(obj)
}

func (f *rbacFollower) advance(kind string, rev int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if rev <= f.rev[kind] {
		return
	}
	f.rev[kind] = rev
	close(f.advanced)
	f.advanced = make(chan struct{})
}

// admitRBAC is Kubernetes' escalation prevention, on every write of a Role, ClusterRole,
// RoleBinding or ClusterRoleBinding (old nil on create) but an update of the garbage
// collector's fields alone (onlyGCFields): a role's writer must hold every
// permission it grants, or may escalate it; a binding's writer must hold every
// permission of the role it binds, or may bind it. Administrators (skiff:admin,
// system:masters) may anything. A permission is held when the user's RBAC rules cover
// it or the built-in rules allow it.
func (r *resources) admitRBAC(ctx context.Context, info *kinds.Info, old, obj kinds.Object) error {
	az := r.authz
	if az == nil || az.RBAC == nil {
		return nil
	}
	switch obj.(type) {
	case *rbacv1.Role, *rbacv1.ClusterRole, *rbacv1.RoleBinding, *rbacv1.ClusterRoleBinding:
	default:
		// Before onlyGCFields, which copies and compares both objects: every update
		// of every kind comes here (a Job's pods' finalizer releases among them).
		return nil
	}
	u := requestUser(ctx)
	if auth.IsAdmin(u) || onlyGCFields(old, obj) {
		return nil
	}
	may := func(verb, resource, namespace, name string) bool {
		_, err := az.Authorize(auth.Attributes{User: u, Verb: verb, APIGroup: rbacv1.GroupName, Resource: resource, Namespace: namespace, Name: name})
		return err == nil
	}
	ns := obj.GetNamespace()
	var rules []rbacv1.PolicyRule
	switch o := obj.(type) {
	case *rbacv1.Role:
		if may(auth.Escalate, info.Plural, ns, o.Name) {
			return nil
		}
		rules = o.Rules
	case *rbacv1.ClusterRole:
		if may(auth.Escalate, info.Plural, "", o.Name) {
			return nil
		}
		rules = o.Rules
	case *rbacv1.RoleBinding, *rbacv1.ClusterRoleBinding:
		var ref rbacv1.RoleRef
		if rb, ok := o.(*rbacv1.RoleBinding); ok {
			ref = rb.RoleRef
		} else {
			ref = o.(*rbacv1.ClusterRoleBinding).RoleRef
		}
		roleInfo := kinds.MustLookup(ref.Kind)
		roleNS := ns
		if ref.Kind == kinds.ClusterRole {
			roleNS = ""
		}
		// Kubernetes authorizes bind in the binding's namespace: a RoleBinding may bind
		// a ClusterRole its writer may bind there.
		if may(auth.Bind, roleInfo.Plural, ns, ref.Name) {
			return nil
		}
		var ok bool
		if roleNS == "" {
			rules, ok = az.RBAC.ClusterRoleRules(ref.Name)
		} else {
			rules, ok = az.RBAC.RoleRules(roleNS, ref.Name)
		}
		if !ok {
			return statusError(codes.PermissionDenied, ReasonForbidden, nil, "%s %q is forbidden: %s.rbac.authorization.k8s.io %q not found",
				resourceName(info), obj.GetName(), strings.ToLower(ref.Kind), ref.Name).about(info, obj.GetName())
		}
	default:
		return nil
	}
	if msg := escalation(az, u, ns, rules); msg != "" {
		return statusError(codes.PermissionDenied, ReasonForbidden, nil, "%s %q is forbidden: %s", resourceName(info), obj.GetName(), msg).about(info, obj.GetName())
	}
	return nil
}

// onlyGCFields reports an update that changes no more than the garbage collector's
// fields (ownerReferences, finalizers) and what the server keeps (resourceVersion,
// generation, managedFields): Kubernetes' IsOnlyMutatingGCFields, which lets the
// garbage collector, or whoever may update the object, orphan or finalize a role or a
// binding without holding what it grants.
func onlyGCFields(old, obj kinds.Object) bool {
	if old == nil {
		return false
	}
	a, b := clone(obj), clone(old)
	for _, o := range []kinds.Object{a, b} {
		o.SetOwnerReferences(nil)
		o.SetFinalizers(nil)
		o.SetManagedFields(nil)
		o.SetResourceVersion("")
		o.SetGeneration(0)
	}
	return equality.Semantic.DeepEqual(a, b)
}

// escalation is Kubernetes' ConfirmNoEscalation: "" when u holds every rule in
// namespace (its RBAC rules cover it, validation.Covers, or the built-in rules allow
// each of its atomic parts), else Kubernetes' refusal listing what u does not hold.
func escalation(az *auth.Authorizer, u auth.User, namespace string, rules []rbacv1.PolicyRule) string {
	owner, missingRoles := az.RBAC.RulesFor(u, namespace)
	covered, missing := rbacvalidation.Covers(owner, rules)
	if covered {
		return ""
	}
	var still []rbacv1.PolicyRule
	for _, m := range missing {
		if !builtinHolds(az, u, namespace, m) {
			still = append(still, m)
		}
	}
	if len(still) == 0 {
		return ""
	}
	descs := map[string]bool{}
	for _, m := range compactRules(still) {
		descs[compactString(m)] = true
	}
	msg := fmt.Sprintf("user %q (groups=%q) is attempting to grant RBAC permissions not currently held:\n%s", u.Name, u.Groups,
		strings.Join(slices.Sorted(maps.Keys(descs)), "\n"))
	if len(missingRoles) > 0 {
		msg += fmt.Sprintf("; resolution errors: %v", missingRoles)
	}
	return msg
}

// builtinHolds tells whether the authorizer allows u an atomic rule (one verb, group,
// resource and name, or one URL, as validation.Covers reports them) without a wildcard.
func builtinHolds(az *auth.Authorizer, u auth.User, namespace string, m rbacv1.PolicyRule) bool {
	a := auth.Attributes{User: u, Namespace: namespace}
	if len(m.Verbs) != 1 || m.Verbs[0] == "*" {
		return false
	}
	a.Verb = m.Verbs[0]
	if len(m.NonResourceURLs) == 1 {
		if strings.HasSuffix(m.NonResourceURLs[0], "*") {
			return false
		}
		a.Path = m.NonResourceURLs[0]
	} else {
		if len(m.APIGroups) != 1 || len(m.Resources) != 1 || m.APIGroups[0] == "*" || strings.Contains(m.Resources[0], "*") {
			return false
		}
		a.APIGroup = m.APIGroups[0]
		a.Resource, a.Subresource, _ = strings.Cut(m.Resources[0], "/")
		if len(m.ResourceNames) == 1 {
			a.Name = m.ResourceNames[0]
		}
		if in, ok := kinds.Lookup(a.Resource); !ok || in.Group != a.APIGroup {
			return false // not a kind Skiff serves: the built-in rules know only those
		}
		switch a.Verb { // the built-in rules' verbs: a patch is an update, deletecollection a delete
		case "patch":
			a.Verb, a.RequestVerb = auth.Update, "patch"
		case "deletecollection":
			a.Verb, a.RequestVerb = auth.Delete, "deletecollection"
		}
	}
	_, err := az.Authorize(a)
	return err == nil
}

// compactRules is Kubernetes' CompactRules: atomic rules that differ only in their verb
// are one rule with the verbs.
func compactRules(rules []rbacv1.PolicyRule) []rbacv1.PolicyRule {
	var out []rbacv1.PolicyRule
	at := map[string]int{}
	for _, m := range rules {
		key := fmt.Sprintf("%q %q %q %q", m.APIGroups, m.Resources, m.ResourceNames, m.NonResourceURLs)
		if i, ok := at[key]; ok && len(m.NonResourceURLs) == 0 {
			out[i].Verbs = append(out[i].Verbs, m.Verbs...)
			continue
		}
		at[key] = len(out)
		out = append(out, *m.DeepCopy())
	}
	return out
}

// compactString is Kubernetes' CompactString of a rule, as its escalation refusals list
// them: {APIGroups:["apps"], Resources:["deployments"], Verbs:["get" "list"]}.
func compactString(r rbacv1.PolicyRule) string {
	var parts []string
	add := func(name string, v []string) {
		if len(v) > 0 {
			parts = append(parts, fmt.Sprintf("%s:%q", name, v))
		}
	}
	add("APIGroups", r.APIGroups)
	add("Resources", r.Resources)
	add("NonResourceURLs", r.NonResourceURLs)
	add("ResourceNames", r.ResourceNames)
	add("Verbs", r.Verbs)
	return "{" + strings.Join(parts, ", ") + "}"
}

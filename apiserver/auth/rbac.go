package auth

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/skiffhq/skiff/kinds"
)

// Kubernetes' groups and names that RBAC's subjects use.
const (
	// GroupAuthenticated is every authenticated user's group.
	GroupAuthenticated = "system:authenticated"
	// GroupUnauthenticated is the group of system:anonymous.
	GroupUnauthenticated = "system:unauthenticated"
	// UserAnonymous is the user of a request without credentials (impersonated: Skiff
	// serves no request without credentials).
	UserAnonymous = "system:anonymous"
	// GroupMasters is Kubernetes' superuser group: an administrator, as skiff:admin.
	GroupMasters = "system:masters"
	// ServiceAccountUserPrefix + NAMESPACE:NAME is a service account's user.
	ServiceAccountUserPrefix = "system:serviceaccount:"
)

// The verbs RBAC checks beside a request's: creating or updating a role that grants
// what its writer does not hold (escalate), binding a role whose permissions the writer
// does not hold (bind), and acting as another user, group or service account
// (impersonate).
const (
	Escalate    = "escalate"
	Bind        = "bind"
	Impersonate = "impersonate"
)

// RBAC is Kubernetes' RBAC authorizer over an in-memory index of the cluster's Roles,
// ClusterRoles, RoleBindings and ClusterRoleBindings. Whoever owns it keeps it current
// (Put, Remove, Reset: the API server follows its store); a decision reads only the
// index, under a read lock, so it costs map lookups for the user, each of its groups
// and its service account, and a scan of the rules of the roles bound to them.
type RBAC struct {
	mu           sync.RWMutex
	roles        map[nsName][]rbacv1.PolicyRule // Roles by namespace/name
	clusterRoles map[string][]rbacv1.PolicyRule
	// bound are the bindings of each subject; bindings what each binding is, for its
	// removal.
	bound    map[subject]map[nsName]*binding
	bindings map[nsName]*binding // a ClusterRoleBinding's namespace is ""

	// CatchUp, when set, is called before a refusal stands: it waits until the index
	// reflects every change its owner knows of, and reports whether it waited (the
	// request is then decided again).
	CatchUp func() bool
}

type nsName struct{ namespace, name string }

// subject is a binding's subject: a user or group (namespace ""), or a service account.
type subject struct{ kind, namespace, name string }

// binding is what a decision needs of a RoleBinding or ClusterRoleBinding.
type binding struct {
	nsName
	roleKind, roleName string
	subjects           []subject
}

// NewRBAC returns an empty index: it allows nothing until objects are put in.
func NewRBAC() *RBAC {
	r := &RBAC{}
	r.Reset()
	return r
}

// Reset empties the index (before a fresh list is put in).
func (r *RBAC) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.roles = map[nsName][]rbacv1.PolicyRule{}
	r.clusterRoles = map[string][]rbacv1.PolicyRule{}
	r.bound = map[subject]map[nsName]*binding{}
	r.bindings = map[nsName]*binding{}
}

// Put adds or replaces a Role, ClusterRole, RoleBinding or ClusterRoleBinding; other
// objects are ignored. The index keeps obj's rules and subjects: the caller must not
// change obj afterwards.
func (r *RBAC) Put(obj kinds.Object) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch o := obj.(type) {
	case *rbacv1.Role:
		r.roles[nsName{o.Namespace, o.Name}] = o.Rules
	case *rbacv1.ClusterRole:
		r.clusterRoles[o.Name] = o.Rules
	case *rbacv1.RoleBinding:
		r.putBinding(nsName{o.Namespace, o.Name}, o.RoleRef, o.Subjects)
	case *rbacv1.ClusterRoleBinding:
		r.putBinding(nsName{"", o.Name}, o.RoleRef, o.Subjects)
	}
}

// Remove takes the object of kind namespace/name out of the index.
func (r *RBAC) Remove(kind, namespace, name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch kind {
	case kinds.Role:
		delete(r.roles, nsName{namespace, name})
	case kinds.ClusterRole:
		delete(r.clusterRoles, name)
	case kinds.RoleBinding:
		r.removeBinding(nsName{namespace, name})
	case kinds.ClusterRoleBinding:
		r.removeBinding(nsName{"", name})
	}
}

// RemoveUnless takes out every object of kind for which keep is false (those gone
// from a fresh list).
func (r *RBAC) RemoveUnless(kind string, keep func(namespace, name string) bool) {
	r.mu.Lock()
	var gone []nsName
	switch kind {
	case kinds.Role:
		for k := range r.roles {
			if !keep(k.namespace, k.name) {
				gone = append(gone, k)
			}
		}
	case kinds.ClusterRole:
		for name := range r.clusterRoles {
			if !keep("", name) {
				gone = append(gone, nsName{"", name})
			}
		}
	case kinds.RoleBinding, kinds.ClusterRoleBinding:
		for k := range r.bindings {
			if (k.namespace != "") == (kind == kinds.RoleBinding) && !keep(k.namespace, k.name) {
				gone = append(gone, k)
			}
		}
	}
	r.mu.Unlock()
	for _, k := range gone {
		r.Remove(kind, k.namespace, k.name)
	}
}

// putBinding indexes a binding by its subjects. r.mu is held.
func (r *RBAC) putBinding(k nsName, ref rbacv1.RoleRef, subjects []rbacv1.Subject) {
	r.removeBinding(k)
	b := &binding{nsName: k, roleKind: ref.Kind, roleName: ref.Name}
	for _, s := range subjects {
		sub := subject{kind: s.Kind, name: s.Name}
		if s.Kind == rbacv1.ServiceAccountKind {
			// A RoleBinding's service account without a namespace is of the binding's.
			sub.namespace = s.Namespace
			if sub.namespace == "" {
				sub.namespace = k.namespace
			}
		}
		b.subjects = append(b.subjects, sub)
		m := r.bound[sub]
		if m == nil {
			m = map[nsName]*binding{}
			r.bound[sub] = m
		}
		m[k] = b
	}
	r.bindings[k] = b
}

// removeBinding takes a binding out. r.mu is held.
func (r *RBAC) removeBinding(k nsName) {
	b, ok := r.bindings[k]
	if !ok {
		return
	}
	for _, sub := range b.subjects {
		if m := r.bound[sub]; m != nil {
			delete(m, k)
			if len(m) == 0 {
				delete(r.bound, sub)
			}
		}
	}
	delete(r.bindings, k)
}

// visit calls f with the rules of every role bound to u that applies in namespace (a
// ClusterRoleBinding's everywhere, a RoleBinding's in its namespace), until f returns
// false, and reports the bound roles that do not exist, as Kubernetes' rule resolver
// does. r.mu is read-held.
func (r *RBAC) visit(u User, namespace string, f func(sub subject, b *binding, rules []rbacv1.PolicyRule) bool) (missing []string) {
	each := func(sub subject) bool {
		for _, b := range r.bound[sub] {
			if b.namespace != "" && b.namespace != namespace {
				continue
			}
			var rules []rbacv1.PolicyRule
			var ok bool
			if b.roleKind == "Role" {
				rules, ok = r.roles[nsName{b.namespace, b.roleName}]
			} else {
				rules, ok = r.clusterRoles[b.roleName]
			}
			if !ok {
				missing = append(missing, fmt.Sprintf("%s.rbac.authorization.k8s.io %q not found", strings.ToLower(b.roleKind), b.roleName))
				continue
			}
			if !f(sub, b, rules) {
				return false
			}
		}
		return true
	}
	if !each(subject{kind: rbacv1.UserKind, name: u.Name}) {
		return nil
	}
	if ns, name, ok := ServiceAccountOf(u.Name); ok && !each(subject{kind: rbacv1.ServiceAccountKind, namespace: ns, name: name}) {
		return nil
	}
	for _, g := range u.Groups {
		if !each(subject{kind: rbacv1.GroupKind, name: g}) {
			return nil
		}
	}
	return missing
}

// ServiceAccountOf parses a service account's user name, system:serviceaccount:NS:NAME.
func ServiceAccountOf(user string) (namespace, name string, ok bool) {
	rest, ok := strings.CutPrefix(user, ServiceAccountUserPrefix)
	if !ok {
		return "", "", false
	}
	namespace, name, ok = strings.Cut(rest, ":")
	return namespace, name, ok && namespace != "" && name != ""
}

// Allows tells whether a role bound to a.User grants a. The reason of an allowance
// names the binding, of a refusal the bound roles that do not exist (empty when none),
// both as Kubernetes' RBAC authorizer words them.
func (r *RBAC) Allows(a Attributes) (bool, string) {
	if r == nil {
		return false, ""
	}
	ok, reason := r.allows(a)
	if !ok && r.CatchUp != nil && r.CatchUp() {
		ok, reason = r.allows(a)
	}
	return ok, reason
}

func (r *RBAC) allows(a Attributes) (bool, string) {
	group := a.APIGroup
	if group == "" && a.Path == "" {
		if in, ok := kinds.Lookup(a.Resource); ok && in.Plural == a.Resource {
			group = in.Group
		}
	}
	verb := a.Verb
	if a.RequestVerb != "" {
		verb = a.RequestVerb
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	var by *binding
	var to subject
	missing := r.visit(a.User, a.Namespace, func(sub subject, b *binding, rules []rbacv1.PolicyRule) bool {
		for i := range rules {
			if ruleAllows(&rules[i], verb, group, a.Resource, a.Subresource, a.Name, a.Path) {
				by, to = b, sub
				return false
			}
		}
		return true
	})
	if by != nil {
		who := to.name
		if to.kind == rbacv1.ServiceAccountKind {
			who = to.namespace + "/" + to.name
		}
		if by.namespace != "" {
			return true, fmt.Sprintf("RBAC: allowed by RoleBinding %q of %s %q to %s %q", by.name+"/"+by.namespace, by.roleKind, by.roleName, to.kind, who)
		}
		return true, fmt.Sprintf("RBAC: allowed by ClusterRoleBinding %q of %s %q to %s %q", by.name, by.roleKind, by.roleName, to.kind, who)
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return false, "RBAC: " + strings.Join(slices.Compact(missing), ", ")
	}
	return false, ""
}

// RulesFor is every rule granted to u in namespace ("": cluster-wide alone), and the
// bound roles that do not exist.
func (r *RBAC) RulesFor(u User, namespace string) ([]rbacv1.PolicyRule, []string) {
	if r == nil {
		return nil, nil
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []rbacv1.PolicyRule
	missing := r.visit(u, namespace, func(_ subject, _ *binding, rules []rbacv1.PolicyRule) bool {
		out = append(out, rules...)
		return true
	})
	return out, missing
}

// ClusterRoleRules is the rules of a ClusterRole, or false when there is none.
func (r *RBAC) ClusterRoleRules(name string) ([]rbacv1.PolicyRule, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	rules, ok := r.clusterRoles[name]
	return rules, ok
}

// RoleRules is the rules of a Role, or false when there is none.
func (r *RBAC) RoleRules(namespace, name string) ([]rbacv1.PolicyRule, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	rules, ok := r.roles[nsName{namespace, name}]
	return rules, ok
}

// ruleAllows is Kubernetes' RuleAllows: a resource request matches a rule's verbs, API
// groups, resources (RESOURCE/SUBRESOURCE, */SUBRESOURCE) and names; a non-resource one
// (path set) its verbs and URLs (a trailing * is a prefix).
func ruleAllows(rule *rbacv1.PolicyRule, verb, group, resource, subresource, name, path string) bool {
	if !matches(rule.Verbs, verb) {
		return false
	}
	if path != "" {
		for _, u := range rule.NonResourceURLs {
			if u == rbacv1.NonResourceAll || u == path || strings.HasSuffix(u, "*") && strings.HasPrefix(path, strings.TrimSuffix(u, "*")) {
				return true
			}
		}
		return false
	}
	if !matches(rule.APIGroups, group) {
		return false
	}
	combined := resource
	if subresource != "" {
		combined += "/" + subresource
	}
	resourceOK := false
	for _, res := range rule.Resources {
		if res == rbacv1.ResourceAll || res == combined || subresource != "" && res == "*/"+subresource {
			resourceOK = true
			break
		}
	}
	if !resourceOK {
		return false
	}
	return len(rule.ResourceNames) == 0 || name != "" && slices.Contains(rule.ResourceNames, name)
}

// matches is a rule's list that holds want or *.
func matches(list []string, want string) bool {
	for _, x := range list {
		if x == want || x == "*" {
			return true
		}
	}
	return false
}

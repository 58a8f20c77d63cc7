package apiserver

import (
	"context"
	"fmt"
	"maps"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	rbacvalidation "k8s.io/component-helpers/auth/rbac/validation"

	"github.com/skiffhq/skiff/apiserver/auth"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/store"
)

// Kubernetes' default RBAC roles and bindings that users and charts rely on
// (plugin/pkg/auth/authorizer/rbac/bootstrappolicy): the user-facing cluster-admin,
// admin, edit and view (the last three aggregated from ClusterRoles labelled
// rbac.authorization.k8s.io/aggregate-to-*), the system:aggregate-to-* roles that
// feed them, and what every authenticated user may (system:discovery,
// system:basic-user, system:public-info-viewer), the garbage collector's
// system:controller:generic-garbage-collector, and for extension API servers (the
// aggregation layer, aggregator.go) system:auth-delegator (TokenReviews and
// SubjectAccessReviews) and, in kube-system, the Role
// extension-apiserver-authentication-reader (that ConfigMap). The API servers reconcile them at
// start as Kubernetes' do: a missing one is created, an existing one gets what it
// lacks (rules, subjects, labels, annotations) and keeps what a user added, and one
// annotated rbac.authorization.kubernetes.io/autoupdate=false is left alone.

// aggregateTo is the label that makes a ClusterRole part of an aggregated one.
const aggregateTo = "rbac.authorization.k8s.io/aggregate-to-"

var (
	rbacRead      = []string{"get", "list", "watch"}
	rbacWrite     = []string{"create", "update", "patch", "delete", "deletecollection"}
	rbacReadWrite = []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}
)

func rule(verbs []string, groups []string, resources ...string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{Verbs: verbs, APIGroups: groups, Resources: resources}
}

func defaultMeta(name string, labels map[string]string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Labels: maps.Clone(labels),
		Annotations: map[string]string{rbacv1.AutoUpdateAnnotationKey: "true"}}
}

func bootstrapLabels(extra ...string) map[string]string {
	l := map[string]string{"kubernetes.io/bootstrapping": "rbac-defaults"}
	for i := 0; i+1 < len(extra); i += 2 {
		l[extra[i]] = extra[i+1]
	}
	return l
}

func aggregated(to string) *rbacv1.AggregationRule {
	return &rbacv1.AggregationRule{ClusterRoleSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{aggregateTo + to: "true"}}}}
}

// defaultClusterRoles are Kubernetes' (for the kinds Skiff serves, and the groups it
// will).
func defaultClusterRoles() []*rbacv1.ClusterRole {
	core, apps, batch := []string{""}, []string{"apps"}, []string{"batch"}
	viewRules := []rbacv1.PolicyRule{
		rule(rbacRead, core, "pods", "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts",
			"services", "services/status", "endpoints", "persistentvolumeclaims", "persistentvolumeclaims/status", "configmaps"),
		rule(rbacRead, core, "limitranges", "resourcequotas", "bindings", "pods/status", "resourcequotas/status",
			"namespaces/status", "replicationcontrollers/status", "pods/log"),
		rule(rbacRead, core, "namespaces"),
		rule(rbacRead, []string{"", "events.k8s.io"}, "events"),
		rule(rbacRead, []string{"discovery.k8s.io"}, "endpointslices"),
		rule(rbacRead, apps, "controllerrevisions", "statefulsets", "statefulsets/status", "statefulsets/scale",
			"daemonsets", "daemonsets/status", "deployments", "deployments/status", "deployments/scale",
			"replicasets", "replicasets/status", "replicasets/scale"),
		rule(rbacRead, []string{"autoscaling"}, "horizontalpodautoscalers", "horizontalpodautoscalers/status"),
		rule(rbacRead, batch, "jobs", "cronjobs", "cronjobs/status", "jobs/status"),
		rule(rbacRead, []string{"policy"}, "poddisruptionbudgets", "poddisruptionbudgets/status"),
		rule(rbacRead, []string{"networking.k8s.io"}, "networkpolicies", "ingresses", "ingresses/status"),
	}
	editRules := []rbacv1.PolicyRule{
		rule(rbacRead, core, "pods/attach", "pods/proxy", "pods/exec", "pods/portforward", "secrets", "services/proxy"),
		rule([]string{auth.Impersonate}, core, "serviceaccounts"),
		rule(rbacWrite, core, "pods", "pods/attach", "pods/proxy", "pods/exec", "pods/portforward"),
		rule([]string{"create"}, core, "pods/eviction"),
		rule(rbacWrite, core, "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts",
			"services", "services/proxy", "persistentvolumeclaims", "configmaps", "secrets"),
		rule([]string{"create"}, core, "serviceaccounts/token"),
		rule(rbacWrite, []string{"", "events.k8s.io"}, "events"),
		rule(rbacWrite, apps, "statefulsets", "statefulsets/scale", "daemonsets", "deployments", "deployments/scale",
			"deployments/rollback", "replicasets", "replicasets/scale"),
		rule(rbacWrite, []string{"autoscaling"}, "horizontalpodautoscalers"),
		rule(rbacWrite, batch, "jobs", "cronjobs"),
		rule(rbacWrite, []string{"policy"}, "poddisruptionbudgets"),
		rule(rbacWrite, []string{"networking.k8s.io"}, "networkpolicies", "ingresses"),
		rule(rbacReadWrite, []string{"coordination.k8s.io"}, "leases"),
	}
	return []*rbacv1.ClusterRole{
		{ObjectMeta: defaultMeta("cluster-admin", bootstrapLabels()), Rules: []rbacv1.PolicyRule{
			rule([]string{"*"}, []string{"*"}, "*"),
			{Verbs: []string{"*"}, NonResourceURLs: []string{"*"}},
		}},
		{ObjectMeta: defaultMeta("admin", bootstrapLabels()), AggregationRule: aggregated("admin")},
		{ObjectMeta: defaultMeta("edit", bootstrapLabels(aggregateTo+"admin", "true")), AggregationRule: aggregated("edit")},
		{ObjectMeta: defaultMeta("view", bootstrapLabels(aggregateTo+"edit", "true")), AggregationRule: aggregated("view")},
		{ObjectMeta: defaultMeta("system:aggregate-to-admin", bootstrapLabels(aggregateTo+"admin", "true")), Rules: []rbacv1.PolicyRule{
			rule([]string{"create"}, []string{"authorization.k8s.io"}, "localsubjectaccessreviews"),
			rule(rbacReadWrite, []string{rbacv1.GroupName}, "roles", "rolebindings"),
		}},
		{ObjectMeta: defaultMeta("system:aggregate-to-edit", bootstrapLabels(aggregateTo+"edit", "true")), Rules: editRules},
		{ObjectMeta: defaultMeta("system:aggregate-to-view", bootstrapLabels(aggregateTo+"view", "true")), Rules: viewRules},
		{ObjectMeta: defaultMeta("system:discovery", bootstrapLabels()), Rules: []rbacv1.PolicyRule{{Verbs: []string{"get"},
			NonResourceURLs: []string{"/livez", "/readyz", "/healthz", "/version", "/version/", "/openapi", "/openapi/*", "/api", "/api/*", "/apis", "/apis/*"}}}},
		{ObjectMeta: defaultMeta("system:basic-user", bootstrapLabels()), Rules: []rbacv1.PolicyRule{
			rule([]string{"create"}, []string{"authorization.k8s.io"}, "selfsubjectaccessreviews", "selfsubjectrulesreviews"),
			rule([]string{"create"}, []string{"authentication.k8s.io"}, "selfsubjectreviews"),
		}},
		{ObjectMeta: defaultMeta("system:public-info-viewer", bootstrapLabels()), Rules: []rbacv1.PolicyRule{{Verbs: []string{"get"},
			NonResourceURLs: []string{"/livez", "/readyz", "/healthz", "/version", "/version/"}}}},
		{ObjectMeta: defaultMeta("system:auth-delegator", bootstrapLabels()), Rules: []rbacv1.PolicyRule{
			rule([]string{"create"}, []string{"authentication.k8s.io"}, "tokenreviews"),
			rule([]string{"create"}, []string{"authorization.k8s.io"}, "subjectaccessreviews"),
		}},
		// The garbage collector lists and watches every kind, and removes owner references
		// and finalizers from, or deletes, any object.
		{ObjectMeta: defaultMeta(garbageCollectorRole, bootstrapLabels()), Rules: []rbacv1.PolicyRule{
			rule([]string{"get", "list", "watch", "patch", "update", "delete"}, []string{"*"}, "*"),
			rule([]string{"create", "update", "patch"}, []string{"", "events.k8s.io"}, "events"),
		}},
	}
}

// garbageCollectorRole is Kubernetes' role of the garbage collector, bound, as in
// Kubernetes, to the collector's service account: the controller-manager's own
// identity has Skiff's built-in rules (auth.Authorizer), which allow the collector's
// updates of every kind but no subresource (the role's "*" reaches pods/proxy too).
const garbageCollectorRole = "system:controller:generic-garbage-collector"

// defaultClusterRoleBindings are Kubernetes': cluster-admin to system:masters, the
// discovery, basic-user and public-info roles to every authenticated user, and the
// garbage collector's role to its service account.
func defaultClusterRoleBindings() []*rbacv1.ClusterRoleBinding {
	group := func(name string) rbacv1.Subject {
		return rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: name}
	}
	bind := func(role string, subjects ...rbacv1.Subject) *rbacv1.ClusterRoleBinding {
		return &rbacv1.ClusterRoleBinding{ObjectMeta: defaultMeta(role, bootstrapLabels()),
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: kinds.ClusterRole, Name: role}, Subjects: subjects}
	}
	return []*rbacv1.ClusterRoleBinding{
		bind("cluster-admin", group(auth.GroupMasters)),
		bind("system:discovery", group(auth.GroupAuthenticated)),
		bind("system:basic-user", group(auth.GroupAuthenticated)),
		bind("system:public-info-viewer", group(auth.GroupAuthenticated), group("system:unauthenticated")),
		bind(garbageCollectorRole,
			rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: "generic-garbage-collector", Namespace: metav1.NamespaceSystem}),
	}
}

// defaultRoles are Kubernetes' namespaced default Roles (NamespaceRoles of the
// bootstrap policy) that Skiff has a use for.
func defaultRoles() []*rbacv1.Role {
	meta := defaultMeta("extension-apiserver-authentication-reader", bootstrapLabels())
	meta.Namespace = metav1.NamespaceSystem
	return []*rbacv1.Role{{ObjectMeta: meta, Rules: []rbacv1.PolicyRule{{Verbs: rbacRead, APIGroups: []string{""},
		Resources: []string{"configmaps"}, ResourceNames: []string{extensionAuthConfigMap}}}}}
}

// ensureRBACDefaults creates or reconciles the default roles and bindings.
func (r *resources) ensureRBACDefaults(ctx context.Context) error {
	for _, role := range defaultRoles() {
		if err := r.reconcileDefault(ctx, role, func(cur kinds.Object) bool {
			c := cur.(*rbacv1.Role)
			changed := mergeMeta(c, role)
			if ok, missing := rbacvalidation.Covers(c.Rules, role.Rules); !ok {
				c.Rules, changed = append(c.Rules, missing...), true
			}
			return changed
		}); err != nil {
			return err
		}
	}
	for _, cr := range defaultClusterRoles() {
		if err := r.reconcileDefault(ctx, cr, func(cur kinds.Object) bool {
			return reconcileClusterRole(cur.(*rbacv1.ClusterRole), cr)
		}); err != nil {
			return err
		}
	}
	for _, crb := range defaultClusterRoleBindings() {
		if err := r.reconcileDefault(ctx, crb, func(cur kinds.Object) bool {
			return reconcileBinding(cur.(*rbacv1.ClusterRoleBinding), crb)
		}); err != nil {
			return err
		}
	}
	return nil
}

// reconcileDefault creates want, or when it exists and may be updated (autoupdate is
// not "false"), lets merge add what the stored one lacks and writes it if merge says it
// changed.
func (r *resources) reconcileDefault(ctx context.Context, want kinds.Object, merge func(cur kinds.Object) bool) error {
	info := kinds.Of(want)
	k := keyOf(info, want)
	for {
		cur, _, err := r.get(ctx, info, k, store.ReadOptions{})
		if isNotFound(err) {
			_, err = r.create(ctx, clone(want), writeOptions{})
			if status.Code(err) == codes.AlreadyExists {
				continue
			}
			return err
		}
		if err != nil {
			return fmt.Errorf("reconcile %s %s: %w", info.Kind, k.Name, err)
		}
		if cur.GetAnnotations()[rbacv1.AutoUpdateAnnotationKey] == "false" {
			return nil
		}
		next := clone(cur)
		if !merge(next) {
			return nil
		}
		if _, err := r.replace(ctx, next, writeOptions{}); err != nil {
			if status.Code(err) == codes.Aborted {
				continue
			}
			return fmt.Errorf("reconcile %s %s: %w", info.Kind, k.Name, err)
		}
		return nil
	}
}

// mergeMeta adds want's labels and annotations cur lacks; it reports a change.
func mergeMeta(cur, want metav1.Object) bool {
	changed := false
	for _, pair := range []struct {
		get func() map[string]string
		set func(map[string]string)
		add map[string]string
	}{{cur.GetLabels, cur.SetLabels, want.GetLabels()}, {cur.GetAnnotations, cur.SetAnnotations, want.GetAnnotations()}} {
		m := pair.get()
		for k, v := range pair.add {
			if _, ok := m[k]; !ok {
				if m == nil {
					m = map[string]string{}
				}
				m[k] = v
				changed = true
			}
		}
		pair.set(m)
	}
	return changed
}

// reconcileClusterRole is Kubernetes' computeReconciledRole: the rules the stored role
// does not cover are added, an aggregation rule's missing selectors too.
func reconcileClusterRole(cur, want *rbacv1.ClusterRole) bool {
	changed := mergeMeta(cur, want)
	if want.AggregationRule != nil {
		if cur.AggregationRule == nil {
			cur.AggregationRule = &rbacv1.AggregationRule{}
		}
		for _, sel := range want.AggregationRule.ClusterRoleSelectors {
			found := false
			for _, have := range cur.AggregationRule.ClusterRoleSelectors {
				if equality.Semantic.DeepEqual(have, sel) {
					found = true
				}
			}
			if !found {
				cur.AggregationRule.ClusterRoleSelectors = append(cur.AggregationRule.ClusterRoleSelectors, sel)
				changed = true
			}
		}
		return changed // the aggregation controller owns its rules
	}
	if ok, missing := rbacvalidation.Covers(cur.Rules, want.Rules); !ok {
		cur.Rules = append(cur.Rules, missing...)
		changed = true
	}
	return changed
}

// reconcileBinding is Kubernetes' computeReconciledRoleBinding: missing subjects are
// added (the role reference is immutable; Kubernetes' is the same on both).
func reconcileBinding(cur, want *rbacv1.ClusterRoleBinding) bool {
	changed := mergeMeta(cur, want)
	for _, s := range want.Subjects {
		found := false
		for _, have := range cur.Subjects {
			if have == s {
				found = true
			}
		}
		if !found {
			cur.Subjects = append(cur.Subjects, s)
			changed = true
		}
	}
	return changed
}

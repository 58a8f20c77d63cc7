package table

import (
	"fmt"
	"strings"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/skiffhq/skiff/kinds"
)

// The columns of RoleBindings and ClusterRoleBindings, as Kubernetes' printers define
// them (Roles and ClusterRoles have the default columns, as there).
func init() {
	binding := func(kind string, ref func(kinds.Object) rbacv1.RoleRef, subjects func(kinds.Object) []rbacv1.Subject, doc string) []Column {
		subjectsOf := func(k string) func(kinds.Object, time.Time) any {
			return func(o kinds.Object, _ time.Time) any { return subjectNames(subjects(o), k) }
		}
		return []Column{nameCol,
			col("Role", "string", 0, doc, func(o kinds.Object, _ time.Time) any {
				r := ref(o)
				return r.Kind + "/" + r.Name
			}),
			ageCol,
			col("Users", "string", 1, "Users in the "+kind, subjectsOf(rbacv1.UserKind)),
			col("Groups", "string", 1, "Groups in the "+kind, subjectsOf(rbacv1.GroupKind)),
			col("ServiceAccounts", "string", 1, "ServiceAccounts in the "+kind, subjectsOf(rbacv1.ServiceAccountKind)),
		}
	}
	columns[kinds.RoleBinding] = binding("roleBinding",
		func(o kinds.Object) rbacv1.RoleRef { return o.(*rbacv1.RoleBinding).RoleRef },
		func(o kinds.Object) []rbacv1.Subject { return o.(*rbacv1.RoleBinding).Subjects },
		rbacv1.RoleBinding{}.SwaggerDoc()["roleRef"])
	columns[kinds.ClusterRoleBinding] = binding("clusterRoleBinding",
		func(o kinds.Object) rbacv1.RoleRef { return o.(*rbacv1.ClusterRoleBinding).RoleRef },
		func(o kinds.Object) []rbacv1.Subject { return o.(*rbacv1.ClusterRoleBinding).Subjects },
		rbacv1.ClusterRoleBinding{}.SwaggerDoc()["roleRef"])
}

// subjectNames are the subjects of kind, as Kubernetes' SubjectsStrings writes them (a
// service account as NAMESPACE/NAME), joined with ", ".
func subjectNames(subjects []rbacv1.Subject, kind string) string {
	var names []string
	for _, s := range subjects {
		if s.Kind != kind {
			continue
		}
		if kind == rbacv1.ServiceAccountKind {
			names = append(names, fmt.Sprintf("%s/%s", s.Namespace, s.Name))
		} else {
			names = append(names, s.Name)
		}
	}
	return strings.Join(names, ", ")
}

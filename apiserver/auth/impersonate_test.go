package auth

import (
	"errors"
	"net/http"
	"slices"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/pki"
)

// TestParseImpersonation: HTTP headers (canonical case) and gRPC metadata (lower case)
// read alike; extras' keys are lower case and unescaped; groups without a user refused.
func TestParseImpersonation(t *testing.T) {
	h := http.Header{}
	h.Set("Impersonate-User", "alice")
	h.Add("Impersonate-Group", "a")
	h.Add("Impersonate-Group", "b")
	h.Set("Impersonate-Uid", "u1")
	h.Add("Impersonate-Extra-Example.com%2fScopes", "view")
	h.Set("Authorization", "Bearer x")
	for _, in := range []map[string][]string{h, {"impersonate-user": {"alice"}, "impersonate-group": {"a", "b"}, "impersonate-uid": {"u1"},
		"impersonate-extra-example.com%2fscopes": {"view"}}} {
		im, err := ParseImpersonation(in)
		if err != nil || im.User != "alice" || !slices.Equal(im.Groups, []string{"a", "b"}) || im.UID != "u1" ||
			!slices.Equal(im.Extra["example.com/scopes"], []string{"view"}) {
			t.Errorf("ParseImpersonation(%v) = %+v, %v", in, im, err)
		}
	}
	if im, err := ParseImpersonation(http.Header{"Authorization": {"x"}}); err != nil || im.Requested() {
		t.Errorf("no impersonation: %+v %v", im, err)
	}
	if _, err := ParseImpersonation(map[string][]string{"impersonate-group": {"a"}}); !errors.Is(err, ErrImpersonationWithoutUser) {
		t.Errorf("a group without a user: %v", err)
	}
}

// TestImpersonate: the impersonate verb on each part, from RBAC or for administrators;
// no built-in component rule grants it; the identity acted as.
func TestImpersonate(t *testing.T) {
	r := NewRBAC()
	r.Put(&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "imp"}, Rules: []rbacv1.PolicyRule{
		{Verbs: []string{Impersonate}, APIGroups: []string{""}, Resources: []string{"users", "serviceaccounts"}},
		{Verbs: []string{Impersonate}, APIGroups: []string{""}, Resources: []string{"groups"}, ResourceNames: []string{"devs"}},
	}})
	r.Put(&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "imp"}, RoleRef: rbacv1.RoleRef{Kind: "ClusterRole", Name: "imp"},
		Subjects: []rbacv1.Subject{{Kind: "User", Name: "ops"}}})
	az := Authorizer{RBAC: r}
	ops := User{Name: "ops", Groups: []string{GroupAuthenticated}}
	admin := User{Name: "root", Groups: []string{pki.GroupAdmin}}
	cm := User{Name: "cm", Groups: []string{pki.GroupControllerManager}}
	for _, tc := range []struct {
		what     string
		u        User
		im       Impersonation
		name     string
		groups   []string
		deniedOn string
	}{
		{"a user", ops, Impersonation{User: "alice"}, "alice", []string{GroupAuthenticated}, ""},
		{"a user and a group granted", ops, Impersonation{User: "alice", Groups: []string{"devs"}}, "alice", []string{"devs", GroupAuthenticated}, ""},
		{"a group not granted", ops, Impersonation{User: "alice", Groups: []string{"system:masters"}}, "", nil, "groups"},
		{"a uid", ops, Impersonation{User: "alice", UID: "1"}, "", nil, "uids"},
		{"an extra", ops, Impersonation{User: "alice", Extra: map[string][]string{"scopes": {"x"}}}, "", nil, "userextras"},
		{"a service account's groups", ops, Impersonation{User: "system:serviceaccount:dev:ci"}, "system:serviceaccount:dev:ci",
			[]string{"system:serviceaccounts", "system:serviceaccounts:dev", GroupAuthenticated}, ""},
		{"anonymous", admin, Impersonation{User: UserAnonymous}, UserAnonymous, []string{GroupUnauthenticated}, ""},
		{"an administrator, anything", admin, Impersonation{User: "x", Groups: []string{"y"}, UID: "1", Extra: map[string][]string{"k": {"v"}}}, "x",
			[]string{"y", GroupAuthenticated}, ""},
		{"the controller-manager's rules grant none", cm, Impersonation{User: "system:serviceaccount:dev:ci"}, "", nil, "serviceaccounts"},
	} {
		got, err := az.Impersonate(tc.u, tc.im)
		var d *Denied
		switch {
		case tc.deniedOn != "":
			if !errors.As(err, &d) || d.Resource != tc.deniedOn || d.Verb != Impersonate || d.User.Name != tc.u.Name {
				t.Errorf("%s: %+v, %v; want denied on %s", tc.what, got, err, tc.deniedOn)
			}
		case err != nil || got.Name != tc.name || !slices.Equal(got.Groups, tc.groups) || got.UID != tc.im.UID:
			t.Errorf("%s: %+v, %v; want %s %v", tc.what, got, err, tc.name, tc.groups)
		}
	}
}

package clusterroleaggregation

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

// TestAggregation: the API server's default admin, edit and view roles get the rules of
// the roles labelled to aggregate to them (view's reach edit and admin, as view is
// labelled aggregate-to-edit and edit aggregate-to-admin); a new labelled role's rules
// join them and leave with it.
func TestAggregation(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cs := client.NewClientset(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	f := cache.NewFactory(cs, hclog.NewNullLogger())
	ctrl, err := New(cs, f, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	f.Start(ctx)
	done := make(chan struct{})
	go func() { ctrl.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); f.Wait(); <-done; conn.Close() })

	roles := client.For[*rbacv1.ClusterRole](conn)
	widgets := rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{"example.com"}, Resources: []string{"widgets"}}
	has := func(name string, rule rbacv1.PolicyRule) func() (bool, string) {
		return func() (bool, string) {
			r, err := roles.Get(ctx, "", name)
			if err != nil {
				return false, err.Error()
			}
			for _, got := range r.Rules {
				if slices.Equal(got.Resources, rule.Resources) && slices.Equal(got.Verbs, rule.Verbs) && slices.Equal(got.APIGroups, rule.APIGroups) {
					return true, ""
				}
			}
			return false, fmt.Sprintf("%d rules", len(r.Rules))
		}
	}
	podLog := rbacv1.PolicyRule{Verbs: []string{"get", "list", "watch"}, APIGroups: []string{""}, Resources: []string{"limitranges", "resourcequotas",
		"bindings", "pods/status", "resourcequotas/status", "namespaces/status", "replicationcontrollers/status", "pods/log"}}
	for _, name := range []string{"view", "edit", "admin"} {
		waitfor.Condition(t, time.Minute, name+" has system:aggregate-to-view's rules", has(name, podLog))
	}
	roleBindings := rbacv1.PolicyRule{Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"},
		APIGroups: []string{rbacv1.GroupName}, Resources: []string{"roles", "rolebindings"}}
	waitfor.Condition(t, time.Minute, "admin has system:aggregate-to-admin's rules", has("admin", roleBindings))
	if ok, _ := has("edit", roleBindings)(); ok {
		t.Error("edit has admin's rules")
	}

	if _, err := roles.Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "widget-viewer",
		Labels: map[string]string{"rbac.authorization.k8s.io/aggregate-to-view": "true"}}, Rules: []rbacv1.PolicyRule{widgets}}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"view", "edit", "admin"} {
		waitfor.Condition(t, time.Minute, name+" has widget-viewer's rule", has(name, widgets))
	}
	if _, err := roles.Delete(ctx, "", "widget-viewer", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitfor.Condition(t, time.Minute, "view without widget-viewer's rule", func() (bool, string) {
		ok, _ := has("view", widgets)()
		return !ok, "still there"
	})
}

package labels

import (
	"strings"
	"testing"

	corev1 "github.com/skiffhq/skiff/proto/core/v1"
)

func TestParseAndMatch(t *testing.T) {
	web := map[string]string{"app": "web", "tier": "front"}
	db := map[string]string{"app": "db", "canary": "true"}
	for _, tc := range []struct {
		sel      string
		web, db  bool
		rendered string
	}{
		{"", true, true, ""},
		{"app=web", true, false, "app=web"},
		{"app==web", true, false, "app=web"},
		{"app!=web", false, true, "app!=web"},
		{"app in (web, db)", true, true, "app in (db,web)"},
		{"app notin (web)", false, true, "app notin (web)"},
		{"canary", false, true, "canary"},
		{"!canary", true, false, "!canary"},
		{" app = web , tier=front ", true, false, "app=web,tier=front"},
		{"tier!=back", true, true, "tier!=back"},
		{"example.com/role=x", false, false, "example.com/role=x"},
	} {
		s, err := Parse(tc.sel)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.sel, err)
			continue
		}
		if got := s.Matches(web); got != tc.web {
			t.Errorf("%q matches web = %v", tc.sel, got)
		}
		if got := s.Matches(db); got != tc.db {
			t.Errorf("%q matches db = %v", tc.sel, got)
		}
		if s.String() != tc.rendered {
			t.Errorf("%q renders as %q, want %q", tc.sel, s.String(), tc.rendered)
		}
		if again, err := Parse(s.String()); err != nil || again.String() != s.String() {
			t.Errorf("%q does not round trip: %v %v", tc.sel, again, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, sel := range []string{"app=", "=web", "app=web,", "app in web", "app in (a", "app in ()", "-bad=x",
		"app=we b", "app=" + strings.Repeat("x", 64), "a/b/c=d", "app>3", "app=web!"} {
		if sel == "app=" {
			// an empty value is valid in Kubernetes
			if _, err := Parse(sel); err != nil {
				t.Errorf("Parse(%q): %v", sel, err)
			}
			continue
		}
		if _, err := Parse(sel); err == nil {
			t.Errorf("Parse(%q) gave no error", sel)
		}
	}
}

func TestFromLabelSelector(t *testing.T) {
	s, err := FromLabelSelector(&corev1.LabelSelector{
		MatchLabels: map[string]string{"app": "web"},
		MatchExpressions: []*corev1.LabelSelectorRequirement{
			{Key: "env", Operator: "In", Values: []string{"prod", "staging"}},
			{Key: "canary", Operator: "DoesNotExist"},
		},
	}, "spec.selector")
	if err != nil {
		t.Fatal(err)
	}
	if !s.Matches(map[string]string{"app": "web", "env": "prod"}) || s.Matches(map[string]string{"app": "web", "env": "dev"}) {
		t.Errorf("selector %s matches wrongly", s)
	}
	if n, _ := FromLabelSelector(nil, "x"); n.Matches(nil) {
		t.Error("nil LabelSelector matches")
	}
	if e, _ := FromLabelSelector(&corev1.LabelSelector{}, "x"); !e.Matches(map[string]string{"a": "b"}) {
		t.Error("empty LabelSelector does not match")
	}
	for _, bad := range []*corev1.LabelSelector{
		{MatchExpressions: []*corev1.LabelSelectorRequirement{{Key: "a", Operator: "Near"}}},
		{MatchExpressions: []*corev1.LabelSelectorRequirement{{Key: "a", Operator: "In"}}},
		{MatchExpressions: []*corev1.LabelSelectorRequirement{{Key: "a", Operator: "Exists", Values: []string{"x"}}}},
		{MatchLabels: map[string]string{"bad key": "x"}},
	} {
		_, err := FromLabelSelector(bad, "spec.selector")
		if err == nil || !strings.HasPrefix(err.Error(), "spec.selector.") {
			t.Errorf("FromLabelSelector(%v) = %v, want an error naming spec.selector.*", bad, err)
		}
	}
}

func TestFieldSelector(t *testing.T) {
	s, err := ParseFields("spec.nodeName=w1,metadata.name!=x", "spec.nodeName", "metadata.name")
	if err != nil {
		t.Fatal(err)
	}
	if !s.Matches(map[string]string{"spec.nodeName": "w1", "metadata.name": "y"}) {
		t.Error("no match")
	}
	if s.Matches(map[string]string{"spec.nodeName": "w2"}) {
		t.Error("matched w2")
	}
	if v, ok := s.Equal("spec.nodeName"); !ok || v != "w1" {
		t.Errorf("Equal = %q %v", v, ok)
	}
	unbound, _ := ParseFields("spec.nodeName=")
	if !unbound.Matches(map[string]string{}) || unbound.Matches(map[string]string{"spec.nodeName": "w"}) {
		t.Error("spec.nodeName= must match exactly the unbound")
	}
	if _, err := ParseFields("status.phase=Running", "spec.nodeName"); err == nil || !strings.Contains(err.Error(), "status.phase") {
		t.Errorf("unsupported field: %v", err)
	}
	if _, err := ParseFields("nonsense", "spec.nodeName"); err == nil {
		t.Error("no error for nonsense")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"app=web", "a in (b,c),!d", "x!=y, z", "k notin (v)", "!", "a=(b", "example.com/x==y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		s, err := Parse(text)
		if err != nil {
			return
		}
		again, err := Parse(s.String())
		if err != nil {
			t.Fatalf("rendering %q of %q does not parse: %v", s.String(), text, err)
		}
		if again.String() != s.String() {
			t.Fatalf("round trip %q -> %q", s.String(), again.String())
		}
	})
}

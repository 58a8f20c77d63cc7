package skiffctl_test

import (
	"strings"
	"testing"

	"github.com/skiffhq/skiff/test/apicluster"
)

// TestGetOutputs: -o jsonpath, -o custom-columns, --show-labels, -L and --sort-by, as
// kubectl prints them.
func TestGetOutputs(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	s := c.Addr(0)
	for _, cm := range []struct{ name, labels, data string }{
		{"b", "app=web,tier=front", "--from-literal=x=1"},
		{"a", "app=db", "--from-literal=x=1"},
		{"c", "app=web", "--from-literal=y=22"},
	} {
		must(t, s, "create", "configmap", cm.name, cm.data)
		must(t, s, "label", "cm", cm.name, strings.Split(cm.labels, ",")[0])
		if strings.Contains(cm.labels, ",") {
			must(t, s, "label", "cm", cm.name, strings.Split(cm.labels, ",")[1])
		}
	}
	if got := must(t, s, "get", "cm", "-o", "jsonpath={.items[*].metadata.name}"); got != "a b c" {
		t.Errorf("jsonpath over a list: %q", got)
	}
	if got := must(t, s, "get", "cm", "b", "-o", `jsonpath={.metadata.labels.tier}{"\n"}`); got != "front\n" {
		t.Errorf("jsonpath of one object: %q", got)
	}
	if got := must(t, s, "get", "cm", "-l", "app=web", "-o", `jsonpath={range .items[*]}{.metadata.name}={.data}{"\n"}{end}`); got != "b={\"x\":\"1\"}\nc={\"y\":\"22\"}\n" {
		t.Errorf("jsonpath range: %q", got)
	}
	if got := must(t, s, "get", "cm", "-o", `jsonpath={.items[?(@.metadata.labels.app=="db")].metadata.name}`); got != "a" {
		t.Errorf("jsonpath filter: %q", got)
	}
	fails(t, s, "", "error parsing jsonpath", "get", "cm", "-o", "jsonpath={.items[")

	want := "NAME   APP   TIER\na      db    <none>\nb      web   front\nc      web   <none>\n"
	if got := must(t, s, "get", "cm", "-o", "custom-columns=NAME:.metadata.name,APP:{.metadata.labels.app},TIER:metadata.labels.tier"); got != want {
		t.Errorf("custom-columns:\n%s\nwant:\n%s", got, want)
	}
	fails(t, s, "", "expected <header>:<json-path-expr>", "get", "cm", "-o", "custom-columns=NAME")

	got := must(t, s, "get", "cm", "--show-labels")
	contains(t, "--show-labels", got, "LABELS", "app=web,tier=front", "app=db")
	got = must(t, s, "get", "cm", "-L", "tier", "-L", "app")
	lines := strings.Split(got, "\n")
	if h, b := strings.Fields(lines[0]), strings.Fields(lines[2]); strings.Join(h[len(h)-2:], " ") != "TIER APP" || strings.Join(b[len(b)-2:], " ") != "front web" {
		t.Errorf("-L:\n%s", got)
	}

	got = must(t, s, "get", "cm", "--sort-by", "{.data.x}", "-o", "name")
	if got != "configmap/c\nconfigmap/a\nconfigmap/b\n" {
		t.Errorf("--sort-by a field some lack: %q", got)
	}
	if got := must(t, s, "get", "cm", "--sort-by", ".metadata.labels.app", "-o", "custom-columns=N:.metadata.name", "--no-headers"); got != "a\nb\nc\n" {
		t.Errorf("--sort-by labels: %q", got)
	}
}

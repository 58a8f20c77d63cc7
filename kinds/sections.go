package kinds

import (
	"reflect"

	"k8s.io/apimachinery/pkg/api/equality"
)

// Section names the parts of an object that Update and UpdateStatus own.
type Section int

const (
	// SpecSection is everything but metadata and status: spec, or data, or an Event's fields.
	SpecSection Section = iota
	StatusSection
)

// in reports whether the struct field named name belongs to section s.
func (s Section) in(name string) bool {
	switch name {
	case "TypeMeta", "ObjectMeta":
		return false
	case "Status":
		return s == StatusSection
	}
	return s == SpecSection
}

// CopySection copies one section of src into dst (both of the same kind), replacing it.
// The values are shared, not copied: deep-copy src first when both live on.
func CopySection(dst, src Object, s Section) {
	if c, ok := dst.(*Custom); ok {
		c.copySection(src.(*Custom), s)
		return
	}
	dv, sv := reflect.ValueOf(dst).Elem(), reflect.ValueOf(src).Elem()
	t := dv.Type()
	for i := 0; i < t.NumField(); i++ {
		if s.in(t.Field(i).Name) {
			dv.Field(i).Set(sv.Field(i))
		}
	}
}

// SectionEqual reports whether a and b (of one kind) have semantically equal sections
// (apimachinery's equality: 1000m and 1 are the same quantity).
func SectionEqual(a, b Object, s Section) bool {
	if c, ok := a.(*Custom); ok {
		return equality.Semantic.DeepEqual(c.section(s), b.(*Custom).section(s))
	}
	av, bv := reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem()
	t := av.Type()
	for i := 0; i < t.NumField(); i++ {
		if s.in(t.Field(i).Name) && !equality.Semantic.DeepEqual(av.Field(i).Interface(), bv.Field(i).Interface()) {
			return false
		}
	}
	return true
}

// A custom resource's status is its content's "status" when its kind has the status
// subresource; without it, the whole content is the spec section.
func (c *Custom) statusSplit() bool {
	in := c.info
	if in == nil {
		in, _ = customByGVK(c.APIVersion, c.Kind)
	}
	return in != nil && in.HasStatus
}

func (c *Custom) section(s Section) map[string]any {
	split := c.statusSplit()
	out := map[string]any{}
	for k, v := range c.Content {
		if (s == StatusSection) == (split && k == "status") {
			out[k] = v
		}
	}
	return out
}

func (c *Custom) copySection(src *Custom, s Section) {
	if s == StatusSection && !c.statusSplit() {
		return
	}
	next := src.section(s)
	for k, v := range c.Content {
		if _, theirs := c.section(s)[k]; !theirs {
			next[k] = v
		}
	}
	c.Content = next
}

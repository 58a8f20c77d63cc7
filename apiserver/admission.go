package apiserver

import (
	"fmt"
	"regexp"

	"github.com/skiffhq/skiff/proto/kinds"
)

// Admission: defaulting and validation of what is written. The rules live in
// apiserver/validation; this file is the seam the handlers call.

var dns1123Subdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

func admitCreate(obj kinds.Object) error {
	md := kinds.Meta(obj)
	if len(md.GetName()) > 253 || !dns1123Subdomain.MatchString(md.GetName()) {
		return fmt.Errorf("metadata.name: Invalid value: %q: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character", md.GetName())
	}
	return nil
}

func admitUpdate(old, obj kinds.Object) error { return admitCreate(obj) }

func admitStatusUpdate(old, obj kinds.Object) error { return nil }

package apiserver

import (
	"strings"
	"testing"
)

// TestNegotiatePlainAccept: an Accept header without parameters is read without
// allocating, and picks what the general reading (mime.ParseMediaType) picks, for kinds
// with protobuf and without (custom resources).
func TestNegotiatePlainAccept(t *testing.T) {
	for _, accept := range []string{
		"application/vnd.kubernetes.protobuf, */*", // client-go's typed clients
		"application/vnd.kubernetes.protobuf",
		"application/json", "application/yaml", "*/*", "APPLICATION/JSON",
		"text/html, application/yaml,application/json", "text/plain", "bogus, application/*",
	} {
		for _, protobuf := range []bool{true, false} {
			f, ok := negotiate(accept, protobuf)
			// The same header with q=1 on every offer goes the general way.
			parts := strings.Split(accept, ",")
			for i := range parts {
				parts[i] += ";q=1"
			}
			gf, gok := negotiate(strings.Join(parts, ","), protobuf)
			if f != gf || ok != gok {
				t.Errorf("negotiate(%q, %v) = %v, %v; the general reading says %v, %v", accept, protobuf, f, ok, gf, gok)
			}
			if !protobuf && ok && f == formatProtobuf {
				t.Errorf("negotiate(%q, false) = protobuf", accept)
			}
		}
	}
	for _, c := range []struct {
		accept   string
		protobuf bool
		want     format
		ok       bool
	}{
		{"application/vnd.kubernetes.protobuf, */*", true, formatProtobuf, true},
		{"application/vnd.kubernetes.protobuf, */*", false, formatJSON, true},
		{"application/vnd.kubernetes.protobuf;q=1, application/json;q=0.5", false, formatJSON, true},
		{"application/vnd.kubernetes.protobuf", false, formatJSON, false},
	} {
		if f, ok := negotiate(c.accept, c.protobuf); f != c.want || ok != c.ok {
			t.Errorf("negotiate(%q, %v) = %v, %v; want %v, %v", c.accept, c.protobuf, f, ok, c.want, c.ok)
		}
	}
	accept := "application/vnd.kubernetes.protobuf, */*"
	if n := testing.AllocsPerRun(100, func() { negotiate(accept, true) }); n != 0 {
		t.Errorf("negotiate(%q) allocates %v times", accept, n)
	}
}

package apiserver

import (
	"strings"
	"testing"
)

// TestNegotiatePlainAccept: an Accept header without parameters is read without
// allocating, and picks what the general reading (mime.ParseMediaType) picks.
func TestNegotiatePlainAccept(t *testing.T) {
	for _, accept := range []string{
		"application/vnd.kubernetes.protobuf, */*", // client-go's typed clients
		"application/json", "application/yaml", "*/*", "APPLICATION/JSON",
		"text/html, application/yaml,application/json", "text/plain", "bogus, application/*",
	} {
		f, ok := negotiate(accept)
		// The same header with q=1 on every offer goes the general way.
		parts := strings.Split(accept, ",")
		for i := range parts {
			parts[i] += ";q=1"
		}
		gf, gok := negotiate(strings.Join(parts, ","))
		if f != gf || ok != gok {
			t.Errorf("negotiate(%q) = %v, %v; the general reading says %v, %v", accept, f, ok, gf, gok)
		}
	}
	accept := "application/vnd.kubernetes.protobuf, */*"
	if n := testing.AllocsPerRun(100, func() { negotiate(accept) }); n != 0 {
		t.Errorf("negotiate(%q) allocates %v times", accept, n)
	}
}

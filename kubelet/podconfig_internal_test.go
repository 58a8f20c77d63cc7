package kubelet

import (
	"strings"
	"testing"
)

// A failed container's output as its termination message (FallbackToLogsOnError): the
// last 80 lines as they were written, cut to the last 2048 bytes.
func TestLogTail(t *testing.T) {
	var many strings.Builder
	for i := range 100 {
		many.WriteString(strings.Repeat("x", i%10) + "\n")
	}
	long := strings.Repeat("y", 3000) + "\nend\n"
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", ""},
		{"lines", "starting\nlast words\n", "starting\nlast words\n"},
		{"no final newline", "a\nb", "a\nb"},
		{"80 lines", many.String(), strings.Join(strings.SplitAfter(many.String(), "\n")[20:100], "")},
		{"2048 bytes", long, long[len(long)-2048:]},
	} {
		if got := logTail([]byte(tc.in)); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

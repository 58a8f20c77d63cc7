package kubelet

import (
	"bytes"
	"testing"
)

func TestLastLines(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int64
		want string
	}{
		{"a\nb\nc\n", 2, "b\nc\n"},
		{"a\nb\nc\n", 3, "a\nb\nc\n"},
		{"a\nb\nc\n", 10, "a\nb\nc\n"},
		{"a\nb\nc\n", 0, ""},
		{"a\nb\nc\n", -1, ""},
		{"a\nb\nc", 1, "c"}, // a last line still being written counts
		{"a\nb\nc", 2, "b\nc"},
		{"", 5, ""},
		{"\n\n", 1, "\n"},
	} {
		if got := string(lastLines([]byte(tc.in), tc.n)); got != tc.want {
			t.Errorf("lastLines(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

func TestSkipWriter(t *testing.T) {
	var b bytes.Buffer
	w := &skipWriter{w: &b, skip: 5}
	for _, p := range []string{"ab", "cd", "efg", "h"} {
		if n, err := w.Write([]byte(p)); n != len(p) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", p, n, err)
		}
	}
	if b.String() != "fgh" {
		t.Fatalf("skipped 5 of abcdefgh: %q", b.String())
	}
}

package record

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTruncate(t *testing.T) {
	long := strings.Repeat("é", 600) // 1200 bytes
	got := truncate(long, MaxMessage)
	if len(got) > MaxMessage || !strings.HasSuffix(got, "...") || !utf8.ValidString(got) {
		t.Fatalf("truncate: %d bytes, valid %v, ends %q", len(got), utf8.ValidString(got), got[len(got)-5:])
	}
	if s := "short"; truncate(s, MaxMessage) != s {
		t.Fatalf("a short message changed")
	}
}

package quantity

import (
	"math"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in           string
		value, milli int64
	}{
		{"250m", 1, 250}, {"0.5", 1, 500}, {"2", 2, 2000}, {"1.5", 2, 1500}, {"100m", 1, 100},
		{"128Mi", 128 << 20, 128 << 20 * 1000}, {"1Gi", 1 << 30, 1 << 30 * 1000}, {"1G", 1e9, 1e12},
		{"1k", 1000, 1e6}, {"1Ki", 1024, 1024000}, {"110", 110, 110000}, {"1e3", 1000, 1e6},
		{"5E-1", 1, 500}, {"0", 0, 0}, {"+3", 3, 3000}, {"1n", 1, 1}, {"8Ei", math.MaxInt64, math.MaxInt64},
	} {
		q, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if q.Value() != tc.value || q.MilliValue() != tc.milli {
			t.Errorf("Parse(%q) = %d, %dm; want %d, %dm", tc.in, q.Value(), q.MilliValue(), tc.value, tc.milli)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{"", "abc", "1.2.3", "10mb", "Mi", "1e", "1e99", "--1", "1 Gi"} {
		if _, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) gave no error", in)
		}
	}
}

func TestFormat(t *testing.T) {
	if got := FormatMilli(250); got != "250m" {
		t.Errorf("FormatMilli(250) = %s", got)
	}
	if got := FormatMilli(2000); got != "2" {
		t.Errorf("FormatMilli(2000) = %s", got)
	}
	if got := FormatBytes(128 << 20); got != "128Mi" {
		t.Errorf("FormatBytes = %s", got)
	}
	if got := FormatBytes(1000); got != "1000" {
		t.Errorf("FormatBytes(1000) = %s", got)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"250m", "1.5Gi", "1e3", "-2", "0.000001"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := Parse(s)
		if err != nil {
			return
		}
		if q.Sign() >= 0 && q.MilliValue() < 0 {
			t.Fatalf("%q: non-negative quantity with negative milli value", s)
		}
	})
}

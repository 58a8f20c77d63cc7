package indexes

import "testing"

func TestParseAndString(t *testing.T) {
	for _, tc := range []struct {
		in, out string
		limit   int
		err     string
	}{
		{in: "", out: "", limit: 3},
		{in: "0", out: "0", limit: 1},
		{in: "0,1,2,4", out: "0-2,4", limit: 5},
		{in: "1-3,5,7-8", out: "1-3,5,7-8", limit: 10},
		{in: "3", limit: 3, err: "too large: 3"},
		{in: "2,1", limit: 3, err: "overlapping intervals or non-increasing order, previous: 2, current: 1"},
		{in: "1-3,2", limit: 5, err: "overlapping intervals or non-increasing order, previous: 3, current: 2"},
		{in: "3-1", limit: 5, err: "non-increasing order, previous: 3, current: 1"},
		{in: "a", limit: 5, err: `cannot convert string to integer for index: "a"`},
		{in: "1,", limit: 5, err: `cannot convert string to integer for index: ""`},
		{in: "-1", limit: 5, err: `cannot convert string to integer for index: ""`},
	} {
		s, err := Parse(tc.in, tc.limit)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("Parse(%q): error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("Parse(%q): %v", tc.in, err)
		}
		if got := s.String(); got != tc.out {
			t.Errorf("Parse(%q).String() = %q, want %q", tc.in, got, tc.out)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "0", "1-3,5", "3-1", "1,,2", "+1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := Parse(in, 1000)
		if err != nil {
			return
		}
		again, err := Parse(s.String(), 1000)
		if err != nil || again.String() != s.String() {
			t.Fatalf("%q: written %q does not read back (%v)", in, s.String(), err)
		}
	})
}

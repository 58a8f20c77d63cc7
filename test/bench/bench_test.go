package bench

import (
	"regexp"
	"sync"
	"testing"
	"time"
)

// fakeTB records whether Want skipped or failed.
type fakeTB struct {
	testing.TB
	skipped, failed bool
}

func (f *fakeTB) Helper()               {}
func (f *fakeTB) Skipf(string, ...any)  { f.skipped = true }
func (f *fakeTB) Fatalf(string, ...any) { f.failed = true }

func TestWant(t *testing.T) {
	for _, tc := range []struct {
		expr    string
		figures []string
		skip    bool
		fail    bool
	}{
		{"", []string{"store_create_1k_c1"}, false, false},
		{"store_", []string{"store_create_1k_c1", "store_create_1k_c100"}, false, false},
		{"c100$", []string{"store_create_1k_c1", "store_create_1k_c100"}, false, false},
		{"api_", []string{"store_create_1k_c1"}, true, false},
		{"pod_startup", []string{"e2e_deploy_1000r_100n", "e2e_deploy_1000r_100n_rate"}, true, false},
		{"(", []string{"store_list_10k"}, false, true},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			t.Setenv(Env, tc.expr)
			once, pattern, badExpr = sync.Once{}, (*regexp.Regexp)(nil), nil
			f := &fakeTB{}
			Want(f, tc.figures...)
			if f.skipped != tc.skip || f.failed != tc.fail {
				t.Errorf("%s=%q figures %v: skipped %v failed %v, want skipped %v failed %v",
					Env, tc.expr, tc.figures, f.skipped, f.failed, tc.skip, tc.fail)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	d := []time.Duration{5 * time.Millisecond, time.Millisecond, 3 * time.Millisecond, 2 * time.Millisecond, 4 * time.Millisecond}
	if got := Percentile(d, 0.5); got != 3 {
		t.Errorf("p50 = %v ms, want 3", got)
	}
	if got := Percentile(d, 1); got != 5 {
		t.Errorf("p100 = %v ms, want 5", got)
	}
	if got := Percentile(nil, 0.99); got != 0 {
		t.Errorf("p99 of nothing = %v, want 0", got)
	}
}

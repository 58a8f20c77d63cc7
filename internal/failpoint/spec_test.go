package failpoint

import (
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want map[string]action
		err  string
	}{
		{spec: "", want: map[string]action{}},
		{spec: "store/afterCommit=crash@0.01", want: map[string]action{"store/afterCommit": {kind: "crash", prob: 0.01}}},
		{spec: " a=panic , b=delay(50ms)@0.5 ", want: map[string]action{"a": {kind: "panic", prob: 1}, "b": {kind: "delay", delay: 50 * time.Millisecond, prob: 0.5}}},
		{spec: "a", err: "want NAME=ACTION"},
		{spec: "=crash", err: "want NAME=ACTION"},
		{spec: "a=explode", err: `unknown action "explode"`},
		{spec: "a=delay(soon)", err: "want delay(DURATION)"},
		{spec: "a=crash@2", err: "from 0 to 1"},
		{spec: "a=crash,a=panic", err: "given twice"},
	} {
		got, err := parse(tc.spec)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parse(%q) = %v, want an error with %q", tc.spec, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("parse(%q): %v", tc.spec, err)
			continue
		}
		if len(got) != len(tc.want) {
			t.Errorf("parse(%q) = %v, want %v", tc.spec, got, tc.want)
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("parse(%q)[%s] = %+v, want %+v", tc.spec, k, got[k], v)
			}
		}
	}
}

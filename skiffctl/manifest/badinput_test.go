package manifest

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
)

// TestBadInputCorpus is the outside probe's corpus of hostile manifests (issue 27): each is
// refused with an error that names the problem, in bounded time, and none decodes.
func TestBadInputCorpus(t *testing.T) {
	// A billion laughs: nine levels of ten aliases each.
	var bomb strings.Builder
	bomb.WriteString("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb}\n")
	bomb.WriteString("a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n")
	for i := 1; i < 10; i++ {
		prev := "*a" + string(rune('0'+i-1))
		bomb.WriteString("a" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " [" + strings.Repeat(prev+",", 9) + prev + "]\n")
	}
	deepYAML := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: deep}\ndata: " + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + "\n"
	deepJSON := `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"deep"},"x":` + strings.Repeat(`{"a":`, 20000) + "1" + strings.Repeat("}", 20000) + "}"
	for _, tc := range []struct {
		name, data string
		want       []string // substrings of the error
	}{
		{"alias bomb", bomb.String(), []string{"document 1", "excessive aliasing"}},
		{"deep YAML nesting", deepYAML, []string{"document 1", "exceeded max depth"}},
		{"deep JSON nesting", deepJSON, []string{"document 1", "exceeded max depth"}},
		{"duplicate YAML key", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  name: b\n", []string{"line 5", `key "name" already set`}},
		{"duplicate JSON key", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","name":"b"}}`, []string{"line 1", `key "name" already set`}},
		{"invalid UTF-8 in a value", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: \"\xff\xfe\"}\n", []string{"document 1", "invalid leading UTF-8"}},
		{"bad name", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Not_A_Name}\n", nil},
		{"misspelled field", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndta: {k: v}\n", []string{"dta: unknown field"}},
		{"no kind", "apiVersion: v1\nmetadata: {name: a}\n", []string{"kind: Required value"}},
		{"unknown kind", "apiVersion: v1\nkind: Nope\nmetadata: {name: a}\n", []string{`kind: Unsupported value: "Nope"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			docs, err := DecodeBytes([]byte(tc.data), "probe.yaml")
			took := time.Since(start)
			if tc.want == nil {
				// Names are the API server's to refuse (validation), not the decoder's.
				if err != nil {
					t.Fatalf("decode: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("decoded %d documents; want a refusal", len(docs))
			}
			t.Logf("%v", err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if !strings.Contains(err.Error(), "probe.yaml") {
				t.Errorf("error %q does not name the file", err)
			}
			// Bounded: a loaded 2-core machine does this in well under a second; a minute
			// means the decoder expanded or recursed without limit.
			if took > time.Minute {
				t.Errorf("took %v", took)
			}
		})
	}
	// Beyond MaxBytes, Decode refuses without reading the whole input.
	r := &countingReader{n: MaxBytes + 1<<20}
	if _, err := Decode(r, "big.yaml"); err == nil || !strings.Contains(err.Error(), "big.yaml") {
		t.Fatalf("a manifest over the limit: %v", err)
	}
	if r.read > MaxBytes+64<<10 {
		t.Errorf("read %d bytes of a manifest over the %d-byte limit", r.read, MaxBytes)
	}
}

// countingReader yields n bytes of a YAML comment and counts what was read.
type countingReader struct{ n, read int64 }

func (c *countingReader) Read(p []byte) (int, error) {
	if c.read >= c.n {
		return 0, io.EOF
	}
	k := min(int64(len(p)), c.n-c.read)
	copy(p, bytes.Repeat([]byte("#"), int(k)))
	c.read += k
	return int(k), nil
}

package crilog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/skiffhq/skiff/test/waitfor"
)

var t0 = time.Date(2016, 10, 6, 0, 17, 9, 669794202, time.UTC)

// clock ticks one millisecond a call.
func clock() func() time.Time {
	t := t0
	return func() time.Time {
		now := t
		t = t.Add(time.Millisecond)
		return now
	}
}

func TestCopyStream(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		stream  string
		maxLine int
		want    string
	}{
		{"lines", "hello\nworld\n", Stdout, 0,
			"2016-10-06T00:17:09.669794202Z stdout F hello\n2016-10-06T00:17:09.670794202Z stdout F world\n"},
		{"stderr", "oops\n", Stderr, 0, "2016-10-06T00:17:09.669794202Z stderr F oops\n"},
		{"empty line", "\n", Stdout, 0, "2016-10-06T00:17:09.669794202Z stdout F \n"},
		{"no newline at the end", "a\nprompt> ", Stdout, 0,
			"2016-10-06T00:17:09.669794202Z stdout F a\n2016-10-06T00:17:09.670794202Z stdout P prompt> \n"},
		{"crlf kept", "dos\r\n", Stdout, 0, "2016-10-06T00:17:09.669794202Z stdout F dos\r\n"},
		{"invalid utf-8 kept", "\xff\xfe ok\n", Stdout, 0, "2016-10-06T00:17:09.669794202Z stdout F \xff\xfe ok\n"},
		{"long line split", "abcdefghij\n", Stdout, 4,
			"2016-10-06T00:17:09.669794202Z stdout P abcd\n2016-10-06T00:17:09.670794202Z stdout P efgh\n2016-10-06T00:17:09.671794202Z stdout F ij\n"},
		{"exactly the limit", "abcd\nef\n", Stdout, 4,
			"2016-10-06T00:17:09.669794202Z stdout F abcd\n2016-10-06T00:17:09.670794202Z stdout F ef\n"},
		{"limit then newline", "abcdefgh\n", Stdout, 4,
			"2016-10-06T00:17:09.669794202Z stdout P abcd\n2016-10-06T00:17:09.670794202Z stdout F efgh\n"},
		{"nothing", "", Stdout, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			// One byte a read: records must not depend on how the pipe delivers.
			if err := CopyStream(NewSink(&out, clock()), iotest.OneByteReader(strings.NewReader(tc.in)), tc.stream, tc.maxLine, 0); err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.want {
				t.Errorf("got\n%q\nwant\n%q", out.String(), tc.want)
			}
			// And the reader gives the output back as it was written.
			var plain bytes.Buffer
			if _, err := NewDecoder(NewPrinter(&plain, Options{})).Write(out.Bytes()); err != nil {
				t.Fatal(err)
			}
			if plain.String() != tc.in {
				t.Errorf("read back %q, wrote %q", plain.String(), tc.in)
			}
		})
	}
}

func TestCopyStreamReadError(t *testing.T) {
	var out bytes.Buffer
	boom := errors.New("boom")
	err := CopyStream(NewSink(&out, clock()), io.MultiReader(strings.NewReader("half"), iotest.ErrReader(boom)), Stdout, 0, 0)
	if !errors.Is(err, boom) {
		t.Fatalf("error %v, want boom", err)
	}
	if want := "2016-10-06T00:17:09.669794202Z stdout P half\n"; out.String() != want {
		t.Errorf("kept %q, want %q", out.String(), want)
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		line string
		want Record
		err  string
	}{
		{line: "2016-10-06T00:17:09.669794202Z stdout F message", want: Record{Time: t0, Stream: Stdout, Content: []byte("message")}},
		{line: "2016-10-06T00:17:09.669794202Z stderr P part", want: Record{Time: t0, Stream: Stderr, Partial: true, Content: []byte("part")}},
		{line: "2016-10-06T00:17:09.669794202Z stdout F ", want: Record{Time: t0, Stream: Stdout, Content: []byte{}}},
		{line: "2016-10-06T00:17:09.669794202Z stdout F:x:y spaces  inside ", want: Record{Time: t0, Stream: Stdout, Content: []byte("spaces  inside ")}},
		{line: "2016-10-06T02:17:09.669794202+02:00 stdout F zone", want: Record{Time: t0, Stream: Stdout, Content: []byte("zone")}},
		{line: "2016-10-06T00:17:09.669794202Z stdout F cr\r", want: Record{Time: t0, Stream: Stdout, Content: []byte("cr\r")}},
		{line: "hello world", err: `time "hello"`},
		{line: "2016-10-06T00:17:09Z", err: "no stream"},
		{line: "2016-10-06T00:17:09Z stdin F x", err: `stream "stdin"`},
		{line: "2016-10-06T00:17:09Z stdout", err: "no tag"},
		{line: "2016-10-06T00:17:09Z stdout F", err: "no content"},
		{line: "2016-10-06T00:17:09Z stdout X x", err: `tag "X"`},
		{line: "", err: "no stream"},
	} {
		got, err := Parse([]byte(tc.line))
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Parse(%q): error %v, want one with %q", tc.line, err, tc.err)
			}
		case err != nil:
			t.Errorf("Parse(%q): %v", tc.line, err)
		case !got.Time.Equal(tc.want.Time) || got.Stream != tc.want.Stream || got.Partial != tc.want.Partial || !bytes.Equal(got.Content, tc.want.Content):
			t.Errorf("Parse(%q) = %+v, want %+v", tc.line, got, tc.want)
		}
	}
}

// file is a log with a split line, both streams, and a raw line of an older file.
const file = "2016-10-06T00:17:09.669794202Z stdout F one\n" +
	"2016-10-06T00:17:10.5Z stderr F two\n" +
	"2016-10-06T00:17:11Z stdout P thr\n" +
	"2016-10-06T00:17:12Z stdout F ee\n" +
	"2016-10-06T00:17:13Z stdout P tail"

func TestPrinter(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"plain", Options{}, "one\ntwo\nthree\n"},
		{"timestamps", Options{Timestamps: true},
			"2016-10-06T00:17:09.669794202Z one\n2016-10-06T00:17:10.5Z two\n2016-10-06T00:17:11Z three\n"},
		{"since", Options{Since: t0.Add(500 * time.Millisecond)}, "two\nthree\n"},
		{"since mid-line", Options{Since: time.Date(2016, 10, 6, 0, 17, 12, 0, time.UTC), Timestamps: true}, "2016-10-06T00:17:12Z ee\n"},
		{"limit", Options{LimitBytes: 6}, "one\ntw"},
		{"limit on a line's end", Options{LimitBytes: 4}, "one\n"},
		{"limit with timestamps", Options{LimitBytes: 33, Timestamps: true}, "2016-10-06T00:17:09.669794202Z on"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			d := NewDecoder(NewPrinter(&out, tc.opts))
			_, err := d.Write([]byte(file))
			if tc.opts.LimitBytes > 0 {
				if !errors.Is(err, ErrLimit) {
					t.Errorf("error %v, want ErrLimit", err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.want {
				t.Errorf("got %q, want %q", out.String(), tc.want)
			}
		})
	}
}

func TestStreamPrinter(t *testing.T) {
	// stdout's line is split by a stderr record: on one writer the stderr record goes on
	// stdout's line, each stream on its own writer keeps its line whole.
	const interleaved = "2016-10-06T00:17:11Z stdout P thr\n" +
		"2016-10-06T00:17:12Z stderr F two\n" +
		"2016-10-06T00:17:13Z stdout F ee\n" +
		"not a record\n"
	for _, tc := range []struct {
		name           string
		opts           Options
		split          bool
		stdout, stderr string
	}{
		{"one writer", Options{}, false, "thrtwo\nee\nnot a record\n", ""},
		{"two writers", Options{}, true, "three\nnot a record\n", "two\n"},
		{"two writers with timestamps", Options{Timestamps: true}, true,
			"2016-10-06T00:17:11Z three\nnot a record\n", "2016-10-06T00:17:12Z two\n"},
		{"two writers sharing a limit", Options{LimitBytes: 5}, true, "thr", "tw"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			p := NewPrinter(&stdout, tc.opts)
			if tc.split {
				p = NewStreamPrinter(&stdout, &stderr, tc.opts)
			}
			_, err := NewDecoder(p).Write([]byte(interleaved))
			if (tc.opts.LimitBytes > 0) != errors.Is(err, ErrLimit) || (err != nil && !errors.Is(err, ErrLimit)) {
				t.Errorf("error %v", err)
			}
			if stdout.String() != tc.stdout || stderr.String() != tc.stderr {
				t.Errorf("stdout %q, stderr %q; want %q, %q", stdout.String(), stderr.String(), tc.stdout, tc.stderr)
			}
		})
	}
}

func TestDecoderPieces(t *testing.T) {
	// Any split of the file gives the same output; the incomplete last line waits.
	var whole bytes.Buffer
	NewDecoder(NewPrinter(&whole, Options{Timestamps: true})).Write([]byte(file))
	for i := 0; i <= len(file); i++ {
		var out bytes.Buffer
		d := NewDecoder(NewPrinter(&out, Options{Timestamps: true}))
		d.Write([]byte(file[:i]))
		d.Write([]byte(file[i:]))
		if out.String() != whole.String() {
			t.Fatalf("split at %d: %q, want %q", i, out.String(), whole.String())
		}
		if d.Pending() != len("2016-10-06T00:17:13Z stdout P tail") {
			t.Fatalf("split at %d: pending %d", i, d.Pending())
		}
	}
}

func TestRawLines(t *testing.T) {
	raw := "written before the format\n2016-10-06T00:17:09.669794202Z stdout F new\n"
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{}, "written before the format\nnew\n"},
		{Options{Timestamps: true}, "written before the format\n2016-10-06T00:17:09.669794202Z new\n"},
		{Options{Since: t0}, "new\n"},
	} {
		var out bytes.Buffer
		NewDecoder(NewPrinter(&out, tc.opts)).Write([]byte(raw))
		if out.String() != tc.want {
			t.Errorf("%+v: got %q, want %q", tc.opts, out.String(), tc.want)
		}
	}
}

func TestTailStart(t *testing.T) {
	records := file[:strings.LastIndexByte(file, '\n')+1] // whole records only
	for _, tc := range []struct {
		n    int64
		want string
	}{
		{0, ""},
		{-1, ""},
		{1, "three\n"},
		{2, "two\nthree\n"},
		{3, "one\ntwo\nthree\n"},
		{100, "one\ntwo\nthree\n"},
	} {
		var out bytes.Buffer
		NewDecoder(NewPrinter(&out, Options{})).Write([]byte(records[TailStart([]byte(records), tc.n):]))
		if out.String() != tc.want {
			t.Errorf("tail %d: %q, want %q", tc.n, out.String(), tc.want)
		}
	}
	// A line still open at the end counts.
	open := records + "2016-10-06T00:17:13Z stdout P tail\n"
	if got := open[TailStart([]byte(open), 1):]; got != "2016-10-06T00:17:13Z stdout P tail\n" {
		t.Errorf("tail 1 with an open line: %q", got)
	}
}

// FuzzParse: Parse never panics, and what it reads writes back to a record it reads
// the same.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"2016-10-06T00:17:09.669794202Z stdout F message",
		"2016-10-06T00:17:09.669794202Z stderr P part",
		"2016-10-06T00:17:09Z stdout F:x ",
		"2016-10-06T00:17:09Z stdout F cr\r",
		"2016-10-06T00:17:09Z stdout F \xff\xfe",
		"not a record",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		r, err := Parse(line)
		if err != nil {
			return
		}
		out := Append(nil, r)
		if bytes.IndexByte(r.Content, '\n') >= 0 {
			return // not a line: Parse is given lines
		}
		again, err := Parse(out[:len(out)-1])
		if err != nil || !again.Time.Equal(r.Time) || again.Stream != r.Stream || again.Partial != r.Partial || !bytes.Equal(again.Content, r.Content) {
			t.Fatalf("%q: wrote %q, read back %+v, %v", line, out, again, err)
		}
	})
}

// TestSinkTwoStreams: stdout and stderr copied at once into one file give whole
// records, each stream's in its order.
func TestSinkTwoStreams(t *testing.T) {
	var out bytes.Buffer
	sink := NewSink(&out, nil)
	var in [2]strings.Builder
	for i := range 500 {
		fmt.Fprintf(&in[0], "out %d %s\n", i, strings.Repeat("o", i))
		fmt.Fprintf(&in[1], "err %d %s\n", i, strings.Repeat("e", i))
	}
	errs := make(chan error, 2)
	for i, stream := range []string{Stdout, Stderr} {
		go func() { errs <- CopyStream(sink, strings.NewReader(in[i].String()), stream, 100, 0) }()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	var got [2]bytes.Buffer
	for _, line := range strings.SplitAfter(out.String(), "\n") {
		if line == "" {
			continue
		}
		r, err := Parse([]byte(strings.TrimSuffix(line, "\n")))
		if err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		b := &got[0]
		if r.Stream == Stderr {
			b = &got[1]
		}
		b.Write(r.Content)
		if !r.Partial {
			b.WriteByte('\n')
		}
	}
	for i := range got {
		if got[i].String() != in[i].String() {
			t.Errorf("stream %d read back differs", i)
		}
	}
}

// lockedBuffer is a log file written by one goroutine and read by another.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestCopyStreamIdlePartial: with idle set, output without its newline is written as a
// partial record once nothing more comes, while the stream stays open (as the shim
// keeps a container's after it exits), and read back joined with the rest of its line.
func TestCopyStreamIdlePartial(t *testing.T) {
	var out lockedBuffer
	r, w := io.Pipe()
	errs := make(chan error, 1)
	go func() { errs <- CopyStream(NewSink(&out, nil), r, Stdout, 0, 10*time.Millisecond) }()
	if _, err := io.WriteString(w, "DONE"); err != nil {
		t.Fatal(err)
	}
	waitfor.Condition(t, 10*time.Second, "the partial line in the log", func() (bool, string) {
		return strings.Contains(out.String(), " stdout P DONE\n"), out.String()
	})
	if _, err := io.WriteString(w, "!\nnext\n"); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	var plain bytes.Buffer
	if _, err := NewDecoder(NewPrinter(&plain, Options{})).Write([]byte(out.String())); err != nil {
		t.Fatal(err)
	}
	if plain.String() != "DONE!\nnext\n" {
		t.Errorf("read back %q from\n%s", plain.String(), out.String())
	}
}

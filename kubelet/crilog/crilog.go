// Package crilog reads and writes the container log format Kubernetes' runtimes keep
// (the CRI log format): one record a line,
//
//	2016-10-06T00:17:09.669794202Z stdout F message
//
// the time the runtime read the output (RFC 3339 with nanoseconds, UTC), the stream
// (stdout or stderr), a tag (F: the record ends a line; P: a partial line, continued by
// the stream's next record) and the output itself, without its newline. A line longer
// than the writer's limit, and output that ends without a newline, become P records.
// Content is kept byte for byte: a carriage return before the newline stays in the
// message, invalid UTF-8 is copied as it is.
//
// The writer (CopyStream) is what the kubelet's logging program runs for each of a
// container's streams; the reader (Decoder, Printer) is what the kubelet's log server
// answers `logs` with: the plain output, or with --timestamps each line prefixed with
// the time of its first record, as kubectl shows it.
package crilog

import (
	"bytes"
	"errors"
	"fmt"
	"time"
)

// Streams.
const (
	Stdout = "stdout"
	Stderr = "stderr"
)

// Tags.
const (
	TagFull    = "F"
	TagPartial = "P"
)

// MaxLine is the longest content of one record (the default of containerd's
// max_container_log_line_size); longer lines are split into partial records.
const MaxLine = 16 << 10

// TimeFormat is how record times are written and how --timestamps prints them.
const TimeFormat = time.RFC3339Nano

// Record is one line of a log file.
type Record struct {
	Time    time.Time
	Stream  string
	Partial bool
	// Content is the output, without the record's newline.
	Content []byte
}

// Append appends r, formatted with its newline, to dst.
func Append(dst []byte, r Record) []byte {
	dst = r.Time.UTC().AppendFormat(dst, TimeFormat)
	dst = append(dst, ' ')
	dst = append(dst, r.Stream...)
	if r.Partial {
		dst = append(dst, " P "...)
	} else {
		dst = append(dst, " F "...)
	}
	dst = append(dst, r.Content...)
	return append(dst, '\n')
}

// Parse reads one record from line (without its newline). Content aliases line. Tags
// after the first, separated by ':', are ignored, as the kubelet does.
func Parse(line []byte) (Record, error) {
	var r Record
	ts, rest, ok := bytes.Cut(line, []byte{' '})
	if !ok {
		return r, errors.New("crilog: no stream after the time")
	}
	t, err := time.Parse(TimeFormat, string(ts))
	if err != nil {
		return r, fmt.Errorf("crilog: time %q: %w", ts, err)
	}
	stream, rest, ok := bytes.Cut(rest, []byte{' '})
	if !ok {
		return r, errors.New("crilog: no tag after the stream")
	}
	switch s := string(stream); s {
	case Stdout, Stderr:
		r.Stream = s
	default:
		return r, fmt.Errorf("crilog: stream %q: want stdout or stderr", stream)
	}
	tags, content, ok := bytes.Cut(rest, []byte{' '})
	if !ok {
		return r, errors.New("crilog: no content after the tag")
	}
	tag, _, _ := bytes.Cut(tags, []byte{':'})
	switch string(tag) {
	case TagFull:
	case TagPartial:
		r.Partial = true
	default:
		return r, fmt.Errorf("crilog: tag %q: want F or P", tag)
	}
	r.Time, r.Content = t, content
	return r, nil
}

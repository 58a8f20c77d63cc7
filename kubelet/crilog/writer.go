package crilog

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// Sink is the log file a container's streams are copied to. Each record is written
// with one call, under a lock, so that records of two streams never interleave.
type Sink struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
	now func() time.Time
}

// NewSink writes records to w, timed with now (nil: time.Now).
func NewSink(w io.Writer, now func() time.Time) *Sink {
	if now == nil {
		now = time.Now
	}
	return &Sink{w: w, now: now}
}

func (s *Sink) write(stream string, partial bool, content []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = Append(s.buf[:0], Record{Time: s.now(), Stream: stream, Partial: partial, Content: content})
	_, err := s.w.Write(s.buf)
	return err
}

// CopyStream copies src, a container's stream (Stdout or Stderr), to s as records until
// src ends: a record per line, lines longer than maxLine (<= 0: MaxLine) split into
// partial records of maxLine bytes, and output left without a newline at the end a
// partial record. It returns nil at src's end, else the first error.
func CopyStream(s *Sink, src io.Reader, stream string, maxLine int) error {
	if maxLine <= 0 {
		maxLine = MaxLine
	}
	br := bufio.NewReaderSize(src, maxLine)
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		full := len(line) > 0 && line[len(line)-1] == '\n'
		if full {
			line = line[:len(line)-1]
		}
		for len(line) > maxLine {
			if werr := s.write(stream, true, line[:maxLine]); werr != nil {
				return fmt.Errorf("write %s record: %w", stream, werr)
			}
			line = append(line[:0], line[maxLine:]...)
		}
		switch {
		case full:
			if werr := s.write(stream, false, line); werr != nil {
				return fmt.Errorf("write %s record: %w", stream, werr)
			}
			line = line[:0]
		case err != nil && !errors.Is(err, bufio.ErrBufferFull) && len(line) > 0:
			// The stream ended (or broke) in the middle of a line: keep what came.
			if werr := s.write(stream, true, line); werr != nil {
				return fmt.Errorf("write %s record: %w", stream, werr)
			}
			line = line[:0]
		}
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
		case errors.Is(err, io.EOF):
			return nil
		default:
			return fmt.Errorf("read %s: %w", stream, err)
		}
	}
}

package crilog

import (
	"bytes"
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
// partial record — or, with idle > 0, as soon as nothing more came for that long: a
// program's last line without its newline is then in the log while its stream stays
// open (containerd's shim keeps it open until the task is deleted), as a termination
// message read from the log needs; the reader joins it with the rest of its line, if
// any comes. It returns nil at src's end, else the first error. src is read on a
// goroutine of its own, which ends with src (at its end or error).
func CopyStream(s *Sink, src io.Reader, stream string, maxLine int, idle time.Duration) error {
	if maxLine <= 0 {
		maxLine = MaxLine
	}
	type read struct {
		n   int
		err error
	}
	buf := make([]byte, maxLine)
	reads, next := make(chan read), make(chan struct{})
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			n, err := src.Read(buf)
			select {
			case reads <- read{n, err}:
			case <-done:
				return
			}
			if err != nil {
				return
			}
			select {
			case <-next: // buf is free again
			case <-done:
				return
			}
		}
	}()
	var line []byte
	write := func(partial bool, content []byte) error {
		if err := s.write(stream, partial, content); err != nil {
			return fmt.Errorf("write %s record: %w", stream, err)
		}
		return nil
	}
	var timer *time.Timer
	var fire <-chan time.Time
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		var r read
		select {
		case r = <-reads:
		case <-fire:
			fire = nil
			if err := write(true, line); err != nil {
				return err
			}
			line = line[:0]
			continue
		}
		data := buf[:r.n]
		for len(data) > 0 {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				line, data = append(line, data...), nil
			} else {
				line, data = append(line, data[:i]...), data[i+1:]
			}
			for len(line) > maxLine {
				if err := write(true, line[:maxLine]); err != nil {
					return err
				}
				line = append(line[:0], line[maxLine:]...)
			}
			if i >= 0 {
				if err := write(false, line); err != nil {
					return err
				}
				line = line[:0]
			}
		}
		if r.err != nil {
			if len(line) > 0 {
				// The stream ended (or broke) in the middle of a line: keep what came.
				if err := write(true, line); err != nil {
					return err
				}
			}
			if errors.Is(r.err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read %s: %w", stream, r.err)
		}
		fire = nil
		if idle > 0 && len(line) > 0 {
			if timer == nil {
				timer = time.NewTimer(idle)
			} else {
				timer.Reset(idle)
			}
			fire = timer.C
		}
		next <- struct{}{}
	}
}

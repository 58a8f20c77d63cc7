package crilog

import (
	"bytes"
	"errors"
	"io"
	"time"
)

// ErrLimit ends a Printer's output once it has printed Options.LimitBytes: what reads
// the log stops there, successfully.
var ErrLimit = errors.New("crilog: byte limit reached")

// Options shape what a Printer prints, as kubectl logs' flags do.
type Options struct {
	// Timestamps begins each line with the time of its first record and a space.
	Timestamps bool
	// Since, when set, drops the records written before it.
	Since time.Time
	// LimitBytes, when > 0, ends the output after that many bytes (ErrLimit).
	LimitBytes int64
}

// Printer prints records as a container wrote them: their content, a newline after each
// full record, and the options' prefixes and filters, to one writer (logs) or each
// stream to its own (attach without a terminal, as Kubernetes' ReadLogs). Lines are
// each writer's: on one writer a partial record continues on the next record printed,
// whatever its stream; on two, on its stream's next.
type Printer struct {
	out     [2]io.Writer // stdout's and stderr's, the same for one writer
	opts    Options
	open    [2]bool // the last record printed to out[i] was partial: its line goes on
	written int64   // on both writers together, for LimitBytes
	buf     []byte
}

// NewPrinter prints both streams to w.
func NewPrinter(w io.Writer, opts Options) *Printer {
	return &Printer{out: [2]io.Writer{w, nil}, opts: opts}
}

// NewStreamPrinter prints the stdout records to stdout and the stderr records to stderr.
func NewStreamPrinter(stdout, stderr io.Writer, opts Options) *Printer {
	return &Printer{out: [2]io.Writer{stdout, stderr}, opts: opts}
}

// to is the index in out (and open) of the writer of stream's records.
func (p *Printer) to(stream string) int {
	if stream == Stderr && p.out[1] != nil {
		return 1
	}
	return 0
}

// Print prints r, or nothing when it is before Options.Since.
func (p *Printer) Print(r Record) error {
	if !p.opts.Since.IsZero() && r.Time.Before(p.opts.Since) {
		return nil
	}
	i := p.to(r.Stream)
	p.buf = p.buf[:0]
	if p.opts.Timestamps && !p.open[i] {
		p.buf = r.Time.UTC().AppendFormat(p.buf, TimeFormat)
		p.buf = append(p.buf, ' ')
	}
	p.buf = append(p.buf, r.Content...)
	if !r.Partial {
		p.buf = append(p.buf, '\n')
	}
	p.open[i] = r.Partial
	return p.write(i, p.buf)
}

// printRaw prints a line that is not a record (a file written before Skiff kept the
// format): as it is, to stdout's writer, without a time, and not at all when Since is
// set (its time is unknown).
func (p *Printer) printRaw(line []byte) error {
	if !p.opts.Since.IsZero() {
		return nil
	}
	p.open[0] = false
	p.buf = append(append(p.buf[:0], line...), '\n')
	return p.write(0, p.buf)
}

// write writes b to out[i].
func (p *Printer) write(i int, b []byte) error {
	w := p.out[i]
	if p.opts.LimitBytes > 0 {
		if left := p.opts.LimitBytes - p.written; int64(len(b)) >= left {
			n, err := w.Write(b[:left])
			p.written += int64(n)
			if err != nil {
				return err
			}
			return ErrLimit
		}
	}
	n, err := w.Write(b)
	p.written += int64(n)
	return err
}

// Decoder is an io.Writer that takes a log file's bytes, in pieces of any size, and
// prints each complete record with a Printer. A line that is not a record is printed as
// it is (see printRaw). An incomplete last line is kept until its newline comes:
// Pending says how long it is.
type Decoder struct {
	p       *Printer
	pending []byte
}

// NewDecoder prints what it decodes with p.
func NewDecoder(p *Printer) *Decoder { return &Decoder{p: p} }

// Write implements io.Writer. Its error is the Printer's (ErrLimit once it is done).
func (d *Decoder) Write(b []byte) (int, error) {
	n := len(b)
	if len(d.pending) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			d.pending = append(d.pending, b...)
			return n, nil
		}
		d.pending = append(d.pending, b[:i]...)
		b = b[i+1:]
		err := d.line(d.pending)
		d.pending = d.pending[:0]
		if err != nil {
			return n, err
		}
	}
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			d.pending = append(d.pending, b...)
			return n, nil
		}
		if err := d.line(b[:i]); err != nil {
			return n, err
		}
		b = b[i+1:]
	}
}

func (d *Decoder) line(l []byte) error {
	r, err := Parse(l)
	if err != nil {
		return d.p.printRaw(l)
	}
	return d.p.Print(r)
}

// Pending is the length of the incomplete line held back.
func (d *Decoder) Pending() int { return len(d.pending) }

// TailStart is the offset in b, whole records, at which its last n lines begin: a line
// is a run of partial records ended by a full one (or by b's end). n <= 0 is len(b).
func TailStart(b []byte, n int64) int {
	if n <= 0 {
		return len(b)
	}
	var starts []int // where each line begins
	open := false
	for off := 0; off < len(b); {
		end := bytes.IndexByte(b[off:], '\n')
		if end < 0 {
			end = len(b) - off
		}
		if !open {
			starts = append(starts, off)
		}
		r, err := Parse(b[off : off+end])
		open = err == nil && r.Partial
		off += end + 1
	}
	if int64(len(starts)) <= n {
		return 0
	}
	return starts[int64(len(starts))-n]
}

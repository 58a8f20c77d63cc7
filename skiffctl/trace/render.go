package trace

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// WriteJSON writes the trace as one JSON object.
func WriteJSON(w io.Writer, t *Trace) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(t)
}

// WriteText writes the timeline, fitted to width columns (80 when 0): one line per step
// with who did it, when, its own duration and a bar scaled to that duration; then the
// pods' summary.
func WriteText(w io.Writer, t *Trace, width int) error {
	if width <= 0 {
		width = 80
	}
	fmt.Fprintf(w, "%s %s/%s", strings.ToLower(t.Kind), t.Namespace, t.Name)
	if c := t.Child(); c != "" {
		fmt.Fprintf(w, "  revision %d  %s", t.Revision, c)
	}
	fmt.Fprintf(w, "\nstarted %s", t.Start.Local().Format("2006-01-02 15:04:05.000"))
	if t.StartedBy != "" && t.Revision <= 1 {
		fmt.Fprintf(w, " by %s", t.StartedBy)
	}
	fmt.Fprint(w, "\n\n")
	writeSteps(w, t.Steps, width)
	p := t.Pods
	fmt.Fprintf(w, "\npods: %d of %d ready", p.Ready, p.Total)
	if p.First != nil && p.First.Ready {
		fmt.Fprintf(w, "; ready after: first %s, median %s, slowest %s",
			human(p.First.ReadyMs), readyText(p.Median), readyText(p.Slowest))
	}
	fmt.Fprintln(w)
	if p.Slowest != nil {
		fmt.Fprintf(w, "steps 4-10 above are the slowest pod's: %s on %s\n", p.Slowest.Name, orDash(p.Slowest.Node))
	}
	for _, s := range t.Services {
		fmt.Fprintf(w, "Service %s: %d of %d endpoints ready\n", s.Name, s.Ready, s.Total)
	}
	return nil
}

func readyText(p *Pod) string {
	if p == nil || !p.Ready {
		return "not ready"
	}
	return human(p.ReadyMs)
}

func writeSteps(w io.Writer, steps []Step, width int) {
	const stepW, titleW, whoW, timeW = 5, 22, 24, 8
	barW := max(width-stepW-titleW-whoW-2*timeW-6, 5)
	longest := 0.0
	for _, s := range steps {
		if !s.Missing {
			longest = max(longest, s.SincePreviousMs)
		}
	}
	fmt.Fprintf(w, "%-*s %-*s %-*s %*s %*s\n", stepW, "STEP", titleW, "WHAT", whoW, "WHO", timeW, "AT", timeW, "TOOK")
	for _, s := range steps {
		who := s.Component
		if s.Node != "" {
			who += "@" + s.Node
		}
		if s.Missing {
			fmt.Fprintf(w, "%-*s %-*s %-*s %*s\n", stepW, s.Label(), titleW, fit(s.Title, titleW), whoW, "-", timeW, "(not yet)")
			continue
		}
		bar := 0
		if longest > 0 {
			bar = int(float64(barW)*s.SincePreviousMs/longest + 0.5)
		}
		if bar == 0 && s.SincePreviousMs > 0 {
			bar = 1
		}
		fmt.Fprintf(w, "%-*s %s %s %s %s %s\n", stepW, s.Label(), fit(s.Title, titleW), fit(who, whoW),
			right("+"+human(s.SinceStartMs), timeW), right(human(s.SincePreviousMs), timeW), strings.Repeat("█", bar))
	}
}

// fit cuts s to n columns (marking the cut with …) and pads it to n: the fmt widths
// count bytes, not runes.
func fit(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		r = append(r[:n-1], '…')
	}
	return string(r) + strings.Repeat(" ", n-len(r))
}

// right aligns s to the right of n columns (counting runes: "µs" is one column less than
// its bytes).
func right(s string, n int) string {
	return strings.Repeat(" ", max(n-len([]rune(s)), 0)) + s
}

// human formats milliseconds compactly: 850µs, 12ms, 1.25s, 2m03s.
func human(ms float64) string {
	d := time.Duration(ms * float64(time.Millisecond))
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
	return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
}

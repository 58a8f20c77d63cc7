// Command plotcurve draws the scale benchmarks' cost curve (issue 26): it reads BENCH
// lines (`make bench` writes them to bin/bench.out) and writes an SVG of each per-pod
// cost against the number of pods, one panel per kind of cost, from the figures the
// scale_<R>r_<N>n benchmarks print (test/e2e/bench_scale_test.go):
//
//	go run ./hack/plotcurve -o docs/scale-curve.svg bin/bench.out
//
// A figure printed more than once (several runs in the input) is drawn from its last
// line. Each single-series panel also draws, dashed, 1.5 times the smallest run's cost:
// the goal is that every line stays under it.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// point is one run of the scale benchmark: its size and its figures by metric (the
// name after the scale_<R>r_<N>n_ prefix).
type point struct {
	pods, nodes int
	figures     map[string]float64
}

var benchLine = regexp.MustCompile(`^BENCH scale_(\d+)r_(\d+)n_(\S+) (\S+) \S+$`)

// parse reads BENCH lines and returns the scale runs' points ordered by pods. Lines of
// other figures, and anything else, are skipped.
func parse(r io.Reader) ([]*point, error) {
	byPods := map[int]*point{}
	s := bufio.NewScanner(r)
	s.Buffer(nil, 1<<20)
	for s.Scan() {
		m := benchLine.FindStringSubmatch(strings.TrimSpace(s.Text()))
		if m == nil {
			continue
		}
		pods, _ := strconv.Atoi(m[1])
		nodes, _ := strconv.Atoi(m[2])
		v, err := strconv.ParseFloat(m[4], 64)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", s.Text(), err)
		}
		p := byPods[pods]
		if p == nil {
			p = &point{pods: pods, nodes: nodes, figures: map[string]float64{}}
			byPods[pods] = p
		}
		p.figures[m[3]] = v
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	out := make([]*point, 0, len(byPods))
	for _, p := range byPods {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].pods < out[j].pods })
	return out, nil
}

// series is one line of a panel: a metric, scaled for its axis.
type series struct {
	metric, label string
	scale         float64
}

// panel is one plot: a kind of cost, its unit and its lines.
type panel struct {
	title, unit string
	lines       []series
}

var panels = []panel{
	{"Time", "s per 1,000 pods", []series{{"s_per_1k_pods", "", 1}}},
	{"Memory (RSS growth)", "KiB per pod", []series{
		{"rss_per_pod_apiserver", "API server (each member)", 1.0 / 1024},
		{"rss_per_pod_controller_manager", "controller-manager", 1.0 / 1024},
		{"rss_per_pod_scheduler", "scheduler", 1.0 / 1024},
		{"rss_per_pod_kubelets", "simulated kubelets", 1.0 / 1024}}},
	{"Disk (data directory growth)", "KiB per pod per member", []series{{"disk_per_pod_member", "", 1.0 / 1024}}},
	{"Raft log", "entries per pod", []series{{"raft_entries_per_pod", "", 1}}},
}

var colours = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd"}

const (
	panelW, panelH = 420, 280
	padL, padR     = 60, 20
	padT, padB     = 40, 50
)

// plot writes the SVG of points' panels, two a row.
func plot(w io.Writer, points []*point) {
	cols := 2
	rows := (len(panels) + cols - 1) / cols
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", cols*panelW, rows*panelH+30)
	fmt.Fprintf(w, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(w, `<text x="10" y="20" font-size="14" font-weight="bold">Skiff: per-pod cost against pods (%s)</text>`+"\n", sizes(points))
	for i, p := range panels {
		drawPanel(w, p, points, (i%cols)*panelW, 30+(i/cols)*panelH)
	}
	fmt.Fprintln(w, "</svg>")
}

func sizes(points []*point) string {
	var s []string
	for _, p := range points {
		s = append(s, fmt.Sprintf("%s pods / %s nodes", short(p.pods), short(p.nodes)))
	}
	return strings.Join(s, ", ")
}

// short writes 150000 as 150k.
func short(n int) string {
	if n >= 1000 && n%1000 == 0 {
		return fmt.Sprintf("%dk", n/1000)
	}
	if n >= 1000 && n%100 == 0 {
		return fmt.Sprintf("%.1fk", float64(n)/1000)
	}
	return strconv.Itoa(n)
}

func drawPanel(w io.Writer, p panel, points []*point, x0, y0 int) {
	plotW, plotH := float64(panelW-padL-padR), float64(panelH-padT-padB)
	maxX, maxY := 0.0, 0.0
	for _, pt := range points {
		maxX = max(maxX, float64(pt.pods))
		for _, s := range p.lines {
			if v, ok := pt.figures[s.metric]; ok {
				maxY = max(maxY, v*s.scale)
			}
		}
	}
	if len(p.lines) == 1 && len(points) > 0 {
		if v, ok := points[0].figures[p.lines[0].metric]; ok {
			maxY = max(maxY, 1.5*v*p.lines[0].scale)
		}
	}
	if maxX == 0 {
		maxX = 1
	}
	if maxY <= 0 {
		maxY = 1
	}
	maxY *= 1.1
	px := func(x float64) float64 { return float64(x0+padL) + x/maxX*plotW }
	py := func(y float64) float64 { return float64(y0+padT) + plotH - y/maxY*plotH }

	fmt.Fprintf(w, `<g><text x="%d" y="%d" font-weight="bold">%s</text>`+"\n", x0+padL, y0+20, p.title)
	fmt.Fprintf(w, `<text x="%d" y="%d" fill="#555">%s</text>`+"\n", x0+padL, y0+34, p.unit)
	for t := 0; t <= 4; t++ {
		v := maxY * float64(t) / 4
		fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", px(0), py(v), px(maxX), py(v))
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="end" fill="#555">%s</text>`+"\n", px(0)-4, py(v)+4, tick(v))
	}
	fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333"/>`+"\n", px(0), py(0), px(maxX), py(0))
	for _, pt := range points {
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#555">%s</text>`+"\n", px(float64(pt.pods)), py(0)+16, short(pt.pods))
	}
	fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#555">pods</text>`+"\n", px(maxX/2), py(0)+34)
	if len(p.lines) == 1 && len(points) > 0 {
		if v, ok := points[0].figures[p.lines[0].metric]; ok {
			y := py(1.5 * v * p.lines[0].scale)
			fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#999" stroke-dasharray="4 3"/>`+"\n", px(0), y, px(maxX), y)
			fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="end" fill="#999">1.5 × at %s</text>`+"\n", px(maxX), y-4, short(points[0].pods))
		}
	}
	for i, s := range p.lines {
		colour := colours[i%len(colours)]
		var pts []string
		for _, pt := range points {
			v, ok := pt.figures[s.metric]
			if !ok {
				continue
			}
			x, y := px(float64(pt.pods)), py(v*s.scale)
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
			fmt.Fprintf(w, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s: %s</title></circle>`+"\n", x, y, colour, short(pt.pods), tick(v*s.scale))
		}
		if len(pts) > 1 {
			fmt.Fprintf(w, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.Join(pts, " "), colour)
		}
		if s.label != "" {
			ly := y0 + padT + 4 + 14*i
			fmt.Fprintf(w, `<rect x="%.1f" y="%d" width="10" height="3" fill="%s"/><text x="%.1f" y="%d" fill="%s">%s</text>`+"\n",
				px(0)+8, ly, colour, px(0)+22, ly+5, colour, s.label)
		}
	}
	fmt.Fprintln(w, "</g>")
}

func tick(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

func main() {
	out := flag.String("o", "docs/scale-curve.svg", "the SVG to write")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: plotcurve [-o FILE.svg] [BENCH-OUTPUT...]  (default input bin/bench.out)\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	inputs := flag.Args()
	if len(inputs) == 0 {
		inputs = []string{"bin/bench.out"}
	}
	var readers []io.Reader
	for _, name := range inputs {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintln(os.Stderr, "plotcurve:", err)
			os.Exit(1)
		}
		defer f.Close()
		readers = append(readers, f)
	}
	points, err := parse(io.MultiReader(readers...))
	if err != nil {
		fmt.Fprintln(os.Stderr, "plotcurve:", err)
		os.Exit(1)
	}
	if len(points) == 0 {
		fmt.Fprintf(os.Stderr, "plotcurve: no scale_<R>r_<N>n figures in %s\n", strings.Join(inputs, ", "))
		os.Exit(1)
	}
	f, err := os.Create(*out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "plotcurve:", err)
		os.Exit(1)
	}
	plot(f, points)
	if err := f.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "plotcurve:", err)
		os.Exit(1)
	}
}

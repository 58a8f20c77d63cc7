package main

import (
	"bytes"
	"strings"
	"testing"
)

// A bench.out as `make bench` writes it: the scale points among other figures and the
// test runner's own lines, one point run twice.
const benchOut = `goos: linux
BENCH e2e_deploy_1000r_100n 0.81 s
BenchmarkScale50000r2500n-2   	       1	61000000000 ns/op
BENCH scale_50000r_2500n 61 s
BENCH scale_50000r_2500n_s_per_1k_pods 1.22 s
BENCH scale_50000r_2500n_rss_per_pod_apiserver 40960 bytes
BENCH scale_10000r_1000n_s_per_1k_pods 1.5 s
BENCH scale_10000r_1000n_rss_per_pod_kubelets 2048 bytes
BENCH scale_10000r_1000n_s_per_1k_pods 1.1 s
BENCH e2e_deploy_150000r_5000n 140 s
BENCH scale_150000r_5000n_raft_entries_per_pod 3.5 entries
ok  	github.com/skiffhq/skiff/test/e2e	200.1s
`

func TestParse(t *testing.T) {
	points, err := parse(strings.NewReader(benchOut))
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, p := range points {
		got = append(got, p.pods)
	}
	if len(got) != 3 || got[0] != 10000 || got[1] != 50000 || got[2] != 150000 {
		t.Fatalf("points by pods: %v, want [10000 50000 150000]", got)
	}
	for _, tc := range []struct {
		point  int
		metric string
		want   float64
	}{
		{0, "s_per_1k_pods", 1.1}, // the last of two runs
		{0, "rss_per_pod_kubelets", 2048},
		{1, "s_per_1k_pods", 1.22},
		{1, "rss_per_pod_apiserver", 40960},
		{2, "raft_entries_per_pod", 3.5},
	} {
		if v, ok := points[tc.point].figures[tc.metric]; !ok || v != tc.want {
			t.Errorf("%d pods %s = %v (present %v), want %v", points[tc.point].pods, tc.metric, v, ok, tc.want)
		}
	}
	if points[2].nodes != 5000 || points[0].nodes != 1000 {
		t.Errorf("nodes: %d, %d; want 1000, 5000", points[0].nodes, points[2].nodes)
	}
	if _, ok := points[1].figures[""]; ok {
		t.Error("the total time (no metric suffix) was taken as a metric")
	}
}

func TestParseBadValue(t *testing.T) {
	if _, err := parse(strings.NewReader("BENCH scale_10000r_1000n_s_per_1k_pods x s\n")); err == nil {
		t.Error("a value that is not a number was accepted")
	}
}

func TestPlot(t *testing.T) {
	points, err := parse(strings.NewReader(benchOut))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	plot(&b, points)
	svg := b.String()
	for _, want := range []string{"<svg", "</svg>", "s per 1,000 pods", "150k", "<polyline", "1.5 × at 10k"} {
		if !strings.Contains(svg, want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
}

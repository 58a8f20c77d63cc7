package jepsen

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The checkers are only worth their silence if they speak up: these feed them small
// histories with known anomalies (and their benign look-alikes) and no cluster.

func TestRegisterCheckerFindsAnomalies(t *testing.T) {
	const k = "reg-0000"
	w := func(v int64, call, ret int64, out, reason string) regOp {
		return regOp{Key: k, Kind: "write", Value: v, Outcome: out, Reason: reason, Call: call, Return: ret}
	}
	c := func(v int64, call, ret int64) regOp {
		return regOp{Key: k, Kind: "create", Value: v, Outcome: outOK, Call: call, Return: ret}
	}
	r := func(v int64, call, ret int64) regOp {
		return regOp{Key: k, Kind: "read", Value: v, Outcome: outOK, Call: call, Return: ret}
	}
	cas := func(from, v int64, call, ret int64, out, reason string) regOp {
		return regOp{Key: k, Kind: "cas", From: from, Value: v, Outcome: out, Reason: reason, Call: call, Return: ret}
	}
	for _, tc := range []struct {
		name    string
		history []regOp
		illegal bool
	}{
		{"sequential", []regOp{r(absent, 0, 1), c(1, 2, 3), w(2, 4, 5, outOK, ""), r(2, 6, 7)}, false},
		{"stale read", []regOp{c(1, 0, 1), w(2, 2, 3, outOK, ""), r(1, 4, 5)}, true},
		{"lost write", []regOp{c(1, 0, 1), w(2, 2, 3, outOK, ""), r(absent, 4, 5)}, true},
		{"read of a failed write", []regOp{c(1, 0, 1), w(2, 2, 3, outFail, "refused"), r(2, 4, 5)}, true},
		{"unknown write seen", []regOp{c(1, 0, 1), w(2, 2, 3, outUnknown, ""), r(2, 40, 50)}, false},
		{"unknown write not seen", []regOp{c(1, 0, 1), w(2, 2, 3, outUnknown, ""), r(1, 40, 50)}, false},
		{"concurrent reads", []regOp{c(1, 0, 1), w(2, 2, 10, outOK, ""), r(2, 3, 4), r(1, 3, 5)}, false},
		{"cas applied twice", []regOp{c(1, 0, 1), cas(1, 2, 2, 3, outOK, ""), cas(1, 3, 4, 5, outOK, "")}, true},
		{"cas conflict on a match", []regOp{c(1, 0, 1), cas(1, 2, 2, 3, outFail, "conflict")}, true},
		{"double create", []regOp{c(1, 0, 1), c(2, 2, 3)}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wl := &registerWorkload{clock: func() int64 { return 1000 }, history: tc.history}
			res, anomalies := wl.check(t.TempDir(), 0)
			if got := len(res.Illegal) > 0; got != tc.illegal {
				t.Fatalf("illegal = %v, want %v (anomalies %+v)", got, tc.illegal, anomalies)
			}
			if tc.illegal && (len(anomalies) != 1 || len(res.Visualization) != 1) {
				t.Fatalf("want one anomaly with a visualisation, got %+v %v", anomalies, res.Visualization)
			}
		})
	}
}

func TestSetCheckerFindsAnomalies(t *testing.T) {
	cm := func(name, id string) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"id": id}}
	}
	w := &setWorkload{history: []setOp{
		{ID: "1-0", Name: "set-1-0", Outcome: outOK},     // present
		{ID: "1-1", Name: "set-1-1", Outcome: outOK},     // lost
		{ID: "1-2", Outcome: outUnknown},                 // present twice
		{ID: "1-3", Outcome: outFail, Err: "refused"},    // present anyway
		{ID: "1-4", Outcome: outUnknown},                 // absent: fine
		{ID: "1-5", Name: "gen-1-abcde", Outcome: outOK}, // another object holds its id
	}}
	_, anomalies := w.check([]*corev1.ConfigMap{
		cm("set-1-0", "1-0"), cm("gen-1-a", "1-2"), cm("gen-1-b", "1-2"), cm("gen-1-c", "1-3"), cm("gen-1-d", "1-5"), cm("gen-1-e", "9-9"),
	})
	var kinds []string
	for _, a := range anomalies {
		kinds = append(kinds, a.Kind)
	}
	if got, want := strings.Join(kinds, ","), "lost-write,duplicate,failed-write-present,wrong-object,stray"; got != want {
		t.Fatalf("anomalies %s, want %s: %+v", got, want, anomalies)
	}
}

func TestWatchCheckerFindsAnomalies(t *testing.T) {
	e := func(rev int64, name string) wev { return wev{Rev: rev, Type: "MODIFIED", Name: name, Val: "x"} }
	full := []wev{e(11, "a"), e(12, "b"), e(12, "c"), e(13, "a"), e(14, "d")}
	ref, as := buildReference(map[string][]wev{"n1": full, "n2": full[1:]}, map[string]int64{"n1": 10, "n2": 11}, 14)
	if len(as) != 0 {
		t.Fatalf("identical histories disagree: %+v", as)
	}
	if _, as := buildReference(map[string][]wev{"n1": full, "n2": {e(11, "a"), e(12, "b"), e(13, "a"), e(14, "d")}}, map[string]int64{"n1": 10, "n2": 10}, 14); len(as) == 0 {
		t.Fatal("nodes that disagree on revision 12 were not reported")
	}
	batch := func(evs ...wev) watchBatch { return watchBatch{Node: "n1", Events: evs} }
	bookmark := func(rev int64) watchBatch { return watchBatch{Node: "n1", Bookmark: rev} }
	// on moves a batch to stream i (on node n2); streams lists where each stream started.
	on := func(i int, b watchBatch) watchBatch { b.Stream, b.Node = i, "n2"; return b }
	for _, tc := range []struct {
		name    string
		batches []watchBatch
		gaps    [][2]int64
		streams []watchStream
		noBookm bool // the watcher did not ask for bookmarks
		want    string
	}{
		{"complete", []watchBatch{batch(full[0]), batch(full[1], full[2], full[3]), batch(full[4])}, nil, nil, false, ""},
		{"complete up to where it got", []watchBatch{batch(full[0], full[1], full[2])}, nil, nil, false, ""},
		{"gap", []watchBatch{batch(full[0]), batch(full[3], full[4])}, nil, nil, false, "gap"},
		{"gap after a compaction", []watchBatch{batch(full[0]), batch(full[3], full[4])}, [][2]int64{{11, 12}}, nil, false, ""},
		{"duplicate on resume", []watchBatch{batch(full[0], full[1], full[2]), batch(full[1], full[2], full[3])}, nil, nil, false, "out-of-order,duplicate,duplicate,wrong-events"},
		{"revision split", []watchBatch{batch(full[0], full[1]), batch(full[2], full[3])}, nil, nil, false, "not-atomic,out-of-order,not-atomic"},
		{"reordered", []watchBatch{batch(full[0], full[3], full[1], full[2])}, nil, nil, false, "out-of-order"},
		{"wrong value", []watchBatch{batch(wev{Rev: 11, Type: "MODIFIED", Name: "a", Val: "y"})}, nil, nil, false, "wrong-events"},
		// Bookmarkable.
		{"bookmarks", []watchBatch{batch(full[0]), bookmark(11), batch(full[1], full[2]), bookmark(12), bookmark(12), batch(full[3]), batch(full[4]), bookmark(15)}, nil, nil, false, ""},
		{"bookmark ahead of an event", []watchBatch{batch(full[0]), bookmark(12), batch(full[1], full[2], full[3])}, nil, nil, false, "bookmark-ahead,event-after-bookmark,event-after-bookmark"},
		{"bookmark ahead at the end", []watchBatch{batch(full[0]), bookmark(14)}, nil, nil, false, "bookmark-ahead"},
		{"bookmark ahead over a compaction", []watchBatch{batch(full[0]), bookmark(13), batch(full[4])}, [][2]int64{{11, 13}}, nil, false, ""},
		{"bookmark behind", []watchBatch{batch(full[0], full[1], full[2]), bookmark(11)}, nil, nil, false, "bookmark-behind"},
		{"bookmark not asked for", []watchBatch{batch(full[0]), bookmark(11)}, nil, nil, true, "unrequested-bookmark"},
		// Resumable: from a bookmark's revision, on another node.
		{"resumed from a bookmark", []watchBatch{batch(full[0], full[1], full[2]), bookmark(12), on(1, batch(full[3], full[4]))},
			nil, []watchStream{{Node: "n1", From: 10}, {Node: "n2", From: 12, FromBookmark: true}}, false, ""},
		{"resumed from a bookmark, an event lost", []watchBatch{batch(full[0], full[1], full[2]), bookmark(13), on(1, batch(full[4]))},
			nil, []watchStream{{Node: "n1", From: 10}, {Node: "n2", From: 13, FromBookmark: true}}, false, "bookmark-ahead,gap"},
		{"resumed, an event before the resume point", []watchBatch{batch(full[0]), bookmark(13), on(1, batch(full[1], full[2]))},
			nil, []watchStream{{Node: "n1", From: 10}, {Node: "n2", From: 13, FromBookmark: true}}, false, "bookmark-ahead,out-of-order,gap"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, as := checkWatcher(&watchRecord{Batches: tc.batches, Gaps: tc.gaps, Streams: tc.streams, Bookmarks: !tc.noBookm}, 10, ref)
			var kinds []string
			for _, a := range as {
				kinds = append(kinds, a.Kind)
			}
			if got := strings.Join(kinds, ","); got != tc.want {
				t.Fatalf("anomalies %q, want %q: %+v", got, tc.want, as)
			}
		})
	}
	// Resumable from any revision: a watch from 11 returns exactly what follows it.
	if as := checkResumed("n2", 11, full[1:], ref); len(as) != 0 {
		t.Fatalf("a faithful resume from 11: %+v", as)
	}
	for name, evs := range map[string][]wev{"one lost": {full[1], full[2], full[4]}, "one extra": full, "none": nil} {
		if as := checkResumed("n2", 11, evs, ref); len(as) != 1 || as[0].Kind != "not-resumable" {
			t.Fatalf("resume from 11, %s: got %+v", name, as)
		}
	}
	if as := checkAcknowledged([]ackedWrite{{Name: "b", Value: "x", Rev: 12}, {Name: "e", Value: "x", Rev: 14}}, ref); len(as) != 1 {
		t.Fatalf("acknowledged write missing from the history: got %+v", as)
	}
}

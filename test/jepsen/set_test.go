package jepsen

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
)

// The set workload: unique creates through the client library, failing over between
// nodes as a component would. Half name their object (the client retries those after a
// lost reply, and reports a possibly-own AlreadyExists as IsRetriedCreate); half use
// generateName (never retried after a lost reply: the outcome is unknown). Each carries a
// unique data["id"]. At the end every acknowledged id must be present, and no id may
// appear twice (a generateName create applied twice would).

type setOp struct {
	Worker  int    `json:"worker"`
	ID      string `json:"id"`
	Named   bool   `json:"named"`
	Name    string `json:"name,omitempty"`
	RV      string `json:"rv,omitempty"`
	Outcome string `json:"outcome"`
	Err     string `json:"err,omitempty"`
	Call    int64  `json:"call"`
	Return  int64  `json:"return"`
}

type setWorkload struct {
	c       *cluster
	ns      string
	clock   func() int64
	timeout time.Duration
	onWrite func(t int64)

	mu      sync.Mutex
	history []setOp
}

func (w *setWorkload) run(ctx context.Context, id int) {
	for i := 0; ctx.Err() == nil; i++ {
		op := setOp{Worker: id, ID: fmt.Sprintf("%d-%d", id, i), Named: i%2 == 0, Call: w.clock()}
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: w.ns}, Data: map[string]string{"id": op.ID}}
		if op.Named {
			cm.Name = "set-" + op.ID
		} else {
			cm.GenerateName = "gen-" + strconv.Itoa(id) + "-"
		}
		cctx, cancel := context.WithTimeout(ctx, w.timeout)
		out, err := client.For[*corev1.ConfigMap](w.c.failover()).Create(cctx, cm)
		cancel()
		op.Return = w.clock()
		switch {
		case err == nil:
			op.Outcome, op.Name, op.RV = outOK, out.Name, out.ResourceVersion
		case client.IsInvalid(err), client.IsNotFound(err):
			// NotFound: the node did not see the namespace yet (its check is stale).
			op.Outcome = outFail
		case !op.Named && client.IsUnavailable(err) && !client.IsUnknownOutcome(err) && isRefusal(err):
			// A generateName create is repeated only after refusals: this one never ran.
			op.Outcome = outFail
		default:
			op.Outcome = outUnknown
		}
		if err != nil {
			op.Err = err.Error()
		}
		w.mu.Lock()
		w.history = append(w.history, op)
		w.mu.Unlock()
		if op.Outcome == outOK && w.onWrite != nil {
			w.onWrite(op.Return)
		}
		if op.Outcome != outOK {
			// Do not spin through a fault: a failed call comes back at once.
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
}

// isRefusal: Skiff's own Unavailable, which carries its ErrorInfo.
func isRefusal(err error) bool {
	_, reason := classify(err)
	return reason == "refused"
}

type setResult struct {
	Attempts     int `json:"attempts"`
	Acknowledged int `json:"acknowledged"`
	Unknown      int `json:"unknown"`
	Failed       int `json:"failed"`
	// UnknownPresent: creates of unknown outcome that did happen.
	UnknownPresent int `json:"unknownPresent"`
	Final          int `json:"finalObjects"`
}

// check compares the history with the final set of objects (items read by a
// linearizable list after the cluster healed).
func (w *setWorkload) check(items []*corev1.ConfigMap) (setResult, []anomaly) {
	w.mu.Lock()
	hist := append([]setOp(nil), w.history...)
	w.mu.Unlock()
	byID := map[string][]*corev1.ConfigMap{}
	for _, cm := range items {
		if id, ok := cm.Data["id"]; ok {
			byID[id] = append(byID[id], cm)
		}
	}
	res := setResult{Attempts: len(hist), Final: len(byID)}
	var anomalies []anomaly
	seen := map[string]bool{}
	for _, op := range hist {
		seen[op.ID] = true
		got := byID[op.ID]
		switch op.Outcome {
		case outOK:
			res.Acknowledged++
			if len(got) == 0 {
				anomalies = append(anomalies, anomaly{Checker: "set", Kind: "lost-write",
					Detail: fmt.Sprintf("acknowledged create of id %s (%s at rv %s) is missing at the end", op.ID, op.Name, op.RV), SetOps: []setOp{op}})
			} else if got[0].Name != op.Name {
				anomalies = append(anomalies, anomaly{Checker: "set", Kind: "wrong-object",
					Detail: fmt.Sprintf("create of id %s was acknowledged as %s but the object is %s", op.ID, op.Name, got[0].Name), SetOps: []setOp{op}})
			}
		case outUnknown:
			res.Unknown++
			if len(got) > 0 {
				res.UnknownPresent++
			}
		case outFail:
			res.Failed++
			if len(got) > 0 {
				anomalies = append(anomalies, anomaly{Checker: "set", Kind: "failed-write-present",
					Detail: fmt.Sprintf("create of id %s failed definitely (%s) yet %s exists", op.ID, op.Err, got[0].Name), SetOps: []setOp{op}})
			}
		}
		if len(got) > 1 {
			var names []string
			for _, cm := range got {
				names = append(names, cm.Name)
			}
			anomalies = append(anomalies, anomaly{Checker: "set", Kind: "duplicate",
				Detail: fmt.Sprintf("create of id %s (%s) exists %d times: %s", op.ID, op.Outcome, len(got), strings.Join(names, ", ")), SetOps: []setOp{op}})
		}
	}
	var strays []string
	for id := range byID {
		if !seen[id] {
			strays = append(strays, id)
		}
	}
	sort.Strings(strays)
	if len(strays) > 0 {
		anomalies = append(anomalies, anomaly{Checker: "set", Kind: "stray",
			Detail: fmt.Sprintf("objects with ids nobody created: %s", strings.Join(strays, ", "))})
	}
	return res, anomalies
}

func (w *setWorkload) acknowledged() []ackedWrite {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []ackedWrite
	for _, op := range w.history {
		if op.Outcome == outOK {
			rev, _ := strconv.ParseInt(op.RV, 10, 64)
			out = append(out, ackedWrite{Name: op.Name, Value: op.ID, Rev: rev, What: "create"})
		}
	}
	return out
}

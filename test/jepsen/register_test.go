package jepsen

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anishathalye/porcupine"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/kinds"
	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
)

// The register workload: each key is a ConfigMap whose data["v"] holds an integer. Every
// value written is unique (worker id and a counter), so a value names the write that made
// it and a compare-and-swap on resourceVersion is a compare-and-swap on the value. Keys
// start absent; a worker that reads "absent" creates the key. Workers move to a fresh key
// every opsPerKey operations, which keeps each key's history small enough for porcupine.
//
// Calls go through raw gRPC, one attempt each, to a random running node (followers
// included), so the recorded outcome is exactly what the server said: ok, fail (a
// definite refusal: conflict, not found, already exists, no leader), or unknown (the
// reply was lost, timed out, or the server said the outcome is unknown).

const absent = -1

// Outcomes.
const (
	outOK      = "ok"
	outFail    = "fail"
	outUnknown = "unknown"
)

// regOp is one register operation as recorded.
type regOp struct {
	Worker  int    `json:"worker"`
	Node    string `json:"node"`
	Key     string `json:"key"`
	Kind    string `json:"kind"` // read, write, cas, create
	From    int64  `json:"from,omitempty"`
	Value   int64  `json:"value"` // written value, or the value read (-1: absent)
	RV      string `json:"rv,omitempty"`
	Outcome string `json:"outcome"`
	Reason  string `json:"reason,omitempty"` // for fail: notfound, exists, conflict, refused
	Err     string `json:"err,omitempty"`
	Call    int64  `json:"call"` // ns since the run started
	Return  int64  `json:"return"`
}

type registerWorkload struct {
	c         *cluster
	ns        string
	clock     func() int64
	opsPerKey int64
	timeout   time.Duration
	onWrite   func(t int64) // a write succeeded, at t

	ops      atomic.Int64
	failures atomic.Int64 // unknown and refused outcomes, for workers to back off
	mu       sync.Mutex
	history  []regOp
}

func (w *registerWorkload) key() string {
	return fmt.Sprintf("reg-%04d", w.ops.Add(1)/w.opsPerKey)
}

func (w *registerWorkload) record(op regOp) {
	w.mu.Lock()
	w.history = append(w.history, op)
	w.mu.Unlock()
	if op.Outcome == outUnknown || op.Reason == "refused" {
		w.failures.Add(1)
	}
	if op.Outcome == outOK && op.Kind != "read" && w.onWrite != nil {
		w.onWrite(op.Return)
	}
}

// run drives one worker until ctx ends.
func (w *registerWorkload) run(ctx context.Context, id int) {
	r := rand.New(rand.NewPCG(uint64(id), uint64(time.Now().UnixNano())))
	seq, backoff := int64(0), false
	next := func() int64 { seq++; return int64(id)<<32 | seq }
	for ctx.Err() == nil {
		if backoff {
			// Do not spin through a fault: a failed call comes back at once.
			select {
			case <-ctx.Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
		key := w.key()
		before := w.failures.Load()
		switch p := r.IntN(4); {
		case p < 2:
			w.read(ctx, r, id, key)
		case p == 2:
			w.write(ctx, r, id, key, next())
		default:
			// CAS from what a read just saw; create when it saw nothing.
			op := w.read(ctx, r, id, key)
			if op.Outcome != outOK {
				continue
			}
			if op.Value == absent {
				w.create(ctx, r, id, key, next())
			} else {
				w.cas(ctx, r, id, key, op.Value, op.RV, next())
			}
		}
		backoff = w.failures.Load() != before
	}
}

func (w *registerWorkload) begin(r *rand.Rand, id int, key, kind string) (regOp, apiv1.ResourcesClient) {
	name := w.c.randomRunning(r)
	return regOp{Worker: id, Node: name, Key: key, Kind: kind, Call: w.clock()}, apiv1.NewResourcesClient(w.c.grpcConn(name))
}

func (w *registerWorkload) read(ctx context.Context, r *rand.Rand, id int, key string) regOp {
	op, rc := w.begin(r, id, key, "read")
	cctx, cancel := context.WithTimeout(ctx, w.timeout)
	o, err := rc.Get(cctx, &apiv1.GetRequest{Kind: kinds.ConfigMap, Namespace: w.ns, Name: key})
	cancel()
	op.Return = w.clock()
	switch {
	case err == nil:
		op.Outcome = outOK
		if err = decodeValue(o, &op); err != nil {
			op.Outcome, op.Err = outUnknown, err.Error()
		}
	case status.Code(err) == codes.NotFound:
		op.Outcome, op.Value = outOK, absent
	default:
		op.Outcome, op.Err = outUnknown, err.Error() // a failed read tells nothing
	}
	if ctx.Err() == nil || op.Outcome == outOK {
		w.record(op)
	}
	return op
}

func (w *registerWorkload) write(ctx context.Context, r *rand.Rand, id int, key string, v int64) {
	op, rc := w.begin(r, id, key, "write")
	op.Value = v
	cctx, cancel := context.WithTimeout(ctx, w.timeout)
	o, err := rc.Update(cctx, &apiv1.UpdateRequest{Object: configMap(w.ns, key, v, "")})
	cancel()
	w.finish(op, o, err)
}

func (w *registerWorkload) cas(ctx context.Context, r *rand.Rand, id int, key string, from int64, rv string, v int64) {
	op, rc := w.begin(r, id, key, "cas")
	op.From, op.Value = from, v
	cctx, cancel := context.WithTimeout(ctx, w.timeout)
	o, err := rc.Update(cctx, &apiv1.UpdateRequest{Object: configMap(w.ns, key, v, rv)})
	cancel()
	w.finish(op, o, err)
}

func (w *registerWorkload) create(ctx context.Context, r *rand.Rand, id int, key string, v int64) {
	op, rc := w.begin(r, id, key, "create")
	op.Value = v
	cctx, cancel := context.WithTimeout(ctx, w.timeout)
	o, err := rc.Create(cctx, &apiv1.CreateRequest{Object: configMap(w.ns, key, v, "")})
	cancel()
	w.finish(op, o, err)
}

// finish classifies a write's reply and records it. An interrupted write is recorded as
// unknown even when the run is ending: it may have happened.
func (w *registerWorkload) finish(op regOp, o *apiv1.Object, err error) {
	op.Return = w.clock()
	op.Outcome, op.Reason = classify(err)
	if err != nil {
		op.Err = err.Error()
	} else {
		var got regOp
		if derr := decodeValue(o, &got); derr != nil || got.Value != op.Value {
			op.Outcome, op.Err = outUnknown, fmt.Sprintf("reply carries value %d (%v)", got.Value, derr)
		}
		op.RV = got.RV
	}
	w.record(op)
}

// classify says what a single-attempt write's error means.
func classify(err error) (outcome, reason string) {
	switch status.Code(err) {
	case codes.OK:
		return outOK, ""
	case codes.NotFound:
		return outFail, "notfound"
	case codes.AlreadyExists:
		return outFail, "exists"
	case codes.Aborted:
		return outFail, "conflict"
	case codes.InvalidArgument, codes.FailedPrecondition:
		return outFail, "invalid"
	case codes.Unavailable:
		// Skiff's own refusal (no leader) carries its ErrorInfo: nothing was written.
		// A transport failure does not: the request may have been applied.
		if s, ok := status.FromError(err); ok {
			for _, d := range s.Details() {
				if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == "skiff.dev" {
					return outFail, "refused"
				}
			}
		}
	}
	return outUnknown, ""
}

// configMap is the register's ConfigMap in the API's envelope.
func configMap(ns, name string, v int64, rv string) *apiv1.Object {
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, ResourceVersion: rv},
		Data:       map[string]string{"v": strconv.FormatInt(v, 10)},
	}
	o, err := kinds.Wrap(cm)
	if err != nil {
		panic(err) // a ConfigMap of two strings always encodes
	}
	return o
}

// decodeValue reads data["v"] and the resourceVersion of a ConfigMap reply into op.
func decodeValue(o *apiv1.Object, op *regOp) error {
	obj, err := kinds.Unwrap(o)
	if err != nil {
		return err
	}
	cm, ok := obj.(*corev1.ConfigMap)
	if !ok {
		return fmt.Errorf("got a %T", obj)
	}
	v, err := strconv.ParseInt(cm.Data["v"], 10, 64)
	if err != nil {
		return fmt.Errorf("configmap %s: data.v: %w", cm.Name, err)
	}
	op.Value, op.RV = v, cm.ResourceVersion
	return nil
}

// registerModel is the sequential specification of one key. State: the value, or absent.
// An unknown write may have happened or not; it is given an infinite completion time, so
// porcupine may place it at the very end (where it changes nothing anyone saw), and
// applying it whenever its precondition holds is then enough.
var registerModel = porcupine.Model{
	Init: func() any { return int64(absent) },
	Step: func(state, input, output any) (bool, any) {
		s, op := state.(int64), input.(regOp)
		if op.Reason == "refused" {
			return true, s // the server said it did nothing
		}
		switch op.Kind {
		case "read":
			return op.Value == s, s
		case "create":
			switch op.Outcome {
			case outOK:
				return s == absent, op.Value
			case outFail:
				if op.Reason == "notfound" {
					// The namespace was not found: the server checks it against its own,
					// possibly lagging, state (apiserver checkNamespace) and wrote nothing.
					return true, s
				}
				return s != absent, s
			}
			if s == absent {
				return true, op.Value
			}
			return true, s
		case "write":
			switch op.Outcome {
			case outOK:
				return s != absent, op.Value
			case outFail:
				if op.Reason == "conflict" {
					// An unconditional update lost its read-modify-write race too often:
					// nothing was written, but the object existed.
					return s != absent, s
				}
				return s == absent, s
			}
			if s != absent {
				return true, op.Value
			}
			return true, s
		case "cas":
			switch {
			case op.Outcome == outOK:
				return s == op.From, op.Value
			case op.Reason == "notfound":
				return s == absent, s
			case op.Reason == "conflict":
				return s != absent && s != op.From, s
			case op.Outcome == outFail:
				return false, s
			}
			if s == op.From {
				return true, op.Value
			}
			return true, s
		}
		return false, s
	},
	DescribeOperation: func(input, output any) string {
		op := input.(regOp)
		out := op.Outcome
		if op.Reason != "" {
			out += " " + op.Reason
		}
		switch op.Kind {
		case "read":
			return fmt.Sprintf("%s@%s read → %s", op.Key, op.Node, valueString(op.Value))
		case "cas":
			return fmt.Sprintf("%s@%s cas %s→%s: %s", op.Key, op.Node, valueString(op.From), valueString(op.Value), out)
		}
		return fmt.Sprintf("%s@%s %s %s: %s", op.Key, op.Node, op.Kind, valueString(op.Value), out)
	},
	DescribeState: func(state any) string { return valueString(state.(int64)) },
}

func valueString(v int64) string {
	if v == absent {
		return "absent"
	}
	return fmt.Sprintf("%d.%d", v>>32, v&0xffffffff)
}

// registerResult is what the linearizability check found.
type registerResult struct {
	Keys    int `json:"keys"`
	Ops     int `json:"ops"`
	Unknown int `json:"unknown"`
	Refused int `json:"refused"`
	// NamespaceNotFound counts creates refused because the node did not see the run's
	// namespace yet (a stale check by design, reported as an observation).
	NamespaceNotFound int      `json:"namespaceNotFound"`
	Illegal           []string `json:"illegal,omitempty"`
	TimedOut          []string `json:"timedOut,omitempty"`
	Visualization     []string `json:"visualization,omitempty"`
}

// check runs porcupine on each key's history; on a violation it writes the key's HTML
// visualisation into dir and returns the key's operations as the anomaly's evidence.
func (w *registerWorkload) check(dir string, timeout time.Duration) (registerResult, []anomaly) {
	w.mu.Lock()
	hist := append([]regOp(nil), w.history...)
	w.mu.Unlock()
	end := w.clock() + 1
	byKey := map[string][]porcupine.Operation{}
	var res registerResult
	for _, op := range hist {
		if op.Kind == "read" && op.Outcome != outOK {
			continue // a read that failed constrains nothing
		}
		if op.Reason == "refused" {
			res.Refused++
		}
		if op.Kind == "create" && op.Reason == "notfound" {
			res.NamespaceNotFound++
		}
		ret := op.Return
		if op.Outcome == outUnknown {
			res.Unknown++
			ret = end
		}
		res.Ops++
		byKey[op.Key] = append(byKey[op.Key], porcupine.Operation{ClientId: op.Worker, Input: op, Call: op.Call, Output: nil, Return: ret})
	}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	res.Keys = len(keys)
	var anomalies []anomaly
	for _, k := range keys {
		ops := byKey[k]
		r, info := porcupine.CheckOperationsVerbose(registerModel, ops, timeout)
		switch r {
		case porcupine.Illegal:
			res.Illegal = append(res.Illegal, k)
			path := filepath.Join(dir, "register-"+k+".html")
			if err := porcupine.VisualizePath(registerModel, info, path); err == nil {
				res.Visualization = append(res.Visualization, path)
			}
			var evidence []regOp
			for _, o := range ops {
				evidence = append(evidence, o.Input.(regOp))
			}
			anomalies = append(anomalies, anomaly{Checker: "register", Kind: "nonlinearizable",
				Detail: fmt.Sprintf("key %s: history of %d operations is not linearizable (see %s)", k, len(ops), path), Ops: evidence})
		case porcupine.Unknown:
			res.TimedOut = append(res.TimedOut, k)
		}
	}
	return res, anomalies
}

// acknowledged lists the register's acknowledged writes: name, value and revision, for
// the watch checker to find in the history.
func (w *registerWorkload) acknowledged() []ackedWrite {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []ackedWrite
	for _, op := range w.history {
		if op.Kind != "read" && op.Outcome == outOK {
			rev, _ := strconv.ParseInt(op.RV, 10, 64)
			out = append(out, ackedWrite{Name: op.Key, Value: strconv.FormatInt(op.Value, 10), Rev: rev, What: op.Kind})
		}
	}
	return out
}

// ackedWrite is a write a client saw succeed, at revision Rev.
type ackedWrite struct {
	Name, Value string
	Rev         int64
	What        string
}

package apiserver

import (
	"context"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/skiffhq/skiff/apiserver/flowcontrol"
	"github.com/skiffhq/skiff/store"
)

// metrics is one server's Prometheus registry: requests by method and code, their
// latency, open watches by kind, and the store's Raft state read at scrape time.
type metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	watches  *prometheus.GaugeVec
	// reencrypted counts stored values rewritten under the primary encryption key;
	// unreadable is how many the last pass over them could not read.
	reencrypted prometheus.Counter
	unreadable  prometheus.Gauge
	// eventsRefused counts the Events the event rate limit refused, by limit type.
	eventsRefused *prometheus.CounterVec
}

func newMetrics(s *store.Store, flows *flowcontrol.Controller) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skiff_apiserver_requests_total", Help: "API requests by method and gRPC code.",
		}, []string{"method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "skiff_apiserver_request_duration_seconds", Help: "API request latency by method (watches excluded).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"method"}),
		watches: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "skiff_apiserver_watches", Help: "Open watches by kind.",
		}, []string{"kind"}),
	}
	m.reencrypted = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "skiff_apiserver_secrets_reencrypted_total", Help: "Secrets this member, as leader, re-encrypted with the primary key.",
	})
	m.unreadable = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "skiff_apiserver_secrets_unreadable", Help: "Secrets the last re-encryption pass could not read (a key missing from this member's key file).",
	})
	m.eventsRefused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "skiff_apiserver_events_refused_total", Help: "Event writes this member refused as over the event rate limit, by limit type (Node, Namespace).",
	}, []string{"limit_type"})
	m.registry.MustRegister(m.requests, m.latency, m.watches, m.reencrypted, m.unreadable, m.eventsRefused, &storeCollector{s: s},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if flows != nil {
		m.registry.MustRegister(&flowCollector{flows: flows})
	}
	return m
}

func (m *metrics) eventRefused(limitType string) { m.eventsRefused.WithLabelValues(limitType).Inc() }

func (m *metrics) watchDelta(kind string, delta int) {
	m.watches.WithLabelValues(kind).Add(float64(delta))
}

// unary and stream interceptors count, time and (at debug level) log every request.
func (m *metrics) unary(log hclog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		m.observe(ctx, log, info.FullMethod, start, err, true)
		return resp, err
	}
}

func (m *metrics) stream(log hclog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		start := time.Now()
		err := handler(srv, ss)
		m.observe(ss.Context(), log, info.FullMethod, start, err, false)
		return err
	}
}

func (m *metrics) observe(ctx context.Context, log hclog.Logger, method string, start time.Time, err error, timed bool) {
	code := status.Code(err)
	m.requests.WithLabelValues(method, code.String()).Inc()
	d := time.Since(start)
	if timed {
		m.latency.WithLabelValues(method).Observe(d.Seconds())
	}
	if log.IsDebug() {
		from := ""
		if p, ok := peer.FromContext(ctx); ok {
			from = p.Addr.String()
		}
		log.Debug("request", "method", method, "code", code.String(), "duration", d, "peer", from, "error", err)
	}
}

// storeCollector reports the store's Raft state at each scrape.
type storeCollector struct{ s *store.Store }

var (
	descLeader   = prometheus.NewDesc("skiff_raft_leader", "1 if this node is the Raft leader.", nil, nil)
	descHasLead  = prometheus.NewDesc("skiff_raft_has_leader", "1 if this node knows a leader.", nil, nil)
	descTerm     = prometheus.NewDesc("skiff_raft_term", "Current Raft term.", nil, nil)
	descCommit   = prometheus.NewDesc("skiff_raft_commit_index", "Raft commit index.", nil, nil)
	descApplied  = prometheus.NewDesc("skiff_raft_applied_index", "Raft index handed to the state machine.", nil, nil)
	descSnapshot = prometheus.NewDesc("skiff_raft_snapshot_index", "Index of the latest snapshot.", nil, nil)
	descMembers  = prometheus.NewDesc("skiff_raft_members", "Servers in the Raft configuration.", nil, nil)
	descRevision = prometheus.NewDesc("skiff_store_revision", "The store's applied revision.", nil, nil)
	descBarriers = prometheus.NewDesc("skiff_store_read_barriers_total", "Linearizable reads this member served, each after a read index (a heartbeat round of the leader's).", nil, nil)
	descLate     = prometheus.NewDesc("skiff_store_late_writes_total", "Writes this member did not propose because their caller had given up (its deadline passed while the write waited).", nil, nil)

	descSnapshots      = prometheus.NewDesc("skiff_store_scheduled_snapshots_total", "Scheduled snapshots this member took as leader, by result (success, failure).", []string{"result"}, nil)
	descSnapshotsInRow = prometheus.NewDesc("skiff_store_scheduled_snapshot_failures_in_a_row", "Scheduled snapshots that failed since the last that succeeded.", nil, nil)
	descSnapshotUps    = prometheus.NewDesc("skiff_store_scheduled_snapshot_uploads_total", "Scheduled snapshots this member uploaded to object storage (--snapshot-s3-bucket), by result (success, failure).", []string{"result"}, nil)
	descSnapshotLast   = prometheus.NewDesc("skiff_store_scheduled_snapshot_last_success_timestamp_seconds", "When this member last wrote a scheduled snapshot (Unix time; 0: never since it started).", nil, nil)
)

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLeader, descHasLead, descTerm, descCommit, descApplied, descSnapshot, descMembers, descRevision, descBarriers, descLate,
		descSnapshots, descSnapshotsInRow, descSnapshotUps, descSnapshotLast} {
		ch <- d
	}
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	st, _ := c.s.Status()
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	ch <- prometheus.MustNewConstMetric(descLeader, prometheus.GaugeValue, b(st.State == "Leader"))
	ch <- prometheus.MustNewConstMetric(descHasLead, prometheus.GaugeValue, b(st.LeaderID != ""))
	ch <- prometheus.MustNewConstMetric(descTerm, prometheus.GaugeValue, float64(st.Term))
	ch <- prometheus.MustNewConstMetric(descCommit, prometheus.GaugeValue, float64(st.CommitIndex))
	ch <- prometheus.MustNewConstMetric(descApplied, prometheus.GaugeValue, float64(st.AppliedIndex))
	ch <- prometheus.MustNewConstMetric(descSnapshot, prometheus.GaugeValue, float64(st.SnapshotIndex))
	ch <- prometheus.MustNewConstMetric(descMembers, prometheus.GaugeValue, float64(len(st.Members)))
	ch <- prometheus.MustNewConstMetric(descRevision, prometheus.GaugeValue, float64(st.Revision))
	ch <- prometheus.MustNewConstMetric(descBarriers, prometheus.CounterValue, float64(c.s.ReadBarriers()))
	ch <- prometheus.MustNewConstMetric(descLate, prometheus.CounterValue, float64(c.s.LateWrites()))
	bs := c.s.BackupStatus()
	ch <- prometheus.MustNewConstMetric(descSnapshots, prometheus.CounterValue, float64(bs.Succeeded), "success")
	ch <- prometheus.MustNewConstMetric(descSnapshots, prometheus.CounterValue, float64(bs.Failed), "failure")
	ch <- prometheus.MustNewConstMetric(descSnapshotsInRow, prometheus.GaugeValue, float64(bs.Consecutive))
	ch <- prometheus.MustNewConstMetric(descSnapshotUps, prometheus.CounterValue, float64(bs.Uploaded), "success")
	ch <- prometheus.MustNewConstMetric(descSnapshotUps, prometheus.CounterValue, float64(bs.UploadFailed), "failure")
	last := 0.0
	if !bs.LastSuccess.IsZero() {
		last = float64(bs.LastSuccess.UnixNano()) / 1e9
	}
	ch <- prometheus.MustNewConstMetric(descSnapshotLast, prometheus.GaugeValue, last)
}

// flowCollector reports API Priority and Fairness per priority level, under
// Kubernetes' metric names.
type flowCollector struct{ flows *flowcontrol.Controller }

var (
	descDispatched = prometheus.NewDesc("skiff_apiserver_flowcontrol_dispatched_requests_total", "Requests given a seat, by priority level.", []string{"priority_level"}, nil)
	descQueued     = prometheus.NewDesc("skiff_apiserver_flowcontrol_queued_requests_total", "Requests that waited in a queue for their seat, by priority level.", []string{"priority_level"}, nil)
	descRejected   = prometheus.NewDesc("skiff_apiserver_flowcontrol_rejected_requests_total", "Requests refused as too many, by priority level.", []string{"priority_level"}, nil)
	descExecuting  = prometheus.NewDesc("skiff_apiserver_flowcontrol_current_executing_requests", "Requests holding a seat, by priority level.", []string{"priority_level"}, nil)
	descInqueue    = prometheus.NewDesc("skiff_apiserver_flowcontrol_current_inqueue_requests", "Requests waiting for a seat, by priority level.", []string{"priority_level"}, nil)
	descLimit      = prometheus.NewDesc("skiff_apiserver_flowcontrol_nominal_limit_seats", "Seats of each priority level (0: exempt).", []string{"priority_level"}, nil)
)

func (c *flowCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDispatched, descQueued, descRejected, descExecuting, descInqueue, descLimit} {
		ch <- d
	}
}

func (c *flowCollector) Collect(ch chan<- prometheus.Metric) {
	for _, l := range c.flows.Stats() {
		ch <- prometheus.MustNewConstMetric(descDispatched, prometheus.CounterValue, float64(l.Dispatched), l.Name)
		ch <- prometheus.MustNewConstMetric(descQueued, prometheus.CounterValue, float64(l.Queued), l.Name)
		ch <- prometheus.MustNewConstMetric(descRejected, prometheus.CounterValue, float64(l.Rejected), l.Name)
		ch <- prometheus.MustNewConstMetric(descExecuting, prometheus.GaugeValue, float64(l.Executing), l.Name)
		ch <- prometheus.MustNewConstMetric(descInqueue, prometheus.GaugeValue, float64(l.Waiting), l.Name)
		ch <- prometheus.MustNewConstMetric(descLimit, prometheus.GaugeValue, float64(l.Limit), l.Name)
	}
}

// Gatherer is the member's metrics registry, what /metrics serves (tests read it).
func (s *Server) Gatherer() prometheus.Gatherer { return s.metrics.registry }

package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"orchard/db"
	"orchard/model"
)

var (
	syncDuration = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "orchard_sync_duration_seconds",
		Help:    "Duration of reconcile passes by kind and outcome.",
		Buckets: prometheus.ExponentialBuckets(0.05, 2, 14),
	}, []string{"kind", "status"})
	syncRuns = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "orchard_sync_runs_total",
		Help: "Reconcile passes by account, kind and outcome.",
	}, []string{"account", "kind", "status"})
	holds = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "orchard_account_holds_total",
		Help: "Retry-After holds put on an account (R3).",
	}, []string{"account"})
	appleRequests = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "orchard_apple_requests_total",
		Help: "Requests to Apple by endpoint, HTTP status and Apple error number.",
	}, []string{"endpoint", "status", "error_number"})
	appleDuration = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "orchard_apple_request_duration_seconds",
		Help:    "Latency of requests to Apple by endpoint.",
		Buckets: prometheus.ExponentialBuckets(0.01, 2, 12),
	}, []string{"endpoint"})
)

// ObserveApple is the Apple client's metrics hook (apple.Config.Observe).
func ObserveApple(endpoint string, status, errorNumber int, d time.Duration) {
	appleRequests.WithLabelValues(endpoint, fmt.Sprint(status), fmt.Sprint(errorNumber)).Inc()
	appleDuration.WithLabelValues(endpoint).Observe(d.Seconds())
}

var notifications = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "orchard_apple_notifications_total",
	Help: "Apple notifications received, by type (or rejected, malformed, duplicate, implausible, foreign).",
}, []string{"type"})

var (
	outboxSent = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "orchard_outbox_sent_total",
		Help: "Outbox items sent to Apple, by action.",
	}, []string{"action"})
	outboxDone = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "orchard_outbox_completed_total",
		Help: "Outbox items completed by Apple, by action and result.",
	}, []string{"action", "result"})
)

// logPass is the one INFO line of a sync pass: which account, what kind of pass and why, which
// replica ran it (its lease holder), how long it took, what it counted and how it ended (the
// error, if it failed or was held).
func logPass(log *slog.Logger, replica string, a *model.Account, run *model.SyncRun, d time.Duration) {
	attrs := []any{"account", a.ID, "account_name", a.Name, "kind", run.Kind, "trigger", run.Trigger, "replica", replica,
		"outcome", run.Status, "duration_ms", d.Milliseconds(), "pages", run.Pages, "items_seen", run.ItemsSeen,
		"added", run.Added, "changed", run.Changed, "removed", run.Removed}
	if run.Error != nil {
		attrs = append(attrs, "error", *run.Error)
	}
	level := slog.LevelInfo
	if run.Status == model.SyncRunFailed {
		level = slog.LevelWarn
	}
	log.Log(context.Background(), level, "sync pass", attrs...)
}

// The label values known in advance get their series at start, at zero, so that a
// dashboard or an alert (rate(), increase()) sees a counter before its first event.
func init() {
	for _, k := range []model.SyncKind{model.SyncFull, model.SyncIncremental} {
		for _, st := range []model.SyncRunStatus{model.SyncRunSucceeded, model.SyncRunFailed, model.SyncRunHeld} {
			syncDuration.WithLabelValues(string(k), string(st))
		}
	}
	for _, t := range []string{"rejected", "malformed", "duplicate"} {
		notifications.WithLabelValues(t)
	}
	for _, a := range outboxActions {
		outboxSent.WithLabelValues(string(a))
		for _, r := range []string{"ok", "failed"} {
			outboxDone.WithLabelValues(string(a), r)
		}
	}
}

var outboxActions = []model.OutboxAction{model.OutboxAssociate, model.OutboxDisassociate, model.OutboxRevoke,
	model.OutboxCreateUser, model.OutboxUpdateUser, model.OutboxRetireUser}

// initAccountSeries gives an account its per-account counters at zero.
func initAccountSeries(id int64) {
	acc := fmt.Sprint(id)
	for _, k := range []model.SyncKind{model.SyncFull, model.SyncIncremental} {
		for _, st := range []model.SyncRunStatus{model.SyncRunSucceeded, model.SyncRunFailed, model.SyncRunHeld} {
			syncRuns.WithLabelValues(acc, string(k), string(st))
		}
	}
	holds.WithLabelValues(acc)
}

// Gauges are read from the database when /metrics is scraped (every replica reports the same
// values: they are the installation's state, not the replica's; aggregate them with max or
// pick one instance). A scrape that cannot read them reports orchard_gauges_up 0.
var (
	gaugeAccount   = prometheus.NewDesc("orchard_account_info", "One per live account (1), with its name and country, to label the per-account series in dashboards.", []string{"account", "name", "country"}, nil)
	gaugeHeld      = prometheus.NewDesc("orchard_account_held", "1 while Apple holds the account with Retry-After (R3): nothing is sent to it until the hold ends.", []string{"account"}, nil)
	gaugeHeldUntil = prometheus.NewDesc("orchard_account_held_until_timestamp_seconds", "When the account's current Retry-After hold ends (absent when not held).", []string{"account"}, nil)
	gaugeBacklog   = prometheus.NewDesc("orchard_outbox_backlog", "Outbox items of the account not yet completed by Apple (queued or sent).", []string{"account"}, nil)
	gaugeDataAge   = prometheus.NewDesc("orchard_account_data_age_seconds", "Time since the account's last successful sync pass (since it was added, when none has succeeded yet).", []string{"account"}, nil)
	gaugeEmpty     = prometheus.NewDesc("orchard_pools_empty", "License pools of the account (not unlimited, still at Apple) with no license left to hand out.", []string{"account"}, nil)
	gaugeTokenExp  = prometheus.NewDesc("orchard_account_token_expiry_timestamp_seconds", "When the account's content token expires.", []string{"account"}, nil)
	gaugeUp        = prometheus.NewDesc("orchard_gauges_up", "1 when this scrape read the gauges from the database, 0 when it could not.", nil, nil)
)

// GaugeCollector reads the gauges from the database at each scrape (bounded by a timeout).
type GaugeCollector struct {
	mu  sync.Mutex
	db  *db.DB
	log *slog.Logger
	// Timeout bounds the database reads of one scrape; default 5s.
	Timeout time.Duration
}

// Use points the collector at a database (a collector is registered once per process).
func (g *GaugeCollector) Use(d *db.DB, log *slog.Logger) {
	g.mu.Lock()
	g.db, g.log = d, log
	g.mu.Unlock()
}

func (g *GaugeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{gaugeAccount, gaugeHeld, gaugeHeldUntil, gaugeBacklog, gaugeDataAge, gaugeEmpty, gaugeTokenExp, gaugeUp} {
		ch <- d
	}
}

func (g *GaugeCollector) Collect(ch chan<- prometheus.Metric) {
	timeout := g.Timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	g.mu.Lock()
	d, log := g.db, g.log
	g.mu.Unlock()
	if d == nil {
		ch <- prometheus.MustNewConstMetric(gaugeUp, prometheus.GaugeValue, 0)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	accounts, err := d.ListLiveAccounts(ctx)
	var backlog, empty map[int64]int64
	if err == nil {
		backlog, empty, err = d.GaugeCounts(ctx)
	}
	if err != nil {
		if log != nil {
			log.Warn("read the gauges for /metrics", "error", err)
		}
		ch <- prometheus.MustNewConstMetric(gaugeUp, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(gaugeUp, prometheus.GaugeValue, 1)
	now := time.Now()
	for _, a := range accounts {
		acc := fmt.Sprint(a.ID)
		initAccountSeries(a.ID) // an account added on another replica gets its counters too
		ch <- prometheus.MustNewConstMetric(gaugeAccount, prometheus.GaugeValue, 1, acc, a.Name, a.CountryCode)
		held := 0.0
		if a.ThrottledUntil != nil && a.ThrottledUntil.After(now) {
			held = 1
			ch <- prometheus.MustNewConstMetric(gaugeHeldUntil, prometheus.GaugeValue, float64(a.ThrottledUntil.Unix()), acc)
		}
		ch <- prometheus.MustNewConstMetric(gaugeHeld, prometheus.GaugeValue, held, acc)
		ch <- prometheus.MustNewConstMetric(gaugeBacklog, prometheus.GaugeValue, float64(backlog[a.ID]), acc)
		since := a.CreatedAt
		if a.LastSyncedAt != nil {
			since = *a.LastSyncedAt
		}
		ch <- prometheus.MustNewConstMetric(gaugeDataAge, prometheus.GaugeValue, now.Sub(since).Seconds(), acc)
		ch <- prometheus.MustNewConstMetric(gaugeEmpty, prometheus.GaugeValue, float64(empty[a.ID]), acc)
		ch <- prometheus.MustNewConstMetric(gaugeTokenExp, prometheus.GaugeValue, float64(a.TokenExpiresAt.Unix()), acc)
	}
}

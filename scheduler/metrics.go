package scheduler

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
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
	Help: "Apple notifications received, by type (or rejected, malformed, duplicate).",
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

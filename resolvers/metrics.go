package resolvers

import (
	"context"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"orchard/model"
)

// Prometheus metrics of the API, served at /metrics.
var (
	httpRequests = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "orchard_http_requests_total",
		Help: "HTTP requests by route and status code.",
	}, []string{"route", "status"})
	httpDuration = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "orchard_http_request_duration_seconds",
		Help:    "HTTP request latency by route.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	}, []string{"route"})
	graphqlOperations = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "orchard_graphql_operations_total",
		Help: "GraphQL operations by type (query, mutation, subscription) and outcome (ok, error).",
	}, []string{"type", "outcome"})
	graphqlDuration = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "orchard_graphql_operation_duration_seconds",
		Help:    "GraphQL operation latency by type.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	}, []string{"type"})
	graphqlErrors = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "orchard_graphql_errors_total",
		Help: "Top-level GraphQL errors by extensions.code.",
	}, []string{"code"})
)

// observeResponses counts every response's errors by code, and operations by type.
func observeResponses(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	start := time.Now()
	resp := next(ctx)
	typ := "unknown"
	if graphql.HasOperationContext(ctx) {
		if op := graphql.GetOperationContext(ctx).Operation; op != nil {
			typ = string(op.Operation)
		}
	}
	outcome := "ok"
	if resp != nil && len(resp.Errors) > 0 {
		outcome = "error"
		for _, e := range resp.Errors {
			code, _ := e.Extensions["code"].(string)
			if code == "" {
				code = "UNKNOWN"
			}
			graphqlErrors.WithLabelValues(code).Inc()
		}
	}
	graphqlOperations.WithLabelValues(typ, outcome).Inc()
	graphqlDuration.WithLabelValues(typ).Observe(time.Since(start).Seconds())
	return resp
}

// The series whose label values are known in advance exist from the start, at zero, so that
// rate() and increase() in dashboards and alerts see them before the first event.
func init() {
	for _, typ := range []string{"query", "mutation", "subscription"} {
		graphqlDuration.WithLabelValues(typ)
		for _, outcome := range []string{"ok", "error"} {
			graphqlOperations.WithLabelValues(typ, outcome)
		}
	}
	for _, code := range []string{
		string(model.CodeUnauthenticated), string(model.CodeForbidden), string(model.CodeBadUserInput),
		string(model.CodeComplexityLimitExceeded), string(model.CodeDepthLimitExceeded), string(model.CodeInternal),
		string(model.CodeNotFound), "GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED", "PERSISTED_QUERY_NOT_FOUND",
		string(codeSubscriptionNeedsStream),
	} {
		graphqlErrors.WithLabelValues(code)
	}
}

package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Tracing is OpenTelemetry's, configured by its standard variables: off (nothing exported,
// spans not even recorded) unless OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, then exported over OTLP/HTTP (protobuf) to it;
// OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_EXPORTER_OTLP_HEADERS and
// OTEL_TRACES_SAMPLER are honoured by the SDK. Whatever the exporter, an incoming W3C
// traceparent is continued: the request's spans (HTTP server, GraphQL operation, SQL) join the
// caller's trace, and calls to Apple carry it on.

// setupTracing installs the propagator, and the exporting provider when an endpoint is set.
// It returns the function that flushes and stops the exporter at shutdown.
func setupTracing(ctx context.Context, env map[string]string, log *slog.Logger) (func(context.Context) error, error) {
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	endpoint := env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
	if endpoint == "" {
		endpoint = env["OTEL_EXPORTER_OTLP_ENDPOINT"]
	}
	if endpoint == "" || strings.EqualFold(env["OTEL_TRACES_EXPORTER"], "none") {
		return func(context.Context) error { return nil }, nil
	}
	if p := env["OTEL_EXPORTER_OTLP_PROTOCOL"]; p != "" && p != "http/protobuf" {
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL: %q is not supported (Orchard exports OTLP over HTTP: http/protobuf)", p)
	}
	exp, err := otlptracehttp.New(ctx) // reads the OTEL_EXPORTER_OTLP_* variables itself
	if err != nil {
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT: %w", err)
	}
	// service.name orchard and its version, unless OTEL_SERVICE_NAME or
	// OTEL_RESOURCE_ATTRIBUTES say otherwise.
	res, err := resource.New(ctx, resource.WithTelemetrySDK(),
		resource.WithAttributes(attribute.String("service.name", "orchard"), attribute.String("service.version", readBuildInfo().Version)),
		resource.WithFromEnv())
	if err != nil {
		return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	log.Info("tracing exported over OTLP/HTTP", "endpoint", endpoint)
	return tp.Shutdown, nil
}

// traced wraps a route with its server span, named by the route (a fixed name, never the raw
// path), continuing an incoming traceparent.
func traced(route string, h http.Handler) http.Handler {
	return otelhttp.NewHandler(h, route)
}

// appleHTTPClient is the Apple client's HTTP client (the apple package's default settings)
// with a client span per request, child of the pass or operation that made it, and the
// traceparent sent on.
func appleHTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 16
	tr.DialContext = (&net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	return &http.Client{Timeout: 2 * time.Minute, Transport: otelhttp.NewTransport(tr,
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return "apple " + r.Method + " " + r.URL.Path }))}
}

// buildInfo is orchard_build_info: 1, labelled with the build (for dashboards: which version
// runs where).
var buildInfoGauge = promauto.NewGaugeVec(prometheus.GaugeOpts{
	Name: "orchard_build_info",
	Help: "Always 1; the labels say which build of Orchard runs (version, commit, Go version).",
}, []string{"version", "revision", "goversion"})

func init() {
	b := readBuildInfo()
	buildInfoGauge.WithLabelValues(b.Version, b.Commit, b.GoVersion).Set(1)
}

// metricsHandler serves GET /metrics (Prometheus). With a token (ORCHARD_METRICS_TOKEN) it
// answers only requests carrying "Authorization: Bearer <token>" (compared in constant time,
// over digests so that the length does not leak either) and 401 with a Bearer challenge to
// others; without one it is open, and belongs on a listener only Prometheus reaches
// (ORCHARD_METRICS_ADDR) — see README, Security.
func metricsHandler(token string) http.Handler {
	h := promhttp.Handler()
	if token == "" {
		return h
	}
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := ""
		if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
			got = strings.TrimSpace(a[7:])
		}
		sum := sha256.Sum256([]byte(got))
		if subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="orchard-metrics"`)
			http.Error(w, "this endpoint needs the metrics token (Authorization: Bearer ...)", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

package resolvers

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"orchard/model"
)

// Hygiene shared by every HTTP route: a request id, one JSON log line per request (never a
// header value or a body: they may hold keys and tokens), metrics, and a bound on bodies.

// requestInfo is what the layers inside a request learn for its log line: the GraphQL
// operation (set by the tracing extension) and the name of the API key (set by the
// authentication; the name, never the key).
type requestInfo struct {
	mu                      sync.Mutex
	operation, opType, name string
}

type requestInfoKey struct{}

func infoFrom(ctx context.Context) *requestInfo {
	i, _ := ctx.Value(requestInfoKey{}).(*requestInfo)
	return i
}

// noteKeyName records the caller's key name for the request's log line.
func noteKeyName(ctx context.Context, name string) {
	if i := infoFrom(ctx); i != nil {
		i.mu.Lock()
		i.name = name
		i.mu.Unlock()
	}
}

// noteOperation records the GraphQL operation for the request's log line (the last one, on
// a WebSocket that ran several).
func noteOperation(ctx context.Context, typ, name string) {
	if i := infoFrom(ctx); i != nil {
		i.mu.Lock()
		i.opType, i.operation = typ, name
		i.mu.Unlock()
	}
}

// RequestLog wraps a route with request ids, logging and metrics. route names the route in
// metrics (a fixed label, never the raw path). The log line carries the GraphQL operation's
// type and name, the API key's name and the trace id, when there are.
func RequestLog(log *slog.Logger, route string, next http.Handler) http.Handler {
	// The route's series exist from the start, at zero.
	httpRequests.WithLabelValues(route, "200")
	httpDuration.WithLabelValues(route)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if id == "" || len(id) > 64 {
			id = newRequestID()
		}
		w.Header().Set("X-Request-Id", id)
		l := log.With("request_id", id)
		if sc := trace.SpanContextFromContext(r.Context()); sc.HasTraceID() {
			l = l.With("trace_id", sc.TraceID().String())
		}
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		info := &requestInfo{}
		ctx := context.WithValue(withLog(r.Context(), l), requestInfoKey{}, info)
		next.ServeHTTP(sw, r.WithContext(ctx))
		d := time.Since(start)
		httpRequests.WithLabelValues(route, strconv.Itoa(sw.status)).Inc()
		httpDuration.WithLabelValues(route).Observe(d.Seconds())
		level := slog.LevelInfo
		if sw.status >= 500 {
			level = slog.LevelError
		}
		attrs := []any{"method", r.Method, "route", route, "path", r.URL.Path,
			"status", sw.status, "duration_ms", float64(d.Microseconds()) / 1000, "bytes", sw.bytes}
		info.mu.Lock()
		if info.opType != "" {
			attrs = append(attrs, "operation_type", info.opType, "operation", info.operation)
		}
		if info.name != "" {
			attrs = append(attrs, "api_key", info.name)
		}
		info.mu.Unlock()
		l.Log(r.Context(), level, "request", attrs...)
	})
}

func newRequestID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

// Flush passes a flush on (Server-Sent Events flush each event).
func (w *statusWriter) Flush() {
	w.wrote = true
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController (and the WebSocket upgrade) reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// LimitBody refuses request bodies over max bytes with 413 and a GraphQL error coded
// REQUEST_TOO_LARGE, before anything parses them.
func LimitBody(max int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Method == http.MethodGet || isWebSocket(r) {
			next.ServeHTTP(w, r)
			return
		}
		if r.ContentLength > max {
			writeError(w, http.StatusRequestEntityTooLarge, tooLarge(max))
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				writeError(w, http.StatusRequestEntityTooLarge, tooLarge(max))
				return
			}
			writeError(w, http.StatusBadRequest, model.Errorf(model.CodeBadUserInput, "could not read the request body"))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		next.ServeHTTP(w, r)
	})
}

func tooLarge(max int64) *model.Error {
	return model.Errorf(model.CodeRequestTooLarge, "request body is larger than the limit of %d bytes", max)
}

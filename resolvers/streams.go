package resolvers

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"

	"orchard/model"
)

// Streams are the long-lived requests of the GraphQL endpoint: WebSocket connections and
// Server-Sent Event streams. http.Server.Shutdown does not end them (it never sees a hijacked
// WebSocket again, and it would wait its whole timeout for an event stream), so the server
// ends them itself when it shuts down: Close cancels their contexts, which makes the
// WebSocket transport send a close frame, here with code 1001 (going away) so that clients
// reconnect to another replica instead of reporting an abnormal closure (1006), and makes an
// event stream finish its response.
type Streams struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewStreams returns an empty set of streams.
func NewStreams() *Streams {
	ctx, cancel := context.WithCancel(context.Background())
	return &Streams{ctx: ctx, cancel: cancel}
}

// Middleware ties WebSocket upgrades and event-stream requests to the set.
func (s *Streams) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isWebSocket(r) && !isEventStream(r) {
			next.ServeHTTP(w, r)
			return
		}
		if s.ctx.Err() != nil {
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusServiceUnavailable, errShuttingDown)
			return
		}
		s.wg.Add(1)
		defer s.wg.Done()
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		stop := context.AfterFunc(s.ctx, cancel)
		defer stop()
		if isEventStream(r) {
			// gqlgen's SSE transport asks for an http.Flusher by type assertion; wrappers
			// of the ResponseWriter (logging, counting) need not be one themselves.
			w = flushWriter{w}
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// flushWriter flushes through http.ResponseController, which follows Unwrap.
type flushWriter struct{ http.ResponseWriter }

func (f flushWriter) Flush()                      { _ = http.NewResponseController(f.ResponseWriter).Flush() }
func (f flushWriter) Unwrap() http.ResponseWriter { return f.ResponseWriter }

// Close ends every stream and waits until their handlers have returned, or ctx is done.
func (s *Streams) Close(ctx context.Context) error {
	s.cancel()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// errShuttingDown answers a stream that starts while the server shuts down.
var errShuttingDown = model.Errorf("SHUTTING_DOWN", "the server is shutting down; retry (another replica will answer)")

// closing says whether Close was called.
func (s *Streams) closing() bool { return s.ctx.Err() != nil }

func isEventStream(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

// websocketGoingAway is the WebSocket implementation: gqlgen's, whose connections close with
// 1001 instead of 1000 once the server shuts down.
type websocketGoingAway struct {
	streams *Streams
	impl    transport.WebsocketImplementation
}

func (g websocketGoingAway) Accept(w http.ResponseWriter, r *http.Request, o transport.WebsocketAcceptOptions) (transport.WebsocketConn, error) {
	c, err := g.impl.Accept(w, r, o)
	if err != nil {
		return nil, err
	}
	return &goingAwayConn{WebsocketConn: c, streams: g.streams}, nil
}

// websocketCloseGoingAway is RFC 6455's 1001: the server is going away.
const websocketCloseGoingAway = 1001

type goingAwayConn struct {
	transport.WebsocketConn
	streams *Streams
}

func (c *goingAwayConn) WriteClose(code int, message string) error {
	if c.streams.closing() && code == transport.WebsocketCloseNormalClosure {
		code, message = websocketCloseGoingAway, "server shutting down"
	}
	return c.WebsocketConn.WriteClose(code, message)
}

// The optional interfaces of gqlgen's connection, passed on.
func (c *goingAwayConn) SetReadLimit(limit int64) {
	if l, ok := c.WebsocketConn.(transport.WebsocketReadLimiter); ok {
		l.SetReadLimit(limit)
	}
}

func (c *goingAwayConn) SetReadDeadline(t time.Time) error {
	if d, ok := c.WebsocketConn.(transport.WebsocketReadDeadliner); ok {
		return d.SetReadDeadline(t)
	}
	return nil
}

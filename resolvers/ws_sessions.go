package resolvers

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"reflect"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/coder/websocket"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"orchard/model"
)

// WebSocket sessions. A WebSocket authenticates once, in its connection_init, and may then
// live for days; what HTTP re-checks on every request has to be re-checked here on purpose:
//
//   - A socket has WSInitTimeout from its upgrade to a successful connection_init; then it is
//     closed with 4408 (graphql-ws: connection initialisation timeout).
//   - A failed connection_init closes with 4401 (no, unknown or revoked key; or another message
//     before connection_init), 4400 (a payload that is no object) or 4500 (the key could not
//     be looked up), never 1000: a client must not read it as a normal end.
//   - The key is looked up again (through the Authenticator's short cache) for every
//     operation on the socket, so an operation runs with the key's current role; an operation
//     of a revoked key is refused and its socket closed with 4403 (forbidden).
//   - Revoking a key through this process closes its sockets at once, with 4403 (their
//     subscriptions end with them); a key revoked elsewhere (another replica, the command
//     line) is found by a re-check every recheckEvery, within recheckEvery + authCacheTTL
//     (one loop re-checks every session, recheckAll).
//   - At most WSPerAddress sockets per remote address (counted from the upgrade, before any
//     authentication) and WSPerKey sockets and event streams per API key (from
//     connection_init) are open at once; one more socket is closed with 4429 and a reason
//     that names the cap, one more event stream answered 429 TOO_MANY_CONNECTIONS.
//   - An event stream (Server-Sent Events) is a session of its key as well: revocation and
//     re-checks end it like a socket.

// Close codes (graphql-ws's, where it has one).
const (
	wsCloseBadRequest   = 4400
	wsCloseUnauthorized = 4401
	wsCloseForbidden    = 4403
	wsCloseInitTimeout  = 4408
	wsCloseTooMany      = 4429
	wsCloseInternal     = 4500
)

// errKeyGone is the close reason of a socket whose key a re-check found revoked (one revoked
// through this process closes with "the API key was revoked").
const errKeyGone = "the API key is no longer valid"

// codeTooManyConnections answers an event stream over its key's cap (HTTP 429).
const codeTooManyConnections model.Code = "TOO_MANY_CONNECTIONS"

// recheckEvery is how often an open socket's key is looked up again without any operation.
const recheckEvery = 5 * time.Second

// wsSessions are the endpoint's open WebSockets, by remote address and by key.
type wsSessions struct {
	auth            *Authenticator
	initTimeout     time.Duration
	perKey, perAddr int // < 0: no cap

	mu     sync.Mutex
	byAddr map[string]int
	byKey  map[int64]map[*wsSession]struct{}
	// checking says whether recheckAll runs: one loop re-checks every session's key, rather
	// than a goroutine (and its stack) per socket.
	checking bool
}

func newWSSessions(auth *Authenticator, l Limits) *wsSessions {
	s := &wsSessions{auth: auth, initTimeout: l.WSInitTimeout, perKey: l.WSPerKey, perAddr: l.WSPerAddress,
		byAddr: map[string]int{}, byKey: map[int64]map[*wsSession]struct{}{}}
	auth.OnForget(s.closeKey)
	return s
}

// wsSession is one WebSocket, from its upgrade to its end.
type wsSession struct {
	s      *wsSessions
	addr   string
	ctx    context.Context
	cancel context.CancelFunc

	stream bool // an event stream (Server-Sent Events), not a WebSocket: not counted per address

	mu     sync.Mutex
	conn   transport.WebsocketConn // gqlgen's connection, once upgraded
	timer  *time.Timer             // the connection_init timeout
	inited bool
	closed bool
	keyID  int64
	header string // the Authorization value of connection_init, for the re-checks
}

type wsSessionKey struct{}

func sessionFrom(ctx context.Context) *wsSession {
	s, _ := ctx.Value(wsSessionKey{}).(*wsSession)
	return s
}

// Middleware counts WebSocket upgrades per remote address and gives each one its session.
func (s *wsSessions) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isWebSocket(r) {
			next.ServeHTTP(w, r)
			return
		}
		addr := remoteHost(r)
		s.mu.Lock()
		if s.perAddr >= 0 && s.byAddr[addr] >= s.perAddr {
			s.mu.Unlock()
			refuseSocket(w, r, wsCloseTooMany, fmt.Sprintf("too many connections from this address (limit %d)", s.perAddr))
			return
		}
		s.byAddr[addr]++
		s.mu.Unlock()

		ctx, cancel := context.WithCancel(r.Context())
		sess := &wsSession{s: s, addr: addr, ctx: ctx, cancel: cancel}
		defer sess.end()
		next.ServeHTTP(w, r.WithContext(context.WithValue(ctx, wsSessionKey{}, sess)))
		// gqlgen leaves a socket whose connection_init payload is no object without a close
		// frame; every other end has closed it already (and the first close wins).
		sess.close(wsCloseBadRequest, "invalid message")
	})
}

// StreamMiddleware, inside authentication, makes an event stream (a subscription over
// Server-Sent Events) a session of its key too: revoking the key ends the stream as it closes
// the key's WebSockets, at once or at the next re-check.
func (s *wsSessions) StreamMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k := KeyFrom(r.Context())
		if !isEventStream(r) || k == nil {
			next.ServeHTTP(w, r)
			return
		}
		ctx, cancel := context.WithCancel(r.Context())
		sess := &wsSession{s: s, addr: remoteHost(r), ctx: ctx, cancel: cancel, stream: true,
			inited: true, keyID: k.ID, header: r.Header.Get("Authorization")}
		s.mu.Lock()
		if s.perKey >= 0 && len(s.byKey[k.ID]) >= s.perKey {
			s.mu.Unlock()
			writeError(w, http.StatusTooManyRequests, model.Errorf(codeTooManyConnections,
				"too many connections for this API key (limit %d WebSockets and event streams)", s.perKey))
			return
		}
		if s.byKey[k.ID] == nil {
			s.byKey[k.ID] = map[*wsSession]struct{}{}
		}
		s.byKey[k.ID][sess] = struct{}{}
		s.startRecheck()
		s.mu.Unlock()
		defer sess.end()
		next.ServeHTTP(w, r.WithContext(context.WithValue(ctx, wsSessionKey{}, sess)))
	})
}

// remoteHost is the host part of the request's remote address.
func remoteHost(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

// refuseSocket completes the upgrade only to close the socket with code and reason: a
// browser's WebSocket cannot read the status of a refused upgrade, only a close frame.
func refuseSocket(w http.ResponseWriter, r *http.Request, code int, reason string) {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"graphql-transport-ws", "graphql-ws"}})
	if err != nil {
		return // Accept answered the request itself
	}
	_ = c.Close(websocket.StatusCode(code), reason)
}

// end forgets the session when its handler returns.
func (sess *wsSession) end() {
	sess.cancel()
	sess.mu.Lock()
	if sess.timer != nil {
		sess.timer.Stop()
	}
	id := sess.keyID
	sess.mu.Unlock()
	s := sess.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if !sess.stream {
		if s.byAddr[sess.addr]--; s.byAddr[sess.addr] <= 0 {
			delete(s.byAddr, sess.addr)
		}
	}
	if set := s.byKey[id]; set != nil {
		delete(set, sess)
		if len(set) == 0 {
			delete(s.byKey, id)
		}
	}
}

// attach gives the session its upgraded connection and starts the connection_init timeout.
func (sess *wsSession) attach(c transport.WebsocketConn) {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	sess.conn = c
	sess.timer = time.AfterFunc(sess.s.initTimeout, func() {
		sess.mu.Lock()
		inited := sess.inited
		sess.mu.Unlock()
		if !inited {
			sess.close(wsCloseInitTimeout, fmt.Sprintf("no connection_init within %s", sess.s.initTimeout))
		}
	})
}

// close closes the socket with code and reason (the first close wins: gqlgen's own close
// frame after it is not sent) and ends its operations.
func (sess *wsSession) close(code int, reason string) {
	sess.mu.Lock()
	if sess.closed {
		sess.mu.Unlock()
		return
	}
	sess.closed = true
	c := sess.conn
	sess.mu.Unlock()
	if c != nil {
		_ = c.WriteClose(code, reason)
	}
	sess.cancel()
}

// init is the transport's InitFunc: it authenticates connection_init's key, counts the socket
// against the key's cap and starts the periodic re-check.
func (s *wsSessions) init(ctx context.Context, p transport.InitPayload) (context.Context, *transport.InitPayload, error) {
	header := p.Authorization()
	k, err := s.auth.Authenticate(ctx, header)
	if err != nil {
		if _, ok := model.AsError(err); ok {
			return closeWith(ctx, wsCloseUnauthorized, "unauthenticated: send a valid API key in connection_init"), nil, err
		}
		logFrom(ctx).ErrorContext(ctx, "authenticate", "error", err)
		return closeWith(ctx, wsCloseInternal, "internal error"), nil, errInternal
	}
	sess := sessionFrom(ctx)
	if sess != nil {
		s.mu.Lock()
		set := s.byKey[k.ID]
		if s.perKey >= 0 && len(set) >= s.perKey {
			s.mu.Unlock()
			return closeWith(ctx, wsCloseTooMany, fmt.Sprintf("too many connections for this API key (limit %d)", s.perKey)), nil,
				model.Errorf(model.CodeForbidden, "too many connections for this API key")
		}
		if set == nil {
			set = map[*wsSession]struct{}{}
			s.byKey[k.ID] = set
		}
		set[sess] = struct{}{}
		s.startRecheck()
		s.mu.Unlock()
		sess.mu.Lock()
		sess.inited, sess.keyID, sess.header = true, k.ID, header
		if sess.timer != nil {
			sess.timer.Stop()
		}
		sess.mu.Unlock()
	}
	noteKeyName(ctx, k.Name)
	return WithKey(ctx, k), nil, nil // loaders: per response, see responseLoaders
}

// closeWith returns ctx telling gqlgen's transport how to close the socket.
func closeWith(ctx context.Context, code int, reason string) context.Context {
	return transport.AppendCloseReason(transport.WithWebsocketCloseCode(ctx, code), reason)
}

// startRecheck starts recheckAll unless it runs. s.mu is held.
func (s *wsSessions) startRecheck() {
	if !s.checking {
		s.checking = true
		go s.recheckAll()
	}
}

// recheckAll looks the key of every open session up again every recheckEvery, and closes the
// sessions of a key no longer valid; it stops when no session is open (startRecheck starts it
// again). The lookups go through the Authenticator's cache, so the sessions of one key cost one.
func (s *wsSessions) recheckAll() {
	t := time.NewTicker(recheckEvery)
	defer t.Stop()
	var open []*wsSession
	for range t.C {
		open = open[:0]
		s.mu.Lock()
		for _, set := range s.byKey {
			for sess := range set {
				open = append(open, sess)
			}
		}
		if len(open) == 0 {
			s.checking = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		for _, sess := range open {
			if sess.ctx.Err() == nil {
				sess.recheckKey()
			}
		}
		clear(open) // no session is kept past its end
	}
}

// recheckKey looks the session's key up again and, when it is no longer valid, closes the
// socket with 4403. A failed lookup (the database) is not a revocation; a session whose
// connection_init is not through has nothing to look up.
func (sess *wsSession) recheckKey() {
	sess.mu.Lock()
	header := sess.header
	sess.mu.Unlock()
	if header == "" {
		return
	}
	_, err := sess.s.auth.Authenticate(sess.ctx, header)
	if _, ok := model.AsError(err); err != nil && ok {
		sess.close(wsCloseForbidden, errKeyGone)
	}
}

// closeKey closes the sockets of a key (revoked through this process) at once.
func (s *wsSessions) closeKey(id int64) {
	s.mu.Lock()
	var open []*wsSession
	for sess := range s.byKey[id] {
		open = append(open, sess)
	}
	s.mu.Unlock()
	for _, sess := range open {
		sess.close(wsCloseForbidden, "the API key was revoked")
	}
}

// recheck is the operation middleware that runs every operation of a socket with its key as
// it is now: a revoked key's operation is refused, and its socket closed.
func (s *wsSessions) recheck(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	sess := sessionFrom(ctx)
	if sess == nil {
		return next(ctx)
	}
	sess.mu.Lock()
	header := sess.header
	sess.mu.Unlock()
	if header == "" {
		return next(ctx)
	}
	k, err := s.auth.Authenticate(ctx, header)
	if err != nil {
		e, ok := model.AsError(err)
		if ok {
			sess.close(wsCloseForbidden, errKeyGone)
		} else {
			logFrom(ctx).ErrorContext(ctx, "authenticate", "error", err)
			e = errInternal
		}
		return graphql.OneShot(&graphql.Response{Errors: gqlerror.List{codedError(e)}})
	}
	return next(WithKey(ctx, k))
}

// wsTransport is gqlgen's WebSocket transport for WebSocket upgrades only (gqlgen's takes any
// request with an Upgrade header, and answers the others with an uncoded 400).
type wsTransport struct{ transport.Websocket }

func (wsTransport) Supports(r *http.Request) bool { return isWebSocket(r) }

// sessionSockets is the WebSocket implementation that hands each upgraded connection to its
// session (which starts the connection_init timeout).
type sessionSockets struct {
	impl transport.WebsocketImplementation
}

func (s sessionSockets) Accept(w http.ResponseWriter, r *http.Request, o transport.WebsocketAcceptOptions) (transport.WebsocketConn, error) {
	c, err := s.impl.Accept(w, r, o)
	if err != nil {
		return nil, err
	}
	sess := sessionFrom(r.Context())
	if sess != nil {
		sess.attach(c)
	}
	return codedConn{c, sess}, nil
}

// codedConn gives every error message gqlgen's transport sends a code and a message of
// Orchard's: a subscribe message whose payload is no JSON object ("invalid json", uncoded) and
// a resolver panic (the error's text, uncoded) come out of it without one. Before a successful
// connection_init, gqlgen's protocol error (1002) is graphql-ws's: 4401 for a message other
// than connection_init, 4400 for one that is no JSON.
type codedConn struct {
	transport.WebsocketConn
	sess *wsSession
}

func (c codedConn) WriteClose(code int, message string) error {
	if c.sess != nil && code == transport.WebsocketCloseProtocolError {
		c.sess.mu.Lock()
		inited := c.sess.inited
		c.sess.mu.Unlock()
		if !inited {
			if message == "unexpected message" {
				code, message = wsCloseUnauthorized, "unauthenticated: send connection_init with a valid API key first"
			} else {
				code = wsCloseBadRequest
			}
		}
	}
	return c.WebsocketConn.WriteClose(code, message)
}

func (c codedConn) WriteJSON(v any) error {
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && rv.Elem().Kind() == reflect.Struct {
		if t := rv.Elem().FieldByName("Type"); t.IsValid() && t.Kind() == reflect.String && t.String() == "error" {
			if p := rv.Elem().FieldByName("Payload"); p.IsValid() && p.CanSet() {
				if b, ok := p.Interface().(json.RawMessage); ok {
					p.Set(reflect.ValueOf(json.RawMessage(codeErrors(b))))
				}
			}
		}
	}
	return c.WebsocketConn.WriteJSON(v)
}

// codeErrors codes the errors of an error message's payload that have no code.
func codeErrors(payload []byte) []byte {
	var errs []map[string]any
	if json.Unmarshal(payload, &errs) != nil {
		return payload
	}
	for _, e := range errs {
		ext, _ := e["extensions"].(map[string]any)
		if ext == nil {
			ext = map[string]any{}
			e["extensions"] = ext
		}
		if _, ok := ext["code"]; ok {
			continue
		}
		switch msg, _ := e["message"].(string); msg {
		case "invalid json":
			e["message"] = "the subscribe message's payload is not a JSON object with a string query"
			ext["code"] = string(model.CodeBadUserInput)
		default:
			e["message"] = errInternal.Message
			ext["code"] = string(model.CodeInternal)
		}
	}
	b, err := json.Marshal(errs)
	if err != nil {
		return payload
	}
	return b
}

// The optional interfaces of gqlgen's connection, passed on.
func (c codedConn) SetReadLimit(limit int64) {
	if l, ok := c.WebsocketConn.(transport.WebsocketReadLimiter); ok {
		l.SetReadLimit(limit)
	}
}

func (c codedConn) SetReadDeadline(t time.Time) error {
	if d, ok := c.WebsocketConn.(transport.WebsocketReadDeadliner); ok {
		return d.SetReadDeadline(t)
	}
	return nil
}

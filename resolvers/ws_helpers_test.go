package resolvers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/license"
	"orchard/model"
	"orchard/resolvers"
)

// endpoint is the GraphQL handler with a configuration of the test's own (gqltest's has
// introspection on and no hooks), behind the request log as in the server, over real HTTP,
// with its log lines kept.
type endpoint struct {
	URL, WS string
	Keys    map[model.Role]string
	Auth    *resolvers.Authenticator
	License *license.Service
	log     *logLines
}

// newEndpoint starts an endpoint over d configured by cfg (its DB, License, Auth and Log are
// set here) with an ADMIN, an OPERATOR and a VIEWER key.
func newEndpoint(t *testing.T, d *db.DB, cfg resolvers.Config) *endpoint {
	t.Helper()
	e := &endpoint{Keys: map[model.Role]string{}, log: &logLines{}}
	e.License = license.New(d, license.Options{Logger: dbtest.Quiet()})
	e.Auth = resolvers.NewAuthenticator(d, db.Now)
	log := slog.New(slog.NewJSONHandler(e.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.DB, cfg.License, cfg.Auth, cfg.Log = d, e.License, e.Auth, log
	mux := http.NewServeMux()
	mux.Handle("/graphql", resolvers.RequestLog(log, "graphql", resolvers.NewHandler(cfg)))
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	e.URL = ts.URL + "/graphql"
	e.WS = "ws" + strings.TrimPrefix(e.URL, "http")
	for _, role := range []model.Role{model.RoleAdmin, model.RoleOperator, model.RoleViewer} {
		e.Keys[role] = e.newKey(t, role)
	}
	return e
}

// newKey creates a key and returns its secret.
func (e *endpoint) newKey(t *testing.T, role model.Role) string {
	t.Helper()
	_, secret, err := e.License.CreateAPIKey(context.Background(), license.SystemActor, "test "+string(role)+" "+time.Now().Format(time.RFC3339Nano), role)
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

// reply is an HTTP answer of the endpoint, decoded.
type reply struct {
	Status int
	Header http.Header
	Body   string
	Data   json.RawMessage
	Errors []struct {
		Message    string         `json:"message"`
		Extensions map[string]any `json:"extensions"`
	}
	HasData bool
}

// code is the first error's extensions.code ("" when there is none).
func (r *reply) code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	c, _ := r.Errors[0].Extensions["code"].(string)
	return c
}

// send sends a request (headers: name, value pairs) and decodes the answer.
func (e *endpoint) send(t *testing.T, ctx context.Context, method, url, key, body string, headers ...string) *reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := &reply{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatalf("%s %s: the answer (status %d) is not a JSON object: %.300s", method, url, resp.StatusCode, b)
	}
	_, r.HasData = raw["data"]
	r.Data = raw["data"]
	_ = json.Unmarshal(raw["errors"], &r.Errors)
	return r
}

// post sends a GraphQL document (and variables) with POST.
func (e *endpoint) post(t *testing.T, key, query string, vars map[string]any) *reply {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return e.send(t, ctx, http.MethodPost, e.URL, key, string(b))
}

// errorLines are the endpoint's log lines at level ERROR.
func (e *endpoint) errorLines() []string {
	var out []string
	for _, l := range e.log.lines() {
		if strings.Contains(l, `"level":"ERROR"`) {
			out = append(out, l)
		}
	}
	return out
}

// logLines keeps what a logger writes.
type logLines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logLines) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Split(strings.TrimSpace(l.buf.String()), "\n")
}

// wsClient is a graphql-transport-ws client.
type wsClient struct {
	t   *testing.T
	c   *websocket.Conn
	err error // the read that ended the socket
}

// wsWait bounds every wait for the server (a fail-safe, not an assertion).
const wsWait = 30 * time.Second

func (e *endpoint) dial(t *testing.T) *wsClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wsWait)
	defer cancel()
	c, _, err := websocket.Dial(ctx, e.WS, &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return &wsClient{t: t, c: c}
}

type wsMsg struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

func (w *wsClient) send(typ, id string, payload any) error {
	m := wsMsg{ID: id, Type: typ}
	if payload != nil {
		m.Payload, _ = json.Marshal(payload)
	}
	b, _ := json.Marshal(m)
	ctx, cancel := context.WithTimeout(context.Background(), wsWait)
	defer cancel()
	return w.c.Write(ctx, websocket.MessageText, b)
}

// read returns the next message other than ping and pong.
func (w *wsClient) read() (wsMsg, error) {
	if w.err != nil {
		return wsMsg{}, w.err
	}
	ctx, cancel := context.WithTimeout(context.Background(), wsWait)
	defer cancel()
	for {
		_, b, err := w.c.Read(ctx)
		if err != nil {
			w.err = err
			return wsMsg{}, err
		}
		var m wsMsg
		if err := json.Unmarshal(b, &m); err != nil {
			return m, err
		}
		if m.Type != "ping" && m.Type != "pong" {
			return m, nil
		}
	}
}

// init sends connection_init with key ("" sends none) and returns the server's answer.
func (w *wsClient) init(key string) (wsMsg, error) {
	payload := map[string]any{}
	if key != "" {
		payload["Authorization"] = "Bearer " + key
	}
	if err := w.send("connection_init", "", payload); err != nil {
		return wsMsg{}, err
	}
	return w.read()
}

// mustInit sends connection_init with key and wants connection_ack.
func (w *wsClient) mustInit(key string) {
	w.t.Helper()
	if m, err := w.init(key); err != nil || m.Type != "connection_ack" {
		w.t.Fatalf("connection_init: %+v, %v; want connection_ack", m, err)
	}
}

// closed reads until the socket ends and returns its close code and reason (-1: it ended
// without a close frame).
func (w *wsClient) closed() (int, string) {
	for {
		_, err := w.read()
		if err == nil {
			continue
		}
		var ce websocket.CloseError
		if errors.As(err, &ce) {
			return int(ce.Code), ce.Reason
		}
		return -1, err.Error()
	}
}

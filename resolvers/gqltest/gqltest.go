// Package gqltest runs Orchard's GraphQL endpoint over real HTTP against a real database for
// tests and benchmarks, with API keys of every role and a count of the SQL statements each
// request issues.
package gqltest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/license"
	"orchard/model"
	"orchard/resolvers"
)

// Server is a running GraphQL endpoint.
type Server struct {
	URL     string
	handler http.Handler
	DB      *db.DB
	License *license.Service
	// Keys holds one key secret per role.
	Keys map[model.Role]string
	// Statements counts the SQL statements of the last request sent with Do.
	Statements int64
	mu         sync.Mutex
	recorded   []db.Statement
	client     *http.Client
}

// Options adjust the server.
type Options struct {
	Limits resolvers.Limits
	// Wrap, if set, wraps the GraphQL handler (e.g. to add routes).
	Wrap func(http.Handler) http.Handler
}

// New starts a server over d with an ADMIN, an OPERATOR and a VIEWER key.
func New(t testing.TB, d *db.DB, opts ...Options) *Server {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	s := newServer(t, d, license.New(d, license.Options{Logger: dbtest.Quiet()}), o)
	mux := http.NewServeMux()
	mux.Handle("/graphql", s.handler)
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	s.URL, s.client = ts.URL+"/graphql", keepAlive(ts.Client())
	return s
}

// newServer builds the GraphQL handler (with statement counting) and the keys.
func newServer(t testing.TB, d *db.DB, svc *license.Service, o Options) *Server {
	t.Helper()
	h := resolvers.NewHandler(resolvers.Config{
		DB: d, License: svc, Auth: resolvers.NewAuthenticator(d, db.Now),
		Log: dbtest.Quiet(), Introspection: true, Limits: o.Limits,
	})
	var handler http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := r.Context().Value(counterKey{}).(*db.StatementCounter)
		if c == nil {
			c = &db.StatementCounter{}
		}
		h.ServeHTTP(w, r.WithContext(db.WithStatementCounter(r.Context(), c)))
	})
	if o.Wrap != nil {
		handler = o.Wrap(handler)
	}
	s := &Server{DB: d, License: svc, Keys: map[model.Role]string{}}
	s.handler = s.counting(handler)
	for _, role := range []model.Role{model.RoleAdmin, model.RoleOperator, model.RoleViewer} {
		_, secret, err := svc.CreateAPIKey(context.Background(), license.SystemActor, "test "+string(role), role)
		if err != nil {
			t.Fatal(err)
		}
		s.Keys[role] = secret
	}
	return s
}

type counterKey struct{}

// recordHeader asks counting to record the request's statements (see DoRecorded).
const recordHeader = "X-Gqltest-Record-Statements"

// counting puts a statement counter in each request's context; the handler adds it to the
// database context, and the client reads it back through the response header. A request
// with recordHeader gets a recorder, whose statements DoRecorded reads once it is answered.
func (s *Server) counting(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := &db.StatementCounter{}
		if r.Header.Get(recordHeader) != "" {
			c = db.NewStatementRecorder()
		}
		next.ServeHTTP(&headerOnWrite{ResponseWriter: w, c: c}, r.WithContext(context.WithValue(r.Context(), counterKey{}, c)))
		if r.Header.Get(recordHeader) != "" {
			s.mu.Lock()
			s.recorded = c.Recorded()
			s.mu.Unlock()
		}
	})
}

type headerOnWrite struct {
	http.ResponseWriter
	c       *db.StatementCounter
	written bool
}

func (h *headerOnWrite) WriteHeader(code int) {
	if !h.written {
		h.written = true
		h.Header().Set("X-Statements", fmt.Sprint(h.c.Count()))
	}
	h.ResponseWriter.WriteHeader(code)
}

// Unwrap lets the WebSocket upgrade reach the connection.
func (h *headerOnWrite) Unwrap() http.ResponseWriter { return h.ResponseWriter }

func (h *headerOnWrite) Write(b []byte) (int, error) {
	if !h.written {
		h.WriteHeader(http.StatusOK)
	}
	return h.ResponseWriter.Write(b)
}

// Response is a GraphQL response.
type Response struct {
	Status int
	Data   json.RawMessage
	Errors []Error
}

// Error is a GraphQL error.
type Error struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

// Code is the error's extensions.code.
func (e Error) Code() string { s, _ := e.Extensions["code"].(string); return s }

// Do sends a query with the given key (empty: no Authorization header) and decodes the answer.
func (s *Server) Do(t testing.TB, key, query string, vars map[string]any) *Response {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	resp, err := s.Raw(key, bytes.NewReader(body), "application/json")
	if err != nil {
		t.Fatal(err)
	}
	return s.decode(t, resp)
}

// DoRecorded sends a query as Do does and also returns the SQL statements it issued, in
// order (not to be used concurrently with itself).
func (s *Server) DoRecorded(t testing.TB, key, query string, vars map[string]any) (*Response, []db.Statement) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, err := s.request(key, bytes.NewReader(body), "application/json")
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(recordHeader, "1")
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r := s.decode(t, resp)
	s.mu.Lock()
	defer s.mu.Unlock()
	return r, s.recorded
}

// Post sends a query from any goroutine (it takes no testing.TB, so load generators can call
// it) and decodes its data into into (nil: not decoded). A transport error, a status other
// than 200, an answer that is not JSON and GraphQL errors (with their codes) are errors.
func (s *Server) Post(key, query string, vars map[string]any, into any) error {
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		return err
	}
	resp, err := s.Raw(key, bytes.NewReader(body), "application/json")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var out struct {
		Data   json.RawMessage `json:"data"`
		Errors []Error         `json:"errors"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return fmt.Errorf("status %d, not JSON: %.200s", resp.StatusCode, b)
	}
	if len(out.Errors) > 0 {
		msgs := make([]string, 0, len(out.Errors))
		for _, e := range out.Errors {
			msgs = append(msgs, e.Code()+": "+e.Message)
		}
		return fmt.Errorf("status %d: %s", resp.StatusCode, strings.Join(msgs, "; "))
	}
	if resp.StatusCode != http.StatusOK || len(out.Data) == 0 || string(out.Data) == "null" {
		return fmt.Errorf("status %d: %.300s", resp.StatusCode, b)
	}
	if into == nil {
		return nil
	}
	return json.Unmarshal(out.Data, into)
}

// Raw posts a body as it is.
func (s *Server) Raw(key string, body io.Reader, contentType string) (*http.Response, error) {
	req, err := s.request(key, body, contentType)
	if err != nil {
		return nil, err
	}
	return s.client.Do(req)
}

// request builds a POST of body with the key.
func (s *Server) request(key string, body io.Reader, contentType string) (*http.Request, error) {
	req, err := http.NewRequest(http.MethodPost, s.URL, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", contentType)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	return req, nil
}

func (s *Server) decode(t testing.TB, resp *http.Response) *Response {
	t.Helper()
	defer resp.Body.Close()
	var out struct {
		Data   json.RawMessage `json:"data"`
		Errors []Error         `json:"errors"`
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("response is not JSON (status %d): %s", resp.StatusCode, b)
	}
	var n int64
	fmt.Sscan(resp.Header.Get("X-Statements"), &n)
	s.mu.Lock() // parallel subtests may share a Server
	s.Statements = n
	s.mu.Unlock()
	return &Response{Status: resp.StatusCode, Data: out.Data, Errors: out.Errors}
}

// MustData decodes the data of an answer that must have no errors.
func (r *Response) MustData(t testing.TB, into any) {
	t.Helper()
	if len(r.Errors) > 0 {
		t.Fatalf("unexpected errors: %+v", r.Errors)
	}
	if err := json.Unmarshal(r.Data, into); err != nil {
		t.Fatalf("decode data: %v\n%s", err, r.Data)
	}
}

// keepAlive lets the client keep a connection per concurrent caller (net/http keeps two per
// host by default, and closes the others after each request).
func keepAlive(c *http.Client) *http.Client {
	if tr, ok := c.Transport.(*http.Transport); ok {
		tr = tr.Clone()
		tr.MaxIdleConnsPerHost = 256
		c = &http.Client{Transport: tr, Timeout: c.Timeout}
	}
	return c
}

package apple

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// makeTokenFile renders a .vpptoken file the way Apple does.
func makeTokenFile(inner string, exp time.Time, org string) string {
	b, _ := json.Marshal(map[string]string{"token": inner, "expDate": exp.UTC().Format("2006-01-02T15:04:05-0700"), "orgName": org})
	return base64.StdEncoding.EncodeToString(b)
}

// testInner is the inner token of testToken; long and distinctive so that a
// leak is easy to spot.
const testInner = "SECRETINNERtoken0123456789abcdefSECRET"

func testToken(t testing.TB) *Token {
	t.Helper()
	return testTokenWith(t, testInner)
}

// testTokenWith returns a token with the given inner token (distinct tokens
// have distinct fingerprints, hence distinct limiters and holds).
func testTokenWith(t testing.TB, inner string) *Token {
	t.Helper()
	tok, err := ParseToken([]byte(makeTokenFile(inner, time.Now().Add(365*24*time.Hour), "Test Org")), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// recorded is one request seen by the fake server.
type recorded struct {
	Method, Path, Query, Auth, Cookie, ContentType string
	Body                                           []byte
}

// fakeAPI is a programmable stand-in for Apple: handlers per "METHOD /path",
// a service config with a generous request rate, and a log of requests.
type fakeAPI struct {
	t        testing.TB
	srv      *httptest.Server
	mu       sync.Mutex
	reqs     []recorded
	handlers map[string]http.HandlerFunc
	limits   map[string]int
}

func newFake(t testing.TB) *fakeAPI {
	f := &fakeAPI{t: t, handlers: map[string]http.HandlerFunc{},
		limits: map[string]int{"maxAssets": 25, "maxClientUserIds": 1000, "maxSerialNumbers": 1000,
			"maxRevokeClientUserIds": 100, "maxRevokeSerialNumbers": 100, "maxUsers": 100, "maxRequestPerSecond": 10000}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	path := strings.TrimPrefix(r.URL.Path, "/mdm/v2")
	route := r.Method + " " + path
	f.mu.Lock()
	f.reqs = append(f.reqs, recorded{Method: r.Method, Path: path, Query: r.URL.RawQuery, Auth: r.Header.Get("Authorization"),
		Cookie: r.Header.Get("Cookie"), ContentType: r.Header.Get("Content-Type"), Body: body})
	h := f.handlers[route]
	limits := f.limits
	f.mu.Unlock()
	r.Body = io.NopCloser(bytes.NewReader(body))
	if h != nil {
		h(w, r)
		return
	}
	if route == "GET /service/config" {
		writeJSONTest(w, 200, map[string]any{"limits": limits, "urls": map[string]string{}})
		return
	}
	writeJSONTest(w, 404, map[string]any{"errorNumber": 9602, "errorMessage": "no handler for " + route})
}

func (f *fakeAPI) handle(route string, h http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handlers[route] = h
}

// requests returns the requests of a route ("" for all), service config excluded.
func (f *fakeAPI) requests(route string) []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []recorded
	for _, r := range f.reqs {
		rt := r.Method + " " + r.Path
		if (route == "" && rt != "GET /service/config") || rt == route {
			out = append(out, r)
		}
	}
	return out
}

func (f *fakeAPI) client(cfg Config) *Client {
	cfg.BaseURL = f.srv.URL + "/mdm/v2"
	cfg.LookupURL = f.srv.URL + "/lookup"
	if cfg.LookupRequestsPerSecond == 0 {
		cfg.LookupRequestsPerSecond = 10000
	}
	c := New(cfg)
	return c
}

func writeJSONTest(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// respond returns a handler writing a fixed JSON answer.
func respond(status int, v any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { writeJSONTest(w, status, v) }
}

// appleError returns a handler answering an ErrorResponse.
func appleError(status, number int, msg string) http.HandlerFunc {
	return respond(status, map[string]any{"errorNumber": number, "errorMessage": msg})
}

// logCapture returns a logger writing JSON at debug level into a buffer.
func logCapture() (*slog.Logger, *syncBuffer) {
	b := &syncBuffer{}
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// collect drains an iterator into pages, stopping at the first error.
func collect[P any](seq func(func(P, error) bool)) ([]P, error) {
	var out []P
	var err error
	seq(func(p P, e error) bool {
		if e != nil {
			err = e
			return false
		}
		out = append(out, p)
		return true
	})
	return out, err
}

// sprintAll formats v with every common verb.
func sprintAll(v any) string {
	var b strings.Builder
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		fmt.Fprintf(&b, verb+"\n", v)
	}
	return b.String()
}

package applesim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// env is a simulator served over real HTTP with one token.
type env struct {
	t     *testing.T
	sim   *Sim
	srv   *httptest.Server
	token string // token file
}

func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	if opts.EventDelay == 0 {
		opts.EventDelay = 5 * time.Millisecond
	}
	if opts.NotificationRetryBackoff == 0 {
		opts.NotificationRetryBackoff = 5 * time.Millisecond
	}
	sim := New(opts)
	srv := httptest.NewServer(sim)
	t.Cleanup(func() {
		srv.Close()
		sim.Close()
	})
	tok := sim.AddToken(TokenSpec{OrgName: "Test Org", LocationName: "Test Location", Country: "US", UID: "2049025000000001"})
	return &env{t: t, sim: sim, srv: srv, token: tok}
}

// response is a decoded answer.
type response struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

// errNum returns the errorNumber of the body, 0 if none.
func (r response) errNum() int {
	if n, ok := r.body["errorNumber"].(float64); ok {
		return int(n)
	}
	return 0
}

func (r response) str(key string) string {
	s, _ := r.body[key].(string)
	return s
}

func (r response) num(key string) int {
	n, _ := r.body[key].(float64)
	return int(n)
}

// do sends a request with the token file as Bearer (none if token is "") and a JSON body
// (none if body is nil; a string is sent verbatim).
func (e *env) do(method, path, token string, body any) response {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		switch b := body.(type) {
		case string:
			rd = strings.NewReader(b)
		default:
			raw, err := json.Marshal(b)
			if err != nil {
				e.t.Fatal(err)
			}
			rd = bytes.NewReader(raw)
		}
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	return e.send(req)
}

func (e *env) send(req *http.Request) response {
	e.t.Helper()
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	r := response{status: resp.StatusCode, header: resp.Header, raw: raw}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

func (e *env) get(path string) response            { return e.do(http.MethodGet, path, e.token, nil) }
func (e *env) post(path string, body any) response { return e.do(http.MethodPost, path, e.token, body) }

// mustOK fails unless the answer is 200 without an error number.
func (e *env) mustOK(r response) response {
	e.t.Helper()
	if r.status != 200 || r.errNum() != 0 {
		e.t.Fatalf("status %d, body %s", r.status, r.raw)
	}
	return r
}

// waitEvent polls event status until the event is no longer PENDING and returns the status.
func (e *env) waitEvent(token, eventID string) response {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := e.do(http.MethodGet, "/mdm/v2/status?eventId="+eventID, token, nil)
		if r.str("eventStatus") != statusPending {
			return r
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("event %s still pending", eventID)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// manage posts a manage request, expects an eventId and waits for the event.
func (e *env) manage(path string, body any) response {
	e.t.Helper()
	r := e.mustOK(e.post(path, body))
	id := r.str("eventId")
	if id == "" {
		e.t.Fatalf("no eventId in %s", r.raw)
	}
	return e.waitEvent(e.token, id)
}

// waitFor polls cond until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// assetsBody builds a ManageAssetsRequest.
func assetsBody(adamIDs []string, users, serials []string) map[string]any {
	var assets []map[string]string
	for _, id := range adamIDs {
		assets = append(assets, map[string]string{"adamId": id, "pricingParam": "STDQ"})
	}
	b := map[string]any{"assets": assets}
	if users != nil {
		b["clientUserIds"] = users
	}
	if serials != nil {
		b["serialNumbers"] = serials
	}
	return b
}

// stateOf returns the AssetState of an adamId.
func stateOf(t *testing.T, sim *Sim, tok, adamID string) AssetState {
	t.Helper()
	for _, a := range sim.AssetStates(tok) {
		if a.AdamID == adamID {
			return a
		}
	}
	t.Fatalf("asset %s not found", adamID)
	return AssetState{}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func stringsReader(s string) io.Reader { return strings.NewReader(s) }

// fakeClock is a settable clock for Options.Clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func fixedNow() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) }

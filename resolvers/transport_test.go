package resolvers_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
	"orchard/resolvers"
	"orchard/resolvers/gqltest"
)

// TestHTTPConventions: GraphQL over HTTP as the spec says it (the graphql-http audit in CI
// checks the same on the binary): media types, status codes, no data entry on request
// errors, 405 with Allow, 401 with WWW-Authenticate.
func TestHTTPConventions(t *testing.T) {
	t.Parallel()
	d := dbtest.Engines()[0].Open(t) // the transport is the same on every engine
	s := gqltest.New(t, d)
	key := s.Keys[model.RoleAdmin]
	const gqlResp = "application/graphql-response+json"
	tests := []struct {
		name, method, accept, contentType, body, query string // query: the URL's query for GET
		noKey                                          bool
		wantStatus                                     int
		wantMedia                                      string
		wantData                                       bool // a data entry in the body
		wantCode                                       string
		wantHeader                                     [2]string
	}{
		{name: "query", method: "POST", accept: "application/json", body: `{"query":"{ viewer { role } }"}`, wantStatus: 200, wantMedia: "application/json", wantData: true},
		{name: "query, graphql-response", method: "POST", accept: gqlResp, body: `{"query":"{ viewer { role } }"}`, wantStatus: 200, wantMedia: gqlResp, wantData: true},
		{name: "no Accept", method: "POST", body: `{"query":"{ viewer { role } }"}`, wantStatus: 200, wantMedia: "application/json", wantData: true},
		{name: "Accept */*", method: "POST", accept: "*/*", body: `{"query":"{ viewer { role } }"}`, wantStatus: 200, wantMedia: "application/json", wantData: true},
		{name: "Accept text/html only", method: "POST", accept: "text/html", body: `{"query":"{ viewer { role } }"}`, wantStatus: 406, wantMedia: "application/json", wantCode: "NOT_ACCEPTABLE"},
		{name: "parse error, json", method: "POST", accept: "application/json", body: `{"query":"{"}`, wantStatus: 200, wantMedia: "application/json", wantCode: "GRAPHQL_PARSE_FAILED"},
		{name: "parse error, graphql-response", method: "POST", accept: gqlResp, body: `{"query":"{"}`, wantStatus: 400, wantMedia: gqlResp, wantCode: "GRAPHQL_PARSE_FAILED"},
		{name: "validation error, json", method: "POST", accept: "application/json", body: `{"query":"{ nope }"}`, wantStatus: 200, wantMedia: "application/json", wantCode: "GRAPHQL_VALIDATION_FAILED"},
		{name: "validation error, graphql-response", method: "POST", accept: gqlResp, body: `{"query":"{ nope }"}`, wantStatus: 400, wantMedia: gqlResp, wantCode: "GRAPHQL_VALIDATION_FAILED"},
		{name: "variable coercion, json", method: "POST", accept: "application/json", body: `{"query":"query($n: Int!) { devices(first: $n) { totalCount } }","variables":{"n":"x"}}`, wantStatus: 200, wantMedia: "application/json", wantCode: "GRAPHQL_VALIDATION_FAILED"},
		{name: "Int variable", method: "POST", accept: "application/json", body: `{"query":"query($n: Int!) { devices(first: $n) { totalCount } }","variables":{"n":5}}`, wantStatus: 200, wantMedia: "application/json", wantData: true},
		{name: "Int variable over GET", method: "GET", query: "query=" + url.QueryEscape("query($n: Int!) { devices(first: $n) { totalCount } }") + "&variables=" + url.QueryEscape(`{"n":5}`), wantStatus: 200, wantMedia: "application/json", wantData: true},
		{name: "body not JSON", method: "POST", accept: gqlResp, body: `{"query":`, wantStatus: 400, wantMedia: gqlResp, wantCode: "BAD_USER_INPUT"},
		{name: "query not a string", method: "POST", accept: "application/json", body: `{"query":{"a":1}}`, wantStatus: 400, wantMedia: "application/json", wantCode: "BAD_USER_INPUT"},
		{name: "no query", method: "POST", accept: "application/json", body: `{}`, wantStatus: 400, wantMedia: "application/json", wantCode: "BAD_USER_INPUT"},
		{name: "variables not an object", method: "POST", accept: "application/json", body: `{"query":"{ viewer { role } }","variables":"x"}`, wantStatus: 400, wantMedia: "application/json", wantCode: "BAD_USER_INPUT"},
		{name: "form body", method: "POST", accept: "application/json", contentType: "application/x-www-form-urlencoded", body: `query=%7B%7D`, wantStatus: 415, wantMedia: "application/json", wantCode: "UNSUPPORTED_MEDIA_TYPE"},
		{name: "GET query", method: "GET", query: "query=" + url.QueryEscape("{ viewer { role } }"), wantStatus: 200, wantMedia: "application/json", wantData: true},
		{name: "GET mutation", method: "GET", query: "query=" + url.QueryEscape(`mutation { revokeApiKey(input: {id: "x"}) { userErrors { code } } }`), wantStatus: 405, wantMedia: "application/json", wantCode: "METHOD_NOT_ALLOWED", wantHeader: [2]string{"Allow", "POST"}},
		{name: "PUT", method: "PUT", body: `{"query":"{ viewer { role } }"}`, wantStatus: 405, wantMedia: "application/json", wantCode: "METHOD_NOT_ALLOWED", wantHeader: [2]string{"Allow", "GET, POST"}},
		{name: "no key", method: "POST", noKey: true, body: `{"query":"{ viewer { role } }"}`, wantStatus: 401, wantMedia: "application/json", wantCode: "UNAUTHENTICATED", wantHeader: [2]string{"WWW-Authenticate", `Bearer realm="orchard"`}},
		{name: "plain POST subscription", method: "POST", accept: gqlResp, body: `{"query":"subscription { licenseEvents { kind } }"}`, wantStatus: 400, wantMedia: gqlResp, wantCode: "SUBSCRIPTION_NEEDS_STREAM"},
		{name: "plain POST subscription, json", method: "POST", accept: "application/json", body: `{"query":"subscription { licenseEvents { kind } }"}`, wantStatus: 200, wantMedia: "application/json", wantCode: "SUBSCRIPTION_NEEDS_STREAM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := s.URL
			if tt.query != "" {
				u += "?" + tt.query
			}
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			req, _ := http.NewRequest(tt.method, u, body)
			if tt.accept != "" {
				req.Header.Set("Accept", tt.accept)
			}
			if tt.method == "POST" {
				ct := tt.contentType
				if ct == "" {
					ct = "application/json"
				}
				req.Header.Set("Content-Type", ct)
			}
			if !tt.noKey {
				req.Header.Set("Authorization", "Bearer "+key)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			resp, err := http.DefaultClient.Do(req.WithContext(ctx))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var out map[string]json.RawMessage
			if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
				t.Fatalf("body is no JSON object: %v", err)
			}
			var errs []gqltest.Error
			_ = json.Unmarshal(out["errors"], &errs)
			code := ""
			if len(errs) > 0 {
				code = errs[0].Code()
			}
			_, hasData := out["data"]
			media, _, _ := strings.Cut(resp.Header.Get("Content-Type"), ";")
			got := []any{resp.StatusCode, media, hasData, code}
			want := []any{tt.wantStatus, tt.wantMedia, tt.wantData, tt.wantCode}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("status, media, data entry, code mismatch (-want +got):\n%s", diff)
			}
			if h := tt.wantHeader; h[0] != "" && resp.Header.Get(h[0]) != h[1] {
				t.Errorf("%s: %q, want %q", h[0], resp.Header.Get(h[0]), h[1])
			}
		})
	}
}

// TestPersistedQueries: a partner sends the hash alone; the first time it is unknown
// (PERSISTED_QUERY_NOT_FOUND), then hash and document register it, and the hash alone runs it,
// over POST and over GET.
func TestPersistedQueries(t *testing.T) {
	t.Parallel()
	d := dbtest.Engines()[0].Open(t) // the transport is the same on every engine
	s := gqltest.New(t, d)
	key := s.Keys[model.RoleViewer]
	query := "{ viewer { role } }"
	sum := sha256.Sum256([]byte(query))
	ext := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hex.EncodeToString(sum[:])}}
	post := func(body map[string]any) map[string]any {
		t.Helper()
		b, _ := json.Marshal(body)
		resp, err := s.Raw(key, strings.NewReader(string(b)), "application/json")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return out
	}
	errCode := func(out map[string]any) string {
		errs, _ := out["errors"].([]any)
		if len(errs) == 0 {
			return ""
		}
		ext, _ := errs[0].(map[string]any)["extensions"].(map[string]any)
		c, _ := ext["code"].(string)
		return c
	}
	if c := errCode(post(map[string]any{"extensions": ext})); c != "PERSISTED_QUERY_NOT_FOUND" {
		t.Fatalf("unknown hash: code %q, want PERSISTED_QUERY_NOT_FOUND", c)
	}
	if out := post(map[string]any{"query": query, "extensions": ext}); errCode(out) != "" {
		t.Fatalf("register: %v", out)
	}
	want := map[string]any{"viewer": map[string]any{"role": "VIEWER"}}
	if diff := cmp.Diff(want, post(map[string]any{"extensions": ext})["data"]); diff != "" {
		t.Errorf("hash alone over POST mismatch (-want +got):\n%s", diff)
	}
	e, _ := json.Marshal(ext)
	req, _ := http.NewRequest(http.MethodGet, s.URL+"?extensions="+url.QueryEscape(string(e)), nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	if diff := cmp.Diff(want, out["data"]); diff != "" {
		t.Errorf("hash alone over GET mismatch (-want +got):\n%s", diff)
	}
}

// TestSubscriptionOverSSE: a client that cannot open a WebSocket subscribes with
// Server-Sent Events (POST, Accept: text/event-stream) and gets an open event stream (through
// the endpoint's wrappers of the ResponseWriter; its end at shutdown is in TestShutdown).
func TestSubscriptionOverSSE(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		s := gqltest.New(t, d)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, strings.NewReader(`{"query":"subscription { licenseEvents { kind } }"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("Authorization", "Bearer "+s.Keys[model.RoleViewer])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("status %d, Content-Type %q; want 200 text/event-stream", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		line, err := bufio.NewReader(resp.Body).ReadString('\n')
		if err != nil || line != ":\n" {
			t.Fatalf("first line %q, %v; want the stream's opening comment", line, err)
		}
	})
}

// TestResponseSizeLimit: a response larger than Limits.ResponseBytes answers one
// RESPONSE_TOO_LARGE error and no data, over HTTP and over a WebSocket, however large what is
// stored (names longer than anyone should be sent, five aliases of the page); a response
// within it answers its data.
func TestResponseSizeLimit(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		const limit = 4096
		e := newEndpoint(t, d, resolvers.Config{Limits: resolvers.Limits{ResponseBytes: limit}})
		var users []map[string]any
		for i := range 40 {
			users = append(users, map[string]any{"externalId": fmt.Sprintf("u%d", i), "name": strings.Repeat("n", 150)})
		}
		r := e.post(t, e.Keys[model.RoleOperator], `mutation($u: [UserInput!]!) { upsertUsers(input: {users: $u}) { userErrors { code } } }`, map[string]any{"u": users})
		if len(r.Errors) > 0 || strings.Contains(r.Body, `"code"`) {
			t.Fatalf("upsertUsers: %.300s", r.Body)
		}
		key := e.Keys[model.RoleViewer]
		page := `{ users(first: 40) { nodes { name } } }`
		tests := []struct {
			name, query string
			code        string
		}{
			{"within the limit", `{ users(first: 5) { nodes { name } } }`, ""},
			{"over the limit", page, "RESPONSE_TOO_LARGE"},
			{"five aliases", repeat(5, "a%d: users(first: 40) { nodes { name } }"), "RESPONSE_TOO_LARGE"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := e.post(t, key, tt.query, nil)
				got := []any{r.code(), len(r.Errors) <= 1, r.HasData && string(r.Data) != "null"}
				if diff := cmp.Diff([]any{tt.code, true, tt.code == ""}, got); diff != "" {
					t.Errorf("code, one error at most, data mismatch (-want +got):\n%s\n%.300s", diff, r.Body)
				}
				if len(r.Body) > limit {
					t.Errorf("answer of %d bytes, over the limit of %d", len(r.Body), limit)
				}
			})
		}
		t.Run("WebSocket", func(t *testing.T) {
			c := e.dial(t)
			c.mustInit(key)
			if err := c.send("subscribe", "1", map[string]any{"query": page}); err != nil {
				t.Fatal(err)
			}
			m, err := c.read()
			if err != nil {
				t.Fatal(err)
			}
			var p struct {
				Data   json.RawMessage
				Errors []gqltest.Error
			}
			_ = json.Unmarshal(m.Payload, &p)
			if m.Type != "next" || len(p.Errors) != 1 || p.Errors[0].Code() != "RESPONSE_TOO_LARGE" || (len(p.Data) > 0 && string(p.Data) != "null") {
				t.Errorf("over a WebSocket: %s %s; want one RESPONSE_TOO_LARGE and no data", m.Type, m.Payload)
			}
		})
	})
}

// TestSSERevocation: revoking a key ends its event streams (Server-Sent Events) as it closes
// its WebSockets.
func TestSSERevocation(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		e := newEndpoint(t, d, resolvers.Config{})
		key := e.newKey(t, model.RoleViewer)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.URL, strings.NewReader(`{"query":"subscription { licenseEvents { kind } }"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		br := bufio.NewReader(resp.Body)
		if line, err := br.ReadString('\n'); err != nil || line != ":\n" {
			t.Fatalf("first line %q, %v; want the stream's opening comment", line, err)
		}
		revokeThrough(t, e, key)
		rest, err := io.ReadAll(br)
		if err != nil || !strings.Contains(string(rest), "event: complete") {
			t.Errorf("after the revocation the stream went on (%v) or ended without completing: %q", err, rest)
		}
	})
}

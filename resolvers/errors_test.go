package resolvers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
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

// leaks lists what must never reach a client in an error message.
var leaks = []string{"sql", "SQL", "gorm", "sqlite", "mysql", "goroutine", ".go:", "panic", "orch_"}

func checkNoLeak(t *testing.T, msg string) {
	t.Helper()
	for _, l := range leaks {
		if strings.Contains(msg, l) {
			t.Errorf("error message %q reveals %q", msg, l)
		}
	}
}

// TestErrorCodes drives every documented way a request is refused and checks the code and
// that the message reveals nothing internal.
func TestErrorCodes(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		s := gqltest.New(t, d, gqltest.Options{Limits: resolvers.Limits{Complexity: 2000, Depth: 8, Tokens: 5000, BodyBytes: 4096}})
		admin, viewer := s.Keys[model.RoleAdmin], s.Keys[model.RoleViewer]

		// A revoked key.
		var created struct {
			CreateApiKey struct {
				ApiKey struct{ ID string }
				Secret string
			}
		}
		s.Do(t, admin, `mutation { createApiKey(input: {name: "to revoke", role: VIEWER}) { apiKey { id } secret userErrors { code } } }`, nil).MustData(t, &created)
		revoked := created.CreateApiKey.Secret
		if r := s.Do(t, revoked, `{ viewer { role } }`, nil); len(r.Errors) != 0 {
			t.Fatalf("fresh key refused: %+v", r.Errors)
		}
		s.Do(t, admin, `mutation($id: ID!) { revokeApiKey(input: {id: $id}) { userErrors { code } } }`,
			map[string]any{"id": created.CreateApiKey.ApiKey.ID}).MustData(t, &struct{}{})

		deep := "{ licenseAssignments { edges { node { pool { account { licensePools { edges { node { app { licensePools { edges { node { id } } } } } } } } } } } } }"
		tests := []struct {
			name   string
			key    string
			query  string
			status int
			code   string
		}{
			{"no key", "", `{ viewer { role } }`, 401, "UNAUTHENTICATED"},
			{"wrong key", "orch_not-a-key", `{ viewer { role } }`, 401, "UNAUTHENTICATED"},
			{"revoked key", revoked, `{ viewer { role } }`, 401, "UNAUTHENTICATED"},
			{"viewer calls an admin mutation", viewer, `mutation { createApiKey(input: {name: "x", role: ADMIN}) { secret } }`, 200, "FORBIDDEN"},
			{"viewer reads api keys", viewer, `{ apiKeys { totalCount } }`, 200, "FORBIDDEN"},
			{"over the depth limit", viewer, deep, 200, "DEPTH_LIMIT_EXCEEDED"},
			{"over the complexity limit", viewer, `{ licenseAssignments(first: 100) { edges { node { pool { assignments(first: 100) { totalCount } } } } } }`, 200, "COMPLEXITY_LIMIT_EXCEEDED"},
			{"first above the cap", viewer, `{ devices(first: 101) { totalCount } }`, 200, "BAD_USER_INPUT"},
			{"first below one", viewer, `{ devices(first: 0) { totalCount } }`, 200, "BAD_USER_INPUT"},
			{"malformed global id", viewer, `{ account(id: "not-an-id") { name } }`, 200, "BAD_USER_INPUT"},
			{"global id of another type", viewer, fmt.Sprintf(`{ account(id: %q) { name } }`, "RGV2aWNlOjE"), 200, "BAD_USER_INPUT"},
			{"malformed cursor", viewer, `{ devices(after: "zzz") { totalCount } }`, 200, "BAD_USER_INPUT"},
			{"unknown field", viewer, `{ nope }`, 200, "GRAPHQL_VALIDATION_FAILED"},
			{"syntax error", viewer, `{ viewer { `, 200, "GRAPHQL_PARSE_FAILED"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := s.Do(t, tt.key, tt.query, nil)
				if len(r.Errors) == 0 {
					t.Fatalf("no error; data %s", r.Data)
				}
				if diff := cmp.Diff([]any{tt.status, tt.code}, []any{r.Status, r.Errors[0].Code()}); diff != "" {
					t.Errorf("status, code mismatch (-want +got):\n%s\nmessage: %s", diff, r.Errors[0].Message)
				}
				checkNoLeak(t, r.Errors[0].Message)
			})
		}

		t.Run("oversized body", func(t *testing.T) {
			body, _ := json.Marshal(map[string]any{"query": "{ viewer { role } }", "variables": map[string]string{"pad": strings.Repeat("x", 5000)}})
			resp, err := s.Raw(viewer, bytes.NewReader(body), "application/json")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var out struct{ Errors []gqltest.Error }
			if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusRequestEntityTooLarge || len(out.Errors) != 1 || out.Errors[0].Code() != "REQUEST_TOO_LARGE" {
				t.Fatalf("got status %d, errors %+v; want 413 REQUEST_TOO_LARGE", resp.StatusCode, out.Errors)
			}
		})

		t.Run("mutation over GET is refused", func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, s.URL+"?query="+strings.ReplaceAll(`mutation{createApiKey(input:{name:"x",role:ADMIN}){secret}}`, " ", ""), nil)
			req.Header.Set("Authorization", "Bearer "+admin)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
				t.Fatalf("GET mutation answered %d, Allow %q; want 405, Allow: POST", resp.StatusCode, resp.Header.Get("Allow"))
			}
		})

		t.Run("query over GET works", func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, s.URL+"?query=%7Bviewer%7Brole%7D%7D", nil)
			req.Header.Set("Authorization", "Bearer "+viewer)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var out struct {
				Data struct{ Viewer struct{ Role string } }
			}
			json.NewDecoder(resp.Body).Decode(&out)
			if out.Data.Viewer.Role != "VIEWER" {
				t.Fatalf("GET query: status %d, data %+v", resp.StatusCode, out)
			}
		})
	})
}

// TestIntrospectionOff: with introspection off, __schema and __type answer
// INTROSPECTION_DISABLED (not INTERNAL_SERVER_ERROR, and without an ERROR log line), and no
// validation error names what the schema hides ("Did you mean" for fields, arguments, input
// fields, enum values and types). With introspection on, the hints are there (the test sees
// them).
func TestIntrospectionOff(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		off := newEndpoint(t, d, resolvers.Config{Introspection: false})
		on := newEndpoint(t, d, resolvers.Config{Introspection: true})
		tests := []struct {
			name, query string
			role        model.Role
			code        string
			hintWhenOn  bool
		}{
			{name: "__schema", query: `{ __schema { types { name } } }`, code: "INTROSPECTION_DISABLED"},
			{name: "__type", query: `{ __type(name: "Device") { name fields { name } } }`, code: "INTROSPECTION_DISABLED"},
			{name: "__schema in a fragment", query: `{ ...Q } fragment Q on Query { __schema { queryType { name } } }`, code: "INTROSPECTION_DISABLED"},
			{name: "__typename is no introspection", query: `{ viewer { __typename role } }`},
			{name: "field", query: `{ viewer { rol } }`, code: "GRAPHQL_VALIDATION_FAILED"},
			{name: "argument", query: `{ devices(frist: 1) { totalCount } }`, code: "GRAPHQL_VALIDATION_FAILED", hintWhenOn: true},
			{name: "enum value", role: model.RoleAdmin, query: `mutation { createApiKey(input: {name: "x", role: ADMN}) { secret } }`, code: "GRAPHQL_VALIDATION_FAILED", hintWhenOn: true},
			{name: "input field", role: model.RoleAdmin, query: `mutation { createApiKey(input: {nam: "x", role: ADMIN}) { secret } }`, code: "GRAPHQL_VALIDATION_FAILED", hintWhenOn: true},
			{name: "type", query: `{ viewer { ...F } } fragment F on Viewe { role }`, code: "GRAPHQL_VALIDATION_FAILED", hintWhenOn: true},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				role := tt.role
				if role == "" {
					role = model.RoleViewer
				}
				r := off.post(t, off.Keys[role], tt.query, nil)
				if diff := cmp.Diff(tt.code, r.code()); diff != "" {
					t.Errorf("code mismatch (-want +got):\n%s\n%.300s", diff, r.Body)
				}
				if tt.code == "" && len(r.Data) == 0 {
					t.Errorf("no data: %.300s", r.Body)
				}
				for _, e := range r.Errors {
					if strings.Contains(e.Message, "Did you mean") {
						t.Errorf("introspection off, the message hints: %q", e.Message)
					}
					checkNoLeak(t, e.Message)
				}
				if tt.hintWhenOn {
					r := on.post(t, on.Keys[role], tt.query, nil)
					if !strings.Contains(r.Body, "Did you mean") {
						t.Errorf("introspection on: %.300s; want a hint", r.Body)
					}
				}
			})
		}
		if lines := off.errorLines(); len(lines) > 0 {
			t.Errorf("ERROR log lines: %q", lines)
		}
	})
}

// TestRequestErrorsCoded: every way a request is refused before its operation runs answers a
// JSON body whose errors carry extensions.code and a short message of Orchard's: never the
// body sent back, never Go's type names or decoder text.
func TestRequestErrorsCoded(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		e := newEndpoint(t, d, resolvers.Config{})
		key := e.Keys[model.RoleAdmin]
		const secret = "hunter2-in-the-body"
		tests := []struct {
			name, method, body string
			headers            []string
			status             int
			code               string
		}{
			{name: "GET mutation", method: "GET", body: "", headers: nil, status: 405, code: "METHOD_NOT_ALLOWED"},
			{name: "PUT", method: "PUT", body: `{"query":"{ viewer { role } }"}`, status: 405, code: "METHOD_NOT_ALLOWED"},
			{name: "DELETE", method: "DELETE", status: 405, code: "METHOD_NOT_ALLOWED"},
			{name: "PATCH", method: "PATCH", body: `{"query":"{ viewer { role } }"}`, status: 405, code: "METHOD_NOT_ALLOWED"},
			{name: "text/plain", method: "POST", body: `{"query":"{ viewer { role } }"}`, headers: []string{"Content-Type", "text/plain"}, status: 415, code: "UNSUPPORTED_MEDIA_TYPE"},
			{name: "no content type", method: "POST", body: `{"query":"{ viewer { role } }"}`, headers: []string{"Content-Type", ""}, status: 415, code: "UNSUPPORTED_MEDIA_TYPE"},
			{name: "a JSON array", method: "POST", body: `["` + secret + `"]`, status: 400, code: "BAD_USER_INPUT"},
			{name: "broken JSON", method: "POST", body: `{"query": "{ viewer { role } }", "x": "` + secret, status: 400, code: "BAD_USER_INPUT"},
			{name: "query of another type", method: "POST", body: `{"query": ["` + secret + `"]}`, status: 400, code: "BAD_USER_INPUT"},
			{name: "broken JSON, event stream", method: "POST", body: `{"query": "subscription { licenseEvents { kind } }", "x": "` + secret, headers: []string{"Accept", "text/event-stream"}, status: 400, code: "BAD_USER_INPUT"},
			{name: "an Upgrade that is no WebSocket", method: "POST", body: `{"query":"{ viewer { role } }"}`, headers: []string{"Upgrade", "h2c", "Connection", "Upgrade"}, status: 200},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				url := e.URL
				if tt.name == "GET mutation" {
					url += `?query=mutation%7BcreateApiKey(input:%7Bname:%22x%22,role:ADMIN%7D)%7Bsecret%7D%7D`
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				r := e.send(t, ctx, tt.method, url, key, tt.body, tt.headers...)
				if diff := cmp.Diff([]any{tt.status, tt.code}, []any{r.Status, r.code()}); diff != "" {
					t.Errorf("status, code mismatch (-want +got):\n%s\n%.300s", diff, r.Body)
				}
				for _, e := range r.Errors {
					if c, _ := e.Extensions["code"].(string); c == "" {
						t.Errorf("error without a code: %q", e.Message)
					}
					for _, bad := range []string{secret, "Go value", "rawRequest", "unmarshal", "json:", "RawParams"} {
						if strings.Contains(e.Message, bad) {
							t.Errorf("message %q reveals %q", e.Message, bad)
						}
					}
					if len(e.Message) > 300 {
						t.Errorf("message of %d bytes: %.100s…", len(e.Message), e.Message)
					}
				}
				if tt.code == "" && len(r.Data) == 0 {
					t.Errorf("no data: %.300s", r.Body)
				}
			})
		}
	})
}

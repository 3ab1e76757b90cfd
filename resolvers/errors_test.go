package resolvers_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

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

package resolvers_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"orchard/db/dbtest"
	"orchard/model"
	"orchard/resolvers/gqltest"
)

// fuzzInternalText matches what no client may read in an error message: a driver's or the ORM's
// text, a Go type name (package.Type), a source file path, a stack frame. A match that is only
// an echo of the request's own text (a field name the client sent, say) is not a leak.
var fuzzInternalText = regexp.MustCompile(`(?i)\bsql\b|sqlite|mysql|gorm|\bscan\b|goroutine|panic|runtime error|` +
	`\*?\b(?:model|db|graph|resolvers|license|apple|scheduler|gqlgen|ast|gqlerror|json|strconv|time|http)\.[A-Z][A-Za-z0-9]*|` +
	`[A-Za-z0-9_/.-]+\.go(?::\d+)?\b|/(?:root|home|usr|tmp|work)/`)

// internalLeaks returns the internal text of msg that is not in the request.
func internalLeaks(msg, request string) []string {
	var out []string
	for _, m := range fuzzInternalText.FindAllString(msg, -1) {
		if !strings.Contains(strings.ToLower(request), strings.ToLower(m)) {
			out = append(out, m)
		}
	}
	return out
}

// FuzzGraphQL sends documents and variables to the real GraphQL handler over HTTP, against a
// real (seeded) SQLite database, with a VIEWER key. Whatever it sends: no 5xx and no panic, a
// JSON answer whose every error carries extensions.code (and never INTERNAL_SERVER_ERROR,
// which is what a panic or an unmapped error becomes), no internal text in any message, and
// the server still answers a plain query afterwards. Seeds: testdata/fuzz/FuzzGraphQL.
//
//	go test -run '^$' -fuzz FuzzGraphQL -fuzztime 3m -parallel 1 ./resolvers/
func FuzzGraphQL(f *testing.F) {
	d := dbtest.Engines()[0].Open(f)
	gqltest.Seed(f, d, 2, 3, 12)
	s := gqltest.New(f, d)
	key := s.Keys[model.RoleViewer]
	for _, seed := range [][2]string{
		{`{ viewer { role apiKey { name } } }`, ``},
		{`query($f: Int) { accounts(first: $f) { nodes { id name lastError throttledUntil syncRuns(first: 2) { nodes { error } } } } }`, `{"f": 2}`},
		{`{ devices(first: 5) { nodes { serialNumber countryCode osVersion } } }`, ``},
		{`query($s: String!) { device(serialNumber: $s) { id } }`, `{"s": "abc\u0000\u202e<b>"}`},
		{`query($id: ID!) { node(id: $id) { id } }`, `{"id": "QWNjb3VudDo5OTk5OTk5OTk5OTk5OTk5OTk5OTk5"}`},
		{`mutation { upsertDevices(input: {devices: [{serialNumber: "abc1", platform: IOS}]}) { userErrors { code } } }`, ``},
		{`query($f: Int) { accounts(first: $f) { nodes { id } } }`, `{"f": 9223372036854775807}`},
		{`{ __schema { types { name } } }`, ``},
		{`fragment A on Query { viewer { role } } { ...A ...A }`, ``},
		{`{ accounts { nodes { licensePools(first: 100) { nodes { totalCount appleAvailableCount } } } } }`, ``},
		{`query { viewer { role } } query { viewer { role } }`, ``},
		{`{ viewer { role } }`, `[1,2,3]`},
		{`{`, `{"x": {"y": [null, 1e400]}}`},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, query, variables string) {
		req := map[string]any{"query": query}
		if json.Valid([]byte(variables)) {
			req["variables"] = json.RawMessage(variables)
		} else if variables != "" {
			req["variables"] = variables // a string where an object belongs
		}
		body, err := json.Marshal(req)
		if err != nil {
			return // not representable as a request body
		}
		checkAnswer(t, s, key, body, query+" "+variables)
		// Healthy after: a plain query still answers.
		var v struct{ Viewer struct{ Role string } }
		s.Do(t, key, `{ viewer { role } }`, nil).MustData(t, &v)
		if v.Viewer.Role != "VIEWER" {
			t.Fatalf("after the request, viewer.role = %q", v.Viewer.Role)
		}
	})
}

// checkAnswer posts body and asserts the answer's invariants.
func checkAnswer(t *testing.T, s *gqltest.Server, key string, body []byte, request string) {
	t.Helper()
	resp, err := s.Raw(key, bytes.NewReader(body), "application/json")
	if err != nil {
		t.Fatalf("request failed: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read the answer: %v", err)
	}
	if resp.StatusCode >= 500 {
		t.Fatalf("HTTP %d: %s", resp.StatusCode, b)
	}
	var out struct {
		Errors []struct {
			Message    string         `json:"message"`
			Extensions map[string]any `json:"extensions"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("HTTP %d answer is not JSON: %.300s", resp.StatusCode, b)
	}
	for _, e := range out.Errors {
		code, _ := e.Extensions["code"].(string)
		if code == "" || code == string(model.CodeInternal) {
			t.Fatalf("HTTP %d error %q has code %q", resp.StatusCode, e.Message, code)
		}
		if l := internalLeaks(e.Message, request); len(l) > 0 {
			t.Fatalf("error %q shows internal text %q", e.Message, l)
		}
	}
	if resp.StatusCode != http.StatusOK && len(out.Errors) == 0 {
		t.Fatalf("HTTP %d without errors: %.300s", resp.StatusCode, b)
	}
}

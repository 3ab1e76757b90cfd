package resolvers_test

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
	"orchard/resolvers"
)

// costBudget is the work (selections, directives and arguments visited by the checks, see
// Config.CheckWork) any document may cost before it is answered: about what the largest
// document the limits let through costs, however the document is built. Before the checks
// were linear, a fan-out of fragments 8 levels deep cost 10^8 units (28 s).
const costBudget = 5000

// fanOut is a document whose fragments spread the next level's fragment ten times, levels
// deep: under 1 KB, 10^levels fields once expanded.
func fanOut(levels int) string {
	var b strings.Builder
	b.WriteString("query { viewer { ...F0 } }\n")
	for l := range levels {
		fmt.Fprintf(&b, "fragment F%d on Viewer {", l)
		for range 10 {
			if l == levels-1 {
				b.WriteString(" role")
			} else {
				fmt.Fprintf(&b, " ...F%d", l+1)
			}
		}
		b.WriteString(" }\n")
	}
	return b.String()
}

// repeat is "{ " + n times s (with %d replaced by the repetition's number) + " }".
func repeat(n int, s string) string {
	var b strings.Builder
	b.WriteString("{")
	for i := range n {
		b.WriteString(" ")
		b.WriteString(strings.ReplaceAll(s, "%d", fmt.Sprint(i)))
	}
	b.WriteString(" }")
	return b.String()
}

// nested is n fields nested in each other.
func nested(n int) string {
	return strings.Repeat("{ viewer ", n) + strings.Repeat("}", n)
}

// introspectionQuery is GraphiQL's, which must stay well within every limit.
const introspectionQuery = `query IntrospectionQuery {
  __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) { name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } }
}`

// TestCostGuard: hostile documents — fragment fan-out, field repetition, aliases, directives,
// deep nesting, deep variables — are each answered with a coded error within costBudget units
// of the checks' work, and the legitimate documents they resemble are answered with data
// within the same budget. Work is counted, not timed.
func TestCostGuard(t *testing.T) {
	t.Parallel()
	d := dbtest.Engines()[0].Open(t) // the checks run before any database work
	var units atomic.Int64
	e := newEndpoint(t, d, resolvers.Config{Introspection: true, CheckWork: func(n int) { units.Add(int64(n)) }})
	key := e.Keys[model.RoleViewer]
	deepJSON := strings.Repeat("[", 5000) + strings.Repeat("]", 5000)
	tests := []struct {
		name, query string
		vars        map[string]any
		rawVars     string // variables as JSON text, instead of vars
		code        string // "": answered with data
	}{
		{name: "fragment fan-out, 8 levels", query: fanOut(8), code: "SELECTION_LIMIT_EXCEEDED"},
		{name: "fragment fan-out, 2 levels (100 fields)", query: fanOut(2), code: ""},
		{name: "fragment fan-out, 3 levels (1,000 fields in one set)", query: fanOut(3), code: "SELECTION_LIMIT_EXCEEDED"},
		{name: "fragment fan-out, 4 levels", query: fanOut(4), code: "SELECTION_LIMIT_EXCEEDED"},
		{name: "one field 14,000 times", query: repeat(14000, "__typename"), code: "SELECTION_LIMIT_EXCEEDED"},
		{name: "one object 3,000 times", query: repeat(3000, "viewer { role }"), code: "SELECTION_LIMIT_EXCEEDED"},
		{name: "one object 10 times with 190 fields each", query: repeat(10, "viewer {"+strings.Repeat(" role", 190)+" }"), code: "SELECTION_LIMIT_EXCEEDED"},
		{name: "a cycle of fragments", query: "{ viewer { ...A } } fragment A on Viewer { role ...B } fragment B on Viewer { ...A }", code: "SELECTION_LIMIT_EXCEEDED"},
		{name: "2,000 aliases", query: repeat(2000, "a%d: viewer { role }"), code: "SELECTION_LIMIT_EXCEEDED"},
		{name: "aliases of a full page", query: repeat(20, "a%d: devices(first: 100) { nodes { serialNumber assignments(first: 100) { totalCount } } }"), code: "COMPLEXITY_LIMIT_EXCEEDED"},
		{name: "2,000 directives", query: "{ viewer " + strings.Repeat("@skip(if: false) ", 2000) + "{ role } }", code: "SELECTION_LIMIT_EXCEEDED"},
		{name: "5,000 unknown directives", query: "{ viewer " + strings.Repeat("@x ", 5000) + "{ role } }", code: "SELECTION_LIMIT_EXCEEDED"},
		{name: "nested 5,000 deep", query: nested(5000), code: "GRAPHQL_PARSE_FAILED"},
		{name: "nested 900 deep", query: nested(900), code: "GRAPHQL_VALIDATION_FAILED"},
		{name: "valid fields nested 60 deep", query: "{ licensePools { nodes " + strings.Repeat("{ assignments { nodes { pool ", 20) + "{ id }" + strings.Repeat(" } } }", 20) + " } }", code: "DEPTH_LIMIT_EXCEEDED"},
		{name: "nested 20 deep", query: nested(20), code: "GRAPHQL_VALIDATION_FAILED"},
		{name: "deep variables", query: `query($s: [String!]) { devices(serialNumbers: $s) { totalCount } }`, rawVars: `{"s": ` + deepJSON + `}`, code: "GRAPHQL_VALIDATION_FAILED"},
		{name: "variables nested past JSON's depth", query: `query($s: [String!]) { devices(serialNumbers: $s) { totalCount } }`, rawVars: `{"s": ` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`, code: "BAD_USER_INPUT"},
		{name: "introspection query", query: introspectionQuery, code: ""},
		{name: "nested page", query: nestedPage, vars: map[string]any{"first": 100}, code: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			units.Store(0)
			var r *reply
			if tt.rawVars != "" {
				b := fmt.Sprintf(`{"query": %q, "variables": %s}`, tt.query, tt.rawVars)
				r = e.send(t, t.Context(), "POST", e.URL, key, b)
			} else {
				r = e.post(t, key, tt.query, tt.vars)
			}
			if diff := cmp.Diff(tt.code, r.code()); diff != "" {
				t.Errorf("code mismatch (-want +got):\n%s\n%.300s", diff, r.Body)
			}
			if tt.code == "" && (len(r.Errors) > 0 || len(r.Data) == 0) {
				t.Errorf("want data, no errors: %.300s", r.Body)
			}
			n := units.Load()
			if n > costBudget {
				t.Errorf("the checks did %d units of work, more than the budget of %d", n, costBudget)
			}
			t.Logf("%d units", n)
		})
	}
}

// TestCheckStopsWithContext: the checks stop when the operation's context ends (a client gone,
// the time budget spent), after a bounded amount of work, and say so with OPERATION_TIMEOUT;
// an operation whose budget ends while it runs answers OPERATION_TIMEOUT too, without an
// ERROR log line.
func TestCheckStopsWithContext(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		var units atomic.Int64
		e := newEndpoint(t, d, resolvers.Config{Limits: resolvers.Limits{Timeout: time.Nanosecond}, CheckWork: func(n int) { units.Add(int64(n)) }})
		key := e.Keys[model.RoleViewer]

		r := e.post(t, key, repeat(150, "a%d: viewer { role apiKey { id name } }"), nil)
		if diff := cmp.Diff("OPERATION_TIMEOUT", r.code()); diff != "" {
			t.Errorf("checks out of time: code mismatch (-want +got):\n%s\n%.300s", diff, r.Body)
		}
		if n := units.Load(); n > 2*256 {
			t.Errorf("the checks did %d units of work after the context ended; want them to stop at the next look (every 256)", n)
		}

		r = e.post(t, key, `{ devices { totalCount } }`, nil)
		if diff := cmp.Diff("OPERATION_TIMEOUT", r.code()); diff != "" {
			t.Errorf("operation out of time: code mismatch (-want +got):\n%s\n%.300s", diff, r.Body)
		}
		if lines := e.errorLines(); len(lines) > 0 {
			t.Errorf("ERROR log lines: %q", lines)
		}
	})
}

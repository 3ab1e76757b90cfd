package resolvers_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"orchard/db/dbtest"
	"orchard/model"
	"orchard/resolvers/gqltest"
)

// TestBareNestedPageIsTheGraphQLStatements keeps BenchmarkNestedPage honest: its bare side
// must issue the statements the GraphQL request issues — the same SQL (up to the quoting of
// names) with the same arguments, as many of them — or its ratio compares different work.
// A change to what the read path issues for nestedPage fails here until bareNestedPage
// issues the same.
func TestBareNestedPageIsTheGraphQLStatements(t *testing.T) {
	for _, e := range dbtest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			d := e.Open(t)
			gqltest.Seed(t, d, 3, 10, 1000)
			s := gqltest.New(t, d)
			key, vars := s.Keys[model.RoleViewer], map[string]any{"first": 100}
			s.Do(t, key, nestedPage, vars) // as the benchmark does: the key's look-up is cached then
			r, recorded := s.DoRecorded(t, key, nestedPage, vars)
			if len(r.Errors) > 0 {
				t.Fatalf("errors: %+v", r.Errors)
			}
			var got []string
			for _, st := range recorded {
				got = append(got, statementKey(st.SQL, st.Args))
			}
			var want []string
			err := bareNestedPage(context.Background(), d, func(q string, args []any) {
				want = append(want, statementKey(q, args))
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(want) != 6 {
				t.Errorf("bare issued %d statements, want the page's 6", len(want))
			}
			slices.Sort(got)
			slices.Sort(want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("the GraphQL request's statements (+) are not bare's (-):\n%s", diff)
			}
		})
	}
}

// statementKey writes a statement as comparable text: its SQL without the quoting of names
// and with its whitespace collapsed, then its arguments (slices flattened, as a driver
// receives them) in increasing order, since an IN list's order is the map order of whoever
// built it.
func statementKey(query string, args []any) string {
	q := strings.Join(strings.Fields(strings.NewReplacer("`", "", `"`, "").Replace(query)), " ")
	var flat []string
	var add func(v any)
	add = func(v any) {
		rv := reflect.ValueOf(v)
		if rv.Kind() == reflect.Slice && rv.Type().Elem().Kind() != reflect.Uint8 {
			for i := range rv.Len() {
				add(rv.Index(i).Interface())
			}
			return
		}
		flat = append(flat, fmt.Sprintf("%020v", v))
	}
	for _, a := range args {
		add(a)
	}
	slices.Sort(flat)
	return q + " " + strings.Join(flat, ",")
}

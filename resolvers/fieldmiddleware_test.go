package resolvers_test

import (
	"context"
	"sort"
	"sync"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/google/go-cmp/cmp"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
	"orchard/resolvers"
)

// The executor's fast paths (graph/generate) leave plain fields and to-one relations out of
// the field middleware: it sees root fields, fields with arguments, lists and computed
// scalars, and nothing else. The test fails when a fast path stops applying (a field the
// middleware should not see shows up) or applies too widely (one it should see is missing).
func TestFieldMiddlewareSees(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		seedWide(t, d, 3)
		var mu sync.Mutex
		seen := map[string]bool{}
		probe := func(ctx context.Context, next graphql.Resolver) (any, error) {
			fc := graphql.GetFieldContext(ctx)
			mu.Lock()
			seen[fc.Object+"."+fc.Field.Name] = true
			mu.Unlock()
			return next(ctx)
		}
		e := newEndpoint(t, d, resolvers.WithFieldProbe(resolvers.Config{}, probe))
		r := e.post(t, e.Keys[model.RoleViewer], `{
  licenseAssignments(first: 2) { edges { cursor node { id status pool { account { name } app { name } } device { serialNumber user { email } } user { email } } }
    pageInfo { hasNextPage } }
  accounts(first: 2) { nodes { name health claimedBy { id } licensePools(first: 2) { totalCount nodes { id app { soldIn } } } } } }`, nil)
		if len(r.Errors) > 0 || r.Status != 200 {
			t.Fatalf("status %d, errors %+v", r.Status, r.Errors)
		}
		var got []string
		for f := range seen {
			got = append(got, f)
		}
		sort.Strings(got)
		want := []string{
			"Account.health",                   // a computed scalar
			"Account.licensePools",             // arguments
			"App.soldIn",                       // a computed list
			"LicensePoolConnection.totalCount", // computed
			"Query.accounts",                   // roots
			"Query.licenseAssignments",
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("fields the middleware saw mismatch (-want +got):\n%s", diff)
		}
	})
}

package resolvers_test

import (
	"context"
	"encoding/json"
	"testing"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
	"orchard/resolvers"
	"orchard/resolvers/gqltest"
)

// Each operation sent on a WebSocket is resolved with loaders of its own, as each HTTP request
// is: a query on a socket after a change reads the change, not what an earlier query on the
// same socket loaded (the connection carries no loaders of its own).
func TestWebSocketQueriesReadFresh(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		e := newEndpoint(t, d, resolvers.Config{})
		acct := gqltest.Seed(t, d, 1, 1, 1).Accounts[0]
		c := e.dial(t)
		c.mustInit(e.Keys[model.RoleViewer])
		name := func(id string) string {
			t.Helper()
			err := c.send("subscribe", id, map[string]any{
				"query":     `query($id: ID!) { account(id: $id) { name } }`,
				"variables": map[string]any{"id": model.GlobalID("Account", acct.ID)},
			})
			if err != nil {
				t.Fatal(err)
			}
			m, err := c.read()
			if err != nil || m.Type != "next" {
				t.Fatalf("query %s on the socket: %+v, %v", id, m, err)
			}
			var p struct {
				Data struct{ Account struct{ Name string } }
			}
			if err := json.Unmarshal(m.Payload, &p); err != nil {
				t.Fatal(err)
			}
			if m, err := c.read(); err != nil || m.Type != "complete" {
				t.Fatalf("query %s: %+v, %v; want complete", id, m, err)
			}
			return p.Data.Account.Name
		}
		if got := name("1"); got != acct.Name {
			t.Fatalf("first query: name %q, want %q", got, acct.Name)
		}
		if err := d.UpdateAccount(context.Background(), acct.ID, map[string]any{"name": "Renamed"}); err != nil {
			t.Fatal(err)
		}
		if got := name("2"); got != "Renamed" {
			t.Fatalf("second query on the socket: name %q, want %q (loaders kept from the first?)", got, "Renamed")
		}
	})
}

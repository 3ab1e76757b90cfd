package license_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
	"orchard/resolvers"
	"orchard/resolvers/gqltest"
)

// The licenseEvents subscription over WebSocket (gqlgen's graphql-transport-ws protocol): an
// API key in connection_init, then a subscriber sees an assignment go PENDING → ASSIGNED (even
// when Apple confirms it before the feed looks again).

// wsMessage is a graphql-transport-ws message.
type wsMessage struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

type licenseEvent struct {
	Kind       string
	Assignment *struct{ ID, Status string }
	SyncRun    *struct {
		ID, Status string
		Account    *struct{ Name string }
	}
}

// wsEndpoint serves the GraphQL endpoint over the stack's database and service the way
// server.go does (the request log wrapping the handler), for WebSocket clients: the stack's
// own endpoint counts statements through a ResponseWriter that cannot be hijacked.
func wsEndpoint(t *testing.T, st *gqltest.Stack) string {
	t.Helper()
	h := resolvers.NewHandler(resolvers.Config{DB: st.DB, License: st.License, Auth: resolvers.NewAuthenticator(st.DB, db.Now), Log: dbtest.Quiet()})
	srv := httptest.NewServer(resolvers.RequestLog(dbtest.Quiet(), "graphql", h))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// subscribe opens a WebSocket to base with key and subscribes to licenseEvents of an account;
// the events arrive on the returned channel, which is closed when the connection ends.
func subscribe(t *testing.T, base, key, acct string) (<-chan licenseEvent, error) {
	t.Helper()
	return subscribeTo(t, base, key, `subscription($a: ID) { licenseEvents(accountId: $a) { kind assignment { id status } syncRun { id status } } }`, acct)
}

// subscribeTo is subscribe with a subscription document of the caller's, taking the account
// as $a.
func subscribeTo(t *testing.T, base, key, query, acct string) (<-chan licenseEvent, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	url := base + "/graphql"
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		cancel()
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { cancel(); c.CloseNow() })
	write := func(m wsMessage) error {
		b, _ := json.Marshal(m)
		wctx, wcancel := context.WithTimeout(ctx, waitLong)
		defer wcancel()
		return c.Write(wctx, websocket.MessageText, b)
	}
	read := func() (wsMessage, error) {
		var m wsMessage
		_, b, err := c.Read(ctx)
		if err != nil {
			return m, err
		}
		return m, json.Unmarshal(b, &m)
	}
	init, _ := json.Marshal(map[string]any{"Authorization": "Bearer " + key})
	if err := write(wsMessage{Type: "connection_init", Payload: init}); err != nil {
		t.Fatal(err)
	}
	ack, err := read()
	if err != nil {
		return nil, err
	}
	if ack.Type != "connection_ack" {
		return nil, &wsError{ack}
	}
	sub, _ := json.Marshal(map[string]any{
		"query":     query,
		"variables": map[string]any{"a": acct},
	})
	if err := write(wsMessage{ID: "1", Type: "subscribe", Payload: sub}); err != nil {
		t.Fatal(err)
	}
	out := make(chan licenseEvent, 1000)
	go func() {
		defer close(out)
		for {
			m, err := read()
			if err != nil {
				return
			}
			switch m.Type {
			case "ping":
				_ = write(wsMessage{Type: "pong"})
			case "next":
				var p struct {
					Data   struct{ LicenseEvents licenseEvent }
					Errors []gqltest.Error
				}
				if err := json.Unmarshal(m.Payload, &p); err != nil || len(p.Errors) > 0 {
					t.Errorf("subscription message %s: %v", m.Payload, err)
					return
				}
				out <- p.Data.LicenseEvents
			case "error", "complete":
				t.Errorf("subscription ended: %s %s", m.Type, m.Payload)
				return
			}
		}
	}()
	return out, nil
}

type wsError struct{ m wsMessage }

func (e *wsError) Error() string { return "refused: " + e.m.Type + " " + string(e.m.Payload) }

func TestLicenseEventsSubscription(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, gqltest.StackOptions{}, app("9301"))
		e.upsertDevices(iPad("S1"))
		ws := wsEndpoint(t, e.st)

		// Without a valid key the connection is refused.
		if _, err := subscribe(t, ws, "orch_not-a-key", e.acct); err == nil {
			t.Error("a subscription with a bad key was accepted")
		}

		events, err := subscribe(t, ws, e.st.Keys[model.RoleViewer], e.acct)
		if err != nil {
			t.Fatal(err)
		}
		// The server starts the feed at some point after the subscribe message: ask for passes
		// until one shows, and the feed is known to be live.
		admin := e.st.Keys[model.RoleAdmin]
		deadline := time.Now().Add(waitLong)
	live:
		for {
			if time.Now().After(deadline) {
				t.Fatal("no event from the subscription")
			}
			e.st.Do(t, admin, `mutation($id: ID!) { syncAccount(input: {accountId: $id}) { userErrors { code } } }`, map[string]any{"id": e.acct}).MustData(t, &struct{}{})
			select {
			case ev, ok := <-events:
				if !ok {
					t.Fatal("subscription closed")
				}
				if ev.Kind == "SYNC_RUN" && ev.SyncRun != nil {
					break live
				}
			case <-time.After(3 * time.Second):
			}
		}

		id := e.assignOK(deviceLicense("9301", "S1"))
		var seen []string
		timeout := time.After(waitLong)
		for len(seen) == 0 || seen[len(seen)-1] != "ASSIGNED" {
			select {
			case ev, ok := <-events:
				if !ok {
					t.Fatalf("subscription closed; seen %v", seen)
				}
				if ev.Kind == "ASSIGNMENT" && ev.Assignment != nil && ev.Assignment.ID == id {
					if len(seen) == 0 || seen[len(seen)-1] != ev.Assignment.Status {
						seen = append(seen, ev.Assignment.Status)
					}
				}
			case <-timeout:
				t.Fatalf("the assignment's events did not arrive; seen %v", seen)
			}
		}
		if diff := cmp.Diff([]string{"PENDING", "ASSIGNED"}, seen); diff != "" {
			t.Errorf("states streamed mismatch (-want +got):\n%s", diff)
		}
	})
}

// Each event of a subscription is resolved with loaders of its own, as each HTTP request is:
// the nested fields of an event (here a sync run's account) are read fresh, not served from
// what an earlier event on the same WebSocket connection loaded.
func TestSubscriptionEventsReadNestedFieldsFresh(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, gqltest.StackOptions{}, app("9311"))
		ws := wsEndpoint(t, e.st)
		events, err := subscribeTo(t, ws, e.st.Keys[model.RoleViewer],
			`subscription($a: ID) { licenseEvents(accountId: $a) { kind syncRun { id status account { name } } } }`, e.acct)
		if err != nil {
			t.Fatal(err)
		}
		admin := e.st.Keys[model.RoleAdmin]
		// runName asks for passes until a finished one streams, and returns the name of its
		// account as the event carries it.
		runName := func() string {
			t.Helper()
			deadline := time.Now().Add(waitLong)
			for {
				if time.Now().After(deadline) {
					t.Fatal("no finished sync run from the subscription")
				}
				e.st.Do(t, admin, `mutation($id: ID!) { syncAccount(input: {accountId: $id}) { userErrors { code } } }`, map[string]any{"id": e.acct}).MustData(t, &struct{}{})
				wait := time.After(3 * time.Second)
				for {
					select {
					case ev, ok := <-events:
						if !ok {
							t.Fatal("subscription closed")
						}
						if ev.Kind == "SYNC_RUN" && ev.SyncRun != nil && ev.SyncRun.Status == "SUCCEEDED" && ev.SyncRun.Account != nil {
							return ev.SyncRun.Account.Name
						}
						continue
					case <-wait:
					}
					break
				}
			}
		}
		if got := runName(); got != "Main" {
			t.Fatalf("first event: account name %q, want %q", got, "Main")
		}
		accts, err := d.ListLiveAccounts(context.Background())
		if err != nil || len(accts) != 1 {
			t.Fatalf("accounts %v %v", accts, err)
		}
		if err := d.UpdateAccount(context.Background(), accts[0].ID, map[string]any{"name": "Renamed"}); err != nil {
			t.Fatal(err)
		}
		// An event written to the socket before the rename may still be unread: allow two of
		// those, then the name must be the new one.
		for i := 0; ; i++ {
			got := runName()
			if got == "Renamed" {
				break
			}
			if got != "Main" || i == 2 {
				t.Fatalf("after the rename: account name %q in the event, want %q (loaders kept from an earlier event?)", got, "Renamed")
			}
		}
	})
}

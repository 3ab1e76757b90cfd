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
	SyncRun    *struct{ ID, Status string }
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
		"query":     `subscription($a: ID) { licenseEvents(accountId: $a) { kind assignment { id status } syncRun { id status } } }`,
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

package resolvers_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/license"
	"orchard/model"
	"orchard/resolvers"
	"orchard/resolvers/gqltest"
)

// closing is a close code and whether the reason holds a phrase.
type closing struct {
	Code   int
	Reason bool
}

// TestWebSocketInit: a connection_init without a valid key closes the socket with 4401 (never
// 1000, which a client reads as a normal end), one that never comes with 4408.
func TestWebSocketInit(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		e := newEndpoint(t, d, resolvers.Config{Limits: resolvers.Limits{WSInitTimeout: 200 * time.Millisecond}})
		revoked := e.newKey(t, model.RoleViewer)
		revokeThrough(t, e, revoked)
		tests := []struct {
			name   string
			init   bool
			key    string
			first  string // a raw first message instead
			phrase string
			want   closing
		}{
			{name: "no key", init: true, phrase: "unauthenticated", want: closing{4401, true}},
			{name: "unknown key", init: true, key: "orch_nope", phrase: "unauthenticated", want: closing{4401, true}},
			{name: "revoked key", init: true, key: revoked, phrase: "unauthenticated", want: closing{4401, true}},
			{name: "no connection_init", phrase: "connection_init", want: closing{4408, true}},
			{name: "subscribe first", first: `{"type":"subscribe","id":"1","payload":{"query":"{ viewer { role } }"}}`, phrase: "connection_init", want: closing{4401, true}},
			{name: "payload no object", first: `{"type":"connection_init","payload":"Bearer x"}`, phrase: "invalid", want: closing{4400, true}},
			{name: "no JSON", first: `connection_init`, phrase: "decoding", want: closing{4400, true}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				c := e.dial(t)
				if tt.first != "" {
					if err := c.c.Write(t.Context(), websocket.MessageText, []byte(tt.first)); err != nil {
						t.Fatal(err)
					}
				}
				if tt.init {
					if m, err := c.init(tt.key); err == nil {
						t.Fatalf("connection_init answered %+v; want the socket closed", m)
					}
				}
				code, reason := c.closed()
				got := closing{code, strings.Contains(reason, tt.phrase)}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("close (reason %q) mismatch (-want +got):\n%s", reason, diff)
				}
			})
		}
	})
}

// revokeKey revokes the key whose secret is given, through the service (as another replica
// or the command line would: this endpoint's Authenticator is not told).
func revokeKey(t *testing.T, e *endpoint, secret string) int64 {
	t.Helper()
	k, err := e.Auth.Authenticate(context.Background(), "Bearer "+secret)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.License.RevokeAPIKey(context.Background(), license.SystemActor, k.ID); err != nil {
		t.Fatal(err)
	}
	return k.ID
}

// TestWebSocketRevocation: revoking a key ends its sockets with 4403: at once when revoked
// through the endpoint (a subscription, a socket between operations), and when revoked
// elsewhere (another replica, the command line) at the next re-check; the socket of another
// key stays open and keeps working.
func TestWebSocketRevocation(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		e := newEndpoint(t, d, resolvers.Config{})

		// Two sockets of one key: one subscribed, one idle after a query; a third of another key.
		victim := e.newKey(t, model.RoleViewer)
		sub, idle, other := e.dial(t), e.dial(t), e.dial(t)
		sub.mustInit(victim)
		idle.mustInit(victim)
		other.mustInit(e.Keys[model.RoleViewer])
		if err := sub.send("subscribe", "1", map[string]any{"query": "subscription { licenseEvents { kind } }"}); err != nil {
			t.Fatal(err)
		}
		if err := idle.send("subscribe", "1", map[string]any{"query": "{ viewer { role } }"}); err != nil {
			t.Fatal(err)
		}
		if m, err := idle.read(); err != nil || m.Type != "next" {
			t.Fatalf("query on the socket: %+v, %v", m, err)
		}

		// Revoked through the endpoint: the sockets close at once (the re-check says "no
		// longer valid", the revocation "revoked").
		revokeThrough(t, e, victim)
		for name, c := range map[string]*wsClient{"subscribed": sub, "idle": idle} {
			code, reason := c.closed()
			if diff := cmp.Diff(closing{4403, true}, closing{code, strings.Contains(reason, "was revoked")}); diff != "" {
				t.Errorf("%s socket: close (reason %q) mismatch (-want +got):\n%s", name, reason, diff)
			}
		}

		// The other key's socket still answers.
		if err := other.send("subscribe", "2", map[string]any{"query": "{ viewer { role } }"}); err != nil {
			t.Fatal(err)
		}
		if m, err := other.read(); err != nil || m.Type != "next" || !strings.Contains(string(m.Payload), "VIEWER") {
			t.Fatalf("other key's socket: %+v, %v", m, err)
		}

		// Revoked elsewhere: the periodic re-check (or the next operation) closes the socket.
		elsewhere := e.newKey(t, model.RoleViewer)
		c := e.dial(t)
		c.mustInit(elsewhere)
		revokeKey(t, e, elsewhere)
		code, reason := c.closed()
		if diff := cmp.Diff(closing{4403, true}, closing{code, strings.Contains(reason, "no longer valid")}); diff != "" {
			t.Errorf("key revoked elsewhere: close (reason %q) mismatch (-want +got):\n%s", reason, diff)
		}
	})
}

// revokeThrough revokes the key whose secret is given with the endpoint's revokeApiKey.
func revokeThrough(t *testing.T, e *endpoint, secret string) {
	t.Helper()
	r := e.post(t, e.Keys[model.RoleAdmin], `mutation($id: ID!) { revokeApiKey(input: {id: $id}) { userErrors { code } } }`,
		map[string]any{"id": keyID(t, e, secret)})
	if len(r.Errors) > 0 {
		t.Fatalf("revoke: %+v", r.Errors)
	}
}

// keyID is the global id of the key whose secret is given.
func keyID(t *testing.T, e *endpoint, secret string) string {
	t.Helper()
	r := e.post(t, secret, `{ viewer { apiKey { id } } }`, nil)
	var out struct {
		Viewer struct{ APIKey struct{ ID string } }
	}
	if len(r.Errors) > 0 || json.Unmarshal(r.Data, &out) != nil || out.Viewer.APIKey.ID == "" {
		t.Fatalf("viewer's key: %s %+v", r.Data, r.Errors)
	}
	return out.Viewer.APIKey.ID
}

// TestWebSocketCaps: at most WSPerAddress sockets per remote address (before authentication)
// and WSPerKey per key are open at once; one more is closed with 4429 and a reason naming the
// cap, and a socket that ends makes room.
func TestWebSocketCaps(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		t.Run("per key", func(t *testing.T) {
			e := newEndpoint(t, d, resolvers.Config{Limits: resolvers.Limits{WSPerKey: 2}})
			key := e.Keys[model.RoleViewer]
			a, b := e.dial(t), e.dial(t)
			a.mustInit(key)
			b.mustInit(key)
			third := e.dial(t)
			if m, err := third.init(key); err == nil {
				t.Fatalf("third socket of the key: %+v; want it closed", m)
			}
			code, reason := third.closed()
			if diff := cmp.Diff(closing{4429, true}, closing{code, strings.Contains(reason, "API key")}); diff != "" {
				t.Errorf("third socket: close (reason %q) mismatch (-want +got):\n%s", reason, diff)
			}
			e.dial(t).mustInit(e.Keys[model.RoleAdmin]) // another key is not counted
			a.c.Close(1000, "")
			waitReplaced(t, e, key)
		})
		t.Run("no cap", func(t *testing.T) {
			e := newEndpoint(t, d, resolvers.Config{Limits: resolvers.Limits{WSPerAddress: -1, WSPerKey: -1}})
			key := e.Keys[model.RoleViewer]
			for range resolvers.DefaultLimits.WSPerAddress + 1 {
				e.dial(t).mustInit(key)
			}
		})
		t.Run("per address", func(t *testing.T) {
			e := newEndpoint(t, d, resolvers.Config{Limits: resolvers.Limits{WSPerAddress: 2}})
			a := e.dial(t)
			e.dial(t)
			code, reason := e.dial(t).closed()
			if diff := cmp.Diff(closing{4429, true}, closing{code, strings.Contains(reason, "address")}); diff != "" {
				t.Errorf("third socket: close (reason %q) mismatch (-want +got):\n%s", reason, diff)
			}
			a.c.Close(1000, "")
			a.closed()
			// Room again once the server has seen the end (a socket dialled meanwhile is refused).
			for {
				c := e.dial(t)
				if m, err := c.init(e.Keys[model.RoleViewer]); err == nil && m.Type == "connection_ack" {
					break
				}
			}
		})
	})
}

// waitReplaced dials sockets of key until one is accepted (the server sees a closed socket end
// a moment after the client does).
func waitReplaced(t *testing.T, e *endpoint, key string) {
	t.Helper()
	for {
		c := e.dial(t)
		m, err := c.init(key)
		if err == nil && m.Type == "connection_ack" {
			return
		}
		if code, _ := c.closed(); code != 4429 {
			t.Fatalf("socket refused with %d, want 4429 until there is room", code)
		}
	}
}

// TestWebSocketErrorsCoded: what a socket answers an operation it cannot run carries a code
// too: a subscribe whose payload is no JSON object (gqlgen's own answer is an uncoded "invalid
// json"), a document that does not validate, one over the limits, one for introspection.
func TestWebSocketErrorsCoded(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		e := newEndpoint(t, d, resolvers.Config{})
		tests := []struct {
			name    string
			payload any
			code    string
		}{
			{"payload no object", "not an object", "BAD_USER_INPUT"},
			{"query of another type", map[string]any{"query": 5}, "BAD_USER_INPUT"},
			{"invalid document", map[string]any{"query": "{ nope }"}, "GRAPHQL_VALIDATION_FAILED"},
			{"over the limits", map[string]any{"query": repeat(300, "a%d: viewer { role }")}, "SELECTION_LIMIT_EXCEEDED"},
			{"introspection", map[string]any{"query": "{ __schema { queryType { name } } }"}, "INTROSPECTION_DISABLED"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				c := e.dial(t)
				c.mustInit(e.Keys[model.RoleViewer])
				if err := c.send("subscribe", "1", tt.payload); err != nil {
					t.Fatal(err)
				}
				m, err := c.read()
				if err != nil {
					t.Fatal(err)
				}
				var errs []gqltest.Error
				if m.Type == "next" {
					var p struct{ Errors []gqltest.Error }
					_ = json.Unmarshal(m.Payload, &p)
					errs = p.Errors
				} else {
					_ = json.Unmarshal(m.Payload, &errs)
				}
				if len(errs) == 0 || errs[0].Code() != tt.code {
					t.Errorf("%s %s; want code %s", m.Type, m.Payload, tt.code)
				}
			})
		}
	})
}

package resolvers_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
	"orchard/resolvers"
	"orchard/resolvers/gqltest"
)

// A licenseEvents subscriber over a WebSocket that falls behind its events (here: a bulk
// change of 60 assignments against a buffer of 4) gets, after what it had taken, one error
// message for its operation with code SUBSCRIBER_TOO_SLOW, and the socket stays usable.
func TestSubscriberTooSlowOverWebSocket(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		f := gqltest.Seed(t, d, 1, 1, 60)
		// A minute for the socket to take its error before it is closed (10 s by default):
		// what is tested is the error, and a loaded machine may take seconds to write it.
		e := newEndpoint(t, d, resolvers.WithFeed(resolvers.Config{}, 20*time.Millisecond, 4, 0, time.Minute))
		c := e.dial(t)
		c.mustInit(e.Keys[model.RoleViewer])
		if err := c.send("subscribe", "1", map[string]any{"query": "subscription { licenseEvents { kind assignment { id status } } }"}); err != nil {
			t.Fatal(err)
		}
		// The subscription has read its start (no message says so; the hub replays what it fanned
		// out in the last 2 s to a subscriber that registers late, not what came before its start).
		time.Sleep(time.Second)
		ids := make([]int64, len(f.Assignments))
		for i, a := range f.Assignments {
			ids[i] = a.ID
		}
		if _, err := d.ApplyTransitions(context.Background(), model.EventReclaimAsked, ids, db.TransitionDetails{ReclaimReason: "test", ReclaimedBy: "test"}); err != nil {
			t.Fatal(err)
		}
		next := 0
		for {
			m, err := c.read()
			if err != nil {
				t.Fatalf("after %d events the socket ended: %v; want an error message", next, err)
			}
			if m.Type == "next" {
				next++
				continue
			}
			if m.Type != "error" || m.ID != "1" {
				t.Fatalf("after %d events: %s %s; want the operation's error", next, m.Type, m.Payload)
			}
			var errs []struct {
				Message    string
				Extensions map[string]any
			}
			if err := json.Unmarshal(m.Payload, &errs); err != nil || len(errs) != 1 || errs[0].Extensions["code"] != "SUBSCRIBER_TOO_SLOW" {
				t.Fatalf("error payload %s (%v); want one SUBSCRIBER_TOO_SLOW", m.Payload, err)
			}
			break
		}
		if next >= len(ids) {
			t.Errorf("%d events before the error: the subscriber was not dropped early", next)
		}
		// The socket goes on: a query on it is answered.
		if err := c.send("subscribe", "2", map[string]any{"query": "{ viewer { role } }"}); err != nil {
			t.Fatal(err)
		}
		if m, err := c.read(); err != nil || m.Type != "next" || !strings.Contains(string(m.Payload), "VIEWER") {
			t.Fatalf("query after the drop: %+v, %v", m, err)
		}
	})
}

package license_test

import (
	"testing"
	"time"

	"orchard/apple/applesim"
	"orchard/db"
	"orchard/db/dbtest"
	"orchard/resolvers/gqltest"
)

// Done means 4 (R3): intents for an account Apple asked to wait (503 with Retry-After) are
// accepted, and once the hold is known their payload says until when; nothing reaches that
// account before Apple's time (the simulator's request log, with no slack), and every intent
// completes after it by itself.
func TestIntentsHeldUntilRetryAfter(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, gqltest.StackOptions{}, app("9001", total(20)))
		e.upsertDevices(iPad("H1"), iPad("H2"), iPad("H3"), iPad("H4"), iPad("H5"), iPad("H6"))

		const retryAfter = 2 * time.Second
		e.st.Sim.SetFault(e.tok, applesim.Fault{Kind: applesim.FaultUnavailable503, RetryAfterSeconds: int(retryAfter / time.Second), Count: 1})
		// The first intent meets the 503 when it is sent: it is accepted before the hold is known.
		first := e.assign(deviceLicense("9001", "H1"))
		if first.Assignment == nil || first.Assignment.Status != "PENDING" {
			t.Fatalf("first intent: %s", gqltest.JSON(first))
		}
		var until time.Time
		gqltest.WaitFor(t, "the hold", waitLong, func() bool {
			var out struct {
				Account struct{ ThrottledUntil *time.Time }
			}
			e.do(`query($id: ID!) { account(id: $id) { throttledUntil } }`, map[string]any{"id": e.acct}, &out)
			if out.Account.ThrottledUntil != nil {
				until = *out.Account.ThrottledUntil
			}
			return out.Account.ThrottledUntil != nil
		})
		if first.HeldUntil != nil && !first.HeldUntil.Equal(until) {
			t.Errorf("first intent: heldUntil %s, the hold is until %s", first.HeldUntil, until)
		}
		ids := []string{first.Assignment.ID}
		// Intents while the hold is known carry it.
		for _, s := range []string{"H2", "H3", "H4"} {
			p := e.assign(deviceLicense("9001", s))
			if p.Assignment == nil || len(p.UserErrors) > 0 {
				t.Fatalf("intent for %s refused: %+v", s, p.UserErrors)
			}
			if p.HeldUntil == nil || !p.HeldUntil.Equal(until) {
				if time.Now().Before(until) {
					t.Errorf("intent for %s during the hold: heldUntil %v, want %s", s, p.HeldUntil, until)
				}
			}
			ids = append(ids, p.Assignment.ID)
		}
		var bulk struct {
			AssignLicenses struct {
				Results []struct {
					Assignment *struct{ ID string }
					UserErrors []userError
				}
			}
		}
		e.do(`mutation { assignLicenses(input: {adamId: "9001", kind: DEVICE, targets: [{serialNumber: "H5"}, {serialNumber: "H6"}]}) {
			results { assignment { id } userErrors { code message } } } }`, nil, &bulk)
		for i, r := range bulk.AssignLicenses.Results {
			if r.Assignment == nil {
				t.Fatalf("bulk intent %d refused: %+v", i, r.UserErrors)
			}
			ids = append(ids, r.Assignment.ID)
		}

		// All complete after the hold, by themselves.
		for _, id := range ids {
			e.waitStatus(id, "ASSIGNED")
		}
		// Nothing reached the account between the throttled answer and Apple's time.
		var throttled *applesim.Request
		reqs := e.st.Sim.RequestsFor(e.tok)
		for i, r := range reqs {
			if r.Status == 503 {
				if throttled != nil {
					t.Fatalf("two throttled answers: %+v and %+v", *throttled, r)
				}
				throttled = &reqs[i]
			}
		}
		if throttled == nil {
			t.Fatal("no throttled answer in the request log")
		}
		end := throttled.Time.Add(retryAfter)
		associates := 0
		for _, r := range reqs {
			if r.Time.After(throttled.Time) && r.Time.Before(end) {
				t.Errorf("%s %s reached the held account %s before the hold's end (%s)", r.Method, r.Path, r.Time.Sub(throttled.Time), retryAfter)
			}
			if r.Method == "POST" && r.Path == "/mdm/v2/assets/associate" && r.Status == 200 {
				associates++
				if r.Time.Before(end) {
					t.Errorf("an associate was accepted %s after the throttled answer, before the hold's end", r.Time.Sub(throttled.Time))
				}
			}
		}
		if associates == 0 {
			t.Error("no associate accepted after the hold")
		}
		e.assertInSync(e.tok, e.acct)
	})
}

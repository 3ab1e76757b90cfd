package scheduler_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"orchard/apple/applesim"
	"orchard/db"
	"orchard/model"
	"orchard/resolvers/gqltest"
)

// Done means 3 (R12): a token that expired, was revoked, is refused, or was claimed by another
// manager is shown as such after a pass, the change is audited, nothing more is written to
// Apple for it, and its stored data stays readable; renewing the token (or taking the account
// back) makes it ACTIVE again.
func TestTokenHealth(t *testing.T) {
	t.Parallel()
	onEngines(t, func(t *testing.T, d *db.DB) {
		st := newStack(t, d, gqltest.StackOptions{})
		cases := []struct {
			name    string
			breakIt func(sim *applesim.Sim, tok string)
			health  string
			// repair undoes the breakage at Apple's side (a new token from Apple Business
			// Manager, in real life); nil for an account claimed elsewhere, which is taken
			// back with takeOverAccount instead.
			repair func(sim *applesim.Sim, tok string)
		}{
			{
				name:    "expired at Apple",
				breakIt: func(sim *applesim.Sim, tok string) { sim.SetExpiresAt(tok, time.Now().Add(-time.Hour)) },
				health:  "EXPIRED",
				repair:  func(sim *applesim.Sim, tok string) { sim.SetExpiresAt(tok, time.Now().AddDate(2, 0, 0)) },
			},
			{
				name:    "revoked",
				breakIt: func(sim *applesim.Sim, tok string) { sim.SetRevoked(tok, true) },
				health:  "REVOKED",
				repair:  func(sim *applesim.Sim, tok string) { sim.SetRevoked(tok, false) },
			},
			{
				name: "invalid, 9622 with HTTP 200",
				breakIt: func(sim *applesim.Sim, tok string) {
					sim.SetFault(tok, applesim.Fault{Kind: applesim.FaultInvalidToken})
				},
				health: "INVALID",
				repair: func(sim *applesim.Sim, tok string) { sim.ClearFaults(tok) },
			},
			{
				name: "invalid, 9622 with HTTP 401",
				breakIt: func(sim *applesim.Sim, tok string) {
					sim.SetFault(tok, applesim.Fault{Kind: applesim.FaultInvalidToken, InvalidTokenHTTP401: true})
				},
				health: "INVALID",
				repair: func(sim *applesim.Sim, tok string) { sim.ClearFaults(tok) },
			},
			{
				name:    "claimed elsewhere",
				breakIt: func(sim *applesim.Sim, tok string) { sim.SetMDMInfo(tok, "rival-7", "Rival MDM", "3.2") },
				health:  "CLAIMED_ELSEWHERE",
			},
		}
		g := gen(st.Sim, len(cases), 31)
		names := make([]string, len(cases))
		for i, c := range cases {
			names[i] = c.name
		}
		concurrently(t, names, func(t *testing.T, i int) {
			c, tok := cases[i], g.TokenFiles[i]
			id := addSynced(t, st, c.name, tok)
			poolsBefore, holdersBefore := orchardPoolCounts(t, st, id), orchardHolders(t, st, id)

			broken := time.Now()
			c.breakIt(st.Sim, tok)
			r := waitRun(t, st, syncAccount(t, st, id, "FULL").ID)
			if r.Status != "FAILED" {
				t.Errorf("pass of a %s account ended %s, want FAILED", c.health, r.Status)
			}
			acc := account(t, st, id)
			if acc.Health != c.health || acc.LastError == nil {
				t.Fatalf("health %s (lastError %v), want %s", acc.Health, acc.LastError, c.health)
			}
			if c.health == "CLAIMED_ELSEWHERE" {
				if acc.ClaimedBy == nil || acc.ClaimedBy.ID != "rival-7" || acc.ClaimedBy.Name != "Rival MDM" {
					t.Errorf("claimedBy = %+v, want rival-7 Rival MDM", acc.ClaimedBy)
				}
			} else if acc.ClaimedBy != nil {
				t.Errorf("claimedBy = %+v for a %s account", acc.ClaimedBy, c.health)
			}
			checkHealthAudited(t, st, id, "ACTIVE", c.health)

			if w := writes(requestsSince(st.Sim, tok, broken)); len(w) > 0 {
				t.Errorf("writes to Apple for a %s account: %v", c.health, w)
			}
			// The stored data stays readable, as it was.
			if diff := cmp.Diff(poolsBefore, orchardPoolCounts(t, st, id)); diff != "" {
				t.Errorf("pools changed (-before +after):\n%s", diff)
			}
			if diff := cmp.Diff(holdersBefore, orchardHolders(t, st, id)); diff != "" {
				t.Errorf("assignments changed (-before +after):\n%s", diff)
			}

			if c.repair == nil {
				takeOver(t, st, id, tok)
				return
			}
			// A new token makes the account usable again, and a full pass follows.
			c.repair(st.Sim, tok)
			start := time.Now()
			if ues := renew(t, st, id, reencode(t, tok, time.Now().AddDate(2, 0, 0))); len(ues) > 0 {
				t.Fatalf("renewAccountToken refused: %+v", ues)
			}
			if h := account(t, st, id).Health; h != "ACTIVE" {
				t.Errorf("health after renewAccountToken = %s, want ACTIVE", h)
			}
			checkHealthAudited(t, st, id, c.health, "ACTIVE")
			waitFullPass(t, st, id, start)
			checkMatchesSim(t, st, id, tok)
		})
	})
}

// takeOver checks takeOverAccount on an account claimed by "Rival MDM": without confirm it
// only names the other manager; with confirm it claims the account back and a full pass runs.
func takeOver(t *testing.T, st *gqltest.Stack, id, tok string) {
	t.Helper()
	type payload struct {
		Account         *accountView
		PreviousManager *struct{ ID, Name string }
		TookOver        bool
		UserErrors      []userError
	}
	call := func(confirm bool) payload {
		var out struct{ TakeOverAccount payload }
		st.Do(t, st.Keys[model.RoleAdmin], `mutation($in: TakeOverAccountInput!) { takeOverAccount(input: $in) {
  account { `+accountFields+` } previousManager { id name } tookOver userErrors { code message field } } }`,
			map[string]any{"in": map[string]any{"accountId": id, "confirm": confirm}}).MustData(t, &out)
		if len(out.TakeOverAccount.UserErrors) > 0 {
			t.Fatalf("takeOverAccount(confirm: %v) refused: %+v", confirm, out.TakeOverAccount.UserErrors)
		}
		return out.TakeOverAccount
	}

	// A look first: who holds it; nothing changes, nothing is written.
	before := time.Now()
	p := call(false)
	if p.TookOver || p.PreviousManager == nil || p.PreviousManager.ID != "rival-7" || p.PreviousManager.Name != "Rival MDM" {
		t.Errorf("takeOverAccount without confirm: tookOver %v previousManager %+v", p.TookOver, p.PreviousManager)
	}
	if p.Account == nil || p.Account.Health != "CLAIMED_ELSEWHERE" || account(t, st, id).Health != "CLAIMED_ELSEWHERE" {
		t.Errorf("takeOverAccount without confirm changed the health: %+v", p.Account)
	}
	if mid, _, _ := st.Sim.MDMInfo(tok); mid != "rival-7" {
		t.Errorf("takeOverAccount without confirm changed Apple's mdmInfo to %q", mid)
	}
	if w := writes(requestsSince(st.Sim, tok, before)); len(w) > 0 {
		t.Errorf("takeOverAccount without confirm wrote to Apple: %v", w)
	}

	// Meanwhile the other manager pointed Apple's notifications at itself and changed things
	// at Apple (Orchard hears nothing of it); taking over shows them.
	st.Sim.SetNotificationConfig(tok, "https://rival.example/notify", "rival-secret", []string{"ASSET_MANAGEMENT"})
	a := st.Sim.Assignments(tok)[0]
	if err := st.Sim.RemoveAssignment(tok, a.AdamID, a.SerialNumber, a.ClientUserID); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	p = call(true)
	if !p.TookOver || p.Account == nil || p.Account.Health != "ACTIVE" || p.Account.ClaimedBy != nil {
		t.Errorf("takeOverAccount with confirm: tookOver %v account %+v", p.TookOver, p.Account)
	}
	if mid, name, _ := st.Sim.MDMInfo(tok); mid == "rival-7" || name != "Orchard" {
		t.Errorf("after takeOverAccount, Apple's mdmInfo = %q %q, want Orchard's", mid, name)
	}
	if url, _ := st.Sim.NotificationConfig(tok); !strings.HasPrefix(url, st.BaseURL+"/apple/notifications/") {
		t.Errorf("after takeOverAccount, Apple notifies %q, want Orchard", url)
	}
	checkHealthAudited(t, st, id, "CLAIMED_ELSEWHERE", "ACTIVE")
	if n := len(auditEvents(t, st, id, "account.take_over")); n != 1 {
		t.Errorf("%d account.take_over audit events, want 1", n)
	}
	waitFullPass(t, st, id, start)
	checkMatchesSim(t, st, id, tok)
}

// checkHealthAudited requires an account.health_changed audit event from → to.
func checkHealthAudited(t testing.TB, st *gqltest.Stack, id, from, to string) {
	t.Helper()
	evs := auditEvents(t, st, id, "account.health_changed")
	for _, e := range evs {
		var d struct{ From, To string }
		if err := json.Unmarshal([]byte(e.Details), &d); err != nil {
			t.Fatalf("audit details %q: %v", e.Details, err)
		}
		if d.From == from && d.To == to {
			if !strings.Contains(e.Message, to) {
				t.Errorf("audit message %q does not name %s", e.Message, to)
			}
			return
		}
	}
	t.Errorf("no account.health_changed audit event %s → %s among %+v", from, to, evs)
}

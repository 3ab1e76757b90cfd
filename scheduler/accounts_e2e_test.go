package scheduler_test

import (
	"encoding/base64"
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

// Done means 1: addAccount with a simulator token, the first sync, and then Orchard's picture
// of the account — every pool's counts, every assignment's holder — equals the simulator's.
func TestAddAccountMirrorsApple(t *testing.T) {
	t.Parallel()
	onEngines(t, func(t *testing.T, d *db.DB) {
		// Small pages, so that the pass reads several pages of each listing.
		st := newStack(t, d, gqltest.StackOptions{Sim: applesim.Options{PageSize: 50}})
		g := st.Sim.Generate(applesim.GenSpec{Tokens: 1, AppsPerToken: 12, AssignmentsPerToken: 240, Seed: 11, Countries: []string{"US", "GB"}})
		tok, want := g.TokenFiles[0], g.Tokens[0]
		// A refund, so that Apple's retired count is not zero everywhere.
		refundOne(t, st.Sim, tok)

		start := time.Now()
		a, ues := addAccount(t, st, "Main school", tok, false)
		if len(ues) > 0 || a == nil {
			t.Fatalf("addAccount refused: %+v", ues)
		}
		// The account answers with what the token file and Apple's client config say.
		type identity struct {
			Name, OrgName, LocationName, CountryCode, AppleUID, Health string
			TokenExpiresAt                                             time.Time
			NotificationsEnabled                                       bool
		}
		wantID := identity{Name: "Main school", OrgName: want.OrgName, LocationName: want.LocationName, CountryCode: want.Country,
			AppleUID: want.UID, Health: "ACTIVE", TokenExpiresAt: want.ExpiresAt.UTC(), NotificationsEnabled: true}
		gotID := identity{a.Name, a.OrgName, a.LocationName, a.CountryCode, a.AppleUID, a.Health, a.TokenExpiresAt.UTC(), a.NotificationsEnabled}
		if diff := cmp.Diff(wantID, gotID); diff != "" {
			t.Errorf("added account mismatch (-want +got):\n%s", diff)
		}
		if a.SyncStatus != "NEVER" && a.SyncStatus != "RUNNING" {
			t.Errorf("a new account's syncStatus = %s, want NEVER (or RUNNING)", a.SyncStatus)
		}
		// The claim (R12): the simulator names Orchard as the account's manager.
		if id, name, _ := st.Sim.MDMInfo(tok); id == "" || name != "Orchard" {
			t.Errorf("Apple's mdmInfo after addAccount = %q %q, want Orchard's claim", id, name)
		}

		waitSynced(t, st, a.ID, start)
		checkMatchesSim(t, st, a.ID, tok)

		// The first pass is recorded with what it read and added.
		rs := runs(t, st, a.ID)
		if len(rs) == 0 {
			t.Fatal("no sync run recorded")
		}
		if len(rs) != 1 {
			t.Errorf("%d sync runs after the first pass, want 1 (the first pass runs once): %+v", len(rs), rs)
		}
		first := rs[0]
		assets, assigns, users := len(st.Sim.AssetStates(tok)), len(st.Sim.Assignments(tok)), activeUsers(st.Sim, tok)
		wantPages := pagesOf(assets, 50) + pagesOf(assigns, 50) + pagesOf(users, 50)
		type runSummary struct {
			Kind, Trigger, Status                 string
			Pages, ItemsSeen, Added, Changed, Rem int
		}
		if diff := cmp.Diff(runSummary{"FULL", "ACCOUNT_ADDED", "SUCCEEDED", wantPages, assets + assigns + users, assets + assigns + users, 0, 0},
			runSummary{first.Kind, first.Trigger, first.Status, first.Pages, first.ItemsSeen, first.Added, first.Changed, first.Removed}); diff != "" {
			t.Errorf("first sync run mismatch (-want +got):\n%s", diff)
		}
		if first.FinishedAt == nil || first.FinishedAt.Before(first.StartedAt) {
			t.Errorf("first run's finishedAt = %v, startedAt %v", first.FinishedAt, first.StartedAt)
		}

		// Freshness.
		acc := account(t, st, a.ID)
		if acc.SyncStatus != "OK" || acc.LastSyncedAt == nil || acc.LastFullSyncAt == nil || acc.NextSyncAt == nil || acc.DataAge == nil {
			t.Fatalf("after the first pass: syncStatus %s lastSyncedAt %v lastFullSyncAt %v nextSyncAt %v dataAge %v",
				acc.SyncStatus, acc.LastSyncedAt, acc.LastFullSyncAt, acc.NextSyncAt, acc.DataAge)
		}
		if !acc.NextSyncAt.After(*acc.LastSyncedAt) {
			t.Errorf("nextSyncAt %v is not after lastSyncedAt %v", acc.NextSyncAt, acc.LastSyncedAt)
		}
		if *acc.DataAge < 0 || *acc.DataAge > int(time.Since(start).Seconds())+1 {
			t.Errorf("dataAge = %d s, the pass finished less than %s ago", *acc.DataAge, time.Since(start))
		}

		// A second full pass over unchanged data changes nothing and still matches.
		again := syncAndWait(t, st, a.ID, "FULL")
		if again.Added != 0 || again.Changed != 0 || again.Removed != 0 || again.ItemsSeen != first.ItemsSeen {
			t.Errorf("a pass over unchanged data: added %d changed %d removed %d itemsSeen %d (first pass saw %d)",
				again.Added, again.Changed, again.Removed, again.ItemsSeen, first.ItemsSeen)
		}
		checkMatchesSim(t, st, a.ID, tok)
	})
}

// The account mutations' refusals, and what each accepted mutation does.
func TestAccountMutations(t *testing.T) {
	t.Parallel()
	onEngines(t, func(t *testing.T, d *db.DB) {
		st := newStack(t, d, gqltest.StackOptions{
			Scheduler: fastSchedule(),
		})
		g := gen(st.Sim, 2, 12)
		tokA, tokB := g.TokenFiles[0], g.TokenFiles[1]
		idA := addSynced(t, st, "A", tokA)

		t.Run("refusals of addAccount", func(t *testing.T) {
			expired := st.Sim.AddToken(applesim.TokenSpec{OrgName: "Old Org", ExpiresAt: time.Now().Add(-48 * time.Hour)})
			unknown := tokenFile(t, "bm90LWEtcmVhbC10b2tlbg", time.Now().AddDate(1, 0, 0), "Nobody")
			cases := []struct {
				name, token string
				want        []string
			}{
				{"garbage", "this is not a token file", []string{"INVALID_TOKEN"}},
				{"well-formed but unknown to Apple", unknown, []string{"INVALID_TOKEN"}},
				{"expired token file", expired, []string{"TOKEN_EXPIRED"}},
				{"same location twice", tokA, []string{"DUPLICATE_ACCOUNT"}},
				{"same location, the file encoded anew", reencode(t, tokA, time.Now().AddDate(2, 0, 0)), []string{"DUPLICATE_ACCOUNT"}},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					a, ues := addAccount(t, st, "refused", c.token, false)
					if diff := cmp.Diff(c.want, codes(ues)); diff != "" || a != nil {
						t.Errorf("userErrors codes mismatch (-want +got):\n%s\naccount: %+v, errors %+v", diff, a, ues)
					}
				})
			}
			if n := len(accountsList(t, st)); n != 1 {
				t.Errorf("after refusals there are %d accounts, want 1", n)
			}
		})

		t.Run("claimed elsewhere, then taken over", func(t *testing.T) {
			st.Sim.SetMDMInfo(tokB, "other-mdm-42", "Other MDM", "9.1")
			a, ues := addAccount(t, st, "B", tokB, false)
			if diff := cmp.Diff([]string{"ACCOUNT_CLAIMED_ELSEWHERE"}, codes(ues)); diff != "" || a != nil {
				t.Fatalf("userErrors codes mismatch (-want +got):\n%s", diff)
			}
			if !strings.Contains(ues[0].Message, "Other MDM") {
				t.Errorf("the refusal does not name the other manager: %q", ues[0].Message)
			}
			if id, _, _ := st.Sim.MDMInfo(tokB); id != "other-mdm-42" {
				t.Errorf("a refused add changed Apple's mdmInfo to %q", id)
			}
			start := time.Now()
			a, ues = addAccount(t, st, "B", tokB, true)
			if len(ues) > 0 || a == nil {
				t.Fatalf("addAccount with takeOver refused: %+v", ues)
			}
			if id, name, _ := st.Sim.MDMInfo(tokB); id == "other-mdm-42" || name != "Orchard" {
				t.Errorf("after takeOver, Apple's mdmInfo = %q %q, want Orchard's", id, name)
			}
			waitSynced(t, st, a.ID, start)
			checkMatchesSim(t, st, a.ID, tokB)
			if got := account(t, st, a.ID).Health; got != "ACTIVE" {
				t.Errorf("health after takeOver = %s, want ACTIVE", got)
			}
			if n := len(auditEvents(t, st, a.ID, "account.add")); n != 1 {
				t.Errorf("%d account.add audit events, want 1", n)
			}
		})

		t.Run("renewAccountToken", func(t *testing.T) {
			other := st.Sim.AddToken(applesim.TokenSpec{OrgName: "Other Org", LocationName: "Elsewhere"})
			if ues := renew(t, st, idA, other); !cmp.Equal(codes(ues), []string{"INVALID_INPUT"}) {
				t.Errorf("renew with another location's token: userErrors %+v, want INVALID_INPUT", ues)
			}
			// The same location's new token: a new file that expires later (Apple issues it
			// with a new expiry, which its answers then carry).
			later := time.Now().AddDate(3, 0, 0).UTC().Truncate(time.Second)
			st.Sim.SetExpiresAt(tokA, later)
			start := time.Now()
			if ues := renew(t, st, idA, reencode(t, tokA, later)); len(ues) > 0 {
				t.Fatalf("renew with a new token of the same location refused: %+v", ues)
			}
			acc := account(t, st, idA)
			if !acc.TokenExpiresAt.Equal(later) || acc.Health != "ACTIVE" {
				t.Errorf("after renew: tokenExpiresAt %v health %s, want %v ACTIVE", acc.TokenExpiresAt, acc.Health, later)
			}
			// A renewal queues a full pass.
			waitSynced(t, st, idA, start)
			checkMatchesSim(t, st, idA, tokA)
		})

		t.Run("syncAccount", func(t *testing.T) {
			for _, kind := range []string{"FULL", "INCREMENTAL"} {
				r := syncAccount(t, st, idA, kind)
				if r.Status != "QUEUED" || r.Trigger != "MANUAL" || r.Kind != kind {
					t.Errorf("syncAccount answered %s %s %s, want QUEUED MANUAL %s", r.Status, r.Trigger, r.Kind, kind)
				}
				if r = waitRun(t, st, r.ID); r.Status != "SUCCEEDED" || r.Kind != kind {
					t.Errorf("the %s run ended %s (%s): %v", kind, r.Status, r.Kind, deref(r.Error))
				}
			}
		})

		t.Run("removeAccount", func(t *testing.T) {
			var out struct {
				RemoveAccount struct {
					Account        *accountView
					ReclaimsQueued int
					UserErrors     []userError
				}
			}
			st.Do(t, st.Keys[model.RoleAdmin], `mutation($in: RemoveAccountInput!) { removeAccount(input: $in) { account { `+accountFields+` } reclaimsQueued userErrors { code message field } } }`,
				map[string]any{"in": map[string]any{"accountId": idA, "reclaimLicenses": false}}).MustData(t, &out)
			if len(out.RemoveAccount.UserErrors) > 0 || out.RemoveAccount.Account == nil || out.RemoveAccount.Account.RemovedAt == nil {
				t.Fatalf("removeAccount: %+v", out.RemoveAccount)
			}
			removed := time.Now()
			// A pass that was under way when the account was removed may still finish; wait
			// for it, then give the scheduler many incremental intervals to (wrongly) sync.
			var quiet time.Time
			waitFor(t, "no pass of the removed account running", waitLong, func() bool {
				for _, r := range runs(t, st, idA) {
					if r.Status == "RUNNING" || r.Status == "QUEUED" {
						return false
					}
				}
				quiet = time.Now()
				return true
			})
			time.Sleep(3 * fastSchedule().IncrementalInterval)
			if reqs := requestsSince(st.Sim, tokA, quiet); len(reqs) > 0 {
				t.Errorf("%d requests for the removed account after it was removed (at %s), first %+v", len(reqs), removed.Format(time.RFC3339Nano), reqs[0])
			}
			// Its record and history stay readable; it is no longer listed nor syncable.
			acc := account(t, st, idA)
			if acc.RemovedAt == nil {
				t.Error("removed account shows no removedAt")
			}
			if len(assignments(t, st, idA)) == 0 {
				t.Error("the removed account's assignments are no longer readable")
			}
			for _, a := range accountsList(t, st) {
				if a == idA {
					t.Error("the removed account is still listed by accounts")
				}
			}
			var sync struct {
				SyncAccount struct{ UserErrors []userError }
			}
			st.Do(t, st.Keys[model.RoleAdmin], `mutation($in: SyncAccountInput!) { syncAccount(input: $in) { userErrors { code message field } } }`,
				map[string]any{"in": map[string]any{"accountId": idA}}).MustData(t, &sync)
			if !cmp.Equal(codes(sync.SyncAccount.UserErrors), []string{"NOT_FOUND"}) {
				t.Errorf("syncAccount of a removed account: %+v, want NOT_FOUND", sync.SyncAccount.UserErrors)
			}
			if n := len(auditEvents(t, st, idA, "account.remove")); n != 1 {
				t.Errorf("%d account.remove audit events, want 1", n)
			}
			// The location is free again.
			id := addSynced(t, st, "A again", tokA)
			checkMatchesSim(t, st, id, tokA)
		})
	})
}

// fastSchedule is a scheduler configuration with passes due every second, so that a test
// sees quickly what the scheduler would (wrongly) do.
func fastSchedule() schedulerConfig {
	return schedulerConfig{IncrementalInterval: time.Second, SyncInterval: 10 * time.Second, Jitter: 0.01}
}

func renew(t testing.TB, st *gqltest.Stack, gid, tok string) []userError {
	t.Helper()
	var out struct {
		RenewAccountToken struct {
			Account    *accountView
			UserErrors []userError
		}
	}
	st.Do(t, st.Keys[model.RoleAdmin], `mutation($in: RenewAccountTokenInput!) { renewAccountToken(input: $in) { account { id } userErrors { code message field } } }`,
		map[string]any{"in": map[string]any{"accountId": gid, "token": tok}}).MustData(t, &out)
	return out.RenewAccountToken.UserErrors
}

func accountsList(t testing.TB, st *gqltest.Stack) []string {
	t.Helper()
	var out struct {
		Accounts struct{ Nodes []struct{ ID string } }
	}
	st.Do(t, st.Keys[model.RoleViewer], `{ accounts(first: 100) { nodes { id } } }`, nil).MustData(t, &out)
	var ids []string
	for _, n := range out.Accounts.Nodes {
		ids = append(ids, n.ID)
	}
	return ids
}

// tokenFile renders a content token file.
func tokenFile(t testing.TB, secret string, exp time.Time, org string) string {
	t.Helper()
	b, err := json.Marshal(map[string]string{"token": secret, "expDate": exp.UTC().Format("2006-01-02T15:04:05Z0700"), "orgName": org})
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// reencode returns a new file for the same token (the same inner token, so the same Apple
// location) with another expiry date.
func reencode(t testing.TB, file string, exp time.Time) string {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(file)
	if err != nil {
		t.Fatal(err)
	}
	var f struct{ Token, OrgName string }
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	return tokenFile(t, f.Token, exp, f.OrgName)
}

// refundOne refunds one license of a paid asset with a license to spare.
func refundOne(t testing.TB, sim *applesim.Sim, tok string) applesim.AssetState {
	t.Helper()
	for _, a := range sim.AssetStates(tok) {
		if !a.Unlimited && a.Available > 0 {
			if err := sim.PurchasePricing(tok, a.AdamID, a.PricingParam, -1); err != nil {
				t.Fatal(err)
			}
			return a
		}
	}
	t.Fatal("no asset with a license to spare")
	return applesim.AssetState{}
}

func activeUsers(sim *applesim.Sim, tok string) int {
	n := 0
	for _, u := range sim.Users(tok) {
		if u.Status == "Registered" || u.Status == "Associated" {
			n++
		}
	}
	return n
}

func pagesOf(n, size int) int {
	if n == 0 {
		return 1
	}
	return (n + size - 1) / size
}

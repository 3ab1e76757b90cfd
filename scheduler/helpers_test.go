package scheduler_test

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"orchard/apple/applesim"
	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
	"orchard/resolvers/gqltest"
	"orchard/scheduler"
)

type schedulerConfig = scheduler.Config

// Helpers of the scheduler's end-to-end tests: everything goes through GraphQL over HTTP (the
// way an admin console would see Orchard) and is compared with the simulator's own state.

// waitLong bounds every wait for background work: generous, for a loaded 2-core machine
// running the race detector. Tests never assert how fast something happens, only that it does.
const waitLong = 30 * time.Second

// pollEvery is how often waits look again (each look is a GraphQL request or two).
const pollEvery = 100 * time.Millisecond

// accountView is what an account shows through GraphQL.
type accountView struct {
	ID, Name, OrgName, LocationName, CountryCode, AppleUID, WebsiteURL string
	TokenExpiresAt                                                     time.Time
	Health                                                             string
	ClaimedBy                                                          *struct{ ID, Name string }
	LastError                                                          *string
	ThrottledUntil                                                     *time.Time
	NotificationsEnabled                                               bool
	SyncStatus                                                         string
	LastSyncedAt, LastFullSyncAt, NextSyncAt, RemovedAt                *time.Time
	DataAge                                                            *int
}

const accountFields = `id name orgName locationName countryCode appleUid websiteUrl tokenExpiresAt health
  claimedBy { id name } lastError throttledUntil notificationsEnabled syncStatus lastSyncedAt lastFullSyncAt
  nextSyncAt dataAge removedAt`

func account(t testing.TB, st *gqltest.Stack, gid string) accountView {
	t.Helper()
	var out struct{ Account *accountView }
	st.Do(t, st.Keys[model.RoleViewer], `query($id: ID!) { account(id: $id) { `+accountFields+` } }`,
		map[string]any{"id": gid}).MustData(t, &out)
	if out.Account == nil {
		t.Fatalf("account %s not found", gid)
	}
	return *out.Account
}

// poolView is one pool's counts, keyed like the simulator's assets.
type poolView struct {
	AdamID, PricingParam                                  string
	TotalCount, AssignedCount, ReservedCount              int
	AppleAssignedCount, AppleAvailableCount, RetiredCount int
	Unlimited, DeviceAssignable, Revocable                bool
	GoneAtAppleAt                                         *time.Time
}

func pools(t testing.TB, st *gqltest.Stack, gid string) []poolView {
	t.Helper()
	var all []poolView
	var after *string
	for {
		var out struct {
			Account struct {
				LicensePools struct {
					PageInfo struct {
						HasNextPage bool
						EndCursor   *string
					}
					Nodes []poolView
				}
			}
		}
		st.Do(t, st.Keys[model.RoleViewer], `query($id: ID!, $after: String) { account(id: $id) { licensePools(first: 100, after: $after) {
  pageInfo { hasNextPage endCursor }
  nodes { adamId pricingParam totalCount assignedCount reservedCount appleAssignedCount appleAvailableCount retiredCount
    unlimited deviceAssignable revocable goneAtAppleAt } } } }`, map[string]any{"id": gid, "after": after}).MustData(t, &out)
		all = append(all, out.Account.LicensePools.Nodes...)
		if !out.Account.LicensePools.PageInfo.HasNextPage {
			break
		}
		after = out.Account.LicensePools.PageInfo.EndCursor
	}
	slices.SortFunc(all, func(a, b poolView) int {
		return strings.Compare(a.AdamID+"/"+a.PricingParam, b.AdamID+"/"+b.PricingParam)
	})
	return all
}

// poolCounts is what both sides count for an asset: Apple's counts as Orchard stored them,
// Orchard's own count of the licenses held, and the asset's properties.
type poolCounts struct {
	Asset                             string
	Total, Assigned, Available        int
	Retired, HeldPerOrchard, Reserved int
	Unlimited, DeviceAssignable       bool
	Revocable                         bool
}

// simPoolCounts is the simulator's side: what Orchard should show after a pass.
func simPoolCounts(sim *applesim.Sim, tok string) []poolCounts {
	var out []poolCounts
	for _, a := range sim.AssetStates(tok) {
		out = append(out, poolCounts{Asset: a.AdamID + "/" + a.PricingParam, Total: a.Total, Assigned: a.Assigned,
			Available: a.Available, Retired: a.Retired, HeldPerOrchard: a.Assigned, Unlimited: a.Unlimited,
			DeviceAssignable: a.DeviceAssignable, Revocable: a.Revocable})
	}
	slices.SortFunc(out, func(a, b poolCounts) int { return strings.Compare(a.Asset, b.Asset) })
	return out
}

// orchardPoolCounts is Orchard's side, read through GraphQL; pools found gone at Apple are
// left out (the simulator no longer lists them).
func orchardPoolCounts(t testing.TB, st *gqltest.Stack, gid string) []poolCounts {
	t.Helper()
	var out []poolCounts
	for _, p := range pools(t, st, gid) {
		if p.GoneAtAppleAt != nil {
			continue
		}
		out = append(out, poolCounts{Asset: p.AdamID + "/" + p.PricingParam, Total: p.TotalCount, Assigned: p.AppleAssignedCount,
			Available: p.AppleAvailableCount, Retired: p.RetiredCount, HeldPerOrchard: p.AssignedCount, Reserved: p.ReservedCount,
			Unlimited: p.Unlimited, DeviceAssignable: p.DeviceAssignable, Revocable: p.Revocable})
	}
	return out
}

// assignmentView is one assignment as GraphQL shows it.
type assignmentView struct {
	ID, Kind, Status, Origin   string
	SerialNumber, ClientUserID *string
	Pool                       struct{ AdamID, PricingParam string }
	AssignedAt                 *time.Time
	RemovedAtAppleAt           *time.Time
}

func assignments(t testing.TB, st *gqltest.Stack, gid string, status ...string) []assignmentView {
	t.Helper()
	var all []assignmentView
	var after *string
	vars := map[string]any{"id": gid}
	if len(status) > 0 {
		vars["status"] = status
	}
	for {
		vars["after"] = after
		var out struct {
			Account struct {
				LicenseAssignments struct {
					PageInfo struct {
						HasNextPage bool
						EndCursor   *string
					}
					Nodes []assignmentView
				}
			}
		}
		st.Do(t, st.Keys[model.RoleViewer], `query($id: ID!, $after: String, $status: [AssignmentStatus!]) { account(id: $id) {
  licenseAssignments(first: 100, after: $after, status: $status) {
    pageInfo { hasNextPage endCursor }
    nodes { id kind status origin serialNumber clientUserId pool { adamId pricingParam } assignedAt removedAtAppleAt } } } }`,
			vars).MustData(t, &out)
		all = append(all, out.Account.LicenseAssignments.Nodes...)
		if !out.Account.LicenseAssignments.PageInfo.HasNextPage {
			break
		}
		after = out.Account.LicenseAssignments.PageInfo.EndCursor
	}
	return all
}

// holder names an assignment the way Apple identifies it: asset and device or user.
type holder struct{ Asset, Serial, User, Status string }

func (h holder) key() string { return h.Asset + "|" + h.Serial + "|" + h.User }

func sortHolders(hs []holder) []holder {
	slices.SortFunc(hs, func(a, b holder) int { return strings.Compare(a.key(), b.key()) })
	return hs
}

// simHolders is the simulator's assignments, each as Orchard should show it: ASSIGNED.
func simHolders(sim *applesim.Sim, tok string) []holder {
	var out []holder
	for _, a := range sim.Assignments(tok) {
		out = append(out, holder{Asset: a.AdamID + "/" + a.PricingParam, Serial: a.SerialNumber, User: a.ClientUserID, Status: "ASSIGNED"})
	}
	return sortHolders(out)
}

// orchardHolders is Orchard's assignments that hold a license (status ASSIGNED).
func orchardHolders(t testing.TB, st *gqltest.Stack, gid string) []holder {
	t.Helper()
	var out []holder
	for _, a := range assignments(t, st, gid, "ASSIGNED") {
		out = append(out, toHolder(a))
	}
	return sortHolders(out)
}

func toHolder(a assignmentView) holder {
	h := holder{Asset: a.Pool.AdamID + "/" + a.Pool.PricingParam, Status: a.Status}
	if a.SerialNumber != nil {
		h.Serial = *a.SerialNumber
	}
	if a.ClientUserID != nil {
		h.User = *a.ClientUserID
	}
	return h
}

// checkMatchesSim fails the test unless every pool's counts and every assignment's holder
// equal the simulator's state.
func checkMatchesSim(t testing.TB, st *gqltest.Stack, gid, tok string) {
	t.Helper()
	if diff := cmp.Diff(simPoolCounts(st.Sim, tok), orchardPoolCounts(t, st, gid)); diff != "" {
		t.Errorf("pools mismatch (-want simulator +got Orchard):\n%s", diff)
	}
	if diff := cmp.Diff(simHolders(st.Sim, tok), orchardHolders(t, st, gid)); diff != "" {
		t.Errorf("assignments mismatch (-want simulator +got Orchard):\n%s", diff)
	}
}

// matchesSim reports whether Orchard's picture equals the simulator's (for waits).
func matchesSim(t testing.TB, st *gqltest.Stack, gid, tok string) bool {
	t.Helper()
	return cmp.Equal(simPoolCounts(st.Sim, tok), orchardPoolCounts(t, st, gid)) &&
		cmp.Equal(simHolders(st.Sim, tok), orchardHolders(t, st, gid))
}

// runView is one sync run.
type runView struct {
	ID, Kind, Trigger, Status        string
	StartedAt                        time.Time
	FinishedAt                       *time.Time
	Pages, ItemsSeen, Added, Changed int
	Removed                          int
	Error                            *string
	Account                          struct{ ID string }
}

const runFields = `id kind trigger status startedAt finishedAt pages itemsSeen added changed removed error account { id }`

// runs lists an account's sync runs, oldest first.
func runs(t testing.TB, st *gqltest.Stack, gid string) []runView {
	t.Helper()
	var all []runView
	var after *string
	for {
		var out struct {
			SyncRuns struct {
				PageInfo struct {
					HasNextPage bool
					EndCursor   *string
				}
				Nodes []runView
			}
		}
		st.Do(t, st.Keys[model.RoleViewer], `query($id: ID!, $after: String) { syncRuns(first: 100, after: $after, filter: {accountId: $id}) {
  pageInfo { hasNextPage endCursor } nodes { `+runFields+` } } }`, map[string]any{"id": gid, "after": after}).MustData(t, &out)
		all = append(all, out.SyncRuns.Nodes...)
		if !out.SyncRuns.PageInfo.HasNextPage {
			break
		}
		after = out.SyncRuns.PageInfo.EndCursor
	}
	slices.Reverse(all)
	return all
}

func run(t testing.TB, st *gqltest.Stack, id string) runView {
	t.Helper()
	var out struct{ Node *runView }
	st.Do(t, st.Keys[model.RoleViewer], `query($id: ID!) { node(id: $id) { ... on SyncRun { `+runFields+` } } }`,
		map[string]any{"id": id}).MustData(t, &out)
	if out.Node == nil {
		t.Fatalf("sync run %s not found", id)
	}
	return *out.Node
}

// syncAccount asks for a pass through the API and returns the queued run.
func syncAccount(t testing.TB, st *gqltest.Stack, gid, kind string) runView {
	t.Helper()
	var out struct {
		SyncAccount struct {
			SyncRun    *runView
			UserErrors []userError
		}
	}
	st.Do(t, st.Keys[model.RoleAdmin], `mutation($in: SyncAccountInput!) { syncAccount(input: $in) { syncRun { `+runFields+` } userErrors { code message field } } }`,
		map[string]any{"in": map[string]any{"accountId": gid, "kind": kind}}).MustData(t, &out)
	if len(out.SyncAccount.UserErrors) > 0 || out.SyncAccount.SyncRun == nil {
		t.Fatalf("syncAccount refused: %+v", out.SyncAccount.UserErrors)
	}
	return *out.SyncAccount.SyncRun
}

// waitRun waits until a run is over and returns it.
func waitRun(t testing.TB, st *gqltest.Stack, id string) runView {
	t.Helper()
	var r runView
	waitFor(t, "sync run "+id+" to finish", waitLong, func() bool {
		r = run(t, st, id)
		return r.Status != "QUEUED" && r.Status != "RUNNING"
	})
	return r
}

// syncAndWait runs a pass of the given kind through the API and requires it to succeed.
func syncAndWait(t testing.TB, st *gqltest.Stack, gid, kind string) runView {
	t.Helper()
	r := waitRun(t, st, syncAccount(t, st, gid, kind).ID)
	if r.Status != "SUCCEEDED" {
		t.Fatalf("%s pass ended %s: %v", kind, r.Status, deref(r.Error))
	}
	if r.Kind != kind {
		t.Fatalf("asked for a %s pass, ran %s", kind, r.Kind)
	}
	return r
}

type userError struct {
	Code, Message string
	Field         []string
}

// addAccount calls addAccount and returns the account's id or the refusal.
func addAccount(t testing.TB, st *gqltest.Stack, name, tokenFile string, takeOver bool) (*accountView, []userError) {
	t.Helper()
	var out struct {
		AddAccount struct {
			Account    *accountView
			SyncRun    *runView
			UserErrors []userError
		}
	}
	st.Do(t, st.Keys[model.RoleAdmin], `mutation($in: AddAccountInput!) { addAccount(input: $in) { account { `+accountFields+` } syncRun { `+runFields+` } userErrors { code message field } } }`,
		map[string]any{"in": map[string]any{"name": name, "token": tokenFile, "takeOver": takeOver}}).MustData(t, &out)
	return out.AddAccount.Account, out.AddAccount.UserErrors
}

// codes lists the userErrors' codes.
func codes(ues []userError) []string {
	out := []string{}
	for _, u := range ues {
		out = append(out, u.Code)
	}
	return out
}

// auditEvent is an audit event as GraphQL shows it.
type auditEvent struct {
	Action, ActorKind, Message, Details string
	At                                  time.Time
}

func auditEvents(t testing.TB, st *gqltest.Stack, gid, action string) []auditEvent {
	t.Helper()
	var out struct {
		AuditEvents struct{ Nodes []auditEvent }
	}
	st.Do(t, st.Keys[model.RoleViewer], `query($id: ID!, $action: String) { auditEvents(first: 100, filter: {accountId: $id, action: $action}) {
  nodes { action actorKind message details at } } }`, map[string]any{"id": gid, "action": action}).MustData(t, &out)
	return out.AuditEvents.Nodes
}

// requestsSince is the simulator's log of a token's requests at or after since.
func requestsSince(sim *applesim.Sim, tok string, since time.Time) []applesim.Request {
	var out []applesim.Request
	for _, r := range sim.RequestsFor(tok) {
		if !r.Time.Before(since) {
			out = append(out, r)
		}
	}
	return out
}

// writes are the requests that change something at Apple: every POST.
func writes(reqs []applesim.Request) []string {
	var out []string
	for _, r := range reqs {
		if r.Method != "GET" {
			out = append(out, fmt.Sprintf("%s %s %s (%d)", r.Time.Format(time.RFC3339Nano), r.Method, r.Path, r.Status))
		}
	}
	return out
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// gen generates small accounts' data: a few apps, some eighty assignments each (the race
// detector makes the embedded SQLite slow; TestAddAccountMirrorsApple reads larger ones).
func gen(sim *applesim.Sim, tokens int, seed int64) applesim.Generated {
	return sim.Generate(applesim.GenSpec{Tokens: tokens, AppsPerToken: 6, AssignmentsPerToken: 80, Seed: seed, Countries: []string{"US", "GB", "DE"}})
}

// newStack starts Orchard over d with the scheduler ticking every 100ms (work that is asked
// for wakes it at once; only passes that fall due wait for a tick).
func newStack(t testing.TB, d *db.DB, opts gqltest.StackOptions) *gqltest.Stack {
	t.Helper()
	if opts.Scheduler.Tick == 0 {
		opts.Scheduler.Tick = 100 * time.Millisecond
	}
	return gqltest.NewStack(t, d, opts)
}

// waitFor polls cond every pollEvery until it holds, or fails the test after timeout.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(pollEvery)
	}
}

// addSynced adds an account through the API and waits for its first pass.
func addSynced(t testing.TB, st *gqltest.Stack, name, tok string) string {
	t.Helper()
	start := time.Now()
	gid := st.AddAccount(t, name, tok)
	waitSynced(t, st, gid, start)
	return gid
}

// waitSynced waits for a successful pass of the account started after since.
func waitSynced(t testing.TB, st *gqltest.Stack, gid string, since time.Time) runView {
	t.Helper()
	return waitPass(t, st, gid, since, "")
}

// waitFullPass waits for a successful full pass of the account started after since.
func waitFullPass(t testing.TB, st *gqltest.Stack, gid string, since time.Time) runView {
	t.Helper()
	return waitPass(t, st, gid, since, "FULL")
}

// waitPass waits for a successful pass of the account (of the given kind; "" any) started
// after since.
func waitPass(t testing.TB, st *gqltest.Stack, gid string, since time.Time, kind string) runView {
	t.Helper()
	what := "a successful pass of " + gid
	if kind != "" {
		what = "a successful " + strings.ToLower(kind) + " pass of " + gid
	}
	var got runView
	waitFor(t, what, waitLong, func() bool {
		for _, r := range runs(t, st, gid) {
			if (kind == "" || r.Kind == kind) && r.Status == "SUCCEEDED" && r.StartedAt.After(since) {
				got = r
				return true
			}
		}
		return false
	})
	return got
}

// waitMatchesSim waits until Orchard's picture of an account equals the simulator's, and
// reports the difference if it never does.
func waitMatchesSim(t testing.TB, st *gqltest.Stack, gid, tok, what string) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for !matchesSim(t, st, gid, tok) {
		if time.Now().After(deadline) {
			checkMatchesSim(t, st, gid, tok)
			t.Fatalf("timed out after %s waiting for %s", waitLong, what)
		}
		time.Sleep(pollEvery)
	}
}

// dbID is the database id inside a global id (base64url of "Type:id").
func dbID(t testing.TB, gid string) int64 {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(gid)
	if err != nil {
		t.Fatalf("global id %q: %v", gid, err)
	}
	_, num, _ := strings.Cut(string(b), ":")
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		t.Fatalf("global id %q: %v", gid, err)
	}
	return n
}

// onEngines runs fn on every database engine (dbtest.Engines: SQLite, and MySQL when
// ORCHARD_TEST_MYSQL_DSN is set), each with a fresh database, at the same time: the tests
// mostly wait for background work, and go test runs only GOMAXPROCS parallel tests at once.
func onEngines(t *testing.T, fn func(t *testing.T, d *db.DB)) {
	t.Helper()
	var wg sync.WaitGroup
	for _, e := range dbtest.Engines() {
		wg.Go(func() { t.Run(e.Name, func(t *testing.T) { fn(t, e.Open(t)) }) })
	}
	wg.Wait()
}

// concurrently runs the named subtests at the same time (as plain subtests, which t.Run allows
// from several goroutines) and returns when all are done.
func concurrently(t *testing.T, names []string, fn func(t *testing.T, i int)) {
	t.Helper()
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() { t.Run(name, func(t *testing.T) { fn(t, i) }) })
	}
	wg.Wait()
}

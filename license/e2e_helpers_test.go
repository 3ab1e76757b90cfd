package license_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"orchard/apple/applesim"
	"orchard/db"
	"orchard/model"
	"orchard/resolvers/gqltest"
)

// Helpers of the end-to-end tests of license operations: everything goes through GraphQL over
// HTTP against a real database, with the scheduler running and Apple played by the simulator
// over HTTP; afterwards Orchard's picture is compared with the simulator's own state.

// waitLong bounds every wait for background work: generous, for a loaded 2-core machine running
// the race detector. Tests never assert how fast something happens, only that it does.
const waitLong = 45 * time.Second

// env is one Orchard stack with a first account, and the operator key tests act with.
type env struct {
	t    *testing.T
	st   *gqltest.Stack
	tok  string // the first account's token file
	acct string // the first account's global id
	op   string // an OPERATOR key
}

// newEnv starts a stack, adds a US account owning assets and waits for its first pass (which
// also looks up the apps' metadata).
func newEnv(t *testing.T, d *db.DB, opts gqltest.StackOptions, assets ...applesim.Asset) *env {
	t.Helper()
	st := gqltest.NewStack(t, d, opts)
	e := &env{t: t, st: st, op: st.Keys[model.RoleOperator]}
	e.tok, e.acct = e.addAccount("Main", "US", assets...)
	return e
}

// addAccount adds a simulator token in a country with assets and waits for its first pass.
func (e *env) addAccount(name, country string, assets ...applesim.Asset) (tok, gid string) {
	e.t.Helper()
	tok = e.st.Sim.AddToken(applesim.TokenSpec{OrgName: "Org", LocationName: name, Country: country, ExpiresAt: time.Now().Add(365 * 24 * time.Hour)})
	for _, a := range assets {
		e.st.Sim.AddAsset(tok, a)
	}
	start := time.Now()
	gid = e.st.AddAccount(e.t, name, tok)
	e.st.WaitSynced(e.t, gid, start)
	return tok, gid
}

// sync asks for a full pass of an account and waits for that pass to succeed.
func (e *env) sync(acct string) {
	e.t.Helper()
	var out struct {
		SyncAccount struct {
			SyncRun    *struct{ ID string }
			UserErrors []userError
		}
	}
	e.st.Do(e.t, e.st.Keys[model.RoleAdmin], `mutation($id: ID!) { syncAccount(input: {accountId: $id}) { syncRun { id } userErrors { code message } } }`,
		map[string]any{"id": acct}).MustData(e.t, &out)
	if len(out.SyncAccount.UserErrors) > 0 || out.SyncAccount.SyncRun == nil {
		e.t.Fatalf("syncAccount refused: %+v", out.SyncAccount.UserErrors)
	}
	id := out.SyncAccount.SyncRun.ID
	gqltest.WaitFor(e.t, "sync run "+id, waitLong, func() bool {
		var run struct {
			Node struct{ Status string }
		}
		e.do(`query($id: ID!) { node(id: $id) { ... on SyncRun { status } } }`, map[string]any{"id": id}, &run)
		switch run.Node.Status {
		case "SUCCEEDED":
			return true
		case "FAILED":
			e.t.Fatalf("sync run %s failed", id)
		}
		return false
	})
}

// do runs a GraphQL request with the operator key and decodes its data (no errors allowed).
func (e *env) do(query string, vars map[string]any, out any) {
	e.t.Helper()
	e.st.Do(e.t, e.op, query, vars).MustData(e.t, out)
}

// app is a simulator asset with defaults for these tests: an iOS app with 10 revocable,
// device-assignable licenses, paid, with a bundle id derived from its adamId.
func app(adamID string, mod ...func(*applesim.Asset)) applesim.Asset {
	a := applesim.Asset{AdamID: adamID, PricingParam: "STDQ", ProductType: "App", Total: 10, DeviceAssignable: true, Revocable: true,
		Name: "App " + adamID, BundleID: "com.example.app" + adamID, Price: 2.99, Version: "1.0", Platforms: []string{"iOS"}}
	for _, m := range mod {
		m(&a)
	}
	return a
}

func total(n int) func(*applesim.Asset) { return func(a *applesim.Asset) { a.Total = n } }

func free(a *applesim.Asset) { a.Price = 0 }

func book(a *applesim.Asset) {
	a.ProductType, a.DeviceAssignable, a.Revocable, a.BundleID, a.Name = "Book", false, false, "", "Book "+a.AdamID
}

func notSoldIn(cc ...string) func(*applesim.Asset) {
	return func(a *applesim.Asset) { a.NotSoldIn = cc }
}

// device is a device input for upsertDevices.
type device map[string]any

func iPad(serial string, kv ...any) device {
	d := device{"serialNumber": serial, "platform": "IPADOS", "osVersion": "17.4", "countryCode": "US"}
	for i := 0; i+1 < len(kv); i += 2 {
		d[kv[i].(string)] = kv[i+1]
	}
	return d
}

type userError struct {
	Field   []string
	Message string
	Code    string
}

// upsertDevices creates or updates devices and returns their global ids.
func (e *env) upsertDevices(devs ...device) []string {
	e.t.Helper()
	var out struct {
		UpsertDevices struct {
			Devices    []*struct{ ID string }
			UserErrors []userError
		}
	}
	list := make([]map[string]any, len(devs))
	for i, d := range devs {
		list[i] = d
	}
	e.do(`mutation($d: [DeviceInput!]!) { upsertDevices(input: {devices: $d}) { devices { id } userErrors { field message code } } }`,
		map[string]any{"d": list}, &out)
	if len(out.UpsertDevices.UserErrors) > 0 {
		e.t.Fatalf("upsertDevices refused: %+v", out.UpsertDevices.UserErrors)
	}
	ids := make([]string, len(devs))
	for i, d := range out.UpsertDevices.Devices {
		ids[i] = d.ID
	}
	return ids
}

// userView is a user as GraphQL shows them.
type userView struct {
	ID, ExternalID, ClientUserID string
}

// upsertUsers creates users by external id (with an email each).
func (e *env) upsertUsers(externalIDs ...string) []userView {
	e.t.Helper()
	var out struct {
		UpsertUsers struct {
			Users      []*userView
			UserErrors []userError
		}
	}
	list := make([]map[string]any, len(externalIDs))
	for i, x := range externalIDs {
		list[i] = map[string]any{"externalId": x, "email": x + "@example.com", "name": "User " + x}
	}
	e.do(`mutation($u: [UserInput!]!) { upsertUsers(input: {users: $u}) { users { id externalId clientUserId } userErrors { field message code } } }`,
		map[string]any{"u": list}, &out)
	if len(out.UpsertUsers.UserErrors) > 0 {
		e.t.Fatalf("upsertUsers refused: %+v", out.UpsertUsers.UserErrors)
	}
	us := make([]userView, len(out.UpsertUsers.Users))
	for i, u := range out.UpsertUsers.Users {
		us[i] = *u
	}
	return us
}

// assignmentView is an assignment as GraphQL shows it.
type assignmentView struct {
	ID, Status, Origin, Kind, Reason, CausedBy string
	SerialNumber, ClientUserID                 *string
	ReclaimReason, ReclaimedBy, ErrorMessage   *string
	Pool                                       struct{ AdamID, PricingParam string }
	User                                       *struct{ ExternalID string }
}

const assignmentFields = `id status origin kind reason causedBy serialNumber clientUserId reclaimReason reclaimedBy errorMessage pool { adamId pricingParam } user { externalId }`

// assignPayload is assignLicense's answer.
type assignPayload struct {
	Assignment *assignmentView
	Account    *struct{ ID string }
	HeldUntil  *time.Time
	Note       *string
	UserErrors []userError
}

// assign calls assignLicense with an input (as built by the test) and returns its answer.
func (e *env) assign(in map[string]any) assignPayload {
	e.t.Helper()
	var out struct{ AssignLicense assignPayload }
	e.do(`mutation($in: AssignLicenseInput!) { assignLicense(input: $in) { assignment { `+assignmentFields+` } account { id } heldUntil note userErrors { field message code } } }`,
		map[string]any{"in": in}, &out)
	return out.AssignLicense
}

// assignOK assigns and fails the test when the assignment is refused; it returns the
// assignment's id.
func (e *env) assignOK(in map[string]any) string {
	e.t.Helper()
	p := e.assign(in)
	if p.Assignment == nil || len(p.UserErrors) > 0 {
		e.t.Fatalf("assignLicense(%v) refused: %+v", in, p.UserErrors)
	}
	return p.Assignment.ID
}

// deviceLicense and userLicense build assignLicense inputs.
func deviceLicense(adamID, serial string) map[string]any {
	return map[string]any{"adamId": adamID, "kind": "DEVICE", "target": map[string]any{"serialNumber": serial}}
}

func userLicense(adamID, externalID string) map[string]any {
	return map[string]any{"adamId": adamID, "kind": "USER", "target": map[string]any{"externalId": externalID}}
}

// assignment reads an assignment.
func (e *env) assignment(id string) assignmentView {
	e.t.Helper()
	var out struct{ Node *assignmentView }
	e.do(`query($id: ID!) { node(id: $id) { ... on LicenseAssignment { `+assignmentFields+` } } }`, map[string]any{"id": id}, &out)
	if out.Node == nil {
		e.t.Fatalf("assignment %s not found", id)
	}
	return *out.Node
}

// waitStatus waits until an assignment reaches a state.
func (e *env) waitStatus(id, status string) assignmentView {
	e.t.Helper()
	var a assignmentView
	gqltest.WaitFor(e.t, "assignment "+id+" "+status, waitLong, func() bool {
		a = e.assignment(id)
		return a.Status == status
	})
	return a
}

// assignments lists an account's assignments (all pages), optionally in some states.
func (e *env) assignments(acct string, statuses ...string) []assignmentView {
	e.t.Helper()
	var all []assignmentView
	var after *string
	filter := map[string]any{"accountId": acct}
	if len(statuses) > 0 {
		filter["status"] = statuses
	}
	for {
		var out struct {
			LicenseAssignments struct {
				PageInfo struct {
					HasNextPage bool
					EndCursor   *string
				}
				Nodes []assignmentView
			}
		}
		e.do(`query($f: LicenseAssignmentFilter, $after: String) { licenseAssignments(first: 100, after: $after, filter: $f) {
			pageInfo { hasNextPage endCursor } nodes { `+assignmentFields+` } } }`, map[string]any{"f": filter, "after": after}, &out)
		all = append(all, out.LicenseAssignments.Nodes...)
		if !out.LicenseAssignments.PageInfo.HasNextPage {
			return all
		}
		after = out.LicenseAssignments.PageInfo.EndCursor
	}
}

// settle waits until no assignment of the account is on its way to or back from Apple.
func (e *env) settle(acct string) {
	e.t.Helper()
	gqltest.WaitFor(e.t, "the account's intents to complete", waitLong, func() bool {
		return len(e.assignments(acct, "PENDING", "RECLAIMING")) == 0
	})
}

// holderKey renders an assignment as "adamId/pricing/D:serial" or ".../U:clientUserId".
func holderKey(adamID, pricing, serial, clientUserID string) string {
	if serial != "" {
		return adamID + "/" + pricing + "/D:" + serial
	}
	return adamID + "/" + pricing + "/U:" + clientUserID
}

// assertInSync waits for the account's intents to complete, then checks that Orchard's active
// assignments and pool counts equal the simulator's.
func (e *env) assertInSync(tok, acct string) {
	e.t.Helper()
	e.settle(acct)
	var got []string
	for _, a := range e.assignments(acct, "ASSIGNED") {
		got = append(got, holderKey(a.Pool.AdamID, a.Pool.PricingParam, deref(a.SerialNumber), deref(a.ClientUserID)))
	}
	var want []string
	for _, a := range e.st.Sim.Assignments(tok) {
		want = append(want, holderKey(a.AdamID, a.PricingParam, a.SerialNumber, a.ClientUserID))
	}
	slices.Sort(got)
	slices.Sort(want)
	if diff := cmp.Diff(want, got); diff != "" {
		e.t.Errorf("active assignments: Orchard differs from the simulator (-want sim +got Orchard):\n%s", diff)
	}
	type counts struct {
		AdamID, PricingParam      string
		Assigned, Reserved, Total int
	}
	var out struct {
		Account struct {
			LicensePools struct {
				Nodes []struct {
					AdamID, PricingParam                     string
					AssignedCount, ReservedCount, TotalCount int
				}
			}
		}
	}
	e.do(`query($id: ID!) { account(id: $id) { licensePools(first: 100) { nodes { adamId pricingParam assignedCount reservedCount totalCount } } } }`,
		map[string]any{"id": acct}, &out)
	var gotPools, wantPools []counts
	for _, p := range out.Account.LicensePools.Nodes {
		gotPools = append(gotPools, counts{p.AdamID, p.PricingParam, p.AssignedCount, p.ReservedCount, p.TotalCount})
	}
	for _, s := range e.st.Sim.AssetStates(tok) {
		wantPools = append(wantPools, counts{s.AdamID, s.PricingParam, s.Assigned, 0, s.Total})
	}
	key := func(a, b counts) int { return strings.Compare(a.AdamID+a.PricingParam, b.AdamID+b.PricingParam) }
	slices.SortFunc(gotPools, key)
	slices.SortFunc(wantPools, key)
	if diff := cmp.Diff(wantPools, gotPools); diff != "" {
		e.t.Errorf("pool counts: Orchard differs from the simulator (-want sim +got Orchard):\n%s", diff)
	}
	e.assertAudited(acct)
}

// assertAudited checks that every assignment Orchard made in the account has an audit event
// of its assignment, and every one taken back an event of its reclaim, each naming who or what
// caused it (an actor) and why (a message).
func (e *env) assertAudited(acct string) {
	e.t.Helper()
	events := map[string]map[string]auditView{} // action -> subject -> event
	for _, action := range []string{"license.assign", "license.reclaim"} {
		events[action] = map[string]auditView{}
		var after *string
		for {
			var out struct {
				AuditEvents struct {
					PageInfo struct {
						HasNextPage bool
						EndCursor   *string
					}
					Nodes []auditView
				}
			}
			e.do(`query($a: ID, $action: String, $after: String) { auditEvents(first: 100, after: $after, filter: {accountId: $a, action: $action}) {
				pageInfo { hasNextPage endCursor } nodes { actorKind actorName action message subjectId } } }`,
				map[string]any{"a": acct, "action": action, "after": after}, &out)
			for _, ev := range out.AuditEvents.Nodes {
				events[action][deref(ev.SubjectID)] = ev
			}
			if !out.AuditEvents.PageInfo.HasNextPage {
				break
			}
			after = out.AuditEvents.PageInfo.EndCursor
		}
	}
	for _, a := range e.assignments(acct) {
		if a.Origin == "FOUND_AT_APPLE" {
			continue // made at Apple, not by Orchard
		}
		want := []string{"license.assign"}
		if a.Status == "RECLAIMED" || a.Status == "RECLAIMING" {
			want = append(want, "license.reclaim")
		}
		for _, action := range want {
			ev, ok := events[action][a.ID]
			switch {
			case !ok:
				e.t.Errorf("assignment %s (%s %s, %s) has no %s audit event", a.ID, a.Pool.AdamID, deref(a.SerialNumber)+deref(a.ClientUserID), a.Status, action)
			case ev.ActorKind == "" || ev.ActorName == "" || ev.Message == "":
				e.t.Errorf("assignment %s: %s audit event does not say who and why: %+v", a.ID, action, ev)
			}
		}
	}
}

// auditView is an audit event.
type auditView struct {
	ActorKind, ActorName, Action, Message string
	SubjectID                             *string
}

// audits lists the audit events about a subject (newest first, as the API lists them, or
// whatever order: tests look events up by action).
func (e *env) audits(subjectID string) []auditView {
	e.t.Helper()
	var out struct {
		AuditEvents struct{ Nodes []auditView }
	}
	e.do(`query($s: ID) { auditEvents(first: 100, filter: {subjectId: $s}) { nodes { actorKind actorName action message subjectId } } }`,
		map[string]any{"s": subjectID}, &out)
	return out.AuditEvents.Nodes
}

// wantAudit checks that a subject has an audit event of an action by an actor whose message
// contains every given fragment.
func (e *env) wantAudit(subjectID, action, actorKind, actorName string, fragments ...string) {
	e.t.Helper()
	evs := e.audits(subjectID)
	for _, ev := range evs {
		if ev.Action != action || ev.ActorKind != actorKind || ev.ActorName != actorName {
			continue
		}
		ok := true
		for _, f := range fragments {
			ok = ok && strings.Contains(ev.Message, f)
		}
		if ok {
			return
		}
	}
	e.t.Errorf("no %s audit event by %s %q mentioning %q for %s; events: %s", action, actorKind, actorName, fragments, subjectID, gqltest.JSON(evs))
}

// codes returns the codes of userErrors.
func codes(ues []userError) []string {
	out := []string{}
	for _, u := range ues {
		out = append(out, u.Code)
	}
	return out
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func str(v any) string { return fmt.Sprint(v) }

// operatorName is the name of the stack's OPERATOR key, as audit events show it.
const operatorName = "test OPERATOR"

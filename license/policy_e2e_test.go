package license_test

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/resolvers/gqltest"
)

// Policy end to end (R4a, R10, doc/design.md §2.4): groups and labels through GraphQL over HTTP, the
// evaluation run by the scheduler under its lease, Apple played by the simulator; each test
// ends by comparing Orchard with the simulator.

// upsertGroup creates a group (optionally dynamic) and returns its global id.
func (e *env) upsertGroup(externalID string, rule map[string]any) string {
	e.t.Helper()
	in := map[string]any{"externalId": externalID, "name": externalID}
	if rule != nil {
		in["rule"] = rule
	}
	var out struct {
		UpsertGroup struct {
			Group      *struct{ ID string }
			UserErrors []userError
		}
	}
	e.do(`mutation($in: UpsertGroupInput!) { upsertGroup(input: $in) { group { id } userErrors { field message code } } }`, map[string]any{"in": in}, &out)
	if out.UpsertGroup.Group == nil || len(out.UpsertGroup.UserErrors) > 0 {
		e.t.Fatalf("upsertGroup %s refused: %+v", externalID, out.UpsertGroup.UserErrors)
	}
	return out.UpsertGroup.Group.ID
}

// membersPayload is the answer of the membership mutations.
type membersPayload struct {
	Added, Removed int
	UserErrors     []userError
}

// members calls setGroupMembers, addGroupMembers or removeGroupMembers.
func (e *env) members(op, group string, members ...map[string]any) membersPayload {
	e.t.Helper()
	var out map[string]membersPayload
	if members == nil {
		members = []map[string]any{}
	}
	e.do(`mutation($in: GroupMembersInput!) { `+op+`(input: $in) { added removed userErrors { field message code } } }`,
		map[string]any{"in": map[string]any{"groupExternalId": group, "members": members}}, &out)
	return out[op]
}

func userMember(ext string) map[string]any      { return map[string]any{"externalId": ext} }
func deviceMember(serial string) map[string]any { return map[string]any{"serialNumber": serial} }

// labelPayload is the answer of the label mutations.
type labelPayload struct {
	Label      *struct{ ID string }
	Preview    *previewView
	UserErrors []userError
}

// previewView is a label change's preview.
type previewView struct {
	AssignCount, ReclaimCount, RelabelCount, KeptCount, WaitingCount, InstallCommands int
	Accounts                                                                          []struct {
		Account         struct{ Name string }
		Assign, Reclaim int
	}
	Assignments []struct {
		Account *struct{ Name string }
		Reason  string
	}
	Waiting []struct {
		Code, Reason string
		Device       *struct{ SerialNumber string }
		User         *struct{ ExternalID string }
	}
}

const previewFields = `preview { assignCount reclaimCount relabelCount keptCount waitingCount installCommands accounts { account { name } assign reclaim }
	assignments { account { name } reason } waiting { code reason device { serialNumber } user { externalId } } }`

// createLabel creates a license label; in holds its input (groups by external id are
// resolved by the caller).
func (e *env) createLabel(in map[string]any) labelPayload {
	e.t.Helper()
	var out struct{ CreateLicenseLabel labelPayload }
	e.do(`mutation($in: CreateLicenseLabelInput!) { createLicenseLabel(input: $in) { label { id } `+previewFields+` userErrors { field message code } } }`,
		map[string]any{"in": in}, &out)
	return out.CreateLicenseLabel
}

func (e *env) createLabelOK(in map[string]any) string {
	e.t.Helper()
	p := e.createLabel(in)
	if p.Label == nil || len(p.UserErrors) > 0 {
		e.t.Fatalf("createLicenseLabel(%v) refused: %+v", in, p.UserErrors)
	}
	return p.Label.ID
}

func (e *env) updateLabel(in map[string]any) labelPayload {
	e.t.Helper()
	var out struct{ UpdateLicenseLabel labelPayload }
	e.do(`mutation($in: UpdateLicenseLabelInput!) { updateLicenseLabel(input: $in) { label { id } `+previewFields+` userErrors { field message code } } }`,
		map[string]any{"in": in}, &out)
	if len(out.UpdateLicenseLabel.UserErrors) > 0 {
		e.t.Fatalf("updateLicenseLabel(%v) refused: %+v", in, out.UpdateLicenseLabel.UserErrors)
	}
	return out.UpdateLicenseLabel
}

// appID reads an app's global id by adamId.
func (e *env) appID(adamID string) string {
	e.t.Helper()
	var out struct{ App *struct{ ID string } }
	e.do(`query($a: String!) { app(adamId: $a) { id } }`, map[string]any{"a": adamID}, &out)
	if out.App == nil {
		e.t.Fatalf("no app %s", adamID)
	}
	return out.App.ID
}

// labelAssignment is an assignment with its label.
type labelAssignment struct {
	ID, Status, Origin, Kind, Reason, CausedBy string
	SerialNumber, ClientUserID, ReclaimReason  *string
	User                                       *struct{ ExternalID string }
	Label                                      *struct{ ID string }
	Account                                    struct{ Name string }
}

// held lists an app's assignments across accounts as "status holder origin", sorted, and the
// assignments themselves by holder.
func (e *env) held(adamID string, statuses ...string) ([]string, map[string]labelAssignment) {
	e.t.Helper()
	f := map[string]any{"appId": e.appID(adamID)}
	if len(statuses) > 0 {
		f["status"] = statuses
	}
	var all []labelAssignment
	var after *string
	for {
		var out struct {
			LicenseAssignments struct {
				PageInfo struct {
					HasNextPage bool
					EndCursor   *string
				}
				Nodes []labelAssignment
			}
		}
		e.do(`query($f: LicenseAssignmentFilter, $after: String) { licenseAssignments(first: 100, after: $after, filter: $f) { pageInfo { hasNextPage endCursor }
			nodes { id status origin kind reason causedBy serialNumber clientUserId reclaimReason user { externalId } label { id } account { name } } } }`,
			map[string]any{"f": f, "after": after}, &out)
		all = append(all, out.LicenseAssignments.Nodes...)
		if !out.LicenseAssignments.PageInfo.HasNextPage {
			break
		}
		after = out.LicenseAssignments.PageInfo.EndCursor
	}
	var lines []string
	by := map[string]labelAssignment{}
	for _, a := range all {
		who := deref(a.SerialNumber)
		if a.User != nil {
			who = a.User.ExternalID
		}
		lines = append(lines, a.Status+" "+who+" "+a.Origin)
		if a.Status != "RECLAIMED" && a.Status != "FAILED" || by[who].ID == "" {
			by[who] = a
		}
	}
	sort.Strings(lines)
	return lines, by
}

// waitHeld waits until an app's assignments (in the given states) are exactly want.
func (e *env) waitHeld(adamID string, want []string, statuses ...string) map[string]labelAssignment {
	e.t.Helper()
	var got []string
	var by map[string]labelAssignment
	sort.Strings(want)
	gqltest.WaitFor(e.t, "assignments of "+adamID, waitLong, func() bool {
		got, by = e.held(adamID, statuses...)
		return cmp.Equal(want, got)
	})
	if diff := cmp.Diff(want, got); diff != "" {
		e.t.Fatalf("assignments of %s mismatch (-want +got):\n%s", adamID, diff)
	}
	return by
}

// policyIdle waits until nothing is left in the policy queue that is due (the evaluation has
// caught up) and the account's intents are settled.
func (e *env) policyIdle(d *db.DB) {
	e.t.Helper()
	gqltest.WaitFor(e.t, "policy evaluation to catch up", waitLong, func() bool {
		n, err := d.CountPolicyQueue(e.t.Context(), db.Now())
		if err != nil {
			e.t.Fatal(err)
		}
		return n == 0
	})
}

func TestLabelFollowsMembership(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, gqltest.StackOptions{}, app("7001"), app("7002"))
		e.upsertUsers("ann", "bob", "cy")
		e.upsertDevices(iPad("P1A"), iPad("P1B"), iPad("P1C", "osVersion", "16.0"))
		teachers := e.upsertGroup("teachers", nil)
		carts := e.upsertGroup("carts", nil)
		modern := e.upsertGroup("modern-ipads", map[string]any{"platforms": []string{"IPADOS"}, "minOsVersion": "17"})

		// An admin's license of the same app to another user is never the label's to take.
		admin := e.assignOK(userLicense("7001", "cy"))
		e.waitStatus(admin, "ASSIGNED")

		e.createLabelOK(map[string]any{"name": "Keynote for teachers", "adamId": "7001", "kind": "USER", "groupIds": []string{teachers}})
		e.createLabelOK(map[string]any{"name": "Pages on carts", "adamId": "7002", "kind": "DEVICE", "groupIds": []string{carts, modern}})

		// Joining: a license, ASSIGNED at Apple, made by the label.
		if p := e.members("addGroupMembers", "teachers", userMember("ann"), userMember("bob"), userMember("nobody")); p.Added != 2 || !cmp.Equal(codes(p.UserErrors), []string{"NOT_FOUND"}) {
			t.Fatalf("addGroupMembers: %+v", p)
		}
		if p := e.members("addGroupMembers", "carts", deviceMember("P1C")); p.Added != 1 {
			t.Fatalf("addGroupMembers carts: %+v", p)
		}
		by := e.waitHeld("7001", []string{"ASSIGNED ann LABEL", "ASSIGNED bob LABEL", "ASSIGNED cy ADMIN"})
		if a := by["ann"]; a.Label == nil || a.CausedBy == "" || !strings.HasPrefix(a.CausedBy, "label:") || !strings.Contains(a.Reason, `member of group teachers (label "Keynote for teachers")`) {
			t.Errorf("a label's assignment: %+v", a)
		}
		// The dynamic group holds the iPads on 17 or later; the cart holds the old one.
		e.waitHeld("7002", []string{"ASSIGNED P1A LABEL", "ASSIGNED P1B LABEL", "ASSIGNED P1C LABEL"})

		// Leaving: reclaimed at Apple, with the group and the label in the reason.
		if p := e.members("removeGroupMembers", "teachers", userMember("ann")); p.Removed != 1 {
			t.Fatalf("removeGroupMembers: %+v", p)
		}
		by = e.waitHeld("7001", []string{"RECLAIMED ann LABEL", "ASSIGNED bob LABEL", "ASSIGNED cy ADMIN"})
		if r := deref(by["ann"].ReclaimReason); r != `removed from group teachers (label "Keynote for teachers")` {
			t.Errorf("reclaim reason %q", r)
		}
		// A device leaving a group, and a device that stops matching a dynamic rule.
		e.members("setGroupMembers", "carts")
		e.upsertDevices(iPad("P1B", "osVersion", "16.4"))
		by = e.waitHeld("7002", []string{"ASSIGNED P1A LABEL", "RECLAIMED P1B LABEL", "RECLAIMED P1C LABEL"})
		if r := deref(by["P1B"].ReclaimReason); r != `no longer matches dynamic group modern-ipads (label "Pages on carts")` {
			t.Errorf("reclaim reason of the device that stopped matching: %q", r)
		}
		if r := deref(by["P1C"].ReclaimReason); r != `removed from group carts (label "Pages on carts")` {
			t.Errorf("reclaim reason of the device taken out of the cart: %q", r)
		}
		e.policyIdle(d)
		e.assertInSync(e.tok, e.acct)
	})
}

// associateRequests counts the associate and disassociate requests the simulator saw for a token.
func (e *env) associateRequests(tok string) int {
	n := 0
	for _, r := range e.st.Sim.RequestsFor(tok) {
		if strings.Contains(r.Path, "associate") {
			n++
		}
	}
	return n
}

func TestTwoLabelsOneLicenseAndGrace(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, gqltest.StackOptions{}, app("7101"), app("7102"))
		e.upsertUsers("ann", "bob")
		teachers, staff, club := e.upsertGroup("teachers", nil), e.upsertGroup("staff", nil), e.upsertGroup("club", nil)
		e.createLabelOK(map[string]any{"name": "K teachers", "adamId": "7101", "kind": "USER", "groupIds": []string{teachers}})
		e.createLabelOK(map[string]any{"name": "K staff", "adamId": "7101", "kind": "USER", "groupIds": []string{staff}})
		e.members("addGroupMembers", "teachers", userMember("ann"))
		e.members("addGroupMembers", "staff", userMember("ann"))
		e.policyIdle(d)
		// Covered twice: one license.
		e.waitHeld("7101", []string{"ASSIGNED ann LABEL"})
		// Out of one group: kept (handed to the label that still covers her), no Apple request.
		e.st.Sim.ResetRequests()
		e.members("removeGroupMembers", "teachers", userMember("ann"))
		e.policyIdle(d)
		by := e.waitHeld("7101", []string{"ASSIGNED ann LABEL"})
		if n := e.associateRequests(e.tok); n != 0 {
			t.Errorf("leaving one of two covering groups sent %d (dis)associate requests", n)
		}
		_ = by
		// Out of both: reclaimed.
		e.members("removeGroupMembers", "staff", userMember("ann"))
		by = e.waitHeld("7101", []string{"RECLAIMED ann LABEL"})
		if r := deref(by["ann"].ReclaimReason); r != `removed from group staff (label "K staff")` {
			t.Errorf("reclaim reason %q", r)
		}

		// Grace: out and back in within the grace time sends nothing at all to Apple.
		e.createLabelOK(map[string]any{"name": "Club", "adamId": "7102", "kind": "USER", "groupIds": []string{club}, "graceSeconds": 3600})
		e.members("addGroupMembers", "club", userMember("bob"))
		e.waitHeld("7102", []string{"ASSIGNED bob LABEL"})
		e.policyIdle(d)
		e.settle(e.acct)
		e.st.Sim.ResetRequests()
		e.members("removeGroupMembers", "club", userMember("bob"))
		e.policyIdle(d)
		var out struct {
			LicenseAssignments struct {
				Nodes []struct {
					Status        string
					LabelOutSince *string
				}
			}
		}
		e.do(`query($a: ID) { licenseAssignments(filter: {appId: $a}) { nodes { status labelOutSince } } }`, map[string]any{"a": e.appID("7102")}, &out)
		if n := out.LicenseAssignments.Nodes; len(n) != 1 || n[0].Status != "ASSIGNED" || n[0].LabelOutSince == nil {
			t.Fatalf("out of scope within the grace time: %+v", n)
		}
		e.members("addGroupMembers", "club", userMember("bob"))
		e.policyIdle(d)
		e.do(`query($a: ID) { licenseAssignments(filter: {appId: $a}) { nodes { status labelOutSince } } }`, map[string]any{"a": e.appID("7102")}, &out)
		if n := out.LicenseAssignments.Nodes; len(n) != 1 || n[0].Status != "ASSIGNED" || n[0].LabelOutSince != nil {
			t.Fatalf("back in scope within the grace time: %+v", n)
		}
		if n := e.associateRequests(e.tok); n != 0 {
			t.Errorf("out and back in within the grace time sent %d (dis)associate requests", n)
		}
		e.assertInSync(e.tok, e.acct)
	})
}

func TestShortHoldersWaitAndPriority(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, gqltest.StackOptions{}, app("7201", total(20)))
		var devs []device
		var refs []map[string]any
		for i := range 30 {
			s := fmt.Sprintf("SH3%02d", i)
			devs = append(devs, iPad(s))
			refs = append(refs, deviceMember(s))
		}
		e.upsertDevices(devs...)
		carts := e.upsertGroup("carts", nil)
		e.members("addGroupMembers", "carts", refs...)
		p := e.createLabel(map[string]any{"name": "All carts", "adamId": "7201", "kind": "DEVICE", "groupIds": []string{carts}})
		if p.Label == nil || p.Preview == nil || p.Preview.AssignCount != 20 || p.Preview.WaitingCount != 10 {
			t.Fatalf("createLicenseLabel: %+v", p)
		}
		var want []string
		for i := range 20 {
			want = append(want, fmt.Sprintf("ASSIGNED SH3%02d LABEL", i))
		}
		e.waitHeld("7201", want)
		e.policyIdle(d)
		var lab struct {
			Node struct {
				WaitingCount int
				Waiting      struct {
					Nodes []struct {
						Code, Reason string
						Device       struct{ SerialNumber string }
					}
				}
			}
		}
		q := `query($id: ID!) { node(id: $id) { ... on LicenseLabel { waitingCount waiting(first: 100) { nodes { code reason device { serialNumber } } } } } }`
		e.do(q, map[string]any{"id": p.Label.ID}, &lab)
		if lab.Node.WaitingCount != 10 || len(lab.Node.Waiting.Nodes) != 10 {
			t.Fatalf("waiting holders: %+v", lab.Node)
		}
		for i, w := range lab.Node.Waiting.Nodes {
			if w.Code != "NO_LICENSES_AVAILABLE" || w.Device.SerialNumber != fmt.Sprintf("SH3%02d", 20+i) || !strings.Contains(w.Reason, "no ") {
				t.Errorf("waiting holder %d: %+v", i, w)
			}
		}
		// Licenses bought at Apple; one sync later the ten are served with no call.
		if err := e.st.Sim.Purchase(e.tok, "7201", 10); err != nil {
			t.Fatal(err)
		}
		e.sync(e.acct)
		for i := 20; i < 30; i++ {
			want = append(want, fmt.Sprintf("ASSIGNED SH3%02d LABEL", i))
		}
		e.waitHeld("7201", want)
		e.policyIdle(d)
		e.do(q, map[string]any{"id": p.Label.ID}, &lab)
		if lab.Node.WaitingCount != 0 {
			t.Errorf("still waiting after the purchase: %+v", lab.Node)
		}
		e.assertInSync(e.tok, e.acct)

		// Priority: account A has none left, B is second: the licenses come from B.
		tokA, acctA := e.addAccount("A", "US", app("7202", total(0)))
		tokB, acctB := e.addAccount("B", "US", app("7202", total(5)))
		e.upsertDevices(iPad("PRIO1"), iPad("PRIO2"))
		prio := e.upsertGroup("prio", nil)
		e.members("addGroupMembers", "prio", deviceMember("PRIO1"), deviceMember("PRIO2"))
		p = e.createLabel(map[string]any{"name": "A then B", "adamId": "7202", "kind": "DEVICE", "groupIds": []string{prio}, "accountIds": []string{acctA, acctB}})
		if p.Preview == nil || len(p.Preview.Accounts) != 1 || p.Preview.Accounts[0].Account.Name != "B" || p.Preview.Accounts[0].Assign != 2 {
			t.Fatalf("the preview says where the licenses come from: %+v", p.Preview)
		}
		by := e.waitHeld("7202", []string{"ASSIGNED PRIO1 LABEL", "ASSIGNED PRIO2 LABEL"})
		if by["PRIO1"].Account.Name != "B" {
			t.Errorf("licensed from account %q, want B", by["PRIO1"].Account.Name)
		}
		e.upsertDevices(iPad("PRIO3"))
		var ex struct {
			ExplainLicense struct {
				Summary     string
				WouldAssign *struct{ Account struct{ Name string } }
			}
		}
		e.members("addGroupMembers", "prio", deviceMember("PRIO3"))
		// Asked at once, before the evaluation has run (or after: then it holds it).
		e.do(`query { explainLicense(adamId: "7202", device: {serialNumber: "PRIO3"}) { summary wouldAssign { account { name } } } }`, nil, &ex)
		if w := ex.ExplainLicense.WouldAssign; (w == nil || w.Account.Name != "B") && !strings.Contains(ex.ExplainLicense.Summary, "holds a device license") {
			t.Errorf("explain: %+v", ex.ExplainLicense)
		}
		e.policyIdle(d)
		e.assertInSync(tokA, acctA)
		e.assertInSync(tokB, acctB)
	})
}

// deviceCommandList lists a device's commands as "KIND adamId STATUS", sorted.
func (e *env) deviceCommandList(deviceGID string) []string {
	e.t.Helper()
	var out struct {
		DeviceCommands struct {
			Nodes []struct {
				Kind, Status string
				App          struct{ AdamID string }
			}
		}
	}
	e.do(`query($d: ID) { deviceCommands(first: 100, filter: {deviceId: $d}) { nodes { kind status app { adamId } } } }`, map[string]any{"d": deviceGID}, &out)
	got := []string{}
	for _, c := range out.DeviceCommands.Nodes {
		got = append(got, c.Kind+" "+c.App.AdamID+" "+c.Status)
	}
	sort.Strings(got)
	return got
}

// signIn records a sign-in and returns how many commands it queued.
func (e *env) signIn(serial, user string) int {
	e.t.Helper()
	in := map[string]any{"device": map[string]any{"serialNumber": serial}}
	if user != "" {
		in["userExternalId"] = user
	}
	var out struct {
		RecordDeviceSignIn struct {
			Commands   []struct{ ID string }
			UserErrors []userError
		}
	}
	e.do(`mutation($in: RecordDeviceSignInInput!) { recordDeviceSignIn(input: $in) { commands { id } userErrors { code message } } }`, map[string]any{"in": in}, &out)
	if len(out.RecordDeviceSignIn.UserErrors) > 0 {
		e.t.Fatalf("recordDeviceSignIn: %+v", out.RecordDeviceSignIn.UserErrors)
	}
	return len(out.RecordDeviceSignIn.Commands)
}

// explainCodes asks explainLicense about a device and returns the codes of what leaves it out.
func (e *env) explainCodes(adamID, serial string) ([]string, string) {
	e.t.Helper()
	var out struct {
		ExplainLicense struct {
			Summary string
			LeftOut []struct{ Code string }
		}
	}
	e.do(`query($a: String!, $s: String!) { explainLicense(adamId: $a, device: {serialNumber: $s}) { summary leftOut { code } } }`,
		map[string]any{"a": adamID, "s": serial}, &out)
	cs := []string{}
	for _, l := range out.ExplainLicense.LeftOut {
		cs = append(cs, l.Code)
	}
	return cs, out.ExplainLicense.Summary
}

func TestSharedIPad(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, gqltest.StackOptions{}, app("7401"), app("7402"), app("7403"), app("7404"))
		e.upsertUsers("ann", "bob")
		ids := e.upsertDevices(iPad("SHARED1", "sharedIPad", true))
		cart := e.upsertGroup("cart", nil)
		e.members("addGroupMembers", "cart", deviceMember("SHARED1"))
		for _, a := range []string{"7401", "7402", "7404"} {
			e.createLabelOK(map[string]any{"name": "cart " + a, "adamId": a, "kind": "DEVICE", "groupIds": []string{cart}})
		}
		e.createLabelOK(map[string]any{"name": "cart users 7403", "adamId": "7403", "kind": "USER", "groupIds": []string{cart}})
		e.policyIdle(d)
		// No app label yet: nothing, and explain says why.
		for _, a := range []string{"7401", "7402", "7403", "7404"} {
			if got, _ := e.held(a); len(got) != 0 {
				t.Errorf("%s assigned without an app label: %v", a, got)
			}
		}
		if cs, sum := e.explainCodes("7404", "SHARED1"); !cmp.Equal(cs, []string{"NEEDS_APP_LABEL"}) || !strings.Contains(sum, "shared iPad") {
			t.Errorf("explain without an app label: %v %q", cs, sum)
		}
		// App labels: 7401 installs on registration, 7402 on sign-in, 7403 (a USER label) never.
		setApp := func(adamID string, reg, signIn bool) {
			var out struct {
				SetAppLabels struct{ UserErrors []userError }
			}
			e.do(`mutation($a: String!, $l: [AppLabelInput!]!) { setAppLabels(input: {adamId: $a, labels: $l}) { userErrors { code message } } }`,
				map[string]any{"a": adamID, "l": []map[string]any{{"name": "cart apps", "groupIds": []string{cart}, "installOnRegistration": reg, "installOnSignIn": signIn}}}, &out)
			if len(out.SetAppLabels.UserErrors) > 0 {
				t.Fatalf("setAppLabels: %+v", out.SetAppLabels.UserErrors)
			}
		}
		setApp("7401", true, false)
		setApp("7402", false, true)
		setApp("7403", true, true)
		e.waitHeld("7401", []string{"ASSIGNED SHARED1 LABEL"})
		e.waitHeld("7402", []string{"ASSIGNED SHARED1 LABEL"})
		e.policyIdle(d)
		if got, _ := e.held("7403"); len(got) != 0 {
			t.Errorf("a USER label gave a shared iPad %v", got)
		}
		if cs, _ := e.explainCodes("7403", "SHARED1"); !cmp.Equal(cs, []string{"SHARED_IPAD_NEEDS_DEVICE_LICENSE"}) {
			t.Errorf("explain of a USER label on a shared iPad: %v", cs)
		}
		if got, want := e.deviceCommandList(ids[0]), []string{"INSTALL 7401 PENDING"}; !cmp.Equal(want, got) {
			t.Errorf("commands on registration: %v, want %v", got, want)
		}
		// Sign-in: the app that asks for it is installed once; a second user adds nothing.
		if n := e.signIn("SHARED1", "ann"); n != 1 {
			t.Errorf("first sign-in queued %d commands, want 1", n)
		}
		if n := e.signIn("SHARED1", "bob"); n != 0 {
			t.Errorf("second user's sign-in queued %d commands, want 0", n)
		}
		if n := e.signIn("SHARED1", ""); n != 0 {
			t.Errorf("a guest's sign-in queued %d commands, want 0", n)
		}
		if got, want := e.deviceCommandList(ids[0]), []string{"INSTALL 7401 PENDING", "INSTALL 7402 PENDING"}; !cmp.Equal(want, got) {
			t.Errorf("commands: %v, want %v", got, want)
		}
		e.assertInSync(e.tok, e.acct)
	})
}

func TestPreviewEqualsOutcome(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, gqltest.StackOptions{}, app("7501", total(600)))
		var devs []device
		var first, second []map[string]any
		for i := range 600 {
			s := fmt.Sprintf("PV%03d", i)
			devs = append(devs, iPad(s))
			if i < 500 {
				first = append(first, deviceMember(s))
			}
			if i >= 250 {
				second = append(second, deviceMember(s))
			}
		}
		e.upsertDevices(devs...)
		g1, g2 := e.upsertGroup("g1", nil), e.upsertGroup("g2", nil)
		e.members("setGroupMembers", "g1", first...)
		e.members("setGroupMembers", "g2", second...)
		in := map[string]any{"name": "Preview", "adamId": "7501", "kind": "DEVICE", "groupIds": []string{g1}, "dryRun": true}
		dry := e.createLabel(in)
		if dry.Label != nil || dry.Preview == nil || dry.Preview.AssignCount != 500 || dry.Preview.ReclaimCount != 0 {
			t.Fatalf("dry run of the creation: label %v, preview %+v", dry.Label, dry.Preview)
		}
		if got, _ := e.held("7501"); len(got) != 0 {
			t.Fatalf("a dry run assigned %d licenses", len(got))
		}
		delete(in, "dryRun")
		id := e.createLabelOK(in)
		e.policyIdle(d)
		e.settle(e.acct)
		got, _ := e.held("7501", "ASSIGNED")
		if len(got) != dry.Preview.AssignCount {
			t.Errorf("created: %d assigned, the preview said %d", len(got), dry.Preview.AssignCount)
		}
		// A change touching 500 holders: 250 leave, 100 join, 250 stay.
		ch := e.updateLabel(map[string]any{"id": id, "groupIds": []string{g2}, "dryRun": true})
		want := previewCounts{Assign: 100, Reclaim: 250, Kept: 250}
		if gotP := countsOf(ch.Preview); gotP != want {
			t.Fatalf("preview of the change: %+v, want %+v", gotP, want)
		}
		e.updateLabel(map[string]any{"id": id, "groupIds": []string{g2}})
		e.policyIdle(d)
		e.settle(e.acct)
		lines, _ := e.held("7501")
		n := map[string]int{}
		for _, l := range lines {
			n[strings.SplitN(l, " ", 2)[0]]++
		}
		if n["ASSIGNED"] != 350 || n["RECLAIMED"] != ch.Preview.ReclaimCount || n["ASSIGNED"]-want.Kept != ch.Preview.AssignCount {
			t.Errorf("outcome %v differs from the preview %+v", n, countsOf(ch.Preview))
		}
		e.assertInSync(e.tok, e.acct)
	})
}

type previewCounts struct{ Assign, Reclaim, Kept int }

func countsOf(p *previewView) previewCounts {
	if p == nil {
		return previewCounts{-1, -1, -1}
	}
	return previewCounts{p.AssignCount, p.ReclaimCount, p.KeptCount}
}

package license_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"orchard/apple/applesim"
	"orchard/db"
	"orchard/db/dbtest"
	"orchard/resolvers/gqltest"
)

// User licenses: a user is registered at Apple through the outbox (users/create with the
// user's stable clientUserId) before their first user license is sent, once per account; while
// they have not linked their Apple Account their registration shows the invitation link. A
// USER license "to a device" goes to the device's user; a removed user gives their licenses
// back.

type registrationView struct {
	Account   struct{ ID string }
	Status    string
	InviteURL *string
	Error     *string
}

func (e *env) registrations(externalID string) (string, []registrationView) {
	e.t.Helper()
	var out struct {
		User *struct {
			ClientUserID       string
			AppleRegistrations []registrationView
		}
	}
	e.do(`query($x: String!) { user(externalId: $x) { clientUserId appleRegistrations { account { id } status inviteUrl error } } }`,
		map[string]any{"x": externalID}, &out)
	if out.User == nil {
		e.t.Fatalf("user %s not found", externalID)
	}
	return out.User.ClientUserID, out.User.AppleRegistrations
}

func TestUserLicenses(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, gqltest.StackOptions{}, app("8001"), app("8002"), app("8003", book))
		us := e.upsertUsers("u1", "u2")
		e.upsertDevices(iPad("UD1", "userExternalId", "u2"))

		// Registration through the outbox, then the license.
		id := e.assignOK(userLicense("8001", "u1"))
		a := e.waitStatus(id, "ASSIGNED")
		if deref(a.ClientUserID) != us[0].ClientUserID || a.Kind != "USER" {
			t.Errorf("user license: %s", gqltest.JSON(a))
		}
		simUsers := func() []applesim.UserState {
			var out []applesim.UserState
			for _, u := range e.st.Sim.Users(e.tok) {
				u.IDHash = ""
				out = append(out, u)
			}
			return out
		}
		got := simUsers()
		if len(got) != 1 || got[0].ClientUserID != us[0].ClientUserID || got[0].Email != "u1@example.com" || got[0].Status != "Registered" {
			t.Fatalf("users at Apple: %+v", got)
		}
		inviteCode := got[0].InviteCode
		// users/create went before the associate, once.
		var calls []string
		for _, r := range e.st.Sim.RequestsFor(e.tok) {
			if r.Method == "POST" && (r.Path == "/mdm/v2/users/create" || r.Path == "/mdm/v2/assets/associate") {
				calls = append(calls, r.Path)
			}
		}
		if diff := cmp.Diff([]string{"/mdm/v2/users/create", "/mdm/v2/assets/associate"}, calls); diff != "" {
			t.Errorf("requests to Apple mismatch (-want +got):\n%s", diff)
		}
		// Not associated yet: the registration shows the invitation link.
		var regs []registrationView
		gqltest.WaitFor(t, "the invitation link", waitLong, func() bool {
			_, regs = e.registrations("u1")
			return len(regs) == 1 && regs[0].InviteURL != nil
		})
		if r := regs[0]; r.Status != "REGISTERED" || r.Account.ID != e.acct || inviteCode == "" || !strings.Contains(*r.InviteURL, inviteCode) {
			t.Errorf("registration %s, invite code %q", gqltest.JSON(r), inviteCode)
		}

		// More user licenses for the same user need no new registration; the clientUserId stays.
		e.waitStatus(e.assignOK(userLicense("8002", "u1")), "ASSIGNED")
		e.waitStatus(e.assignOK(userLicense("8003", "u1")), "ASSIGNED") // a book
		again := e.upsertUsers("u1")
		if again[0].ClientUserID != us[0].ClientUserID {
			t.Errorf("clientUserId changed from %s to %s", us[0].ClientUserID, again[0].ClientUserID)
		}
		if got := simUsers(); len(got) != 1 {
			t.Errorf("users at Apple after more licenses: %+v", got)
		}

		// The user accepts the invitation: the link goes away.
		if err := e.st.Sim.AssociateUser(e.tok, us[0].ClientUserID); err != nil {
			t.Fatal(err)
		}
		gqltest.WaitFor(t, "the association", waitLong, func() bool {
			_, regs = e.registrations("u1")
			return len(regs) == 1 && regs[0].Status == "ASSOCIATED"
		})
		if regs[0].InviteURL != nil {
			t.Errorf("an associated user still shows the invitation link %q", *regs[0].InviteURL)
		}

		// A USER license to a device goes to the device's user.
		p := e.assign(map[string]any{"adamId": "8001", "kind": "USER", "target": map[string]any{"serialNumber": "UD1"}})
		if p.Assignment == nil || deref(p.Assignment.ClientUserID) != us[1].ClientUserID {
			t.Fatalf("user license via the device: %s", gqltest.JSON(p))
		}
		u2 := e.waitStatus(p.Assignment.ID, "ASSIGNED")
		if u2.User == nil || u2.User.ExternalID != "u2" {
			t.Errorf("license via the device went to %s", gqltest.JSON(u2.User))
		}
		cuids := []string{}
		for _, u := range simUsers() {
			cuids = append(cuids, u.ClientUserID)
		}
		slices.Sort(cuids)
		want := []string{us[0].ClientUserID, us[1].ClientUserID}
		slices.Sort(want)
		if diff := cmp.Diff(want, cuids); diff != "" {
			t.Errorf("users at Apple mismatch (-want +got):\n%s", diff)
		}

		// A user removed from the directory gives their user licenses back.
		var rm struct {
			RemoveUser struct {
				User           *struct{ Status string }
				ReclaimsQueued int
				UserErrors     []userError
			}
		}
		e.do(`mutation { removeUser(input: {externalId: "u2"}) { user { status } reclaimsQueued userErrors { code message } } }`, nil, &rm)
		if r := rm.RemoveUser; r.User == nil || r.User.Status != "REMOVED" || r.ReclaimsQueued != 1 {
			t.Fatalf("removeUser: %+v", r)
		}
		e.waitStatus(u2.ID, "RECLAIMED")
		e.wantAudit(u2.ID, "license.reclaim", "RULE", "user removed", "removed from the directory")
		// Their registration at Apple is retired.
		gqltest.WaitFor(t, "the removed user's retirement at Apple", waitLong, func() bool {
			_, regs = e.registrations("u2")
			return len(regs) == 1 && regs[0].Status == "RETIRED"
		})
		if st, ok := e.st.Sim.User(e.tok, us[1].ClientUserID); !ok || st != "Retired" {
			t.Errorf("the removed user at Apple: %q", st)
		}
		if st, _ := e.st.Sim.User(e.tok, us[0].ClientUserID); st != "Associated" {
			t.Errorf("the other user at Apple: %q", st)
		}
		// Back in the directory: registered again (same clientUserId) for their next license.
		if back := e.upsertUsers("u2"); back[0].ClientUserID != us[1].ClientUserID {
			t.Errorf("clientUserId of the user back: %s, was %s", back[0].ClientUserID, us[1].ClientUserID)
		}
		e.waitStatus(e.assignOK(userLicense("8002", "u2")), "ASSIGNED")
		if st, _ := e.st.Sim.User(e.tok, us[1].ClientUserID); st != "Registered" {
			t.Errorf("the user back at Apple: %q", st)
		}
		e.assertInSync(e.tok, e.acct)
	})
}

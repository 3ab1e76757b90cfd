package license_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"orchard/apple/applesim"
	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
	"orchard/resolvers/gqltest"
)

// The rules an assignment must meet, each refused with its userErrors code and nothing done:
// R5 (an empty pool; a free app's message says more cost nothing), R9 (no device license over
// a user license Orchard assigned), R11 (cross-country: iOS 9, sold in the device's country,
// B2B exempt), shared iPads, retired devices, books and apps Apple keeps from devices, a
// license held already, an unusable account, unknown targets and malformed input. And the
// assignments the rules allow go through; afterwards Orchard equals the simulator.
func TestAssignmentRules(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		st := gqltest.NewStack(t, d, gqltest.StackOptions{})
		e := &env{t: t, st: st, op: st.Keys[model.RoleOperator]}
		users := e.upsertUsers("u1", "u2", "u3")
		// Devices in GB exist before the accounts' first pass: availability there is looked up.
		devs := e.upsertDevices(
			iPad("US1", "userExternalId", "u1"), iPad("US2", "userExternalId", "u2"), iPad("US3"), iPad("RET1"),
			iPad("SH1", "sharedIPad", true, "userExternalId", "u3"),
			device{"serialNumber": "GBOLD", "platform": "IOS", "osVersion": "8.4.1", "countryCode": "GB"},
			device{"serialNumber": "GBNEW", "platform": "IOS", "osVersion": "17.2", "countryCode": "GB"},
		)
		e.tok, e.acct = e.addAccount("Main", "US",
			app("5001", total(1)), app("5002", total(1), free), app("5003"), app("5004", book),
			app("5005", func(a *applesim.Asset) { a.DeviceAssignable = false }),
			app("5006", notSoldIn("GB")), app("5007", notSoldIn("GB"), func(a *applesim.Asset) { a.B2B = true }),
			app("5008"), app("5009"))
		tok2, acct2 := e.addAccount("Revoked", "US", app("5010"))
		tok3, acct3 := e.addAccount("Claimed", "US", app("5011"))
		admin := st.Keys[model.RoleAdmin]

		// The state the refusals meet.
		e.do(`mutation { retireDevice(input: {device: {serialNumber: "RET1"}}) { userErrors { code } } }`, nil, &struct{}{})
		e.assignOK(deviceLicense("5001", "US3")) // the paid app's only license
		e.assignOK(deviceLicense("5002", "US3")) // the free app's only license
		e.assignOK(userLicense("5003", "u1"))    // a user license Orchard assigned (R9)
		e.assignOK(deviceLicense("5003", "US3"))
		// A user license found at Apple (assigned in Apple Business Manager) does not block.
		st.Sim.AddUser(e.tok, users[1].ClientUserID, "u2@example.com", "")
		if err := st.Sim.AddAssignment(e.tok, "5009", "", users[1].ClientUserID); err != nil {
			t.Fatal(err)
		}
		e.sync(e.acct)
		if got := e.assignments(e.acct, "ASSIGNED"); !slices.ContainsFunc(got, func(a assignmentView) bool {
			return a.Pool.AdamID == "5009" && a.Origin == "FOUND_AT_APPLE" && deref(a.ClientUserID) == users[1].ClientUserID && a.User != nil && a.User.ExternalID == "u2"
		}) {
			t.Fatalf("the user license assigned at Apple was not found: %s", gqltest.JSON(got))
		}
		// The second account's token is revoked at Apple.
		st.Sim.SetRevoked(tok2, true)
		st.Do(t, admin, `mutation($id: ID!) { syncAccount(input: {accountId: $id}) { userErrors { code } } }`, map[string]any{"id": acct2}).MustData(t, &struct{}{})
		// The third account's token is taken over by another MDM.
		st.Sim.SetMDMInfo(tok3, "other-mdm", "Other MDM", "1.0")
		st.Do(t, admin, `mutation($id: ID!) { syncAccount(input: {accountId: $id}) { userErrors { code } } }`, map[string]any{"id": acct3}).MustData(t, &struct{}{})
		for acct, health := range map[string]string{acct2: "REVOKED", acct3: "CLAIMED_ELSEWHERE"} {
			gqltest.WaitFor(t, "the token's health "+health, waitLong, func() bool {
				var out struct{ Account struct{ Health string } }
				e.do(`query($id: ID!) { account(id: $id) { health } }`, map[string]any{"id": acct}, &out)
				return out.Account.Health == health
			})
		}
		e.settle(e.acct)
		before := len(e.assignments(e.acct))

		target := func(kv ...string) map[string]any {
			m := map[string]any{}
			for i := 0; i+1 < len(kv); i += 2 {
				m[kv[i]] = kv[i+1]
			}
			return m
		}
		refusals := []struct {
			name        string
			in          map[string]any
			code        string
			contains    []string
			notContains []string
		}{
			{"R5 free app with no license left", deviceLicense("5002", "US1"), "NO_LICENSES_AVAILABLE",
				[]string{"is free", "cost nothing", "Apple Business Manager"}, nil},
			{"R5 paid app with no license left", deviceLicense("5001", "US1"), "NO_LICENSES_AVAILABLE",
				[]string{"buy more"}, []string{"free", "cost nothing"}},
			{"R9 device license over the user's license", deviceLicense("5003", "US1"), "USER_LICENSE_EXISTS", []string{"US1"}, nil},
			{"R11 cross-country below iOS 9", deviceLicense("5008", "GBOLD"), "OS_TOO_OLD_FOR_CROSS_COUNTRY", []string{"iOS 9"}, nil},
			{"R11 app not sold in the device's country", deviceLicense("5006", "GBNEW"), "APP_NOT_SOLD_IN_COUNTRY", []string{"not sold in GB"}, nil},
			{"user license to a shared iPad", map[string]any{"adamId": "5008", "kind": "USER", "target": target("serialNumber", "SH1")},
				"SHARED_IPAD_NEEDS_DEVICE_LICENSE", []string{"shared iPad"}, nil},
			{"retired device", deviceLicense("5008", "RET1"), "DEVICE_RETIRED", nil, nil},
			{"book to a device", deviceLicense("5004", "US1"), "NOT_DEVICE_ASSIGNABLE", []string{"books"}, nil},
			{"app Apple keeps from devices", deviceLicense("5005", "US1"), "NOT_DEVICE_ASSIGNABLE", nil, nil},
			{"license held already", deviceLicense("5003", "US3"), "ALREADY_ASSIGNED", nil, nil},
			{"user license held already", userLicense("5003", "u1"), "ALREADY_ASSIGNED", nil, nil},
			{"revoked token", map[string]any{"adamId": "5010", "accountId": acct2, "kind": "DEVICE", "target": target("serialNumber", "US1")},
				"ACCOUNT_UNAVAILABLE", []string{"REVOKED"}, nil},
			{"token claimed by another MDM", map[string]any{"adamId": "5011", "kind": "DEVICE", "target": target("serialNumber", "US1")},
				"ACCOUNT_UNAVAILABLE", []string{"CLAIMED_ELSEWHERE"}, nil},
			{"unknown device", deviceLicense("5008", "NO-SUCH"), "NOT_FOUND", nil, nil},
			{"unknown user", userLicense("5008", "nobody"), "NOT_FOUND", nil, nil},
			{"unknown app", deviceLicense("999999", "US1"), "NOT_FOUND", nil, nil},
			{"malformed global id", map[string]any{"appId": "not-an-id", "kind": "DEVICE", "target": target("serialNumber", "US1")}, "INVALID_INPUT", nil, nil},
			{"global id of another type", map[string]any{"appId": devs[0], "kind": "DEVICE", "target": target("serialNumber", "US1")}, "INVALID_INPUT", nil, nil},
			{"two targets", map[string]any{"adamId": "5008", "kind": "DEVICE", "target": target("serialNumber", "US1", "externalId", "u1")}, "INVALID_INPUT", nil, nil},
			{"no app", map[string]any{"kind": "DEVICE", "target": target("serialNumber", "US1")}, "INVALID_INPUT", nil, nil},
			{"device license to a user", map[string]any{"adamId": "5008", "kind": "DEVICE", "target": target("externalId", "u1")}, "INVALID_INPUT", nil, nil},
		}
		for _, c := range refusals {
			p := e.assign(c.in)
			if p.Assignment != nil || len(p.UserErrors) != 1 {
				t.Errorf("%s: got %s, want one userError %s", c.name, gqltest.JSON(p), c.code)
				continue
			}
			ue := p.UserErrors[0]
			if ue.Code != c.code {
				t.Errorf("%s: code %s (%q), want %s", c.name, ue.Code, ue.Message, c.code)
			}
			for _, s := range c.contains {
				if !strings.Contains(ue.Message, s) {
					t.Errorf("%s: message %q does not say %q", c.name, ue.Message, s)
				}
			}
			for _, s := range c.notContains {
				if strings.Contains(ue.Message, s) {
					t.Errorf("%s: message %q says %q", c.name, ue.Message, s)
				}
			}
		}
		if n := len(e.assignments(e.acct)); n != before {
			t.Errorf("refused assignments left %d rows", n-before)
		}

		// What the rules allow.
		allowed := []struct {
			name string
			in   map[string]any
		}{
			{"R9: a user license found at Apple does not block", deviceLicense("5009", "US2")},
			{"R11: a B2B app is assignable in every country", deviceLicense("5007", "GBNEW")},
			{"R11: an app sold in the device's country, iOS 9 or later", deviceLicense("5008", "GBNEW")},
			{"a device license to a shared iPad", deviceLicense("5008", "SH1")},
		}
		var ids []string
		for _, c := range allowed {
			p := e.assign(c.in)
			if p.Assignment == nil || len(p.UserErrors) > 0 {
				t.Errorf("%s: refused: %+v", c.name, p.UserErrors)
				continue
			}
			if p.Note == nil || !strings.Contains(*p.Note, `account "Main"`) || p.Account == nil || p.Account.ID != e.acct {
				t.Errorf("%s: the chosen account is not said: note %v, account %v", c.name, p.Note, p.Account)
			}
			ids = append(ids, p.Assignment.ID)
		}
		for _, id := range ids {
			a := e.waitStatus(id, "ASSIGNED")
			e.wantAudit(id, "license.assign", "API_KEY", operatorName, "device license", deref(a.SerialNumber))
		}
		e.assertInSync(e.tok, e.acct)
		for _, tok := range []string{tok2, tok3} {
			if got := st.Sim.Assignments(tok); len(got) != 0 {
				t.Errorf("an unusable account got %+v", got)
			}
		}
	})
}

// A free app's pool that runs out: the message says more cost nothing, and once more are
// added in Apple Business Manager (a purchase at no cost), the next sync makes them available.
func TestFreeAppMoreLicensesAfterSync(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, gqltest.StackOptions{}, app("5101", total(1), free))
		e.upsertDevices(iPad("F1"), iPad("F2"))
		e.assignOK(deviceLicense("5101", "F1"))
		p := e.assign(deviceLicense("5101", "F2"))
		if !cmp.Equal(codes(p.UserErrors), []string{"NO_LICENSES_AVAILABLE"}) || !strings.Contains(p.UserErrors[0].Message, "cost nothing") {
			t.Fatalf("free pool empty: %+v", p)
		}
		if err := e.st.Sim.Purchase(e.tok, "5101", 5); err != nil {
			t.Fatal(err)
		}
		gqltest.WaitFor(t, "the new licenses", waitLong, func() bool {
			var out struct {
				LicensePools struct {
					Nodes []struct{ AvailableCount int }
				}
			}
			e.do(`{ licensePools(first: 10) { nodes { availableCount } } }`, nil, &out)
			if len(out.LicensePools.Nodes) == 1 && out.LicensePools.Nodes[0].AvailableCount == 5 {
				return true
			}
			time.Sleep(100 * time.Millisecond)
			return false
		})
		e.waitStatus(e.assignOK(deviceLicense("5101", "F2")), "ASSIGNED")
		e.assertInSync(e.tok, e.acct)
	})
}

package license_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/resolvers/gqltest"
)

// Licenses coming back (R4): a retired device's device licenses (R4b), an app gone from a
// device (R4c), and an admin's reclaim of one license, of an app in an account, or of a whole
// account (R4d). Each reclaim is audited with who or what caused it and why, and afterwards
// Orchard's picture equals the simulator's.

// statuses reads the states of named assignments.
func (e *env) statuses(ids map[string]string) map[string]string {
	e.t.Helper()
	out := map[string]string{}
	for name, id := range ids {
		out[name] = e.assignment(id).Status
	}
	return out
}

// waitStatuses waits until named assignments are in the wanted states, and reports the
// difference if they never are.
func (e *env) waitStatuses(ids map[string]string, want map[string]string) {
	e.t.Helper()
	var got map[string]string
	ok := false
	gqltest.WaitFor(e.t, "assignment states", waitLong, func() bool {
		got = e.statuses(ids)
		ok = cmp.Equal(want, got)
		// Stop early on a state that can only be wrong for good.
		return ok || e.t.Failed()
	})
	if diff := cmp.Diff(want, got); diff != "" {
		e.t.Fatalf("assignment states mismatch (-want +got):\n%s", diff)
	}
}

func TestRetireDeviceGivesDeviceLicensesBack(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, gqltest.StackOptions{}, app("2001"), app("2002"))
		e.upsertUsers("u1")
		devs := e.upsertDevices(iPad("R4B1", "userExternalId", "u1"), iPad("R4B2"))
		ids := map[string]string{
			"2001 on R4B1": e.assignOK(deviceLicense("2001", "R4B1")),
			"2001 on R4B2": e.assignOK(deviceLicense("2001", "R4B2")),
			"2002 to u1":   e.assignOK(userLicense("2002", "u1")),
		}
		e.waitStatuses(ids, map[string]string{"2001 on R4B1": "ASSIGNED", "2001 on R4B2": "ASSIGNED", "2002 to u1": "ASSIGNED"})
		var install struct {
			SendInstallRequest struct{ Commands []struct{ ID string } }
		}
		e.do(`mutation { sendInstallRequest(input: {adamId: "2001", devices: [{serialNumber: "R4B1"}]}) { commands { id } } }`, nil, &install)
		if len(install.SendInstallRequest.Commands) != 1 {
			t.Fatalf("install request: %+v", install)
		}

		var out struct {
			RetireDevice struct {
				Device         *struct{ Status string }
				ReclaimsQueued int
				UserErrors     []userError
			}
		}
		e.do(`mutation { retireDevice(input: {device: {serialNumber: "R4B1"}, reason: "stolen"}) { device { status } reclaimsQueued userErrors { code message } } }`, nil, &out)
		if r := out.RetireDevice; len(r.UserErrors) > 0 || r.Device == nil || r.Device.Status != "RETIRED" || r.ReclaimsQueued != 1 {
			t.Fatalf("retireDevice: %+v", r)
		}
		// Only the retired device's device license comes back; its user keeps their license.
		e.waitStatuses(ids, map[string]string{"2001 on R4B1": "RECLAIMED", "2001 on R4B2": "ASSIGNED", "2002 to u1": "ASSIGNED"})
		a := e.assignment(ids["2001 on R4B1"])
		if !strings.Contains(deref(a.ReclaimReason), "retired: stolen") || deref(a.ReclaimedBy) != "rule:R4b device retired" {
			t.Errorf("reclaim of the retired device's license: reason %q, by %q", deref(a.ReclaimReason), deref(a.ReclaimedBy))
		}
		e.wantAudit(ids["2001 on R4B1"], "license.reclaim", "RULE", "R4b device retired", "stolen")
		e.wantAudit(devs[0], "device.retire", "API_KEY", operatorName, "R4B1 retired; 1 licenses taken back")
		// Its pending commands are cancelled.
		var cmd struct{ Node struct{ Status string } }
		e.do(`query($id: ID!) { node(id: $id) { ... on DeviceCommand { status } } }`, map[string]any{"id": install.SendInstallRequest.Commands[0].ID}, &cmd)
		if cmd.Node.Status != "CANCELLED" {
			t.Errorf("a retired device's pending command is %s", cmd.Node.Status)
		}

		// Retiring again does nothing more; a retired device gets no new license.
		e.do(`mutation { retireDevice(input: {device: {serialNumber: "R4B1"}}) { device { status } reclaimsQueued userErrors { code message } } }`, nil, &out)
		if out.RetireDevice.ReclaimsQueued != 0 || len(out.RetireDevice.UserErrors) > 0 {
			t.Errorf("second retireDevice: %+v", out.RetireDevice)
		}
		if p := e.assign(deviceLicense("2002", "R4B1")); p.Assignment != nil || !cmp.Equal(codes(p.UserErrors), []string{"DEVICE_RETIRED"}) {
			t.Errorf("assign to a retired device: %+v", p)
		}
		e.assertInSync(e.tok, e.acct)
	})
}

func TestAppRemovedFromDeviceGivesLicenseBack(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, gqltest.StackOptions{}, app("3001"), app("3002"), app("3003"))
		e.upsertUsers("u1")
		e.upsertDevices(iPad("R4C1", "userExternalId", "u1"), iPad("R4C2", "userExternalId", "u1"), iPad("R4C3"))
		ids := map[string]string{
			"3001 on R4C1": e.assignOK(deviceLicense("3001", "R4C1")),
			"3002 to u1":   e.assignOK(userLicense("3002", "u1")),
			"3003 on R4C3": e.assignOK(deviceLicense("3003", "R4C3")),
		}
		e.waitStatuses(ids, map[string]string{"3001 on R4C1": "ASSIGNED", "3002 to u1": "ASSIGNED", "3003 on R4C3": "ASSIGNED"})

		inv := func(bundles ...string) []map[string]any {
			out := []map[string]any{}
			for _, b := range bundles {
				out = append(out, map[string]any{"bundleId": b, "managed": true, "version": "1.0"})
			}
			return out
		}
		steps := []struct {
			name         string
			serial       string
			apps         []map[string]any
			wantReclaims int
			want         map[string]string
		}{
			{"the apps are installed", "R4C1", inv("com.example.app3001", "com.example.app3002", "com.apple.Pages"), 0,
				map[string]string{"3001 on R4C1": "ASSIGNED", "3002 to u1": "ASSIGNED", "3003 on R4C3": "ASSIGNED"}},
			{"the user's second device has the user-licensed app", "R4C2", inv("com.example.app3002"), 0,
				map[string]string{"3001 on R4C1": "ASSIGNED", "3002 to u1": "ASSIGNED", "3003 on R4C3": "ASSIGNED"}},
			{"an app never reported on its device is not taken back", "R4C3", inv("com.apple.Pages"), 0,
				map[string]string{"3001 on R4C1": "ASSIGNED", "3002 to u1": "ASSIGNED", "3003 on R4C3": "ASSIGNED"}},
			{"both apps leave the first device: the device license comes back, the user license stays (still on the second)", "R4C1", inv("com.apple.Pages"), 1,
				map[string]string{"3001 on R4C1": "RECLAIMED", "3002 to u1": "ASSIGNED", "3003 on R4C3": "ASSIGNED"}},
			{"the app leaves the user's last device: the user license comes back", "R4C2", inv(), 1,
				map[string]string{"3001 on R4C1": "RECLAIMED", "3002 to u1": "RECLAIMED", "3003 on R4C3": "ASSIGNED"}},
		}
		for _, s := range steps {
			var out struct {
				ReportDeviceApps struct {
					ReclaimsQueued int
					UserErrors     []userError
				}
			}
			e.do(`mutation($s: String!, $apps: [DeviceAppInput!]!) { reportDeviceApps(input: {device: {serialNumber: $s}, apps: $apps}) { reclaimsQueued userErrors { code message } } }`,
				map[string]any{"s": s.serial, "apps": s.apps}, &out)
			if got := out.ReportDeviceApps; len(got.UserErrors) > 0 || got.ReclaimsQueued != s.wantReclaims {
				t.Fatalf("%s: reportDeviceApps %+v, want %d reclaims", s.name, got, s.wantReclaims)
			}
			e.waitStatuses(ids, s.want)
		}
		for _, name := range []string{"3001 on R4C1", "3002 to u1"} {
			a := e.assignment(ids[name])
			if deref(a.ReclaimedBy) != "rule:R4c app removed from device" || !strings.Contains(deref(a.ReclaimReason), "was removed from device") {
				t.Errorf("%s: reclaimed by %q because %q", name, deref(a.ReclaimedBy), deref(a.ReclaimReason))
			}
			e.wantAudit(ids[name], "license.reclaim", "RULE", "R4c app removed from device", "removed from device")
		}
		e.assertInSync(e.tok, e.acct)
	})
}

func TestAdminReclaims(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, gqltest.StackOptions{}, app("4001"), app("4002"), app("4003", book))
		tok2, acct2 := e.addAccount("Second", "US", app("4001"))
		e.upsertUsers("u1")
		e.upsertDevices(iPad("R4D1"), iPad("R4D2"), iPad("R4D3"), iPad("R4D4"))
		in := func(adam, serial, acct string) map[string]any {
			m := deviceLicense(adam, serial)
			m["accountId"] = acct
			return m
		}
		ids := map[string]string{
			"4001 on 1":         e.assignOK(in("4001", "R4D1", e.acct)),
			"4001 on 2":         e.assignOK(in("4001", "R4D2", e.acct)),
			"4001 on 3":         e.assignOK(in("4001", "R4D3", e.acct)),
			"4002 on 1":         e.assignOK(in("4002", "R4D1", e.acct)),
			"4002 on 2":         e.assignOK(in("4002", "R4D2", e.acct)),
			"book to u1":        e.assignOK(userLicense("4003", "u1")),
			"4001 on 4, second": e.assignOK(in("4001", "R4D4", acct2)),
		}
		want := map[string]string{}
		for k := range ids {
			want[k] = "ASSIGNED"
		}
		e.waitStatuses(ids, want)

		// One license.
		var one struct {
			ReclaimLicense struct {
				Assignment *struct{ Status string }
				UserErrors []userError
			}
		}
		e.do(`mutation($id: ID!) { reclaimLicense(input: {assignmentId: $id, reason: "left the class"}) { assignment { status } userErrors { code message } } }`,
			map[string]any{"id": ids["4002 on 1"]}, &one)
		if r := one.ReclaimLicense; r.Assignment == nil || r.Assignment.Status != "RECLAIMING" {
			t.Fatalf("reclaimLicense: %+v", r)
		}
		want["4002 on 1"] = "RECLAIMED"
		e.waitStatuses(ids, want)
		if a := e.assignment(ids["4002 on 1"]); deref(a.ReclaimReason) != "left the class" || !strings.HasPrefix(deref(a.ReclaimedBy), "api-key:") {
			t.Errorf("single reclaim recorded as %q by %q", deref(a.ReclaimReason), deref(a.ReclaimedBy))
		}
		e.wantAudit(ids["4002 on 1"], "license.reclaim", "API_KEY", operatorName, "left the class")
		// A book is not revocable: Apple does not take it back.
		e.do(`mutation($id: ID!) { reclaimLicense(input: {assignmentId: $id}) { assignment { status } userErrors { code message } } }`,
			map[string]any{"id": ids["book to u1"]}, &one)
		if r := one.ReclaimLicense; r.Assignment != nil || !cmp.Equal(codes(r.UserErrors), []string{"INVALID_INPUT"}) {
			t.Errorf("reclaimLicense of a book: %+v", r)
		}

		var many struct {
			ReclaimLicenses struct {
				ReclaimsQueued int
				UserErrors     []userError
			}
		}
		reclaimMany := func(vars map[string]any) int {
			t.Helper()
			e.do(`mutation($acct: ID!, $app: ID) { reclaimLicenses(input: {accountId: $acct, appId: $app, reason: "end of term"}) { reclaimsQueued userErrors { code message } } }`, vars, &many)
			if len(many.ReclaimLicenses.UserErrors) > 0 {
				t.Fatalf("reclaimLicenses: %+v", many.ReclaimLicenses.UserErrors)
			}
			return many.ReclaimLicenses.ReclaimsQueued
		}
		// Every license of one app in one account (not the other account's).
		var appOut struct{ App struct{ ID string } }
		e.do(`{ app(adamId: "4001") { id } }`, nil, &appOut)
		if n := reclaimMany(map[string]any{"acct": e.acct, "app": appOut.App.ID}); n != 3 {
			t.Errorf("reclaimLicenses of app 4001: %d queued, want 3", n)
		}
		want["4001 on 1"], want["4001 on 2"], want["4001 on 3"] = "RECLAIMED", "RECLAIMED", "RECLAIMED"
		e.waitStatuses(ids, want)
		// Every license of the account: the rest, but the book stays with its user.
		if n := reclaimMany(map[string]any{"acct": e.acct}); n != 1 {
			t.Errorf("reclaimLicenses of the account: %d queued, want 1", n)
		}
		want["4002 on 2"] = "RECLAIMED"
		e.waitStatuses(ids, want)
		e.wantAudit(ids["4002 on 2"], "license.reclaim", "API_KEY", operatorName, "end of term")

		e.assertInSync(e.tok, e.acct)
		e.assertInSync(tok2, acct2)
		if got := e.st.Sim.Assignments(e.tok); len(got) != 1 || got[0].AdamID != "4003" {
			t.Errorf("the simulator holds %+v; want only the book", got)
		}
	})
}

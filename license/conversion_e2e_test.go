package license_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"orchard/apple/applesim"
	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
	"orchard/resolvers/gqltest"
)

// Commands for the MDM: converting an unmanaged app to managed takes a license first (R6) and
// queues a TAKE_MANAGEMENT command that waits until Apple confirms the license; device-licensed
// apps are updated by explicit install requests (R7), only on devices holding a device license.
// The MDM reads the commands (deviceCommands) and acknowledges them.

type commandView struct {
	ID, Kind, Status   string
	WaitsForAssignment bool
	Device             struct{ SerialNumber string }
	App                struct{ AdamID string }
	Assignment         *struct{ ID, Status string }
}

const commandFields = `id kind status waitsForAssignment device { serialNumber } app { adamId } assignment { id status }`

// commands lists device commands matching a filter.
func (e *env) commands(filter map[string]any) []commandView {
	e.t.Helper()
	var out struct {
		DeviceCommands struct {
			Nodes      []commandView
			TotalCount int
		}
	}
	e.do(`query($f: DeviceCommandFilter) { deviceCommands(first: 100, filter: $f) { totalCount nodes { `+commandFields+` } } }`, map[string]any{"f": filter}, &out)
	if out.DeviceCommands.TotalCount != len(out.DeviceCommands.Nodes) {
		e.t.Errorf("deviceCommands: totalCount %d, %d nodes", out.DeviceCommands.TotalCount, len(out.DeviceCommands.Nodes))
	}
	return out.DeviceCommands.Nodes
}

type convertPayload struct {
	Assignment *assignmentView
	Command    *commandView
	UserErrors []userError
}

func (e *env) convert(serial, adamID string) convertPayload {
	e.t.Helper()
	var out struct{ ConvertAppToManaged convertPayload }
	e.do(`mutation($s: String!, $a: String!) { convertAppToManaged(input: {device: {serialNumber: $s}, adamId: $a}) {
		assignment { `+assignmentFields+` } command { `+commandFields+` } userErrors { field message code } } }`,
		map[string]any{"s": serial, "a": adamID}, &out)
	return out.ConvertAppToManaged
}

type reportPayload struct {
	ReclaimsQueued       int
	ConversionCandidates []struct {
		App   struct{ AdamID string }
		Pools []struct{ AdamID string }
	}
	UserErrors []userError
}

func (e *env) report(serial string, apps ...map[string]any) reportPayload {
	e.t.Helper()
	if apps == nil {
		apps = []map[string]any{}
	}
	var out struct{ ReportDeviceApps reportPayload }
	e.do(`mutation($s: String!, $apps: [DeviceAppInput!]!) { reportDeviceApps(input: {device: {serialNumber: $s}, apps: $apps}) {
		reclaimsQueued conversionCandidates { app { adamId } pools { adamId } } userErrors { code message } } }`,
		map[string]any{"s": serial, "apps": apps}, &out)
	if len(out.ReportDeviceApps.UserErrors) > 0 {
		e.t.Fatalf("reportDeviceApps refused: %+v", out.ReportDeviceApps.UserErrors)
	}
	return out.ReportDeviceApps
}

func installed(bundleID string, managed bool) map[string]any {
	return map[string]any{"bundleId": bundleID, "managed": managed, "version": "1.0"}
}

func TestConvertAppToManaged(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, gqltest.StackOptions{}, app("6001"), app("6002"))
		devs := e.upsertDevices(iPad("C1"), iPad("C2"))

		// The inventory offers the unmanaged app with licenses for conversion.
		r := e.report("C1", installed("com.example.app6001", false), installed("com.example.app6002", true), installed("com.apple.Pages", false))
		if len(r.ConversionCandidates) != 1 || r.ConversionCandidates[0].App.AdamID != "6001" || len(r.ConversionCandidates[0].Pools) != 1 {
			t.Errorf("conversion candidates: %s", gqltest.JSON(r.ConversionCandidates))
		}
		e.report("C2", installed("com.example.app6001", true))
		// Only an unmanaged app in the device's inventory can be converted.
		for _, c := range []struct{ name, serial, adam, code string }{
			{"an unknown app", "C1", "6009", "NOT_FOUND"},
			{"an app not in the device's inventory", "C2", "6002", "INVALID_INPUT"},
			{"an app managed already", "C2", "6001", "CONFLICT"},
			{"an unknown device", "C9", "6001", "NOT_FOUND"},
		} {
			if p := e.convert(c.serial, c.adam); p.Assignment != nil || !cmp.Equal(codes(p.UserErrors), []string{c.code}) {
				t.Errorf("%s: %s, want %s", c.name, gqltest.JSON(p), c.code)
			}
		}
		if n := len(e.assignments(e.acct)); n != 0 {
			t.Fatalf("refused conversions left %d assignments", n)
		}

		// Hold the account (Apple answers 503 with Retry-After), so that the license stays
		// unconfirmed while the command is looked at.
		e.st.Sim.SetFault(e.tok, applesim.Fault{Kind: applesim.FaultUnavailable503, RetryAfterSeconds: 2, Count: 1})
		e.st.Do(t, e.st.Keys[model.RoleAdmin], `mutation($id: ID!) { syncAccount(input: {accountId: $id}) { userErrors { code } } }`,
			map[string]any{"id": e.acct}).MustData(t, &struct{}{})
		accts, err := d.ListLiveAccounts(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		gqltest.WaitFor(t, "the account to be held", waitLong, func() bool {
			a, err := d.AccountByID(context.Background(), accts[0].ID)
			return err == nil && a.ThrottledUntil != nil
		})
		held := func() bool {
			a, err := d.AccountByID(context.Background(), accts[0].ID)
			return err == nil && a.ThrottledUntil != nil && a.ThrottledUntil.After(db.Now())
		}

		p := e.convert("C1", "6001")
		if p.Assignment == nil || p.Command == nil || len(p.UserErrors) > 0 {
			t.Fatalf("convertAppToManaged: %s", gqltest.JSON(p))
		}
		a, cmd := p.Assignment, p.Command
		if a.Origin != "CONVERSION" || a.Kind != "DEVICE" || deref(a.SerialNumber) != "C1" || a.Pool.AdamID != "6001" {
			t.Errorf("the conversion's license: %s", gqltest.JSON(a))
		}
		if cmd.Kind != "TAKE_MANAGEMENT" || cmd.Status != "PENDING" || cmd.Device.SerialNumber != "C1" || cmd.App.AdamID != "6001" ||
			cmd.Assignment == nil || cmd.Assignment.ID != a.ID {
			t.Errorf("the conversion's command: %s", gqltest.JSON(cmd))
		}
		// Until Apple confirms the license, the MDM must not act on the command.
		listed := e.commands(map[string]any{"deviceId": devs[0]})
		stillHeld := held()
		if len(listed) != 1 || listed[0].ID != cmd.ID {
			t.Fatalf("deviceCommands of C1: %s", gqltest.JSON(listed))
		}
		if stillHeld {
			if a.Status != "PENDING" || !cmd.WaitsForAssignment || !listed[0].WaitsForAssignment || listed[0].Assignment.Status != "PENDING" {
				t.Errorf("while Apple has not confirmed: assignment %s, command waits %v, listed %s", a.Status, cmd.WaitsForAssignment, gqltest.JSON(listed))
			}
		} else {
			t.Log("the hold ended before the command could be looked at (slow machine)")
		}
		// Apple confirms after the hold: the command may go.
		e.waitStatus(a.ID, "ASSIGNED")
		if got := e.commands(map[string]any{"deviceId": devs[0]}); len(got) != 1 || got[0].WaitsForAssignment || got[0].Status != "PENDING" {
			t.Errorf("after Apple confirmed: %s", gqltest.JSON(got))
		}
		e.wantAudit(a.ID, "license.assign", "API_KEY", operatorName, "converting the unmanaged app on device C1")
		// Converting again reuses the license and the command.
		if again := e.convert("C1", "6001"); again.Assignment == nil || again.Assignment.ID != a.ID || again.Command == nil || again.Command.ID != cmd.ID {
			t.Errorf("second conversion: %s", gqltest.JSON(again))
		}

		// The MDM acknowledges the command.
		var ack struct {
			AcknowledgeDeviceCommands struct {
				Commands   []commandView
				UserErrors []userError
			}
		}
		e.do(`mutation($ids: [ID!]!) { acknowledgeDeviceCommands(input: {ids: $ids, result: "managed"}) { commands { `+commandFields+` } userErrors { code message } } }`,
			map[string]any{"ids": []string{cmd.ID}}, &ack)
		if got := ack.AcknowledgeDeviceCommands; len(got.UserErrors) > 0 || len(got.Commands) != 1 || got.Commands[0].Status != "ACKNOWLEDGED" {
			t.Errorf("acknowledgeDeviceCommands: %s", gqltest.JSON(got))
		}
		if got := e.commands(map[string]any{"status": "ACKNOWLEDGED"}); len(got) != 1 || got[0].ID != cmd.ID {
			t.Errorf("acknowledged commands: %s", gqltest.JSON(got))
		}
		e.do(`mutation($ids: [ID!]!) { acknowledgeDeviceCommands(input: {ids: $ids}) { commands { id } userErrors { code message } } }`,
			map[string]any{"ids": []string{cmd.ID}}, &ack)
		if got := ack.AcknowledgeDeviceCommands; len(got.Commands) != 0 || !cmp.Equal(codes(got.UserErrors), []string{"NOT_FOUND"}) {
			t.Errorf("acknowledging twice: %s", gqltest.JSON(got))
		}
		e.assertInSync(e.tok, e.acct)
	})
}

func TestSendInstallRequest(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, gqltest.StackOptions{}, app("7001"), app("7002"))
		e.upsertUsers("u1")
		e.upsertDevices(iPad("I1"), iPad("I2"), iPad("I3", "userExternalId", "u1"), iPad("I4"))
		for _, s := range []string{"I1", "I2"} {
			e.waitStatus(e.assignOK(deviceLicense("7001", s)), "ASSIGNED")
		}
		e.waitStatus(e.assignOK(userLicense("7001", "u1")), "ASSIGNED") // a user license: the App Store updates it
		e.waitStatus(e.assignOK(deviceLicense("7002", "I4")), "ASSIGNED")

		type payload struct {
			Commands   []commandView
			UserErrors []userError
		}
		send := func(in map[string]any) payload {
			t.Helper()
			var out struct{ SendInstallRequest payload }
			e.do(`mutation($in: SendInstallRequestInput!) { sendInstallRequest(input: $in) { commands { `+commandFields+` } userErrors { field message code } } }`,
				map[string]any{"in": in}, &out)
			return out.SendInstallRequest
		}
		serials := func(cs []commandView) []string {
			out := []string{}
			for _, c := range cs {
				if c.Kind != "UPDATE" || c.App.AdamID != "7001" || c.Status != "PENDING" || c.WaitsForAssignment {
					t.Errorf("unexpected command %s", gqltest.JSON(c))
				}
				out = append(out, c.Device.SerialNumber)
			}
			return out
		}
		// Named devices: a command where a device license is held, a refusal elsewhere.
		p := send(map[string]any{"adamId": "7001", "kind": "UPDATE", "devices": []map[string]any{{"serialNumber": "I1"}, {"serialNumber": "I3"}, {"serialNumber": "I4"}}})
		if diff := cmp.Diff([]string{"I1"}, serials(p.Commands)); diff != "" {
			t.Errorf("commands for named devices mismatch (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]userError{
			{Field: []string{"input", "devices", "1"}, Code: "NOT_FOUND"},
			{Field: []string{"input", "devices", "2"}, Code: "NOT_FOUND"},
		}, p.UserErrors, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Message" }, cmp.Ignore())); diff != "" {
			t.Errorf("refusals for devices without a device license mismatch (-want +got):\n%s", diff)
		}
		// No devices named: every device holding a device license (the pending one is reused).
		p = send(map[string]any{"adamId": "7001"})
		if diff := cmp.Diff([]string{"I1", "I2"}, serials(p.Commands)); diff != "" || len(p.UserErrors) > 0 {
			t.Errorf("commands for every holder mismatch (-want +got):\n%s%v", diff, p.UserErrors)
		}
		if got := serials(e.commands(map[string]any{"kind": "UPDATE"})); !cmp.Equal(got, []string{"I1", "I2"}) {
			t.Errorf("deviceCommands of kind UPDATE: %v", got)
		}
		var app struct{ App struct{ ID string } }
		e.do(`{ app(adamId: "7001") { id } }`, nil, &app)
		e.wantAudit(app.App.ID, "app.install_request", "API_KEY", operatorName, "UPDATE", "2 devices")
		e.assertInSync(e.tok, e.acct)
	})
}

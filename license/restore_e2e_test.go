package license_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/resolvers/gqltest"
)

// R8: device-licensed apps are not in device backups. After the MDM reports a device restored
// (upsertDevices with restored: true), the API shows which device-licensed apps it must get
// again: a REINSTALL command for each standing device license (the one on its way waits for
// Apple), none for a license being taken back, a user license, or another device; the device
// shows when it was restored. Reporting it again queues nothing twice.
func TestR8RestoredDeviceMustGetItsDeviceLicensedAppsAgain(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, gqltest.StackOptions{}, app("8001"), app("8002"), app("8003"))
		e.upsertUsers("u1")
		ids := e.upsertDevices(iPad("R81", "userExternalId", "u1"), iPad("R82"))
		kept := e.assignOK(deviceLicense("8001", "R81"))
		gone := e.assignOK(deviceLicense("8002", "R81"))
		e.waitStatus(kept, "ASSIGNED")
		e.waitStatus(gone, "ASSIGNED")
		e.waitStatus(e.assignOK(userLicense("8003", "u1")), "ASSIGNED")
		e.waitStatus(e.assignOK(deviceLicense("8001", "R82")), "ASSIGNED")
		var reclaim struct {
			ReclaimLicense struct{ UserErrors []userError }
		}
		e.do(`mutation($id: ID!) { reclaimLicense(input: {assignmentId: $id}) { userErrors { code message } } }`, map[string]any{"id": gone}, &reclaim)
		if ue := reclaim.ReclaimLicense.UserErrors; len(ue) > 0 {
			t.Fatalf("reclaimLicense: %+v", ue)
		}

		restore := func(serial string) int {
			t.Helper()
			var out struct {
				UpsertDevices struct {
					ReinstallCommands int
					UserErrors        []userError
				}
			}
			e.do(`mutation($d: [DeviceInput!]!) { upsertDevices(input: {devices: $d}) { reinstallCommands userErrors { code message } } }`,
				map[string]any{"d": []map[string]any{iPad(serial, "restored", true)}}, &out)
			if ue := out.UpsertDevices.UserErrors; len(ue) > 0 {
				t.Fatalf("upsertDevices: %+v", ue)
			}
			return out.UpsertDevices.ReinstallCommands
		}
		if n := restore("R81"); n != 1 {
			t.Errorf("restoring R81 queued %d reinstall commands, want 1", n)
		}
		type cmd struct{ Serial, AdamID, Status, Assignment string }
		reinstalls := func() []cmd {
			var out []cmd
			for _, c := range e.commands(map[string]any{"kind": "REINSTALL"}) {
				x := cmd{Serial: c.Device.SerialNumber, AdamID: c.App.AdamID, Status: c.Status}
				if c.Assignment != nil {
					x.Assignment = c.Assignment.ID
				}
				out = append(out, x)
			}
			return out
		}
		want := []cmd{{Serial: "R81", AdamID: "8001", Status: "PENDING", Assignment: kept}}
		if diff := cmp.Diff(want, reinstalls()); diff != "" {
			t.Errorf("REINSTALL commands mismatch (-want +got):\n%s", diff)
		}
		var dev struct {
			Device struct{ RestoredAt *string }
		}
		e.do(`{ device(serialNumber: "R81") { restoredAt } }`, nil, &dev)
		if dev.Device.RestoredAt == nil {
			t.Errorf("device R81 shows no restoredAt after its restore")
		}
		// The same restore reported again: the pending command stands, nothing is added.
		if n := restore("R81"); n != 0 {
			t.Errorf("reporting the restore again queued %d commands, want 0", n)
		}
		// A device new to Orchard reported as restored holds no license here: nothing to do.
		if n := restore("R8NEW"); n != 0 {
			t.Errorf("a new device reported restored queued %d commands, want 0", n)
		}
		if diff := cmp.Diff(want, reinstalls()); diff != "" {
			t.Errorf("REINSTALL commands after the repeats mismatch (-want +got):\n%s", diff)
		}
		// Per device: the other device has none.
		if got := e.commands(map[string]any{"kind": "REINSTALL", "deviceId": ids[1]}); len(got) != 0 {
			t.Errorf("REINSTALL commands of R82: %s", gqltest.JSON(got))
		}
	})
}

package license_test

import (
	"testing"
	"time"

	"orchard/apple/applesim"
	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
	"orchard/resolvers/gqltest"
)

func TestSmokeAssignAndReclaim(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		st := gqltest.NewStack(t, d, gqltest.StackOptions{})
		tok := st.Sim.AddToken(applesim.TokenSpec{OrgName: "Org", LocationName: "Main", Country: "US", ExpiresAt: time.Now().Add(365 * 24 * time.Hour)})
		st.Sim.AddAsset(tok, applesim.Asset{AdamID: "1001", PricingParam: "STDQ", ProductType: "App", Total: 5, DeviceAssignable: true, Revocable: true, Name: "Maps Pro", BundleID: "com.example.maps"})
		start := time.Now()
		acct := st.AddAccount(t, "Main", tok)
		st.WaitSynced(t, acct, start)
		op := st.Keys[model.RoleOperator]
		var up struct {
			UpsertDevices struct {
				Devices    []struct{ ID string }
				UserErrors []struct{ Code, Message string }
			}
		}
		st.Do(t, op, `mutation { upsertDevices(input: {devices: [{serialNumber: "SER1", platform: IPADOS, osVersion: "17.4", countryCode: "US"}]}) { devices { id } userErrors { code message } } }`, nil).MustData(t, &up)
		if len(up.UpsertDevices.UserErrors) > 0 {
			t.Fatal(up.UpsertDevices.UserErrors)
		}
		var as struct {
			AssignLicense struct {
				Assignment *struct{ ID, Status string }
				Note       *string
				UserErrors []struct{ Code, Message string }
			}
		}
		st.Do(t, op, `mutation { assignLicense(input: {adamId: "1001", kind: DEVICE, target: {serialNumber: "SER1"}}) { assignment { id status } note userErrors { code message } } }`, nil).MustData(t, &as)
		if as.AssignLicense.Assignment == nil {
			t.Fatal(as.AssignLicense.UserErrors)
		}
		id := as.AssignLicense.Assignment.ID
		status := func() string {
			var out struct{ Node struct{ Status string } }
			st.Do(t, op, `query($id: ID!) { node(id: $id) { ... on LicenseAssignment { status } } }`, map[string]any{"id": id}).MustData(t, &out)
			return out.Node.Status
		}
		gqltest.WaitFor(t, "ASSIGNED", 20*time.Second, func() bool { return status() == "ASSIGNED" })
		if got := st.Sim.Assignments(tok); len(got) != 1 || got[0].SerialNumber != "SER1" {
			t.Fatalf("sim assignments %+v", got)
		}
		var rc struct {
			ReclaimLicense struct {
				Assignment *struct{ Status string }
				UserErrors []struct{ Code, Message string }
			}
		}
		st.Do(t, op, `mutation($id: ID!) { reclaimLicense(input: {assignmentId: $id}) { assignment { status } userErrors { code message } } }`, map[string]any{"id": id}).MustData(t, &rc)
		if rc.ReclaimLicense.Assignment == nil {
			t.Fatal(rc.ReclaimLicense.UserErrors)
		}
		gqltest.WaitFor(t, "RECLAIMED", 20*time.Second, func() bool { return status() == "RECLAIMED" })
		if got := st.Sim.Assignments(tok); len(got) != 0 {
			t.Fatalf("sim assignments %+v", got)
		}
	})
}

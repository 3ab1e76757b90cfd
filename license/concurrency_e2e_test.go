package license_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"orchard/apple/applesim"
	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
	"orchard/resolvers/gqltest"
)

// Issue 5, done means 2 (R13): 200 concurrent assignLicense calls over HTTP, for 200 distinct
// devices, on a pool of 50 licenses. Exactly 50 are accepted and end ASSIGNED, the other 150
// are refused with NO_LICENSES_AVAILABLE, the simulator holds exactly the 50, and the pool's
// counts settle at 50 assigned and nothing reserved.
func TestConcurrentAssignNeverOverAssigns(t *testing.T) {
	const (
		devices  = 200
		licenses = 50
	)
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		st := gqltest.NewStack(t, d, gqltest.StackOptions{})
		tok := st.Sim.AddToken(applesim.TokenSpec{OrgName: "Org", LocationName: "Main", Country: "US", ExpiresAt: time.Now().Add(365 * 24 * time.Hour)})
		st.Sim.AddAsset(tok, applesim.Asset{AdamID: "2001", PricingParam: "STDQ", ProductType: "App", Total: licenses,
			DeviceAssignable: true, Revocable: true, Name: "Scarce", BundleID: "com.example.scarce"})
		start := time.Now()
		acct := st.AddAccount(t, "Main", tok)
		st.WaitSynced(t, acct, start)
		op := st.Keys[model.RoleOperator]

		serials := make([]string, devices)
		var devs []map[string]any
		for i := range serials {
			serials[i] = fmt.Sprintf("CONC%05d", i)
			devs = append(devs, map[string]any{"serialNumber": serials[i], "platform": "IPADOS", "osVersion": "17.4", "countryCode": "US"})
		}
		var up struct {
			UpsertDevices struct {
				UserErrors []struct{ Code, Message string }
			}
		}
		st.Do(t, op, `mutation($d: [DeviceInput!]!) { upsertDevices(input: {devices: $d}) { userErrors { code message } } }`,
			map[string]any{"d": devs}).MustData(t, &up)
		if len(up.UpsertDevices.UserErrors) > 0 {
			t.Fatal(up.UpsertDevices.UserErrors)
		}

		type answer struct {
			serial, status, code, err string
		}
		answers := make([]answer, devices)
		var wg sync.WaitGroup
		gate := make(chan struct{})
		for i, sn := range serials {
			wg.Go(func() {
				<-gate
				var out struct {
					AssignLicense struct {
						Assignment *struct{ ID, Status string }
						UserErrors []struct{ Code, Message string }
					}
				}
				answers[i].serial = sn
				if err := st.Post(op, `mutation($sn: String!) { assignLicense(input: {adamId: "2001", kind: DEVICE, target: {serialNumber: $sn}}) {
  assignment { id status } userErrors { code message } } }`, map[string]any{"sn": sn}, &out); err != nil {
					answers[i].err = err.Error()
					return
				}
				if a := out.AssignLicense.Assignment; a != nil {
					answers[i].status = a.Status
				}
				for _, e := range out.AssignLicense.UserErrors {
					answers[i].code = e.Code
				}
			})
		}
		close(gate)
		wg.Wait()

		accepted := map[string]bool{}
		refused := 0
		for _, a := range answers {
			switch {
			case a.err != "":
				t.Errorf("%s: %s", a.serial, a.err)
			case a.status == "PENDING" && a.code == "":
				accepted[a.serial] = true
			case a.status == "" && a.code == "NO_LICENSES_AVAILABLE":
				refused++
			default:
				t.Errorf("%s: unexpected answer %+v", a.serial, a)
			}
		}
		if len(accepted) != licenses || refused != devices-licenses {
			t.Fatalf("accepted %d, refused %d; want %d and %d", len(accepted), refused, licenses, devices-licenses)
		}

		// Every accepted intent reaches Apple and ends ASSIGNED; nothing else is assigned.
		var assigned []string
		gqltest.WaitFor(t, "50 ASSIGNED", 60*time.Second, func() bool {
			assigned = concSerials(t, st, op, "ASSIGNED")
			return len(assigned) >= licenses && len(concSerials(t, st, op, "PENDING")) == 0
		})
		if len(assigned) != licenses {
			t.Fatalf("%d ASSIGNED, want %d", len(assigned), licenses)
		}
		for _, sn := range assigned {
			if !accepted[sn] {
				t.Errorf("%s is ASSIGNED but its call was refused", sn)
			}
		}
		var atApple []string
		for _, a := range st.Sim.Assignments(tok) {
			atApple = append(atApple, a.SerialNumber)
		}
		slices.Sort(atApple)
		if !slices.Equal(atApple, assigned) {
			t.Fatalf("simulator holds %d (%v), Orchard %d (%v)", len(atApple), atApple, len(assigned), assigned)
		}
		for _, as := range st.Sim.AssetStates(tok) {
			if as.Assigned != licenses || as.Available != 0 {
				t.Errorf("simulator asset %+v", as)
			}
		}
		var pools struct {
			LicensePools struct {
				Nodes []struct{ AdamID, AssignedCount, ReservedCount, AvailableCount, TotalCount any }
			}
		}
		st.Do(t, op, `{ licensePools { nodes { adamId assignedCount reservedCount availableCount totalCount } } }`, nil).MustData(t, &pools)
		if n := pools.LicensePools.Nodes; len(n) != 1 || fmt.Sprint(n[0].AssignedCount) != "50" || fmt.Sprint(n[0].ReservedCount) != "0" ||
			fmt.Sprint(n[0].AvailableCount) != "0" || fmt.Sprint(n[0].TotalCount) != "50" {
			t.Fatalf("pool counts %+v", pools.LicensePools.Nodes)
		}
	})
}

// concSerials lists the serial numbers of the assignments in a state, sorted.
func concSerials(t testing.TB, st *gqltest.Stack, key, status string) []string {
	t.Helper()
	var out []string
	var after *string
	for {
		var page struct {
			LicenseAssignments struct {
				PageInfo struct {
					HasNextPage bool
					EndCursor   *string
				}
				Nodes []struct{ SerialNumber string }
			}
		}
		st.Do(t, key, `query($after: String, $s: [AssignmentStatus!]) { licenseAssignments(first: 100, after: $after, filter: {status: $s}) {
  pageInfo { hasNextPage endCursor } nodes { serialNumber } } }`, map[string]any{"after": after, "s": []string{status}}).MustData(t, &page)
		for _, n := range page.LicenseAssignments.Nodes {
			out = append(out, n.SerialNumber)
		}
		if !page.LicenseAssignments.PageInfo.HasNextPage {
			break
		}
		after = page.LicenseAssignments.PageInfo.EndCursor
	}
	slices.Sort(out)
	return out
}

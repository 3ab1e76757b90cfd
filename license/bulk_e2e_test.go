package license_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/resolvers/gqltest"
)

// assignLicenses: one app to many targets in one call, with a result per target in input
// order — the targets the rules allow get a license (as far as the pool goes), the others say
// why not — and every assignment is audited and reaches Apple.
func TestAssignLicensesPerTargetResults(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, gqltest.StackOptions{}, app("9201", total(3)), app("9202"))
		e.upsertUsers("u1", "u2")
		e.upsertDevices(iPad("B1"), iPad("B2"), iPad("B3"), iPad("B4"), iPad("B5"), iPad("B6", "userExternalId", "u1"),
			iPad("SH", "sharedIPad", true, "userExternalId", "u2"))
		e.do(`mutation { retireDevice(input: {device: {serialNumber: "B4"}}) { userErrors { code } } }`, nil, &struct{}{})
		e.waitStatus(e.assignOK(userLicense("9201", "u1")), "ASSIGNED") // R9 for B6; takes one of the 3 licenses

		type result struct {
			Index      int
			Assignment *struct{ ID, Status, SerialNumber string }
			UserErrors []userError
		}
		type payload struct {
			Results                    []result
			AssignedCount, FailedCount int
			UserErrors                 []userError
		}
		bulk := func(kind string, targets ...map[string]any) payload {
			t.Helper()
			var out struct{ AssignLicenses payload }
			e.do(`mutation($k: LicenseKind!, $t: [LicenseTargetInput!]!) { assignLicenses(input: {adamId: "9201", kind: $k, targets: $t, reason: "class of 2027"}) {
				results { index assignment { id status serialNumber } userErrors { field code message } } assignedCount failedCount userErrors { code message } } }`,
				map[string]any{"k": kind, "t": targets}, &out)
			return out.AssignLicenses
		}
		sn := func(s string) map[string]any { return map[string]any{"serialNumber": s} }
		p := bulk("DEVICE", sn("B1"), sn("NOPE"), sn("B1"), sn("B4"), sn("B6"), sn("B2"), sn("B3"), map[string]any{"externalId": "u2"})
		// What each target got: a serial number, or an error code.
		got := []string{}
		for i, r := range p.Results {
			if r.Index != i {
				t.Errorf("result %d has index %d", i, r.Index)
			}
			switch {
			case r.Assignment != nil && len(r.UserErrors) == 0:
				got = append(got, r.Assignment.SerialNumber)
			case r.Assignment == nil && len(r.UserErrors) == 1:
				got = append(got, r.UserErrors[0].Code)
				if want := []string{"input", "targets", str(i)}; !cmp.Equal(r.UserErrors[0].Field, want) {
					t.Errorf("result %d: field %v, want %v", i, r.UserErrors[0].Field, want)
				}
			default:
				t.Errorf("result %d: %s", i, gqltest.JSON(r))
			}
		}
		want := []string{"B1", "NOT_FOUND", "ALREADY_ASSIGNED", "DEVICE_RETIRED", "USER_LICENSE_EXISTS", "B2", "NO_LICENSES_AVAILABLE", "INVALID_INPUT"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("per-target results mismatch (-want +got):\n%s", diff)
		}
		if p.AssignedCount != 2 || p.FailedCount != 6 || len(p.UserErrors) > 0 {
			t.Errorf("assignedCount %d, failedCount %d, userErrors %+v", p.AssignedCount, p.FailedCount, p.UserErrors)
		}
		for _, r := range p.Results {
			if r.Assignment != nil {
				e.waitStatus(r.Assignment.ID, "ASSIGNED")
				e.wantAudit(r.Assignment.ID, "license.assign", "API_KEY", operatorName, "class of 2027", r.Assignment.SerialNumber)
			}
		}
		// USER licenses in bulk: a shared iPad takes none.
		p = bulk("USER", map[string]any{"serialNumber": "SH"}, map[string]any{"externalId": "u1"})
		got = got[:0]
		for _, r := range p.Results {
			got = append(got, codes(r.UserErrors)...)
		}
		if diff := cmp.Diff([]string{"SHARED_IPAD_NEEDS_DEVICE_LICENSE", "ALREADY_ASSIGNED"}, got); diff != "" {
			t.Errorf("USER bulk results mismatch (-want +got):\n%s", diff)
		}
		// A malformed target refuses the whole request.
		p = bulk("DEVICE", sn("B5"), map[string]any{"deviceId": "bogus"})
		if len(p.Results) != 0 || !cmp.Equal(codes(p.UserErrors), []string{"INVALID_INPUT"}) {
			t.Errorf("malformed target: %s", gqltest.JSON(p))
		}
		e.assertInSync(e.tok, e.acct)
	})
}

package license_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
	"orchard/resolvers/gqltest"
)

// assignLicenses applies the rules to each target as assignLicense does (one planner for
// both): R11 is decided per device — its OS version, not the first device's of its country —
// and a USER license asked "to a device" records the device, as assignLicense's does.
func TestAssignLicensesRulesPerTarget(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		st := gqltest.NewStack(t, d, gqltest.StackOptions{})
		e := &env{t: t, st: st, op: st.Keys[model.RoleOperator]}
		e.upsertUsers("u1", "u2")
		gb := func(serial, os string) device {
			return device{"serialNumber": serial, "platform": "IOS", "osVersion": os, "countryCode": "GB"}
		}
		// Devices in GB exist before the account's first pass: availability there is looked up.
		e.upsertDevices(gb("GBNEW1", "17.2"), gb("GBOLD1", "8.4.1"), gb("GBNEW2", "16.0"), gb("GBOLD2", "8.0"), gb("GBNEW3", "17.4"),
			iPad("UD1", "userExternalId", "u1"), iPad("UD2", "userExternalId", "u2"))
		e.tok, e.acct = e.addAccount("Main", "US", app("9301"), app("9302"))

		bulk := func(adam, kind string, serials ...string) []string {
			t.Helper()
			targets := make([]map[string]any, len(serials))
			for i, s := range serials {
				targets[i] = map[string]any{"serialNumber": s}
			}
			var out struct {
				AssignLicenses struct {
					Results []struct {
						Assignment *struct{ ID string }
						UserErrors []userError
					}
					UserErrors []userError
				}
			}
			e.do(`mutation($a: String!, $k: LicenseKind!, $t: [LicenseTargetInput!]!) { assignLicenses(input: {adamId: $a, kind: $k, targets: $t}) {
				results { assignment { id } userErrors { code message } } userErrors { code message } } }`,
				map[string]any{"a": adam, "k": kind, "t": targets}, &out)
			if ue := out.AssignLicenses.UserErrors; len(ue) > 0 {
				t.Fatalf("assignLicenses refused: %+v", ue)
			}
			got := []string{}
			for _, r := range out.AssignLicenses.Results {
				if r.Assignment != nil {
					got = append(got, r.Assignment.ID)
				} else {
					got = append(got, codes(r.UserErrors)...)
				}
			}
			return got
		}
		assigned := func(got []string) []string {
			out := make([]string, len(got))
			for i, g := range got {
				out[i] = g
				if g != "OS_TOO_OLD_FOR_CROSS_COUNTRY" {
					out[i] = "assigned"
				}
			}
			return out
		}
		// A device that may take the license first, then one that may not, and the reverse.
		if diff := cmp.Diff([]string{"assigned", "OS_TOO_OLD_FOR_CROSS_COUNTRY", "assigned"}, assigned(bulk("9301", "DEVICE", "GBNEW1", "GBOLD1", "GBNEW2"))); diff != "" {
			t.Errorf("R11 per device, allowed first: mismatch (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"OS_TOO_OLD_FOR_CROSS_COUNTRY", "assigned"}, assigned(bulk("9301", "DEVICE", "GBOLD2", "GBNEW3"))); diff != "" {
			t.Errorf("R11 per device, refused first: mismatch (-want +got):\n%s", diff)
		}

		// A USER license "to a device", in bulk and alone: both record the user and the device.
		ids := bulk("9302", "USER", "UD1")
		one := e.assignOK(map[string]any{"adamId": "9302", "kind": "USER", "target": map[string]any{"serialNumber": "UD2"}})
		type holder struct{ User, Device string }
		got := []holder{}
		for _, id := range []string{ids[0], one} {
			var out struct {
				Node struct {
					User   *struct{ ExternalID string }
					Device *struct{ SerialNumber string }
				}
			}
			e.do(`query($id: ID!) { node(id: $id) { ... on LicenseAssignment { user { externalId } device { serialNumber } } } }`, map[string]any{"id": id}, &out)
			h := holder{}
			if out.Node.User != nil {
				h.User = out.Node.User.ExternalID
			}
			if out.Node.Device != nil {
				h.Device = out.Node.Device.SerialNumber
			}
			got = append(got, h)
		}
		if diff := cmp.Diff([]holder{{"u1", "UD1"}, {"u2", "UD2"}}, got); diff != "" {
			t.Errorf("USER licenses to devices mismatch (-want +got):\n%s", diff)
		}
		e.assertInSync(e.tok, e.acct)
	})
}

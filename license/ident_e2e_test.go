package license_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/resolvers/gqltest"
)

// Issue 11 class 7: identifiers have one canonical form on every input path. A device
// upserted as `abc1` is the device `ABC1`: upserting `ABC1` updates it, a license assigned to
// `ABC1` goes to it (and a second one to `abc1` finds it held), it is found by either
// spelling, and a group takes it by either. Serial numbers with NUL, newlines, bidi controls,
// spaces or markup, unassigned countries (ZZ, XX) and 100-digit OS versions are refused with
// INVALID_INPUT, in upsertDevices and in dynamic group rules alike.
func TestIdentifiersCanonical(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, gqltest.StackOptions{}, app("7001"))
		first := e.upsertDevices(iPad("abc1", "countryCode", "us", "osVersion", "17.04"))
		again := e.upsertDevices(device{"serialNumber": "ABC1", "platform": "IPADOS", "name": "Renamed"})
		if first[0] != again[0] {
			t.Fatalf("abc1 and ABC1 are two devices: %s and %s", first[0], again[0])
		}
		var dev struct {
			Device *struct{ ID, SerialNumber, Name, CountryCode, OsVersion string }
		}
		e.do(`{ device(serialNumber: "abc1") { id serialNumber name countryCode osVersion } }`, nil, &dev)
		if dev.Device == nil {
			t.Fatal("device(serialNumber: \"abc1\") finds nothing")
		}
		want := struct{ ID, SerialNumber, Name, CountryCode, OsVersion string }{first[0], "ABC1", "Renamed", "US", "17.4"}
		if diff := cmp.Diff(want, *dev.Device); diff != "" {
			t.Errorf("device mismatch (-want +got):\n%s", diff)
		}

		id := e.assignOK(deviceLicense("7001", "ABC1"))
		a := e.waitStatus(id, "ASSIGNED")
		if deref(a.SerialNumber) != "ABC1" {
			t.Errorf("assignment's serial number %q, want ABC1", deref(a.SerialNumber))
		}
		if p := e.assign(deviceLicense("7001", "abc1")); p.Assignment != nil && p.Assignment.ID != id || len(p.UserErrors) > 0 && p.UserErrors[0].Code != "ALREADY_ASSIGNED" {
			t.Errorf("assign to abc1 after ABC1: %+v, want the same assignment or ALREADY_ASSIGNED", p)
		}
		var filtered struct {
			LicenseAssignments struct{ Nodes []struct{ ID string } }
		}
		e.do(`{ licenseAssignments(filter: {serialNumber: "abc1"}) { nodes { id } } }`, nil, &filtered)
		if n := filtered.LicenseAssignments.Nodes; len(n) != 1 || n[0].ID != id {
			t.Errorf("licenseAssignments(filter: {serialNumber: \"abc1\"}) = %+v, want %s", n, id)
		}
		var members struct {
			SetGroupMembers struct {
				Added      int
				UserErrors []userError
			}
		}
		e.do(`mutation { upsertGroup(input: {externalId: "g1", name: "G"}) { group { id } } }`, nil, &struct{}{})
		e.do(`mutation { setGroupMembers(input: {groupExternalId: "g1", members: [{serialNumber: "aBc1"}]}) { added userErrors { field message code } } }`, nil, &members)
		if members.SetGroupMembers.Added != 1 || len(members.SetGroupMembers.UserErrors) > 0 {
			t.Errorf("setGroupMembers by aBc1: %+v", members.SetGroupMembers)
		}

		// Refused serial numbers, countries and OS versions, each with INVALID_INPUT on its field.
		bad := []device{
			iPad("AB\x00C"), iPad("AB\nC"), iPad("AB\u202eC"), iPad("A B"), iPad("<b>X</b>"), iPad(strings.Repeat("A", 21)), iPad(""),
			iPad("OK1", "countryCode", "ZZ"), iPad("OK2", "countryCode", "XX"), iPad("OK3", "countryCode", "USA"),
			iPad("OK4", "osVersion", strings.Repeat("9", 30)), iPad("OK5", "osVersion", "17.4.1.2.3"), iPad("OK6", "osVersion", "17.4<script>"),
		}
		list := make([]map[string]any, len(bad))
		for i, b := range bad {
			list[i] = b
		}
		var out struct {
			UpsertDevices struct {
				Devices    []*struct{ ID string }
				UserErrors []userError
			}
		}
		e.do(`mutation($d: [DeviceInput!]!) { upsertDevices(input: {devices: $d}) { devices { id } userErrors { field message code } } }`,
			map[string]any{"d": list}, &out)
		var got []string
		for _, ue := range out.UpsertDevices.UserErrors {
			got = append(got, ue.Code+" "+strings.Join(ue.Field, "."))
		}
		wantErrs := []string{}
		for i, field := range []string{"serialNumber", "serialNumber", "serialNumber", "serialNumber", "serialNumber", "serialNumber", "serialNumber",
			"countryCode", "countryCode", "countryCode", "osVersion", "osVersion", "osVersion"} {
			wantErrs = append(wantErrs, "INVALID_INPUT input.devices."+strconv.Itoa(i)+"."+field)
		}
		if diff := cmp.Diff(wantErrs, got); diff != "" {
			t.Errorf("upsertDevices errors mismatch (-want +got):\n%s", diff)
		}

		for _, rule := range []map[string]any{{"countries": []string{"US", "ZZ"}}, {"countries": []string{"XX"}}, {"minOsVersion": strings.Repeat("1", 30)}} {
			var g struct {
				UpsertGroup struct {
					Group      *struct{ ID string }
					UserErrors []userError
				}
			}
			e.do(`mutation($r: GroupRuleInput) { upsertGroup(input: {externalId: "dyn", rule: $r}) { group { id } userErrors { field message code } } }`,
				map[string]any{"r": rule}, &g)
			if len(g.UpsertGroup.UserErrors) != 1 || g.UpsertGroup.UserErrors[0].Code != "INVALID_INPUT" {
				t.Errorf("rule %v: %+v, want INVALID_INPUT", rule, g.UpsertGroup)
			}
		}
		// A rule in lower case takes its canonical form and matches the device.
		var g struct {
			UpsertGroup struct {
				Group *struct {
					Rule struct {
						Countries    []string
						MinOsVersion string
					}
					Devices struct {
						Nodes []struct{ SerialNumber string }
					}
				}
				UserErrors []userError
			}
		}
		e.do(`mutation { upsertGroup(input: {externalId: "dyn", rule: {countries: ["us"], minOsVersion: "17.04"}}) {
			group { rule { countries minOsVersion } devices { nodes { serialNumber } } } userErrors { field message code } } }`, nil, &g)
		if g.UpsertGroup.Group == nil || len(g.UpsertGroup.UserErrors) > 0 {
			t.Fatalf("dynamic group refused: %+v", g.UpsertGroup.UserErrors)
		}
		gr := g.UpsertGroup.Group
		if diff := cmp.Diff([]string{"US"}, gr.Rule.Countries); diff != "" || gr.Rule.MinOsVersion != "17.4" || len(gr.Devices.Nodes) != 1 || gr.Devices.Nodes[0].SerialNumber != "ABC1" {
			t.Errorf("dynamic group: rule %+v, devices %+v; want [US] 17.4 and ABC1", gr.Rule, gr.Devices.Nodes)
		}
	})
}

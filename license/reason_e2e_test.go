package license_test

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/resolvers/gqltest"
)

// A reason of only whitespace says nothing: assignLicense and assignLicenses both treat it as
// absent (the assignment says who assigned it, as with no reason at all), and both trim the
// whitespace around a reason given. (assignLicenses used to answer "reclaimed by …".)
func TestAssignReasonWhitespaceIsAbsent(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d, gqltest.StackOptions{}, app("9301", total(20)))
		reasons := []string{"", "   ", "\t\n ", " class of 2027 "}
		var devs []device
		for i := range reasons {
			devs = append(devs, iPad(fmt.Sprintf("ONE%d", i)), iPad(fmt.Sprintf("MANY%d", i)))
		}
		e.upsertDevices(devs...)
		one := func(i int) string {
			t.Helper()
			in := deviceLicense("9301", fmt.Sprintf("ONE%d", i))
			if reasons[i] != "" {
				in["reason"] = reasons[i]
			}
			return e.assignment(e.assignOK(in)).Reason
		}
		many := func(i int) string {
			t.Helper()
			in := map[string]any{"adamId": "9301", "kind": "DEVICE", "targets": []map[string]any{{"serialNumber": fmt.Sprintf("MANY%d", i)}}}
			if reasons[i] != "" {
				in["reason"] = reasons[i]
			}
			var out struct {
				AssignLicenses struct {
					Results []struct {
						Assignment *struct{ ID string }
						UserErrors []userError
					}
				}
			}
			e.do(`mutation($in: AssignLicensesInput!) { assignLicenses(input: $in) { results { assignment { id } userErrors { field code message } } } }`,
				map[string]any{"in": in}, &out)
			if rs := out.AssignLicenses.Results; len(rs) != 1 || rs[0].Assignment == nil {
				t.Fatalf("assignLicenses with reason %q: %+v", reasons[i], rs)
			}
			return e.assignment(out.AssignLicenses.Results[0].Assignment.ID).Reason
		}
		byActor := one(0)
		if byActor == "" {
			t.Fatal("an assignment with no reason has an empty reason; want who assigned it")
		}
		want := map[string][2]string{}
		got := map[string][2]string{}
		for i, r := range reasons {
			want[r] = [2]string{byActor, byActor}
			if i == len(reasons)-1 {
				want[r] = [2]string{"class of 2027", "class of 2027"}
			}
			o := byActor
			if i > 0 {
				o = one(i)
			}
			got[r] = [2]string{o, many(i)}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("reasons by reason given, [assignLicense, assignLicenses], mismatch (-want +got):\n%s", diff)
		}
	})
}

package resolvers_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
	"orchard/resolvers/gqltest"
)

// refused is what a test expects of an operation refused as a whole: its one top-level error.
type refused struct {
	Code    string
	Field   []string
	Message string
	// Path is the error's response path, when the test names one.
	Path []string
}

func firstError(t *testing.T, r *gqltest.Response) refused {
	t.Helper()
	if r.Status >= 500 {
		t.Fatalf("HTTP %d", r.Status)
	}
	if len(r.Errors) != 1 {
		t.Fatalf("want one error, got %+v (data %s)", r.Errors, r.Data)
	}
	e := r.Errors[0]
	var field []string
	if f, ok := e.Extensions["field"].([]any); ok {
		for _, s := range f {
			field = append(field, fmt.Sprint(s))
		}
	}
	var path []string
	for _, p := range e.Path {
		path = append(path, fmt.Sprint(p))
	}
	return refused{Code: e.Code(), Field: field, Message: e.Message, Path: path}
}

func repeatItems(n int, item any) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = item
	}
	return out
}

// TestInputConstraints (issue 11, classes 4 and 5): over HTTP, on both engines, an input over
// its @constraint is refused with INVALID_INPUT naming the argument and its limit, wherever it
// is (an argument, a field of an input object in a list, a variable, a literal, a fragment
// of a nested field), before anything runs; an input at its limit is taken.
func TestInputConstraints(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		gqltest.Seed(t, d, 1, 1, 2)
		s := gqltest.New(t, d)
		op := s.Keys[model.RoleOperator]
		tests := []struct {
			name  string
			query string
			vars  map[string]any
			want  refused
		}{
			{"a 1,000,000-character name to upsertUsers",
				`mutation($n: String) { upsertUsers(input: {users: [{externalId: "big", name: $n}]}) { userErrors { code } } }`,
				map[string]any{"n": strings.Repeat("n", 1_000_000)},
				refused{"INVALID_INPUT", []string{"input", "users", "0", "name"}, "upsertUsers(input.users[0].name): at most 255 characters are allowed, got 1,000,000", []string{"upsertUsers"}}},
			{"256 two-byte characters, written in the document",
				fmt.Sprintf(`mutation { upsertUsers(input: {users: [{externalId: "a"}, {externalId: "b", name: %q}]}) { userErrors { code } } }`, strings.Repeat("é", 256)),
				nil,
				refused{"INVALID_INPUT", []string{"input", "users", "1", "name"}, "upsertUsers(input.users[1].name): at most 255 characters are allowed, got 256", []string{"upsertUsers"}}},
			{"80,000 statuses in a filter",
				`query($s: [AssignmentStatus!]) { licenseAssignments(filter: {status: $s}) { totalCount } }`,
				map[string]any{"s": repeatItems(80_000, "PENDING")},
				refused{"INVALID_INPUT", []string{"filter", "status"}, "licenseAssignments(filter.status): at most 20 items are allowed, got 80,000", []string{"licenseAssignments"}}},
			{"80,000 statuses to a nested connection, through a fragment",
				`query($s: [AssignmentStatus!]) { accounts { nodes { ...A } } } fragment A on Account { licenseAssignments(status: $s) { totalCount } }`,
				map[string]any{"s": repeatItems(80_000, "ASSIGNED")},
				refused{"INVALID_INPUT", []string{"status"}, "licenseAssignments(status): at most 20 items are allowed, got 80,000", []string{"accounts", "nodes", "licenseAssignments"}}},
			{"a variable's default, written in the document",
				fmt.Sprintf(`query($s: [AssignmentStatus!] = [%s]) { licenseAssignments(filter: {status: $s}) { totalCount } }`, strings.Repeat("FAILED ", 21)),
				nil,
				refused{"INVALID_INPUT", []string{"filter", "status"}, "licenseAssignments(filter.status): at most 20 items are allowed, got 21", []string{"licenseAssignments"}}},
			{"40,000 devices to sendInstallRequest",
				`mutation($d: [DeviceRefInput!]) { sendInstallRequest(input: {adamId: "100000", devices: $d}) { userErrors { code } } }`,
				map[string]any{"d": repeatItems(40_000, map[string]any{"serialNumber": "A"})},
				refused{"INVALID_INPUT", []string{"input", "devices"}, "sendInstallRequest(input.devices): at most 1,000 items are allowed, got 40,000", []string{"sendInstallRequest"}}},
			{"101 ids to nodes",
				`query($ids: [ID!]!) { nodes(ids: $ids) { id } }`,
				map[string]any{"ids": repeatItems(101, "x")},
				refused{"INVALID_INPUT", []string{"ids"}, "nodes(ids): at most 100 items are allowed, got 101", []string{"nodes"}}},
			{"an id element too long",
				fmt.Sprintf(`{ nodes(ids: ["a", %q]) { id } }`, strings.Repeat("x", 101)),
				nil,
				refused{"INVALID_INPUT", []string{"ids", "1"}, "nodes(ids[1]): at most 100 characters are allowed, got 101", []string{"nodes"}}},
			{"a serial number nested in a list of devices",
				`mutation($d: [DeviceInput!]!) { upsertDevices(input: {devices: $d}) { userErrors { code } } }`,
				map[string]any{"d": []any{map[string]any{"serialNumber": "OK1", "platform": "IOS"}, map[string]any{"serialNumber": strings.Repeat("S", 129), "platform": "IOS"}}},
				refused{"INVALID_INPUT", []string{"input", "devices", "1", "serialNumber"}, "upsertDevices(input.devices[1].serialNumber): at most 128 characters are allowed, got 129", []string{"upsertDevices"}}},
			{"a country of a dynamic group's rule",
				`mutation { upsertGroup(input: {externalId: "g", rule: {countries: ["US", "NOT-A-COUNTRY"]}}) { userErrors { code } } }`,
				nil,
				refused{"INVALID_INPUT", []string{"input", "rule", "countries", "1"}, "upsertGroup(input.rule.countries[1]): at most 8 characters are allowed, got 13", []string{"upsertGroup"}}},
			{"the second of two mutations: neither runs",
				`mutation($n: String) { a: upsertUsers(input: {users: [{externalId: "first"}]}) { userErrors { code } }
				                       b: upsertUsers(input: {users: [{externalId: "second", name: $n}]}) { userErrors { code } } }`,
				map[string]any{"n": strings.Repeat("n", 256)},
				refused{"INVALID_INPUT", []string{"input", "users", "0", "name"}, "upsertUsers(input.users[0].name): at most 255 characters are allowed, got 256", []string{"b"}}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := s.Do(t, op, tt.query, tt.vars)
				if diff := cmp.Diff(tt.want, firstError(t, r)); diff != "" {
					t.Errorf("mismatch (-want +got):\n%s", diff)
				}
				if string(r.Data) != "" && string(r.Data) != "null" {
					t.Errorf("data = %s, want none: nothing runs", r.Data)
				}
			})
		}

		// Nothing of the refused operations was stored.
		var got struct{ Users struct{ TotalCount int } }
		s.Do(t, op, `{ users { totalCount } }`, nil).MustData(t, &got)
		if got.Users.TotalCount != 2 {
			t.Errorf("%d users, want the 2 seeded: a refused operation stored some", got.Users.TotalCount)
		}

		// At the limits: taken, and stored as given.
		name := strings.Repeat("é", 255)
		var up struct {
			UpsertUsers struct {
				Users      []struct{ Name string }
				UserErrors []map[string]any
			}
		}
		s.Do(t, op, `mutation($n: String, $e: String!) { upsertUsers(input: {users: [{externalId: $e, name: $n}]}) { users { name } userErrors { code message } } }`,
			map[string]any{"n": name, "e": strings.Repeat("e", 255)}).MustData(t, &up)
		if len(up.UpsertUsers.UserErrors) != 0 || len(up.UpsertUsers.Users) != 1 || up.UpsertUsers.Users[0].Name != name {
			t.Errorf("a 255-character name was not taken as it is: %s", gqltest.JSON(up))
		}
		var list struct{ LicenseAssignments struct{ TotalCount int } }
		s.Do(t, op, `query($s: [AssignmentStatus!]) { licenseAssignments(filter: {status: $s}) { totalCount } }`,
			map[string]any{"s": repeatItems(20, "ASSIGNED")}).MustData(t, &list)
		if list.LicenseAssignments.TotalCount != 2 {
			t.Errorf("a filter of 20 statuses found %d assignments, want 2", list.LicenseAssignments.TotalCount)
		}
	})
}

// TestAssignLicenseContradictions (issue 11, class 8): over HTTP, on both engines, assignLicense
// with a poolId and an appId, adamId or accountId that are not the pool's is refused with a
// top-level BAD_USER_INPUT and assigns nothing; with arguments that agree it assigns from the
// pool.
func TestAssignLicenseContradictions(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		f := gqltest.Seed(t, d, 2, 2, 4) // pools: (account 0, app 0), (0, 1), (1, 0), (1, 1)
		s := gqltest.New(t, d)
		op := s.Keys[model.RoleOperator]
		pool := f.Pools[0]
		poolGID := model.GlobalID("LicensePool", pool.ID)
		const query = `mutation($in: AssignLicenseInput!) { assignLicense(input: $in) {
			assignment { pool { id } account { id } app { adamId } } userErrors { code field message } } }`
		input := func(extra map[string]any) map[string]any {
			in := map[string]any{"poolId": poolGID, "kind": "DEVICE", "target": map[string]any{"serialNumber": f.Devices[1].SerialNumber}}
			for k, v := range extra {
				in[k] = v
			}
			return map[string]any{"in": in}
		}
		tests := []struct {
			name  string
			extra map[string]any
			want  refused
		}{
			{"adamId of another app", map[string]any{"adamId": f.Apps[1].AdamID},
				refused{"BAD_USER_INPUT", []string{"input", "adamId"}, fmt.Sprintf("poolId names a pool of app %s (adamId %s), not of adamId %s; give the pool alone, or the app and account", f.Apps[0].Name, f.Apps[0].AdamID, f.Apps[1].AdamID), []string{"assignLicense"}}},
			{"appId of another app", map[string]any{"appId": model.GlobalID("App", f.Apps[1].ID)},
				refused{"BAD_USER_INPUT", []string{"input", "appId"}, fmt.Sprintf("poolId names a pool of app %s (adamId %s), not the app given by appId or adamId; give the pool alone, or the app and account", f.Apps[0].Name, f.Apps[0].AdamID), []string{"assignLicense"}}},
			{"accountId of another account", map[string]any{"adamId": f.Apps[0].AdamID, "accountId": model.GlobalID("Account", f.Accounts[1].ID)},
				refused{"BAD_USER_INPUT", []string{"input", "accountId"}, fmt.Sprintf("poolId names a pool of account %q, not the account given by accountId; give the pool alone, or the app and account", f.Accounts[0].Name), []string{"assignLicense"}}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if diff := cmp.Diff(tt.want, firstError(t, s.Do(t, op, query, input(tt.extra)))); diff != "" {
					t.Errorf("mismatch (-want +got):\n%s", diff)
				}
			})
		}
		count := func() int {
			var got struct{ LicenseAssignments struct{ TotalCount int } }
			s.Do(t, op, `query($sn: String) { licenseAssignments(filter: {serialNumber: $sn, kind: DEVICE}) { totalCount } }`,
				map[string]any{"sn": f.Devices[1].SerialNumber}).MustData(t, &got)
			return got.LicenseAssignments.TotalCount
		}
		if n := count(); n != 0 {
			t.Fatalf("%d device licenses after contradictory calls, want none", n)
		}

		// Arguments that agree with the pool: assigned from it.
		var got struct {
			AssignLicense struct {
				Assignment *struct {
					Pool, Account struct{ ID string }
					App           struct{ AdamID string }
				}
				UserErrors []map[string]any
			}
		}
		s.Do(t, op, query, input(map[string]any{"adamId": pool.AdamID, "accountId": model.GlobalID("Account", pool.AccountID)})).MustData(t, &got)
		a := got.AssignLicense.Assignment
		if a == nil || len(got.AssignLicense.UserErrors) > 0 {
			t.Fatalf("agreeing arguments refused: %s", gqltest.JSON(got))
		}
		want := fmt.Sprintf(`{%q %q %q}`, poolGID, model.GlobalID("Account", pool.AccountID), pool.AdamID)
		if g := fmt.Sprintf(`{%q %q %q}`, a.Pool.ID, a.Account.ID, a.App.AdamID); g != want {
			t.Errorf("assigned from (pool, account, app) %s, want %s", g, want)
		}
		if n := count(); n != 1 {
			t.Errorf("%d device licenses, want 1", n)
		}
	})
}

// TestInputLimitsAreDescribed: GraphiQL's manual (introspection over HTTP) states each limit
// in the element's description, as @constraint declares it, without repeating what the
// description says already.
func TestInputLimitsAreDescribed(t *testing.T) {
	t.Parallel()
	d := dbtest.Engines()[0].Open(t)
	s := gqltest.New(t, d)
	var got struct {
		Type struct {
			InputFields []struct{ Name, Description string }
		} `json:"__type"`
		Schema struct {
			QueryType struct {
				Fields []struct {
					Name string
					Args []struct{ Name, Description string }
				}
			}
		} `json:"__schema"`
	}
	s.Do(t, s.Keys[model.RoleViewer], `{ __type(name: "UpsertUsersInput") { inputFields { name description } }
		__schema { queryType { fields { name args { name description } } } } }`, nil).MustData(t, &got)
	descs := map[string]string{}
	for _, f := range got.Type.InputFields {
		descs["UpsertUsersInput."+f.Name] = f.Description
	}
	for _, f := range got.Schema.QueryType.Fields {
		for _, a := range f.Args {
			descs["Query."+f.Name+"("+a.Name+")"] = a.Description
		}
	}
	want := map[string]string{
		"UpsertUsersInput.users": "Users to create or update, by external id; at most 1,000.",
		"Query.nodes(ids)":       "Global ids, at most 100. Each at most 100 characters.",
		"Query.user(externalId)": "The directory's id of the user. At most 255 characters.",
		"Query.users(after)":     "Cursor to continue after. At most 64 characters.",
	}
	for k := range descs {
		if _, ok := want[k]; !ok {
			delete(descs, k)
		}
	}
	if diff := cmp.Diff(want, descs); diff != "" {
		t.Errorf("descriptions mismatch (-want +got):\n%s", diff)
	}
}

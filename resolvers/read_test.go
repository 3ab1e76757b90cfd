package resolvers_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
	"orchard/resolvers/gqltest"
)

type page struct {
	TotalCount int
	PageInfo   struct {
		HasNextPage     bool
		HasPreviousPage bool
		EndCursor       *string
	}
	Nodes []map[string]any
}

// TestListFilters checks each list's filters against what the fixture holds.
func TestListFilters(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		f := gqltest.Seed(t, d, 2, 7, 40) // 14 pools; app 6 is a book
		s := gqltest.New(t, d)
		key := s.Keys[model.RoleViewer]
		gid := func(typ string, id int64) string { return globalID(t, s, key, typ, id) }
		exhausted := f.Pools[0]
		if err := d.SetPoolCounts(context.Background(), exhausted.ID, exhausted.TotalCount, 0); err != nil {
			t.Fatal(err)
		}
		// Precomputed expectations from the fixture.
		var acct0Assignments, userAssignments, devAssignments int
		for _, a := range f.Assignments {
			if a.AccountID == f.Accounts[0].ID {
				acct0Assignments++
			}
			if a.Kind == model.LicenseKindUser {
				userAssignments++
			} else {
				devAssignments++
			}
		}
		tests := []struct {
			name  string
			query string
			want  int
		}{
			{"all assignments", `{ licenseAssignments { totalCount } }`, 40},
			{"assignments by account", fmt.Sprintf(`{ licenseAssignments(filter: {accountId: %q}) { totalCount } }`, gid("Account", f.Accounts[0].ID)), acct0Assignments},
			{"assignments by kind", `{ licenseAssignments(filter: {kind: USER}) { totalCount } }`, userAssignments},
			{"assignments by status", `{ licenseAssignments(filter: {status: [PENDING, FAILED]}) { totalCount } }`, 0},
			{"assignments by serial", fmt.Sprintf(`{ licenseAssignments(filter: {serialNumber: %q}) { totalCount } }`, f.Devices[0].SerialNumber), 1},
			{"assignments by user", fmt.Sprintf(`{ licenseAssignments(filter: {userId: %q}) { totalCount } }`, gid("User", f.Users[1].ID)), 1},
			{"assignments by pool", fmt.Sprintf(`{ licenseAssignments(filter: {poolId: %q}) { totalCount } }`, gid("LicensePool", f.Pools[3].ID)), 3},
			{"pools", `{ licensePools { totalCount } }`, 14},
			{"pools by app", fmt.Sprintf(`{ licensePools(filter: {appId: %q}) { totalCount } }`, gid("App", f.Apps[2].ID)), 2},
			{"pools with no license left", `{ licensePools(filter: {noLicensesLeft: true}) { totalCount } }`, 1},
			{"pools with licenses left", `{ licensePools(filter: {noLicensesLeft: false}) { totalCount } }`, 13},
			{"apps", `{ apps { totalCount } }`, 7},
			{"apps by search", `{ apps(filter: {search: "app 3"}) { totalCount } }`, 1},
			{"apps by bundle search", `{ apps(filter: {search: "COM.EXAMPLE.APP"}) { totalCount } }`, 7},
			{"books", `{ apps(filter: {kind: BOOK}) { totalCount } }`, 1},
			{"apps by platform", `{ apps(filter: {platform: IPADOS}) { totalCount } }`, 7},
			{"apps by other platform", `{ apps(filter: {platform: MACOS}) { totalCount } }`, 0},
			{"apps by account", fmt.Sprintf(`{ apps(filter: {accountId: %q}) { totalCount } }`, gid("Account", f.Accounts[1].ID)), 7},
			{"devices", `{ devices { totalCount } }`, 40},
			{"shared iPads", `{ devices(filter: {sharedIPad: true}) { totalCount } }`, 4},
			{"devices by platform", `{ devices(filter: {platform: IOS}) { totalCount } }`, 0},
			{"retired devices", `{ devices(filter: {status: RETIRED}) { totalCount } }`, 0},
			{"devices by search", `{ devices(filter: {search: "ser00001"}) { totalCount } }`, 10},
			{"users", `{ users { totalCount } }`, 40},
			{"users by search", `{ users(filter: {search: "user3@"}) { totalCount } }`, 1},
			{"accounts", `{ accounts { totalCount } }`, 2},
			{"accounts by health", `{ accounts(filter: {health: [EXPIRED]}) { totalCount } }`, 0},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				var got map[string]struct{ TotalCount int }
				s.Do(t, key, tt.query, nil).MustData(t, &got)
				for _, v := range got {
					if v.TotalCount != tt.want {
						t.Errorf("totalCount = %d, want %d", v.TotalCount, tt.want)
					}
				}
			})
		}
		_ = devAssignments
	})
}

// globalID finds an object's global id through the API (ids are opaque to clients too).
func globalID(t *testing.T, s *gqltest.Server, key, typ string, id int64) string {
	t.Helper()
	q := map[string]string{
		"Account": `{ accounts(first: 100) { nodes { id } } }`, "App": `{ apps(first: 100) { nodes { id } } }`,
		"LicensePool": `{ licensePools(first: 100) { nodes { id } } }`, "User": `{ users(first: 100) { nodes { id } } }`,
		"Device": `{ devices(first: 100) { nodes { id } } }`,
	}[typ]
	var got map[string]struct{ Nodes []struct{ ID string } }
	s.Do(t, key, q, nil).MustData(t, &got)
	for _, v := range got {
		for i, n := range v.Nodes {
			if int64(i+1) == id { // fixture ids are dense from 1 on a fresh database
				return n.ID
			}
		}
	}
	t.Fatalf("no %s %d", typ, id)
	return ""
}

// TestPagination walks a list page by page with cursors and checks it sees every item once,
// in order, with a consistent pageInfo.
func TestPagination(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		gqltest.Seed(t, d, 1, 3, 25)
		s := gqltest.New(t, d)
		key := s.Keys[model.RoleViewer]
		var seen []string
		var after *string
		pages := 0
		for {
			var got struct{ Devices page }
			s.Do(t, key, `query($after: String) { devices(first: 10, after: $after) { totalCount pageInfo { hasNextPage hasPreviousPage endCursor } nodes { serialNumber } } }`,
				map[string]any{"after": after}).MustData(t, &got)
			pages++
			if got.Devices.TotalCount != 25 {
				t.Fatalf("totalCount = %d on page %d", got.Devices.TotalCount, pages)
			}
			if got.Devices.PageInfo.HasPreviousPage != (pages > 1) {
				t.Errorf("page %d: hasPreviousPage = %v", pages, got.Devices.PageInfo.HasPreviousPage)
			}
			for _, n := range got.Devices.Nodes {
				seen = append(seen, n["serialNumber"].(string))
			}
			if !got.Devices.PageInfo.HasNextPage {
				break
			}
			after = got.Devices.PageInfo.EndCursor
		}
		var want []string
		for i := range 25 {
			want = append(want, fmt.Sprintf("SER%06d", i))
		}
		if diff := cmp.Diff(want, seen); diff != "" {
			t.Errorf("devices mismatch (-want +got):\n%s", diff)
		}
		if pages != 3 {
			t.Errorf("pages = %d, want 3", pages)
		}
	})
}

// TestRelationsAndLookups resolves every relation and each lookup by natural key.
func TestRelationsAndLookups(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		f := gqltest.Seed(t, d, 1, 2, 6)
		ctx := context.Background()
		g := &model.Group{ExternalID: "g-1", Name: "Teachers"}
		if err := d.InsertRows(ctx, g); err != nil {
			t.Fatal(err)
		}
		if err := d.InsertRows(ctx, []*model.GroupMember{{GroupID: g.ID, UserID: f.Users[0].ID}, {GroupID: g.ID, UserID: f.Users[1].ID}}); err != nil {
			t.Fatal(err)
		}
		appID := f.Apps[0].ID
		if err := d.InsertRows(ctx, []*model.DeviceApp{{DeviceID: f.Devices[0].ID, AppID: &appID, BundleID: f.Apps[0].BundleID, Name: "App 0", Version: "1.0", ReportedAt: db.Now()}}); err != nil {
			t.Fatal(err)
		}
		s := gqltest.New(t, d)
		key := s.Keys[model.RoleViewer]

		var got struct {
			Device struct {
				ID            string
				SerialNumber  string
				User          struct{ ExternalID string }
				Assignments   struct{ TotalCount int }
				InstalledApps struct {
					TotalCount int
					Nodes      []struct {
						BundleID string
						App      struct{ AdamID string }
					}
				}
			}
			App struct {
				Name         string
				Platforms    []string
				LicensePools struct {
					TotalCount int
					Nodes      []struct {
						AvailableCount int
						Account        struct{ CountryCode string }
						Assignments    struct{ TotalCount int }
					}
				}
			}
			User struct {
				Email   string
				Devices struct{ TotalCount int }
				Groups  struct {
					Nodes []struct {
						Name    string
						Members struct{ TotalCount int }
					}
				}
			}
		}
		s.Do(t, key, `query($serial: String!, $adam: String!, $ext: String!) {
  device(serialNumber: $serial) { id serialNumber user { externalId } assignments { totalCount }
    installedApps { totalCount nodes { bundleId app { adamId } } } }
  app(adamId: $adam) { name platforms licensePools { totalCount nodes { availableCount account { countryCode } assignments { totalCount } } } }
  user(externalId: $ext) { email devices { totalCount } groups { nodes { name members { totalCount } } } }
}`, map[string]any{"serial": f.Devices[0].SerialNumber, "adam": f.Apps[0].AdamID, "ext": f.Users[0].ExternalID}).MustData(t, &got)

		if got.Device.User.ExternalID != f.Users[0].ExternalID || got.Device.Assignments.TotalCount != 1 ||
			got.Device.InstalledApps.TotalCount != 1 || got.Device.InstalledApps.Nodes[0].App.AdamID != f.Apps[0].AdamID {
			t.Errorf("device: %+v", got.Device)
		}
		if diff := cmp.Diff([]string{"IOS", "IPADOS"}, got.App.Platforms); diff != "" {
			t.Errorf("platforms mismatch (-want +got):\n%s", diff)
		}
		if got.App.LicensePools.TotalCount != 1 || got.App.LicensePools.Nodes[0].Assignments.TotalCount != 3 ||
			got.App.LicensePools.Nodes[0].AvailableCount != 3 || got.App.LicensePools.Nodes[0].Account.CountryCode != "US" {
			t.Errorf("app: %+v", got.App)
		}
		if got.User.Devices.TotalCount != 1 || len(got.User.Groups.Nodes) != 1 || got.User.Groups.Nodes[0].Members.TotalCount != 2 {
			t.Errorf("user: %+v", got.User)
		}

		// node and nodes give back the same objects, null for what does not exist.
		var nodes struct {
			Node  struct{ SerialNumber string }
			Nodes []*struct{ ID string }
		}
		s.Do(t, key, `query($id: ID!, $ids: [ID!]!) { node(id: $id) { ... on Device { serialNumber } } nodes(ids: $ids) { id } }`,
			map[string]any{"id": got.Device.ID, "ids": []string{got.Device.ID, "RGV2aWNlOjk5OTk"}}).MustData(t, &nodes)
		if nodes.Node.SerialNumber != f.Devices[0].SerialNumber || len(nodes.Nodes) != 2 || nodes.Nodes[0] == nil || nodes.Nodes[1] != nil {
			t.Errorf("node/nodes: %+v", nodes)
		}
		// Lookups that find nothing answer null, not an error.
		var none struct{ Device, App, User *struct{ ID string } }
		s.Do(t, key, `{ device(serialNumber: "NOPE") { id } app(adamId: "1") { id } user(externalId: "nobody") { id } }`, nil).MustData(t, &none)
		if none.Device != nil || none.App != nil || none.User != nil {
			t.Errorf("lookups of nothing: %+v", none)
		}
	})
}

// TestAPIKeys creates and revokes keys through the API and finds both in the audit trail.
func TestAPIKeys(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		s := gqltest.New(t, d)
		admin := s.Keys[model.RoleAdmin]
		var c struct {
			CreateApiKey struct {
				ApiKey     struct{ ID, Name, Role, Prefix string }
				Secret     string
				UserErrors []struct{ Code string }
			}
		}
		s.Do(t, admin, `mutation { createApiKey(input: {name: "directory", role: OPERATOR}) { apiKey { id name role prefix } secret userErrors { code } } }`, nil).MustData(t, &c)
		if c.CreateApiKey.ApiKey.Role != "OPERATOR" || len(c.CreateApiKey.Secret) < 40 || c.CreateApiKey.Secret[:len(c.CreateApiKey.ApiKey.Prefix)] != c.CreateApiKey.ApiKey.Prefix {
			t.Fatalf("created: %+v", c.CreateApiKey)
		}
		var v struct{ Viewer struct{ Role string } }
		s.Do(t, c.CreateApiKey.Secret, `{ viewer { role } }`, nil).MustData(t, &v)
		if v.Viewer.Role != "OPERATOR" {
			t.Fatalf("viewer role = %q", v.Viewer.Role)
		}
		// Bad input gives userErrors, not a top-level error.
		var bad struct {
			CreateApiKey struct {
				ApiKey     *struct{ ID string }
				UserErrors []struct {
					Field []string
					Code  string
				}
			}
		}
		s.Do(t, admin, `mutation { createApiKey(input: {name: "  ", role: VIEWER}) { apiKey { id } userErrors { field code } } }`, nil).MustData(t, &bad)
		if diff := cmp.Diff([]string{"input", "name"}, bad.CreateApiKey.UserErrors[0].Field); diff != "" || bad.CreateApiKey.ApiKey != nil || bad.CreateApiKey.UserErrors[0].Code != "INVALID_INPUT" {
			t.Errorf("blank name: %+v %s", bad, diff)
		}
		var r struct {
			RevokeApiKey struct {
				ApiKey     struct{ RevokedAt *string }
				UserErrors []struct{ Code string }
			}
		}
		s.Do(t, admin, `mutation($id: ID!) { revokeApiKey(input: {id: $id}) { apiKey { revokedAt } userErrors { code } } }`,
			map[string]any{"id": c.CreateApiKey.ApiKey.ID}).MustData(t, &r)
		if r.RevokeApiKey.ApiKey.RevokedAt == nil {
			t.Fatalf("not revoked: %+v", r)
		}
		if resp := s.Do(t, c.CreateApiKey.Secret, `{ viewer { role } }`, nil); len(resp.Errors) == 0 || resp.Errors[0].Code() != "UNAUTHENTICATED" {
			t.Fatalf("revoked key still works: %+v", resp)
		}
		var malformed struct {
			RevokeApiKey struct{ UserErrors []struct{ Code string } }
		}
		s.Do(t, admin, `mutation { revokeApiKey(input: {id: "garbage"}) { userErrors { code } } }`, nil).MustData(t, &malformed)
		if len(malformed.RevokeApiKey.UserErrors) != 1 || malformed.RevokeApiKey.UserErrors[0].Code != "INVALID_INPUT" {
			t.Errorf("malformed id: %+v", malformed)
		}
		var audit struct {
			AuditEvents struct {
				Nodes []struct {
					Action, ActorKind, ActorName, SubjectType string
					SubjectID                                 *string
				}
			}
		}
		s.Do(t, admin, `{ auditEvents(filter: {actorKind: API_KEY}) { nodes { action actorKind actorName subjectType subjectId } } }`, nil).MustData(t, &audit)
		var actions []string
		for _, e := range audit.AuditEvents.Nodes {
			actions = append(actions, e.Action)
			if e.SubjectID == nil || *e.SubjectID != c.CreateApiKey.ApiKey.ID || e.ActorName != "test ADMIN" {
				t.Errorf("audit event %+v", e)
			}
		}
		if diff := cmp.Diff([]string{"api_key.revoke", "api_key.create"}, actions); diff != "" {
			t.Errorf("audit actions mismatch (-want +got):\n%s", diff)
		}
	})
}

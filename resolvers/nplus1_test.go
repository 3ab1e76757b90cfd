package resolvers_test

import (
	"testing"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
	"orchard/resolvers/gqltest"
)

const nestedPage = `query($first: Int) {
  licenseAssignments(first: $first) {
    edges { cursor node {
      id status
      pool { account { name } app { name } }
      device { serialNumber user { email } }
      user { email }
    } }
    pageInfo { hasNextPage endCursor }
  }
}`

// TestNoNPlusOne guards the read path: a page of assignments with every relation costs the
// same small number of statements for 10 items and for 100.
func TestNoNPlusOne(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		gqltest.Seed(t, d, 3, 10, 150)
		s := gqltest.New(t, d)
		key := s.Keys[model.RoleViewer]
		s.Do(t, key, `{ viewer { role } }`, nil) // warm the key cache
		counts := map[int]int64{}
		for _, n := range []int{10, 100} {
			var got struct {
				LicenseAssignments struct {
					Edges []struct {
						Node struct {
							Pool   struct{ Account, App struct{ Name string } }
							Device *struct {
								SerialNumber string
								User         *struct{ Email string }
							}
							User *struct{ Email string }
						}
					}
				}
			}
			s.Do(t, key, nestedPage, map[string]any{"first": n}).MustData(t, &got)
			if len(got.LicenseAssignments.Edges) != n {
				t.Fatalf("got %d edges, want %d", len(got.LicenseAssignments.Edges), n)
			}
			var devices, users int
			for _, e := range got.LicenseAssignments.Edges {
				if e.Node.Pool.Account.Name == "" || e.Node.Pool.App.Name == "" {
					t.Fatalf("relation not resolved: %+v", e.Node)
				}
				if e.Node.Device != nil {
					devices++
					if e.Node.Device.User == nil || e.Node.Device.User.Email == "" {
						t.Fatalf("device user not resolved: %+v", e.Node.Device)
					}
				}
				if e.Node.User != nil {
					users++
				}
			}
			if devices == 0 || users == 0 {
				t.Fatalf("fixture should mix device (%d) and user (%d) licenses", devices, users)
			}
			counts[n] = s.Statements
		}
		if counts[10] != counts[100] || counts[100] > 8 {
			t.Errorf("statements: %d for 10 items, %d for 100; want the same, at most 8", counts[10], counts[100])
		}
		t.Logf("statements per page: %v", counts)
	})
}

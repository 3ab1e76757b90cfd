package scheduler_test

import (
	"testing"
	"time"

	"orchard/apple/applesim"
	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
	"orchard/resolvers/gqltest"
)

func TestSmokeAddAccountAndSync(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		st := gqltest.NewStack(t, d, gqltest.StackOptions{})
		gen := st.Sim.Generate(applesim.GenSpec{Tokens: 1, AppsPerToken: 20, AssignmentsPerToken: 300, Seed: 1, Countries: []string{"US"}})
		start := time.Now()
		id := st.AddAccount(t, "School", gen.TokenFiles[0])
		st.WaitSynced(t, id, start)
		var out struct {
			Account struct {
				Health, SyncStatus string
				LicenseAssignments struct{ TotalCount int }
				LicensePools       struct{ TotalCount int }
			}
		}
		st.Do(t, st.Keys[model.RoleViewer], `query($id: ID!) { account(id: $id) { health syncStatus licenseAssignments { totalCount } licensePools { totalCount } } }`,
			map[string]any{"id": id}).MustData(t, &out)
		t.Logf("%+v sim assignments %d", out, len(st.Sim.Assignments(gen.TokenFiles[0])))
		if out.Account.LicenseAssignments.TotalCount != len(st.Sim.Assignments(gen.TokenFiles[0])) {
			t.Fatalf("assignments: got %d want %d", out.Account.LicenseAssignments.TotalCount, len(st.Sim.Assignments(gen.TokenFiles[0])))
		}
	})
}

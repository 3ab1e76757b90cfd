package db_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
)

// The bulk reads of the assignment rules: a holder's active license of an app in any pool (the
// oldest when it has two), and an app's availability per country, known or not.
func TestAssignFacts(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		now := db.Now()
		var accounts []*model.Account
		for i := range 2 {
			key := fmt.Sprintf("uid-%d", i)
			accounts = append(accounts, &model.Account{Name: key, OrgName: "Org", LocationName: key, CountryCode: "US", AppleUID: key, LocationKey: &key,
				TokenCiphertext: []byte("sealed"), TokenExpiresAt: now.Add(time.Hour), Health: model.TokenHealthActive, HealthChangedAt: now, SyncStatus: model.SyncStatusNever})
		}
		mustFacts(t, d.InsertRows(ctx, accounts))
		apps := []*model.App{{AdamID: "1", Kind: model.AppKindApp, Name: "One"}, {AdamID: "2", Kind: model.AppKindApp, Name: "Two"}}
		mustFacts(t, d.InsertRows(ctx, apps))
		var pools []*model.LicensePool
		for _, a := range accounts {
			for _, app := range apps {
				pools = append(pools, &model.LicensePool{AccountID: a.ID, AppID: app.ID, AdamID: app.AdamID, PricingParam: "STDQ", TotalCount: 10, DeviceAssignable: true})
			}
		}
		mustFacts(t, d.InsertRows(ctx, pools)) // account 0: app 1, app 2; account 1: app 1, app 2
		row := func(pool *model.LicensePool, kind model.LicenseKind, serial, cuid string, status model.AssignmentStatus) *model.LicenseAssignment {
			key := model.HolderKeyFor(kind, serial, cuid)
			a := &model.LicenseAssignment{PoolID: pool.ID, AccountID: pool.AccountID, AppID: pool.AppID, Kind: kind, Status: status, Origin: model.OriginAdmin,
				HolderKey: &key, Reason: "test", CausedBy: "test", CreatedAt: now, UpdatedAt: now}
			if kind == model.LicenseKindDevice {
				a.SerialNumber = &serial
			} else {
				a.ClientUserID = &cuid
			}
			return a
		}
		dev, usr := model.LicenseKindDevice, model.LicenseKindUser
		rows := []*model.LicenseAssignment{
			row(pools[0], dev, "S1", "", model.AssignmentAssigned),  // S1 holds app 1 ...
			row(pools[2], dev, "S1", "", model.AssignmentPending),   // ... in the second account too (found at Apple, say)
			row(pools[0], dev, "S2", "", model.AssignmentReclaimed), // S2's is gone
			row(pools[1], dev, "S3", "", model.AssignmentAssigned),  // S3 holds app 2, not app 1
			row(pools[0], usr, "", "C1", model.AssignmentReclaiming),
			row(pools[0], dev, "S4", "", model.AssignmentFailed),
		}
		for _, r := range rows {
			mustFacts(t, d.InsertRows(ctx, r)) // one by one: the ids in this order
		}
		held, err := d.ActiveAssignmentsOfAppByHolders(ctx, apps[0].ID, dev, []string{"S1", "S2", "S3", "S4", "S9"}, []string{"C1"})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(map[string]db.HeldLicense{"D:S1": {ID: rows[0].ID, Status: model.AssignmentAssigned}}, held); diff != "" {
			t.Errorf("device holders of app 1 mismatch (-want +got):\n%s", diff)
		}
		held, err = d.ActiveAssignmentsOfAppByHolders(ctx, apps[0].ID, usr, []string{"S1"}, []string{"C1", "C2"})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(map[string]db.HeldLicense{"U:C1": {ID: rows[4].ID, Status: model.AssignmentReclaiming}}, held); diff != "" {
			t.Errorf("user holders of app 1 mismatch (-want +got):\n%s", diff)
		}
		if held, err = d.ActiveAssignmentsOfAppByHolders(ctx, apps[0].ID, dev, nil, []string{"C1"}); err != nil || len(held) != 0 {
			t.Errorf("no serial numbers given: %v, %v", held, err)
		}

		mustFacts(t, d.InsertRows(ctx, []*model.AppCountry{{AppID: apps[0].ID, CountryCode: "GB", Available: true, CheckedAt: now},
			{AppID: apps[0].ID, CountryCode: "DE", Available: false, CheckedAt: now}, {AppID: apps[1].ID, CountryCode: "FR", Available: true, CheckedAt: now}}))
		sold, err := d.AppAvailabilityIn(ctx, apps[0].ID, []string{"GB", "DE", "FR"})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(map[string]bool{"GB": true, "DE": false}, sold); diff != "" {
			t.Errorf("availability of app 1 mismatch (-want +got):\n%s", diff)
		}
	})
}

func mustFacts(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

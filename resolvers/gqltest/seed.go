package gqltest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"orchard/db"
	"orchard/model"
)

// Fixture is a small estate written straight to the database, for read tests and benchmarks.
type Fixture struct {
	Accounts    []*model.Account
	Apps        []*model.App
	Pools       []*model.LicensePool
	Users       []*model.User
	Devices     []*model.Device
	Assignments []*model.LicenseAssignment
}

// Seed writes accounts × apps pools, one user and one device per assignment target, and n
// assignments spread over the pools, alternating device and user licenses.
func Seed(t testing.TB, d *db.DB, accounts, apps, n int) *Fixture {
	t.Helper()
	ctx := context.Background()
	now := db.Now()
	f := &Fixture{}
	for i := range accounts {
		key := fmt.Sprintf("uid-%d", i)
		f.Accounts = append(f.Accounts, &model.Account{
			Name: fmt.Sprintf("Account %d", i), OrgName: "Org", LocationName: fmt.Sprintf("Location %d", i),
			CountryCode: []string{"US", "GB", "DE"}[i%3], AppleUID: key, LocationKey: &key,
			TokenCiphertext: []byte("sealed"), TokenExpiresAt: now.Add(365 * 24 * time.Hour),
			Health: model.TokenHealthActive, HealthChangedAt: now, SyncStatus: model.SyncStatusNever,
		})
	}
	must(t, d.InsertRows(ctx, f.Accounts))
	for i := range apps {
		kind := model.AppKindApp
		if i%7 == 6 {
			kind = model.AppKindBook
		}
		f.Apps = append(f.Apps, &model.App{
			AdamID: fmt.Sprint(100000 + i), Kind: kind, Name: fmt.Sprintf("App %d", i),
			BundleID: fmt.Sprintf("com.example.app%d", i), Platforms: "IOS,IPADOS",
		})
	}
	must(t, d.InsertRows(ctx, f.Apps))
	for _, a := range f.Accounts {
		for _, app := range f.Apps {
			f.Pools = append(f.Pools, &model.LicensePool{
				AccountID: a.ID, AppID: app.ID, AdamID: app.AdamID, PricingParam: "STDQ",
				TotalCount: int64(n), DeviceAssignable: app.Kind == model.AppKindApp, Revocable: app.Kind == model.AppKindApp,
			})
		}
	}
	must(t, d.InsertRows(ctx, f.Pools))
	for i := range n {
		f.Users = append(f.Users, &model.User{
			ExternalID: fmt.Sprintf("ext-%d", i), ClientUserID: fmt.Sprintf("cu-%d", i),
			Email: fmt.Sprintf("user%d@example.com", i), Name: fmt.Sprintf("User %d", i), Status: model.UserActive,
		})
	}
	must(t, d.InsertRows(ctx, f.Users))
	for i := range n {
		uid := f.Users[i].ID
		f.Devices = append(f.Devices, &model.Device{
			SerialNumber: fmt.Sprintf("SER%06d", i), Name: fmt.Sprintf("iPad %d", i), Platform: model.PlatformIPadOS,
			OSVersion: "17.4", CountryCode: "US", SharedIPad: i%10 == 0, UserID: &uid, Status: model.DeviceActive,
		})
	}
	must(t, d.InsertRows(ctx, f.Devices))
	for i := range n {
		p := f.Pools[i%len(f.Pools)]
		a := &model.LicenseAssignment{
			PoolID: p.ID, AccountID: p.AccountID, AppID: p.AppID, Status: model.AssignmentAssigned,
			Origin: model.OriginAdmin, Reason: "seed", CausedBy: "test", AssignedAt: &now,
		}
		if i%2 == 0 && p.DeviceAssignable {
			a.Kind = model.LicenseKindDevice
			a.SerialNumber = &f.Devices[i].SerialNumber
			a.DeviceID = &f.Devices[i].ID
		} else {
			a.Kind = model.LicenseKindUser
			a.ClientUserID = &f.Users[i].ClientUserID
			a.UserID = &f.Users[i].ID
		}
		key := model.HolderKeyFor(a.Kind, deref(a.SerialNumber), deref(a.ClientUserID))
		a.HolderKey = &key
		f.Assignments = append(f.Assignments, a)
		p.AssignedCount++
	}
	must(t, d.InsertRows(ctx, f.Assignments))
	for _, p := range f.Pools {
		must(t, d.SetPoolCounts(ctx, p.ID, p.AssignedCount, 0))
	}
	return f
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

package db_test

import (
	"context"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
)

func appIDs(as []*model.App) []int64 {
	return idsOf(as, func(a *model.App) int64 { return a.ID })
}

// TestAppsNeedingMetadata: the apps of the account's pools never looked up, or looked up
// before the cut, by id, at most limit; apps of other accounts only, or of no pool, are not.
func TestAppsNeedingMetadata(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		acc, other := seedAccount(t, d), seedAccount(t, d)
		now := db.Now()
		stale, fresh := now.Add(-48*time.Hour), now.Add(-time.Hour)
		never := seedApp(t, d)
		old := seedApp(t, d, func(a *model.App) { a.MetadataRefreshedAt = &stale })
		recent := seedApp(t, d, func(a *model.App) { a.MetadataRefreshedAt = &fresh })
		theirs := seedApp(t, d)
		seedApp(t, d) // of no pool
		for _, a := range []*model.App{never, old, recent} {
			seedPool(t, d, acc, a)
		}
		seedPool(t, d, acc, never, func(p *model.LicensePool) { p.PricingParam = "PLUS" }) // two pools, one app
		seedPool(t, d, other, theirs)
		for _, tt := range []struct {
			name    string
			account int64
			before  time.Time
			limit   int
			want    []int64
		}{
			{"looked up more than a day ago or never", acc.ID, now.Add(-24 * time.Hour), 10, []int64{never.ID, old.ID}},
			{"limit", acc.ID, now.Add(-24 * time.Hour), 1, []int64{never.ID}},
			{"every app before now", acc.ID, now, 10, []int64{never.ID, old.ID, recent.ID}},
			{"the other account", other.ID, now, 10, []int64{theirs.ID}},
			{"no such account", 0, now, 10, []int64{}},
		} {
			got, err := d.AppsNeedingMetadata(ctx, tt.account, tt.before, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, appIDs(got)); diff != "" {
				t.Errorf("%s: mismatch (-want +got):\n%s", tt.name, diff)
			}
		}
	})
}

// TestSetAppMetadataAndAvailability: found metadata is stored (cut to its columns, valid
// UTF-8; platforms kept when the lookup has none) with the refresh time; a lookup that did not
// find the app only records the time. Availability rows are upserted per app and country (in
// upper case), and an app whose every country is known no longer misses availability.
func TestSetAppMetadataAndAvailability(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		acc := seedAccount(t, d)
		found, missing := seedApp(t, d), seedApp(t, d, func(a *model.App) { a.Name, a.Platforms = "Kept", "IOS" })
		seedPool(t, d, acc, found)
		seedPool(t, d, acc, missing)
		at := db.Now().Add(-time.Minute)
		mustDo(t, d.SetAppMetadata(ctx, nil, at))
		long := strings.Repeat("ü", 300)
		mustDo(t, d.SetAppMetadata(ctx, []db.AppMetadata{
			{AppID: found.ID, Found: true, Name: long, BundleID: "com.example.found", IconURL: "https://example.com/i.png",
				MinimumOSVersion: "16.0", Version: "2.1", Platforms: "IOS,MACOS", IsB2B: true, IsFree: true},
			{AppID: missing.ID, Found: false, Name: "Ignored"},
		}, at))
		type app struct {
			Name, BundleID, Icon, MinOS, Version, Platforms string
			B2B, Free, Refreshed                            bool
		}
		read := func(id int64) app {
			a, err := d.AppByID(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			return app{a.Name, a.BundleID, a.IconURL, a.MinimumOSVersion, a.Version, a.Platforms, a.IsB2B, a.IsFree,
				a.MetadataRefreshedAt != nil && a.MetadataRefreshedAt.Equal(at)}
		}
		gotFound := read(found.ID)
		if !utf8.ValidString(gotFound.Name) || utf8.RuneCountInString(gotFound.Name) > 255 || !strings.HasPrefix(gotFound.Name, "üüü") {
			t.Errorf("long name stored as %d characters (valid UTF-8: %v)", utf8.RuneCountInString(gotFound.Name), utf8.ValidString(gotFound.Name))
		}
		gotFound.Name = ""
		want := app{"", "com.example.found", "https://example.com/i.png", "16.0", "2.1", "IOS,MACOS", true, true, true}
		if diff := cmp.Diff(want, gotFound); diff != "" {
			t.Errorf("found app mismatch (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(app{Name: "Kept", BundleID: missing.BundleID, Platforms: "IOS", Refreshed: true}, read(missing.ID)); diff != "" {
			t.Errorf("app not found by the lookup mismatch (-want +got):\n%s", diff)
		}
		// A later lookup without platforms keeps them.
		mustDo(t, d.SetAppMetadata(ctx, []db.AppMetadata{{AppID: found.ID, Found: true, Name: "Short"}}, at))
		if got := read(found.ID); got.Platforms != "IOS,MACOS" || got.Name != "Short" {
			t.Errorf("platforms not kept: %+v", got)
		}
		if got, err := d.AppsNeedingMetadata(ctx, acc.ID, at, 10); err != nil || len(got) != 0 {
			t.Errorf("apps still needing metadata: %v, %v", appIDs(got), err)
		}

		countries := []string{"DE", "US"}
		missingAvail := func() []int64 {
			t.Helper()
			got, err := d.AppsMissingAvailability(ctx, acc.ID, countries, 10)
			if err != nil {
				t.Fatal(err)
			}
			return appIDs(got)
		}
		if got, err := d.AppsMissingAvailability(ctx, acc.ID, nil, 10); err != nil || len(got) != 0 {
			t.Errorf("no countries: %v, %v", got, err)
		}
		if diff := cmp.Diff([]int64{found.ID, missing.ID}, missingAvail()); diff != "" {
			t.Errorf("before: mismatch (-want +got):\n%s", diff)
		}
		mustDo(t, d.SetAvailability(ctx, nil))
		mustDo(t, d.SetAvailability(ctx, []model.AppCountry{
			{AppID: found.ID, CountryCode: "de", Available: true, CheckedAt: at},
			{AppID: found.ID, CountryCode: "US", Available: false, CheckedAt: at},
			{AppID: missing.ID, CountryCode: "US", Available: true, CheckedAt: at},
		}))
		if diff := cmp.Diff([]int64{missing.ID}, missingAvail()); diff != "" {
			t.Errorf("after: mismatch (-want +got):\n%s", diff)
		}
		// Looked up again: the row is replaced, not added.
		mustDo(t, d.SetAvailability(ctx, []model.AppCountry{{AppID: found.ID, CountryCode: "us", Available: true, CheckedAt: at}}))
		sold, err := d.CountriesByApp(ctx, []int64{found.ID, missing.ID})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(map[int64][]string{found.ID: {"DE", "US"}, missing.ID: {"US"}}, sold); diff != "" {
			t.Errorf("countries sold in mismatch (-want +got):\n%s", diff)
		}
	})
}

// TestCountriesInUse: the countries of active devices and live accounts, trimmed, in upper
// case, once each, sorted; retired devices and removed accounts do not count.
func TestCountriesInUse(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		now := db.Now()
		got, err := d.CountriesInUse(ctx)
		if err != nil || len(got) != 0 {
			t.Fatalf("empty database: %v, %v", got, err)
		}
		seedAccount(t, d, func(a *model.Account) { a.CountryCode = "us" })
		seedAccount(t, d, func(a *model.Account) { a.CountryCode = "JP"; a.RemovedAt = &now })
		seedDevice(t, d, func(dev *model.Device) { dev.CountryCode = "de" })
		seedDevice(t, d, func(dev *model.Device) { dev.CountryCode = "US" })
		seedDevice(t, d, func(dev *model.Device) { dev.CountryCode = "" })
		seedDevice(t, d, func(dev *model.Device) { dev.CountryCode = "FR"; dev.Status = model.DeviceRetired })
		got, err = d.CountriesInUse(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"DE", "US"}, got); diff != "" {
			t.Errorf("countries mismatch (-want +got):\n%s", diff)
		}
	})
}

// TestMetadataErrorsNameTheOperation: each function's error says which store operation failed.
func TestMetadataErrorsNameTheOperation(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		app := seedApp(t, d)
		checkErrorsNameOps(t, []namedOp{
			{"apps needing metadata", func(ctx context.Context) error { _, err := d.AppsNeedingMetadata(ctx, 1, db.Now(), 1); return err }},
			{"apps missing availability", func(ctx context.Context) error {
				_, err := d.AppsMissingAvailability(ctx, 1, []string{"US"}, 1)
				return err
			}},
			{"countries in use", func(ctx context.Context) error { _, err := d.CountriesInUse(ctx); return err }},
			{"set app metadata", func(ctx context.Context) error {
				return d.SetAppMetadata(ctx, []db.AppMetadata{{AppID: app.ID, Found: true, Name: "x"}}, db.Now())
			}},
			{"set availability", func(ctx context.Context) error {
				return d.SetAvailability(ctx, []model.AppCountry{{AppID: app.ID, CountryCode: "US", CheckedAt: db.Now()}})
			}},
		})
	})
}

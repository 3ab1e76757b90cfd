package db_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
)

// TestAppLookups reads an app by id, by adamId and by bundle id (the oldest of two apps that
// share one); unknown keys are the not-found error named after the lookup.
func TestAppLookups(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		app := seedApp(t, d)
		seedApp(t, d, func(a *model.App) { a.BundleID = app.BundleID }) // a book or an older version
		tests := []struct {
			op   string
			read func() (*model.App, error)
			miss func() (*model.App, error)
		}{
			{"app by id", func() (*model.App, error) { return d.AppByID(bg(), app.ID) },
				func() (*model.App, error) { return d.AppByID(bg(), app.ID+1000) }},
			{"app by adam id", func() (*model.App, error) { return d.AppByAdamID(bg(), app.AdamID) },
				func() (*model.App, error) { return d.AppByAdamID(bg(), "0") }},
			{"app by bundle id", func() (*model.App, error) { return d.AppByBundleID(bg(), app.BundleID) },
				func() (*model.App, error) { return d.AppByBundleID(bg(), "com.example.none") }},
		}
		for _, tc := range tests {
			got, err := tc.read()
			mustDo(t, err)
			if diff := cmp.Diff(app.ID, got.ID); diff != "" {
				t.Errorf("%s: id mismatch (-want +got):\n%s", tc.op, diff)
			}
			_, err = tc.miss()
			isNotFound(t, tc.op, err)
		}
	})
}

// TestAppsByBundleIDs maps each bundle id asked to its oldest app; unknown ids are absent and
// no ids read nothing.
func TestAppsByBundleIDs(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		a, b := seedApp(t, d), seedApp(t, d)
		seedApp(t, d, func(x *model.App) { x.BundleID = a.BundleID })
		tests := []struct {
			name string
			ids  []string
			want map[string]int64
		}{
			{"oldest of a bundle id", []string{a.BundleID, b.BundleID, "com.none"}, map[string]int64{a.BundleID: a.ID, b.BundleID: b.ID}},
			{"none", nil, map[string]int64{}},
		}
		for _, tc := range tests {
			got, err := d.AppsByBundleIDs(bg(), tc.ids)
			mustDo(t, err)
			ids := map[string]int64{}
			for k, v := range got {
				ids[k] = v.ID
			}
			if diff := cmp.Diff(tc.want, ids); diff != "" {
				t.Errorf("%s: mismatch (-want +got):\n%s", tc.name, diff)
			}
		}
	})
}

// TestListApps filters by search text (name or bundle id, LIKE wildcards taken literally),
// platform (a whole element of the list), kind and owning account, and counts the same set.
func TestListApps(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		acct := seedAccount(t, d)
		maps := seedApp(t, d, func(a *model.App) { a.Name = "Maps 100%"; a.Platforms = "IOS,MACOS" })
		book := seedApp(t, d, func(a *model.App) { a.Name = "Big Book"; a.Kind = model.AppKindBook; a.Platforms = "" })
		tv := seedApp(t, d, func(a *model.App) { a.Name = "TV_Remote"; a.BundleID = "com.example.tvremote"; a.Platforms = "TVOS" })
		seedPool(t, d, acct, tv)
		tests := []struct {
			name string
			f    db.AppFilter
			want []int64
		}{
			{"all", db.AppFilter{}, []int64{maps.ID, book.ID, tv.ID}},
			{"search name, any case", db.AppFilter{Search: "mAPS"}, []int64{maps.ID}},
			{"search bundle id", db.AppFilter{Search: "tvremote"}, []int64{tv.ID}},
			{"percent is literal", db.AppFilter{Search: "100%"}, []int64{maps.ID}},
			{"underscore is literal", db.AppFilter{Search: "v_r"}, []int64{tv.ID}},
			{"platform element", db.AppFilter{Platform: model.PlatformMacOS}, []int64{maps.ID}},
			{"platform is not a substring", db.AppFilter{Platform: "OS"}, []int64{}},
			{"kind", db.AppFilter{Kind: model.AppKindBook}, []int64{book.ID}},
			{"account", db.AppFilter{AccountID: acct.ID}, []int64{tv.ID}},
		}
		for _, tc := range tests {
			got, more, err := d.ListApps(bg(), tc.f, db.Page{First: 10})
			mustDo(t, err)
			if diff := cmp.Diff(tc.want, idsOf(got, appID)); diff != "" || more {
				t.Errorf("%s: mismatch (-want +got), more %v:\n%s", tc.name, more, diff)
			}
			n, err := d.CountApps(bg(), tc.f)
			mustDo(t, err)
			if n != len(tc.want) {
				t.Errorf("%s: count %d, want %d", tc.name, n, len(tc.want))
			}
		}
		byID, err := d.AppsByID(bg(), []int64{tv.ID, maps.ID, 0})
		mustDo(t, err)
		if diff := cmp.Diff([]int64{maps.ID, tv.ID}, sortedIDs(byID, appID)); diff != "" {
			t.Errorf("apps by id mismatch (-want +got):\n%s", diff)
		}
	})
}

// TestCountriesByApp lists, per app, the countries where it is available, in code order;
// unavailable countries and apps without any are left out.
func TestCountriesByApp(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		a, b, c := seedApp(t, d), seedApp(t, d), seedApp(t, d)
		now := db.Now()
		mustDo(t, d.InsertRows(bg(), []*model.AppCountry{
			{AppID: a.ID, CountryCode: "US", Available: true, CheckedAt: now},
			{AppID: a.ID, CountryCode: "DE", Available: true, CheckedAt: now},
			{AppID: a.ID, CountryCode: "FR", Available: false, CheckedAt: now},
			{AppID: b.ID, CountryCode: "JP", Available: true, CheckedAt: now},
			{AppID: c.ID, CountryCode: "GB", Available: false, CheckedAt: now},
		}))
		tests := []struct {
			name string
			ids  []int64
			want map[int64][]string
		}{
			{"some", []int64{a.ID, b.ID, c.ID}, map[int64][]string{a.ID: {"DE", "US"}, b.ID: {"JP"}}},
			{"none", nil, map[int64][]string{}},
		}
		for _, tc := range tests {
			got, err := d.CountriesByApp(bg(), tc.ids)
			mustDo(t, err)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s: mismatch (-want +got):\n%s", tc.name, diff)
			}
		}
	})
}

// TestAppErrorsNameTheOperation: see TestAccountErrorsNameTheOperation.
func TestAppErrorsNameTheOperation(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		d = closedStore(t, d)
		checkOpErrors(t, []opErr{
			{"app by id", func() error { _, err := d.AppByID(bg(), 1); return err }},
			{"app by bundle id", func() error { _, err := d.AppByBundleID(bg(), "x"); return err }},
			{"apps by bundle ids", func() error { _, err := d.AppsByBundleIDs(bg(), []string{"x"}); return err }},
			{"list apps", func() error { _, _, err := d.ListApps(bg(), db.AppFilter{}, db.Page{First: 1}); return err }},
			{"count apps", func() error { _, err := d.CountApps(bg(), db.AppFilter{}); return err }},
			{"apps by id", func() error { _, err := d.AppsByID(bg(), []int64{1}); return err }},
			{"app by adam id", func() error { _, err := d.AppByAdamID(bg(), "1"); return err }},
			{"countries by app", func() error { _, err := d.CountriesByApp(bg(), []int64{1}); return err }},
		})
	})
}

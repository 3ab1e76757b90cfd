package license_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"orchard/apple/applesim"
	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
	"orchard/resolvers/gqltest"
	"orchard/scheduler"
)

// After a pass the scheduler looks up the metadata of the account's apps (name, icon, bundle
// id, platforms, B2B, version, minimum OS) in the account's storefront and their availability
// in every country in use (devices' and accounts'): the inputs of R4c/R6 (bundle ids), R5
// (free apps) and R11 (countries, B2B). A country that comes into use later is looked up at the
// next pass; a held account is never looked up.
func TestMetadataLookupAfterPass(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		st := gqltest.NewStack(t, d, gqltest.StackOptions{Scheduler: scheduler.Config{MetadataRefresh: time.Millisecond}})
		e := &env{t: t, st: st, op: st.Keys[model.RoleOperator]}
		// A device in GB exists before the account: its country is in use from the first pass.
		e.upsertDevices(iPad("GB1", "countryCode", "GB"))
		e.tok, e.acct = e.addAccount("Main", "US",
			app("1001", func(a *applesim.Asset) { a.MinimumOSVersion = "16.2"; a.Version = "2.1" }),
			app("1002", notSoldIn("GB")),
			app("1003", notSoldIn("GB"), func(a *applesim.Asset) { a.B2B = true; a.Platforms = []string{"iOS", "macOS"} }),
			app("1004", book))

		type appView struct {
			AdamID, Kind, Name, BundleID, MinimumOsVersion, Version string
			Platforms, SoldIn                                       []string
			IsB2B                                                   bool
			HasIcon                                                 bool `json:"-"`
			IconURL                                                 string
		}
		read := func() []appView {
			var out struct {
				Apps struct{ Nodes []appView }
			}
			e.do(`{ apps(first: 100) { nodes { adamId kind name bundleId minimumOsVersion version platforms soldIn isB2B iconUrl } } }`, nil, &out)
			for i := range out.Apps.Nodes {
				out.Apps.Nodes[i].HasIcon = out.Apps.Nodes[i].IconURL != ""
				out.Apps.Nodes[i].IconURL = ""
			}
			return out.Apps.Nodes
		}
		want := []appView{
			{AdamID: "1001", Kind: "APP", Name: "App 1001", BundleID: "com.example.app1001", MinimumOsVersion: "16.2", Version: "2.1",
				Platforms: []string{"IOS", "IPADOS"}, SoldIn: []string{"GB", "US"}, HasIcon: true},
			{AdamID: "1002", Kind: "APP", Name: "App 1002", BundleID: "com.example.app1002", MinimumOsVersion: "15.0", Version: "1.0",
				Platforms: []string{"IOS", "IPADOS"}, SoldIn: []string{"US"}, HasIcon: true},
			{AdamID: "1003", Kind: "APP", Name: "App 1003", BundleID: "com.example.app1003", MinimumOsVersion: "15.0", Version: "1.0",
				Platforms: []string{"IOS", "IPADOS", "MACOS"}, SoldIn: []string{"US"}, IsB2B: true, HasIcon: true},
			{AdamID: "1004", Kind: "BOOK", Name: "Book 1004", MinimumOsVersion: "15.0", Version: "1.0", Platforms: []string{"IOS", "IPADOS", "MACOS"}, SoldIn: []string{"GB", "US"}, HasIcon: true},
		}
		if diff := cmp.Diff(want, read()); diff != "" {
			t.Errorf("apps after the first pass mismatch (-want +got):\n%s", diff)
		}

		// A device in France comes into use: the next pass looks up availability there.
		e.upsertDevices(iPad("FR1", "countryCode", "FR"))
		e.sync(e.acct)
		want[0].SoldIn = []string{"FR", "GB", "US"}
		want[1].SoldIn = []string{"FR", "US"}
		want[2].SoldIn = []string{"FR", "US"}
		want[3].SoldIn = []string{"FR", "GB", "US"}
		if diff := cmp.Diff(want, read()); diff != "" {
			t.Errorf("apps after a device in FR came into use mismatch (-want +got):\n%s", diff)
		}

		// Held: no lookup for the account (the metadata is due: MetadataRefresh is 1ms).
		accts, err := d.ListLiveAccounts(context.Background())
		if err != nil || len(accts) != 1 {
			t.Fatalf("accounts %v %v", accts, err)
		}
		id := accts[0].ID
		st.Sim.SetFault(e.tok, applesim.Fault{Kind: applesim.FaultUnavailable503, RetryAfterSeconds: 2, Count: 1})
		var queued struct {
			SyncAccount struct{ UserErrors []userError }
		}
		st.Do(t, st.Keys[model.RoleAdmin], `mutation($id: ID!) { syncAccount(input: {accountId: $id}) { userErrors { code } } }`,
			map[string]any{"id": e.acct}).MustData(t, &queued)
		gqltest.WaitFor(t, "the account to be held", waitLong, func() bool {
			a, err := d.AccountByID(context.Background(), id)
			return err == nil && a.ThrottledUntil != nil
		})
		refreshed := func() time.Time {
			var out struct {
				App struct{ MetadataRefreshedAt time.Time }
			}
			e.do(`{ app(adamId: "1001") { metadataRefreshedAt } }`, nil, &out)
			return out.App.MetadataRefreshedAt
		}
		before := refreshed()
		if err := st.Scheduler.RefreshMetadata(context.Background(), id); err != nil {
			t.Fatal(err)
		}
		a, err := d.AccountByID(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if now := db.Now(); a.ThrottledUntil != nil && a.ThrottledUntil.After(now) {
			if got := refreshed(); !got.Equal(before) {
				t.Errorf("metadata of a held account was looked up (refreshed %s, before %s)", got, before)
			}
		} else {
			t.Log("the hold ended before it could be checked (slow machine)")
		}
		// After the hold, the lookups go ahead.
		gqltest.WaitFor(t, "the end of the hold", waitLong, func() bool { return db.Now().After(*a.ThrottledUntil) })
		if err := st.Scheduler.RefreshMetadata(context.Background(), id); err != nil {
			t.Fatal(err)
		}
		if got := refreshed(); !got.After(before) {
			t.Errorf("metadata not looked up after the hold (refreshed %s, before %s)", got, before)
		}
	})
}

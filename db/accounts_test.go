package db_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
)

// TestInsertAccount stores an account that reads back as written, and refuses a second live
// account for the same Apple location with ErrDuplicateLocation; a removed account (its
// location key NULL) does not block a new one.
func TestInsertAccount(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		a := seedAccount(t, d)
		got, err := d.AccountByID(bg(), a.ID)
		mustDo(t, err)
		if diff := cmp.Diff(a, got); diff != "" {
			t.Errorf("account mismatch (-want +got):\n%s", diff)
		}
		dup := *a
		dup.ID, dup.Name = 0, "Again"
		if err := d.InsertAccount(bg(), &dup); !errors.Is(err, db.ErrDuplicateLocation) {
			t.Fatalf("second live account of a location: got %v, want ErrDuplicateLocation", err)
		}
		mustDo(t, d.UpdateAccount(bg(), a.ID, map[string]any{"location_key": nil, "removed_at": db.Now()}))
		dup.ID = 0
		mustDo(t, d.InsertAccount(bg(), &dup))
	})
}

// TestDeleteAccountRow removes the row: it is not found afterwards.
func TestDeleteAccountRow(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		a, b := seedAccount(t, d), seedAccount(t, d)
		mustDo(t, d.DeleteAccountRow(bg(), a.ID))
		_, err := d.AccountByID(bg(), a.ID)
		isNotFound(t, "account by id", err)
		if _, err := d.AccountByID(bg(), b.ID); err != nil {
			t.Errorf("the other account: %v", err)
		}
	})
}

// TestAccountLookups reads one account by id (plain and locked) and by location; an unknown
// key is the not-found error, named after the lookup.
func TestAccountLookups(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		a := seedAccount(t, d)
		seedAccount(t, d)
		tests := []struct {
			op   string
			read func(tx *db.DB, id int64, key string) (*model.Account, error)
		}{
			{"account by id", func(tx *db.DB, id int64, _ string) (*model.Account, error) { return tx.AccountByID(bg(), id) }},
			{"lock account", func(tx *db.DB, id int64, _ string) (*model.Account, error) { return tx.LockAccount(bg(), id) }},
			{"live account by location", func(tx *db.DB, _ int64, key string) (*model.Account, error) {
				return tx.LiveAccountByLocation(bg(), key)
			}},
		}
		for _, tc := range tests {
			mustDo(t, d.Tx(bg(), func(tx *db.DB) error {
				got, err := tc.read(tx, a.ID, *a.LocationKey)
				if err != nil {
					return err
				}
				if got.ID != a.ID || got.Name != a.Name {
					t.Errorf("%s: got account %d %q, want %d %q", tc.op, got.ID, got.Name, a.ID, a.Name)
				}
				_, err = tc.read(tx, a.ID+1000, "uid-none")
				isNotFound(t, tc.op, err)
				return nil
			}))
		}
	})
}

// TestUpdateAccount sets the given columns (times in UTC) and updated_at, and maps a location
// taken by another live account onto ErrDuplicateLocation.
func TestUpdateAccount(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		a, b := seedAccount(t, d), seedAccount(t, d)
		at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.FixedZone("CET", 3600))
		mustDo(t, d.UpdateAccount(bg(), a.ID, map[string]any{"name": "Renamed", "next_sync_at": at}))
		got, err := d.AccountByID(bg(), a.ID)
		mustDo(t, err)
		if got.Name != "Renamed" || got.NextSyncAt == nil || !got.NextSyncAt.Equal(at) || got.NextSyncAt.Location() != time.UTC {
			t.Errorf("updated account: name %q next sync %v, want Renamed and %v in UTC", got.Name, got.NextSyncAt, at.UTC())
		}
		if got.UpdatedAt.Before(a.UpdatedAt) {
			t.Errorf("updated_at went back: %v < %v", got.UpdatedAt, a.UpdatedAt)
		}
		err = d.UpdateAccount(bg(), b.ID, map[string]any{"location_key": *a.LocationKey})
		if !errors.Is(err, db.ErrDuplicateLocation) {
			t.Errorf("taking a live account's location: got %v, want ErrDuplicateLocation", err)
		}
	})
}

// TestHoldAccount records Apple's Retry-After plus HoldMargin; a shorter hold arriving later
// does not shorten it, a longer one extends it.
func TestHoldAccount(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		a := seedAccount(t, d)
		base := db.Now().Add(time.Hour)
		tests := []struct {
			name  string
			until time.Time
			want  time.Time
		}{
			{"first hold", base, base.Add(db.HoldMargin)},
			{"a shorter hold keeps the longer", base.Add(-30 * time.Minute), base.Add(db.HoldMargin)},
			{"a longer hold extends", base.Add(time.Hour), base.Add(time.Hour + db.HoldMargin)},
		}
		for _, tc := range tests {
			mustDo(t, d.HoldAccount(bg(), a.ID, tc.until, "429 "+tc.name))
			got, err := d.AccountByID(bg(), a.ID)
			mustDo(t, err)
			if got.ThrottledUntil == nil || !got.ThrottledUntil.Equal(tc.want) {
				t.Errorf("%s: throttled until %v, want %v", tc.name, got.ThrottledUntil, tc.want)
			}
			if got.ThrottleReason == nil || *got.ThrottleReason != "429 "+tc.name {
				t.Errorf("%s: reason %v", tc.name, got.ThrottleReason)
			}
		}
	})
}

// TestListAccounts filters by health and removal, pages in id order, and counts the same
// set; ListLiveAccounts reads every live account in id order.
func TestListAccounts(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		active1 := seedAccount(t, d)
		expired := seedAccount(t, d, func(a *model.Account) { a.Health = model.TokenHealthExpired })
		removed := seedAccount(t, d, func(a *model.Account) { now := db.Now(); a.RemovedAt = &now; a.LocationKey = nil })
		active2 := seedAccount(t, d)
		tests := []struct {
			name string
			f    db.AccountFilter
			want []int64
		}{
			{"live", db.AccountFilter{}, []int64{active1.ID, expired.ID, active2.ID}},
			{"with removed", db.AccountFilter{IncludeRemoved: true}, []int64{active1.ID, expired.ID, removed.ID, active2.ID}},
			{"active", db.AccountFilter{Health: []model.TokenHealth{model.TokenHealthActive}}, []int64{active1.ID, active2.ID}},
			{"expired or revoked", db.AccountFilter{Health: []model.TokenHealth{model.TokenHealthExpired, model.TokenHealthRevoked}}, []int64{expired.ID}},
		}
		for _, tc := range tests {
			got, more, err := d.ListAccounts(bg(), tc.f, db.Page{First: 10})
			mustDo(t, err)
			if diff := cmp.Diff(tc.want, idsOf(got, accountID)); diff != "" || more {
				t.Errorf("%s: list mismatch (-want +got), more %v:\n%s", tc.name, more, diff)
			}
			n, err := d.CountAccounts(bg(), tc.f)
			mustDo(t, err)
			if n != len(tc.want) {
				t.Errorf("%s: count %d, want %d", tc.name, n, len(tc.want))
			}
		}
		live, err := d.ListLiveAccounts(bg())
		mustDo(t, err)
		if diff := cmp.Diff([]int64{active1.ID, expired.ID, active2.ID}, idsOf(live, accountID)); diff != "" {
			t.Errorf("live accounts mismatch (-want +got):\n%s", diff)
		}
	})
}

// TestAccountsByID reads the accounts of the ids asked (unknown ids are left out); no ids
// read nothing, without a statement.
func TestAccountsByID(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		a, b, c := seedAccount(t, d), seedAccount(t, d), seedAccount(t, d)
		tests := []struct {
			name       string
			ids        []int64
			want       []int64
			statements int64
		}{
			{"some", []int64{c.ID, a.ID}, []int64{a.ID, c.ID}, 1},
			{"unknown left out", []int64{b.ID, b.ID + 1000}, []int64{b.ID}, 1},
			{"none", nil, []int64{}, 0},
		}
		for _, tc := range tests {
			var sc db.StatementCounter
			got, err := d.AccountsByID(db.WithStatementCounter(bg(), &sc), tc.ids)
			mustDo(t, err)
			if diff := cmp.Diff(tc.want, sortedIDs(got, accountID)); diff != "" {
				t.Errorf("%s: accounts mismatch (-want +got):\n%s", tc.name, diff)
			}
			if sc.Count() != tc.statements {
				t.Errorf("%s: %d statements, want %d", tc.name, sc.Count(), tc.statements)
			}
		}
	})
}

// TestAccountErrorsNameTheOperation fails every function of the accounts store on a closed
// database: each error says which operation failed.
func TestAccountErrorsNameTheOperation(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		d = closedStore(t, d)
		checkOpErrors(t, []opErr{
			{"insert account", func() error { return d.InsertAccount(bg(), &model.Account{}) }},
			{"delete account row", func() error { return d.DeleteAccountRow(bg(), 1) }},
			{"account by id", func() error { _, err := d.AccountByID(bg(), 1); return err }},
			{"lock account", func() error { _, err := d.LockAccount(bg(), 1); return err }},
			{"live account by location", func() error { _, err := d.LiveAccountByLocation(bg(), "x"); return err }},
			{"update account", func() error { return d.UpdateAccount(bg(), 1, map[string]any{"name": "x"}) }},
			{"hold account", func() error { return d.HoldAccount(bg(), 1, db.Now(), "x") }},
			{"list live accounts", func() error { _, err := d.ListLiveAccounts(bg()); return err }},
			{"list accounts", func() error { _, _, err := d.ListAccounts(bg(), db.AccountFilter{}, db.Page{First: 1}); return err }},
			{"count accounts", func() error { _, err := d.CountAccounts(bg(), db.AccountFilter{}); return err }},
			{"accounts by id", func() error { _, err := d.AccountsByID(bg(), []int64{1}); return err }},
		})
	})
}

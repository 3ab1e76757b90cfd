package db_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
)

func poolIDs(ps []*model.LicensePool) []int64 {
	return idsOf(ps, func(p *model.LicensePool) int64 { return p.ID })
}

// TestPoolByID: a pool reads back; an unknown id is not found, and the error says so.
func TestPoolByID(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := seedAll(t, d)
		p, err := d.PoolByID(ctx, s.Pool.ID)
		if err != nil {
			t.Fatal(err)
		}
		if p.AdamID != s.App.AdamID || p.AccountID != s.Account.ID || p.TotalCount != 10 {
			t.Errorf("pool read back as %+v", p)
		}
		_, err = d.PoolByID(ctx, s.Pool.ID+1000)
		checkNotFoundNamed(t, "pool by id", err)
	})
}

// TestSetAndAdjustPoolCounts: SetPoolCounts sets Orchard's counters; AdjustPoolCounts moves
// them and never takes one below zero.
func TestSetAndAdjustPoolCounts(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := seedAll(t, d)
		mustDo(t, d.SetPoolCounts(ctx, s.Pool.ID, 3, 2))
		for _, tt := range []struct {
			name                   string
			da, dr                 int64
			wantAssigned, wantRsvd int64
		}{
			{"reservation taken", 0, 1, 3, 3},
			{"confirmed", 1, -1, 4, 2},
			{"nothing", 0, 0, 4, 2},
			{"more released than held stops at zero", -10, -10, 0, 0},
			{"from zero", 2, 0, 2, 0},
		} {
			mustDo(t, d.AdjustPoolCounts(ctx, s.Pool.ID, tt.da, tt.dr))
			got := poolCountersOf(t, d, s.Pool.ID)
			if diff := cmp.Diff([2]int64{tt.wantAssigned, tt.wantRsvd}, [2]int64{got.Assigned, got.Reserved}); diff != "" {
				t.Errorf("%s: (assigned, reserved) mismatch (-want +got):\n%s", tt.name, diff)
			}
		}
		// An unknown pool: nothing to move, no error.
		mustDo(t, d.AdjustPoolCounts(ctx, s.Pool.ID+1000, 1, 1))
	})
}

// TestReserveLicense: one license at a time while assigned + reserved < total (R13), even
// for concurrent callers; an unlimited pool always has one.
func TestReserveLicense(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		acc := seedAccount(t, d)
		pool := seedPool(t, d, acc, seedApp(t, d), func(p *model.LicensePool) { p.TotalCount = 5 })
		seedPoolCounts(t, d, pool, 2, 0)
		var took atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok, err := d.ReserveLicense(ctx, pool.ID)
				if err != nil {
					errs <- err
				}
				if ok {
					took.Add(1)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if took.Load() != 3 {
			t.Errorf("8 callers reserved %d of the 3 licenses left", took.Load())
		}
		if got := poolCountersOf(t, d, pool.ID); got.Assigned != 2 || got.Reserved != 3 {
			t.Errorf("counters %+v, want assigned 2 reserved 3", got)
		}
		if ok, err := d.ReserveLicense(ctx, pool.ID); err != nil || ok {
			t.Errorf("reserve from a full pool: %v, %v", ok, err)
		}
		unlimited := seedPool(t, d, acc, seedApp(t, d), func(p *model.LicensePool) { p.TotalCount, p.Unlimited = 0, true })
		for range 3 {
			if ok, err := d.ReserveLicense(ctx, unlimited.ID); err != nil || !ok {
				t.Fatalf("reserve from an unlimited pool: %v, %v", ok, err)
			}
		}
		if ok, err := d.ReserveLicense(ctx, pool.ID+1000); err != nil || ok {
			t.Errorf("reserve from an unknown pool: %v, %v", ok, err)
		}
	})
}

// TestReserveLicenses: up to n at once, as many as are left; none left is zero, not an error.
func TestReserveLicenses(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		acc := seedAccount(t, d)
		pool := seedPool(t, d, acc, seedApp(t, d), func(p *model.LicensePool) { p.TotalCount = 10 })
		seedPoolCounts(t, d, pool, 4, 1)
		unlimited := seedPool(t, d, acc, seedApp(t, d), func(p *model.LicensePool) { p.TotalCount, p.Unlimited = 0, true })
		for _, tt := range []struct {
			name     string
			pool     int64
			n        int64
			want     int64
			reserved int64
		}{
			{"fewer than left", pool.ID, 2, 2, 3},
			{"more than left", pool.ID, 10, 3, 6},
			{"none left", pool.ID, 1, 0, 6},
			{"none asked", pool.ID, 0, 0, 6},
			{"unlimited", unlimited.ID, 500, 500, 500},
		} {
			var got int64
			err := d.Tx(ctx, func(tx *db.DB) error {
				var err error
				got, err = tx.ReserveLicenses(ctx, tt.pool, tt.n)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("%s: took %d, want %d", tt.name, got, tt.want)
			}
			if c := poolCountersOf(t, d, tt.pool); c.Reserved != tt.reserved {
				t.Errorf("%s: reserved %d, want %d", tt.name, c.Reserved, tt.reserved)
			}
		}
		_, err := d.ReserveLicenses(ctx, pool.ID+1000, 1)
		checkNotFoundNamed(t, "reserve licenses", err)
	})
}

// TestPoolsOfAppAndRefs: PoolsOfApp reads an app's pools in live accounts, by account;
// PoolRefs an account's pools of the given assets, by AssetKey.
func TestPoolsOfAppAndRefs(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		now := db.Now()
		app, otherApp := seedApp(t, d), seedApp(t, d)
		a1, a2 := seedAccount(t, d), seedAccount(t, d)
		removed := seedAccount(t, d, func(a *model.Account) { a.RemovedAt = &now })
		p2 := seedPool(t, d, a2, app)
		p1 := seedPool(t, d, a1, app)
		p1b := seedPool(t, d, a1, app, func(p *model.LicensePool) { p.PricingParam = "PLUS" })
		seedPool(t, d, removed, app)
		p1o := seedPool(t, d, a1, otherApp)
		got, err := d.PoolsOfApp(ctx, app.ID)
		if err != nil {
			t.Fatal(err)
		}
		// By account (within an account in no stated order), none of the removed account.
		var accounts []int64
		for _, p := range got {
			accounts = append(accounts, p.AccountID)
		}
		ids := poolIDs(got)
		slices.Sort(ids)
		if diff := cmp.Diff([]int64{a1.ID, a1.ID, a2.ID}, accounts); diff != "" {
			t.Errorf("accounts of the pools of app mismatch (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]int64{p2.ID, p1.ID, p1b.ID}, ids); diff != "" {
			t.Errorf("pools of app mismatch (-want +got):\n%s", diff)
		}
		none, err := d.PoolsOfApp(ctx, app.ID+otherApp.ID+1000)
		if err != nil || len(none) != 0 {
			t.Errorf("pools of an unknown app: %v, %v", none, err)
		}
		for _, tt := range []struct {
			name  string
			adams []string
			want  map[string]db.PoolRef
		}{
			{"both assets", []string{app.AdamID, otherApp.AdamID}, map[string]db.PoolRef{
				db.AssetKey(app.AdamID, "STDQ"):      {PoolID: p1.ID, AppID: app.ID},
				db.AssetKey(app.AdamID, "PLUS"):      {PoolID: p1b.ID, AppID: app.ID},
				db.AssetKey(otherApp.AdamID, "STDQ"): {PoolID: p1o.ID, AppID: otherApp.ID},
			}},
			{"unknown asset", []string{"999999999"}, map[string]db.PoolRef{}},
			{"no assets", nil, map[string]db.PoolRef{}},
		} {
			got, err := d.PoolRefs(ctx, a1.ID, tt.adams)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("pool refs, %s: mismatch (-want +got):\n%s", tt.name, diff)
			}
		}
	})
}

// TestListAndCountPools: the filters (account, app, licenses left) select the same pools for
// the page and the count; pages follow in id order; PoolsByID reads by id.
func TestListAndCountPools(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		a1, a2 := seedAccount(t, d), seedAccount(t, d)
		app1, app2 := seedApp(t, d), seedApp(t, d)
		full := seedPool(t, d, a1, app1, func(p *model.LicensePool) { p.TotalCount = 2 })
		seedPoolCounts(t, d, full, 1, 1)
		left := seedPool(t, d, a1, app2, func(p *model.LicensePool) { p.TotalCount = 2 })
		seedPoolCounts(t, d, left, 1, 0)
		unlimited := seedPool(t, d, a2, app1, func(p *model.LicensePool) { p.TotalCount, p.Unlimited = 0, true })
		seedPoolCounts(t, d, unlimited, 5, 0)
		yes, no := true, false
		for _, tt := range []struct {
			name string
			f    db.PoolFilter
			want []int64
		}{
			{"all", db.PoolFilter{}, []int64{full.ID, left.ID, unlimited.ID}},
			{"account", db.PoolFilter{AccountID: a1.ID}, []int64{full.ID, left.ID}},
			{"app", db.PoolFilter{AppID: app1.ID}, []int64{full.ID, unlimited.ID}},
			{"account and app", db.PoolFilter{AccountID: a2.ID, AppID: app2.ID}, []int64{}},
			{"no licenses left", db.PoolFilter{NoLicensesLeft: &yes}, []int64{full.ID}},
			{"licenses left (unlimited always has)", db.PoolFilter{NoLicensesLeft: &no}, []int64{left.ID, unlimited.ID}},
		} {
			got, more, err := d.ListPools(ctx, tt.f, db.Page{First: 10})
			if err != nil {
				t.Fatal(err)
			}
			n, err := d.CountPools(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, poolIDs(got)); diff != "" || more || n != len(tt.want) {
				t.Errorf("%s: more %v, count %d; pools mismatch (-want +got):\n%s", tt.name, more, n, diff)
			}
		}
		type page struct {
			IDs  []int64
			More bool
		}
		var pages []page
		for after := int64(0); ; {
			got, more, err := d.ListPools(ctx, db.PoolFilter{}, db.Page{First: 2, After: after})
			if err != nil {
				t.Fatal(err)
			}
			pages = append(pages, page{poolIDs(got), more})
			if !more {
				break
			}
			after = got[len(got)-1].ID
		}
		if diff := cmp.Diff([]page{{[]int64{full.ID, left.ID}, true}, {[]int64{unlimited.ID}, false}}, pages); diff != "" {
			t.Errorf("pages mismatch (-want +got):\n%s", diff)
		}
		desc, _, err := d.ListPools(ctx, db.PoolFilter{}, db.Page{First: 10, Desc: true})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]int64{unlimited.ID, left.ID, full.ID}, poolIDs(desc)); diff != "" {
			t.Errorf("newest first mismatch (-want +got):\n%s", diff)
		}
		byID, err := d.PoolsByID(ctx, []int64{unlimited.ID, full.ID, unlimited.ID + 1000})
		if err != nil {
			t.Fatal(err)
		}
		ids := poolIDs(byID)
		slices.Sort(ids)
		if diff := cmp.Diff([]int64{full.ID, unlimited.ID}, ids); diff != "" {
			t.Errorf("pools by id mismatch (-want +got):\n%s", diff)
		}
		if none, err := d.PoolsByID(ctx, nil); err != nil || len(none) != 0 {
			t.Errorf("pools by no ids: %v, %v", none, err)
		}
	})
}

// TestPoolsByParent: one page of pools per account or app, and their counts per parent; an
// unknown parent column is refused.
func TestPoolsByParent(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		a1, a2, empty := seedAccount(t, d), seedAccount(t, d), seedAccount(t, d)
		app1, app2, app3 := seedApp(t, d), seedApp(t, d), seedApp(t, d)
		p11, p12, p13 := seedPool(t, d, a1, app1), seedPool(t, d, a1, app2), seedPool(t, d, a1, app3)
		p21 := seedPool(t, d, a2, app1)
		pages := []db.ChildPage{{ParentID: a1.ID}, {ParentID: a2.ID}, {ParentID: empty.ID}, {ParentID: a1.ID, After: p11.ID}}
		got, err := d.PoolsByParent(ctx, db.PoolsOfAccount, 2, pages[:3])
		if err != nil {
			t.Fatal(err)
		}
		ids := map[int64][]int64{}
		for parent, ps := range got {
			ids[parent] = poolIDs(ps)
		}
		// first+1 rows per parent: the extra one tells the caller that another page follows.
		want := map[int64][]int64{a1.ID: {p11.ID, p12.ID, p13.ID}, a2.ID: {p21.ID}}
		if diff := cmp.Diff(want, ids); diff != "" {
			t.Errorf("pools by account mismatch (-want +got):\n%s", diff)
		}
		after, err := d.PoolsByParent(ctx, db.PoolsOfAccount, 5, pages[3:])
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]int64{p12.ID, p13.ID}, poolIDs(after[a1.ID])); diff != "" {
			t.Errorf("second page mismatch (-want +got):\n%s", diff)
		}
		byApp, err := d.PoolsByParent(ctx, db.PoolsOfApp, 5, []db.ChildPage{{ParentID: app1.ID}})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]int64{p11.ID, p21.ID}, poolIDs(byApp[app1.ID])); diff != "" {
			t.Errorf("pools by app mismatch (-want +got):\n%s", diff)
		}
		counts, err := d.CountPoolsByParent(ctx, db.PoolsOfAccount, []int64{a1.ID, a2.ID, empty.ID})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(map[int64]int{a1.ID: 3, a2.ID: 1}, counts); diff != "" {
			t.Errorf("counts mismatch (-want +got):\n%s", diff)
		}
		if _, err := d.PoolsByParent(ctx, db.PoolParent("owner_id; DROP TABLE x"), 1, pages); err == nil {
			t.Error("an unknown parent column was accepted")
		}
		if _, err := d.CountPoolsByParent(ctx, db.PoolParent("nope"), []int64{1}); err == nil {
			t.Error("an unknown parent column was accepted for a count")
		}
	})
}

// TestRecountPools: Orchard's counters are recomputed from the assignments (held at Apple:
// assigned; on their way: reserved; ended: neither), for the account's pools only; it
// reports how many pools changed, and a second recount changes none.
func TestRecountPools(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		acc, other := seedAccount(t, d), seedAccount(t, d)
		pool := seedPool(t, d, acc, seedApp(t, d))
		empty := seedPool(t, d, acc, seedApp(t, d))
		right := seedPool(t, d, acc, seedApp(t, d))
		theirs := seedPool(t, d, other, seedApp(t, d))
		asked := func(a *model.LicenseAssignment) { a.ReclaimReason = refOf("asked back") }
		for _, st := range []model.AssignmentStatus{model.AssignmentAssigned, model.AssignmentAssigned, model.AssignmentReclaiming,
			model.AssignmentPending, model.AssignmentFailed, model.AssignmentReclaimed, model.AssignmentRemovedAtApple} {
			var opts []func(*model.LicenseAssignment)
			if st == model.AssignmentReclaiming {
				opts = append(opts, asked)
			}
			seedDeviceAssignment(t, d, pool, seedDevice(t, d), st, opts...)
		}
		seedDeviceAssignment(t, d, right, seedDevice(t, d), model.AssignmentAssigned)
		seedPoolCounts(t, d, pool, 9, 9)
		seedPoolCounts(t, d, empty, 2, 1)
		seedPoolCounts(t, d, right, 1, 0)
		seedPoolCounts(t, d, theirs, 7, 7)
		n, err := d.RecountPools(ctx, acc.ID)
		if err != nil {
			t.Fatal(err)
		}
		if n != 2 {
			t.Errorf("recount changed %d pools, want 2", n)
		}
		got := map[string][2]int64{}
		for name, p := range map[string]*model.LicensePool{"pool": pool, "empty": empty, "right": right, "theirs": theirs} {
			c := poolCountersOf(t, d, p.ID)
			got[name] = [2]int64{c.Assigned, c.Reserved}
		}
		want := map[string][2]int64{"pool": {3, 1}, "empty": {0, 0}, "right": {1, 0}, "theirs": {7, 7}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(assigned, reserved) mismatch (-want +got):\n%s", diff)
		}
		if n, err := d.RecountPools(ctx, acc.ID); err != nil || n != 0 {
			t.Errorf("second recount: %d, %v; want 0", n, err)
		}
	})
}

// TestRecountPoolsOf: a recount of some pools (an incremental pass's) recomputes those of
// the account and leaves the others, and another account's pools, as they are; no pools is
// nothing to do.
func TestRecountPoolsOf(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		acc, other := seedAccount(t, d), seedAccount(t, d)
		asked := seedPool(t, d, acc, seedApp(t, d))
		left := seedPool(t, d, acc, seedApp(t, d))
		theirs := seedPool(t, d, other, seedApp(t, d))
		for _, p := range []*model.LicensePool{asked, left, theirs} {
			seedDeviceAssignment(t, d, p, seedDevice(t, d), model.AssignmentAssigned)
			seedDeviceAssignment(t, d, p, seedDevice(t, d), model.AssignmentPending)
			seedPoolCounts(t, d, p, 5, 5)
		}
		if n, err := d.RecountPoolsOf(ctx, acc.ID, nil); err != nil || n != 0 {
			t.Errorf("recount of no pools: %d, %v; want 0, nil", n, err)
		}
		n, err := d.RecountPoolsOf(ctx, acc.ID, []int64{asked.ID, theirs.ID})
		if err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("recount changed %d pools, want 1", n)
		}
		got := map[string][2]int64{}
		for name, p := range map[string]*model.LicensePool{"asked": asked, "left": left, "theirs": theirs} {
			c := poolCountersOf(t, d, p.ID)
			got[name] = [2]int64{c.Assigned, c.Reserved}
		}
		want := map[string][2]int64{"asked": {1, 1}, "left": {5, 5}, "theirs": {5, 5}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(assigned, reserved) mismatch (-want +got):\n%s", diff)
		}
	})
}

// TestPoolErrorsNameTheOperation: each function's error says which store operation failed.
func TestPoolErrorsNameTheOperation(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		s := seedAll(t, d)
		id := s.Pool.ID
		checkErrorsNameOps(t, []namedOp{
			{"set pool counts", func(ctx context.Context) error { return d.SetPoolCounts(ctx, id, 1, 1) }},
			{"pools by parent", func(ctx context.Context) error {
				_, err := d.PoolsByParent(ctx, db.PoolsOfAccount, 1, []db.ChildPage{{ParentID: 1}})
				return err
			}},
			{"count pools by parent", func(ctx context.Context) error {
				_, err := d.CountPoolsByParent(ctx, db.PoolsOfApp, []int64{1})
				return err
			}},
			{"pool by id", func(ctx context.Context) error { _, err := d.PoolByID(ctx, id); return err }},
			{"pools of app", func(ctx context.Context) error { _, err := d.PoolsOfApp(ctx, 1); return err }},
			{"reserve license", func(ctx context.Context) error { _, err := d.ReserveLicense(ctx, id); return err }},
			{"adjust pool counts", func(ctx context.Context) error { return d.AdjustPoolCounts(ctx, id, 1, 1) }},
			{"reserve licenses", func(ctx context.Context) error { _, err := d.ReserveLicenses(ctx, id, 1); return err }},
			{"pool refs", func(ctx context.Context) error { _, err := d.PoolRefs(ctx, 1, []string{"1"}); return err }},
			{"list pools", func(ctx context.Context) error {
				_, _, err := d.ListPools(ctx, db.PoolFilter{}, db.Page{First: 1})
				return err
			}},
			{"count pools", func(ctx context.Context) error { _, err := d.CountPools(ctx, db.PoolFilter{}); return err }},
			{"pools by id", func(ctx context.Context) error { _, err := d.PoolsByID(ctx, []int64{id}); return err }},
			{"recount pools of account 1", func(ctx context.Context) error { _, err := d.RecountPools(ctx, 1); return err }},
		})
	})
}

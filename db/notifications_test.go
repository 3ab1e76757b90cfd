package db_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
)

// TestClaimNotification: a notification applies once. The first delivery claims it; a
// duplicate of an applied one is declined; one of a notification being applied is told to
// come back (ErrNotificationInProgress), unless the claim is so old that its process must have
// died; a forgotten one (its application failed) can be claimed again.
func TestClaimNotification(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		acc := seedAccount(t, d)
		old := db.Now().Add(-time.Minute)
		mustDo(t, d.InsertRows(ctx, &model.AppleNotification{NotificationID: "abandoned", AccountID: acc.ID, Type: "ASSET_COUNT", ReceivedAt: old}))
		claim := func(id string) (bool, error) { return d.ClaimNotification(ctx, id, acc.ID, "ASSET_COUNT") }
		type result struct {
			Claimed    bool
			InProgress bool
		}
		steps := []struct {
			name string
			do   func() (bool, error)
			want result
		}{
			{"first delivery", func() (bool, error) { return claim("n1") }, result{Claimed: true}},
			{"duplicate while applied", func() (bool, error) { return claim("n1") }, result{InProgress: true}},
			{"applied", func() (bool, error) { return false, d.MarkNotificationApplied(ctx, "n1") }, result{}},
			{"duplicate after", func() (bool, error) { return claim("n1") }, result{}},
			{"abandoned claim taken over", func() (bool, error) { return claim("abandoned") }, result{Claimed: true}},
			{"and now in progress", func() (bool, error) { return claim("abandoned") }, result{InProgress: true}},
			{"forgotten", func() (bool, error) { return false, d.ForgetNotification(ctx, "abandoned") }, result{}},
			{"claimed again", func() (bool, error) { return claim("abandoned") }, result{Claimed: true}},
		}
		for _, s := range steps {
			ok, err := s.do()
			inProgress := errors.Is(err, db.ErrNotificationInProgress)
			if err != nil && !inProgress {
				t.Fatalf("%s: %v", s.name, err)
			}
			if inProgress && err.Error() != "claim notification: "+db.ErrNotificationInProgress.Error() {
				t.Errorf("%s: error %q does not name the operation", s.name, err)
			}
			if diff := cmp.Diff(s.want, result{ok, inProgress}); diff != "" {
				t.Errorf("%s: mismatch (-want +got):\n%s", s.name, diff)
			}
		}
	})
}

// TestPruneNotifications: ids received before the cut are forgotten (a later duplicate would
// apply again; Apple does not retry for that long), recent ones kept.
func TestPruneNotifications(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		acc := seedAccount(t, d)
		now := db.Now()
		applied := now.Add(-time.Minute)
		for id, at := range map[string]time.Time{"old": now.Add(-48 * time.Hour), "recent": now.Add(-time.Hour)} {
			mustDo(t, d.InsertRows(ctx, &model.AppleNotification{NotificationID: id, AccountID: acc.ID, Type: "T", ReceivedAt: at, AppliedAt: &applied}))
		}
		mustDo(t, d.PruneNotifications(ctx, now.Add(-24*time.Hour)))
		got := map[string]bool{}
		for _, id := range []string{"old", "recent"} {
			ok, err := d.ClaimNotification(ctx, id, acc.ID, "T")
			if err != nil {
				t.Fatal(err)
			}
			got[id] = ok
		}
		if diff := cmp.Diff(map[string]bool{"old": true, "recent": false}, got); diff != "" {
			t.Errorf("claimable after prune mismatch (-want +got):\n%s", diff)
		}
	})
}

// TestAdjustPoolTotal: an ASSET_COUNT notification moves Apple's total and available counts
// by its delta, never below zero, and counts licenses taken away as retired; it changes
// nothing (applied=false) for an unknown or unlimited pool, or while a pass of the account
// runs.
func TestAdjustPoolTotal(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		acc, busy := seedAccount(t, d), seedAccount(t, d)
		app := seedApp(t, d)
		pool := seedPool(t, d, acc, app, func(p *model.LicensePool) { p.TotalCount, p.AppleAvailableCount = 10, 6 })
		seedPool(t, d, acc, app, func(p *model.LicensePool) { p.PricingParam, p.Unlimited = "PLUS", true })
		busyPool := seedPool(t, d, busy, app, func(p *model.LicensePool) { p.TotalCount, p.AppleAvailableCount = 10, 10 })
		startedRun(t, d, busy)
		for _, tt := range []struct {
			name        string
			account     int64
			pricing     string
			delta       int64
			wantApplied bool
			pool        int64
			want        [3]int64 // total, Apple available, retired
		}{
			{"bought", acc.ID, "STDQ", 5, true, pool.ID, [3]int64{15, 11, 0}},
			{"refunded", acc.ID, "STDQ", -3, true, pool.ID, [3]int64{12, 8, 3}},
			{"more taken than available stops at zero", acc.ID, "STDQ", -9, true, pool.ID, [3]int64{3, 0, 12}},
			{"unknown pool", acc.ID, "NOPE", 5, false, pool.ID, [3]int64{3, 0, 12}},
			{"unlimited pool", acc.ID, "PLUS", 5, false, pool.ID, [3]int64{3, 0, 12}},
			{"a pass is running", busy.ID, "STDQ", 5, false, busyPool.ID, [3]int64{10, 10, 0}},
		} {
			applied, err := d.AdjustPoolTotal(ctx, tt.account, app.AdamID, tt.pricing, tt.delta)
			if err != nil {
				t.Fatal(err)
			}
			c := poolCountersOf(t, d, tt.pool)
			if diff := cmp.Diff(tt.want, [3]int64{c.Total, c.AppleAvailable, c.Retired}); diff != "" || applied != tt.wantApplied {
				t.Errorf("%s: applied %v (want %v); (total, available, retired) mismatch (-want +got):\n%s", tt.name, applied, tt.wantApplied, diff)
			}
		}
	})
}

// atAppleFixture is an account with a pool, a PENDING and an ASSIGNED and a RECLAIMING
// assignment, and a device Orchard knows without a license.
type atAppleFixture struct {
	acc                           *model.Account
	pool                          *model.LicensePool
	pending, assigned, reclaiming *model.LicenseAssignment
	device                        *model.Device
	refs                          map[string]db.PoolRef
}

func newAtAppleFixture(t *testing.T, d *db.DB) *atAppleFixture {
	t.Helper()
	f := &atAppleFixture{acc: seedAccount(t, d)}
	app := seedApp(t, d)
	f.pool = seedPool(t, d, f.acc, app, func(p *model.LicensePool) { p.AppleAssignedCount, p.AppleAvailableCount = 2, 8 })
	f.pending = seedDeviceAssignment(t, d, f.pool, seedDevice(t, d), model.AssignmentPending)
	f.assigned = seedDeviceAssignment(t, d, f.pool, seedDevice(t, d), model.AssignmentAssigned)
	f.reclaiming = seedDeviceAssignment(t, d, f.pool, seedDevice(t, d), model.AssignmentReclaiming,
		func(a *model.LicenseAssignment) { a.ReclaimReason = refOf("asked back") })
	seedPoolCounts(t, d, f.pool, 2, 1)
	f.device = seedDevice(t, d)
	f.refs = map[string]db.PoolRef{db.AssetKey(app.AdamID, "STDQ"): {PoolID: f.pool.ID, AppID: app.ID}}
	return f
}

func (f *atAppleFixture) row(serial string) db.AppleAssignmentRow {
	return db.AppleAssignmentRow{AdamID: f.pool.AdamID, PricingParam: "STDQ", SerialNumber: serial}
}

// TestFoundAtApple: Apple's word that licenses exist there confirms the PENDING one and
// creates the unknown one; Apple's counts move by the licenses not held before, once (the same
// notification again moves nothing); Orchard's counters are recounted. While a pass runs the
// assignments still apply but Apple's counts are left to the pass (doubt).
func TestFoundAtApple(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := newAtAppleFixture(t, d)
		rows := []db.AppleAssignmentRow{f.row(*f.pending.SerialNumber), f.row(*f.assigned.SerialNumber), f.row(f.device.SerialNumber),
			{AdamID: "424242", PricingParam: "STDQ", SerialNumber: "X"}}
		type result struct {
			Counts  db.SyncCounts
			Skipped int
			Doubt   bool
			Pool    poolCounters
		}
		call := func() result {
			t.Helper()
			counts, skipped, doubt, err := d.FoundAtApple(ctx, f.acc.ID, rows, f.refs)
			if err != nil {
				t.Fatal(err)
			}
			return result{counts, skipped, doubt, poolCountersOf(t, d, f.pool.ID)}
		}
		want := result{Counts: db.SyncCounts{Added: 1, Changed: 1}, Skipped: 1,
			Pool: poolCounters{Assigned: 4, Reserved: 0, AppleAssigned: 4, AppleAvailable: 6, Total: 10}}
		if diff := cmp.Diff(want, call()); diff != "" {
			t.Errorf("first notification mismatch (-want +got):\n%s", diff)
		}
		want.Counts = db.SyncCounts{}
		if diff := cmp.Diff(want, call()); diff != "" {
			t.Errorf("the same notification again mismatch (-want +got):\n%s", diff)
		}
		if a := assignmentNow(t, d, f.pending.ID); a.Status != model.AssignmentAssigned {
			t.Errorf("pending assignment is %s", a.Status)
		}

		// While a pass runs: the new license is recorded, Apple's counts are not moved.
		startedRun(t, d, f.acc)
		other := seedDevice(t, d)
		rows = []db.AppleAssignmentRow{f.row(other.SerialNumber)}
		want = result{Counts: db.SyncCounts{Added: 1}, Doubt: true,
			Pool: poolCounters{Assigned: 5, Reserved: 0, AppleAssigned: 4, AppleAvailable: 6, Total: 10}}
		if diff := cmp.Diff(want, call()); diff != "" {
			t.Errorf("during a pass mismatch (-want +got):\n%s", diff)
		}
	})
}

// TestNotificationRecountsItsPools: a notification recounts the pools it names, not the
// account's others (their counters stay as they are until a pass recounts them): its cost
// follows the notification, not the size of the account.
func TestNotificationRecountsItsPools(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := newAtAppleFixture(t, d)
		elsewhere := seedPool(t, d, f.acc, seedApp(t, d))
		seedDeviceAssignment(t, d, elsewhere, seedDevice(t, d), model.AssignmentAssigned)
		seedPoolCounts(t, d, elsewhere, 7, 7)
		if _, _, _, err := d.FoundAtApple(ctx, f.acc.ID, []db.AppleAssignmentRow{f.row(f.device.SerialNumber)}, f.refs); err != nil {
			t.Fatal(err)
		}
		if _, _, err := d.GoneAtApple(ctx, f.acc.ID, []db.AppleAssignmentRow{f.row(f.device.SerialNumber)}, f.refs); err != nil {
			t.Fatal(err)
		}
		if c := poolCountersOf(t, d, elsewhere.ID); c.Assigned != 7 || c.Reserved != 7 {
			t.Errorf("the other pool's counters became (%d, %d), want (7, 7) until a pass", c.Assigned, c.Reserved)
		}
		// The pool named was recounted: 2 assigned (the fixture's and the reclaiming one), 1 pending.
		if c := poolCountersOf(t, d, f.pool.ID); c.Assigned != 2 || c.Reserved != 1 {
			t.Errorf("the named pool's counters are (%d, %d), want (2, 1)", c.Assigned, c.Reserved)
		}
	})
}

// TestGoneAtApple: Apple's word that licenses are gone there makes the ASSIGNED one drift
// (REMOVED_AT_APPLE) and the RECLAIMING one RECLAIMED, and moves Apple's counts by them, once;
// licenses Orchard does not hold there (PENDING), and unknown assets, are left. While a pass
// runs, Apple's counts are left to it (doubt).
func TestGoneAtApple(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := newAtAppleFixture(t, d)
		rows := []db.AppleAssignmentRow{f.row(*f.assigned.SerialNumber), f.row(*f.reclaiming.SerialNumber), f.row(*f.pending.SerialNumber),
			f.row(f.device.SerialNumber), {AdamID: "424242", PricingParam: "STDQ", SerialNumber: "X"}}
		type result struct {
			N        int
			Doubt    bool
			Pool     poolCounters
			Statuses []model.AssignmentStatus
		}
		call := func(rows []db.AppleAssignmentRow) result {
			t.Helper()
			n, doubt, err := d.GoneAtApple(ctx, f.acc.ID, rows, f.refs)
			if err != nil {
				t.Fatal(err)
			}
			r := result{N: n, Doubt: doubt, Pool: poolCountersOf(t, d, f.pool.ID)}
			for _, a := range []*model.LicenseAssignment{f.assigned, f.reclaiming, f.pending} {
				r.Statuses = append(r.Statuses, assignmentNow(t, d, a.ID).Status)
			}
			return r
		}
		statuses := []model.AssignmentStatus{model.AssignmentRemovedAtApple, model.AssignmentReclaimed, model.AssignmentPending}
		want := result{N: 2, Statuses: statuses, Pool: poolCounters{Assigned: 0, Reserved: 1, AppleAssigned: 0, AppleAvailable: 10, Total: 10}}
		if diff := cmp.Diff(want, call(rows)); diff != "" {
			t.Errorf("first notification mismatch (-want +got):\n%s", diff)
		}
		want.N = 0
		if diff := cmp.Diff(want, call(rows)); diff != "" {
			t.Errorf("the same notification again mismatch (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(want, call(nil)); diff != "" {
			t.Errorf("no rows mismatch (-want +got):\n%s", diff)
		}

		// While a pass runs.
		held := seedDeviceAssignment(t, d, f.pool, seedDevice(t, d), model.AssignmentAssigned)
		mustDo(t, d.AdjustPoolCounts(ctx, f.pool.ID, 1, 0))
		startedRun(t, d, f.acc)
		n, doubt, err := d.GoneAtApple(ctx, f.acc.ID, []db.AppleAssignmentRow{f.row(*held.SerialNumber)}, f.refs)
		if err != nil {
			t.Fatal(err)
		}
		c := poolCountersOf(t, d, f.pool.ID)
		if n != 1 || !doubt || c.AppleAssigned != 0 || c.AppleAvailable != 10 || c.Assigned != 0 {
			t.Errorf("during a pass: n %d, doubt %v, counters %+v", n, doubt, c)
		}
	})
}

// TestNotificationErrorsNameTheOperation: each function's error says which store operation
// failed.
func TestNotificationErrorsNameTheOperation(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		f := newAtAppleFixture(t, d)
		rows := []db.AppleAssignmentRow{f.row(*f.assigned.SerialNumber)}
		checkErrorsNameOps(t, []namedOp{
			{"claim notification", func(ctx context.Context) error { _, err := d.ClaimNotification(ctx, "n", f.acc.ID, "T"); return err }},
			{"mark notification applied", func(ctx context.Context) error { return d.MarkNotificationApplied(ctx, "n") }},
			{"prune notifications", func(ctx context.Context) error { return d.PruneNotifications(ctx, db.Now()) }},
			{"adjust pool total", func(ctx context.Context) error {
				_, err := d.AdjustPoolTotal(ctx, f.acc.ID, f.pool.AdamID, "STDQ", 1)
				return err
			}},
			{"found at Apple", func(ctx context.Context) error {
				_, _, _, err := d.FoundAtApple(ctx, f.acc.ID, rows, f.refs)
				return err
			}},
			{"gone at Apple", func(ctx context.Context) error { _, _, err := d.GoneAtApple(ctx, f.acc.ID, rows, f.refs); return err }},
			{"forget notification", func(ctx context.Context) error { return d.ForgetNotification(ctx, "n") }},
		})
	})
}

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

// startedRun stores a RUNNING full pass of the account.
func startedRun(t *testing.T, d *db.DB, acc *model.Account) *model.SyncRun {
	t.Helper()
	r := &model.SyncRun{AccountID: acc.ID, Kind: model.SyncFull, Trigger: model.TriggerSchedule, Status: model.SyncRunRunning, StartedAt: db.Now()}
	mustDo(t, d.InsertSyncRun(context.Background(), r))
	return r
}

// TestAssetKeyAndSyncCounts: the key of an asset within an account; counts add up.
func TestAssetKeyAndSyncCounts(t *testing.T) {
	if got := db.AssetKey("123", "STDQ"); got != "123/STDQ" {
		t.Errorf("AssetKey = %q", got)
	}
	c := db.SyncCounts{Added: 1, Changed: 2, Removed: 3}
	c.Add(db.SyncCounts{Added: 10, Changed: 20, Removed: 30})
	if diff := cmp.Diff(db.SyncCounts{Added: 11, Changed: 22, Removed: 33}, c); diff != "" {
		t.Errorf("Add mismatch (-want +got):\n%s", diff)
	}
}

// TestUpsertAssets: a page creates the apps and pools it does not know (books as books),
// updates the pools whose counts changed (and brings back one Apple had stopped listing),
// leaves the others, and marks every pool seen by the pass; a second page of the same assets
// changes nothing.
func TestUpsertAssets(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		acc := seedAccount(t, d)
		run := startedRun(t, d, acc)
		known := seedApp(t, d)
		now := db.Now()
		same := seedPool(t, d, acc, known, func(p *model.LicensePool) { p.TotalCount, p.AppleAvailableCount = 10, 10 })
		gone := seedPool(t, d, acc, known, func(p *model.LicensePool) {
			p.PricingParam, p.TotalCount, p.AppleAvailableCount, p.GoneAtAppleAt = "PLUS", 10, 10, &now
		})
		rows := []db.AssetRow{
			{AdamID: known.AdamID, PricingParam: "STDQ", ProductType: "App", Total: 10, Available: 10, DeviceAssignable: true, Revocable: true},
			{AdamID: known.AdamID, PricingParam: "PLUS", ProductType: "App", Total: 10, Available: 10, DeviceAssignable: true, Revocable: true},
			{AdamID: "9000001", PricingParam: "STDQ", ProductType: "App", Total: 5, Assigned: 2, Available: 3, Platforms: "IOS,MACOS"},
			{AdamID: "9000002", PricingParam: "STDQ", ProductType: "Book", Total: 0, Unlimited: true},
		}
		refs, counts, err := d.UpsertAssets(ctx, acc.ID, run.ID, rows)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(db.SyncCounts{Added: 2, Changed: 1}, counts); diff != "" {
			t.Errorf("counts mismatch (-want +got):\n%s", diff)
		}
		app1, err := d.AppByAdamID(ctx, "9000001")
		if err != nil {
			t.Fatal(err)
		}
		book, err := d.AppByAdamID(ctx, "9000002")
		if err != nil {
			t.Fatal(err)
		}
		if app1.Kind != model.AppKindApp || app1.Platforms != "IOS,MACOS" || book.Kind != model.AppKindBook {
			t.Errorf("new apps: %+v, %+v", app1, book)
		}
		if len(refs) != 4 {
			t.Fatalf("refs: %v", refs)
		}
		for key, want := range map[string]db.PoolRef{
			db.AssetKey(known.AdamID, "STDQ"): {PoolID: same.ID, AppID: known.ID},
			db.AssetKey(known.AdamID, "PLUS"): {PoolID: gone.ID, AppID: known.ID},
		} {
			if refs[key] != want {
				t.Errorf("ref of %s = %+v, want %+v", key, refs[key], want)
			}
		}
		type pool struct {
			AppID                             int64
			Total, AppleAssigned, AppleAvail  int64
			Unlimited, Gone, SeenByRun, AtAll bool
		}
		read := func(key string) pool {
			p, err := d.PoolByID(ctx, refs[key].PoolID)
			if err != nil {
				t.Fatal(err)
			}
			return pool{p.AppID, p.TotalCount, p.AppleAssignedCount, p.AppleAvailableCount, p.Unlimited, p.GoneAtAppleAt != nil,
				p.SeenRunID != nil && *p.SeenRunID == run.ID, p.LastSeenAt != nil}
		}
		want := map[string]pool{
			db.AssetKey(known.AdamID, "STDQ"): {known.ID, 10, 0, 10, false, false, true, true},
			db.AssetKey(known.AdamID, "PLUS"): {known.ID, 10, 0, 10, false, false, true, true},
			db.AssetKey("9000001", "STDQ"):    {app1.ID, 5, 2, 3, false, false, true, true},
			db.AssetKey("9000002", "STDQ"):    {book.ID, 0, 0, 0, true, false, true, true},
		}
		got := map[string]pool{}
		for key := range want {
			got[key] = read(key)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("pools mismatch (-want +got):\n%s", diff)
		}

		// The same page again (another pass, incremental): nothing added or changed, no app twice.
		refs2, counts, err := d.UpsertAssets(ctx, acc.ID, 0, rows)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(db.SyncCounts{}, counts); diff != "" {
			t.Errorf("second page counts mismatch (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(refs, refs2); diff != "" {
			t.Errorf("second page refs mismatch (-want +got):\n%s", diff)
		}
		// A count that moved is written.
		rows[2].Assigned, rows[2].Available = 3, 2
		if _, counts, err = d.UpsertAssets(ctx, acc.ID, 0, rows[2:3]); err != nil || counts != (db.SyncCounts{Changed: 1}) {
			t.Errorf("changed count: %+v, %v", counts, err)
		}
		if p := read(db.AssetKey("9000001", "STDQ")); p.AppleAssigned != 3 || p.AppleAvail != 2 {
			t.Errorf("Apple's counts not updated: %+v", p)
		}
		empty, counts, err := d.UpsertAssets(ctx, acc.ID, run.ID, nil)
		if err != nil || len(empty) != 0 || counts != (db.SyncCounts{}) {
			t.Errorf("empty page: %v, %+v, %v", empty, counts, err)
		}
	})
}

// TestMarkGonePools: after a full pass, the account's pools the pass did not see are marked
// gone at Apple, once; a pass no longer RUNNING (declared dead) marks nothing.
func TestMarkGonePools(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		acc, other := seedAccount(t, d), seedAccount(t, d)
		run := startedRun(t, d, acc)
		app := seedApp(t, d)
		seen := seedPool(t, d, acc, app, func(p *model.LicensePool) { p.SeenRunID = &run.ID })
		unseen := seedPool(t, d, acc, app, func(p *model.LicensePool) { p.PricingParam = "PLUS" })
		theirs := seedPool(t, d, other, app)
		n, err := d.MarkGonePools(ctx, acc.ID, run.ID)
		if err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("marked %d pools, want 1", n)
		}
		for _, tt := range []struct {
			name string
			id   int64
			gone bool
		}{{"seen", seen.ID, false}, {"unseen", unseen.ID, true}, {"other account's", theirs.ID, false}} {
			p, err := d.PoolByID(ctx, tt.id)
			if err != nil {
				t.Fatal(err)
			}
			if (p.GoneAtAppleAt != nil) != tt.gone {
				t.Errorf("%s pool: gone %v, want %v", tt.name, p.GoneAtAppleAt != nil, tt.gone)
			}
		}
		if n, err := d.MarkGonePools(ctx, acc.ID, run.ID); err != nil || n != 0 {
			t.Errorf("second sweep: %d, %v; want 0", n, err)
		}
		dead := startedRun(t, d, other)
		if _, err := d.FailStaleRuns(ctx, other.ID, "dead"); err != nil {
			t.Fatal(err)
		}
		if n, err := d.MarkGonePools(ctx, other.ID, dead.ID); err != nil || n != 0 {
			t.Errorf("a dead pass marked %d pools, %v", n, err)
		}
	})
}

// TestApplyAssignments: a page of Apple's assignments creates those Orchard did not know
// (FOUND_AT_APPLE, linked to the device or user it knows), confirms the PENDING ones Apple
// holds (their pool's counters move), leaves the ASSIGNED ones, skips rows of unknown assets
// or without a holder, and marks what a full pass saw; the same page again changes nothing.
func TestApplyAssignments(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		acc := seedAccount(t, d)
		run := startedRun(t, d, acc)
		app := seedApp(t, d)
		pool := seedPool(t, d, acc, app)
		pending := seedDeviceAssignment(t, d, pool, seedDevice(t, d), model.AssignmentPending)
		assigned := seedDeviceAssignment(t, d, pool, seedDevice(t, d), model.AssignmentAssigned)
		seedPoolCounts(t, d, pool, 1, 1)
		knownDevice := seedDevice(t, d)
		knownUser := seedUser(t, d)
		refs, err := d.PoolRefs(ctx, acc.ID, []string{app.AdamID})
		if err != nil {
			t.Fatal(err)
		}
		rows := []db.AppleAssignmentRow{
			{AdamID: app.AdamID, PricingParam: "STDQ", SerialNumber: *pending.SerialNumber},
			{AdamID: app.AdamID, PricingParam: "STDQ", SerialNumber: *assigned.SerialNumber},
			{AdamID: app.AdamID, PricingParam: "STDQ", SerialNumber: knownDevice.SerialNumber},
			{AdamID: app.AdamID, PricingParam: "STDQ", SerialNumber: knownDevice.SerialNumber}, // a duplicate row
			{AdamID: app.AdamID, PricingParam: "STDQ", SerialNumber: "UNKNOWN-SERIAL"},
			{AdamID: app.AdamID, PricingParam: "STDQ", ClientUserID: knownUser.ClientUserID},
			{AdamID: "77777777", PricingParam: "STDQ", SerialNumber: "X"}, // an asset not in the page's pools
			{AdamID: app.AdamID, PricingParam: "STDQ"},                    // no holder
		}
		counts, skipped, err := d.ApplyAssignments(ctx, acc.ID, run.ID, rows, refs)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(db.SyncCounts{Added: 3, Changed: 1}, counts); diff != "" || skipped != 2 {
			t.Errorf("skipped %d (want 2); counts mismatch (-want +got):\n%s", skipped, diff)
		}
		all, err := d.ActiveAssignmentsIn(ctx, acc.ID, app.ID, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		type row struct {
			Holder      string
			Status      model.AssignmentStatus
			Origin      model.AssignmentOrigin
			Device      bool
			User        bool
			SeenByRun   bool
			HasAssigned bool
		}
		got := map[string]row{}
		for _, a := range all {
			got[*a.HolderKey] = row{*a.HolderKey, a.Status, a.Origin, a.DeviceID != nil, a.UserID != nil,
				a.SeenRunID != nil && *a.SeenRunID == run.ID, a.AssignedAt != nil}
		}
		dk := func(serial string) string { return model.HolderKeyFor(model.LicenseKindDevice, serial, "") }
		uk := model.HolderKeyFor(model.LicenseKindUser, "", knownUser.ClientUserID)
		want := map[string]row{
			dk(*pending.SerialNumber):    {dk(*pending.SerialNumber), model.AssignmentAssigned, model.OriginAdmin, true, false, true, true},
			dk(*assigned.SerialNumber):   {dk(*assigned.SerialNumber), model.AssignmentAssigned, model.OriginAdmin, true, false, true, false},
			dk(knownDevice.SerialNumber): {dk(knownDevice.SerialNumber), model.AssignmentAssigned, model.OriginFoundAtApple, true, false, true, true},
			dk("UNKNOWN-SERIAL"):         {dk("UNKNOWN-SERIAL"), model.AssignmentAssigned, model.OriginFoundAtApple, false, false, true, true},
			uk:                           {uk, model.AssignmentAssigned, model.OriginFoundAtApple, false, true, true, true},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("assignments mismatch (-want +got):\n%s", diff)
		}
		// The confirmation moved the counters by the table; found ones are counted by the
		// pass's recount, not here.
		if c := poolCountersOf(t, d, pool.ID); c.Assigned != 2 || c.Reserved != 0 {
			t.Errorf("counters assigned %d reserved %d, want 2 and 0", c.Assigned, c.Reserved)
		}
		counts, skipped, err = d.ApplyAssignments(ctx, acc.ID, run.ID, rows, refs)
		if err != nil {
			t.Fatal(err)
		}
		if counts != (db.SyncCounts{}) || skipped != 2 {
			t.Errorf("the same page again: %+v, skipped %d", counts, skipped)
		}
		if counts, skipped, err := d.ApplyAssignments(ctx, acc.ID, run.ID, nil, refs); err != nil || counts != (db.SyncCounts{}) || skipped != 0 {
			t.Errorf("an empty page: %+v, %d, %v", counts, skipped, err)
		}
	})
}

// TestSweepAssignments: after a full pass, the licenses Orchard believed held at Apple that
// the pass did not see are gone: ASSIGNED ones become drift (REMOVED_AT_APPLE), RECLAIMING ones
// RECLAIMED; those the pass saw, those confirmed after it started and those not held are left;
// a pass no longer RUNNING sweeps nothing.
func TestSweepAssignments(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		acc := seedAccount(t, d)
		run := startedRun(t, d, acc)
		pool := seedPool(t, d, acc, seedApp(t, d))
		start := db.Now()
		before, after := start.Add(-time.Hour), start.Add(time.Minute)
		mk := func(st model.AssignmentStatus, opts ...func(*model.LicenseAssignment)) *model.LicenseAssignment {
			return seedDeviceAssignment(t, d, pool, seedDevice(t, d), st, append([]func(*model.LicenseAssignment){
				func(a *model.LicenseAssignment) { a.AssignedAt = &before }}, opts...)...)
		}
		seen := mk(model.AssignmentAssigned, func(a *model.LicenseAssignment) { a.SeenRunID = &run.ID })
		drift := mk(model.AssignmentAssigned)
		reclaiming := mk(model.AssignmentReclaiming, func(a *model.LicenseAssignment) { a.ReclaimReason = refOf("asked back") })
		late := mk(model.AssignmentAssigned, func(a *model.LicenseAssignment) { a.AssignedAt = &after })
		pending := mk(model.AssignmentPending, func(a *model.LicenseAssignment) { a.AssignedAt = nil })
		seedPoolCounts(t, d, pool, 4, 1)
		n, err := d.SweepAssignments(ctx, acc.ID, run.ID, start)
		if err != nil {
			t.Fatal(err)
		}
		if n != 2 {
			t.Errorf("swept %d, want 2", n)
		}
		var got []model.AssignmentStatus
		for _, a := range []*model.LicenseAssignment{seen, drift, reclaiming, late, pending} {
			got = append(got, assignmentNow(t, d, a.ID).Status)
		}
		want := []model.AssignmentStatus{model.AssignmentAssigned, model.AssignmentRemovedAtApple, model.AssignmentReclaimed,
			model.AssignmentAssigned, model.AssignmentPending}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("statuses mismatch (-want +got):\n%s", diff)
		}
		if a := assignmentNow(t, d, drift.ID); a.RemovedAtAppleAt == nil || a.HolderKey != nil {
			t.Errorf("drift: removed at %v, holder key %v", a.RemovedAtAppleAt, a.HolderKey)
		}
		if c := poolCountersOf(t, d, pool.ID); c.Assigned != 2 || c.Reserved != 1 {
			t.Errorf("counters assigned %d reserved %d, want 2 and 1", c.Assigned, c.Reserved)
		}
		if n, err := d.SweepAssignments(ctx, acc.ID, run.ID, start); err != nil || n != 0 {
			t.Errorf("second sweep: %d, %v", n, err)
		}
		// A pass declared dead sweeps nothing.
		other := mk(model.AssignmentAssigned)
		if _, err := d.FailStaleRuns(ctx, acc.ID, "dead"); err != nil {
			t.Fatal(err)
		}
		if n, err := d.SweepAssignments(ctx, acc.ID, run.ID, start); err != nil || n != 0 {
			t.Errorf("a dead pass swept %d, %v", n, err)
		}
		if st := assignmentNow(t, d, other.ID).Status; st != model.AssignmentAssigned {
			t.Errorf("a dead pass moved an assignment to %s", st)
		}
	})
}

// TestSweepAssignmentsInChunks: a sweep of more unseen assignments than one of its
// transactions takes (1,000) finds every one, in either state it sweeps, and leaves those the
// pass saw, wherever they fall among them.
func TestSweepAssignmentsInChunks(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		acc := seedAccount(t, d)
		run := startedRun(t, d, acc)
		pool := seedPool(t, d, acc, seedApp(t, d), func(p *model.LicensePool) { p.TotalCount = 5000 })
		pools := map[string]db.PoolRef{db.AssetKey(pool.AdamID, pool.PricingParam): {PoolID: pool.ID, AppID: pool.AppID}}
		const n = 2600
		rows := make([]db.AppleAssignmentRow, n)
		for i := range rows {
			rows[i] = db.AppleAssignmentRow{AdamID: pool.AdamID, PricingParam: pool.PricingParam, SerialNumber: fmt.Sprintf("SWEEP%04d", i)}
		}
		if _, _, err := d.ApplyAssignments(ctx, acc.ID, 0, rows, pools); err != nil { // found, not seen by run
			t.Fatal(err)
		}
		// Every third one seen by the run, some reclaiming (they end RECLAIMED).
		if _, err := d.SQL().Exec("UPDATE license_assignments SET seen_run_id = ? WHERE pool_id = ? AND MOD(id, 3) = 0", run.ID, pool.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := d.SQL().Exec("UPDATE license_assignments SET status = ?, reclaim_reason = 'asked back' WHERE pool_id = ? AND MOD(id, 3) = 1 AND MOD(id, 7) = 0", model.AssignmentReclaiming, pool.ID); err != nil {
			t.Fatal(err)
		}
		count := func(where string, args ...any) int {
			t.Helper()
			var c int
			if err := d.SQL().QueryRow("SELECT COUNT(*) FROM license_assignments WHERE pool_id = ? AND "+where, append([]any{pool.ID}, args...)...).Scan(&c); err != nil {
				t.Fatal(err)
			}
			return c
		}
		seen, reclaiming := count("seen_run_id = ?", run.ID), count("status = ?", model.AssignmentReclaiming)
		got, err := d.SweepAssignments(ctx, acc.ID, run.ID, db.Now().Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if got != n-seen {
			t.Errorf("swept %d, want %d (%d of %d seen)", got, n-seen, seen, n)
		}
		if c := count("status = ?", model.AssignmentAssigned); c != seen {
			t.Errorf("%d assigned after the sweep, want the %d seen", c, seen)
		}
		if c := count("status = ?", model.AssignmentReclaimed); c != reclaiming || reclaiming == 0 {
			t.Errorf("%d reclaimed after the sweep, want the %d reclaiming (more than none)", c, reclaiming)
		}
		if c := count("status = ?", model.AssignmentRemovedAtApple); c != n-seen-reclaiming {
			t.Errorf("%d removed at Apple after the sweep, want %d", c, n-seen-reclaiming)
		}
	})
}

// TestSyncErrorsNameTheOperation: each function's error says which store operation failed.
func TestSyncErrorsNameTheOperation(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		s := seedAll(t, d)
		refs := map[string]db.PoolRef{db.AssetKey(s.App.AdamID, "STDQ"): {PoolID: s.Pool.ID, AppID: s.App.ID}}
		rows := []db.AppleAssignmentRow{{AdamID: s.App.AdamID, PricingParam: "STDQ", SerialNumber: "S"}}
		checkErrorsNameOps(t, []namedOp{
			{"upsert assets", func(ctx context.Context) error {
				_, _, err := d.UpsertAssets(ctx, s.Account.ID, 0, []db.AssetRow{{AdamID: "1", PricingParam: "STDQ"}})
				return err
			}},
			{"mark gone pools", func(ctx context.Context) error { _, err := d.MarkGonePools(ctx, s.Account.ID, 1); return err }},
			{"apply assignments", func(ctx context.Context) error {
				_, _, err := d.ApplyAssignments(ctx, s.Account.ID, 0, rows, refs)
				return err
			}},
			{"sweep assignments", func(ctx context.Context) error {
				_, err := d.SweepAssignments(ctx, s.Account.ID, 1, db.Now())
				return err
			}},
		})
	})
}

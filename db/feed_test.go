package db_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
)

// TestAssignmentChanges reads the assignments changed after a cursor, oldest change first
// and by id within one instant (so that a subscriber resumes exactly after the last row it
// saw), filtered by account and app and bounded by the limit.
func TestAssignmentChanges(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		s := seedAll(t, d)
		otherApp := seedApp(t, d)
		otherPool := seedPool(t, d, s.Account, otherApp)
		t0 := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
		at := func(tm time.Time) func(*model.LicenseAssignment) {
			return func(a *model.LicenseAssignment) { a.CreatedAt, a.UpdatedAt = tm, tm }
		}
		// Inserted out of time order: the feed orders by updated_at, then id.
		late := seedDeviceAssignment(t, d, s.Pool, seedDevice(t, d), model.AssignmentPending, at(t0.Add(2*time.Second)))
		same1 := seedDeviceAssignment(t, d, s.Pool, seedDevice(t, d), model.AssignmentPending, at(t0.Add(time.Second)))
		same2 := seedDeviceAssignment(t, d, otherPool, seedDevice(t, d), model.AssignmentPending, at(t0.Add(time.Second)))
		early := seedDeviceAssignment(t, d, s.Pool, seedDevice(t, d), model.AssignmentFailed, at(t0))
		tests := []struct {
			name    string
			c       db.FeedCursor
			account int64
			app     int64
			limit   int
			want    []int64
		}{
			{"from the start", db.FeedCursor{At: t0.Add(-time.Second)}, s.Account.ID, 0, 10, []int64{early.ID, same1.ID, same2.ID, late.ID}},
			{"after a row within an instant", db.FeedCursor{At: t0.Add(time.Second), ID: same1.ID}, s.Account.ID, 0, 10, []int64{same2.ID, late.ID}},
			{"limit", db.FeedCursor{At: t0.Add(-time.Second)}, s.Account.ID, 0, 2, []int64{early.ID, same1.ID}},
			{"app", db.FeedCursor{At: t0.Add(-time.Second)}, 0, otherApp.ID, 10, []int64{same2.ID}},
			{"cursor in another zone", db.FeedCursor{At: t0.Add(time.Second).In(time.FixedZone("X", -5*3600)), ID: same2.ID}, s.Account.ID, 0, 10, []int64{late.ID}},
			{"other account", db.FeedCursor{At: t0.Add(-time.Second)}, s.Account.ID + 1000, 0, 10, []int64{}},
		}
		for _, tc := range tests {
			got, err := d.AssignmentChanges(bg(), tc.c, tc.account, tc.app, tc.limit)
			mustDo(t, err)
			if diff := cmp.Diff(tc.want, idsOf(got, assignmentID)); diff != "" {
				t.Errorf("%s: mismatch (-want +got):\n%s", tc.name, diff)
			}
		}
	})
}

// TestSyncRunChanges reads the runs of an account that started or finished after a time, in
// id order.
func TestSyncRunChanges(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		a, b := seedAccount(t, d), seedAccount(t, d)
		t0 := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
		run := func(acct *model.Account, started time.Time, finished *time.Time) *model.SyncRun {
			r := &model.SyncRun{AccountID: acct.ID, Kind: model.SyncFull, Trigger: model.TriggerManual, Status: model.SyncRunRunning,
				StartedAt: started, FinishedAt: finished}
			mustDo(t, d.InsertSyncRun(bg(), r))
			return r
		}
		fin := t0.Add(time.Hour)
		oldFinishedLate := run(a, t0.Add(-time.Hour), &fin)
		oldDone := run(a, t0.Add(-time.Hour), &t0)
		started := run(a, t0.Add(time.Minute), nil)
		otherAccount := run(b, t0.Add(time.Minute), nil)
		tests := []struct {
			name    string
			account int64
			want    []int64
		}{
			{"account", a.ID, []int64{oldFinishedLate.ID, started.ID}},
			{"every account", 0, []int64{oldFinishedLate.ID, started.ID, otherAccount.ID}},
		}
		for _, tc := range tests {
			got, err := d.SyncRunChanges(bg(), t0, tc.account)
			mustDo(t, err)
			if diff := cmp.Diff(tc.want, idsOf(got, syncRunID)); diff != "" {
				t.Errorf("%s: mismatch (-want +got) (not %d, done at the cursor):\n%s", tc.name, oldDone.ID, diff)
			}
		}
	})
}

// TestFeedErrorsNameTheOperation: see TestAccountErrorsNameTheOperation.
func TestFeedErrorsNameTheOperation(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		d = closedStore(t, d)
		checkOpErrors(t, []opErr{
			{"assignment changes", func() error { _, err := d.AssignmentChanges(bg(), db.FeedCursor{}, 1, 1, 1); return err }},
			{"sync run changes", func() error { _, err := d.SyncRunChanges(bg(), db.Now(), 1); return err }},
		})
	})
}

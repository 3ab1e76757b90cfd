package db_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
)

func runIDs(rs []*model.SyncRun) []int64 {
	return idsOf(rs, func(r *model.SyncRun) int64 { return r.ID })
}

func queuedRun(account *model.Account, kind model.SyncKind) *model.SyncRun {
	return &model.SyncRun{AccountID: account.ID, Kind: kind, Trigger: model.TriggerManual, Status: model.SyncRunQueued, StartedAt: db.Now()}
}

// runState is what the lifecycle test compares of a run.
type runState struct {
	Status   model.SyncRunStatus
	Kind     model.SyncKind
	Pages    int
	Added    int
	Finished bool
	Error    *string
}

func runStateOf(t *testing.T, d *db.DB, id int64) runState {
	t.Helper()
	r, err := d.SyncRunByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return runState{r.Status, r.Kind, r.Pages, r.Added, r.FinishedAt != nil, r.Error}
}

// TestSyncRunLifecycle: a queued pass is found, made full, started under the account's lease,
// reports progress, and finishes once with the account's columns; after that its progress and
// a second finish write nothing.
func TestSyncRunLifecycle(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		acc, idle := seedAccount(t, d), seedAccount(t, d)
		first, second := queuedRun(acc, model.SyncIncremental), queuedRun(acc, model.SyncIncremental)
		mustDo(t, d.InsertSyncRun(ctx, first))
		mustDo(t, d.InsertSyncRun(ctx, second))

		q, err := d.QueuedSyncRun(ctx, acc.ID)
		if err != nil {
			t.Fatal(err)
		}
		if q.ID != first.ID {
			t.Errorf("queued run %d, want the oldest %d", q.ID, first.ID)
		}
		_, err = d.QueuedSyncRun(ctx, idle.ID)
		checkNotFoundNamed(t, "queued sync run", err)
		accounts, err := d.AccountsWithQueuedRuns(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]int64{acc.ID}, accounts); diff != "" {
			t.Errorf("accounts with queued runs mismatch (-want +got):\n%s", diff)
		}

		if ok, err := d.MakeQueuedRunFull(ctx, first.ID); err != nil || !ok {
			t.Fatalf("make queued run full: %v, %v", ok, err)
		}
		lease := fmt.Sprintf("sync:%d", acc.ID)
		if ok, err := d.StartSyncRun(ctx, q, lease, "replica-a", nil); err != nil || ok {
			t.Fatalf("started without the lease: %v, %v", ok, err)
		}
		if st := runStateOf(t, d, first.ID); st.Status != model.SyncRunQueued {
			t.Fatalf("a refused start changed the run: %+v", st)
		}
		if ok, err := d.AcquireLease(ctx, lease, "replica-a", time.Minute); err != nil || !ok {
			t.Fatalf("lease: %v, %v", ok, err)
		}
		if ok, err := d.StartSyncRun(ctx, q, lease, "replica-b", nil); err != nil || ok {
			t.Fatalf("started under another replica's lease: %v, %v", ok, err)
		}
		q.Kind = model.SyncFull
		if ok, err := d.StartSyncRun(ctx, q, lease, "replica-a", nil); err != nil || !ok {
			t.Fatalf("start: %v, %v", ok, err)
		}
		if ok, err := d.MakeQueuedRunFull(ctx, first.ID); err != nil || ok {
			t.Errorf("a running pass was still queued: %v, %v", ok, err)
		}
		if ok, err := d.StartSyncRun(ctx, &model.SyncRun{ID: first.ID, AccountID: acc.ID, Kind: model.SyncFull}, lease, "replica-a", nil); err != nil || ok {
			t.Errorf("a running pass started again: %v, %v", ok, err)
		}
		q.Pages, q.Added = 2, 5
		mustDo(t, d.SyncRunProgress(ctx, q))
		if diff := cmp.Diff(runState{Status: model.SyncRunRunning, Kind: model.SyncFull, Pages: 2, Added: 5}, runStateOf(t, d, first.ID)); diff != "" {
			t.Errorf("running mismatch (-want +got):\n%s", diff)
		}

		now := db.Now()
		q.Status, q.FinishedAt, q.Pages, q.Added = model.SyncRunSucceeded, &now, 3, 6
		ok, err := d.FinishSyncRun(ctx, q, map[string]any{"sync_status": model.SyncStatusOK, "last_synced_at": now})
		if err != nil || !ok {
			t.Fatalf("finish: %v, %v", ok, err)
		}
		a, err := d.AccountByID(ctx, acc.ID)
		if err != nil {
			t.Fatal(err)
		}
		if a.SyncStatus != model.SyncStatusOK || a.LastSyncedAt == nil || !a.LastSyncedAt.Equal(now) {
			t.Errorf("account after the pass: status %s, last synced %v", a.SyncStatus, a.LastSyncedAt)
		}
		q.Pages = 99
		mustDo(t, d.SyncRunProgress(ctx, q))
		q.Status = model.SyncRunFailed
		if ok, err := d.FinishSyncRun(ctx, q, map[string]any{"sync_status": model.SyncStatusFailed}); err != nil || ok {
			t.Errorf("finished twice: %v, %v", ok, err)
		}
		want := runState{Status: model.SyncRunSucceeded, Kind: model.SyncFull, Pages: 3, Added: 6, Finished: true}
		if diff := cmp.Diff(want, runStateOf(t, d, first.ID)); diff != "" {
			t.Errorf("finished mismatch (-want +got):\n%s", diff)
		}
		if a, _ := d.AccountByID(ctx, acc.ID); a.SyncStatus != model.SyncStatusOK {
			t.Errorf("a refused finish wrote the account: %s", a.SyncStatus)
		}

		// A new run (no queued one) starts directly as RUNNING.
		fresh := &model.SyncRun{AccountID: acc.ID, Kind: model.SyncIncremental, Trigger: model.TriggerSchedule}
		if ok, err := d.StartSyncRun(ctx, fresh, lease, "replica-a", nil); err != nil || !ok || fresh.ID == 0 {
			t.Fatalf("start a new run: %v, %v, id %d", ok, err, fresh.ID)
		}
		if st := runStateOf(t, d, fresh.ID); st.Status != model.SyncRunRunning {
			t.Errorf("new run: %+v", st)
		}
		_, err = d.SyncRunByID(ctx, fresh.ID+1000)
		checkNotFoundNamed(t, "sync run by id", err)
	})
}

// TestFailStaleRuns: the account's RUNNING passes fail with the message and are returned;
// the dead pass can no longer finish (its replica lost the account).
func TestFailStaleRuns(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		acc, other := seedAccount(t, d), seedAccount(t, d)
		running := func(a *model.Account) *model.SyncRun {
			r := &model.SyncRun{AccountID: a.ID, Kind: model.SyncFull, Trigger: model.TriggerSchedule, Status: model.SyncRunRunning, StartedAt: db.Now()}
			mustDo(t, d.InsertSyncRun(ctx, r))
			return r
		}
		dead, theirs := running(acc), running(other)
		queued := queuedRun(acc, model.SyncFull)
		mustDo(t, d.InsertSyncRun(ctx, queued))
		stale, err := d.FailStaleRuns(ctx, acc.ID, "the replica running it stopped")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]int64{dead.ID}, runIDs(stale)); diff != "" {
			t.Errorf("stale runs mismatch (-want +got):\n%s", diff)
		}
		msg := "the replica running it stopped"
		for _, tt := range []struct {
			name string
			id   int64
			want runState
		}{
			{"dead", dead.ID, runState{Status: model.SyncRunFailed, Kind: model.SyncFull, Finished: true, Error: &msg}},
			{"other account's", theirs.ID, runState{Status: model.SyncRunRunning, Kind: model.SyncFull}},
			{"queued", queued.ID, runState{Status: model.SyncRunQueued, Kind: model.SyncFull}},
		} {
			if diff := cmp.Diff(tt.want, runStateOf(t, d, tt.id)); diff != "" {
				t.Errorf("%s run mismatch (-want +got):\n%s", tt.name, diff)
			}
		}
		now := db.Now()
		dead.Status, dead.FinishedAt = model.SyncRunSucceeded, &now
		if ok, err := d.FinishSyncRun(ctx, dead, nil); err != nil || ok {
			t.Errorf("a failed pass finished: %v, %v", ok, err)
		}
		if again, err := d.FailStaleRuns(ctx, acc.ID, "again"); err != nil || len(again) != 0 {
			t.Errorf("second call: %v, %v", runIDs(again), err)
		}
	})
}

// TestListSyncRuns: the filters select the same runs for the page and the count; per account,
// newest first; by id.
func TestListSyncRuns(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		a1, a2, empty := seedAccount(t, d), seedAccount(t, d), seedAccount(t, d)
		var runs []*model.SyncRun
		for _, r := range []struct {
			acc *model.Account
			st  model.SyncRunStatus
		}{{a1, model.SyncRunSucceeded}, {a2, model.SyncRunFailed}, {a1, model.SyncRunFailed}, {a1, model.SyncRunQueued}} {
			run := &model.SyncRun{AccountID: r.acc.ID, Kind: model.SyncFull, Trigger: model.TriggerSchedule, Status: r.st, StartedAt: db.Now()}
			mustDo(t, d.InsertSyncRun(ctx, run))
			runs = append(runs, run)
		}
		for _, tt := range []struct {
			name string
			f    db.SyncRunFilter
			p    db.Page
			want []int64
			more bool
		}{
			{"all, newest first", db.SyncRunFilter{}, db.Page{First: 10, Desc: true}, []int64{runs[3].ID, runs[2].ID, runs[1].ID, runs[0].ID}, false},
			{"account", db.SyncRunFilter{AccountID: a1.ID}, db.Page{First: 10}, []int64{runs[0].ID, runs[2].ID, runs[3].ID}, false},
			{"status", db.SyncRunFilter{Status: model.SyncRunFailed}, db.Page{First: 10}, []int64{runs[1].ID, runs[2].ID}, false},
			{"account and status", db.SyncRunFilter{AccountID: a2.ID, Status: model.SyncRunQueued}, db.Page{First: 10}, []int64{}, false},
			{"a page", db.SyncRunFilter{AccountID: a1.ID}, db.Page{First: 1, After: runs[0].ID}, []int64{runs[2].ID}, true},
		} {
			got, more, err := d.ListSyncRuns(ctx, tt.f, tt.p)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, runIDs(got)); diff != "" || more != tt.more {
				t.Errorf("%s: more %v; mismatch (-want +got):\n%s", tt.name, more, diff)
			}
			if tt.p.After == 0 {
				if n, err := d.CountSyncRuns(ctx, tt.f); err != nil || n != len(tt.want) {
					t.Errorf("%s: count %d, %v; want %d", tt.name, n, err, len(tt.want))
				}
			}
		}
		byAccount, err := d.SyncRunsByAccount(ctx, 5, []db.ChildPage{{ParentID: a1.ID}, {ParentID: a2.ID}, {ParentID: empty.ID}})
		if err != nil {
			t.Fatal(err)
		}
		got := map[int64][]int64{}
		for k, v := range byAccount {
			got[k] = runIDs(v)
		}
		if diff := cmp.Diff(map[int64][]int64{a1.ID: {runs[3].ID, runs[2].ID, runs[0].ID}, a2.ID: {runs[1].ID}}, got); diff != "" {
			t.Errorf("runs by account mismatch (-want +got):\n%s", diff)
		}
		counts, err := d.CountSyncRunsByAccount(ctx, []int64{a1.ID, a2.ID, empty.ID})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(map[int64]int{a1.ID: 3, a2.ID: 1}, counts); diff != "" {
			t.Errorf("counts by account mismatch (-want +got):\n%s", diff)
		}
		byID, err := d.SyncRunsByID(ctx, []int64{runs[2].ID, runs[0].ID})
		if err != nil {
			t.Fatal(err)
		}
		ids := runIDs(byID)
		slices.Sort(ids)
		if diff := cmp.Diff([]int64{runs[0].ID, runs[2].ID}, ids); diff != "" {
			t.Errorf("runs by id mismatch (-want +got):\n%s", diff)
		}
	})
}

// TestSyncRunErrorsNameTheOperation: each function's error says which store operation failed.
func TestSyncRunErrorsNameTheOperation(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		acc := seedAccount(t, d)
		run := queuedRun(acc, model.SyncFull)
		mustDo(t, d.InsertSyncRun(context.Background(), run))
		checkErrorsNameOps(t, []namedOp{
			{"insert sync run", func(ctx context.Context) error { return d.InsertSyncRun(ctx, queuedRun(acc, model.SyncFull)) }},
			{"queued sync run", func(ctx context.Context) error { _, err := d.QueuedSyncRun(ctx, acc.ID); return err }},
			{"accounts with queued runs", func(ctx context.Context) error { _, err := d.AccountsWithQueuedRuns(ctx); return err }},
			{"sync run by id", func(ctx context.Context) error { _, err := d.SyncRunByID(ctx, run.ID); return err }},
			{"fail stale runs", func(ctx context.Context) error { _, err := d.FailStaleRuns(ctx, acc.ID, "x"); return err }},
			{"finish sync run", func(ctx context.Context) error { _, err := d.FinishSyncRun(ctx, run, nil); return err }},
			{"sync run progress", func(ctx context.Context) error { return d.SyncRunProgress(ctx, run) }},
			{"start sync run", func(ctx context.Context) error { _, err := d.StartSyncRun(ctx, run, "l", "h", nil); return err }},
			{"make queued run full", func(ctx context.Context) error { _, err := d.MakeQueuedRunFull(ctx, run.ID); return err }},
			{"sync runs by account", func(ctx context.Context) error {
				_, err := d.SyncRunsByAccount(ctx, 1, []db.ChildPage{{ParentID: acc.ID}})
				return err
			}},
			{"count sync runs by account", func(ctx context.Context) error { _, err := d.CountSyncRunsByAccount(ctx, []int64{acc.ID}); return err }},
			{"list sync runs", func(ctx context.Context) error {
				_, _, err := d.ListSyncRuns(ctx, db.SyncRunFilter{}, db.Page{First: 1})
				return err
			}},
			{"count sync runs", func(ctx context.Context) error { _, err := d.CountSyncRuns(ctx, db.SyncRunFilter{}); return err }},
			{"sync runs by id", func(ctx context.Context) error { _, err := d.SyncRunsByID(ctx, []int64{run.ID}); return err }},
		})
	})
}

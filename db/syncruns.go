package db

import (
	"context"
	"fmt"

	"gorm.io/gorm"

	"orchard/model"
)

// InsertSyncRun records a pass (queued or starting).
func (d *DB) InsertSyncRun(ctx context.Context, r *model.SyncRun) error {
	return wrap("insert sync run", d.with(ctx).Create(r).Error)
}

// QueuedSyncRun returns the oldest queued pass of an account, if any.
func (d *DB) QueuedSyncRun(ctx context.Context, accountID int64) (*model.SyncRun, error) {
	var r model.SyncRun
	err := d.with(ctx).Where("account_id = ? AND status = ?", accountID, model.SyncRunQueued).Order("id").Take(&r).Error
	if err != nil {
		return nil, wrap("queued sync run", notFound(err))
	}
	return &r, nil
}

// OpenSyncRuns returns an account's passes that are queued or running, oldest first (no
// lock: the scheduler reads them under the account's lease, and declares the running ones
// dead with FailStaleRuns).
func (d *DB) OpenSyncRuns(ctx context.Context, accountID int64) ([]*model.SyncRun, error) {
	var out []*model.SyncRun
	err := d.with(ctx).Where("account_id = ? AND status IN ?", accountID, []model.SyncRunStatus{model.SyncRunQueued, model.SyncRunRunning}).
		Order("id").Find(&out).Error
	return out, wrap("open sync runs", err)
}

// AccountsWithQueuedRuns lists the accounts that have a queued pass.
func (d *DB) AccountsWithQueuedRuns(ctx context.Context) ([]int64, error) {
	var ids []int64
	err := d.with(ctx).Model(&model.SyncRun{}).Where("status = ?", model.SyncRunQueued).Distinct("account_id").Pluck("account_id", &ids).Error
	return ids, wrap("accounts with queued runs", err)
}

// SyncRunByID reads one pass.
func (d *DB) SyncRunByID(ctx context.Context, id int64) (*model.SyncRun, error) {
	var r model.SyncRun
	if err := d.with(ctx).Where("id = ?", id).Take(&r).Error; err != nil {
		return nil, wrap("sync run by id", notFound(err))
	}
	return &r, nil
}

// FailStaleRuns marks as failed the passes of an account left RUNNING by a replica that died
// (or lost the account's lease), and returns them.
func (d *DB) FailStaleRuns(ctx context.Context, accountID int64, msg string) ([]*model.SyncRun, error) {
	var stale []*model.SyncRun
	err := d.Tx(ctx, func(tx *DB) error {
		if err := tx.forUpdate(tx.with(ctx)).Where("account_id = ? AND status = ?", accountID, model.SyncRunRunning).Find(&stale).Error; err != nil {
			return fmt.Errorf("lock running runs: %w", err)
		}
		if len(stale) == 0 {
			return nil
		}
		ids := make([]int64, len(stale))
		for i, r := range stale {
			ids[i] = r.ID
		}
		return wrap("mark failed", tx.with(ctx).Model(&model.SyncRun{}).Where("id IN ? AND status = ?", ids, model.SyncRunRunning).
			Updates(map[string]any{"status": model.SyncRunFailed, "finished_at": Now(), "error": msg}).Error)
	})
	return stale, wrap("fail stale runs", err)
}

// FinishSyncRun records a pass's outcome and the account's columns that follow from it, in one
// transaction, if the pass is still RUNNING. It reports false when it is not: another replica
// took the account's lease and declared the pass dead (FailStaleRuns), and the account is now
// that replica's to record; nothing is written then.
func (d *DB) FinishSyncRun(ctx context.Context, r *model.SyncRun, accountCols map[string]any) (bool, error) {
	ok := false
	err := d.Tx(ctx, func(tx *DB) error {
		res := tx.with(ctx).Model(&model.SyncRun{}).Where("id = ? AND status = ?", r.ID, model.SyncRunRunning).Updates(map[string]any{
			"kind": r.Kind, "status": r.Status, "finished_at": r.FinishedAt, "pages": r.Pages, "items_seen": r.ItemsSeen,
			"added": r.Added, "changed": r.Changed, "removed": r.Removed, "error": r.Error,
		})
		if res.Error != nil || res.RowsAffected == 0 {
			return wrap("update run", res.Error)
		}
		ok = true
		if len(accountCols) == 0 {
			return nil
		}
		return wrap("update account", tx.UpdateAccount(ctx, r.AccountID, accountCols))
	})
	return ok && err == nil, wrap("finish sync run", err)
}

// SyncRunProgress writes a running pass's counts so far (not once it is no longer RUNNING).
func (d *DB) SyncRunProgress(ctx context.Context, r *model.SyncRun) error {
	return wrap("sync run progress", d.with(ctx).Model(&model.SyncRun{}).Where("id = ? AND status = ?", r.ID, model.SyncRunRunning).Updates(map[string]any{
		"kind": r.Kind, "pages": r.Pages, "items_seen": r.ItemsSeen, "added": r.Added, "changed": r.Changed, "removed": r.Removed,
	}).Error)
}

// StartSyncRun records a pass as RUNNING — a new run, or the queued one r names — if holder
// still holds the named lease, checked and written in one transaction (the lease row locked):
// a replica whose lease ran out meanwhile does not start a pass that another replica may be
// running. The account's accountCols (its sync status) are written in the same transaction.
// It reports whether it started it.
func (d *DB) StartSyncRun(ctx context.Context, r *model.SyncRun, lease, holder string, accountCols map[string]any) (bool, error) {
	ok := false
	err := d.Tx(ctx, func(tx *DB) error {
		now, nowArgs := tx.dbNow()
		q := "SELECT holder FROM leases WHERE name = ? AND holder = ? AND expires_at > " + now
		if tx.dialect == MySQL {
			q += " FOR UPDATE"
		}
		var holders []string
		if err := tx.with(ctx).Raw(q, append([]any{lease, holder}, nowArgs...)...).Scan(&holders).Error; err != nil {
			return fmt.Errorf("check lease: %w", err)
		}
		if len(holders) == 0 {
			return nil
		}
		r.Status, r.StartedAt = model.SyncRunRunning, Now()
		if r.ID == 0 {
			if err := tx.InsertSyncRun(ctx, r); err != nil {
				return err // named by InsertSyncRun
			}
		} else {
			res := tx.with(ctx).Model(&model.SyncRun{}).Where("id = ? AND status = ?", r.ID, model.SyncRunQueued).
				Updates(map[string]any{"kind": r.Kind, "status": r.Status, "started_at": r.StartedAt})
			if res.Error != nil || res.RowsAffected == 0 {
				return wrap("start queued run", res.Error)
			}
		}
		if len(accountCols) > 0 {
			if err := tx.UpdateAccount(ctx, r.AccountID, accountCols); err != nil {
				return fmt.Errorf("update account: %w", err)
			}
		}
		ok = true
		return nil
	})
	return ok && err == nil, wrap("start sync run", err)
}

// MakeQueuedRunFull turns a queued pass into a full one, if it is still queued; it reports
// whether it was.
func (d *DB) MakeQueuedRunFull(ctx context.Context, id int64) (bool, error) {
	res := d.with(ctx).Model(&model.SyncRun{}).Where("id = ? AND status = ?", id, model.SyncRunQueued).Update("kind", model.SyncFull)
	return res.RowsAffected > 0, wrap("make queued run full", res.Error)
}

// SyncRunsByAccount reads one page of sync runs (newest first) per account.
func (d *DB) SyncRunsByAccount(ctx context.Context, first int, pages []ChildPage) (map[int64][]*model.SyncRun, error) {
	out, err := childrenOf[model.SyncRun](ctx, d, relRunsOfAccount, "", nil, first, pages)
	return out, wrap("sync runs by account", err)
}

// CountSyncRunsByAccount counts sync runs per account.
func (d *DB) CountSyncRunsByAccount(ctx context.Context, parents []int64) (map[int64]int, error) {
	out, err := countChildren(ctx, d, relRunsOfAccount, "", nil, parents)
	return out, wrap("count sync runs by account", err)
}

// SyncRunFilter selects sync runs.
type SyncRunFilter struct {
	AccountID int64
	Status    model.SyncRunStatus
}

func (d *DB) syncRunQuery(f SyncRunFilter) *gorm.DB {
	q := d.gorm.Model(&model.SyncRun{})
	if f.AccountID != 0 {
		q = q.Where("account_id = ?", f.AccountID)
	}
	if f.Status != "" {
		q = q.Where("status = ?", f.Status)
	}
	return q
}

// ListSyncRuns reads a page of sync runs (callers ask for newest first).
func (d *DB) ListSyncRuns(ctx context.Context, f SyncRunFilter, p Page) ([]*model.SyncRun, bool, error) {
	out, more, err := list[model.SyncRun](ctx, d.syncRunQuery(f), "sync_runs", p)
	return out, more, wrap("list sync runs", err)
}

// CountSyncRuns counts sync runs.
func (d *DB) CountSyncRuns(ctx context.Context, f SyncRunFilter) (int, error) {
	n, err := count(ctx, d.syncRunQuery(f), "sync_runs")
	return n, wrap("count sync runs", err)
}

// SyncRunsByID reads sync runs by id.
func (d *DB) SyncRunsByID(ctx context.Context, ids []int64) ([]*model.SyncRun, error) {
	out, err := byIDs[model.SyncRun](ctx, d, ids)
	return out, wrap("sync runs by id", err)
}

var relRunsOfAccount = Relation{Table: "sync_runs", From: "sync_runs", ParentExpr: "sync_runs.account_id", Desc: true}

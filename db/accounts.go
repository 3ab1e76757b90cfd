package db

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"orchard/model"
)

// ErrDuplicateLocation is returned when a live account already holds the Apple location.
var ErrDuplicateLocation = errors.New("an account for this Apple location already exists")

// InsertAccount stores a new account.
func (d *DB) InsertAccount(ctx context.Context, a *model.Account) error {
	err := d.with(ctx).Create(a).Error
	if isDuplicate(err) {
		return ErrDuplicateLocation
	}
	return err
}

// DeleteAccountRow removes an account that was never used (an add that Apple refused half-way).
func (d *DB) DeleteAccountRow(ctx context.Context, id int64) error {
	return d.with(ctx).Exec("DELETE FROM accounts WHERE id = ?", id).Error
}

// AccountByID reads one account.
func (d *DB) AccountByID(ctx context.Context, id int64) (*model.Account, error) {
	return findOne[model.Account](d.with(ctx).Where("id = ?", id))
}

// LockAccount reads one account and locks its row until the transaction ends (MySQL; SQLite
// transactions are exclusive already).
func (d *DB) LockAccount(ctx context.Context, id int64) (*model.Account, error) {
	var a model.Account
	if err := d.forUpdate(d.with(ctx)).Where("id = ?", id).Take(&a).Error; err != nil {
		return nil, notFound(err)
	}
	return &a, nil
}

// LiveAccountByLocation finds the live account of an Apple location.
func (d *DB) LiveAccountByLocation(ctx context.Context, uid string) (*model.Account, error) {
	var a model.Account
	if err := d.with(ctx).Where("location_key = ?", uid).Take(&a).Error; err != nil {
		return nil, notFound(err)
	}
	return &a, nil
}

// UpdateAccount sets columns of an account.
func (d *DB) UpdateAccount(ctx context.Context, id int64, cols map[string]any) error {
	for k, v := range cols {
		if t, ok := v.(time.Time); ok {
			cols[k] = utc(t)
		}
	}
	cols["updated_at"] = Now()
	err := d.with(ctx).Model(&model.Account{}).Where("id = ?", id).Updates(cols).Error
	if isDuplicate(err) {
		return ErrDuplicateLocation
	}
	return err
}

// HoldMargin is added to every hold HoldAccount records: the hold is computed on the clock of
// the process that got Apple's answer and compared, by every replica, with the database's
// clock. A request a little late is harmless; one early may be refused "for even longer
// periods" (doc/apple-api.md §9.6).
const HoldMargin = 100 * time.Millisecond

// HoldAccount records Apple's Retry-After: nothing is sent for the account before until (plus
// HoldMargin). A hold only ever grows (two answers racing cannot shorten it).
func (d *DB) HoldAccount(ctx context.Context, id int64, until time.Time, reason string) error {
	until = utc(until.Add(HoldMargin))
	return d.with(ctx).Exec(`UPDATE accounts SET
  throttled_until = CASE WHEN throttled_until IS NULL OR throttled_until < ? THEN ? ELSE throttled_until END,
  throttle_reason = ?, updated_at = ? WHERE id = ?`, until, until, truncate(reason, 250), Now(), id).Error
}

// ListLiveAccounts reads every account that is not removed (the scheduler's working set).
func (d *DB) ListLiveAccounts(ctx context.Context) ([]*model.Account, error) {
	var out []*model.Account
	err := d.with(ctx).Where("removed_at IS NULL").Order("id").Find(&out).Error
	return out, err
}

// InsertSyncRun records a pass (queued or starting).
func (d *DB) InsertSyncRun(ctx context.Context, r *model.SyncRun) error {
	return d.with(ctx).Create(r).Error
}

// QueuedSyncRun returns the oldest queued pass of an account, if any.
func (d *DB) QueuedSyncRun(ctx context.Context, accountID int64) (*model.SyncRun, error) {
	var r model.SyncRun
	err := d.with(ctx).Where("account_id = ? AND status = ?", accountID, model.SyncRunQueued).Order("id").Take(&r).Error
	if err != nil {
		return nil, notFound(err)
	}
	return &r, nil
}

// AccountsWithQueuedRuns lists the accounts that have a queued pass.
func (d *DB) AccountsWithQueuedRuns(ctx context.Context) ([]int64, error) {
	var ids []int64
	err := d.with(ctx).Model(&model.SyncRun{}).Where("status = ?", model.SyncRunQueued).Distinct("account_id").Pluck("account_id", &ids).Error
	return ids, err
}

// SyncRunByID reads one pass.
func (d *DB) SyncRunByID(ctx context.Context, id int64) (*model.SyncRun, error) {
	var r model.SyncRun
	if err := d.with(ctx).Where("id = ?", id).Take(&r).Error; err != nil {
		return nil, notFound(err)
	}
	return &r, nil
}

// FailStaleRuns marks as failed the passes of an account left RUNNING by a replica that died
// (or lost the account's lease), and returns them.
func (d *DB) FailStaleRuns(ctx context.Context, accountID int64, msg string) ([]*model.SyncRun, error) {
	var stale []*model.SyncRun
	err := d.Tx(ctx, func(tx *DB) error {
		if err := tx.forUpdate(tx.with(ctx)).Where("account_id = ? AND status = ?", accountID, model.SyncRunRunning).Find(&stale).Error; err != nil {
			return err
		}
		if len(stale) == 0 {
			return nil
		}
		ids := make([]int64, len(stale))
		for i, r := range stale {
			ids[i] = r.ID
		}
		return tx.with(ctx).Model(&model.SyncRun{}).Where("id IN ? AND status = ?", ids, model.SyncRunRunning).
			Updates(map[string]any{"status": model.SyncRunFailed, "finished_at": Now(), "error": msg}).Error
	})
	return stale, err
}

// forUpdate adds a row lock on MySQL.
func (d *DB) forUpdate(q *gorm.DB) *gorm.DB {
	if d.dialect == MySQL {
		return q.Clauses(clause.Locking{Strength: clause.LockingStrengthUpdate})
	}
	return q
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
			return res.Error
		}
		ok = true
		if len(accountCols) == 0 {
			return nil
		}
		return tx.UpdateAccount(ctx, r.AccountID, accountCols)
	})
	return ok && err == nil, err
}

// SyncRunProgress writes a running pass's counts so far (not once it is no longer RUNNING).
func (d *DB) SyncRunProgress(ctx context.Context, r *model.SyncRun) error {
	return d.with(ctx).Model(&model.SyncRun{}).Where("id = ? AND status = ?", r.ID, model.SyncRunRunning).Updates(map[string]any{
		"kind": r.Kind, "pages": r.Pages, "items_seen": r.ItemsSeen, "added": r.Added, "changed": r.Changed, "removed": r.Removed,
	}).Error
}

// StartSyncRun records a pass as RUNNING — a new run, or the queued one r names — if holder
// still holds the named lease, checked and written in one transaction (the lease row locked):
// a replica whose lease ran out meanwhile does not start a pass that another replica may be
// running. It reports whether it started it.
func (d *DB) StartSyncRun(ctx context.Context, r *model.SyncRun, lease, holder string) (bool, error) {
	ok := false
	err := d.Tx(ctx, func(tx *DB) error {
		now, nowArgs := tx.dbNow()
		q := "SELECT holder FROM leases WHERE name = ? AND holder = ? AND expires_at > " + now
		if tx.dialect == MySQL {
			q += " FOR UPDATE"
		}
		var holders []string
		if err := tx.with(ctx).Raw(q, append([]any{lease, holder}, nowArgs...)...).Scan(&holders).Error; err != nil {
			return err
		}
		if len(holders) == 0 {
			return nil
		}
		r.Status, r.StartedAt = model.SyncRunRunning, Now()
		if r.ID == 0 {
			if err := tx.InsertSyncRun(ctx, r); err != nil {
				return err
			}
		} else {
			res := tx.with(ctx).Model(&model.SyncRun{}).Where("id = ? AND status = ?", r.ID, model.SyncRunQueued).
				Updates(map[string]any{"kind": r.Kind, "status": r.Status, "started_at": r.StartedAt})
			if res.Error != nil || res.RowsAffected == 0 {
				return res.Error
			}
		}
		ok = true
		return nil
	})
	return ok && err == nil, err
}

// MakeQueuedRunFull turns a queued pass into a full one, if it is still queued; it reports
// whether it was.
func (d *DB) MakeQueuedRunFull(ctx context.Context, id int64) (bool, error) {
	res := d.with(ctx).Model(&model.SyncRun{}).Where("id = ? AND status = ?", id, model.SyncRunQueued).Update("kind", model.SyncFull)
	return res.RowsAffected > 0, res.Error
}

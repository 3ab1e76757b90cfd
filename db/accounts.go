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
	var a model.Account
	if err := d.with(ctx).Where("id = ?", id).Take(&a).Error; err != nil {
		return nil, notFound(err)
	}
	return &a, nil
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

// HoldAccount records Apple's Retry-After: nothing is sent for the account before until. A
// hold only ever grows (two answers racing cannot shorten it).
func (d *DB) HoldAccount(ctx context.Context, id int64, until time.Time, reason string) error {
	until = utc(until)
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

// UpdateSyncRun writes a pass's progress or outcome.
func (d *DB) UpdateSyncRun(ctx context.Context, r *model.SyncRun) error {
	return d.with(ctx).Model(r).Select("kind", "trigger", "status", "started_at", "finished_at", "pages", "items_seen", "added", "changed", "removed", "error").Updates(r).Error
}

// SyncRunByID reads one pass.
func (d *DB) SyncRunByID(ctx context.Context, id int64) (*model.SyncRun, error) {
	var r model.SyncRun
	if err := d.with(ctx).Where("id = ?", id).Take(&r).Error; err != nil {
		return nil, notFound(err)
	}
	return &r, nil
}

// FailStaleRuns marks as failed the passes left RUNNING by a process that died.
func (d *DB) FailStaleRuns(ctx context.Context, accountID int64, msg string) error {
	return d.with(ctx).Model(&model.SyncRun{}).Where("account_id = ? AND status = ?", accountID, model.SyncRunRunning).
		Updates(map[string]any{"status": model.SyncRunFailed, "finished_at": Now(), "error": msg}).Error
}

// forUpdate adds a row lock on MySQL.
func (d *DB) forUpdate(q *gorm.DB) *gorm.DB {
	if d.dialect == MySQL {
		return q.Clauses(clause.Locking{Strength: clause.LockingStrengthUpdate})
	}
	return q
}

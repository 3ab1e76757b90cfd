package db

import (
	"context"
	"time"

	"orchard/model"
)

// Due work of the scheduler, found without reading every account: each look reads the few
// accounts it can start now, by the index on next_sync_at, so that a look costs the same at
// ten accounts and at ten thousand (doc/scale.md).

// DueAccount is an account in the order the scheduler serves them.
type DueAccount struct {
	ID         int64
	NextSyncAt *time.Time
}

// AccountsByDueTime reads up to limit live accounts not held at now (R3), skipping the first
// offset, by due time: accounts never synced (no due time) first, then the earliest due. The
// caller starts those due (NextSyncAt nil or not after now) oldest first, so that no account
// waits behind accounts that fell due after it; the first row not due tells when the next one
// falls due.
func (d *DB) AccountsByDueTime(ctx context.Context, now time.Time, offset, limit int) ([]DueAccount, error) {
	now = utc(now)
	var out []DueAccount
	err := d.with(ctx).Model(&model.Account{}).Select("id, next_sync_at").
		Where("removed_at IS NULL AND (throttled_until IS NULL OR throttled_until <= ?)", now).
		Order("next_sync_at").Order("id").Offset(offset).Limit(limit).Scan(&out).Error
	for i := range out {
		if out[i].NextSyncAt != nil {
			t := out[i].NextSyncAt.UTC()
			out[i].NextSyncAt = &t
		}
	}
	return out, wrap("accounts by due time", err)
}

// AccountsWithQueuedPasses lists up to limit live accounts not held at now that have a queued
// pass (asked for by an admin, a notification or the account's addition), the account whose
// oldest queued pass is oldest first.
func (d *DB) AccountsWithQueuedPasses(ctx context.Context, now time.Time, limit int) ([]int64, error) {
	now = utc(now)
	var ids []int64
	err := d.with(ctx).Raw(`SELECT r.account_id FROM sync_runs r JOIN accounts a ON a.id = r.account_id
WHERE r.status = ? AND a.removed_at IS NULL AND (a.throttled_until IS NULL OR a.throttled_until <= ?)
GROUP BY r.account_id ORDER BY MIN(r.id) LIMIT ?`, model.SyncRunQueued, now, limit).Scan(&ids).Error
	return ids, wrap("accounts with queued passes", err)
}

// AccountsBeingRemoved lists the live accounts not held at now whose removal waits for the
// reclaim of their licenses (rare: the look returns ids only).
func (d *DB) AccountsBeingRemoved(ctx context.Context, now time.Time) ([]int64, error) {
	var ids []int64
	err := d.with(ctx).Model(&model.Account{}).
		Where("removal_requested_at IS NOT NULL AND removed_at IS NULL AND (throttled_until IS NULL OR throttled_until <= ?)", utc(now)).
		Order("id").Pluck("id", &ids).Error
	return ids, wrap("accounts being removed", err)
}

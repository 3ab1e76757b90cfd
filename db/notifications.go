package db

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"orchard/model"
)

// ErrNotificationInProgress is returned for a notification whose first delivery is being
// applied right now; the caller answers so that Apple retries later.
var ErrNotificationInProgress = errors.New("this notification is being applied")

// notificationRetryAfter is how long a remembered but unapplied notification is taken to be in
// progress; after it, the process that took it is presumed dead and a redelivery applies it.
const notificationRetryAfter = 5 * time.Second

// ClaimNotification records a notification id before its changes are applied. It reports false
// for a notification already applied (Apple delivers duplicates; each applies once), and
// ErrNotificationInProgress while another delivery of it is being applied.
func (d *DB) ClaimNotification(ctx context.Context, id string, accountID int64, typ string) (bool, error) {
	err := d.with(ctx).Create(&model.AppleNotification{NotificationID: id, AccountID: accountID, Type: typ, ReceivedAt: Now()}).Error
	if err == nil {
		return true, nil
	}
	if !isDuplicate(err) {
		return false, wrap("claim notification", err)
	}
	var prev model.AppleNotification
	if err := d.with(ctx).Where("notification_id = ?", id).Take(&prev).Error; err != nil {
		return false, wrap("claim notification", notFound(err))
	}
	if prev.AppliedAt != nil {
		return false, nil
	}
	// Taken but never applied: by a delivery still at work, or by a process that died.
	res := d.with(ctx).Model(&model.AppleNotification{}).Where("notification_id = ? AND applied_at IS NULL AND received_at < ?", id, Now().Add(-notificationRetryAfter)).
		UpdateColumn("received_at", Now())
	if res.Error != nil {
		return false, wrap("claim notification", res.Error)
	}
	if res.RowsAffected == 0 {
		return false, wrap("claim notification", ErrNotificationInProgress)
	}
	return true, nil
}

// MarkNotificationApplied records that a notification's changes are recorded.
func (d *DB) MarkNotificationApplied(ctx context.Context, id string) error {
	return wrap("mark notification applied", d.with(ctx).Model(&model.AppleNotification{}).Where("notification_id = ?", id).UpdateColumn("applied_at", Now()).Error)
}

// PruneNotifications forgets notification ids older than before (Apple retries for minutes,
// not days).
func (d *DB) PruneNotifications(ctx context.Context, before time.Time) error {
	return wrap("prune notifications", d.with(ctx).Where("received_at < ?", utc(before)).Delete(&model.AppleNotification{}).Error)
}

// AdjustPoolTotal applies an ASSET_COUNT notification: licenses bought, refunded or moved.
// Apple's total and available counts move by delta; licenses taken away (a refund, a move to
// another location) are counted as retired, as Apple's next listing counts them. It reports
// applied=false when it changed nothing: the account has no such pool yet (a sync will create
// it), or a pass of the account is under way (see passRunning); a pass is wanted then.
//
// A delta beyond ±maxPoolCount, or one that would take a count beyond maxPoolCount, changes
// nothing either (applied=false): the counts stay readable, and the pass wanted then reads
// Apple's.
func (d *DB) AdjustPoolTotal(ctx context.Context, accountID int64, adamID, pricingParam string, delta int64) (applied bool, err error) {
	if delta < -maxPoolCount || delta > maxPoolCount {
		return false, nil
	}
	err = d.Tx(ctx, func(tx *DB) error {
		if running, err := tx.passRunning(ctx, accountID); err != nil || running {
			return err // named by passRunning
		}
		retired := max(-delta, 0)
		res := tx.with(ctx).Exec(`UPDATE license_pools SET total_count = CASE WHEN total_count + ? < 0 THEN 0 ELSE total_count + ? END,
  apple_available_count = CASE WHEN apple_available_count + ? < 0 THEN 0 ELSE apple_available_count + ? END,
  retired_count = retired_count + ?, updated_at = ?
  WHERE account_id = ? AND adam_id = ? AND pricing_param = ? AND unlimited = ?
  AND total_count + ? <= ? AND apple_available_count + ? <= ? AND retired_count + ? <= ?`,
			delta, delta, delta, delta, retired, Now(), accountID, adamID, pricingParam, false,
			delta, maxPoolCount, delta, maxPoolCount, retired, maxPoolCount)
		applied = res.RowsAffected > 0
		if res.Error != nil || !applied || delta <= 0 {
			return wrap("update pool", res.Error)
		}
		// Licenses bought: holders waiting on a label may be served now. Queued with the
		// count, in its transaction, since the pass that follows finds the count already
		// written and so nothing changed that would queue them.
		return tx.EnqueueWaitingApps(ctx, accountID, "licenses bought (Apple's notification)")
	})
	return applied && err == nil, wrap("adjust pool total", err)
}

// maxPoolCount bounds every license count of a pool: Apple's largest (apple.MaxLicenseCount,
// the totalCount of unlimited assets), which every engine's integer columns hold and read back.
const maxPoolCount = math.MaxInt32

// passRunning reports whether a pass of the account is under way. A notification's change of
// Apple's counts (a delta) is not applied then: the pass writes Apple's counts as it lists
// them, and may already have listed the change, which would then count twice. The caller
// asks for a pass instead, whose listing settles the counts.
func (d *DB) passRunning(ctx context.Context, accountID int64) (bool, error) {
	var n int64
	err := d.with(ctx).Model(&model.SyncRun{}).Where("account_id = ? AND status = ?", accountID, model.SyncRunRunning).Count(&n).Error
	return n > 0, wrap("pass running", err)
}

// FoundAtApple applies Apple's word that assignments exist there (an associate Orchard did not
// ask for, or one whose event it does not know): ApplyAssignments creates or confirms them, and
// Apple's counts of each pool move by the licenses that were not held before, so that the pool
// shows Apple's counts without waiting for a pass — unless a pass is under way (passRunning):
// doubt is then true, and the caller asks for a pass.
func (d *DB) FoundAtApple(ctx context.Context, accountID int64, rows []AppleAssignmentRow, pools map[string]PoolRef) (counts SyncCounts, skipped int, doubt bool, err error) {
	err = d.Tx(ctx, func(tx *DB) error {
		held, err := tx.heldPairs(ctx, rows, pools)
		if err != nil {
			return err // named by heldPairs
		}
		if counts, skipped, err = tx.ApplyAssignments(ctx, accountID, 0, rows, pools); err != nil {
			return err // named by ApplyAssignments
		}
		now, err := tx.heldPairs(ctx, rows, pools)
		if err != nil {
			return err // named by heldPairs
		}
		deltas := map[int64]int64{}
		for k := range now {
			if !held[k] {
				deltas[k[0].(int64)]++
			}
		}
		doubt, err = tx.moveAppleCounts(ctx, accountID, deltas, poolsOfRows(rows, pools))
		return err // named by moveAppleCounts
	})
	if err != nil {
		return counts, skipped, doubt, fmt.Errorf("found at Apple: %w", err)
	}
	return counts, skipped, doubt, nil
}

// heldPairs returns which of the rows' (pool, holder) pairs Orchard counts as held at Apple
// (ASSIGNED or RECLAIMING).
func (d *DB) heldPairs(ctx context.Context, rows []AppleAssignmentRow, pools map[string]PoolRef) (map[[2]any]bool, error) {
	var pairs [][2]any
	for _, r := range rows {
		if ref, ok := pools[AssetKey(r.AdamID, r.PricingParam)]; ok && (r.SerialNumber != "" || r.ClientUserID != "") {
			_, key := r.holder()
			pairs = append(pairs, [2]any{ref.PoolID, key})
		}
	}
	out := map[[2]any]bool{}
	if len(pairs) == 0 {
		return out, nil
	}
	var found []activeRow
	q, args := d.pairIn("SELECT id, pool_id, holder_key, status FROM license_assignments WHERE (pool_id, holder_key) IN ", pairs)
	if err := d.with(ctx).Raw(q, args...).Scan(&found).Error; err != nil {
		return nil, fmt.Errorf("held pairs: %w", err)
	}
	for _, f := range found {
		if f.Status.HeldAtApple() {
			out[[2]any{f.PoolID, f.HolderKey}] = true
		}
	}
	return out, nil
}

// adjustAppleAssigned moves Apple's assigned count of each pool by its delta (and Apple's
// available count the other way), never below zero.
func (d *DB) adjustAppleAssigned(ctx context.Context, deltas map[int64]int64) error {
	now := Now()
	for poolID, n := range deltas {
		if n == 0 {
			continue
		}
		err := d.with(ctx).Exec(`UPDATE license_pools SET
  apple_assigned_count = CASE WHEN apple_assigned_count + ? < 0 THEN 0 ELSE apple_assigned_count + ? END,
  apple_available_count = CASE WHEN apple_available_count - ? < 0 THEN 0 ELSE apple_available_count - ? END, updated_at = ?
  WHERE id = ?`, n, n, n, n, now, poolID).Error
		if err != nil {
			return wrap("adjust apple assigned", err)
		}
	}
	return nil
}

// GoneAtApple applies Apple's word that assignments no longer exist there (a disassociate or
// revoke that Orchard did not ask for, or one it did whose event it has not matched): an
// ASSIGNED one is drift (REMOVED_AT_APPLE), a RECLAIMING one is reclaimed, and Apple's counts
// of their pools move with them — unless a pass is under way (passRunning): doubt is then
// true, and the caller asks for a pass. It returns how many rows changed.
func (d *DB) GoneAtApple(ctx context.Context, accountID int64, rows []AppleAssignmentRow, pools map[string]PoolRef) (n int, doubt bool, err error) {
	var pairs [][2]any
	for _, r := range rows {
		ref, ok := pools[AssetKey(r.AdamID, r.PricingParam)]
		if !ok {
			continue
		}
		_, key := r.holder()
		pairs = append(pairs, [2]any{ref.PoolID, key})
	}
	if len(pairs) == 0 {
		return 0, false, nil
	}
	err = d.Tx(ctx, func(tx *DB) error {
		n = 0
		var found []activeRow
		q, args := tx.pairIn("SELECT id, pool_id, holder_key, status FROM license_assignments WHERE (pool_id, holder_key) IN ", pairs)
		if err := tx.with(ctx).Raw(q, args...).Scan(&found).Error; err != nil {
			return fmt.Errorf("find assignments: %w", err)
		}
		ids := make([]int64, 0, len(found))
		for _, f := range found {
			ids = append(ids, f.ID)
		}
		res, err := tx.applyTransitions(ctx, model.EventGoneAtApple, ids, TransitionDetails{
			ReclaimReason: "removed at Apple (notification)", ReclaimedBy: "apple"})
		if err != nil {
			return fmt.Errorf("apply transitions: %w", err)
		}
		if n = len(res.applied); n == 0 {
			return nil
		}
		// Apple's counts move with the licenses it released (its next listing says so too).
		doubt, err = tx.moveAppleCounts(ctx, accountID, res.appleDeltas(nil), poolsOfRows(rows, pools))
		return err // named by moveAppleCounts
	})
	if err != nil {
		return 0, false, fmt.Errorf("gone at Apple: %w", err)
	}
	return n, doubt, nil
}

// ForgetNotification drops a notification id whose application failed, so a retry applies it.
func (d *DB) ForgetNotification(ctx context.Context, id string) error {
	return wrap("forget notification", d.with(ctx).Where("notification_id = ?", id).Delete(&model.AppleNotification{}).Error)
}

// moveAppleCounts applies a notification's change to Apple's assigned counts (per pool) and
// recounts the pools the notification named (recount: a notification names at most a hundred
// assignments, and recounting a million-assignment account at each would cost it all). While
// a pass of the account is running, the counts are left to it (its listing says what Apple
// holds, and a delta on top would count twice): doubt reports that case, so that the caller
// asks for another pass.
func (d *DB) moveAppleCounts(ctx context.Context, accountID int64, deltas map[int64]int64, recount []int64) (doubt bool, err error) {
	if len(deltas) > 0 {
		running, err := d.passRunning(ctx, accountID)
		if err != nil {
			return false, wrap("move apple counts", err)
		}
		if doubt = running; !running {
			if err := d.adjustAppleAssigned(ctx, deltas); err != nil {
				return false, wrap("move apple counts", err)
			}
		}
	}
	_, err = d.RecountPoolsOf(ctx, accountID, recount)
	return doubt, wrap("move apple counts", err)
}

// poolsOfRows returns the ids of the pools of rows (those in pools), each once, in order.
func poolsOfRows(rows []AppleAssignmentRow, pools map[string]PoolRef) []int64 {
	set := map[int64]struct{}{}
	for _, r := range rows {
		if ref, ok := pools[AssetKey(r.AdamID, r.PricingParam)]; ok {
			set[ref.PoolID] = struct{}{}
		}
	}
	return slices.Sorted(maps.Keys(set))
}

package db

import (
	"context"
	"time"

	"orchard/model"
)

// RememberNotification records a notification id; it reports false when the id was seen
// before (Apple delivers duplicates; each is applied once).
func (d *DB) RememberNotification(ctx context.Context, id string, accountID int64, typ string) (bool, error) {
	err := d.with(ctx).Create(&model.AppleNotification{NotificationID: id, AccountID: accountID, Type: typ, ReceivedAt: Now()}).Error
	if isDuplicate(err) {
		return false, nil
	}
	return err == nil, err
}

// PruneNotifications forgets notification ids older than before (Apple retries for minutes,
// not days).
func (d *DB) PruneNotifications(ctx context.Context, before time.Time) error {
	return d.with(ctx).Where("received_at < ?", utc(before)).Delete(&model.AppleNotification{}).Error
}

// AdjustPoolTotal applies an ASSET_COUNT notification: licenses bought, refunded or moved.
// It reports false when the account has no such pool yet (a sync will create it).
func (d *DB) AdjustPoolTotal(ctx context.Context, accountID int64, adamID, pricingParam string, delta int64) (bool, error) {
	res := d.with(ctx).Exec(`UPDATE license_pools SET total_count = CASE WHEN total_count + ? < 0 THEN 0 ELSE total_count + ? END,
  apple_available_count = CASE WHEN apple_available_count + ? < 0 THEN 0 ELSE apple_available_count + ? END, updated_at = ?
  WHERE account_id = ? AND adam_id = ? AND pricing_param = ? AND unlimited = ?`,
		delta, delta, delta, delta, Now(), accountID, adamID, pricingParam, false)
	return res.RowsAffected > 0, res.Error
}

// PoolRefs reads the account's pools of the given assets, by AssetKey.
func (d *DB) PoolRefs(ctx context.Context, accountID int64, adamIDs []string) (map[string]PoolRef, error) {
	var pools []model.LicensePool
	out := map[string]PoolRef{}
	if len(adamIDs) == 0 {
		return out, nil
	}
	if err := d.with(ctx).Select("id", "app_id", "adam_id", "pricing_param").Where("account_id = ? AND adam_id IN ?", accountID, adamIDs).Find(&pools).Error; err != nil {
		return nil, err
	}
	for _, p := range pools {
		out[AssetKey(p.AdamID, p.PricingParam)] = PoolRef{PoolID: p.ID, AppID: p.AppID}
	}
	return out, nil
}

// GoneAtApple applies Apple's word that assignments no longer exist there (a disassociate or
// revoke that Orchard did not ask for, or one it did whose event it has not matched): an
// ASSIGNED one is drift (REMOVED_AT_APPLE), a RECLAIMING one is reclaimed. It returns how many
// rows changed.
func (d *DB) GoneAtApple(ctx context.Context, accountID int64, rows []AppleAssignmentRow, pools map[string]PoolRef) (int, error) {
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
		return 0, nil
	}
	now := Now()
	n := 0
	err := d.Tx(ctx, func(tx *DB) error {
		var found []activeRow
		q, args := tx.pairIn("SELECT id, pool_id, holder_key, status FROM license_assignments WHERE (pool_id, holder_key) IN ", pairs)
		if err := tx.with(ctx).Raw(q, args...).Scan(&found).Error; err != nil {
			return err
		}
		var assigned, reclaiming []int64
		for _, f := range found {
			switch f.Status {
			case model.AssignmentAssigned:
				assigned = append(assigned, f.ID)
			case model.AssignmentReclaiming:
				reclaiming = append(reclaiming, f.ID)
			}
		}
		if len(assigned) > 0 {
			res := tx.with(ctx).Model(&model.LicenseAssignment{}).Where("id IN ? AND status = ?", assigned, model.AssignmentAssigned).
				UpdateColumns(map[string]any{"status": model.AssignmentRemovedAtApple, "holder_key": nil, "removed_at_apple_at": now,
					"reclaim_reason": "removed at Apple (notification)", "reclaimed_by": "apple", "updated_at": now})
			if res.Error != nil {
				return res.Error
			}
			n += int(res.RowsAffected)
		}
		if len(reclaiming) > 0 {
			res := tx.with(ctx).Model(&model.LicenseAssignment{}).Where("id IN ? AND status = ?", reclaiming, model.AssignmentReclaiming).
				UpdateColumns(map[string]any{"status": model.AssignmentReclaimed, "holder_key": nil, "reclaimed_at": now, "updated_at": now})
			if res.Error != nil {
				return res.Error
			}
			n += int(res.RowsAffected)
		}
		if n > 0 {
			_, err := tx.RecountPools(ctx, accountID)
			return err
		}
		return nil
	})
	return n, err
}

// ForgetNotification drops a notification id whose application failed, so a retry applies it.
func (d *DB) ForgetNotification(ctx context.Context, id string) error {
	return d.with(ctx).Where("notification_id = ?", id).Delete(&model.AppleNotification{}).Error
}

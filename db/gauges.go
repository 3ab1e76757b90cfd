package db

import (
	"context"
	"fmt"

	"orchard/model"
)

// GaugeCounts reads, per live account, the outbox backlog (items queued or sent, not yet
// completed by Apple) and the license pools with no license left (not unlimited, still at
// Apple, total − assigned − reserved ≤ 0), for the /metrics gauges. Two grouped statements,
// whatever the number of accounts.
func (d *DB) GaugeCounts(ctx context.Context) (backlog, emptyPools map[int64]int64, err error) {
	type row struct {
		AccountID int64
		N         int64
	}
	var b []row
	if err := d.with(ctx).Table("apple_outbox").Select("account_id, COUNT(*) AS n").
		Where("status IN ?", []model.OutboxStatus{model.OutboxQueued, model.OutboxSent}).
		Group("account_id").Scan(&b).Error; err != nil {
		return nil, nil, fmt.Errorf("count the outbox backlog: %w", err)
	}
	var e []row
	if err := d.with(ctx).Table("license_pools").Select("account_id, COUNT(*) AS n").
		Where("unlimited = ? AND gone_at_apple_at IS NULL AND total_count - assigned_count - reserved_count <= 0", false).
		Group("account_id").Scan(&e).Error; err != nil {
		return nil, nil, fmt.Errorf("count the empty pools: %w", err)
	}
	backlog, emptyPools = map[int64]int64{}, map[int64]int64{}
	for _, r := range b {
		backlog[r.AccountID] = r.N
	}
	for _, r := range e {
		emptyPools[r.AccountID] = r.N
	}
	return backlog, emptyPools, nil
}

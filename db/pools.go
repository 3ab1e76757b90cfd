package db

import (
	"context"

	"orchard/model"
)

// SetPoolCounts sets Orchard's own counts of a pool (for fixtures and the recount of a sync).
func (d *DB) SetPoolCounts(ctx context.Context, poolID, assigned, reserved int64) error {
	return d.with(ctx).Model(&model.LicensePool{}).Where("id = ?", poolID).
		Updates(map[string]any{"assigned_count": assigned, "reserved_count": reserved, "updated_at": Now()}).Error
}

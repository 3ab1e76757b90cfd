package db

import (
	"context"
	"time"

	"orchard/model"
)

// The change feed behind the licenseEvents subscription: it follows the database (not
// in-process events), so a subscriber on one replica sees what every replica changes.

// FeedCursor is a position in a time-ordered feed: rows changed after At, or at At with an id
// after ID.
type FeedCursor struct {
	At time.Time
	ID int64
}

// AssignmentChanges reads assignments changed after the cursor, oldest change first.
func (d *DB) AssignmentChanges(ctx context.Context, c FeedCursor, accountID, appID int64, limit int) ([]*model.LicenseAssignment, error) {
	at := utc(c.At)
	q := d.with(ctx).Where("(updated_at > ? OR (updated_at = ? AND id > ?))", at, at, c.ID)
	if accountID != 0 {
		q = q.Where("account_id = ?", accountID)
	}
	if appID != 0 {
		q = q.Where("app_id = ?", appID)
	}
	var out []*model.LicenseAssignment
	err := q.Order("updated_at, id").Limit(limit).Find(&out).Error
	return out, wrap("assignment changes", err)
}

// SyncRunChanges reads sync runs that started or finished after since.
func (d *DB) SyncRunChanges(ctx context.Context, since time.Time, accountID int64) ([]*model.SyncRun, error) {
	since = utc(since)
	q := d.with(ctx).Where("(started_at > ? OR finished_at > ?)", since, since)
	if accountID != 0 {
		q = q.Where("account_id = ?", accountID)
	}
	var out []*model.SyncRun
	err := q.Order("id").Limit(1000).Find(&out).Error
	return out, wrap("sync run changes", err)
}

// PolicyEvaluationChanges reads the audit events of policy evaluations (action
// "policy.evaluate") with an id after afterID, oldest first.
func (d *DB) PolicyEvaluationChanges(ctx context.Context, afterID int64, limit int) ([]*model.AuditEvent, error) {
	var out []*model.AuditEvent
	err := d.with(ctx).Where("action = ? AND id > ?", "policy.evaluate", afterID).Order("id").Limit(limit).Find(&out).Error
	return out, wrap("policy evaluation changes", err)
}

// LastAuditID is the highest audit event id (0 when there is none): where a feed that starts
// now begins reading audit events.
func (d *DB) LastAuditID(ctx context.Context) (int64, error) {
	var id *int64
	err := d.with(ctx).Model(&model.AuditEvent{}).Select("MAX(id)").Scan(&id).Error
	if err != nil || id == nil {
		return 0, wrap("last audit id", err)
	}
	return *id, nil
}

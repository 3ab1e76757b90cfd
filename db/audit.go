package db

import (
	"context"
	"time"

	"gorm.io/gorm"

	"orchard/model"
)

// InsertAudit records an audit event.
func (d *DB) InsertAudit(ctx context.Context, e *model.AuditEvent) error {
	if e.At.IsZero() {
		e.At = Now()
	}
	if e.Details == "" {
		e.Details = "{}"
	}
	return wrap("insert audit", d.with(ctx).Create(e).Error)
}

// InsertAudits stores audit events in batches.
func (d *DB) InsertAudits(ctx context.Context, events []*model.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	for _, e := range events {
		if e.At.IsZero() {
			e.At = Now()
		}
		if e.Details == "" {
			e.Details = "{}"
		}
	}
	return wrap("insert audits", d.with(ctx).CreateInBatches(events, d.batchOf(events)).Error)
}

// AuditFilter selects audit events.
type AuditFilter struct {
	AccountID   int64
	SubjectType string
	SubjectID   int64
	Action      string
	ActorKind   model.ActorKind
	Since       *time.Time
}

func (d *DB) auditQuery(f AuditFilter) *gorm.DB {
	q := d.gorm.Model(&model.AuditEvent{})
	if f.AccountID != 0 {
		q = q.Where("account_id = ?", f.AccountID)
	}
	if f.SubjectType != "" {
		q = q.Where("subject_type = ? AND subject_id = ?", f.SubjectType, f.SubjectID)
	}
	if f.Action != "" {
		q = q.Where("action = ?", f.Action)
	}
	if f.ActorKind != "" {
		q = q.Where("actor_kind = ?", f.ActorKind)
	}
	if f.Since != nil {
		q = q.Where("at >= ?", utc(*f.Since))
	}
	return q
}

// ListAuditEvents reads a page of audit events (callers ask for newest first).
func (d *DB) ListAuditEvents(ctx context.Context, f AuditFilter, p Page) ([]*model.AuditEvent, bool, error) {
	out, more, err := list[model.AuditEvent](ctx, d.auditQuery(f), "audit_events", p)
	return out, more, wrap("list audit events", err)
}

// CountAuditEvents counts audit events.
func (d *DB) CountAuditEvents(ctx context.Context, f AuditFilter) (int, error) {
	n, err := count(ctx, d.auditQuery(f), "audit_events")
	return n, wrap("count audit events", err)
}

// AuditEventsByID reads audit events by id.
func (d *DB) AuditEventsByID(ctx context.Context, ids []int64) ([]*model.AuditEvent, error) {
	out, err := byIDs[model.AuditEvent](ctx, d, ids)
	return out, wrap("audit events by id", err)
}

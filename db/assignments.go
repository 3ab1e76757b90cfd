package db

// The write path (doc/design.md §2.1): a mutation checks the rules, reserves a license with a
// conditional update, inserts the assignment and its outbox row, all in one transaction.

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"gorm.io/gorm"

	"orchard/model"
)

// assignmentsByHolder reads the given columns of the assignments with the given
// (pool_id, holder_key) pairs, a bounded number of pairs per statement. SQLite does not use an
// index for a row-value IN (it scans the table once per call: quadratic over a pass), so
// there the pairs are a table joined on the unique (pool_id, holder_key) index: a thousand
// pairs in one JSON parameter (sqlitejson.go). MySQL ranges over that index with a row-value
// IN of 500 pairs.
func (d *DB) assignmentsByHolder(ctx context.Context, cols []string, pairs [][2]any) ([]activeRow, error) {
	per := 500
	if d.dialect == SQLite {
		per = sqliteJSONRowsPerStatement
	}
	var out []activeRow
	for start := 0; start < len(pairs); start += per {
		chunk := pairs[start:min(start+per, len(pairs))]
		var q string
		var args []any
		if d.dialect == SQLite {
			rows := make([][]any, len(chunk))
			for i, p := range chunk {
				rows[i] = p[:]
			}
			js, err := sqliteJSONRows(rows)
			if err != nil {
				return nil, wrap("assignments by holder", err)
			}
			q = "SELECT la." + strings.Join(cols, ", la.") + " FROM jsonb_each(?) AS v JOIN license_assignments la ON la.pool_id = v.value->>0 AND la.holder_key = v.value->>1"
			args = []any{js}
		} else {
			var sb strings.Builder
			sb.WriteString("SELECT ")
			sb.WriteString(strings.Join(cols, ", "))
			sb.WriteString(" FROM license_assignments WHERE (pool_id, holder_key) IN (")
			args = appendPairs(&sb, make([]any, 0, 2*len(chunk)), chunk)
			sb.WriteString(")")
			q = sb.String()
		}
		var found []activeRow
		if err := d.with(ctx).Raw(q, args...).Scan(&found).Error; err != nil {
			return nil, wrap("assignments by holder", err)
		}
		out = append(out, found...)
	}
	return out, nil
}

// AssignmentParent names the column that ties assignments to a parent.
type AssignmentParent string

func (p AssignmentParent) relation() (Relation, error) {
	switch p {
	case AssignmentsOfAccount, AssignmentsOfPool, AssignmentsOfDevice, AssignmentsOfUser:
		return Relation{Table: "license_assignments", From: "license_assignments", ParentExpr: "license_assignments." + string(p)}, nil
	}
	return Relation{}, fmt.Errorf("unknown assignment parent %q", p)
}

func statusWhere(statuses []model.AssignmentStatus) (string, []any) {
	if len(statuses) == 0 {
		return "", nil
	}
	return "license_assignments.status IN ?", []any{statuses}
}

// AssignmentsByParent reads one page of assignments per parent.
func (d *DB) AssignmentsByParent(ctx context.Context, parent AssignmentParent, statuses []model.AssignmentStatus, first int, pages []ChildPage) (map[int64][]*model.LicenseAssignment, error) {
	r, err := parent.relation()
	if err != nil {
		return nil, wrap("assignments by parent", err)
	}
	w, args := statusWhere(statuses)
	out, err := childrenOf[model.LicenseAssignment](ctx, d, r, w, args, first, pages)
	return out, wrap("assignments by parent", err)
}

// CountAssignmentsByParent counts assignments per parent.
func (d *DB) CountAssignmentsByParent(ctx context.Context, parent AssignmentParent, statuses []model.AssignmentStatus, parents []int64) (map[int64]int, error) {
	r, err := parent.relation()
	if err != nil {
		return nil, wrap("count assignments by parent", err)
	}
	w, args := statusWhere(statuses)
	out, err := countChildren(ctx, d, r, w, args, parents)
	return out, wrap("count assignments by parent", err)
}

// AssignmentByID reads one assignment.
func (d *DB) AssignmentByID(ctx context.Context, id int64) (*model.LicenseAssignment, error) {
	var x model.LicenseAssignment
	if err := d.with(ctx).Where("id = ?", id).Take(&x).Error; err != nil {
		return nil, wrap("assignment by id", notFound(err))
	}
	return &x, nil
}

// ActiveAssignmentOfApp finds an active assignment of an app (in any pool) to a holder.
func (d *DB) ActiveAssignmentOfApp(ctx context.Context, appID int64, kind model.LicenseKind, serialNumber, clientUserID string) (*model.LicenseAssignment, error) {
	// "+app_id": the holder's index (serial number or clientUserId) finds a handful of rows;
	// SQLite, without statistics, would pick the app's index and read every assignment of
	// the app (every assignLicense did, growing with the app's licenses).
	q := d.with(ctx).Where("+app_id = ? AND status IN ?", appID, activeStatuses)
	if kind == model.LicenseKindDevice {
		q = q.Where("serial_number = ? AND kind = ?", serialNumber, kind)
	} else {
		q = q.Where("client_user_id = ? AND kind = ?", clientUserID, kind)
	}
	a, err := findOne[model.LicenseAssignment](q.Order("id"))
	return a, wrap("active assignment of app", err)
}

// InsertAssignment stores a new assignment.
func (d *DB) InsertAssignment(ctx context.Context, a *model.LicenseAssignment) error {
	err := d.with(ctx).Create(a).Error
	if isDuplicate(err) {
		return ErrHolderHasLicense
	}
	return wrap("insert assignment", err)
}

// LockAssignment reads an assignment and locks it until the transaction ends.
func (d *DB) LockAssignment(ctx context.Context, id int64) (*model.LicenseAssignment, error) {
	var x model.LicenseAssignment
	if err := d.forUpdate(d.with(ctx)).Where("id = ?", id).Take(&x).Error; err != nil {
		return nil, wrap("lock assignment", notFound(err))
	}
	return &x, nil
}

// ActiveAssignmentsIn reads a batch of active assignments of an account (optionally of one
// app) with ids after after, locked until the transaction ends.
func (d *DB) ActiveAssignmentsIn(ctx context.Context, accountID, appID, after int64, limit int) ([]*model.LicenseAssignment, error) {
	q := d.forUpdate(d.with(ctx)).Where("account_id = ? AND status IN ? AND id > ?", accountID, activeStatuses, after)
	if appID != 0 {
		q = q.Where("app_id = ?", appID)
	}
	var out []*model.LicenseAssignment
	err := q.Order("id").Limit(limit).Find(&out).Error
	return out, wrap("active assignments in", err)
}

// CountReclaimable counts an account's licenses that still stand between it and its removal:
// pending or reclaiming ones, and assigned ones of revocable pools.
func (d *DB) CountReclaimable(ctx context.Context, accountID int64) (int64, error) {
	var n int64
	err := d.with(ctx).Model(&model.LicenseAssignment{}).
		Where("license_assignments.account_id = ? AND (license_assignments.status IN ? OR (license_assignments.status = ? AND EXISTS (SELECT 1 FROM license_pools p WHERE p.id = license_assignments.pool_id AND p.revocable = ?)))",
			accountID, []model.AssignmentStatus{model.AssignmentPending, model.AssignmentReclaiming}, model.AssignmentAssigned, true).Count(&n).Error
	return n, wrap("count reclaimable", err)
}

// UsersWithOrchardUserLicense returns which of the users hold an active user license for the
// app that Orchard assigned (R9).
func (d *DB) UsersWithOrchardUserLicense(ctx context.Context, appID int64, userIDs []int64) (map[int64]bool, error) {
	out := map[int64]bool{}
	if len(userIDs) == 0 {
		return out, nil
	}
	var ids []int64
	err := d.with(ctx).Model(&model.LicenseAssignment{}).Where("app_id = ? AND kind = ? AND status IN ? AND origin <> ? AND user_id IN ?",
		appID, model.LicenseKindUser, activeStatuses, model.OriginFoundAtApple, userIDs).Distinct("user_id").Pluck("user_id", &ids).Error
	for _, id := range ids {
		out[id] = true
	}
	return out, wrap("users with orchard user license", err)
}

// ActiveAssignmentIDs reads back the ids of just-inserted active assignments, in the order
// given, by their (pool, holder) key.
func (d *DB) ActiveAssignmentIDs(ctx context.Context, rows []*model.LicenseAssignment) ([]int64, error) {
	pairs := make([][2]any, len(rows))
	for i, r := range rows {
		pairs[i] = [2]any{r.PoolID, *r.HolderKey}
	}
	found, err := d.assignmentsByHolder(ctx, []string{"id", "pool_id", "holder_key", "status"}, pairs)
	if err != nil {
		return nil, wrap("active assignment ids", err)
	}
	byKey := make(map[[2]any]int64, len(found))
	for _, f := range found {
		byKey[[2]any{f.PoolID, f.HolderKey}] = f.ID
	}
	out := make([]int64, len(rows))
	for i, p := range pairs {
		id, ok := byKey[[2]any{p[0], p[1]}]
		if !ok {
			return nil, fmt.Errorf("active assignment ids: assignment %v not found after insert", p)
		}
		out[i] = id
	}
	return out, nil
}

// ActiveAssignmentsOf reads the active assignments matching a filter (a device's, a user's,
// an app's), locked until the transaction ends.
func (d *DB) ActiveAssignmentsOf(ctx context.Context, f AssignmentFilter) ([]*model.LicenseAssignment, error) {
	f.Statuses = activeStatuses
	var out []*model.LicenseAssignment
	err := d.forUpdate(d.assignmentQuery(f).WithContext(ctx)).Order("id").Find(&out).Error
	return out, wrap("active assignments of", err)
}

// InsertAssignments stores assignments in batches.
func (d *DB) InsertAssignments(ctx context.Context, as []*model.LicenseAssignment) error {
	if len(as) == 0 {
		return nil
	}
	err := d.with(ctx).CreateInBatches(as, d.batchOf(as)).Error
	if isDuplicate(err) {
		return ErrHolderHasLicense
	}
	return wrap("insert assignments", err)
}

// AssignmentFilter selects license assignments.
type AssignmentFilter struct {
	AccountID    int64
	AppID        int64
	PoolID       int64
	Statuses     []model.AssignmentStatus
	Kind         model.LicenseKind
	SerialNumber string
	DeviceID     int64
	UserID       int64
	Origin       model.AssignmentOrigin
}

func (d *DB) assignmentQuery(f AssignmentFilter) *gorm.DB {
	q := d.gorm.Model(&model.LicenseAssignment{})
	if f.AccountID != 0 {
		q = q.Where("account_id = ?", f.AccountID)
	}
	if f.AppID != 0 {
		q = q.Where("app_id = ?", f.AppID)
	}
	if f.PoolID != 0 {
		q = q.Where("pool_id = ?", f.PoolID)
	}
	if len(f.Statuses) > 0 {
		q = q.Where("status IN ?", f.Statuses)
	}
	if f.Kind != "" {
		q = q.Where("kind = ?", f.Kind)
	}
	if f.SerialNumber != "" {
		q = q.Where("serial_number = ?", f.SerialNumber)
	}
	if f.DeviceID != 0 {
		q = q.Where("device_id = ?", f.DeviceID)
	}
	if f.UserID != 0 {
		q = q.Where("user_id = ?", f.UserID)
	}
	if f.Origin != "" {
		q = q.Where("origin = ?", f.Origin)
	}
	return q
}

// ListAssignments reads a page of assignments.
func (d *DB) ListAssignments(ctx context.Context, f AssignmentFilter, p Page) ([]*model.LicenseAssignment, bool, error) {
	out, more, err := list[model.LicenseAssignment](ctx, d.assignmentQuery(f), "license_assignments", p)
	return out, more, wrap("list assignments", err)
}

// CountAssignments counts assignments.
func (d *DB) CountAssignments(ctx context.Context, f AssignmentFilter) (int, error) {
	n, err := count(ctx, d.assignmentQuery(f), "license_assignments")
	return n, wrap("count assignments", err)
}

// AssignmentsByID reads assignments by id.
func (d *DB) AssignmentsByID(ctx context.Context, ids []int64) ([]*model.LicenseAssignment, error) {
	out, err := byIDs[model.LicenseAssignment](ctx, d, ids)
	return out, wrap("assignments by id", err)
}

const (
	AssignmentsOfAccount AssignmentParent = "account_id"
	AssignmentsOfPool    AssignmentParent = "pool_id"
	AssignmentsOfDevice  AssignmentParent = "device_id"
	AssignmentsOfUser    AssignmentParent = "user_id"
)

// ErrHolderHasLicense is returned when the holder already has an active assignment in the pool
// (the unique index on (pool_id, holder_key) refused a second one).
var ErrHolderHasLicense = errors.New("the holder already has a license from this pool")

var activeStatuses = []model.AssignmentStatus{model.AssignmentPending, model.AssignmentAssigned, model.AssignmentReclaiming}

package db

import (
	"context"
	"errors"
	"fmt"

	"orchard/model"
)

// The write path (doc/design.md §2.1): a mutation checks the rules, reserves a license with a
// conditional update, inserts the assignment and its outbox row, all in one transaction.

// ErrHolderHasLicense is returned when the holder already has an active assignment in the pool
// (the unique index on (pool_id, holder_key) refused a second one).
var ErrHolderHasLicense = errors.New("the holder already has a license from this pool")

// PoolByID reads one pool.
func (d *DB) PoolByID(ctx context.Context, id int64) (*model.LicensePool, error) {
	var p model.LicensePool
	if err := d.with(ctx).Where("id = ?", id).Take(&p).Error; err != nil {
		return nil, notFound(err)
	}
	return &p, nil
}

// PoolsOfApp reads every pool of an app in live accounts, by account id.
func (d *DB) PoolsOfApp(ctx context.Context, appID int64) ([]*model.LicensePool, error) {
	return findAll[model.LicensePool](d.with(ctx).Where("app_id = ? AND account_id IN (SELECT id FROM accounts WHERE removed_at IS NULL)", appID).Order("account_id"))
}

// AppByID reads one app.
func (d *DB) AppByID(ctx context.Context, id int64) (*model.App, error) {
	return findOne[model.App](d.with(ctx).Where("id = ?", id))
}

// AppByBundleID reads the app with a bundle id.
func (d *DB) AppByBundleID(ctx context.Context, bundleID string) (*model.App, error) {
	var a model.App
	if err := d.with(ctx).Where("bundle_id = ?", bundleID).Order("id").Take(&a).Error; err != nil {
		return nil, notFound(err)
	}
	return &a, nil
}

// DeviceByID reads one device.
func (d *DB) DeviceByID(ctx context.Context, id int64) (*model.Device, error) {
	return findOne[model.Device](d.with(ctx).Where("id = ?", id))
}

// UserByID reads one user.
func (d *DB) UserByID(ctx context.Context, id int64) (*model.User, error) {
	var x model.User
	if err := d.with(ctx).Where("id = ?", id).Take(&x).Error; err != nil {
		return nil, notFound(err)
	}
	return &x, nil
}

// AssignmentByID reads one assignment.
func (d *DB) AssignmentByID(ctx context.Context, id int64) (*model.LicenseAssignment, error) {
	var x model.LicenseAssignment
	if err := d.with(ctx).Where("id = ?", id).Take(&x).Error; err != nil {
		return nil, notFound(err)
	}
	return &x, nil
}

var activeStatuses = []model.AssignmentStatus{model.AssignmentPending, model.AssignmentAssigned, model.AssignmentReclaiming}

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
	return findOne[model.LicenseAssignment](q.Order("id"))
}

// ReserveLicense takes one license of a pool for an assignment on its way to Apple, if one is
// left: one conditional update, which the database serialises per pool, so concurrent callers
// (and replicas) can never reserve more than the pool has (R13).
func (d *DB) ReserveLicense(ctx context.Context, poolID int64) (bool, error) {
	res := d.with(ctx).Exec(`UPDATE license_pools SET reserved_count = reserved_count + 1, updated_at = ?
  WHERE id = ? AND (unlimited = ? OR assigned_count + reserved_count < total_count)`, Now(), poolID, true)
	return res.RowsAffected == 1, res.Error
}

// InsertAssignment stores a new assignment.
func (d *DB) InsertAssignment(ctx context.Context, a *model.LicenseAssignment) error {
	err := d.with(ctx).Create(a).Error
	if isDuplicate(err) {
		return ErrHolderHasLicense
	}
	return err
}

// InsertOutbox queues work for Apple.
func (d *DB) InsertOutbox(ctx context.Context, items ...*model.OutboxItem) error {
	if len(items) == 0 {
		return nil
	}
	return d.with(ctx).CreateInBatches(items, d.batchOf(items)).Error
}

// AppleUserOf reads a user's registration in an account.
func (d *DB) AppleUserOf(ctx context.Context, accountID int64, clientUserID string) (*model.AppleUser, error) {
	var u model.AppleUser
	if err := d.with(ctx).Where("account_id = ? AND client_user_id = ?", accountID, clientUserID).Take(&u).Error; err != nil {
		return nil, notFound(err)
	}
	return &u, nil
}

// InsertAppleUser stores a registration; when a concurrent call stored it first, it reads
// that one back (created reports which happened).
func (d *DB) InsertAppleUser(ctx context.Context, u *model.AppleUser) (au *model.AppleUser, created bool, err error) {
	err = d.with(ctx).Create(u).Error
	if isDuplicate(err) {
		au, err = d.AppleUserOf(ctx, u.AccountID, u.ClientUserID)
		return au, false, err
	}
	return u, err == nil, err
}

// UpdateAppleUser sets columns of a registration.
func (d *DB) UpdateAppleUser(ctx context.Context, id int64, cols map[string]any) error {
	cols["updated_at"] = Now()
	return d.with(ctx).Model(&model.AppleUser{}).Where("id = ?", id).UpdateColumns(cols).Error
}

// AdjustPoolCounts moves counts of a pool: assigned += da, reserved += dr. A status change
// moves them through ApplyTransitions, by the transition table; this is for reservations
// taken and released before an assignment exists.
func (d *DB) AdjustPoolCounts(ctx context.Context, poolID int64, da, dr int64) error {
	return d.with(ctx).Exec(`UPDATE license_pools SET assigned_count = CASE WHEN assigned_count + ? < 0 THEN 0 ELSE assigned_count + ? END,
  reserved_count = CASE WHEN reserved_count + ? < 0 THEN 0 ELSE reserved_count + ? END, updated_at = ? WHERE id = ?`,
		da, da, dr, dr, Now(), poolID).Error
}

// LockAssignment reads an assignment and locks it until the transaction ends.
func (d *DB) LockAssignment(ctx context.Context, id int64) (*model.LicenseAssignment, error) {
	var x model.LicenseAssignment
	if err := d.forUpdate(d.with(ctx)).Where("id = ?", id).Take(&x).Error; err != nil {
		return nil, notFound(err)
	}
	return &x, nil
}

// CancelQueuedAssociate cancels the associate of an assignment if it was never sent to Apple;
// it reports whether it did.
func (d *DB) CancelQueuedAssociate(ctx context.Context, assignmentID int64) (bool, error) {
	// Only an item never attempted: one queued again after an attempt (a crash, a network
	// error) may have reached Apple.
	res := d.with(ctx).Model(&model.OutboxItem{}).Where("assignment_id = ? AND action = ? AND status = ? AND attempts = 0", assignmentID, model.OutboxAssociate, model.OutboxQueued).
		UpdateColumns(map[string]any{"status": model.OutboxFailed, "last_error": "cancelled: the license was taken back before it reached Apple", "completed_at": Now()})
	return res.RowsAffected > 0, res.Error
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
	return out, err
}

// CountReclaimable counts an account's licenses that still stand between it and its removal:
// pending or reclaiming ones, and assigned ones of revocable pools.
func (d *DB) CountReclaimable(ctx context.Context, accountID int64) (int64, error) {
	var n int64
	err := d.with(ctx).Model(&model.LicenseAssignment{}).
		Where("license_assignments.account_id = ? AND (license_assignments.status IN ? OR (license_assignments.status = ? AND EXISTS (SELECT 1 FROM license_pools p WHERE p.id = license_assignments.pool_id AND p.revocable = ?)))",
			accountID, []model.AssignmentStatus{model.AssignmentPending, model.AssignmentReclaiming}, model.AssignmentAssigned, true).Count(&n).Error
	return n, err
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
	return out, err
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
		return nil, err
	}
	byKey := make(map[[2]any]int64, len(found))
	for _, f := range found {
		byKey[[2]any{f.PoolID, f.HolderKey}] = f.ID
	}
	out := make([]int64, len(rows))
	for i, p := range pairs {
		id, ok := byKey[[2]any{p[0], p[1]}]
		if !ok {
			return nil, fmt.Errorf("assignment %v not found after insert", p)
		}
		out[i] = id
	}
	return out, nil
}

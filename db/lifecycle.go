package db

import (
	"context"
	"errors"
	"time"

	"orchard/model"
)

// Devices, users, inventory and device commands, as the MDM and directory integrations push
// them.

// ErrDuplicate is returned when a row with the same unique key exists.
var ErrDuplicate = errors.New("already exists")

// SaveDevice inserts or updates a device.
func (d *DB) SaveDevice(ctx context.Context, dev *model.Device) error {
	if dev.ID == 0 {
		err := d.with(ctx).Create(dev).Error
		if isDuplicate(err) {
			return ErrDuplicate
		}
		return err
	}
	return d.with(ctx).Save(dev).Error
}

// SaveUser inserts or updates a user.
func (d *DB) SaveUser(ctx context.Context, u *model.User) error {
	if u.ID == 0 {
		err := d.with(ctx).Create(u).Error
		if isDuplicate(err) {
			return ErrDuplicate
		}
		return err
	}
	return d.with(ctx).Save(u).Error
}

// DevicesBySerials reads devices by serial number.
func (d *DB) DevicesBySerials(ctx context.Context, serials []string) ([]*model.Device, error) {
	var out []*model.Device
	if len(serials) == 0 {
		return out, nil
	}
	err := d.with(ctx).Where("serial_number IN ?", serials).Find(&out).Error
	return out, err
}

// UsersByExternalIDs reads users by the directory's ids.
func (d *DB) UsersByExternalIDs(ctx context.Context, ids []string) ([]*model.User, error) {
	var out []*model.User
	if len(ids) == 0 {
		return out, nil
	}
	err := d.with(ctx).Where("external_id IN ?", ids).Find(&out).Error
	return out, err
}

// DeviceInventory reads a device's inventory.
func (d *DB) DeviceInventory(ctx context.Context, deviceID int64) ([]*model.DeviceApp, error) {
	var out []*model.DeviceApp
	err := d.with(ctx).Where("device_id = ?", deviceID).Order("id").Find(&out).Error
	return out, err
}

// ReplaceInventory replaces a device's inventory with apps (matched by bundle id: entries kept
// keep their id).
func (d *DB) ReplaceInventory(ctx context.Context, deviceID int64, apps []*model.DeviceApp) error {
	old, err := d.DeviceInventory(ctx, deviceID)
	if err != nil {
		return err
	}
	byBundle := map[string]*model.DeviceApp{}
	for _, o := range old {
		byBundle[o.BundleID] = o
	}
	var gone []int64
	keep := map[string]bool{}
	for _, a := range apps {
		keep[a.BundleID] = true
	}
	for _, o := range old {
		if !keep[o.BundleID] {
			gone = append(gone, o.ID)
		}
	}
	if len(gone) > 0 {
		if err := d.with(ctx).Where("id IN ?", gone).Delete(&model.DeviceApp{}).Error; err != nil {
			return err
		}
	}
	var ins []*model.DeviceApp
	for _, a := range apps {
		a.DeviceID = deviceID
		if o, ok := byBundle[a.BundleID]; ok {
			a.ID = o.ID
			if err := d.with(ctx).Save(a).Error; err != nil {
				return err
			}
			continue
		}
		ins = append(ins, a)
	}
	if len(ins) > 0 {
		return d.with(ctx).CreateInBatches(ins, d.batchOf(ins)).Error
	}
	return nil
}

// AppsByBundleIDs reads the apps with the given bundle ids, by bundle id.
func (d *DB) AppsByBundleIDs(ctx context.Context, bundleIDs []string) (map[string]*model.App, error) {
	out := map[string]*model.App{}
	if len(bundleIDs) == 0 {
		return out, nil
	}
	var apps []*model.App
	if err := d.with(ctx).Where("bundle_id IN ?", bundleIDs).Order("id").Find(&apps).Error; err != nil {
		return nil, err
	}
	for _, a := range apps {
		if _, ok := out[a.BundleID]; !ok {
			out[a.BundleID] = a
		}
	}
	return out, nil
}

// ActiveAssignmentsOf reads the active assignments matching a filter (a device's, a user's,
// an app's), locked until the transaction ends.
func (d *DB) ActiveAssignmentsOf(ctx context.Context, f AssignmentFilter) ([]*model.LicenseAssignment, error) {
	f.Statuses = activeStatuses
	var out []*model.LicenseAssignment
	err := d.forUpdate(d.assignmentQuery(f).WithContext(ctx)).Order("id").Find(&out).Error
	return out, err
}

// UserHasAppOnDevices reports whether any device of a user has an app (by bundle id) in its
// inventory.
func (d *DB) UserHasAppOnDevices(ctx context.Context, userID int64, bundleID string) (bool, error) {
	var n int64
	err := d.with(ctx).Model(&model.DeviceApp{}).
		Where("bundle_id = ? AND device_id IN (SELECT id FROM devices WHERE user_id = ? AND status = ?)", bundleID, userID, model.DeviceActive).
		Count(&n).Error
	return n > 0, err
}

// InsertCommands stores device commands.
func (d *DB) InsertCommands(ctx context.Context, cmds ...*model.DeviceCommand) error {
	if len(cmds) == 0 {
		return nil
	}
	return d.with(ctx).CreateInBatches(cmds, d.batchOf(cmds)).Error
}

// PendingCommand finds a pending command of a kind for a device and app.
func (d *DB) PendingCommand(ctx context.Context, deviceID, appID int64, kind model.CommandKind) (*model.DeviceCommand, error) {
	var c model.DeviceCommand
	err := d.with(ctx).Where("device_id = ? AND app_id = ? AND kind = ? AND status = ?", deviceID, appID, kind, model.CommandPending).Take(&c).Error
	if err != nil {
		return nil, notFound(err)
	}
	return &c, nil
}

// CancelCommands cancels a device's pending commands.
func (d *DB) CancelCommands(ctx context.Context, deviceID int64, why string) error {
	return d.with(ctx).Model(&model.DeviceCommand{}).Where("device_id = ? AND status = ?", deviceID, model.CommandPending).
		UpdateColumns(map[string]any{"status": model.CommandCancelled, "result": why, "acknowledged_at": Now()}).Error
}

// AcknowledgeCommand records the MDM's answer to a pending command; it reports false when the
// command is not pending.
func (d *DB) AcknowledgeCommand(ctx context.Context, id int64, status model.CommandStatus, result *string, at time.Time) (bool, error) {
	res := d.with(ctx).Model(&model.DeviceCommand{}).Where("id = ? AND status = ?", id, model.CommandPending).
		UpdateColumns(map[string]any{"status": status, "result": result, "acknowledged_at": utc(at)})
	return res.RowsAffected > 0, res.Error
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
	return d.with(ctx).CreateInBatches(events, d.batchOf(events)).Error
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
	return err
}

// ReserveLicenses takes up to n licenses of a pool at once and returns how many it took.
func (d *DB) ReserveLicenses(ctx context.Context, poolID int64, n int64) (int64, error) {
	p, err := d.lockPool(ctx, poolID)
	if err != nil {
		return 0, err
	}
	take := n
	if !p.Unlimited {
		take = min(n, max(p.TotalCount-p.AssignedCount-p.ReservedCount, 0))
	}
	if take == 0 {
		return 0, nil
	}
	return take, d.AdjustPoolCounts(ctx, poolID, 0, take)
}

func (d *DB) lockPool(ctx context.Context, id int64) (*model.LicensePool, error) {
	var p model.LicensePool
	if err := d.forUpdate(d.with(ctx)).Where("id = ?", id).Take(&p).Error; err != nil {
		return nil, notFound(err)
	}
	return &p, nil
}

// AppleUsersOfUser reads a user's registrations at Apple.
func (d *DB) AppleUsersOfUser(ctx context.Context, userID int64) ([]*model.AppleUser, error) {
	out := []*model.AppleUser{}
	err := d.with(ctx).Where("user_id = ?", userID).Order("account_id").Find(&out).Error
	return out, err
}

// SetSetting stores a named setting.
func (d *DB) SetSetting(ctx context.Context, name, value string) error {
	return d.with(ctx).Save(&model.Setting{Name: name, Value: value, UpdatedAt: Now()}).Error
}

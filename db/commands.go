package db

import (
	"context"
	"time"

	"gorm.io/gorm"

	"orchard/model"
)

// InsertCommands stores device commands.
func (d *DB) InsertCommands(ctx context.Context, cmds ...*model.DeviceCommand) error {
	if len(cmds) == 0 {
		return nil
	}
	return wrap("insert commands", d.with(ctx).CreateInBatches(cmds, d.batchOf(cmds)).Error)
}

// PendingCommand finds a pending command of a kind for a device and app.
func (d *DB) PendingCommand(ctx context.Context, deviceID, appID int64, kind model.CommandKind) (*model.DeviceCommand, error) {
	var c model.DeviceCommand
	err := d.with(ctx).Where("device_id = ? AND app_id = ? AND kind = ? AND status = ?", deviceID, appID, kind, model.CommandPending).Take(&c).Error
	if err != nil {
		return nil, wrap("pending command", notFound(err))
	}
	return &c, nil
}

// CancelCommands cancels a device's pending commands.
func (d *DB) CancelCommands(ctx context.Context, deviceID int64, why string) error {
	return wrap("cancel commands", d.with(ctx).Model(&model.DeviceCommand{}).Where("device_id = ? AND status = ?", deviceID, model.CommandPending).
		UpdateColumns(map[string]any{"status": model.CommandCancelled, "result": why, "acknowledged_at": Now()}).Error)
}

// AcknowledgeCommand records the MDM's answer to a pending command; it reports false when the
// command is not pending.
func (d *DB) AcknowledgeCommand(ctx context.Context, id int64, status model.CommandStatus, result *string, at time.Time) (bool, error) {
	res := d.with(ctx).Model(&model.DeviceCommand{}).Where("id = ? AND status = ?", id, model.CommandPending).
		UpdateColumns(map[string]any{"status": status, "result": result, "acknowledged_at": utc(at)})
	return res.RowsAffected > 0, wrap("acknowledge command", res.Error)
}

// CommandFilter selects device commands.
type CommandFilter struct {
	DeviceID int64
	Status   model.CommandStatus
	Kind     model.CommandKind
}

func (d *DB) commandQuery(f CommandFilter) *gorm.DB {
	q := d.gorm.Model(&model.DeviceCommand{})
	if f.DeviceID != 0 {
		q = q.Where("device_id = ?", f.DeviceID)
	}
	if f.Status != "" {
		q = q.Where("status = ?", f.Status)
	}
	if f.Kind != "" {
		q = q.Where("kind = ?", f.Kind)
	}
	return q
}

// ListCommands reads a page of device commands.
func (d *DB) ListCommands(ctx context.Context, f CommandFilter, p Page) ([]*model.DeviceCommand, bool, error) {
	out, more, err := list[model.DeviceCommand](ctx, d.commandQuery(f), "device_commands", p)
	return out, more, wrap("list commands", err)
}

// CountCommands counts device commands.
func (d *DB) CountCommands(ctx context.Context, f CommandFilter) (int, error) {
	n, err := count(ctx, d.commandQuery(f), "device_commands")
	return n, wrap("count commands", err)
}

// CommandsByID reads device commands by id.
func (d *DB) CommandsByID(ctx context.Context, ids []int64) ([]*model.DeviceCommand, error) {
	out, err := byIDs[model.DeviceCommand](ctx, d, ids)
	return out, wrap("commands by id", err)
}

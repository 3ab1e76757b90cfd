package db

import (
	"context"

	"orchard/model"
)

// Setting reads a named setting.
func (d *DB) Setting(ctx context.Context, name string) (string, error) {
	var s model.Setting
	if err := d.with(ctx).Where("name = ?", name).Take(&s).Error; err != nil {
		return "", wrap("setting", notFound(err))
	}
	return s.Value, nil
}

// ClaimSetting stores value under name unless the name is already set, and returns the stored
// value and whether this call stored it. Replicas racing to set the same name agree on one
// value: the insert of all but one fails on the primary key.
func (d *DB) ClaimSetting(ctx context.Context, name, value string) (string, bool, error) {
	err := d.with(ctx).Create(&model.Setting{Name: name, Value: value, UpdatedAt: Now()}).Error
	if err == nil {
		return value, true, nil
	}
	if !isDuplicate(err) {
		return "", false, wrap("claim setting", err)
	}
	v, err := d.Setting(ctx, name)
	return v, false, wrap("claim setting", err)
}

// SetSetting stores a named setting.
func (d *DB) SetSetting(ctx context.Context, name, value string) error {
	return wrap("set setting", d.with(ctx).Save(&model.Setting{Name: name, Value: value, UpdatedAt: Now()}).Error)
}

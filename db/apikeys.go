package db

import (
	"context"
	"time"

	"orchard/model"
)

// InsertAPIKey stores a new key.
func (d *DB) InsertAPIKey(ctx context.Context, k *model.APIKey) error {
	return d.with(ctx).Create(k).Error
}

// APIKeyByHash finds a key by the hash of its secret.
func (d *DB) APIKeyByHash(ctx context.Context, hash string) (*model.APIKey, error) {
	var k model.APIKey
	if err := d.with(ctx).Where("hash = ?", hash).Take(&k).Error; err != nil {
		return nil, notFound(err)
	}
	return &k, nil
}

// APIKeyByID finds a key by id.
func (d *DB) APIKeyByID(ctx context.Context, id int64) (*model.APIKey, error) {
	var k model.APIKey
	if err := d.with(ctx).Where("id = ?", id).Take(&k).Error; err != nil {
		return nil, notFound(err)
	}
	return &k, nil
}

// RevokeAPIKey marks a key revoked (once; a second revoke keeps the first time).
func (d *DB) RevokeAPIKey(ctx context.Context, id int64, at time.Time) error {
	return d.with(ctx).Model(&model.APIKey{}).Where("id = ? AND revoked_at IS NULL", id).Update("revoked_at", utc(at)).Error
}

// TouchAPIKey records that a key was used.
func (d *DB) TouchAPIKey(ctx context.Context, id int64, at time.Time) error {
	return d.with(ctx).Model(&model.APIKey{}).Where("id = ?", id).Update("last_used_at", utc(at)).Error
}

// CountAPIKeysAll counts every key, revoked or not (a fresh install has none).
func (d *DB) CountAPIKeysAll(ctx context.Context) (int64, error) {
	var n int64
	err := d.with(ctx).Model(&model.APIKey{}).Count(&n).Error
	return n, err
}

// InsertAudit records an audit event.
func (d *DB) InsertAudit(ctx context.Context, e *model.AuditEvent) error {
	if e.At.IsZero() {
		e.At = Now()
	}
	if e.Details == "" {
		e.Details = "{}"
	}
	return d.with(ctx).Create(e).Error
}

// Setting reads a named setting.
func (d *DB) Setting(ctx context.Context, name string) (string, error) {
	var s model.Setting
	if err := d.with(ctx).Where("name = ?", name).Take(&s).Error; err != nil {
		return "", notFound(err)
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
		return "", false, err
	}
	v, err := d.Setting(ctx, name)
	return v, false, err
}

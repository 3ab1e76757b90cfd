package db

import (
	"context"
	"time"

	"gorm.io/gorm"

	"orchard/model"
)

// InsertAPIKey stores a new key.
func (d *DB) InsertAPIKey(ctx context.Context, k *model.APIKey) error {
	return wrap("insert api key", d.with(ctx).Create(k).Error)
}

// APIKeyByHash finds a key by the hash of its secret.
func (d *DB) APIKeyByHash(ctx context.Context, hash string) (*model.APIKey, error) {
	var k model.APIKey
	if err := d.with(ctx).Where("hash = ?", hash).Take(&k).Error; err != nil {
		return nil, wrap("api key by hash", notFound(err))
	}
	return &k, nil
}

// APIKeyByID finds a key by id.
func (d *DB) APIKeyByID(ctx context.Context, id int64) (*model.APIKey, error) {
	var k model.APIKey
	if err := d.with(ctx).Where("id = ?", id).Take(&k).Error; err != nil {
		return nil, wrap("api key by id", notFound(err))
	}
	return &k, nil
}

// RevokeAPIKey marks a key revoked (once; a second revoke keeps the first time).
func (d *DB) RevokeAPIKey(ctx context.Context, id int64, at time.Time) error {
	return wrap("revoke api key", d.with(ctx).Model(&model.APIKey{}).Where("id = ? AND revoked_at IS NULL", id).Update("revoked_at", utc(at)).Error)
}

// TouchAPIKey records that a key was used.
func (d *DB) TouchAPIKey(ctx context.Context, id int64, at time.Time) error {
	return wrap("touch api key", d.with(ctx).Model(&model.APIKey{}).Where("id = ?", id).Update("last_used_at", utc(at)).Error)
}

// CountAPIKeysAll counts every key, revoked or not (a fresh install has none).
func (d *DB) CountAPIKeysAll(ctx context.Context) (int64, error) {
	var n int64
	err := d.with(ctx).Model(&model.APIKey{}).Count(&n).Error
	return n, wrap("count api keys all", err)
}

// ListAPIKeys reads a page of API keys.
func (d *DB) ListAPIKeys(ctx context.Context, includeRevoked bool, p Page) ([]*model.APIKey, bool, error) {
	out, more, err := list[model.APIKey](ctx, d.apiKeyQuery(includeRevoked), "api_keys", p)
	return out, more, wrap("list api keys", err)
}

// CountAPIKeys counts API keys.
func (d *DB) CountAPIKeys(ctx context.Context, includeRevoked bool) (int, error) {
	n, err := count(ctx, d.apiKeyQuery(includeRevoked), "api_keys")
	return n, wrap("count api keys", err)
}

func (d *DB) apiKeyQuery(includeRevoked bool) *gorm.DB {
	q := d.gorm.Model(&model.APIKey{})
	if !includeRevoked {
		q = q.Where("revoked_at IS NULL")
	}
	return q
}

// APIKeysByID reads API keys by id.
func (d *DB) APIKeysByID(ctx context.Context, ids []int64) ([]*model.APIKey, error) {
	out, err := byIDs[model.APIKey](ctx, d, ids)
	return out, wrap("api keys by id", err)
}

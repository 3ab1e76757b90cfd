package db

import (
	"context"
	"errors"

	"orchard/model"
)

// ErrIdempotencyKeyUsed is returned by ClaimIdempotencyKey when the key was used before; the
// returned record holds the earlier answer.
var ErrIdempotencyKeyUsed = errors.New("idempotency key already used")

// ClaimIdempotencyKey records a key for an operation about to run, inside the operation's
// transaction. When the key was used before it returns that record and ErrIdempotencyKeyUsed
// (on MySQL a concurrent first use makes this wait until it commits).
func (d *DB) ClaimIdempotencyKey(ctx context.Context, scope, key, op, requestHash string) (*model.IdempotencyRecord, error) {
	r := &model.IdempotencyRecord{Scope: scope, Key: key, Operation: op, RequestHash: requestHash, Response: "", CreatedAt: Now()}
	err := d.with(ctx).Create(r).Error
	if isDuplicate(err) {
		prev, err := d.IdempotencyRecord(ctx, scope, key)
		if err != nil {
			return nil, wrap("claim idempotency key", err)
		}
		return prev, wrap("claim idempotency key", ErrIdempotencyKeyUsed)
	}
	return r, wrap("claim idempotency key", err)
}

// IdempotencyRecord reads a key's record.
func (d *DB) IdempotencyRecord(ctx context.Context, scope, key string) (*model.IdempotencyRecord, error) {
	var r model.IdempotencyRecord
	if err := d.with(ctx).Where("scope = ? AND `key` = ?", scope, key).Take(&r).Error; err != nil {
		return nil, wrap("idempotency record", notFound(err))
	}
	return &r, nil
}

// SetIdempotencyResponse stores the answer of a claimed key.
func (d *DB) SetIdempotencyResponse(ctx context.Context, id int64, response string) error {
	return wrap("set idempotency response", d.with(ctx).Model(&model.IdempotencyRecord{}).Where("id = ?", id).UpdateColumn("response", response).Error)
}

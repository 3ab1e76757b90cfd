package db

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"

	"orchard/model"
)

// ErrDuplicateLocation is returned when a live account already holds the Apple location.
var ErrDuplicateLocation = errors.New("an account for this Apple location already exists")

// InsertAccount stores a new account.
func (d *DB) InsertAccount(ctx context.Context, a *model.Account) error {
	err := d.with(ctx).Create(a).Error
	if isDuplicate(err) {
		return ErrDuplicateLocation
	}
	return wrap("insert account", err)
}

// DeleteAccountRow removes an account that was never used (an add that Apple refused half-way).
func (d *DB) DeleteAccountRow(ctx context.Context, id int64) error {
	return wrap("delete account row", d.with(ctx).Exec("DELETE FROM accounts WHERE id = ?", id).Error)
}

// AccountByID reads one account.
func (d *DB) AccountByID(ctx context.Context, id int64) (*model.Account, error) {
	a, err := findOne[model.Account](d.with(ctx).Where("id = ?", id))
	return a, wrap("account by id", err)
}

// LockAccount reads one account and locks its row until the transaction ends (MySQL; SQLite
// transactions are exclusive already).
func (d *DB) LockAccount(ctx context.Context, id int64) (*model.Account, error) {
	var a model.Account
	if err := d.forUpdate(d.with(ctx)).Where("id = ?", id).Take(&a).Error; err != nil {
		return nil, wrap("lock account", notFound(err))
	}
	return &a, nil
}

// LiveAccountByLocation finds the live account of an Apple location.
func (d *DB) LiveAccountByLocation(ctx context.Context, uid string) (*model.Account, error) {
	var a model.Account
	if err := d.with(ctx).Where("location_key = ?", uid).Take(&a).Error; err != nil {
		return nil, wrap("live account by location", notFound(err))
	}
	return &a, nil
}

// UpdateAccount sets columns of an account.
func (d *DB) UpdateAccount(ctx context.Context, id int64, cols map[string]any) error {
	for k, v := range cols {
		if t, ok := v.(time.Time); ok {
			cols[k] = utc(t)
		}
	}
	cols["updated_at"] = Now()
	err := d.with(ctx).Model(&model.Account{}).Where("id = ?", id).Updates(cols).Error
	if isDuplicate(err) {
		return ErrDuplicateLocation
	}
	return wrap("update account", err)
}

// HoldMargin is added to every hold HoldAccount records: the hold is computed on the clock of
// the process that got Apple's answer and compared, by every replica, with the database's
// clock. A request a little late is harmless; one early may be refused "for even longer
// periods" (doc/apple-api.md §9.6).
const HoldMargin = 100 * time.Millisecond

// HoldAccount records Apple's Retry-After: nothing is sent for the account before until (plus
// HoldMargin). A hold only ever grows (two answers racing cannot shorten it).
func (d *DB) HoldAccount(ctx context.Context, id int64, until time.Time, reason string) error {
	until = utc(until.Add(HoldMargin))
	return wrap("hold account", d.with(ctx).Exec(`UPDATE accounts SET
  throttled_until = CASE WHEN throttled_until IS NULL OR throttled_until < ? THEN ? ELSE throttled_until END,
  throttle_reason = ?, updated_at = ? WHERE id = ?`, until, until, truncate(reason, 250), Now(), id).Error)
}

// ListLiveAccounts reads every account that is not removed (the scheduler's working set).
func (d *DB) ListLiveAccounts(ctx context.Context) ([]*model.Account, error) {
	var out []*model.Account
	err := d.with(ctx).Where("removed_at IS NULL").Order("id").Find(&out).Error
	return out, wrap("list live accounts", err)
}

// AccountFilter selects accounts.
type AccountFilter struct {
	Health         []model.TokenHealth
	IncludeRemoved bool
}

func (d *DB) accountQuery(f AccountFilter) *gorm.DB {
	q := d.gorm.Model(&model.Account{})
	if !f.IncludeRemoved {
		q = q.Where("removed_at IS NULL")
	}
	if len(f.Health) > 0 {
		q = q.Where("health IN ?", f.Health)
	}
	return q
}

// ListAccounts reads a page of accounts.
func (d *DB) ListAccounts(ctx context.Context, f AccountFilter, p Page) ([]*model.Account, bool, error) {
	out, more, err := list[model.Account](ctx, d.accountQuery(f), "accounts", p)
	return out, more, wrap("list accounts", err)
}

// CountAccounts counts accounts.
func (d *DB) CountAccounts(ctx context.Context, f AccountFilter) (int, error) {
	n, err := count(ctx, d.accountQuery(f), "accounts")
	return n, wrap("count accounts", err)
}

// AccountsByID reads accounts by id.
func (d *DB) AccountsByID(ctx context.Context, ids []int64) ([]*model.Account, error) {
	out, err := byIDs[model.Account](ctx, d, ids)
	return out, wrap("accounts by id", err)
}

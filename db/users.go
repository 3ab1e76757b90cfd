package db

import (
	"context"
	"strings"

	"gorm.io/gorm"

	"orchard/model"
)

// UserByID reads one user.
func (d *DB) UserByID(ctx context.Context, id int64) (*model.User, error) {
	var x model.User
	if err := d.with(ctx).Where("id = ?", id).Take(&x).Error; err != nil {
		return nil, wrap("user by id", notFound(err))
	}
	return &x, nil
}

// SaveUser inserts or updates a user.
func (d *DB) SaveUser(ctx context.Context, u *model.User) error {
	if u.ID == 0 {
		err := d.with(ctx).Create(u).Error
		if isDuplicate(err) {
			return wrap("save user", ErrDuplicate)
		}
		return wrap("save user", err)
	}
	return wrap("save user", d.with(ctx).Save(u).Error)
}

// UsersByExternalIDs reads users by the directory's ids.
func (d *DB) UsersByExternalIDs(ctx context.Context, ids []string) ([]*model.User, error) {
	var out []*model.User
	if len(ids) == 0 {
		return out, nil
	}
	err := d.with(ctx).Where("external_id IN ?", ids).Find(&out).Error
	return out, wrap("users by external ids", err)
}

// UserFilter selects users.
type UserFilter struct {
	Search  string
	GroupID int64
	Status  model.UserStatus
}

func (d *DB) userQuery(f UserFilter) *gorm.DB {
	q := d.gorm.Model(&model.User{})
	if f.Search != "" {
		like := "%" + escapeLike(strings.ToLower(f.Search)) + "%"
		q = q.Where("(LOWER(email) LIKE ? ESCAPE '!' OR LOWER(name) LIKE ? ESCAPE '!' OR LOWER(external_id) LIKE ? ESCAPE '!')", like, like, like)
	}
	if f.GroupID != 0 {
		q = q.Where("EXISTS (SELECT 1 FROM group_members gm WHERE gm.user_id = users.id AND gm.group_id = ?)", f.GroupID)
	}
	if f.Status != "" {
		q = q.Where("status = ?", f.Status)
	}
	return q
}

// ListUsers reads a page of users.
func (d *DB) ListUsers(ctx context.Context, f UserFilter, p Page) ([]*model.User, bool, error) {
	out, more, err := list[model.User](ctx, d.userQuery(f), "users", p)
	return out, more, wrap("list users", err)
}

// CountUsers counts users.
func (d *DB) CountUsers(ctx context.Context, f UserFilter) (int, error) {
	n, err := count(ctx, d.userQuery(f), "users")
	return n, wrap("count users", err)
}

// UsersByID reads users by id.
func (d *DB) UsersByID(ctx context.Context, ids []int64) ([]*model.User, error) {
	out, err := byIDs[model.User](ctx, d, ids)
	return out, wrap("users by id", err)
}

// UserByExternalID reads a user by the directory's id.
func (d *DB) UserByExternalID(ctx context.Context, externalID string) (*model.User, error) {
	var u model.User
	if err := d.with(ctx).Where("external_id = ?", externalID).Take(&u).Error; err != nil {
		return nil, wrap("user by external id", notFound(err))
	}
	return &u, nil
}

// UsersAfter reads up to limit users with an id above after, in id order: a sequential pass
// over the table a batch a statement (policy evaluation's full read, cheaper than an IN lookup
// per member when most users are covered).
func (d *DB) UsersAfter(ctx context.Context, after int64, limit int) ([]*model.User, error) {
	out, err := findAll[model.User](d.with(ctx).Where("id > ?", after).Order("id").Limit(limit))
	return out, wrap("users after", err)
}

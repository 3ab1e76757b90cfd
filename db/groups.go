package db

import (
	"context"
	"strings"

	"gorm.io/gorm"

	"orchard/model"
)

// GroupsByUser reads one page of groups per user.
func (d *DB) GroupsByUser(ctx context.Context, first int, pages []ChildPage) (map[int64][]*model.Group, error) {
	out, err := childrenOf[model.Group](ctx, d, relGroupsOfUser, "", nil, first, pages)
	return out, wrap("groups by user", err)
}

// CountGroupsByUser counts groups per user.
func (d *DB) CountGroupsByUser(ctx context.Context, parents []int64) (map[int64]int, error) {
	out, err := countChildren(ctx, d, relGroupsOfUser, "", nil, parents)
	return out, wrap("count groups by user", err)
}

// MembersByGroup reads one page of members per group.
func (d *DB) MembersByGroup(ctx context.Context, first int, pages []ChildPage) (map[int64][]*model.User, error) {
	out, err := childrenOf[model.User](ctx, d, relMembers, "", nil, first, pages)
	return out, wrap("members by group", err)
}

// CountMembersByGroup counts members per group.
func (d *DB) CountMembersByGroup(ctx context.Context, parents []int64) (map[int64]int, error) {
	out, err := countChildren(ctx, d, relMembers, "", nil, parents)
	return out, wrap("count members by group", err)
}

// GroupFilter selects groups.
type GroupFilter struct{ Search string }

func (d *DB) groupQuery(f GroupFilter) *gorm.DB {
	q := d.gorm.Model(&model.Group{})
	if f.Search != "" {
		like := "%" + escapeLike(strings.ToLower(f.Search)) + "%"
		q = q.Where("(LOWER(name) LIKE ? ESCAPE '!' OR LOWER(external_id) LIKE ? ESCAPE '!')", like, like)
	}
	return q
}

// ListGroups reads a page of groups.
func (d *DB) ListGroups(ctx context.Context, f GroupFilter, p Page) ([]*model.Group, bool, error) {
	out, more, err := list[model.Group](ctx, d.groupQuery(f), "`groups`", p)
	return out, more, wrap("list groups", err)
}

// CountGroups counts groups.
func (d *DB) CountGroups(ctx context.Context, f GroupFilter) (int, error) {
	n, err := count(ctx, d.groupQuery(f), "groups")
	return n, wrap("count groups", err)
}

// GroupsByID reads groups by id.
func (d *DB) GroupsByID(ctx context.Context, ids []int64) ([]*model.Group, error) {
	out, err := byIDs[model.Group](ctx, d, ids)
	return out, wrap("groups by id", err)
}

var relGroupsOfUser = Relation{Table: "`groups`", From: "`groups` JOIN group_members ON group_members.group_id = `groups`.id", ParentExpr: "group_members.user_id"}

var relMembers = Relation{Table: "users", From: "users JOIN group_members ON group_members.user_id = users.id", ParentExpr: "group_members.group_id"}

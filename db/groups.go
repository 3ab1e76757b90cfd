package db

import (
	"context"
	"strings"

	"gorm.io/gorm"

	"orchard/model"
)

// GroupsByUser reads one page of groups per user.
func (d *DB) GroupsByUser(ctx context.Context, first int, pages []ChildPage) (map[int64][]*model.Group, error) {
	return childrenOf[model.Group](ctx, d, relGroupsOfUser, "", nil, first, pages)
}

// CountGroupsByUser counts groups per user.
func (d *DB) CountGroupsByUser(ctx context.Context, parents []int64) (map[int64]int, error) {
	return countChildren(ctx, d, relGroupsOfUser, "", nil, parents)
}

// MembersByGroup reads one page of members per group.
func (d *DB) MembersByGroup(ctx context.Context, first int, pages []ChildPage) (map[int64][]*model.User, error) {
	return childrenOf[model.User](ctx, d, relMembers, "", nil, first, pages)
}

// CountMembersByGroup counts members per group.
func (d *DB) CountMembersByGroup(ctx context.Context, parents []int64) (map[int64]int, error) {
	return countChildren(ctx, d, relMembers, "", nil, parents)
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
	return list[model.Group](ctx, d.groupQuery(f), "`groups`", p)
}

// CountGroups counts groups.
func (d *DB) CountGroups(ctx context.Context, f GroupFilter) (int, error) {
	return count(ctx, d.groupQuery(f), "groups")
}

// GroupsByID reads groups by id.
func (d *DB) GroupsByID(ctx context.Context, ids []int64) ([]*model.Group, error) {
	return byIDs[model.Group](ctx, d, ids)
}

var relGroupsOfUser = Relation{Table: "`groups`", From: "`groups` JOIN group_members ON group_members.group_id = `groups`.id", ParentExpr: "group_members.user_id"}

var relMembers = Relation{Table: "users", From: "users JOIN group_members ON group_members.user_id = users.id", ParentExpr: "group_members.group_id"}

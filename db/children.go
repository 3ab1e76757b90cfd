package db

import (
	"context"
	"fmt"

	"orchard/model"
)

// Nested connections: each relation below lists, in one statement, a page of children for
// every parent the dataloader batched, and counts them per parent in another.

// AssignmentParent names the column that ties assignments to a parent.
type AssignmentParent string

const (
	AssignmentsOfAccount AssignmentParent = "account_id"
	AssignmentsOfPool    AssignmentParent = "pool_id"
	AssignmentsOfDevice  AssignmentParent = "device_id"
	AssignmentsOfUser    AssignmentParent = "user_id"
)

func (p AssignmentParent) relation() (Relation, error) {
	switch p {
	case AssignmentsOfAccount, AssignmentsOfPool, AssignmentsOfDevice, AssignmentsOfUser:
		return Relation{Table: "license_assignments", From: "license_assignments", ParentExpr: "license_assignments." + string(p)}, nil
	}
	return Relation{}, fmt.Errorf("unknown assignment parent %q", p)
}

func statusWhere(statuses []model.AssignmentStatus) (string, []any) {
	if len(statuses) == 0 {
		return "", nil
	}
	return "license_assignments.status IN ?", []any{statuses}
}

// AssignmentsByParent reads one page of assignments per parent.
func (d *DB) AssignmentsByParent(ctx context.Context, parent AssignmentParent, statuses []model.AssignmentStatus, first int, pages []ChildPage) (map[int64][]*model.LicenseAssignment, error) {
	r, err := parent.relation()
	if err != nil {
		return nil, err
	}
	w, args := statusWhere(statuses)
	return childrenOf[model.LicenseAssignment](ctx, d, r, w, args, first, pages)
}

// CountAssignmentsByParent counts assignments per parent.
func (d *DB) CountAssignmentsByParent(ctx context.Context, parent AssignmentParent, statuses []model.AssignmentStatus, parents []int64) (map[int64]int, error) {
	r, err := parent.relation()
	if err != nil {
		return nil, err
	}
	w, args := statusWhere(statuses)
	return countChildren(ctx, d, r, w, args, parents)
}

// PoolParent names the column that ties pools to a parent.
type PoolParent string

const (
	PoolsOfAccount PoolParent = "account_id"
	PoolsOfApp     PoolParent = "app_id"
)

func (p PoolParent) relation() (Relation, error) {
	switch p {
	case PoolsOfAccount, PoolsOfApp:
		return Relation{Table: "license_pools", From: "license_pools", ParentExpr: "license_pools." + string(p)}, nil
	}
	return Relation{}, fmt.Errorf("unknown pool parent %q", p)
}

// PoolsByParent reads one page of pools per parent.
func (d *DB) PoolsByParent(ctx context.Context, parent PoolParent, first int, pages []ChildPage) (map[int64][]*model.LicensePool, error) {
	r, err := parent.relation()
	if err != nil {
		return nil, err
	}
	return childrenOf[model.LicensePool](ctx, d, r, "", nil, first, pages)
}

// CountPoolsByParent counts pools per parent.
func (d *DB) CountPoolsByParent(ctx context.Context, parent PoolParent, parents []int64) (map[int64]int, error) {
	r, err := parent.relation()
	if err != nil {
		return nil, err
	}
	return countChildren(ctx, d, r, "", nil, parents)
}

var (
	relDeviceApps    = Relation{Table: "device_apps", From: "device_apps", ParentExpr: "device_apps.device_id"}
	relDevicesOfUser = Relation{Table: "devices", From: "devices", ParentExpr: "devices.user_id"}
	relGroupsOfUser  = Relation{Table: "`groups`", From: "`groups` JOIN group_members ON group_members.group_id = `groups`.id", ParentExpr: "group_members.user_id"}
	relRunsOfAccount = Relation{Table: "sync_runs", From: "sync_runs", ParentExpr: "sync_runs.account_id", Desc: true}
	relMembers       = Relation{Table: "users", From: "users JOIN group_members ON group_members.user_id = users.id", ParentExpr: "group_members.group_id"}
)

// DeviceAppsByDevice reads one page of inventory per device.
func (d *DB) DeviceAppsByDevice(ctx context.Context, first int, pages []ChildPage) (map[int64][]*model.DeviceApp, error) {
	return childrenOf[model.DeviceApp](ctx, d, relDeviceApps, "", nil, first, pages)
}

// CountDeviceAppsByDevice counts inventory entries per device.
func (d *DB) CountDeviceAppsByDevice(ctx context.Context, parents []int64) (map[int64]int, error) {
	return countChildren(ctx, d, relDeviceApps, "", nil, parents)
}

// DevicesByUser reads one page of devices per user.
func (d *DB) DevicesByUser(ctx context.Context, first int, pages []ChildPage) (map[int64][]*model.Device, error) {
	return childrenOf[model.Device](ctx, d, relDevicesOfUser, "", nil, first, pages)
}

// CountDevicesByUser counts devices per user.
func (d *DB) CountDevicesByUser(ctx context.Context, parents []int64) (map[int64]int, error) {
	return countChildren(ctx, d, relDevicesOfUser, "", nil, parents)
}

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

// SyncRunsByAccount reads one page of sync runs (newest first) per account.
func (d *DB) SyncRunsByAccount(ctx context.Context, first int, pages []ChildPage) (map[int64][]*model.SyncRun, error) {
	return childrenOf[model.SyncRun](ctx, d, relRunsOfAccount, "", nil, first, pages)
}

// CountSyncRunsByAccount counts sync runs per account.
func (d *DB) CountSyncRunsByAccount(ctx context.Context, parents []int64) (map[int64]int, error) {
	return countChildren(ctx, d, relRunsOfAccount, "", nil, parents)
}

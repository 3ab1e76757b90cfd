package db

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"orchard/model"
)

// Policy storage (doc/design.md §2.4): groups and their members (users and devices), license and app
// labels, the durable evaluation queue, waiting holders and departures. Every read an
// evaluation makes is a set read (a statement per kind of fact, IN lists bounded per engine),
// so its statement count does not grow with the number of holders beyond those bounds.

// GroupByExternalID reads a group by the directory's id.
func (d *DB) GroupByExternalID(ctx context.Context, externalID string) (*model.Group, error) {
	g, err := findOne[model.Group](d.with(ctx).Where("external_id = ?", externalID))
	return g, wrap("group by external id", err)
}

// GroupByID reads a group.
func (d *DB) GroupByID(ctx context.Context, id int64) (*model.Group, error) {
	g, err := findOne[model.Group](d.with(ctx).Where("id = ?", id))
	return g, wrap("group by id", err)
}

// SaveGroup inserts or updates a group.
func (d *DB) SaveGroup(ctx context.Context, g *model.Group) error {
	if g.ID == 0 {
		err := d.with(ctx).Create(g).Error
		if isDuplicate(err) {
			return ErrDuplicate
		}
		return wrap("insert group", err)
	}
	return wrap("save group", d.with(ctx).Save(g).Error)
}

// DynamicGroups reads every group with a rule.
func (d *DB) DynamicGroups(ctx context.Context) ([]*model.Group, error) {
	gs, err := findAll[model.Group](d.with(ctx).Where("rule IS NOT NULL").Order("id"))
	return gs, wrap("dynamic groups", err)
}

// GroupMemberIDs reads the ids of a group's users and devices.
func (d *DB) GroupMemberIDs(ctx context.Context, groupID int64) (users, devices []int64, err error) {
	if err = d.with(ctx).Model(&model.GroupMember{}).Where("group_id = ?", groupID).Order("user_id").Pluck("user_id", &users).Error; err != nil {
		return nil, nil, fmt.Errorf("read members of group %d: %w", groupID, err)
	}
	if err = d.with(ctx).Model(&model.GroupDevice{}).Where("group_id = ?", groupID).Order("device_id").Pluck("device_id", &devices).Error; err != nil {
		return nil, nil, fmt.Errorf("read devices of group %d: %w", groupID, err)
	}
	return users, devices, nil
}

// AddGroupMembers puts users and devices in a group and returns those that were not in it.
func (d *DB) AddGroupMembers(ctx context.Context, groupID int64, userIDs, deviceIDs []int64, now time.Time) (users, devices []int64, err error) {
	if len(userIDs)+len(deviceIDs) == 1 {
		// One member: the insert alone says whether it was there already (no row inserted).
		var res *gorm.DB
		if len(userIDs) == 1 {
			res = d.with(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&model.GroupMember{GroupID: groupID, UserID: userIDs[0], CreatedAt: now})
		} else {
			res = d.with(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&model.GroupDevice{GroupID: groupID, DeviceID: deviceIDs[0], CreatedAt: now})
		}
		if res.Error != nil {
			return nil, nil, fmt.Errorf("add a member to group %d: %w", groupID, res.Error)
		}
		if res.RowsAffected == 0 {
			return nil, nil, nil
		}
		return userIDs, deviceIDs, nil
	}
	for _, chunk := range chunks(userIDs, d.inChunk()) {
		var have []int64
		if err := d.with(ctx).Model(&model.GroupMember{}).Where("group_id = ? AND user_id IN ?", groupID, chunk).Pluck("user_id", &have).Error; err != nil {
			return nil, nil, fmt.Errorf("read members of group %d: %w", groupID, err)
		}
		rows := []*model.GroupMember{}
		for _, id := range missing(chunk, have) {
			rows = append(rows, &model.GroupMember{GroupID: groupID, UserID: id, CreatedAt: now})
			users = append(users, id)
		}
		if len(rows) > 0 {
			if err := d.with(ctx).Clauses(clause.OnConflict{DoNothing: true}).CreateInBatches(rows, d.batchOf(rows)).Error; err != nil {
				return nil, nil, fmt.Errorf("add members to group %d: %w", groupID, err)
			}
		}
	}
	for _, chunk := range chunks(deviceIDs, d.inChunk()) {
		var have []int64
		if err := d.with(ctx).Model(&model.GroupDevice{}).Where("group_id = ? AND device_id IN ?", groupID, chunk).Pluck("device_id", &have).Error; err != nil {
			return nil, nil, fmt.Errorf("read devices of group %d: %w", groupID, err)
		}
		rows := []*model.GroupDevice{}
		for _, id := range missing(chunk, have) {
			rows = append(rows, &model.GroupDevice{GroupID: groupID, DeviceID: id, CreatedAt: now})
			devices = append(devices, id)
		}
		if len(rows) > 0 {
			if err := d.with(ctx).Clauses(clause.OnConflict{DoNothing: true}).CreateInBatches(rows, d.batchOf(rows)).Error; err != nil {
				return nil, nil, fmt.Errorf("add devices to group %d: %w", groupID, err)
			}
		}
	}
	return users, devices, nil
}

// missing returns the ids of want (deduplicated, in order) that are not in have.
func missing(want, have []int64) []int64 {
	h := make(map[int64]bool, len(have))
	for _, id := range have {
		h[id] = true
	}
	var out []int64
	for _, id := range want {
		if !h[id] {
			h[id] = true
			out = append(out, id)
		}
	}
	return out
}

// RemoveGroupMembers takes users and devices out of a group and returns those that were in it.
func (d *DB) RemoveGroupMembers(ctx context.Context, groupID int64, userIDs, deviceIDs []int64) (users, devices []int64, err error) {
	if len(userIDs)+len(deviceIDs) == 1 {
		// One member: the delete alone says whether it was there (a row deleted).
		var res *gorm.DB
		if len(userIDs) == 1 {
			res = d.with(ctx).Where("group_id = ? AND user_id = ?", groupID, userIDs[0]).Delete(&model.GroupMember{})
		} else {
			res = d.with(ctx).Where("group_id = ? AND device_id = ?", groupID, deviceIDs[0]).Delete(&model.GroupDevice{})
		}
		if res.Error != nil {
			return nil, nil, fmt.Errorf("remove a member from group %d: %w", groupID, res.Error)
		}
		if res.RowsAffected == 0 {
			return nil, nil, nil
		}
		return userIDs, deviceIDs, nil
	}
	for _, chunk := range chunks(userIDs, d.inChunk()) {
		var have []int64
		if err := d.with(ctx).Model(&model.GroupMember{}).Where("group_id = ? AND user_id IN ?", groupID, chunk).Pluck("user_id", &have).Error; err != nil {
			return nil, nil, fmt.Errorf("read members of group %d: %w", groupID, err)
		}
		if len(have) > 0 {
			if err := d.with(ctx).Where("group_id = ? AND user_id IN ?", groupID, have).Delete(&model.GroupMember{}).Error; err != nil {
				return nil, nil, fmt.Errorf("remove members from group %d: %w", groupID, err)
			}
			users = append(users, have...)
		}
	}
	for _, chunk := range chunks(deviceIDs, d.inChunk()) {
		var have []int64
		if err := d.with(ctx).Model(&model.GroupDevice{}).Where("group_id = ? AND device_id IN ?", groupID, chunk).Pluck("device_id", &have).Error; err != nil {
			return nil, nil, fmt.Errorf("read devices of group %d: %w", groupID, err)
		}
		if len(have) > 0 {
			if err := d.with(ctx).Where("group_id = ? AND device_id IN ?", groupID, have).Delete(&model.GroupDevice{}).Error; err != nil {
				return nil, nil, fmt.Errorf("remove devices from group %d: %w", groupID, err)
			}
			devices = append(devices, have...)
		}
	}
	return users, devices, nil
}

// GroupIDsOfUser and GroupIDsOfDevice read the groups a member is in.
func (d *DB) GroupIDsOfUser(ctx context.Context, userID int64) ([]int64, error) {
	var ids []int64
	err := d.with(ctx).Model(&model.GroupMember{}).Where("user_id = ?", userID).Order("group_id").Pluck("group_id", &ids).Error
	return ids, wrap("groups of user", err)
}

// GroupIDsOfDevice reads the groups a device is in.
func (d *DB) GroupIDsOfDevice(ctx context.Context, deviceID int64) ([]int64, error) {
	var ids []int64
	err := d.with(ctx).Model(&model.GroupDevice{}).Where("device_id = ?", deviceID).Order("group_id").Pluck("group_id", &ids).Error
	return ids, wrap("groups of device", err)
}

// LeaveAllGroups takes a user (userID) or a device (deviceID) out of every group and returns
// the groups it was in.
func (d *DB) LeaveAllGroups(ctx context.Context, userID, deviceID int64) ([]int64, error) {
	var ids []int64
	var err error
	if userID != 0 {
		if ids, err = d.GroupIDsOfUser(ctx, userID); err == nil && len(ids) > 0 {
			err = d.with(ctx).Where("user_id = ?", userID).Delete(&model.GroupMember{}).Error
		}
	} else {
		if ids, err = d.GroupIDsOfDevice(ctx, deviceID); err == nil && len(ids) > 0 {
			err = d.with(ctx).Where("device_id = ?", deviceID).Delete(&model.GroupDevice{}).Error
		}
	}
	if err != nil {
		return nil, fmt.Errorf("leave groups: %w", err)
	}
	return ids, nil
}

// InsertDepartures records who left which group.
func (d *DB) InsertDepartures(ctx context.Context, rows []*model.PolicyDeparture) error {
	if len(rows) == 0 {
		return nil
	}
	return wrap("insert departures", d.with(ctx).CreateInBatches(rows, d.batchOf(rows)).Error)
}

// DeparturesOfGroups reads the departures from the given groups since a time, newest first.
func (d *DB) DeparturesOfGroups(ctx context.Context, groupIDs []int64, since time.Time) ([]*model.PolicyDeparture, error) {
	var out []*model.PolicyDeparture
	for _, chunk := range chunks(groupIDs, d.inChunk()) {
		rs, err := findAll[model.PolicyDeparture](d.with(ctx).Where("group_id IN ? AND at >= ?", chunk, since))
		if err != nil {
			return nil, fmt.Errorf("read departures: %w", err)
		}
		out = append(out, rs...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID > out[j].ID })
	return out, nil
}

// PruneDepartures deletes departures older than a time.
func (d *DB) PruneDepartures(ctx context.Context, before time.Time) error {
	return wrap("prune departures", d.with(ctx).Where("at < ?", before).Delete(&model.PolicyDeparture{}).Error)
}

// GroupMembers maps each member of the given groups to the groups (of those) it is in.
type GroupMembers struct {
	Users   map[int64][]int64
	Devices map[int64][]int64
}

// MembersOfGroups reads the users and devices of the given groups.
func (d *DB) MembersOfGroups(ctx context.Context, groupIDs []int64) (*GroupMembers, error) {
	out := &GroupMembers{Users: map[int64][]int64{}, Devices: map[int64][]int64{}}
	if len(groupIDs) == 0 {
		return out, nil
	}
	// Plain scans of two integer columns: the full evaluation reads every membership of the
	// fleet here, and GORM's reflection per row would cost more than the query.
	read := func(what string, q *gorm.DB, into map[int64][]int64) error {
		rows, err := q.Rows()
		if err != nil {
			return fmt.Errorf("read group %s: %w", what, err)
		}
		defer rows.Close()
		for rows.Next() {
			var member, group int64
			if err := rows.Scan(&member, &group); err != nil {
				return fmt.Errorf("read group %s: %w", what, err)
			}
			into[member] = append(into[member], group)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read group %s: %w", what, err)
		}
		return nil
	}
	if err := read("members", d.with(ctx).Model(&model.GroupMember{}).Select("user_id, group_id").Where("group_id IN ?", groupIDs).Order("user_id, group_id"), out.Users); err != nil {
		return nil, fmt.Errorf("members of groups: %w", err)
	}
	if err := read("devices", d.with(ctx).Model(&model.GroupDevice{}).Select("device_id, group_id").Where("group_id IN ?", groupIDs).Order("device_id, group_id"), out.Devices); err != nil {
		return nil, fmt.Errorf("members of groups: %w", err)
	}
	return out, nil
}

// SaveLabel inserts or updates a label.
func (d *DB) SaveLabel(ctx context.Context, l *model.Label) error {
	if l.ID == 0 {
		return wrap("insert label", d.with(ctx).Create(l).Error)
	}
	return wrap("save label", d.with(ctx).Save(l).Error)
}

// LabelByID reads a label (deleted ones too).
func (d *DB) LabelByID(ctx context.Context, id int64) (*model.Label, error) {
	l, err := findOne[model.Label](d.with(ctx).Where("id = ?", id))
	return l, wrap("label by id", err)
}

// LabelsByID reads labels by id.
func (d *DB) LabelsByID(ctx context.Context, ids []int64) ([]*model.Label, error) {
	ls, err := byIDs[model.Label](ctx, d, ids)
	return ls, wrap("labels by id", err)
}

// LabelsOfApp reads an app's labels of a kind, deleted ones included, in id order.
func (d *DB) LabelsOfApp(ctx context.Context, appID int64, kind model.LabelKind) ([]*model.Label, error) {
	ls, err := findAll[model.Label](d.with(ctx).Where("app_id = ? AND kind = ?", appID, kind).Order("id"))
	return ls, wrap("labels of app", err)
}

// LabelGroupIDs maps each label to its groups.
func (d *DB) LabelGroupIDs(ctx context.Context, labelIDs []int64) (map[int64][]int64, error) {
	out := map[int64][]int64{}
	if len(labelIDs) == 0 {
		return out, nil
	}
	var rows []model.LabelGroup
	if err := d.with(ctx).Model(&model.LabelGroup{}).Where("label_id IN ?", labelIDs).Order("label_id, group_id").Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("read label groups: %w", err)
	}
	for _, r := range rows {
		out[r.LabelID] = append(out[r.LabelID], r.GroupID)
	}
	return out, nil
}

// LabelAccountIDs maps each label to its accounts, in priority order.
func (d *DB) LabelAccountIDs(ctx context.Context, labelIDs []int64) (map[int64][]int64, error) {
	out := map[int64][]int64{}
	if len(labelIDs) == 0 {
		return out, nil
	}
	var rows []model.LabelAccount
	if err := d.with(ctx).Model(&model.LabelAccount{}).Where("label_id IN ?", labelIDs).Order("label_id, position").Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("read label accounts: %w", err)
	}
	for _, r := range rows {
		out[r.LabelID] = append(out[r.LabelID], r.AccountID)
	}
	return out, nil
}

// SetLabelGroups replaces a label's groups.
func (d *DB) SetLabelGroups(ctx context.Context, labelID int64, groupIDs []int64) error {
	if err := d.with(ctx).Where("label_id = ?", labelID).Delete(&model.LabelGroup{}).Error; err != nil {
		return fmt.Errorf("clear label groups: %w", err)
	}
	rows := make([]*model.LabelGroup, 0, len(groupIDs))
	for _, g := range groupIDs {
		rows = append(rows, &model.LabelGroup{LabelID: labelID, GroupID: g})
	}
	if len(rows) == 0 {
		return nil
	}
	return wrap("insert label groups", d.with(ctx).CreateInBatches(rows, d.batchOf(rows)).Error)
}

// SetLabelAccounts replaces a label's accounts, in priority order.
func (d *DB) SetLabelAccounts(ctx context.Context, labelID int64, accountIDs []int64) error {
	if err := d.with(ctx).Where("label_id = ?", labelID).Delete(&model.LabelAccount{}).Error; err != nil {
		return fmt.Errorf("clear label accounts: %w", err)
	}
	rows := make([]*model.LabelAccount, 0, len(accountIDs))
	for i, a := range accountIDs {
		rows = append(rows, &model.LabelAccount{LabelID: labelID, AccountID: a, Position: i})
	}
	if len(rows) == 0 {
		return nil
	}
	return wrap("insert label accounts", d.with(ctx).CreateInBatches(rows, d.batchOf(rows)).Error)
}

// DeleteLabels removes labels for good (app labels replaced by setAppLabels).
func (d *DB) DeleteLabels(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	for _, q := range []any{&model.LabelGroup{}, &model.LabelAccount{}, &model.PolicyWaiting{}} {
		if err := d.with(ctx).Where("label_id IN ?", ids).Delete(q).Error; err != nil {
			return fmt.Errorf("delete labels: %w", err)
		}
	}
	return wrap("delete labels", d.with(ctx).Where("id IN ?", ids).Delete(&model.Label{}).Error)
}

// AppsLabelledForGroups returns the apps with a live label (of either kind) on any of the
// groups.
func (d *DB) AppsLabelledForGroups(ctx context.Context, groupIDs []int64) ([]int64, error) {
	var ids []int64
	if len(groupIDs) == 0 {
		return ids, nil
	}
	err := d.with(ctx).Model(&model.Label{}).Joins("JOIN label_groups lg ON lg.label_id = labels.id").
		Where("lg.group_id IN ? AND labels.deleted_at IS NULL", groupIDs).Distinct("labels.app_id").Order("labels.app_id").Pluck("labels.app_id", &ids).Error
	if err != nil {
		return nil, fmt.Errorf("read labelled apps: %w", err)
	}
	return ids, nil
}

// AppsUnderPolicy returns every app a full evaluation must look at: those with a license label
// (deleted ones too, whose licenses must be handed over or taken back).
func (d *DB) AppsUnderPolicy(ctx context.Context) ([]int64, error) {
	var ids []int64
	err := d.with(ctx).Model(&model.Label{}).Where("kind = ?", model.LabelLicense).Distinct("app_id").Order("app_id").Pluck("app_id", &ids).Error
	if err != nil {
		return nil, fmt.Errorf("read apps under policy: %w", err)
	}
	return ids, nil
}

// LicenseLabelFilter selects license labels.
type LicenseLabelFilter struct {
	AppID   int64
	GroupID int64
}

func (d *DB) licenseLabelQuery(f LicenseLabelFilter) *gorm.DB {
	q := d.gorm.Model(&model.Label{}).Where("labels.kind = ? AND labels.deleted_at IS NULL", model.LabelLicense)
	if f.AppID != 0 {
		q = q.Where("labels.app_id = ?", f.AppID)
	}
	if f.GroupID != 0 {
		q = q.Where("EXISTS (SELECT 1 FROM label_groups lg WHERE lg.label_id = labels.id AND lg.group_id = ?)", f.GroupID)
	}
	return q
}

// ListLicenseLabels reads a page of live license labels.
func (d *DB) ListLicenseLabels(ctx context.Context, f LicenseLabelFilter, p Page) ([]*model.Label, bool, error) {
	ls, more, err := list[model.Label](ctx, d.licenseLabelQuery(f), "labels", p)
	return ls, more, wrap("list license labels", err)
}

// CountLicenseLabels counts live license labels.
func (d *DB) CountLicenseLabels(ctx context.Context, f LicenseLabelFilter) (int, error) {
	n, err := count(ctx, d.licenseLabelQuery(f), "labels")
	return n, wrap("count license labels", err)
}

// LiveLabelsOnGroups reads the live labels (of both kinds) on any of the groups.
func (d *DB) LiveLabelsOnGroups(ctx context.Context, groupIDs []int64) ([]*model.Label, error) {
	if len(groupIDs) == 0 {
		return []*model.Label{}, nil
	}
	ls, err := findAll[model.Label](d.with(ctx).Where("deleted_at IS NULL AND EXISTS (SELECT 1 FROM label_groups lg WHERE lg.label_id = labels.id AND lg.group_id IN ?)", groupIDs).Order("id"))
	return ls, wrap("live labels on groups", err)
}

// ActiveAssignmentsOfAppAll reads every active assignment of an app, in id order.
func (d *DB) ActiveAssignmentsOfAppAll(ctx context.Context, appID int64) ([]*model.LicenseAssignment, error) {
	out, err := findAll[model.LicenseAssignment](d.with(ctx).Where("app_id = ? AND status IN ?", appID, activeStatuses).Order("id"))
	if err != nil {
		return nil, fmt.Errorf("read assignments of app %d: %w", appID, err)
	}
	return out, nil
}

// FailedLabelAssignments reads an app's assignments made by labels that Apple refused since a
// time (a holder Apple refused is not asked for again at every evaluation).
func (d *DB) FailedLabelAssignments(ctx context.Context, appID int64, since time.Time) ([]*model.LicenseAssignment, error) {
	as, err := findAll[model.LicenseAssignment](d.with(ctx).Where("app_id = ? AND status = ? AND label_id IS NOT NULL AND updated_at >= ?", appID, model.AssignmentFailed, since).Order("id"))
	return as, wrap("failed label assignments", err)
}

// SetAssignmentLabel hands assignments to another label (their holder is still covered by it).
func (d *DB) SetAssignmentLabel(ctx context.Context, ids []int64, labelID int64, causedBy string) error {
	for _, chunk := range chunks(ids, d.inChunk()) {
		if err := d.with(ctx).Model(&model.LicenseAssignment{}).Where("id IN ?", chunk).
			UpdateColumns(map[string]any{"label_id": labelID, "caused_by": causedBy, "label_out_since": nil, "updated_at": Now()}).Error; err != nil {
			return fmt.Errorf("relabel assignments: %w", err)
		}
	}
	return nil
}

// SetLabelOutSince starts (a time) or ends (nil) the grace time of assignments.
func (d *DB) SetLabelOutSince(ctx context.Context, ids []int64, since *time.Time) error {
	for _, chunk := range chunks(ids, d.inChunk()) {
		if err := d.with(ctx).Model(&model.LicenseAssignment{}).Where("id IN ?", chunk).UpdateColumn("label_out_since", since).Error; err != nil {
			return fmt.Errorf("set grace: %w", err)
		}
	}
	return nil
}

// WaitingOfApp reads the waiting holders of an app's labels.
func (d *DB) WaitingOfApp(ctx context.Context, appID int64) ([]*model.PolicyWaiting, error) {
	ws, err := findAll[model.PolicyWaiting](d.with(ctx).Where("app_id = ?", appID).Order("first_covered_at, holder_key"))
	return ws, wrap("waiting holders of app", err)
}

// ReplaceWaiting replaces the waiting holders of an app's labels.
func (d *DB) ReplaceWaiting(ctx context.Context, appID int64, rows []*model.PolicyWaiting) error {
	if err := d.with(ctx).Where("app_id = ?", appID).Delete(&model.PolicyWaiting{}).Error; err != nil {
		return fmt.Errorf("clear waiting holders: %w", err)
	}
	if len(rows) == 0 {
		return nil
	}
	return wrap("insert waiting holders", d.with(ctx).CreateInBatches(rows, d.batchOf(rows)).Error)
}

// WaitingByLabel reads, for every requested label, one page of its waiting holders in fair order
// (first covered first, then by holder key), first+1 rows to learn whether more follow, in one
// statement: a UNION ALL of per-label queries, each served by the table's primary key. The
// order is by time, not id, so a page's After is an offset into it (the connection's cursor is
// a position), not an id.
func (d *DB) WaitingByLabel(ctx context.Context, first int, pages []ChildPage) (map[int64][]*model.PolicyWaiting, error) {
	out := make(map[int64][]*model.PolicyWaiting, len(pages))
	if len(pages) == 0 {
		return out, nil
	}
	var sb strings.Builder
	args := make([]any, 0, len(pages))
	for i, p := range pages {
		if i > 0 {
			sb.WriteString(" UNION ALL ")
		}
		fmt.Fprintf(&sb, "SELECT * FROM (SELECT policy_waiting.*, label_id AS orchard_parent FROM policy_waiting WHERE label_id = ?"+
			" ORDER BY first_covered_at, holder_key LIMIT %d OFFSET %d) AS c%d", first+1, max(p.After, 0), i)
		args = append(args, p.ParentID)
	}
	var rows []withParent[model.PolicyWaiting]
	if err := d.with(ctx).Raw(sb.String(), args...).Scan(&rows).Error; err != nil {
		return nil, wrap("waiting holders by label", err)
	}
	for i := range rows {
		w := rows[i].Row
		out[rows[i].OrchardParent] = append(out[rows[i].OrchardParent], &w)
	}
	return out, nil
}

// CountWaitingByLabel counts waiting holders per label.
func (d *DB) CountWaitingByLabel(ctx context.Context, labelIDs []int64) (map[int64]int, error) {
	out := map[int64]int{}
	if len(labelIDs) == 0 {
		return out, nil
	}
	var rows []struct {
		LabelID int64
		N       int
	}
	if err := d.with(ctx).Model(&model.PolicyWaiting{}).Select("label_id, COUNT(*) AS n").Where("label_id IN ?", labelIDs).Group("label_id").Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("count waiting holders: %w", err)
	}
	for _, r := range rows {
		out[r.LabelID] = r.N
	}
	return out, nil
}

// WaitingOfHolder reads the labels a holder waits for.
func (d *DB) WaitingOfHolder(ctx context.Context, userID, deviceID int64) ([]*model.PolicyWaiting, error) {
	var q *gorm.DB
	if userID != 0 {
		q = d.with(ctx).Where("user_id = ?", userID)
	} else {
		q = d.with(ctx).Where("device_id = ?", deviceID)
	}
	ws, err := findAll[model.PolicyWaiting](q.Order("first_covered_at"))
	return ws, wrap("waiting holders of holder", err)
}

// LockLabelCap locks a label's row (on MySQL; SQLite's writers are serialised by their
// transaction) and reads its cap, for an evaluation about to assign under it: evaluations that
// assign through one capped label take the lock one after the other, and each counts the
// label's licenses after the one before it committed (READ COMMITTED).
func (d *DB) LockLabelCap(ctx context.Context, labelID int64) (*int64, error) {
	var rows []struct{ CapCount *int64 }
	if err := d.forUpdate(d.with(ctx).Model(&model.Label{}).Select("cap_count").Where("id = ?", labelID)).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("lock label %d: %w", labelID, err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("lock label %d: %w", labelID, model.ErrNotFound)
	}
	return rows[0].CapCount, nil
}

// CountLabelAssignments counts the active assignments each label holds.
func (d *DB) CountLabelAssignments(ctx context.Context, labelIDs []int64) (map[int64]int, error) {
	out := map[int64]int{}
	if len(labelIDs) == 0 {
		return out, nil
	}
	var rows []struct {
		LabelID int64
		N       int
	}
	if err := d.with(ctx).Model(&model.LicenseAssignment{}).Select("label_id, COUNT(*) AS n").Where("label_id IN ? AND status IN ?", labelIDs, activeStatuses).Group("label_id").Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("count label assignments: %w", err)
	}
	for _, r := range rows {
		out[r.LabelID] = r.N
	}
	return out, nil
}

// EnqueuePolicy records what must be evaluated; call it in the transaction of the change that
// makes it necessary.
func (d *DB) EnqueuePolicy(ctx context.Context, items ...*model.PolicyQueueItem) error {
	if len(items) == 0 {
		return nil
	}
	return wrap("enqueue policy evaluations", d.with(ctx).CreateInBatches(items, d.batchOf(items)).Error)
}

// DuePolicyItems reads the queue rows due at now, oldest first.
func (d *DB) DuePolicyItems(ctx context.Context, now time.Time, limit int) ([]*model.PolicyQueueItem, error) {
	items, err := findAll[model.PolicyQueueItem](d.with(ctx).Where("not_before <= ?", now).Order("id").Limit(limit))
	return items, wrap("due policy evaluations", err)
}

// DeletePolicyItems removes evaluated queue rows.
func (d *DB) DeletePolicyItems(ctx context.Context, ids []int64) error {
	for _, chunk := range chunks(ids, d.inChunk()) {
		if err := d.with(ctx).Where("id IN ?", chunk).Delete(&model.PolicyQueueItem{}).Error; err != nil {
			return fmt.Errorf("delete policy queue rows: %w", err)
		}
	}
	return nil
}

// CountPolicyQueue counts queue rows due at now (0 means evaluation has caught up).
func (d *DB) CountPolicyQueue(ctx context.Context, now time.Time) (int, error) {
	n, err := count(ctx, d.gorm.Model(&model.PolicyQueueItem{}).Where("not_before <= ?", now), "policy_queue")
	return n, wrap("count policy evaluations", err)
}

// InstallCommandExists reports whether an install of the app was ever queued for the device and
// not cancelled or failed (one install on a shared iPad serves every user of it).
func (d *DB) InstallCommandExists(ctx context.Context, deviceID, appID int64) (bool, error) {
	var n int64
	err := d.with(ctx).Model(&model.DeviceCommand{}).Where("device_id = ? AND app_id = ? AND kind = ? AND status IN ?", deviceID, appID, model.CommandInstall,
		[]model.CommandStatus{model.CommandPending, model.CommandAcknowledged}).Count(&n).Error
	return n > 0, wrap("install command exists", err)
}

// EnqueueWaitingApps queues the evaluation of every app with waiting holders that has a pool in
// the account: the account may have licenses again (a sync found a purchase, a reclaim
// completed). One statement.
func (d *DB) EnqueueWaitingApps(ctx context.Context, accountID int64, reason string) error {
	now := Now()
	err := d.with(ctx).Exec("INSERT INTO policy_queue (app_id, reason, not_before, created_at) SELECT DISTINCT w.app_id, ?, ?, ? FROM policy_waiting w "+
		"WHERE EXISTS (SELECT 1 FROM license_pools p WHERE p.app_id = w.app_id AND p.account_id = ?)", reason, now, now, accountID).Error
	if err != nil {
		return fmt.Errorf("queue evaluation of waiting holders: %w", err)
	}
	return nil
}

var relDevicesOfGroup = Relation{Table: "devices", From: "devices JOIN group_devices ON group_devices.device_id = devices.id", ParentExpr: "group_devices.group_id"}

// DevicesByGroup reads one page of devices per group.
func (d *DB) DevicesByGroup(ctx context.Context, first int, pages []ChildPage) (map[int64][]*model.Device, error) {
	m, err := childrenOf[model.Device](ctx, d, relDevicesOfGroup, "", nil, first, pages)
	return m, wrap("devices by group", err)
}

// CountDevicesByGroup counts devices per group.
func (d *DB) CountDevicesByGroup(ctx context.Context, parents []int64) (map[int64]int, error) {
	m, err := countChildren(ctx, d, relDevicesOfGroup, "", nil, parents)
	return m, wrap("count devices by group", err)
}

// LicenseLabelsByGroup maps groups to the live license labels that apply to them, in label id
// order, in one statement.
func (d *DB) LicenseLabelsByGroup(ctx context.Context, groupIDs []int64) (map[int64][]*model.Label, error) {
	out := map[int64][]*model.Label{}
	if len(groupIDs) == 0 {
		return out, nil
	}
	var rows []withParent[model.Label]
	if err := d.with(ctx).Raw("SELECT labels.*, label_groups.group_id AS orchard_parent FROM labels JOIN label_groups ON label_groups.label_id = labels.id"+
		" WHERE label_groups.group_id IN ? AND labels.kind = ? AND labels.deleted_at IS NULL ORDER BY labels.id", groupIDs, model.LabelLicense).Scan(&rows).Error; err != nil {
		return nil, wrap("license labels by group", err)
	}
	for i := range rows {
		l := rows[i].Row
		out[rows[i].OrchardParent] = append(out[rows[i].OrchardParent], &l)
	}
	return out, nil
}

// EnqueueAppsWithWaiting queues the evaluation of those of the apps that have waiting holders
// (a license came back to one of their pools). One statement.
func (d *DB) EnqueueAppsWithWaiting(ctx context.Context, appIDs []int64, reason string) error {
	if len(appIDs) == 0 {
		return nil
	}
	now := Now()
	err := d.with(ctx).Exec("INSERT INTO policy_queue (app_id, reason, not_before, created_at) SELECT DISTINCT app_id, ?, ?, ? FROM policy_waiting WHERE app_id IN ?",
		reason, now, now, appIDs).Error
	if err != nil {
		return fmt.Errorf("queue evaluation of apps with waiting holders: %w", err)
	}
	return nil
}

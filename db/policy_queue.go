package db

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"time"

	"orchard/model"
)

// Incremental policy evaluation (doc/design.md §2.4): the queue rows that name one holder of
// one app, and the reads that give the evaluation the facts of those holders only — their
// memberships, devices, users, assignments and waiting rows — plus the few app-wide aggregates
// the plan needs to stay fair (how many licenses each label holds, who waits ahead), each a set
// read whose statement count does not depend on the size of the fleet.

// HolderRef names a holder to evaluate for an app: a user or a device.
type HolderRef struct {
	AppID    int64
	UserID   int64
	DeviceID int64
}

// EnqueuePolicyHolders queues the evaluation of holders, one row per app and holder, in the
// transaction of the change that makes it necessary: it builds the rows and leaves the insert
// to EnqueuePolicy, the queue's one writer.
func (d *DB) EnqueuePolicyHolders(ctx context.Context, refs []HolderRef, reason string, notBefore time.Time) error {
	if len(refs) == 0 {
		return nil
	}
	now := Now()
	items := make([]*model.PolicyQueueItem, 0, len(refs))
	for _, r := range refs {
		it := &model.PolicyQueueItem{Reason: reason, NotBefore: notBefore, CreatedAt: now}
		app := r.AppID
		it.AppID = &app
		if r.UserID != 0 {
			u := r.UserID
			it.UserID = &u
		}
		if r.DeviceID != 0 {
			dv := r.DeviceID
			it.DeviceID = &dv
		}
		items = append(items, it)
	}
	return wrap("enqueue policy holders", d.EnqueuePolicy(ctx, items...))
}

// PolicyLabels are an app's labels of both kinds (deleted ones too) with their groups and, for
// license labels, their accounts in priority order. Groups, when read, holds the labels'
// groups with their names only (id, external id, name: what a plan words its reasons with).
type PolicyLabels struct {
	Labels     []*model.Label
	GroupsOf   map[int64][]int64
	AccountsOf map[int64][]int64
	Groups     map[int64]*model.Group
}

// LabelsOfAppWithLinks reads an app's labels with their groups (and the groups' names) and
// accounts in one statement, locking the labels' rows on MySQL (SQLite's writers are
// serialised by their transaction): inside a transaction, a per-holder evaluation of the app
// holds them until it commits, so that evaluations of one app run one after the other.
func (d *DB) LabelsOfAppWithLinks(ctx context.Context, appID int64) (*PolicyLabels, error) {
	out, err := d.lockedLabelsWithLinks(ctx, "labels.app_id = ?", appID)
	if err != nil {
		return nil, fmt.Errorf("read labels of app %d: %w", appID, err)
	}
	return out, nil
}

// LabelsOfGroupsAppsWithLinks is LabelsOfAppWithLinks for every app with a live label on any
// of the groups, in one statement: a membership change reads the policy of the apps it
// concerns at once. No groups, no statement.
func (d *DB) LabelsOfGroupsAppsWithLinks(ctx context.Context, groupIDs []int64) (*PolicyLabels, error) {
	if len(groupIDs) == 0 {
		return &PolicyLabels{Labels: []*model.Label{}, GroupsOf: map[int64][]int64{}, AccountsOf: map[int64][]int64{}, Groups: map[int64]*model.Group{}}, nil
	}
	out, err := d.lockedLabelsWithLinks(ctx, "labels.app_id IN (SELECT l2.app_id FROM labels l2 JOIN label_groups lg ON lg.label_id = l2.id WHERE lg.group_id IN ? AND l2.deleted_at IS NULL)", groupIDs)
	if err != nil {
		return nil, fmt.Errorf("read labels of the apps of groups: %w", err)
	}
	return out, nil
}

// lockedLabelsWithLinks reads the labels that where selects, each joined to its links: a row
// per group (with its name) and per account (with its position), or one row without a link.
func (d *DB) lockedLabelsWithLinks(ctx context.Context, where string, args ...any) (*PolicyLabels, error) {
	q := "SELECT labels.*, x.link AS orchard_link, x.ref AS orchard_ref, x.pos AS orchard_pos, x.gext AS orchard_gext, x.gname AS orchard_gname FROM labels" +
		" LEFT JOIN (SELECT label_groups.label_id, 'g' AS link, label_groups.group_id AS ref, 0 AS pos, COALESCE(g.external_id, '') AS gext, COALESCE(g.name, '') AS gname" +
		" FROM label_groups LEFT JOIN `groups` g ON g.id = label_groups.group_id" +
		" UNION ALL SELECT label_id, 'a', account_id, position, '', '' FROM label_accounts) x ON x.label_id = labels.id" +
		" WHERE " + where + " ORDER BY labels.id, x.link, x.pos, x.ref"
	if d.dialect == MySQL {
		q += " FOR UPDATE"
	}
	var rows []struct {
		Row   model.Label `gorm:"embedded"`
		Link  *string     `gorm:"column:orchard_link"`
		Ref   *int64      `gorm:"column:orchard_ref"`
		Pos   *int64      `gorm:"column:orchard_pos"`
		GExt  *string     `gorm:"column:orchard_gext"`
		GName *string     `gorm:"column:orchard_gname"`
	}
	if err := d.with(ctx).Raw(q, args...).Scan(&rows).Error; err != nil {
		return nil, err
	}
	out := &PolicyLabels{Labels: []*model.Label{}, GroupsOf: map[int64][]int64{}, AccountsOf: map[int64][]int64{}, Groups: map[int64]*model.Group{}}
	for i := range rows {
		r := &rows[i]
		if n := len(out.Labels); n == 0 || out.Labels[n-1].ID != r.Row.ID {
			l := r.Row
			out.Labels = append(out.Labels, &l)
		}
		if r.Link == nil || r.Ref == nil {
			continue
		}
		id := r.Row.ID
		switch *r.Link {
		case "g":
			out.GroupsOf[id] = append(out.GroupsOf[id], *r.Ref)
			if out.Groups[*r.Ref] == nil {
				g := &model.Group{ID: *r.Ref}
				if r.GExt != nil {
					g.ExternalID = *r.GExt
				}
				if r.GName != nil {
					g.Name = *r.GName
				}
				out.Groups[*r.Ref] = g
			}
		case "a":
			out.AccountsOf[id] = append(out.AccountsOf[id], *r.Ref)
		}
	}
	return out, nil
}

// MembershipsOf maps the given users and devices to the groups, of those given, they are in.
func (d *DB) MembershipsOf(ctx context.Context, userIDs, deviceIDs, groupIDs []int64) (*GroupMembers, error) {
	out := &GroupMembers{Users: map[int64][]int64{}, Devices: map[int64][]int64{}}
	if len(groupIDs) == 0 {
		return out, nil
	}
	for _, chunk := range chunks(userIDs, d.inChunk()) {
		var us []model.GroupMember
		if err := d.with(ctx).Model(&model.GroupMember{}).Select("group_id", "user_id").Where("user_id IN ? AND group_id IN ?", chunk, groupIDs).
			Order("user_id, group_id").Scan(&us).Error; err != nil {
			return nil, fmt.Errorf("read groups of users: %w", err)
		}
		for _, m := range us {
			out.Users[m.UserID] = append(out.Users[m.UserID], m.GroupID)
		}
	}
	for _, chunk := range chunks(deviceIDs, d.inChunk()) {
		var ds []model.GroupDevice
		if err := d.with(ctx).Model(&model.GroupDevice{}).Select("group_id", "device_id").Where("device_id IN ? AND group_id IN ?", chunk, groupIDs).
			Order("device_id, group_id").Scan(&ds).Error; err != nil {
			return nil, fmt.Errorf("read groups of devices: %w", err)
		}
		for _, m := range ds {
			out.Devices[m.DeviceID] = append(out.Devices[m.DeviceID], m.GroupID)
		}
	}
	return out, nil
}

// AssignmentsOfHolders reads, for one app and the given holders (users by client user id,
// devices by serial number), their active assignments and the label assignments Apple refused
// since a time: one statement per bounded chunk.
func (d *DB) AssignmentsOfHolders(ctx context.Context, appID int64, clientUserIDs, serials []string, refusedSince time.Time) (active, refused []*model.LicenseAssignment, err error) {
	n := d.inChunk()
	for len(clientUserIDs) > 0 || len(serials) > 0 {
		cu, sn := clientUserIDs[:min(n, len(clientUserIDs))], serials[:min(n, len(serials))]
		clientUserIDs, serials = clientUserIDs[len(cu):], serials[len(sn):]
		q := d.with(ctx).Where("app_id = ?", appID)
		switch {
		case len(cu) > 0 && len(sn) > 0:
			q = q.Where(d.gorm.Where("kind = ? AND client_user_id IN ?", model.LicenseKindUser, cu).Or("kind = ? AND serial_number IN ?", model.LicenseKindDevice, sn))
		case len(cu) > 0:
			q = q.Where("kind = ? AND client_user_id IN ?", model.LicenseKindUser, cu)
		default:
			q = q.Where("kind = ? AND serial_number IN ?", model.LicenseKindDevice, sn)
		}
		q = q.Where(d.gorm.Where("status IN ?", activeStatuses).Or("status = ? AND label_id IS NOT NULL AND updated_at >= ?", model.AssignmentFailed, refusedSince))
		rs, err := findAll[model.LicenseAssignment](q.Order("id"))
		if err != nil {
			return nil, nil, fmt.Errorf("read assignments of holders of app %d: %w", appID, err)
		}
		for _, a := range rs {
			if a.Status == model.AssignmentFailed {
				refused = append(refused, a)
			} else {
				active = append(active, a)
			}
		}
	}
	return active, refused, nil
}

// WaitingOfHolders reads the waiting rows of an app for the given holder keys.
func (d *DB) WaitingOfHolders(ctx context.Context, appID int64, keys []string) ([]*model.PolicyWaiting, error) {
	out := []*model.PolicyWaiting{}
	for _, chunk := range strChunksOf(keys, d.inChunk()) {
		rs, err := findAll[model.PolicyWaiting](d.with(ctx).Where("app_id = ? AND holder_key IN ?", appID, chunk).Order("first_covered_at, holder_key"))
		if err != nil {
			return nil, fmt.Errorf("read waiting holders of app %d: %w", appID, err)
		}
		out = append(out, rs...)
	}
	return out, nil
}

// WaitingAhead is, for one label, the holders waiting because the label is short (its pools
// are empty or its cap is reached): how many, the earliest first covered, and the code.
type WaitingAhead struct {
	LabelID int64
	N       int
	First   time.Time
	Code    model.Code
}

// ShortWaitingOfApp aggregates, per label of an app, the holders waiting because the label is
// short, leaving out the given holder keys (those being evaluated): one statement, a row per
// label.
func (d *DB) ShortWaitingOfApp(ctx context.Context, appID int64, except []string) (map[int64]WaitingAhead, error) {
	out := map[int64]WaitingAhead{}
	q := d.with(ctx).Model(&model.PolicyWaiting{}).Select("label_id, COUNT(*) AS n, MIN(first_covered_at) AS first, MAX(code) AS code").
		Where("app_id = ? AND code IN ?", appID, []model.Code{model.CodeNoLicensesAvailable, model.CodeLabelCapReached})
	if len(except) > 0 {
		q = q.Where("holder_key NOT IN ?", except)
	}
	var rows []struct {
		LabelID int64
		N       int
		First   string
		Code    model.Code
	}
	if err := q.Group("label_id").Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("read waiting holders of app %d: %w", appID, err)
	}
	for _, r := range rows {
		t, err := parseAggregateTime(r.First)
		if err != nil {
			return nil, fmt.Errorf("read waiting holders of app %d: %w", appID, err)
		}
		out[r.LabelID] = WaitingAhead{LabelID: r.LabelID, N: r.N, First: t, Code: r.Code}
	}
	return out, nil
}

// WaitingOfHoldersAndAhead is WaitingOfHolders and ShortWaitingOfApp (leaving out the same
// holders) in one statement — a UNION ALL of the holders' rows and the per-label aggregate —
// when the keys fit one IN list; otherwise the two reads.
func (d *DB) WaitingOfHoldersAndAhead(ctx context.Context, appID int64, keys []string) ([]*model.PolicyWaiting, map[int64]WaitingAhead, error) {
	if len(keys) == 0 || len(keys) > d.inChunk() {
		rows, err := d.WaitingOfHolders(ctx, appID, keys)
		if err != nil {
			return nil, nil, fmt.Errorf("waiting of holders and ahead: %w", err)
		}
		ahead, err := d.ShortWaitingOfApp(ctx, appID, keys)
		if err != nil {
			return nil, nil, fmt.Errorf("waiting of holders and ahead: %w", err)
		}
		return rows, ahead, nil
	}
	short := []model.Code{model.CodeNoLicensesAvailable, model.CodeLabelCapReached}
	q := "SELECT 0 AS agg, label_id, holder_key, kind, device_id, user_id, code, reason, first_covered_at AS first, updated_at AS updated, 1 AS n" +
		" FROM policy_waiting WHERE app_id = ? AND holder_key IN ?" +
		" UNION ALL SELECT 1, label_id, '', '', NULL, NULL, MAX(code), '', MIN(first_covered_at), MIN(first_covered_at), COUNT(*)" +
		" FROM policy_waiting WHERE app_id = ? AND code IN ? AND holder_key NOT IN ? GROUP BY label_id" +
		" ORDER BY agg, first, holder_key"
	rs, err := d.with(ctx).Raw(q, appID, keys, appID, short, keys).Rows()
	if err != nil {
		return nil, nil, fmt.Errorf("read waiting holders of app %d: %w", appID, err)
	}
	defer rs.Close()
	rows, ahead := []*model.PolicyWaiting{}, map[int64]WaitingAhead{}
	for rs.Next() {
		var (
			agg, n               int
			w                    model.PolicyWaiting
			deviceID, userID     sql.NullInt64
			first, updated, kind string
		)
		if err := rs.Scan(&agg, &w.LabelID, &w.HolderKey, &kind, &deviceID, &userID, &w.Code, &w.Reason, &first, &updated, &n); err != nil {
			return nil, nil, fmt.Errorf("read waiting holders of app %d: %w", appID, err)
		}
		ft, err := parseAggregateTime(first)
		if err != nil {
			return nil, nil, fmt.Errorf("read waiting holders of app %d: %w", appID, err)
		}
		if agg == 1 {
			ahead[w.LabelID] = WaitingAhead{LabelID: w.LabelID, N: n, First: ft, Code: w.Code}
			continue
		}
		ut, err := parseAggregateTime(updated)
		if err != nil {
			return nil, nil, fmt.Errorf("read waiting holders of app %d: %w", appID, err)
		}
		w.AppID, w.Kind, w.DeviceID, w.UserID, w.FirstCoveredAt, w.UpdatedAt = appID, model.LicenseKind(kind), nullInt64(deviceID), nullInt64(userID), ft, ut
		rows = append(rows, &w)
	}
	if err := rs.Err(); err != nil {
		return nil, nil, fmt.Errorf("read waiting holders of app %d: %w", appID, err)
	}
	return rows, ahead, nil
}

// parseAggregateTime reads a MIN/MAX of a DATETIME column, which the drivers return as text
// (SQLite) or as a formatted time (MySQL with parseTime scans it into a string).
func parseAggregateTime(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02 15:04:05.999999999-07:00", "2006-01-02 15:04:05.999999999", time.RFC3339Nano, "2006-01-02T15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("unreadable time %q", s)
}

// ReplaceWaitingOfHolders replaces an app's waiting rows of the given holder keys.
func (d *DB) ReplaceWaitingOfHolders(ctx context.Context, appID int64, keys []string, rows []*model.PolicyWaiting) error {
	for _, chunk := range strChunksOf(keys, d.inChunk()) {
		if err := d.with(ctx).Where("app_id = ? AND holder_key IN ?", appID, chunk).Delete(&model.PolicyWaiting{}).Error; err != nil {
			return fmt.Errorf("clear waiting holders of app %d: %w", appID, err)
		}
	}
	if len(rows) == 0 {
		return nil
	}
	if err := d.with(ctx).CreateInBatches(rows, d.batchOf(rows)).Error; err != nil {
		return fmt.Errorf("record waiting holders of app %d: %w", appID, err)
	}
	return nil
}

// DeparturesOfHolders reads the departures of the given users and devices from the given
// groups since a time, newest first.
func (d *DB) DeparturesOfHolders(ctx context.Context, userIDs, deviceIDs, groupIDs []int64, since time.Time) ([]*model.PolicyDeparture, error) {
	out := []*model.PolicyDeparture{}
	if len(groupIDs) == 0 {
		return out, nil
	}
	read := func(col string, ids []int64) error {
		for _, chunk := range chunks(ids, d.inChunk()) {
			rs, err := findAll[model.PolicyDeparture](d.with(ctx).Where(col+" IN ? AND group_id IN ? AND at >= ?", chunk, groupIDs, since))
			if err != nil {
				return fmt.Errorf("by %s: %w", col, err)
			}
			out = append(out, rs...)
		}
		return nil
	}
	if err := read("user_id", userIDs); err != nil {
		return nil, wrap("departures of holders", err)
	}
	if err := read("device_id", deviceIDs); err != nil {
		return nil, wrap("departures of holders", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID > out[j].ID })
	return out, nil
}

func strChunksOf(xs []string, n int) [][]string {
	var out [][]string
	for len(xs) > n {
		out = append(out, xs[:n])
		xs = xs[n:]
	}
	if len(xs) > 0 {
		out = append(out, xs)
	}
	return out
}

// The full evaluation's bulk reads: every table a plan depends on read once for all the apps
// under policy (a sequential pass, not an IN lookup per app), so that a full evaluation with
// nothing to change costs a few statements per thousand rows and writes nothing.

// AllLabelsWithLinks reads every label (deleted ones too) with its groups and accounts.
func (d *DB) AllLabelsWithLinks(ctx context.Context) (*PolicyLabels, error) {
	ls, err := findAll[model.Label](d.with(ctx).Order("id"))
	if err != nil {
		return nil, fmt.Errorf("read labels: %w", err)
	}
	out := &PolicyLabels{Labels: ls, GroupsOf: map[int64][]int64{}, AccountsOf: map[int64][]int64{}}
	var rows []model.LabelGroup
	if err := d.with(ctx).Model(&model.LabelGroup{}).Order("label_id, group_id").Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("read label groups: %w", err)
	}
	for _, r := range rows {
		out.GroupsOf[r.LabelID] = append(out.GroupsOf[r.LabelID], r.GroupID)
	}
	var accs []model.LabelAccount
	if err := d.with(ctx).Model(&model.LabelAccount{}).Order("label_id, position").Scan(&accs).Error; err != nil {
		return nil, fmt.Errorf("read label accounts: %w", err)
	}
	for _, r := range accs {
		out.AccountsOf[r.LabelID] = append(out.AccountsOf[r.LabelID], r.AccountID)
	}
	return out, nil
}

// PolicyAssignmentsAfter reads, by id order, a batch of the active assignments of the given
// apps and of their label assignments Apple refused since a time. No apps, no statement.
//
// It is the full evaluation's hot read (every label license of the fleet, a batch a
// statement), so it reads only the columns a plan looks at — id, app, kind, holder (serial,
// client user id, device, user, key), status, origin, label, grace start and Apple's refusal
// message — and scans them without GORM's reflection; the other fields stay zero. The rows
// are for planning only: whatever is carried out reads its assignment again, locked.
func (d *DB) PolicyAssignmentsAfter(ctx context.Context, appIDs []int64, refusedSince time.Time, after int64, limit int) ([]*model.LicenseAssignment, error) {
	if len(appIDs) == 0 {
		return []*model.LicenseAssignment{}, nil
	}
	// A pass in id order: on SQLite the unary + keeps the planner off the app and status
	// indexes, which would read every row of the apps again for each batch to sort them.
	col := func(c string) string {
		if d.dialect == SQLite {
			return "+" + c
		}
		return c
	}
	q := d.with(ctx).Model(&model.LicenseAssignment{}).
		Select("id, app_id, kind, serial_number, client_user_id, device_id, user_id, holder_key, status, origin, label_id, label_out_since, error_message").
		Where("id > ? AND "+col("app_id")+" IN ?", after, appIDs).
		Where(d.gorm.Where(col("status")+" IN ?", activeStatuses).Or(col("status")+" = ? AND label_id IS NOT NULL AND updated_at >= ?", model.AssignmentFailed, refusedSince))
	rows, err := q.Order("id").Limit(limit).Rows()
	if err != nil {
		return nil, fmt.Errorf("read assignments under policy: %w", err)
	}
	defer rows.Close()
	out := make([]*model.LicenseAssignment, 0, limit)
	for rows.Next() {
		var (
			a                                        model.LicenseAssignment
			serial, clientUser, holderKey, errorText sql.NullString
			deviceID, userID, labelID                sql.NullInt64
			outSince                                 sql.NullTime
		)
		if err := rows.Scan(&a.ID, &a.AppID, &a.Kind, &serial, &clientUser, &deviceID, &userID, &holderKey, &a.Status, &a.Origin, &labelID, &outSince, &errorText); err != nil {
			return nil, fmt.Errorf("read assignments under policy: %w", err)
		}
		a.SerialNumber, a.ClientUserID, a.HolderKey, a.ErrorMessage = nullString(serial), nullString(clientUser), nullString(holderKey), nullString(errorText)
		a.DeviceID, a.UserID, a.LabelID = nullInt64(deviceID), nullInt64(userID), nullInt64(labelID)
		if outSince.Valid {
			t := outSince.Time.UTC()
			a.LabelOutSince = &t
		}
		out = append(out, &a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read assignments under policy: %w", err)
	}
	return out, nil
}

// PolicyDevicesAfter reads up to limit devices with an id above after, in id order, with only
// the columns a plan looks at (id, serial number, shared iPad, user, status; the other fields
// stay zero): the full evaluation's pass over the fleet, a batch a statement.
func (d *DB) PolicyDevicesAfter(ctx context.Context, after int64, limit int) ([]*model.Device, error) {
	rows, err := d.with(ctx).Model(&model.Device{}).Select("id, serial_number, shared_ipad, user_id, status").
		Where("id > ?", after).Order("id").Limit(limit).Rows()
	if err != nil {
		return nil, wrap("devices under policy", err)
	}
	defer rows.Close()
	out := make([]*model.Device, 0, limit)
	for rows.Next() {
		var (
			dv     model.Device
			userID sql.NullInt64
		)
		if err := rows.Scan(&dv.ID, &dv.SerialNumber, &dv.SharedIPad, &userID, &dv.Status); err != nil {
			return nil, wrap("devices under policy", err)
		}
		dv.UserID = nullInt64(userID)
		out = append(out, &dv)
	}
	return out, wrap("devices under policy", rows.Err())
}

// PolicyUsersAfter reads up to limit users with an id above after, in id order, with only the
// columns a plan looks at (id, external id, client user id, status; the other fields stay
// zero): the full evaluation's pass over the directory, a batch a statement.
func (d *DB) PolicyUsersAfter(ctx context.Context, after int64, limit int) ([]*model.User, error) {
	rows, err := d.with(ctx).Model(&model.User{}).Select("id, external_id, client_user_id, status").
		Where("id > ?", after).Order("id").Limit(limit).Rows()
	if err != nil {
		return nil, wrap("users under policy", err)
	}
	defer rows.Close()
	out := make([]*model.User, 0, limit)
	for rows.Next() {
		var u model.User
		if err := rows.Scan(&u.ID, &u.ExternalID, &u.ClientUserID, &u.Status); err != nil {
			return nil, wrap("users under policy", err)
		}
		out = append(out, &u)
	}
	return out, wrap("users under policy", rows.Err())
}

func nullString(s sql.NullString) *string {
	if !s.Valid {
		return nil
	}
	return &s.String
}

func nullInt64(n sql.NullInt64) *int64 {
	if !n.Valid {
		return nil
	}
	return &n.Int64
}

// WaitingOfApps reads the waiting holders of the given apps.
func (d *DB) WaitingOfApps(ctx context.Context, appIDs []int64) ([]*model.PolicyWaiting, error) {
	out := []*model.PolicyWaiting{}
	for _, chunk := range chunks(appIDs, d.inChunk()) {
		rs, err := findAll[model.PolicyWaiting](d.with(ctx).Where("app_id IN ?", chunk).Order("first_covered_at, holder_key"))
		if err != nil {
			return nil, fmt.Errorf("read waiting holders: %w", err)
		}
		out = append(out, rs...)
	}
	return out, nil
}

// DueItemsOfApp reads the ids of an app's due queue rows (whole-app and holder rows), for an
// evaluation of the whole app that covers them all.
func (d *DB) DueItemsOfApp(ctx context.Context, appID int64, now time.Time) ([]int64, error) {
	var ids []int64
	if err := d.with(ctx).Model(&model.PolicyQueueItem{}).Where("app_id = ? AND not_before <= ?", appID, now).Order("id").Pluck("id", &ids).Error; err != nil {
		return nil, fmt.Errorf("read policy queue of app %d: %w", appID, err)
	}
	return ids, nil
}

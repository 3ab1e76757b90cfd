package db

import (
	"context"
	"strings"
	"time"

	"gorm.io/gorm"

	"orchard/model"
)

// This file holds the read side of the API: filtered keyset pages and counts of every listed
// entity, batch reads by id for the dataloaders, and per-parent pages for nested connections.
// Every list orders by id; the filters below have indexes behind them (see the migrations).

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
	return list[model.Account](ctx, d.accountQuery(f), "accounts", p)
}

// CountAccounts counts accounts.
func (d *DB) CountAccounts(ctx context.Context, f AccountFilter) (int, error) {
	return count(ctx, d.accountQuery(f), "accounts")
}

// AccountsByID reads accounts by id.
func (d *DB) AccountsByID(ctx context.Context, ids []int64) ([]*model.Account, error) {
	return byIDs[model.Account](ctx, d, ids)
}

// AppFilter selects apps.
type AppFilter struct {
	Search    string
	Platform  model.Platform
	Kind      model.AppKind
	AccountID int64
}

func (d *DB) appQuery(f AppFilter) *gorm.DB {
	q := d.gorm.Model(&model.App{})
	if f.Search != "" {
		like := "%" + escapeLike(strings.ToLower(f.Search)) + "%"
		q = q.Where("(LOWER(apps.name) LIKE ? ESCAPE '!' OR LOWER(apps.bundle_id) LIKE ? ESCAPE '!')", like, like)
	}
	if f.Platform != "" {
		// platforms is a comma-separated list; match a whole element.
		if d.dialect == MySQL {
			q = q.Where("FIND_IN_SET(?, apps.platforms) > 0", string(f.Platform))
		} else {
			q = q.Where("(',' || apps.platforms || ',') LIKE ?", "%,"+string(f.Platform)+",%")
		}
	}
	if f.Kind != "" {
		q = q.Where("apps.kind = ?", f.Kind)
	}
	if f.AccountID != 0 {
		q = q.Where("EXISTS (SELECT 1 FROM license_pools p WHERE p.app_id = apps.id AND p.account_id = ?)", f.AccountID)
	}
	return q
}

// ListApps reads a page of apps.
func (d *DB) ListApps(ctx context.Context, f AppFilter, p Page) ([]*model.App, bool, error) {
	return list[model.App](ctx, d.appQuery(f), "apps", p)
}

// CountApps counts apps.
func (d *DB) CountApps(ctx context.Context, f AppFilter) (int, error) {
	return count(ctx, d.appQuery(f), "apps")
}

// AppsByID reads apps by id.
func (d *DB) AppsByID(ctx context.Context, ids []int64) ([]*model.App, error) {
	return byIDs[model.App](ctx, d, ids)
}

// AppByAdamID reads an app by Apple's id.
func (d *DB) AppByAdamID(ctx context.Context, adamID string) (*model.App, error) {
	return findOne[model.App](d.with(ctx).Where("adam_id = ?", adamID))
}

// CountriesByApp reads the countries each app is known to be sold in.
func (d *DB) CountriesByApp(ctx context.Context, appIDs []int64) (map[int64][]string, error) {
	var rows []model.AppCountry
	out := map[int64][]string{}
	if len(appIDs) == 0 {
		return out, nil
	}
	if err := d.with(ctx).Where("app_id IN ? AND available = ?", appIDs, true).Order("country_code").Find(&rows).Error; err != nil {
		return nil, err
	}
	for _, r := range rows {
		out[r.AppID] = append(out[r.AppID], r.CountryCode)
	}
	return out, nil
}

// PoolFilter selects license pools.
type PoolFilter struct {
	AccountID int64
	AppID     int64
	// NoLicensesLeft: true for exhausted pools, false for pools with licenses left.
	NoLicensesLeft *bool
}

func (d *DB) poolQuery(f PoolFilter) *gorm.DB {
	q := d.gorm.Model(&model.LicensePool{})
	if f.AccountID != 0 {
		q = q.Where("license_pools.account_id = ?", f.AccountID)
	}
	if f.AppID != 0 {
		q = q.Where("license_pools.app_id = ?", f.AppID)
	}
	if f.NoLicensesLeft != nil {
		exhausted := "(license_pools.unlimited = ? AND license_pools.assigned_count + license_pools.reserved_count >= license_pools.total_count)"
		if *f.NoLicensesLeft {
			q = q.Where(exhausted, false)
		} else {
			q = q.Where("NOT "+exhausted, false)
		}
	}
	return q
}

// ListPools reads a page of pools.
func (d *DB) ListPools(ctx context.Context, f PoolFilter, p Page) ([]*model.LicensePool, bool, error) {
	return list[model.LicensePool](ctx, d.poolQuery(f), "license_pools", p)
}

// CountPools counts pools.
func (d *DB) CountPools(ctx context.Context, f PoolFilter) (int, error) {
	return count(ctx, d.poolQuery(f), "license_pools")
}

// PoolsByID reads pools by id.
func (d *DB) PoolsByID(ctx context.Context, ids []int64) ([]*model.LicensePool, error) {
	return byIDs[model.LicensePool](ctx, d, ids)
}

// AssignmentFilter selects license assignments.
type AssignmentFilter struct {
	AccountID    int64
	AppID        int64
	PoolID       int64
	Statuses     []model.AssignmentStatus
	Kind         model.LicenseKind
	SerialNumber string
	DeviceID     int64
	UserID       int64
	Origin       model.AssignmentOrigin
}

func (d *DB) assignmentQuery(f AssignmentFilter) *gorm.DB {
	q := d.gorm.Model(&model.LicenseAssignment{})
	if f.AccountID != 0 {
		q = q.Where("account_id = ?", f.AccountID)
	}
	if f.AppID != 0 {
		q = q.Where("app_id = ?", f.AppID)
	}
	if f.PoolID != 0 {
		q = q.Where("pool_id = ?", f.PoolID)
	}
	if len(f.Statuses) > 0 {
		q = q.Where("status IN ?", f.Statuses)
	}
	if f.Kind != "" {
		q = q.Where("kind = ?", f.Kind)
	}
	if f.SerialNumber != "" {
		q = q.Where("serial_number = ?", f.SerialNumber)
	}
	if f.DeviceID != 0 {
		q = q.Where("device_id = ?", f.DeviceID)
	}
	if f.UserID != 0 {
		q = q.Where("user_id = ?", f.UserID)
	}
	if f.Origin != "" {
		q = q.Where("origin = ?", f.Origin)
	}
	return q
}

// ListAssignments reads a page of assignments.
func (d *DB) ListAssignments(ctx context.Context, f AssignmentFilter, p Page) ([]*model.LicenseAssignment, bool, error) {
	return list[model.LicenseAssignment](ctx, d.assignmentQuery(f), "license_assignments", p)
}

// CountAssignments counts assignments.
func (d *DB) CountAssignments(ctx context.Context, f AssignmentFilter) (int, error) {
	return count(ctx, d.assignmentQuery(f), "license_assignments")
}

// AssignmentsByID reads assignments by id.
func (d *DB) AssignmentsByID(ctx context.Context, ids []int64) ([]*model.LicenseAssignment, error) {
	return byIDs[model.LicenseAssignment](ctx, d, ids)
}

// DeviceFilter selects devices.
type DeviceFilter struct {
	Status      model.DeviceStatus
	Platform    model.Platform
	SharedIPad  *bool
	UserID      int64
	CountryCode string
	Search      string
}

func (d *DB) deviceQuery(f DeviceFilter) *gorm.DB {
	q := d.gorm.Model(&model.Device{})
	if f.Status != "" {
		q = q.Where("status = ?", f.Status)
	}
	if f.Platform != "" {
		q = q.Where("platform = ?", f.Platform)
	}
	if f.SharedIPad != nil {
		q = q.Where("shared_ipad = ?", *f.SharedIPad)
	}
	if f.UserID != 0 {
		q = q.Where("user_id = ?", f.UserID)
	}
	if f.CountryCode != "" {
		q = q.Where("country_code = ?", strings.ToUpper(f.CountryCode))
	}
	if f.Search != "" {
		like := "%" + escapeLike(strings.ToLower(f.Search)) + "%"
		q = q.Where("(LOWER(serial_number) LIKE ? ESCAPE '!' OR LOWER(name) LIKE ? ESCAPE '!')", like, like)
	}
	return q
}

// ListDevices reads a page of devices.
func (d *DB) ListDevices(ctx context.Context, f DeviceFilter, p Page) ([]*model.Device, bool, error) {
	return list[model.Device](ctx, d.deviceQuery(f), "devices", p)
}

// CountDevices counts devices.
func (d *DB) CountDevices(ctx context.Context, f DeviceFilter) (int, error) {
	return count(ctx, d.deviceQuery(f), "devices")
}

// DevicesByID reads devices by id.
func (d *DB) DevicesByID(ctx context.Context, ids []int64) ([]*model.Device, error) {
	return byIDs[model.Device](ctx, d, ids)
}

// DeviceBySerial reads a device by serial number.
func (d *DB) DeviceBySerial(ctx context.Context, serial string) (*model.Device, error) {
	return findOne[model.Device](d.with(ctx).Where("serial_number = ?", serial))
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
	return list[model.User](ctx, d.userQuery(f), "users", p)
}

// CountUsers counts users.
func (d *DB) CountUsers(ctx context.Context, f UserFilter) (int, error) {
	return count(ctx, d.userQuery(f), "users")
}

// UsersByID reads users by id.
func (d *DB) UsersByID(ctx context.Context, ids []int64) ([]*model.User, error) {
	return byIDs[model.User](ctx, d, ids)
}

// UserByExternalID reads a user by the directory's id.
func (d *DB) UserByExternalID(ctx context.Context, externalID string) (*model.User, error) {
	var u model.User
	if err := d.with(ctx).Where("external_id = ?", externalID).Take(&u).Error; err != nil {
		return nil, notFound(err)
	}
	return &u, nil
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

// AuditFilter selects audit events.
type AuditFilter struct {
	AccountID   int64
	SubjectType string
	SubjectID   int64
	Action      string
	ActorKind   model.ActorKind
	Since       *time.Time
}

func (d *DB) auditQuery(f AuditFilter) *gorm.DB {
	q := d.gorm.Model(&model.AuditEvent{})
	if f.AccountID != 0 {
		q = q.Where("account_id = ?", f.AccountID)
	}
	if f.SubjectType != "" {
		q = q.Where("subject_type = ? AND subject_id = ?", f.SubjectType, f.SubjectID)
	}
	if f.Action != "" {
		q = q.Where("action = ?", f.Action)
	}
	if f.ActorKind != "" {
		q = q.Where("actor_kind = ?", f.ActorKind)
	}
	if f.Since != nil {
		q = q.Where("at >= ?", utc(*f.Since))
	}
	return q
}

// ListAuditEvents reads a page of audit events (callers ask for newest first).
func (d *DB) ListAuditEvents(ctx context.Context, f AuditFilter, p Page) ([]*model.AuditEvent, bool, error) {
	return list[model.AuditEvent](ctx, d.auditQuery(f), "audit_events", p)
}

// CountAuditEvents counts audit events.
func (d *DB) CountAuditEvents(ctx context.Context, f AuditFilter) (int, error) {
	return count(ctx, d.auditQuery(f), "audit_events")
}

// AuditEventsByID reads audit events by id.
func (d *DB) AuditEventsByID(ctx context.Context, ids []int64) ([]*model.AuditEvent, error) {
	return byIDs[model.AuditEvent](ctx, d, ids)
}

// SyncRunFilter selects sync runs.
type SyncRunFilter struct {
	AccountID int64
	Status    model.SyncRunStatus
}

func (d *DB) syncRunQuery(f SyncRunFilter) *gorm.DB {
	q := d.gorm.Model(&model.SyncRun{})
	if f.AccountID != 0 {
		q = q.Where("account_id = ?", f.AccountID)
	}
	if f.Status != "" {
		q = q.Where("status = ?", f.Status)
	}
	return q
}

// ListSyncRuns reads a page of sync runs (callers ask for newest first).
func (d *DB) ListSyncRuns(ctx context.Context, f SyncRunFilter, p Page) ([]*model.SyncRun, bool, error) {
	return list[model.SyncRun](ctx, d.syncRunQuery(f), "sync_runs", p)
}

// CountSyncRuns counts sync runs.
func (d *DB) CountSyncRuns(ctx context.Context, f SyncRunFilter) (int, error) {
	return count(ctx, d.syncRunQuery(f), "sync_runs")
}

// SyncRunsByID reads sync runs by id.
func (d *DB) SyncRunsByID(ctx context.Context, ids []int64) ([]*model.SyncRun, error) {
	return byIDs[model.SyncRun](ctx, d, ids)
}

// CommandFilter selects device commands.
type CommandFilter struct {
	DeviceID int64
	Status   model.CommandStatus
	Kind     model.CommandKind
}

func (d *DB) commandQuery(f CommandFilter) *gorm.DB {
	q := d.gorm.Model(&model.DeviceCommand{})
	if f.DeviceID != 0 {
		q = q.Where("device_id = ?", f.DeviceID)
	}
	if f.Status != "" {
		q = q.Where("status = ?", f.Status)
	}
	if f.Kind != "" {
		q = q.Where("kind = ?", f.Kind)
	}
	return q
}

// ListCommands reads a page of device commands.
func (d *DB) ListCommands(ctx context.Context, f CommandFilter, p Page) ([]*model.DeviceCommand, bool, error) {
	return list[model.DeviceCommand](ctx, d.commandQuery(f), "device_commands", p)
}

// CountCommands counts device commands.
func (d *DB) CountCommands(ctx context.Context, f CommandFilter) (int, error) {
	return count(ctx, d.commandQuery(f), "device_commands")
}

// CommandsByID reads device commands by id.
func (d *DB) CommandsByID(ctx context.Context, ids []int64) ([]*model.DeviceCommand, error) {
	return byIDs[model.DeviceCommand](ctx, d, ids)
}

// ListAPIKeys reads a page of API keys.
func (d *DB) ListAPIKeys(ctx context.Context, includeRevoked bool, p Page) ([]*model.APIKey, bool, error) {
	return list[model.APIKey](ctx, d.apiKeyQuery(includeRevoked), "api_keys", p)
}

// CountAPIKeys counts API keys.
func (d *DB) CountAPIKeys(ctx context.Context, includeRevoked bool) (int, error) {
	return count(ctx, d.apiKeyQuery(includeRevoked), "api_keys")
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
	return byIDs[model.APIKey](ctx, d, ids)
}

// escapeLike escapes LIKE wildcards with '!'.
func escapeLike(s string) string {
	r := strings.NewReplacer("!", "!!", "%", "!%", "_", "!_")
	return r.Replace(s)
}

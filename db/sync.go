package db

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm/clause"

	"orchard/model"
)

// The reconcile's writes. A pass hands over Apple's pages one at a time; each page is applied
// in one transaction with a handful of statements whatever its size, so memory stays bounded by
// a page and a pass of 100 pages costs a few hundred statements. A full pass marks every row it
// saw with its run id; what it did not see is found afterwards by a sweep, in the database.

// AssetRow is one of Apple's assets as a pass saw it.
type AssetRow struct {
	AdamID, PricingParam, ProductType      string
	Total, Assigned, Available, Retired    int64
	Unlimited, DeviceAssignable, Revocable bool
	// Platforms is a comma-separated list of model.Platform values.
	Platforms string
}

// PoolRef names a pool of the account being synced.
type PoolRef struct{ PoolID, AppID int64 }

// AssetKey is the key of an asset within an account.
func AssetKey(adamID, pricingParam string) string { return adamID + "/" + pricingParam }

// SyncCounts are what a pass changed.
type SyncCounts struct{ Added, Changed, Removed int }

// Add adds c to s.
func (s *SyncCounts) Add(c SyncCounts) {
	s.Added += c.Added
	s.Changed += c.Changed
	s.Removed += c.Removed
}

// UpsertAssets applies one page of assets: apps are created for new adamIds, pools created or
// updated with Apple's counts, and (on a full pass, runID ≠ 0) marked seen. It returns the
// page's pools by AssetKey.
func (d *DB) UpsertAssets(ctx context.Context, accountID, runID int64, rows []AssetRow) (map[string]PoolRef, SyncCounts, error) {
	refs := map[string]PoolRef{}
	var counts SyncCounts
	if len(rows) == 0 {
		return refs, counts, nil
	}
	now := Now()
	err := d.Tx(ctx, func(tx *DB) error {
		apps, err := tx.ensureApps(ctx, rows, now)
		if err != nil {
			return err // named by ensureApps
		}
		appIDs := make([]int64, 0, len(apps))
		for _, id := range apps {
			appIDs = append(appIDs, id)
		}
		var existing []*model.LicensePool
		if err := tx.with(ctx).Where("account_id = ? AND app_id IN ?", accountID, appIDs).Find(&existing).Error; err != nil {
			return fmt.Errorf("read pools: %w", err)
		}
		byKey := make(map[string]*model.LicensePool, len(existing))
		for _, p := range existing {
			byKey[AssetKey(p.AdamID, p.PricingParam)] = p
		}
		var inserts []*model.LicensePool
		var seen []int64
		for _, r := range rows {
			key := AssetKey(r.AdamID, r.PricingParam)
			p, ok := byKey[key]
			if !ok {
				p = &model.LicensePool{AccountID: accountID, AppID: apps[r.AdamID], AdamID: r.AdamID, PricingParam: r.PricingParam,
					TotalCount: r.Total, Unlimited: r.Unlimited, AppleAssignedCount: r.Assigned, AppleAvailableCount: r.Available,
					RetiredCount: r.Retired, DeviceAssignable: r.DeviceAssignable, Revocable: r.Revocable, LastSeenAt: &now}
				if runID != 0 {
					p.SeenRunID = &runID
				}
				inserts = append(inserts, p)
				byKey[key] = p
				counts.Added++
				continue
			}
			seen = append(seen, p.ID)
			if p.TotalCount != r.Total || p.Unlimited != r.Unlimited || p.AppleAssignedCount != r.Assigned ||
				p.AppleAvailableCount != r.Available || p.RetiredCount != r.Retired || p.DeviceAssignable != r.DeviceAssignable ||
				p.Revocable != r.Revocable || p.GoneAtAppleAt != nil {
				err := tx.with(ctx).Model(&model.LicensePool{}).Where("id = ?", p.ID).Updates(map[string]any{
					"total_count": r.Total, "unlimited": r.Unlimited, "apple_assigned_count": r.Assigned,
					"apple_available_count": r.Available, "retired_count": r.Retired, "device_assignable": r.DeviceAssignable,
					"revocable": r.Revocable, "gone_at_apple_at": nil, "updated_at": now,
				}).Error
				if err != nil {
					return fmt.Errorf("update pool %d: %w", p.ID, err)
				}
				counts.Changed++
			}
		}
		if len(inserts) > 0 {
			if err := tx.with(ctx).CreateInBatches(inserts, d.batchOf(inserts)).Error; err != nil {
				return fmt.Errorf("insert pools: %w", err)
			}
		}
		// Only a full pass marks what it saw: the sweep that follows it finds the pools it did
		// not see gone, and lastSeenAt is "when a full pass last saw the asset". An incremental
		// pass's mark would be one more write of every pool of the account per pass, read by
		// nothing (the quiet pass of doc/scale-accounts.md).
		if len(seen) > 0 && runID != 0 {
			cols := map[string]any{"last_seen_at": now, "seen_run_id": runID}
			if err := tx.with(ctx).Model(&model.LicensePool{}).Where("id IN ?", seen).UpdateColumns(cols).Error; err != nil {
				return fmt.Errorf("mark pools seen: %w", err)
			}
		}
		if len(inserts) > 0 {
			// Read the new pools' ids back rather than trusting the batch insert to have
			// filled them: ids of a multi-row insert need not be consecutive (MySQL's
			// interleaved auto-increment, distributed engines).
			var fresh []*model.LicensePool
			if err := tx.with(ctx).Select("id", "app_id", "adam_id", "pricing_param").Where("account_id = ? AND app_id IN ?", accountID, appIDs).Find(&fresh).Error; err != nil {
				return fmt.Errorf("read new pools: %w", err)
			}
			for _, p := range fresh {
				byKey[AssetKey(p.AdamID, p.PricingParam)] = p
			}
		}
		for k, p := range byKey {
			refs[k] = PoolRef{PoolID: p.ID, AppID: p.AppID}
		}
		return nil
	})
	return refs, counts, wrap("upsert assets", err)
}

// ensureApps returns the app ids of the rows' adamIds, creating the apps not known yet (their
// names come later, from the metadata lookup). Concurrent passes of other accounts may create
// the same app: the insert ignores the conflict and the ids are read back.
func (d *DB) ensureApps(ctx context.Context, rows []AssetRow, now time.Time) (map[string]int64, error) {
	want := map[string]AssetRow{}
	ids := make([]string, 0, len(rows))
	for _, r := range rows {
		if _, ok := want[r.AdamID]; !ok {
			want[r.AdamID] = r
			ids = append(ids, r.AdamID)
		}
	}
	found := map[string]int64{}
	read := func() error {
		var apps []struct {
			ID     int64
			AdamID string
		}
		if err := d.with(ctx).Model(&model.App{}).Select("id", "adam_id").Where("adam_id IN ?", ids).Find(&apps).Error; err != nil {
			return fmt.Errorf("read apps: %w", err)
		}
		for _, a := range apps {
			found[a.AdamID] = a.ID
		}
		return nil
	}
	if err := read(); err != nil {
		return nil, wrap("ensure apps", err)
	}
	var missing []*model.App
	for _, id := range ids {
		if _, ok := found[id]; ok {
			continue
		}
		r := want[id]
		kind := model.AppKindApp
		if strings.EqualFold(r.ProductType, "Book") {
			kind = model.AppKindBook
		}
		missing = append(missing, &model.App{AdamID: id, Kind: kind, Platforms: r.Platforms, CreatedAt: now, UpdatedAt: now})
	}
	if len(missing) == 0 {
		return found, nil
	}
	if err := d.with(ctx).Clauses(clause.OnConflict{DoNothing: true}).CreateInBatches(missing, d.batchOf(missing)).Error; err != nil {
		return nil, fmt.Errorf("insert apps: %w", err)
	}
	if err := read(); err != nil {
		return nil, wrap("ensure apps", err)
	}
	return found, nil
}

// runningFence is the condition that guards a full pass's sweeps: its run is still RUNNING.
// A pass that another replica declared dead (it lost its lease; FailStaleRuns) may still be
// going, and its sweep would take what the new pass saw for gone; fenced, it changes nothing.
const runningFence = "EXISTS (SELECT 1 FROM sync_runs WHERE sync_runs.id = ? AND sync_runs.status = ?)"

// MarkGonePools records, after a full pass, the pools Apple no longer lists.
func (d *DB) MarkGonePools(ctx context.Context, accountID, runID int64) (int, error) {
	res := d.with(ctx).Model(&model.LicensePool{}).
		Where("account_id = ? AND gone_at_apple_at IS NULL AND (seen_run_id IS NULL OR seen_run_id <> ?)", accountID, runID).
		Where(runningFence, runID, model.SyncRunRunning).
		UpdateColumns(map[string]any{"gone_at_apple_at": Now(), "updated_at": Now()})
	return int(res.RowsAffected), wrap("mark gone pools", res.Error)
}

// AppleAssignmentRow is one of Apple's assignments as a pass saw it.
type AppleAssignmentRow struct{ AdamID, PricingParam, SerialNumber, ClientUserID string }

func (r AppleAssignmentRow) holder() (model.LicenseKind, string) {
	if r.SerialNumber != "" {
		return model.LicenseKindDevice, model.HolderKeyFor(model.LicenseKindDevice, r.SerialNumber, "")
	}
	return model.LicenseKindUser, model.HolderKeyFor(model.LicenseKindUser, "", r.ClientUserID)
}

type activeRow struct {
	ID        int64
	PoolID    int64
	HolderKey string
	Status    model.AssignmentStatus
	// ReclaimReason is set on a PENDING assignment reclaimed while on its way to Apple
	// (selected only where it matters).
	ReclaimReason *string
}

// ApplyAssignments applies one page of Apple's assignments. Assignments held at Apple but
// unknown here are created (origin FOUND_AT_APPLE); PENDING ones Apple already holds are
// confirmed; on a full pass (runID ≠ 0) every row seen is marked. pools maps AssetKey to the
// account's pools; assignments of assets missing from it are skipped and counted in skipped.
func (d *DB) ApplyAssignments(ctx context.Context, accountID, runID int64, rows []AppleAssignmentRow, pools map[string]PoolRef) (counts SyncCounts, skipped int, err error) {
	if len(rows) == 0 {
		return counts, 0, nil
	}
	wanted := make(map[[2]any]foundRow, len(rows))
	pairs := make([][2]any, 0, len(rows))
	for _, r := range rows {
		ref, ok := pools[AssetKey(r.AdamID, r.PricingParam)]
		if !ok || (r.SerialNumber == "" && r.ClientUserID == "") {
			skipped++
			continue
		}
		kind, key := r.holder()
		k := [2]any{ref.PoolID, key}
		if _, dup := wanted[k]; dup {
			continue
		}
		wanted[k] = foundRow{r, kind, key, ref}
		pairs = append(pairs, k)
	}
	if len(pairs) == 0 {
		return counts, skipped, nil
	}
	now := Now()
	all := wanted
	err = d.Tx(ctx, func(tx *DB) error {
		// Tx runs this again after a deadlock: start from the whole page each time (a row
		// matched by the rolled-back attempt must be matched, and marked seen, again).
		wanted, counts = maps.Clone(all), SyncCounts{}
		found, err := tx.assignmentsByHolder(ctx, []string{"id", "pool_id", "holder_key", "status", "reclaim_reason"}, pairs)
		if err != nil {
			return fmt.Errorf("find assignments: %w", err)
		}
		var seen, confirm []int64
		for _, f := range found {
			k := [2]any{f.PoolID, f.HolderKey}
			if _, ok := wanted[k]; !ok {
				continue
			}
			delete(wanted, k)
			seen = append(seen, f.ID)
			// Apple holds what Orchard was waiting to hear about: the associate went through
			// (a license reclaimed on its way goes on to its reclaim).
			if _, ok := model.LookupTransition(model.EventFoundAtApple, model.StateOf(f.Status, f.ReclaimReason)); ok {
				confirm = append(confirm, f.ID)
			}
		}
		applied, err := tx.ApplyTransitions(ctx, model.EventFoundAtApple, confirm, TransitionDetails{})
		if err != nil {
			return fmt.Errorf("confirm found: %w", err)
		}
		counts.Changed += len(applied)
		if len(wanted) > 0 {
			// In (pool, holder) order, not the map's: consecutive rows then land on the same
			// pages of the holder and pool indexes, and a transaction writes fewer pages.
			list := make([]foundRow, 0, len(wanted))
			for _, w := range wanted {
				list = append(list, w)
			}
			slices.SortFunc(list, func(a, b foundRow) int {
				return cmp.Or(cmp.Compare(a.ref.PoolID, b.ref.PoolID), strings.Compare(a.key, b.key))
			})
			ins, err := tx.newFoundAssignments(ctx, accountID, runID, list, now)
			if err != nil {
				return err // named by newFoundAssignments
			}
			counts.Added += ins
		}
		if runID != 0 && len(seen) > 0 {
			if err := tx.markAssignmentsSeen(ctx, runID, seen); err != nil {
				return err // named by markAssignmentsSeen
			}
		}
		return nil
	})
	if err != nil {
		return counts, skipped, fmt.Errorf("apply assignments: %w", err)
	}
	return counts, skipped, nil
}

// markAssignmentsSeen records that the full pass runID saw the assignments ids: a thousand
// ids per statement in one JSON parameter on SQLite (sqlitejson.go), IN lists elsewhere.
func (d *DB) markAssignmentsSeen(ctx context.Context, runID int64, ids []int64) error {
	if d.dialect != SQLite {
		for chunk := range slices.Chunk(ids, d.inChunk()) {
			if err := d.with(ctx).Model(&model.LicenseAssignment{}).Where("id IN ?", chunk).UpdateColumn("seen_run_id", runID).Error; err != nil {
				return fmt.Errorf("mark seen: %w", err)
			}
		}
		return nil
	}
	for chunk := range slices.Chunk(ids, sqliteJSONRowsPerStatement) {
		if _, err := d.execCounted(ctx, "UPDATE license_assignments SET seen_run_id = ? WHERE id IN (SELECT value FROM json_each(?))", runID, sqliteJSONInts(chunk)); err != nil {
			return fmt.Errorf("mark seen: %w", err)
		}
	}
	return nil
}

// foundRow is an assignment of a page with its holder and pool.
type foundRow struct {
	row  AppleAssignmentRow
	kind model.LicenseKind
	key  string
	ref  PoolRef
}

// newFoundAssignments inserts assignments found at Apple, linked to the devices and users
// Orchard knows by serial number and clientUserId.
func (d *DB) newFoundAssignments(ctx context.Context, accountID, runID int64, list []foundRow, now time.Time) (int, error) {
	var serials, cuids []string
	for _, w := range list {
		if w.kind == model.LicenseKindDevice {
			serials = append(serials, w.row.SerialNumber)
		} else {
			cuids = append(cuids, w.row.ClientUserID)
		}
	}
	devices := map[string]int64{}
	if len(serials) > 0 {
		var ds []struct {
			ID           int64
			SerialNumber string
		}
		for chunk := range slices.Chunk(serials, d.inChunk()) {
			if err := d.with(ctx).Model(&model.Device{}).Select("id", "serial_number").Where("serial_number IN ?", chunk).Find(&ds).Error; err != nil {
				return 0, wrap("new found assignments", err)
			}
			for _, x := range ds {
				devices[x.SerialNumber] = x.ID
			}
		}
	}
	users := map[string]int64{}
	if len(cuids) > 0 {
		var us []struct {
			ID           int64
			ClientUserID string
		}
		for chunk := range slices.Chunk(cuids, d.inChunk()) {
			if err := d.with(ctx).Model(&model.User{}).Select("id", "client_user_id").Where("client_user_id IN ?", chunk).Find(&us).Error; err != nil {
				return 0, wrap("new found assignments", err)
			}
			for _, x := range us {
				users[x.ClientUserID] = x.ID
			}
		}
	}
	cols := []string{"pool_id", "account_id", "app_id", "kind", "serial_number", "client_user_id", "device_id", "user_id", "holder_key",
		"status", "origin", "reason", "caused_by", "assigned_at", "seen_run_id", "created_at", "updated_at"}
	var seen any
	if runID != 0 {
		seen = runID
	}
	rows := make([][]any, 0, len(list))
	for _, w := range list {
		var serial, cuid, device, user any
		if w.kind == model.LicenseKindDevice {
			serial = w.row.SerialNumber
			if id, ok := devices[w.row.SerialNumber]; ok {
				device = id
			}
		} else {
			cuid = w.row.ClientUserID
			if id, ok := users[w.row.ClientUserID]; ok {
				user = id
			}
		}
		rows = append(rows, []any{w.ref.PoolID, accountID, w.ref.AppID, string(w.kind), serial, cuid, device, user, w.key,
			string(model.AssignmentAssigned), string(model.OriginFoundAtApple), foundReason, "sync", now, seen, now, now})
	}
	// A notification of the same assignment (or a pass of another replica that lost its
	// lease) may insert it between the look-up and this insert: such a row is left as it is
	// (the unique (pool, holder) index refuses the second), and marked seen by this pass.
	inserted, err := d.insertRows(ctx, "license_assignments", cols, rows, true)
	if err != nil {
		return 0, fmt.Errorf("insert found assignments: %w", err)
	}
	if int(inserted) < len(list) && runID != 0 {
		pairs := make([][2]any, 0, len(list))
		for _, w := range list {
			pairs = append(pairs, [2]any{w.ref.PoolID, w.key})
		}
		for chunk := range slices.Chunk(pairs, d.inChunk()/2) {
			q, args := d.pairIn("UPDATE license_assignments SET seen_run_id = ? WHERE (pool_id, holder_key) IN ", chunk)
			if err := d.with(ctx).Exec(q, append([]any{runID}, args...)...).Error; err != nil {
				return 0, wrap("new found assignments", err)
			}
		}
	}
	return int(inserted), nil
}

// foundReason is the reason recorded on an assignment a sync found at Apple.
const foundReason = "held at Apple but unknown to Orchard when a sync found it"

// SweepAssignments ends a full pass: assignments Orchard believed held at Apple that the pass
// did not see are gone there (GONE_AT_APPLE). A RECLAIMING one was reclaimed (the
// disassociate went through); an ASSIGNED one was removed at Apple (in Apple Business
// Manager, or by another tool) and is kept as drift with the time it was found. Assignments
// confirmed after the pass started are left for the next pass, which will have seen them.
//
// It works in chunks of sweepChunk assignments in id order, each in its own transaction, so
// that memory and the time a transaction holds its locks (SQLite's one writer) stay bounded
// however many assignments Apple dropped: an account of a million whose licenses were all
// revoked at Apple is a thousand small transactions, not one that loads a million rows.
// Every chunk is fenced by the run (still RUNNING, its row locked): once another replica has
// declared the pass dead, the rest of the sweep changes nothing.
func (d *DB) SweepAssignments(ctx context.Context, accountID, runID int64, passStart time.Time) (int, error) {
	passStart = utc(passStart)
	removed := 0
	// One status at a time: the (account_id, status) index then hands out the ids in order
	// (after the last chunk's, LIMIT stops the read), where an IN over statuses would sort
	// every remaining row of the account for each chunk.
	for _, status := range model.EventSources(model.EventGoneAtApple) {
		for after := int64(0); ; {
			n, last, more, err := d.sweepAssignmentsAfter(ctx, accountID, runID, status, passStart, after)
			if err != nil {
				return removed, fmt.Errorf("sweep assignments: %w", err)
			}
			removed += n
			if !more {
				break
			}
			after = last
		}
	}
	return removed, nil
}

// sweepChunk is the number of unseen assignments a transaction of SweepAssignments takes.
const sweepChunk = 1000

// sweepAssignmentsAfter sweeps the next chunk of unseen assignments in status with ids after
// after. It returns how many it removed, the last id it looked at, and whether more may
// follow.
func (d *DB) sweepAssignmentsAfter(ctx context.Context, accountID, runID int64, status model.AssignmentStatus, passStart time.Time, after int64) (removed int, last int64, more bool, err error) {
	err = d.Tx(ctx, func(tx *DB) error {
		removed, last, more = 0, after, false
		// The run's row, locked: a replica that declares the pass dead (FailStaleRuns) waits
		// for the chunk, or the chunk finds the pass no longer RUNNING and changes nothing.
		var live []int64
		if err := tx.forUpdate(tx.with(ctx).Model(&model.SyncRun{})).Where("id = ? AND status = ?", runID, model.SyncRunRunning).
			Pluck("id", &live).Error; err != nil {
			return fmt.Errorf("lock the run: %w", err)
		}
		if len(live) == 0 {
			return nil
		}
		var ids []int64
		unseen := "account_id = ? AND status = ? AND id > ? AND (seen_run_id IS NULL OR seen_run_id <> ?) AND (assigned_at IS NULL OR assigned_at < ?) AND " + runningFence
		if err := tx.with(ctx).Model(&model.LicenseAssignment{}).
			Where(unseen, accountID, status, after, runID, passStart, runID, model.SyncRunRunning).
			Order("id").Limit(sweepChunk).Pluck("id", &ids).Error; err != nil {
			return fmt.Errorf("find unseen assignments: %w", err)
		}
		if len(ids) == 0 {
			return nil
		}
		last, more = ids[len(ids)-1], len(ids) == sweepChunk
		applied, err := tx.ApplyTransitions(ctx, model.EventGoneAtApple, ids, TransitionDetails{
			ReclaimReason: "no longer held at Apple (removed in Apple Business Manager or by another tool)", ReclaimedBy: "sync"})
		removed = len(applied)
		return wrap("apply transitions", err)
	})
	return removed, last, more, err
}

// pairIn renders "prefix (col1, col2) IN <list of pairs>" for the dialect: SQLite wants a
// VALUES subquery on the right of a row-value IN, MySQL a list of rows.
func (d *DB) pairIn(prefix string, pairs [][2]any) (string, []any) {
	var sb strings.Builder
	sb.WriteString(prefix)
	args := make([]any, 0, 2*len(pairs))
	if d.dialect == SQLite {
		sb.WriteString("(VALUES ")
	} else {
		sb.WriteString("(")
	}
	args = appendPairs(&sb, args, pairs)
	sb.WriteString(")")
	return sb.String(), args
}

// appendPairs writes "(?,?),(?,?),…" for pairs to sb and returns args with their values.
func appendPairs(sb *strings.Builder, args []any, pairs [][2]any) []any {
	for i, p := range pairs {
		if i > 0 {
			sb.WriteString(",")
		}
		sb.WriteString("(?,?)")
		args = append(args, p[0], p[1])
	}
	return args
}

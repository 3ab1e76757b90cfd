package db

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"gorm.io/gorm"

	"orchard/model"
)

// The assignment state machine applied: ApplyTransitions is the one function that changes an
// assignment's status and moves its pool's counters, by model.Transitions. Callers name the
// event; the table says what it does in each state.

// TransitionObserver is told of the transitions ApplyTransitions applied, inside the same
// transaction: what it writes with tx commits or rolls back with them, and an error it returns
// rolls the transaction back. A transaction that a deadlock runs again calls it again.
type TransitionObserver func(ctx context.Context, tx *DB, applied []model.AppliedTransition) error

// observers is the list of transition observers, shared by a DB and the copies its
// transactions make.
type observers struct {
	mu  sync.RWMutex
	fns []TransitionObserver
}

func (o *observers) list() []TransitionObserver {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.fns
}

// OnTransitions registers fn to be called after every ApplyTransitions that changed at least
// one assignment, inside its transaction. It is meant for wiring time (license registers its
// observers when it is built); fn sees every transition of every caller.
func (d *DB) OnTransitions(fn TransitionObserver) {
	d.observers.mu.Lock()
	defer d.observers.mu.Unlock()
	d.observers.fns = append(slices.Clip(d.observers.fns), fn)
}

// TransitionDetails are the values a transition records when its effects say so: Apple's
// refusal (model.EffectRecordError; ErrorNumber nil leaves the number as it is) and who took
// the license back and why (model.EffectRecordReclaim). Callers truncate them to the column.
type TransitionDetails struct {
	ErrorNumber                *int
	ErrorMessage               string
	ReclaimReason, ReclaimedBy string
}

// transitionRow is what ApplyTransitions reads of an assignment.
type transitionRow struct {
	ID, PoolID, AccountID, AppID int64
	Kind                         model.LicenseKind
	DeviceID, UserID             *int64
	Origin                       model.AssignmentOrigin
	Status                       model.AssignmentStatus
	ReclaimReason                *string
	SerialNumber, ClientUserID   *string
}

var transitionCols = []string{"id", "pool_id", "account_id", "app_id", "kind", "device_id", "user_id", "origin", "status",
	"reclaim_reason", "serial_number", "client_user_id"}

// poolDelta is how a pool's counters moved.
type poolDelta struct{ assigned, reserved int64 }

// transitionResult is what applyTransitions did.
type transitionResult struct {
	applied []model.AppliedTransition
	pools   map[int64]poolDelta
}

// appleDeltas returns, per pool, how many more licenses Apple holds after the transitions:
// its assigned count moves with Orchard's (model.TransitionStep).
func (r transitionResult) appleDeltas(into map[int64]int64) map[int64]int64 {
	if into == nil {
		into = map[int64]int64{}
	}
	for pool, x := range r.pools {
		if x.assigned != 0 {
			into[pool] += x.assigned
		}
	}
	return into
}

// ApplyTransitions applies event ev to the assignments ids, in bulk, in one transaction (the
// caller's, if it is in one): it locks and reads the rows, looks up each one's step in
// model.Transitions, sets the statuses and the columns the steps' effects name, moves each
// pool's counters by the steps' deltas, queues the disassociates and releases the waiting
// device commands the effects ask for, and tells the observers (OnTransitions). Assignments in
// a state the event does not apply to are left alone (an answer that came too late, a second
// reclaim), as are ids that do not exist. It returns the transitions applied.
func (d *DB) ApplyTransitions(ctx context.Context, ev model.AssignmentEvent, ids []int64, det TransitionDetails) ([]model.AppliedTransition, error) {
	res, err := d.applyTransitions(ctx, ev, ids, det)
	return res.applied, wrap("apply transitions", err)
}

func (d *DB) applyTransitions(ctx context.Context, ev model.AssignmentEvent, ids []int64, det TransitionDetails) (res transitionResult, err error) {
	if len(ids) == 0 {
		return res, nil
	}
	err = d.inTx(ctx, func(tx *DB) error {
		var err error
		res, err = tx.applyTransitionsTx(ctx, ev, ids, det)
		return wrap("apply transitions", err)
	})
	if err != nil {
		return transitionResult{}, fmt.Errorf("apply %s to %d assignments: %w", ev, len(ids), err)
	}
	return res, nil
}

func (d *DB) applyTransitionsTx(ctx context.Context, ev model.AssignmentEvent, ids []int64, det TransitionDetails) (transitionResult, error) {
	res := transitionResult{pools: map[int64]poolDelta{}}
	now := Now()
	var rows []transitionRow
	for chunk := range slices.Chunk(uniqueIDs(ids), d.inChunk()) {
		var got []transitionRow
		if err := d.forUpdate(d.with(ctx).Model(&model.LicenseAssignment{})).Select(transitionCols).
			Where("id IN ?", chunk).Scan(&got).Error; err != nil {
			return res, fmt.Errorf("lock assignments: %w", err)
		}
		rows = append(rows, got...)
	}
	// One update per (from, step): the rows of a bulk event share a handful of states.
	type group struct {
		from model.AssignmentState
		step model.TransitionStep
		rows []transitionRow
	}
	var groups []*group
	byFrom := map[model.AssignmentState]*group{}
	for _, r := range rows {
		from := model.StateOf(r.Status, r.ReclaimReason)
		step, ok := model.LookupTransition(ev, from)
		if !ok {
			continue
		}
		g := byFrom[from]
		if g == nil {
			g = &group{from: from, step: step}
			byFrom[from] = g
			groups = append(groups, g)
		}
		g.rows = append(g.rows, r)
	}
	var disassociate []transitionRow
	var release []int64
	for _, g := range groups {
		cols := stepColumns(g.step, det, now)
		gids := make([]int64, len(g.rows))
		for i, r := range g.rows {
			gids[i] = r.ID
			x := res.pools[r.PoolID]
			x.assigned += g.step.Assigned
			x.reserved += g.step.Reserved
			res.pools[r.PoolID] = x
			res.applied = append(res.applied, model.AppliedTransition{AssignmentID: r.ID, PoolID: r.PoolID, AccountID: r.AccountID,
				AppID: r.AppID, Kind: r.Kind, DeviceID: r.DeviceID, UserID: r.UserID, Origin: r.Origin, Event: ev,
				From: g.from.Status, To: g.step.To.Status})
		}
		for chunk := range slices.Chunk(gids, d.inChunk()) {
			if err := d.with(ctx).Model(&model.LicenseAssignment{}).Where("id IN ? AND status = ?", chunk, g.from.Status).
				UpdateColumns(cols).Error; err != nil {
				return res, fmt.Errorf("set %s: %w", g.step.To, err)
			}
		}
		if g.step.Effects.Has(model.EffectQueueDisassociate) {
			disassociate = append(disassociate, g.rows...)
		}
		if g.step.Effects.Has(model.EffectReleaseCommands) {
			release = append(release, gids...)
		}
	}
	// Pools in id order, so that two transactions moving the same pools lock them in the same
	// order.
	pools := slices.Sorted(func(yield func(int64) bool) {
		for id := range res.pools {
			if !yield(id) {
				return
			}
		}
	})
	for _, id := range pools {
		x := res.pools[id]
		if x.assigned == 0 && x.reserved == 0 {
			continue
		}
		if err := d.AdjustPoolCounts(ctx, id, x.assigned, x.reserved); err != nil {
			return res, fmt.Errorf("move counters of pool %d: %w", id, err)
		}
	}
	if err := d.queueDisassociates(ctx, disassociate, now); err != nil {
		return res, wrap("apply transitions tx", err)
	}
	if err := d.releaseWaitingCommands(ctx, release); err != nil {
		return res, wrap("apply transitions tx", err)
	}
	if len(res.applied) > 0 {
		for _, fn := range d.observers.list() {
			if err := fn(ctx, d, res.applied); err != nil {
				return res, fmt.Errorf("transition observer: %w", err)
			}
		}
	}
	return res, nil
}

// stepColumns are the columns a step sets.
func stepColumns(step model.TransitionStep, det TransitionDetails, now time.Time) map[string]any {
	cols := map[string]any{"status": step.To.Status, "updated_at": now}
	e := step.Effects
	if e.Has(model.EffectReleaseHolder) {
		cols["holder_key"] = nil
	}
	if e.Has(model.EffectStampAssigned) {
		cols["assigned_at"] = now
	}
	if e.Has(model.EffectStampReclaimed) {
		cols["reclaimed_at"] = now
	}
	if e.Has(model.EffectStampRemoved) {
		cols["removed_at_apple_at"] = now
	}
	if e.Has(model.EffectRecordReclaim) {
		cols["reclaim_reason"], cols["reclaimed_by"] = det.ReclaimReason, det.ReclaimedBy
	}
	if e.Has(model.EffectClearReclaim) {
		cols["reclaim_reason"], cols["reclaimed_by"] = nil, nil
	}
	if e.Has(model.EffectRecordError) {
		cols["error_message"] = det.ErrorMessage
		if det.ErrorNumber != nil {
			cols["error_number"] = *det.ErrorNumber
		}
	}
	return cols
}

// queueDisassociates queues the disassociate that takes each row's license back at Apple.
func (d *DB) queueDisassociates(ctx context.Context, rows []transitionRow, now time.Time) error {
	if len(rows) == 0 {
		return nil
	}
	poolIDs := make([]int64, 0, len(rows))
	for _, r := range rows {
		poolIDs = append(poolIDs, r.PoolID)
	}
	pools := map[int64]model.LicensePool{}
	for chunk := range slices.Chunk(uniqueIDs(poolIDs), d.inChunk()) {
		var got []model.LicensePool
		if err := d.with(ctx).Select("id", "adam_id", "pricing_param").Where("id IN ?", chunk).Find(&got).Error; err != nil {
			return fmt.Errorf("read pools for disassociates: %w", err)
		}
		for _, p := range got {
			pools[p.ID] = p
		}
	}
	items := make([]*model.OutboxItem, 0, len(rows))
	for _, r := range rows {
		items = append(items, disassociateItem(r, pools[r.PoolID], now))
	}
	if err := d.InsertOutbox(ctx, items...); err != nil {
		return fmt.Errorf("queue disassociates: %w", err)
	}
	return nil
}

// disassociateItem is the outbox item that takes an assignment's license back at Apple.
func disassociateItem(r transitionRow, pool model.LicensePool, now time.Time) *model.OutboxItem {
	id := r.ID
	return &model.OutboxItem{AccountID: r.AccountID, Action: model.OutboxDisassociate, AssignmentID: &id, AdamID: pool.AdamID,
		PricingParam: pool.PricingParam, SerialNumber: r.SerialNumber, ClientUserID: r.ClientUserID,
		Status: model.OutboxQueued, NotBefore: now, CreatedAt: now}
}

// releaseWaitingCommands lets the device commands that waited for these licenses ("install
// only after Apple confirms") go.
func (d *DB) releaseWaitingCommands(ctx context.Context, assignmentIDs []int64) error {
	for chunk := range slices.Chunk(assignmentIDs, d.inChunk()) {
		if err := d.with(ctx).Model(&model.DeviceCommand{}).Where("assignment_id IN ? AND waits_for_assignment = ?", chunk, true).
			UpdateColumn("waits_for_assignment", false).Error; err != nil {
			return fmt.Errorf("release waiting commands: %w", err)
		}
	}
	return nil
}

// lockAssignmentRows locks assignment rows until the transaction ends, in id order (MySQL;
// SQLite's writers are serialised as a whole), for an operation that applies several events
// and so would otherwise lock its rows in several rounds, between which it locks pools.
func (d *DB) lockAssignmentRows(ctx context.Context, ids []int64) error {
	if d.dialect != MySQL || len(ids) == 0 {
		return nil
	}
	ids = uniqueIDs(ids)
	slices.Sort(ids)
	for chunk := range slices.Chunk(ids, d.inChunk()) {
		var got []int64
		if err := d.forUpdate(d.with(ctx).Model(&model.LicenseAssignment{})).Where("id IN ?", chunk).Pluck("id", &got).Error; err != nil {
			return fmt.Errorf("lock assignments: %w", err)
		}
	}
	return nil
}

// inTx runs fn in the transaction d is in, or in a new one. Unlike a nested Tx it sets no
// savepoint: the enclosing transaction rolls back as a whole.
func (d *DB) inTx(ctx context.Context, fn func(tx *DB) error) error {
	if _, nested := d.gorm.Statement.ConnPool.(gorm.TxCommitter); nested {
		return fn(d)
	}
	return d.Tx(ctx, fn)
}

// uniqueIDs returns ids without repeats, in their first order.
func uniqueIDs(ids []int64) []int64 {
	seen := make(map[int64]bool, len(ids))
	out := make([]int64, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

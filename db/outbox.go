package db

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"gorm.io/gorm"

	"orchard/model"
)

// CancelAccountWork cancels an account's work that has not reached Apple: its queued outbox
// items fail; the assignments they were for move by ASSOCIATE_CANCELLED (they fail, the
// reservation is released) or RECLAIM_CANCELLED (back to ASSIGNED: a reclaim that will not
// happen); queued passes are dropped. It returns how many outbox items it cancelled.
func (d *DB) CancelAccountWork(ctx context.Context, accountID int64, why string) (int, error) {
	n, err := d.cancelAccountWork(ctx, accountID, why)
	if err != nil {
		return 0, fmt.Errorf("cancel work of account %d: %w", accountID, err)
	}
	return n, nil
}

// cancelAccountWork is CancelAccountWork; its errors name the step, the caller the account.
func (d *DB) cancelAccountWork(ctx context.Context, accountID int64, why string) (int, error) {
	now := Now()
	var items []model.OutboxItem
	if err := d.with(ctx).Where("account_id = ? AND status = ?", accountID, model.OutboxQueued).Find(&items).Error; err != nil {
		return 0, fmt.Errorf("read queued items: %w", err)
	}
	dropRuns := func() error {
		if err := d.with(ctx).Where("account_id = ? AND status = ?", accountID, model.SyncRunQueued).Delete(&model.SyncRun{}).Error; err != nil {
			return fmt.Errorf("drop queued passes: %w", err)
		}
		return nil
	}
	if len(items) == 0 {
		return 0, dropRuns()
	}
	var ids, assoc, reclaim []int64
	for _, it := range items {
		ids = append(ids, it.ID)
		if it.AssignmentID == nil {
			continue
		}
		switch it.Action {
		case model.OutboxAssociate:
			assoc = append(assoc, *it.AssignmentID)
		case model.OutboxDisassociate, model.OutboxRevoke:
			reclaim = append(reclaim, *it.AssignmentID)
		}
	}
	if err := d.with(ctx).Model(&model.OutboxItem{}).Where("id IN ?", ids).
		UpdateColumns(map[string]any{"status": model.OutboxFailed, "last_error": why, "completed_at": now}).Error; err != nil {
		return 0, fmt.Errorf("fail queued items: %w", err)
	}
	if err := d.lockAssignmentRows(ctx, slices.Concat(assoc, reclaim)); err != nil {
		return 0, fmt.Errorf("lock assignments: %w", err)
	}
	if _, err := d.applyTransitions(ctx, model.EventAssociateCancelled, assoc, TransitionDetails{ErrorMessage: why}); err != nil {
		return 0, fmt.Errorf("cancel associates: %w", err)
	}
	if _, err := d.applyTransitions(ctx, model.EventReclaimCancelled, reclaim, TransitionDetails{}); err != nil {
		return 0, fmt.Errorf("cancel reclaims: %w", err)
	}
	if err := dropRuns(); err != nil {
		return 0, err // named by dropRuns
	}
	// The transitions moved the counters; the recount settles any drift while the account's
	// work is being wound up.
	if _, err := d.RecountPools(ctx, accountID); err != nil {
		return 0, err // named by RecountPools
	}
	return len(items), nil
}

// AccountsWithWork lists the accounts that have outbox items due or events due for a poll.
func (d *DB) AccountsWithWork(ctx context.Context, now time.Time) ([]int64, error) {
	now = utc(now)
	var a, b []int64
	if err := d.with(ctx).Model(&model.OutboxItem{}).Where("status = ? AND not_before <= ?", model.OutboxQueued, now).
		Distinct("account_id").Pluck("account_id", &a).Error; err != nil {
		return nil, wrap("accounts with work", err)
	}
	if err := d.with(ctx).Model(&model.AppleEvent{}).Where("status = ? AND next_poll_at <= ?", model.EventPending, now).
		Distinct("account_id").Pluck("account_id", &b).Error; err != nil {
		return nil, wrap("accounts with work", err)
	}
	// Items a crash left claimed without an event (see RequeueUnrecorded); a live worker
	// records its event within a request's time.
	var c []int64
	if err := d.with(ctx).Model(&model.OutboxItem{}).Where("status = ? AND event_id IS NULL AND sent_at < ?", model.OutboxSent, now.Add(-10*time.Second)).
		Distinct("account_id").Pluck("account_id", &c).Error; err != nil {
		return nil, wrap("accounts with work", err)
	}
	return append(append(a, b...), c...), nil
}

// QueuedOutbox reads an account's due outbox items, oldest first.
func (d *DB) QueuedOutbox(ctx context.Context, accountID int64, now time.Time, limit int) ([]*model.OutboxItem, error) {
	var out []*model.OutboxItem
	err := d.with(ctx).Where("account_id = ? AND status = ? AND not_before <= ?", accountID, model.OutboxQueued, utc(now)).
		Order("id").Limit(limit).Find(&out).Error
	return out, wrap("queued outbox", err)
}

// RecordSent stores an event Apple accepted and marks its outbox items SENT, together: the
// completion can then always find what the event was for.
func (d *DB) RecordSent(ctx context.Context, ev *model.AppleEvent, itemIDs []int64) error {
	return wrap("record sent", d.Tx(ctx, func(tx *DB) error {
		ev.SentAt = utc(ev.SentAt)
		ev.NextPollAt = utc(ev.NextPollAt)
		if ev.Failures == "" {
			ev.Failures = "[]"
		}
		if err := tx.with(ctx).Create(ev).Error; err != nil {
			return fmt.Errorf("insert event: %w", err)
		}
		return wrap("link items", tx.with(ctx).Model(&model.OutboxItem{}).Where("id IN ? AND status = ? AND event_id IS NULL", itemIDs, model.OutboxSent).
			UpdateColumn("event_id", ev.EventID).Error)
	}))
}

// ClaimOutbox marks queued items as being sent (SENT, no event yet) just before the request
// that carries them goes to Apple, and returns the ids it claimed: items cancelled meanwhile
// are not. A claimed item can no longer be cancelled; a reclaim waits for its outcome. Items
// left claimed without an event by a crash are queued again by RequeueUnrecorded.
func (d *DB) ClaimOutbox(ctx context.Context, ids []int64) ([]int64, error) {
	var claimed []int64
	err := d.Tx(ctx, func(tx *DB) error {
		claimed = claimed[:0]
		if err := tx.forUpdate(tx.with(ctx).Model(&model.OutboxItem{})).Where("id IN ? AND status = ?", ids, model.OutboxQueued).
			Pluck("id", &claimed).Error; err != nil {
			return fmt.Errorf("lock queued items: %w", err)
		}
		if len(claimed) == 0 {
			return nil
		}
		return wrap("mark sent", tx.with(ctx).Model(&model.OutboxItem{}).Where("id IN ?", claimed).
			UpdateColumns(map[string]any{"status": model.OutboxSent, "event_id": nil, "sent_at": Now(), "attempts": gorm.Expr("attempts + 1")}).Error)
	})
	return claimed, wrap("claim outbox", err)
}

// UnclaimOutbox queues claimed items again when their request did not reach Apple (the
// account was held, or its token refused), without counting a failure.
func (d *DB) UnclaimOutbox(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	return wrap("unclaim outbox", d.with(ctx).Model(&model.OutboxItem{}).Where("id IN ? AND status = ? AND event_id IS NULL", ids, model.OutboxSent).
		UpdateColumns(map[string]any{"status": model.OutboxQueued, "attempts": gorm.Expr("CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END")}).Error)
}

// RequeueUnrecorded queues again the items a crash left claimed but without an event (Apple
// may or may not have received them; sending again is harmless).
func (d *DB) RequeueUnrecorded(ctx context.Context, accountID int64, before time.Time) (int, error) {
	res := d.with(ctx).Model(&model.OutboxItem{}).Where("account_id = ? AND status = ? AND event_id IS NULL AND sent_at < ?", accountID, model.OutboxSent, utc(before)).
		UpdateColumns(map[string]any{"status": model.OutboxQueued, "not_before": Now(), "last_error": "sent when the process stopped; sending again"})
	return int(res.RowsAffected), wrap("requeue unrecorded", res.Error)
}

// RetryOutbox puts items back in the queue after a transient failure, not before notBefore.
func (d *DB) RetryOutbox(ctx context.Context, itemIDs []int64, notBefore time.Time, why string) error {
	if len(itemIDs) == 0 {
		return nil
	}
	return wrap("retry outbox", d.with(ctx).Model(&model.OutboxItem{}).Where("id IN ?", itemIDs).
		UpdateColumns(map[string]any{"status": model.OutboxQueued, "not_before": utc(notBefore), "last_error": truncate(why, 1000),
			"attempts": gorm.Expr("attempts + 1"), "event_id": nil}).Error)
}

// DelayOutbox postpones items without counting an attempt (they wait for something, such as
// their user's registration).
func (d *DB) DelayOutbox(ctx context.Context, itemIDs []int64, notBefore time.Time) error {
	if len(itemIDs) == 0 {
		return nil
	}
	return wrap("delay outbox", d.with(ctx).Model(&model.OutboxItem{}).Where("id IN ?", itemIDs).UpdateColumn("not_before", utc(notBefore)).Error)
}

// DueEvents reads an account's events that are due for a status poll.
func (d *DB) DueEvents(ctx context.Context, accountID int64, now time.Time, limit int) ([]*model.AppleEvent, error) {
	var out []*model.AppleEvent
	err := d.with(ctx).Where("account_id = ? AND status = ? AND next_poll_at <= ?", accountID, model.EventPending, utc(now)).
		Order("next_poll_at").Limit(limit).Find(&out).Error
	return out, wrap("due events", err)
}

// AppleEvent reads an event.
func (d *DB) AppleEvent(ctx context.Context, eventID string) (*model.AppleEvent, error) {
	var e model.AppleEvent
	if err := d.with(ctx).Where("event_id = ?", eventID).Take(&e).Error; err != nil {
		return nil, wrap("apple event", notFound(err))
	}
	return &e, nil
}

// UpdateAppleEvent sets columns of an event.
func (d *DB) UpdateAppleEvent(ctx context.Context, eventID string, cols map[string]any) error {
	for k, v := range cols {
		if t, ok := v.(time.Time); ok {
			cols[k] = utc(t)
		}
	}
	return wrap("update apple event", d.with(ctx).Model(&model.AppleEvent{}).Where("event_id = ?", eventID).UpdateColumns(cols).Error)
}

// SentItemsOfEvent reads the outbox items an event is for that are still waiting for it.
func (d *DB) SentItemsOfEvent(ctx context.Context, eventID string) ([]*model.OutboxItem, error) {
	var out []*model.OutboxItem
	err := d.with(ctx).Where("event_id = ? AND status = ?", eventID, model.OutboxSent).Order("id").Find(&out).Error
	return out, wrap("sent items of event", err)
}

// Outcome is what Apple said of one outbox item.
type Outcome struct {
	Item *model.OutboxItem
	// OK: done. Else ErrorNumber/ErrorMessage say why not.
	OK           bool
	ErrorNumber  int
	ErrorMessage string
}

// ApplyOutcomes completes outbox items and the assignments and registrations they were for,
// in one transaction. Items already completed (by the other of notification and poll) are
// skipped. Apple's answers to associates and disassociates are the events ASSOCIATE_CONFIRMED
// / ASSOCIATE_REFUSED and RECLAIM_CONFIRMED / RECLAIM_REFUSED, applied in bulk by
// ApplyTransitions (which moves the pools' counters by the table) — an event of a thousand
// items costs a handful of statements — so that the pool rows it locks are soon free again;
// Apple's counts of the pools move with them. It returns the assignments that became ASSIGNED.
func (d *DB) ApplyOutcomes(ctx context.Context, outcomes []Outcome) (assigned []int64, err error) {
	if len(outcomes) == 0 {
		return nil, nil
	}
	now := Now()
	byID := make(map[int64]Outcome, len(outcomes))
	ids := make([]int64, 0, len(outcomes))
	for _, o := range outcomes {
		if _, dup := byID[o.Item.ID]; !dup {
			ids = append(ids, o.Item.ID)
		}
		byID[o.Item.ID] = o
	}
	err = d.Tx(ctx, func(tx *DB) error {
		assigned = assigned[:0]
		// The items still waiting, locked: each outcome applies once.
		var live []int64
		for _, chunk := range chunks(ids, 1000) {
			var got []int64
			if err := tx.forUpdate(tx.with(ctx).Model(&model.OutboxItem{})).Where("id IN ? AND status IN ?", chunk,
				[]model.OutboxStatus{model.OutboxSent, model.OutboxQueued}).Pluck("id", &got).Error; err != nil {
				return fmt.Errorf("lock live items: %w", err)
			}
			live = append(live, got...)
		}
		type failKey struct {
			num int
			msg string
		}
		var assocOK, disOK, done []int64
		assocFail := map[failKey][]int64{}
		disFail := map[failKey][]int64{}
		itemFail := map[string][]int64{}
		for _, id := range live {
			o := byID[id]
			it := o.Item
			if o.OK {
				done = append(done, id)
			} else {
				m := truncate(o.ErrorMessage, 1000)
				itemFail[m] = append(itemFail[m], id)
			}
			switch it.Action {
			case model.OutboxAssociate, model.OutboxDisassociate, model.OutboxRevoke:
				if it.AssignmentID == nil {
					continue
				}
				a := *it.AssignmentID
				k := failKey{o.ErrorNumber, truncate(o.ErrorMessage, 900)}
				switch {
				case it.Action == model.OutboxAssociate && o.OK:
					assocOK = append(assocOK, a)
				case it.Action == model.OutboxAssociate:
					assocFail[k] = append(assocFail[k], a)
				case o.OK:
					disOK = append(disOK, a)
				default:
					disFail[k] = append(disFail[k], a)
				}
			case model.OutboxCreateUser:
				if err := tx.completeRegistration(ctx, it, o, now); err != nil {
					return err // named by completeRegistration
				}
			case model.OutboxRetireUser:
				switch {
				case it.AppleUserID == nil:
				case o.OK:
					if err := tx.UpdateAppleUser(ctx, *it.AppleUserID, map[string]any{"status": model.AppleUserRetired, "error_message": nil}); err != nil {
						return fmt.Errorf("retire user: %w", err)
					}
				default:
					// Still registered as far as Orchard knows (a pass corrects it); not stuck
					// RETIRING, which would refuse the user's next registration.
					if err := tx.UpdateAppleUser(ctx, *it.AppleUserID, map[string]any{"status": model.AppleUserRegistered,
						"error_message": truncate("Apple refused to retire the user: "+o.ErrorMessage, 1000)}); err != nil {
						return fmt.Errorf("keep user registered: %w", err)
					}
				}
			}
		}
		for _, chunk := range chunks(done, 1000) {
			if err := tx.with(ctx).Model(&model.OutboxItem{}).Where("id IN ?", chunk).
				UpdateColumns(map[string]any{"status": model.OutboxDone, "last_error": nil, "completed_at": now}).Error; err != nil {
				return fmt.Errorf("complete items: %w", err)
			}
		}
		for msg, ids := range itemFail {
			for _, chunk := range chunks(ids, 1000) {
				if err := tx.with(ctx).Model(&model.OutboxItem{}).Where("id IN ?", chunk).
					UpdateColumns(map[string]any{"status": model.OutboxFailed, "last_error": msg, "completed_at": now}).Error; err != nil {
					return fmt.Errorf("fail items: %w", err)
				}
			}
		}
		// Every assignment of the outcomes locked at once, in id order, before the
		// transitions below lock pools: a sync page that confirms some of them (assignment
		// rows, then pools) then waits instead of deadlocking with this one.
		if err := tx.lockAssignmentRows(ctx, slices.Concat(assocOK, disOK, slices.Concat(slices.Collect(maps.Values(assocFail))...),
			slices.Concat(slices.Collect(maps.Values(disFail))...))); err != nil {
			return fmt.Errorf("lock assignments: %w", err)
		}
		// Apple's counts move with the licenses it now holds or released (its next listing
		// says so too).
		apple := map[int64]int64{}
		res, err := tx.applyTransitions(ctx, model.EventAssociateConfirmed, assocOK, TransitionDetails{})
		if err != nil {
			return fmt.Errorf("associates confirmed: %w", err)
		}
		res.appleDeltas(apple)
		for _, a := range res.applied {
			if a.To == model.AssignmentAssigned { // reported to the caller; RECLAIMING ones go on to their reclaim
				assigned = append(assigned, a.AssignmentID)
			}
		}
		for k, ids := range assocFail {
			num := k.num
			res, err := tx.applyTransitions(ctx, model.EventAssociateRefused, ids, TransitionDetails{ErrorNumber: &num, ErrorMessage: k.msg})
			if err != nil {
				return fmt.Errorf("associates refused: %w", err)
			}
			res.appleDeltas(apple)
		}
		res, err = tx.applyTransitions(ctx, model.EventReclaimConfirmed, disOK, TransitionDetails{})
		if err != nil {
			return fmt.Errorf("reclaims confirmed: %w", err)
		}
		res.appleDeltas(apple)
		for k, ids := range disFail {
			num := k.num
			res, err := tx.applyTransitions(ctx, model.EventReclaimRefused, ids, TransitionDetails{ErrorNumber: &num,
				ErrorMessage: "Apple refused to take the license back: " + k.msg})
			if err != nil {
				return fmt.Errorf("reclaims refused: %w", err)
			}
			res.appleDeltas(apple)
		}
		if err := tx.adjustAppleAssigned(ctx, apple); err != nil {
			return fmt.Errorf("move Apple's counts: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("apply outcomes: %w", err)
	}
	return assigned, nil
}

// completeRegistration: the user is registered at Apple (their licenses can be sent), or
// could not be, and the licenses waiting for it fail with the reason (ASSOCIATE_REFUSED).
func (d *DB) completeRegistration(ctx context.Context, it *model.OutboxItem, o Outcome, now time.Time) error {
	if it.AppleUserID == nil {
		return nil
	}
	if o.OK {
		if err := d.UpdateAppleUser(ctx, *it.AppleUserID, map[string]any{"status": model.AppleUserRegistered, "error_message": nil}); err != nil {
			return fmt.Errorf("complete registration: %w", err)
		}
		return nil
	}
	if err := d.UpdateAppleUser(ctx, *it.AppleUserID, map[string]any{"status": model.AppleUserFailed, "error_message": truncate(o.ErrorMessage, 1000)}); err != nil {
		return fmt.Errorf("fail registration: %w", err)
	}
	var waiting []*model.OutboxItem
	if err := d.with(ctx).Where("account_id = ? AND action = ? AND status = ? AND client_user_id = ?", it.AccountID, model.OutboxAssociate,
		model.OutboxQueued, it.ClientUserID).Find(&waiting).Error; err != nil {
		return fmt.Errorf("read associates waiting for a registration: %w", err)
	}
	var itemIDs, assignmentIDs []int64
	for _, w := range waiting {
		itemIDs = append(itemIDs, w.ID)
		if w.AssignmentID != nil {
			assignmentIDs = append(assignmentIDs, *w.AssignmentID)
		}
	}
	for chunk := range slices.Chunk(itemIDs, d.inChunk()) {
		if err := d.with(ctx).Model(&model.OutboxItem{}).Where("id IN ?", chunk).
			UpdateColumns(map[string]any{"status": model.OutboxFailed, "last_error": "user registration failed", "completed_at": now}).Error; err != nil {
			return fmt.Errorf("fail associates waiting for a registration: %w", err)
		}
	}
	num := o.ErrorNumber
	_, err := d.applyTransitions(ctx, model.EventAssociateRefused, assignmentIDs, TransitionDetails{ErrorNumber: &num,
		ErrorMessage: truncate("the user could not be registered at Apple: "+o.ErrorMessage, 1000)})
	return wrap("complete registration", err)
}

// StalledEvents reads events pending for longer than before (Apple: retry the request after
// ten minutes without an answer).
func (d *DB) StalledEvents(ctx context.Context, accountID int64, before time.Time) ([]*model.AppleEvent, error) {
	var out []*model.AppleEvent
	err := d.with(ctx).Where("account_id = ? AND status = ? AND sent_at < ?", accountID, model.EventPending, utc(before)).Find(&out).Error
	return out, wrap("stalled events", err)
}

// RequeueEvent gives up on an event and queues its unfinished items again (re-sending an
// associate or disassociate is harmless: Apple treats it as done).
func (d *DB) RequeueEvent(ctx context.Context, eventID, why string) error {
	return wrap("requeue event", d.Tx(ctx, func(tx *DB) error {
		// Marshalled, not spliced: a reason with a quote or a backslash must still be JSON.
		failures, err := json.Marshal([]map[string]string{{"errorMessage": why}})
		if err != nil {
			return fmt.Errorf("encode failures: %w", err)
		}
		if err := tx.UpdateAppleEvent(ctx, eventID, map[string]any{"status": model.EventFailed, "completed_at": Now(), "failures": string(failures)}); err != nil {
			return err // named by UpdateAppleEvent
		}
		return wrap("queue items again", tx.with(ctx).Model(&model.OutboxItem{}).Where("event_id = ? AND status = ?", eventID, model.OutboxSent).
			UpdateColumns(map[string]any{"status": model.OutboxQueued, "event_id": nil, "not_before": Now(), "last_error": why}).Error)
	}))
}

// OutboxByIDs reads outbox items.
func (d *DB) OutboxByIDs(ctx context.Context, ids []int64) ([]*model.OutboxItem, error) {
	var out []*model.OutboxItem
	if len(ids) == 0 {
		return out, nil
	}
	err := d.with(ctx).Where("id IN ?", ids).Find(&out).Error
	return out, wrap("outbox by ids", err)
}

// UserForRegistration reads the user an account registration is for.
func (d *DB) UserForRegistration(ctx context.Context, it *model.OutboxItem) (*model.User, error) {
	var u model.User
	err := d.with(ctx).Where("client_user_id = ?", it.ClientUserID).Take(&u).Error
	if err != nil {
		return nil, wrap("user for registration", notFound(err))
	}
	return &u, nil
}

// ReleaseOutbox lets the queued outbox items of the given assignments go now.
func (d *DB) ReleaseOutbox(ctx context.Context, assignmentIDs []int64) error {
	for _, chunk := range chunks(assignmentIDs, 1000) {
		if err := d.with(ctx).Model(&model.OutboxItem{}).Where("assignment_id IN ? AND status = ?", chunk, model.OutboxQueued).
			UpdateColumn("not_before", Now()).Error; err != nil {
			return wrap("release outbox", err)
		}
	}
	return nil
}

// chunks splits ids into slices of at most n.
func chunks(ids []int64, n int) [][]int64 {
	var out [][]int64
	for len(ids) > n {
		out = append(out, ids[:n])
		ids = ids[n:]
	}
	if len(ids) > 0 {
		out = append(out, ids)
	}
	return out
}

// DropObsoleteOutbox completes, without sending them, the queued items whose assignment no
// longer needs them (model.OutboxItemNeeded: Apple's confirmation would not move it): an
// associate for an assignment that is not PENDING any more (a pass or a notification found it
// at Apple, or it was cancelled), a disassociate for one that is not RECLAIMING. Sending them
// would undo what happened since: an associate re-sent after a crash must not reach Apple
// after the license was reclaimed. It returns the ids it dropped.
func (d *DB) DropObsoleteOutbox(ctx context.Context, items []*model.OutboxItem) ([]int64, error) {
	var ids []int64
	for _, it := range items {
		if it.AssignmentID != nil && (it.Action == model.OutboxAssociate || it.Action == model.OutboxDisassociate) {
			ids = append(ids, *it.AssignmentID)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	state := map[int64]model.AssignmentState{}
	for _, chunk := range chunks(ids, 1000) {
		var rows []struct {
			ID            int64
			Status        model.AssignmentStatus
			ReclaimReason *string
		}
		if err := d.with(ctx).Model(&model.LicenseAssignment{}).Select("id", "status", "reclaim_reason").Where("id IN ?", chunk).Scan(&rows).Error; err != nil {
			return nil, fmt.Errorf("drop obsolete outbox: read assignments: %w", err)
		}
		for _, r := range rows {
			state[r.ID] = model.StateOf(r.Status, r.ReclaimReason)
		}
	}
	var drop []int64
	for _, it := range items {
		if it.AssignmentID == nil || (it.Action != model.OutboxAssociate && it.Action != model.OutboxDisassociate) {
			continue
		}
		if st, ok := state[*it.AssignmentID]; !ok || !model.OutboxItemNeeded(it.Action, st) {
			drop = append(drop, it.ID)
		}
	}
	for _, chunk := range chunks(drop, 1000) {
		if err := d.with(ctx).Model(&model.OutboxItem{}).Where("id IN ? AND status = ?", chunk, model.OutboxQueued).
			UpdateColumns(map[string]any{"status": model.OutboxDone, "last_error": "no longer needed: the assignment moved on", "completed_at": Now()}).Error; err != nil {
			return nil, fmt.Errorf("drop obsolete outbox: %w", err)
		}
	}
	return drop, nil
}

// InsertOutbox queues work for Apple.
func (d *DB) InsertOutbox(ctx context.Context, items ...*model.OutboxItem) error {
	if len(items) == 0 {
		return nil
	}
	return wrap("insert outbox", d.with(ctx).CreateInBatches(items, d.batchOf(items)).Error)
}

// CancelQueuedAssociate cancels the associate of an assignment if it was never sent to Apple;
// it reports whether it did.
func (d *DB) CancelQueuedAssociate(ctx context.Context, assignmentID int64) (bool, error) {
	// Only an item never attempted: one queued again after an attempt (a crash, a network
	// error) may have reached Apple.
	res := d.with(ctx).Model(&model.OutboxItem{}).Where("assignment_id = ? AND action = ? AND status = ? AND attempts = 0", assignmentID, model.OutboxAssociate, model.OutboxQueued).
		UpdateColumns(map[string]any{"status": model.OutboxFailed, "last_error": "cancelled: the license was taken back before it reached Apple", "completed_at": Now()})
	return res.RowsAffected > 0, wrap("cancel queued associate", res.Error)
}

package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"orchard/apple"
	"orchard/db"
	"orchard/model"
)

// Completion (doc/design.md §2.1, step 4): an event completes from status polling or from its
// ASSET_MANAGEMENT / USER_MANAGEMENT notification, whichever comes first; the other finds
// nothing left to do. Only what Apple confirms counts: an assignment becomes ASSIGNED, or
// FAILED with Apple's error (its reservation released); a reclaim becomes RECLAIMED, or goes
// back to ASSIGNED with the error.

// stallAfter is how long an event may stay PENDING before its work is sent again (Apple: retry
// the request after ten minutes without an answer).
const stallAfter = 10 * time.Minute

// pollEvents polls the account's events that are due.
func (s *Scheduler) pollEvents(ctx context.Context, a *model.Account, tok *apple.Token, now time.Time) error {
	// Under the account's outbox lease no other worker is sending: items claimed without an
	// event are what a worker that died (or lost its lease) left. Sending again is harmless.
	if n, err := s.db.RequeueUnrecorded(ctx, a.ID, db.Now()); err != nil {
		return err
	} else if n > 0 {
		s.log.Warn("work claimed for Apple without a recorded event (a crash?); sending it again", "account", a.ID, "items", n)
	}
	stalled, err := s.db.StalledEvents(ctx, a.ID, now.Add(-stallAfter))
	if err != nil {
		return err
	}
	for _, ev := range stalled {
		s.log.Warn("event pending too long; sending its work again", "account", a.ID, "event", ev.EventID)
		if err := s.db.RequeueEvent(ctx, ev.EventID, "no answer from Apple after 10 minutes"); err != nil {
			return err
		}
	}
	due, err := s.db.DueEvents(ctx, a.ID, now, 50)
	if err != nil {
		return err
	}
	for _, ev := range due {
		st, err := s.api.EventStatus(ctx, tok, ev.EventID)
		var claimed *apple.ClaimedError
		switch {
		case errors.Is(err, apple.ErrEventNotFound):
			if err := s.db.RequeueEvent(ctx, ev.EventID, "Apple no longer knows the event"); err != nil {
				return err
			}
			continue
		case err != nil && !(errors.As(err, &claimed) && st != nil):
			return err
		}
		if st.Pending() {
			if err := s.db.UpdateAppleEvent(ctx, ev.EventID, map[string]any{"polled_at": db.Now(), "next_poll_at": db.Now().Add(s.cfg.PollInterval),
				"num_completed": st.NumCompleted}); err != nil {
				return err
			}
			continue
		}
		if err := s.completeEvent(ctx, a, ev, st); err != nil {
			return err
		}
		if claimed != nil {
			return err
		}
	}
	return nil
}

// completeEvent applies a finished event's outcome to every item still waiting for it.
func (s *Scheduler) completeEvent(ctx context.Context, a *model.Account, ev *model.AppleEvent, st *apple.EventStatus) error {
	items, err := s.db.SentItemsOfEvent(ctx, ev.EventID)
	if err != nil {
		return err
	}
	outcomes := make([]db.Outcome, 0, len(items))
	noLicenses := false
	for _, it := range items {
		o := db.Outcome{Item: it, OK: true}
		for _, f := range st.Failures {
			if !failureCovers(f, it) {
				continue
			}
			if harmless(f.Number) {
				break
			}
			o = db.Outcome{Item: it, ErrorNumber: f.Number, ErrorMessage: f.Message}
			noLicenses = noLicenses || errors.Is(f.Err(), apple.ErrNotEnoughLicenses)
			break
		}
		outcomes = append(outcomes, o)
	}
	if _, err := s.db.ApplyOutcomes(ctx, outcomes); err != nil {
		return err
	}
	fail, _ := json.Marshal(st.Failures)
	status := model.EventComplete
	if st.Status == apple.EventFailed {
		status = model.EventFailed
	}
	if err := s.db.UpdateAppleEvent(ctx, ev.EventID, map[string]any{"status": status, "num_completed": st.NumCompleted,
		"num_requested": st.NumRequested, "failures": string(fail), "completed_at": db.Now(), "polled_at": db.Now()}); err != nil {
		return err
	}
	s.countOutcomes(outcomes)
	return s.afterEvent(ctx, a, ev.Action, noLicenses)
}

// afterEvent asks for a pass when an event leaves Orchard's picture in doubt: Apple had fewer
// licenses than Orchard counted, or users were registered (their invitation codes come with
// the users listing).
func (s *Scheduler) afterEvent(ctx context.Context, a *model.Account, action model.OutboxAction, noLicenses bool) error {
	if noLicenses || action == model.OutboxCreateUser {
		return s.queue(ctx, a.ID)
	}
	return nil
}

// failureCovers reports whether an event failure names an item's target (and asset, when it
// names assets).
func failureCovers(f apple.EventFailure, it *model.OutboxItem) bool {
	if f.Info == nil {
		return true // a failure that names nothing applies to the whole event
	}
	if len(f.Info.Assets) > 0 {
		match := false
		for _, as := range f.Info.Assets {
			if as.AdamID == it.AdamID && pricing(as.PricingParam) == pricing(it.PricingParam) {
				match = true
			}
		}
		if !match {
			return false
		}
	}
	if it.SerialNumber != nil {
		for _, sn := range f.Info.SerialNumbers {
			if sn == *it.SerialNumber {
				return true
			}
		}
	}
	if it.ClientUserID != nil {
		for _, u := range f.Info.ClientUserIDs {
			if u == *it.ClientUserID {
				return true
			}
		}
	}
	return len(f.Info.SerialNumbers) == 0 && len(f.Info.ClientUserIDs) == 0
}

// harmless are Apple's "failures" that mean the work was already done: associating what is
// associated (9616), disassociating what is not (9619), registering a registered user (9716).
func harmless(n int) bool { return n == 9616 || n == 9619 || n == 9716 }

// completeFromNotification completes an asset event of Orchard's from its notification. It
// reports done=false when the event is not Orchard's.
func (s *Scheduler) completeFromNotification(ctx context.Context, a *model.Account, m *apple.AssetManagementNotification) (bool, error) {
	ev, err := s.db.AppleEvent(ctx, m.EventID)
	if errors.Is(err, model.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	items, err := s.db.SentItemsOfEvent(ctx, ev.EventID)
	if err != nil {
		return true, err
	}
	listed := map[string]bool{}
	for _, x := range m.Assignments {
		if x.SerialNumber != "" {
			listed[x.AdamID+"|D:"+x.SerialNumber] = true
		}
		if x.ClientUserID != "" {
			listed[x.AdamID+"|U:"+x.ClientUserID] = true
		}
	}
	var outcomes []db.Outcome
	noLicenses := false
	for _, it := range items {
		if !listed[it.AdamID+"|"+targetKey(it)] {
			continue
		}
		o := db.Outcome{Item: it, OK: true}
		if m.Result != apple.ResultSuccess && (m.Error == nil || !harmless(m.Error.Number)) {
			o.OK = false
			if m.Error != nil {
				o.ErrorNumber, o.ErrorMessage = m.Error.Number, m.Error.Message
				noLicenses = noLicenses || errors.Is(m.Error, apple.ErrNotEnoughLicenses)
			} else {
				o.ErrorMessage = "Apple reported a failure"
			}
		}
		outcomes = append(outcomes, o)
	}
	if _, err := s.db.ApplyOutcomes(ctx, outcomes); err != nil {
		return true, err
	}
	s.countOutcomes(outcomes)
	if err := s.finishIfDone(ctx, ev); err != nil {
		return true, err
	}
	return true, s.afterEvent(ctx, a, ev.Action, noLicenses)
}

// completeUsersFromNotification completes a user event of Orchard's from its notification.
func (s *Scheduler) completeUsersFromNotification(ctx context.Context, a *model.Account, eventID, result string, users []apple.User, failure *apple.Error) (bool, error) {
	ev, err := s.db.AppleEvent(ctx, eventID)
	if errors.Is(err, model.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	items, err := s.db.SentItemsOfEvent(ctx, ev.EventID)
	if err != nil {
		return true, err
	}
	listed := map[string]bool{}
	for _, u := range users {
		listed[u.ClientUserID] = true
	}
	var outcomes []db.Outcome
	for _, it := range items {
		if it.ClientUserID == nil || !listed[*it.ClientUserID] {
			continue
		}
		o := db.Outcome{Item: it, OK: result == apple.ResultSuccess || (failure != nil && harmless(failure.Number))}
		if !o.OK && failure != nil {
			o.ErrorNumber, o.ErrorMessage = failure.Number, failure.Message
		}
		outcomes = append(outcomes, o)
	}
	if _, err := s.db.ApplyOutcomes(ctx, outcomes); err != nil {
		return true, err
	}
	if err := s.finishIfDone(ctx, ev); err != nil {
		return true, err
	}
	// Users' details (invitation codes) come with the notification; apply them too.
	return result != apple.ResultSuccess, nil
}

// finishIfDone marks an event complete once no item waits for it any more.
func (s *Scheduler) finishIfDone(ctx context.Context, ev *model.AppleEvent) error {
	left, err := s.db.SentItemsOfEvent(ctx, ev.EventID)
	if err != nil || len(left) > 0 {
		return err
	}
	return s.db.UpdateAppleEvent(ctx, ev.EventID, map[string]any{"status": model.EventComplete, "completed_at": db.Now()})
}

func (s *Scheduler) countOutcomes(outcomes []db.Outcome) {
	for _, o := range outcomes {
		r := "ok"
		if !o.OK {
			r = "failed"
		}
		outboxDone.WithLabelValues(string(o.Item.Action), r).Inc()
	}
}

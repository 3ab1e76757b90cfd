package scheduler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"orchard/apple"
	"orchard/db"
	"orchard/model"
)

// The outbox dispatcher (doc/design.md §2.1, step 3): per account, under its lease, it takes the
// queued work for Apple, packs it into as few requests as Apple's current limits allow (an
// associate is a cross product of assets and targets: Orchard sends one asset to up to
// maxSerialNumbers devices or maxClientUserIds users), sends them, and stores each eventId with
// the items it covers. It never sends to a held account (R3) or to one whose token is not usable
// (R12). A request that may have reached Apple is simply sent again later: associating what is
// associated, or disassociating what is not, is harmless.

// dispatchBatch bounds the items one round reads.
const dispatchBatch = 20000

// outboxWork is the per-account background work of the outbox: poll the events that are due,
// then send what is queued.
func (s *Scheduler) outboxWork(ctx context.Context, accountID int64) error {
	a, err := s.db.AccountByID(ctx, accountID)
	if err != nil {
		return err
	}
	now, err := s.db.ClockNow(ctx)
	if err != nil {
		return err
	}
	if a.HeldAt(now) {
		return nil
	}
	if a.RemovedAt != nil {
		return nil
	}
	tok, err := s.token(a)
	if err != nil {
		return err
	}
	if err := s.pollEvents(ctx, a, tok, now); err != nil {
		return s.apply(ctx, a, err)
	}
	if !a.EffectiveHealth(now).Usable() {
		return nil // R12: no writes to an account whose token is not usable
	}
	return s.apply(ctx, a, s.dispatch(ctx, a, tok, now))
}

// apply turns an Apple error met by background work into the account's state: a hold (R3) or a
// token health; other errors are returned.
func (s *Scheduler) apply(ctx context.Context, a *model.Account, err error) error {
	if err == nil {
		return nil
	}
	ctx = context.WithoutCancel(ctx)
	if until, ok := apple.ThrottledUntil(err); ok {
		holds.WithLabelValues(fmt.Sprint(a.ID)).Inc()
		s.log.Warn("Apple asked to wait; account held", "account", a.ID, "until", until, "reason", err.Error())
		if herr := s.db.HoldAccount(ctx, a.ID, until, err.Error()); herr != nil {
			return herr
		}
		s.wakeAt(until)
		return nil
	}
	var claimed *apple.ClaimedError
	switch {
	case errors.As(err, &claimed):
		m := claimed.Manager
		return s.svc.SetHealth(ctx, a.ID, model.TokenHealthClaimedElsewhere, fmt.Sprintf("claimed by %q (id %s)", m.Name, m.ID), &m, syncActor)
	case errors.Is(err, apple.ErrTokenExpired):
		return s.svc.SetHealth(ctx, a.ID, model.TokenHealthExpired, "Apple says the token expired", nil, syncActor)
	case errors.Is(err, apple.ErrTokenRevoked):
		return s.svc.SetHealth(ctx, a.ID, model.TokenHealthRevoked, "Apple revoked the token", nil, syncActor)
	case errors.Is(err, apple.ErrTokenInvalid):
		return s.svc.SetHealth(ctx, a.ID, model.TokenHealthInvalid, "Apple does not accept the token", nil, syncActor)
	}
	return err
}

// request is one Apple request being assembled, with the items it carries.
type request struct {
	action model.OutboxAction
	asset  apple.AssetRef
	items  []*model.OutboxItem
}

// dispatch sends an account's queued work.
func (s *Scheduler) dispatch(ctx context.Context, a *model.Account, tok *apple.Token, now time.Time) error {
	items, err := s.db.QueuedOutbox(ctx, a.ID, now, dispatchBatch)
	if err != nil || len(items) == 0 {
		return err
	}
	dropped, err := s.db.DropObsoleteOutbox(ctx, items)
	if err != nil {
		return err
	}
	if len(dropped) > 0 {
		gone := map[int64]bool{}
		for _, id := range dropped {
			gone[id] = true
		}
		kept := items[:0]
		for _, it := range items {
			if !gone[it.ID] {
				kept = append(kept, it)
			}
		}
		items = kept
	}
	limits, err := s.api.Limits(ctx)
	if err != nil {
		return err
	}
	s.rememberServiceConfig(ctx)
	// Registrations go first: user licenses wait for them.
	var creates, retires []*model.OutboxItem
	var userIDs []string
	groups := map[string]*request{}
	var order []string
	for _, it := range items {
		switch it.Action {
		case model.OutboxCreateUser:
			creates = append(creates, it)
			continue
		case model.OutboxRetireUser:
			retires = append(retires, it)
			continue
		}
		if it.ClientUserID != nil && it.Action == model.OutboxAssociate {
			userIDs = append(userIDs, *it.ClientUserID)
		}
		key := string(it.Action) + "|" + it.AdamID + "|" + it.PricingParam
		g := groups[key]
		if g == nil {
			g = &request{action: it.Action, asset: apple.AssetRef{AdamID: it.AdamID, PricingParam: it.PricingParam}}
			groups[key] = g
			order = append(order, key)
		}
		g.items = append(g.items, it)
	}
	if err := s.sendUsers(ctx, a, tok, model.OutboxCreateUser, creates, limits); err != nil {
		return err
	}
	if err := s.sendUsers(ctx, a, tok, model.OutboxRetireUser, retires, limits); err != nil {
		return err
	}
	// User licenses go once their user is registered in this account.
	regs, err := s.db.AppleUserStatuses(ctx, a.ID, userIDs)
	if err != nil {
		return err
	}
	var waiting []int64
	for _, key := range order {
		g := groups[key]
		ready := g.items[:0:0]
		for _, it := range g.items {
			if it.Action == model.OutboxAssociate && it.ClientUserID != nil {
				r := regs[*it.ClientUserID]
				if r == nil || (r.Status != model.AppleUserRegistered && r.Status != model.AppleUserAssociated) {
					waiting = append(waiting, it.ID)
					continue
				}
			}
			ready = append(ready, it)
		}
		if len(ready) == 0 {
			continue
		}
		if err := s.sendAssets(ctx, a, tok, g.action, g.asset, ready, limits); err != nil {
			return err
		}
	}
	return s.db.DelayOutbox(ctx, waiting, db.Now().Add(s.cfg.PollInterval))
}

// sendAssets sends the associates or disassociates of one asset, split within the limits.
func (s *Scheduler) sendAssets(ctx context.Context, a *model.Account, tok *apple.Token, action model.OutboxAction, asset apple.AssetRef, items []*model.OutboxItem, limits apple.Limits) error {
	byTarget := map[string]*model.OutboxItem{}
	req := apple.ManageAssetsRequest{Assets: []apple.AssetRef{asset}}
	for _, it := range items {
		switch {
		case it.SerialNumber != nil:
			if _, dup := byTarget[model.HolderKeyFor(model.LicenseKindDevice, *it.SerialNumber, "")]; !dup {
				req.SerialNumbers = append(req.SerialNumbers, *it.SerialNumber)
			}
			byTarget[model.HolderKeyFor(model.LicenseKindDevice, *it.SerialNumber, "")] = it
		case it.ClientUserID != nil:
			if _, dup := byTarget[model.HolderKeyFor(model.LicenseKindUser, "", *it.ClientUserID)]; !dup {
				req.ClientUserIDs = append(req.ClientUserIDs, *it.ClientUserID)
			}
			byTarget[model.HolderKeyFor(model.LicenseKindUser, "", *it.ClientUserID)] = it
		}
	}
	// Items for the same target (an intent retried after a crash) ride along with the first.
	extra := map[string][]int64{}
	for _, it := range items {
		k := targetKey(it)
		if byTarget[k] != it {
			extra[k] = append(extra[k], it.ID)
		}
	}
	for _, part := range apple.SplitManage(req, limits) {
		var ids []int64
		for _, sn := range part.SerialNumbers {
			ids = append(ids, byTarget[model.HolderKeyFor(model.LicenseKindDevice, sn, "")].ID)
			ids = append(ids, extra[model.HolderKeyFor(model.LicenseKindDevice, sn, "")]...)
		}
		for _, u := range part.ClientUserIDs {
			ids = append(ids, byTarget[model.HolderKeyFor(model.LicenseKindUser, "", u)].ID)
			ids = append(ids, extra[model.HolderKeyFor(model.LicenseKindUser, "", u)]...)
		}
		// Claim the items before Apple hears of them: from here on a reclaim cannot cancel them
		// (it waits for their outcome instead), and what was cancelled meanwhile is left out.
		claimed, err := s.db.ClaimOutbox(ctx, ids)
		if err != nil {
			return err
		}
		if len(claimed) < len(ids) {
			part, ids = onlyClaimed(part, ids, claimed, byTarget, extra)
			if len(ids) == 0 {
				continue
			}
		}
		var resp *apple.EventResponse
		if action == model.OutboxAssociate {
			resp, err = s.api.Associate(ctx, tok, part)
		} else {
			resp, err = s.api.Disassociate(ctx, tok, part)
		}
		if done, err := s.settleSend(ctx, a, action, resp, err, ids, len(part.SerialNumbers)+len(part.ClientUserIDs)); err != nil || done {
			return err
		}
	}
	return nil
}

// onlyClaimed narrows a request to the targets whose items were claimed.
func onlyClaimed(part apple.ManageAssetsRequest, ids, claimed []int64, byTarget map[string]*model.OutboxItem, extra map[string][]int64) (apple.ManageAssetsRequest, []int64) {
	ok := map[int64]bool{}
	for _, id := range claimed {
		ok[id] = true
	}
	keep := func(key string) (bool, []int64) {
		var got []int64
		for _, id := range append([]int64{byTarget[key].ID}, extra[key]...) {
			if ok[id] {
				got = append(got, id)
			}
		}
		return len(got) > 0, got
	}
	out := apple.ManageAssetsRequest{Assets: part.Assets}
	var outIDs []int64
	for _, sn := range part.SerialNumbers {
		if k, got := keep(model.HolderKeyFor(model.LicenseKindDevice, sn, "")); k {
			out.SerialNumbers = append(out.SerialNumbers, sn)
			outIDs = append(outIDs, got...)
		}
	}
	for _, u := range part.ClientUserIDs {
		if k, got := keep(model.HolderKeyFor(model.LicenseKindUser, "", u)); k {
			out.ClientUserIDs = append(out.ClientUserIDs, u)
			outIDs = append(outIDs, got...)
		}
	}
	return out, outIDs
}

func targetKey(it *model.OutboxItem) string {
	if it.SerialNumber != nil {
		return model.HolderKeyFor(model.LicenseKindDevice, *it.SerialNumber, "")
	}
	if it.ClientUserID != nil {
		return model.HolderKeyFor(model.LicenseKindUser, "", *it.ClientUserID)
	}
	return ""
}

// sendUsers sends user registrations or retirements, split within maxUsers.
func (s *Scheduler) sendUsers(ctx context.Context, a *model.Account, tok *apple.Token, action model.OutboxAction, items []*model.OutboxItem, limits apple.Limits) error {
	if len(items) == 0 {
		return nil
	}
	size := max(limits.MaxUsers, 1)
	for chunk := range slices.Chunk(items, size) {
		users := make([]apple.RequestUser, 0, len(chunk))
		ids := make([]int64, 0, len(chunk))
		seen := map[string]bool{}
		for _, it := range chunk {
			ids = append(ids, it.ID)
			if it.ClientUserID == nil || seen[*it.ClientUserID] {
				continue
			}
			seen[*it.ClientUserID] = true
			u := apple.RequestUser{ClientUserID: *it.ClientUserID}
			if action == model.OutboxCreateUser {
				if reg, err := s.db.UserForRegistration(ctx, it); err == nil {
					u.Email, u.ManagedAppleID = reg.Email, deref(reg.ManagedAppleID)
				}
			}
			users = append(users, u)
		}
		claimed, err := s.db.ClaimOutbox(ctx, ids)
		if err != nil {
			return err
		}
		if len(claimed) == 0 {
			continue
		}
		ids = claimed
		var resp *apple.EventResponse
		if action == model.OutboxCreateUser {
			resp, err = s.api.CreateUsers(ctx, tok, users)
		} else {
			resp, err = s.api.RetireUsers(ctx, tok, users)
		}
		if done, err := s.settleSend(ctx, a, action, resp, err, ids, len(users)); err != nil || done {
			return err
		}
	}
	return nil
}

// settleSend records what became of one request. It reports done=true when the round must stop
// (the account is held, or its token unusable).
func (s *Scheduler) settleSend(ctx context.Context, a *model.Account, action model.OutboxAction, resp *apple.EventResponse, err error, ids []int64, tasks int) (bool, error) {
	var claimed *apple.ClaimedError
	if resp != nil && resp.EventID != "" && (err == nil || errors.As(err, &claimed)) {
		// Apple accepted the work (even when its answer names another manager): follow it.
		now := db.Now()
		ev := &model.AppleEvent{EventID: resp.EventID, AccountID: a.ID, Action: action, Status: model.EventPending,
			NumRequested: tasks, SentAt: now, NextPollAt: now.Add(s.cfg.PollInterval)}
		if rerr := s.db.RecordSent(ctx, ev, ids); rerr != nil {
			return true, rerr
		}
		outboxSent.WithLabelValues(string(action)).Add(float64(len(ids)))
		if err != nil {
			return true, err // CLAIMED_ELSEWHERE: stop writing
		}
		return false, nil
	}
	if err == nil {
		err = errors.New("Apple accepted the request without an eventId")
	}
	switch {
	case apple.IsTokenUnusable(err) || errors.Is(err, apple.ErrThrottled) || errors.As(err, &claimed):
		// The items go back to the queue; apply() records the hold or the health.
		if uerr := s.db.UnclaimOutbox(context.WithoutCancel(ctx), ids); uerr != nil {
			return true, uerr
		}
		return true, err
	case errors.Is(err, apple.ErrLimitExceeded):
		// The client refreshed its limits; the next round splits anew.
		return true, s.db.RetryOutbox(ctx, ids, db.Now(), err.Error())
	case apple.IsTransient(err) || errors.Is(err, context.DeadlineExceeded):
		items, _ := s.db.OutboxByIDs(ctx, ids)
		attempts := 0
		for _, it := range items {
			attempts = max(attempts, it.Attempts)
		}
		wait := backoff(attempts)
		s.log.Warn("sending to Apple failed; will retry", "account", a.ID, "action", action, "items", len(ids), "in", wait, "error", err)
		return true, s.db.RetryOutbox(ctx, ids, db.Now().Add(wait), err.Error())
	case errors.Is(err, context.Canceled):
		// Stopping: whether Apple got the request is unknown; sending again is harmless.
		return true, s.db.RetryOutbox(context.WithoutCancel(ctx), ids, db.Now(), "interrupted while sending")
	}
	// Apple refused the request itself (validation): the items fail with its error.
	items, lerr := s.db.OutboxByIDs(ctx, ids)
	if lerr != nil {
		return true, lerr
	}
	outcomes := make([]db.Outcome, 0, len(items))
	for _, it := range items {
		outcomes = append(outcomes, db.Outcome{Item: it, ErrorNumber: apple.ErrorNumber(err), ErrorMessage: err.Error()})
	}
	s.log.Warn("Apple refused a request", "account", a.ID, "action", action, "items", len(ids), "error", err)
	_, aerr := s.db.ApplyOutcomes(ctx, outcomes)
	return false, aerr
}

// backoff is the wait before the n-th retry of a transient failure: 2s, 4s, … up to 5 minutes.
func backoff(n int) time.Duration {
	d := 2 * time.Second << min(n, 8)
	return min(d, 5*time.Minute)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

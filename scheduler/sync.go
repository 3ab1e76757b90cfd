package scheduler

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"orchard/apple"
	"orchard/db"
	"orchard/license"
	"orchard/model"
)

var syncActor = license.Actor{Kind: model.ActorSync, Name: "sync"}

// stoppedMsg is the error of a pass whose replica stopped (or died) before it ended.
const stoppedMsg = "the replica running this pass stopped before it ended; the next replica to take the account runs it again"

// syncAccount runs one pass of an account, under its lease: the queued pass if an admin or a
// notification asked for one, else the one that is due (full when the full pass is due). It
// records the pass as a sync run and sets the account's next due times.
func (s *Scheduler) syncAccount(ctx context.Context, accountID int64) error {
	// We hold the lease: a RUNNING pass of this account belongs to a replica that died or
	// lost the lease. Declared dead first, then the account is read: a pass that ended
	// just before is seen with its outcome (FinishSyncRun), and one that had not cannot
	// record it any more.
	// The account's open runs are read first, without a lock (one statement): only when one
	// is RUNNING are they declared dead, under the lock (FailStaleRuns). A run read as ended
	// ended before the account is read below.
	open, err := s.db.OpenSyncRuns(ctx, accountID)
	if err != nil {
		return err
	}
	var stale []*model.SyncRun
	var queued *model.SyncRun
	for _, r := range open {
		if r.Status == model.SyncRunRunning {
			stale = append(stale, r)
		} else if queued == nil {
			queued = r
		}
	}
	if len(stale) > 0 {
		if stale, err = s.db.FailStaleRuns(ctx, accountID, stoppedMsg); err != nil {
			return err
		}
		queued = nil // read again below, after the stale passes asked for are queued anew
	}
	a, err := s.db.AccountByID(ctx, accountID)
	if err != nil {
		return err
	}
	if a.RemovedAt != nil {
		return nil
	}
	initAccountSeries(a.ID)
	for _, r := range stale {
		if r.Trigger != model.TriggerSchedule {
			// What an admin, a notification or the account's addition asked for is not lost
			// with the replica that was running it.
			if _, err := s.svc.QueueSync(ctx, a.ID, r.Kind, r.Trigger); err != nil {
				return err
			}
		}
	}
	now, err := s.db.ClockNow(ctx)
	if err != nil {
		return err
	}
	// Another replica may have run the pass between this replica's tick and its lease.
	if a.HeldAt(now) {
		return nil
	}
	if held, err := s.clientHolds(ctx, a); held || err != nil {
		return err
	}
	run := queued
	if run == nil && len(stale) > 0 {
		run, err = s.db.QueuedSyncRun(ctx, a.ID)
	} else if run == nil {
		err = model.ErrNotFound
	}
	switch {
	case errors.Is(err, model.ErrNotFound):
		if a.NextSyncAt != nil && now.Before(*a.NextSyncAt) {
			return nil // not due any more
		}
		kind := model.SyncIncremental
		if a.LastFullSyncAt == nil || a.NextFullSyncAt == nil || !now.Before(*a.NextFullSyncAt) || a.AssignmentsVersionID == "" {
			kind = model.SyncFull
		}
		run = &model.SyncRun{AccountID: a.ID, Kind: kind, Trigger: model.TriggerSchedule}
	case err != nil:
		return err
	}
	started, err := s.db.StartSyncRun(ctx, run, leaseName("sync", a.ID), s.cfg.Holder,
		map[string]any{"sync_status": model.SyncStatusRunning})
	if err != nil {
		return err
	}
	if !started {
		s.log.Warn("lease ran out before the pass started; another replica has the account", "account", a.ID)
		return nil
	}
	start := time.Now()
	res, perr := s.pass(ctx, a, run)
	s.refreshMetadata(ctx, a, res, perr)
	s.finish(ctx, a, run, res, perr, now)
	d := time.Since(start)
	syncDuration.WithLabelValues(string(run.Kind), string(run.Status)).Observe(d.Seconds())
	syncRuns.WithLabelValues(fmt.Sprint(a.ID), string(run.Kind), string(run.Status)).Inc()
	logPass(s.log, s.cfg.Holder, a, run, d)
	return nil
}

// clientHolds reports whether the Apple client holds the account's token (R3) although the
// database does not: the client records a hold when Apple's answer arrives, the database when
// the pass that met it ends, and that write can fail. A pass started then would send nothing
// and end HELD at once, and be queued again, as often as the ticks came until the hold's end;
// instead the hold is recorded again (so that every replica keeps off the account) and the
// pass, left queued or due, starts once it is over.
func (s *Scheduler) clientHolds(ctx context.Context, a *model.Account) (bool, error) {
	tok, err := s.token(a)
	if err != nil {
		return false, nil // the pass records what is wrong with the token
	}
	until, held := s.api.HeldUntil(tok)
	if !held {
		return false, nil
	}
	s.log.Warn("Apple client holds the account the database does not; pass put off", "account", a.ID, "until", until)
	if err := s.db.HoldAccount(ctx, a.ID, until, "held after an earlier answer of Apple's"); err != nil {
		return true, fmt.Errorf("record the hold of account %d: %w", a.ID, err)
	}
	s.wakeAt(until)
	return true, nil
}

// passResult is what a pass learnt besides its counts.
type passResult struct {
	assetsVersion, assignmentsVersion, usersVersion string
	// newPools: the assets brought pools Orchard did not have (their apps' metadata is
	// looked up); changed: the recount of the pools changed a count.
	newPools, changed bool
}

// finish records a pass's outcome and the account's next due times.
func (s *Scheduler) finish(ctx context.Context, a *model.Account, run *model.SyncRun, res passResult, perr error, started time.Time) {
	stopped := ctx.Err() != nil && errors.Is(perr, context.Canceled)
	ctx = context.WithoutCancel(ctx)
	now := db.Now()
	run.FinishedAt = &now
	cols := map[string]any{}
	var until time.Time
	var held bool
	switch {
	case perr != nil && stopped:
		// This replica is stopping (or lost the lease): not the account's failure. The pass
		// is recorded as stopped, and the account stays due (next_sync_at and last_error
		// are left as they were) for whichever replica takes its lease next.
		msg := stoppedMsg
		run.Status, run.Error = model.SyncRunFailed, &msg
		cols["sync_status"] = a.SyncStatus
		s.log.Info("pass stopped with its replica", "account", a.ID, "kind", run.Kind)
	case perr == nil:
		run.Status = model.SyncRunSucceeded
		cols["sync_status"] = model.SyncStatusOK
		cols["last_synced_at"] = now
		cols["last_error"] = nil
		if res.assetsVersion != "" {
			cols["assets_version_id"] = res.assetsVersion
		}
		if res.assignmentsVersion != "" {
			cols["assignments_version_id"] = res.assignmentsVersion
		}
		if res.usersVersion != "" {
			cols["users_version_id"] = res.usersVersion
		}
		nextFull := a.NextFullSyncAt
		if run.Kind == model.SyncFull {
			cols["last_full_sync_at"] = now
			t := now.Add(s.jitter(s.cfg.SyncInterval))
			nextFull = &t
			cols["next_full_sync_at"] = t
		}
		next := now.Add(s.jitter(s.cfg.IncrementalInterval))
		if nextFull != nil && nextFull.Before(next) {
			next = *nextFull
		}
		cols["next_sync_at"] = next
	default:
		// A coded message of Orchard's own for clients; the whole error for the log.
		msg := passErrorMessage(perr)
		run.Error = &msg
		if until, held = apple.ThrottledUntil(perr); held {
			// R3: hold every action on this account until Apple's time; then the pass runs
			// again by itself: it is queued anew, with its kind and trigger, and the tick
			// starts it once the hold is over (the account's next due time may be far off).
			run.Status = model.SyncRunHeld
			cols["sync_status"] = model.SyncStatusHeld
			if err := s.db.HoldAccount(ctx, a.ID, until, msg); err != nil {
				s.log.Error("record hold", "account", a.ID, "error", err)
			}
			if _, err := s.svc.QueueSync(ctx, a.ID, run.Kind, run.Trigger); err != nil {
				s.log.Error("queue the held pass again", "account", a.ID, "error", err)
			}
			holds.WithLabelValues(fmt.Sprint(a.ID)).Inc()
			s.log.Warn("Apple asked to wait; account held", "account", a.ID, "run", run.ID, "until", until, "error", perr)
		} else {
			run.Status = model.SyncRunFailed
			cols["sync_status"] = model.SyncStatusFailed
			cols["last_error"] = truncate(msg, 1000)
			// Try again soon, but not in a tight loop.
			cols["next_sync_at"] = now.Add(min(s.cfg.IncrementalInterval, time.Minute))
			s.log.Warn("sync failed", "account", a.ID, "run", run.ID, "kind", run.Kind, "error", perr)
		}
	}
	// The run and the account's due times together, and only if no other replica has
	// declared this pass dead meanwhile (this one lost its lease): the account is then
	// that replica's to record.
	if ok, err := s.db.FinishSyncRun(ctx, run, cols); err != nil {
		s.log.Error("record sync outcome", "account", a.ID, "run", run.ID, "error", err)
	} else if !ok {
		s.log.Warn("pass outcome not recorded: another replica took the account over", "account", a.ID, "run", run.ID)
	} else if perr == nil && (res.changed || run.Added+run.Changed+run.Removed > 0) {
		// The pass may have found purchases: holders waiting on a label may be served now.
		// (A pass that changed no row and no count changed nothing they wait for.)
		if err := s.db.EnqueueWaitingApps(ctx, a.ID, "a sync of the account"); err != nil {
			s.log.Error("queue policy evaluation after a pass", "account", a.ID, "error", err)
		}
	} else if perr != nil && stopped && run.Trigger != model.TriggerSchedule {
		// A pass asked for (not merely due) runs again, here or on another replica.
		if _, err := s.svc.QueueSync(ctx, a.ID, run.Kind, run.Trigger); err != nil {
			s.log.Error("queue the stopped pass again", "account", a.ID, "error", err)
		}
	}
	if held {
		s.wakeAt(until)
	}
}

// wakeAt makes sure a tick runs soon after the hold recorded for Apple's time t ends (held
// work resumes by itself).
func (s *Scheduler) wakeAt(t time.Time) {
	d := time.Until(t.Add(db.HoldMargin)) + 10*time.Millisecond
	if d < 0 {
		d = 0
	}
	time.AfterFunc(d, func() { s.Kick(0) })
}

// pass checks the account's token with Apple, then reconciles.
func (s *Scheduler) pass(ctx context.Context, a *model.Account, run *model.SyncRun) (passResult, error) {
	tok, err := s.token(a)
	if err != nil {
		return passResult{}, err
	}
	ok, err := s.checkHealth(ctx, a, tok, run.Kind == model.SyncFull)
	if err != nil || !ok {
		if err == nil {
			err = unusableToken(a)
		}
		return passResult{}, err
	}
	res, err := s.reconcile(ctx, a, tok, run)
	if err != nil {
		// Apple's answers carry the claim and the token's state too (R12): what the client
		// config would have said, when an incremental pass did not ask for it.
		if bad, serr := s.recordTokenError(ctx, a, err); serr != nil {
			return res, serr
		} else if bad {
			return res, unusableToken(a)
		}
	}
	return res, err
}

// unusableToken is the error of a pass that found the account's token unusable (a.Health).
func unusableToken(a *model.Account) error {
	code := model.CodeInvalidToken
	switch a.Health {
	case model.TokenHealthExpired:
		code = model.CodeTokenExpired
	case model.TokenHealthClaimedElsewhere:
		code = model.CodeAccountClaimedElsewhere
	}
	return model.Errorf(code, "token is %s; nothing is sent to Apple for this account until it is fixed", strings.ReplaceAll(strings.ToLower(string(a.Health)), "_", " "))
}

// recordTokenError records the health that an error of Apple's tells (the token claimed by
// another manager, expired, revoked or not accepted), and reports whether it told one.
func (s *Scheduler) recordTokenError(ctx context.Context, a *model.Account, err error) (bool, error) {
	var claimed *apple.ClaimedError
	switch {
	case errors.As(err, &claimed):
		a.Health = model.TokenHealthClaimedElsewhere
		m := claimed.Manager
		return true, s.svc.SetHealth(ctx, a.ID, model.TokenHealthClaimedElsewhere, fmt.Sprintf("claimed by %q (id %s)", m.Name, m.ID), &m, syncActor)
	case errors.Is(err, apple.ErrTokenExpired):
		a.Health = model.TokenHealthExpired
		return true, s.svc.SetHealth(ctx, a.ID, model.TokenHealthExpired, "Apple says the token expired", nil, syncActor)
	case errors.Is(err, apple.ErrTokenRevoked):
		a.Health = model.TokenHealthRevoked
		return true, s.svc.SetHealth(ctx, a.ID, model.TokenHealthRevoked, "Apple revoked the token", nil, syncActor)
	case errors.Is(err, apple.ErrTokenInvalid):
		a.Health = model.TokenHealthInvalid
		return true, s.svc.SetHealth(ctx, a.ID, model.TokenHealthInvalid, "Apple does not accept the token", nil, syncActor)
	}
	return false, nil
}

// checkHealth reads the client config (R12: token health and claim) and records the health.
// It reports whether the account may be synced. A token nobody has claimed (an add that
// crashed before its claim) is claimed.
//
// An incremental pass of an account whose stored health is usable does not ask: every answer
// of Apple's carries the claim (mdmInfo, checked by the client) and fails when the token is
// expired, revoked or not accepted (recordTokenError records what it tells), and the rest of
// the client config (location name, country, the token's expiry date) is read by the full
// passes, every SyncInterval. It spares one Apple request of the four of a quiet pass.
func (s *Scheduler) checkHealth(ctx context.Context, a *model.Account, tok *apple.Token, full bool) (bool, error) {
	now := db.Now()
	if tok.Expired(now) {
		a.Health = model.TokenHealthExpired
		return false, s.svc.SetHealth(ctx, a.ID, model.TokenHealthExpired, "the token expired on "+tok.ExpiresAt.Format(time.DateOnly), nil, syncActor)
	}
	if !full && a.Health.Usable() && a.ClaimedByID == nil {
		return true, s.recordUsable(ctx, a, now)
	}
	cfg, err := s.api.ClientConfig(ctx, tok)
	if bad, serr := s.recordTokenError(ctx, a, err); bad || serr != nil {
		return false, serr
	} else if err != nil {
		return false, err
	}
	if cfg.MDMInfo == nil || cfg.MDMInfo.ID == "" {
		if _, err := s.api.Claim(ctx, tok); err != nil {
			return false, fmt.Errorf("claim the account: %w", err)
		}
	}
	if !cfg.TokenExpirationDate.IsZero() && !cfg.TokenExpirationDate.Equal(a.TokenExpiresAt) {
		a.TokenExpiresAt = cfg.TokenExpirationDate.UTC()
		if err := s.db.UpdateAccount(ctx, a.ID, map[string]any{"token_expires_at": a.TokenExpiresAt}); err != nil {
			return false, err
		}
	}
	cols := map[string]any{}
	if cfg.LocationName != "" && cfg.LocationName != a.LocationName {
		cols["location_name"] = cfg.LocationName
	}
	// Apple's country in its canonical form; one that names no assigned country is not stored.
	if cc, err := model.CanonicalCountry(cfg.CountryISO2ACode); err == nil && cc != a.CountryCode {
		cols["country_code"] = cc
	} else if err != nil && cfg.CountryISO2ACode != "" {
		s.log.Warn("Apple's country of the account is no assigned ISO 3166-1 code; kept the one stored", "account", a.ID, "country", model.Truncate(cfg.CountryISO2ACode, 8))
	}
	if len(cols) > 0 {
		if err := s.db.UpdateAccount(ctx, a.ID, cols); err != nil {
			return false, err
		}
	}
	// Apple accepted the token and the claim is Orchard's: a health stored earlier (a 9622
	// that passed, a token Apple restored, a claim taken back) no longer holds.
	return true, s.recordUsable(ctx, a, now)
}

// recordUsable records the account's token as usable (active, or expiring soon), unless
// that is what is stored already (no other manager named, no error).
func (s *Scheduler) recordUsable(ctx context.Context, a *model.Account, now time.Time) error {
	h := license.UsableHealth(a, now)
	if h == a.Health && a.ClaimedByID == nil && a.LastError == nil {
		return nil
	}
	a.Health = h
	return s.svc.SetHealth(ctx, a.ID, h, "", nil, syncActor)
}

// truncate cuts s to at most n characters for a column: see model.Truncate.
func truncate(s string, n int) string { return model.Truncate(s, n) }

package scheduler

import (
	"context"
	"errors"
	"time"

	"orchard/model"
)

// Policy evaluation as background work (doc/design.md §2.4): the replica holding the "policy:0" lease
// evaluates what the durable queue asks for (rows written with the changes that cause them, so
// any replica finds them) and, every sync interval, every app under policy (to heal anything
// an incremental evaluation missed). The lease makes it run once across replicas; the queue
// rows are deleted only after their evaluation is committed, so a crash leaves them to the
// next holder.

// settingPolicyFull names the setting that keeps when the last full evaluation finished.
const settingPolicyFull = "policy_full_evaluated_at"

// policyDue reports whether policy work is due: queue rows, or a full evaluation.
func (s *Scheduler) policyDue(ctx context.Context, now time.Time) (queued, full bool, err error) {
	n, err := s.db.CountPolicyQueue(ctx, now)
	if err != nil {
		return false, false, err
	}
	last, err := s.db.Setting(ctx, settingPolicyFull)
	switch {
	case errors.Is(err, model.ErrNotFound) || last == "":
		full = true
	case err != nil:
		return false, false, err
	default:
		t, perr := time.Parse(time.RFC3339Nano, last)
		full = perr != nil || !now.Before(t.Add(s.cfg.SyncInterval))
	}
	return n > 0, full, nil
}

// policyWork evaluates the queue and, when due, everything.
func (s *Scheduler) policyWork(ctx context.Context, _ int64) error {
	n, err := s.svc.EvaluatePolicyQueue(ctx)
	if n > 0 {
		s.Kick(0) // the outbox has work
	}
	if err != nil {
		return err
	}
	now, err := s.db.ClockNow(ctx)
	if err != nil {
		return err
	}
	_, full, err := s.policyDue(ctx, now)
	if err != nil || !full {
		return err
	}
	if _, err := s.svc.EvaluateAllPolicy(ctx); err != nil {
		return err
	}
	s.Kick(0)
	return s.db.SetSetting(ctx, settingPolicyFull, now.Format(time.RFC3339Nano))
}

// startPolicy starts policy work when some is due.
func (s *Scheduler) startPolicy(ctx context.Context, now time.Time) error {
	queued, full, err := s.policyDue(ctx, now)
	if err != nil || (!queued && !full) {
		return err
	}
	s.start(ctx, "policy", 0, s.policyWork)
	return nil
}

package license

import (
	"context"

	"orchard/db"
	"orchard/model"
)

// EvaluatePolicyQueue evaluates what the queue asks for that is due, oldest rows first, and
// returns how many evaluations it ran. A row without an app asks for everything; a row with
// an app and no holder for the whole app (it also covers the app's holder rows read with it);
// holder rows are evaluated per app, up to holderBatch holders a transaction that also deletes
// them. Whole-app rows are deleted once their evaluation is done (a crash leaves them to be
// evaluated again; evaluation is idempotent). Only the policy lease's holder calls it.
func (s *Service) EvaluatePolicyQueue(ctx context.Context) (int, error) {
	n := 0
	for {
		items, err := s.db.DuePolicyItems(ctx, s.now(), holderBatch)
		if err != nil || len(items) == 0 {
			return n, err
		}
		last := len(items) < holderBatch // the queue was read to its end: no need to look again
		type holders struct{ users, devices, items []int64 }
		whole := map[int64][]int64{}
		some := map[int64]*holders{}
		var apps, holderApps []int64
		var all, ids []int64
		for _, it := range items {
			ids = append(ids, it.ID)
			switch {
			case it.AppID == nil:
				all = append(all, it.ID)
			case it.UserID == nil && it.DeviceID == nil:
				if whole[*it.AppID] == nil {
					apps = append(apps, *it.AppID)
				}
				whole[*it.AppID] = append(whole[*it.AppID], it.ID)
			default:
				h := some[*it.AppID]
				if h == nil {
					h = &holders{}
					some[*it.AppID] = h
					holderApps = append(holderApps, *it.AppID)
				}
				if it.UserID != nil {
					h.users = append(h.users, *it.UserID)
				}
				if it.DeviceID != nil {
					h.devices = append(h.devices, *it.DeviceID)
				}
				h.items = append(h.items, it.ID)
			}
		}
		if len(all) > 0 {
			if _, err := s.EvaluateAllPolicy(ctx); err != nil {
				return n, err
			}
			if err := s.db.DeletePolicyItems(ctx, ids); err != nil {
				return n, err
			}
			n++
			continue
		}
		for _, app := range apps {
			if ctx.Err() != nil {
				return n, ctx.Err()
			}
			if _, err := s.evaluateApp(ctx, s.db, app); err != nil {
				return n, err
			}
			s.evaluations.Add(1)
			done := whole[app]
			if h := some[app]; h != nil {
				done = append(done, h.items...) // the whole app covers its holders
				delete(some, app)
			}
			if err := s.db.DeletePolicyItems(ctx, done); err != nil {
				return n, err
			}
			n++
		}
		for _, app := range holderApps {
			h := some[app]
			if h == nil {
				continue
			}
			if ctx.Err() != nil {
				return n, ctx.Err()
			}
			if _, err := s.evaluateHolders(ctx, app, dedupe(h.users), dedupe(h.devices), h.items); err != nil {
				return n, err
			}
			n++
		}
		if last {
			return n, nil // rows queued meanwhile are found at the scheduler's next look
		}
	}
}

// enqueueApps records, inside the caller's transaction, that apps must be evaluated.
func (s *Service) enqueueApps(ctx context.Context, tx *db.DB, apps []int64, reason string) error {
	now := s.now()
	items := make([]*model.PolicyQueueItem, 0, len(apps))
	seen := map[int64]bool{}
	for _, a := range apps {
		if seen[a] {
			continue
		}
		seen[a] = true
		id := a
		items = append(items, &model.PolicyQueueItem{AppID: &id, Reason: truncate(reason, 1000), NotBefore: now, CreatedAt: now})
	}
	return tx.EnqueuePolicy(ctx, items...)
}

// enqueueGroups records that the apps labelled for any of the groups must be evaluated.
func (s *Service) enqueueGroups(ctx context.Context, tx *db.DB, groupIDs []int64, reason string) error {
	if len(groupIDs) == 0 {
		return nil
	}
	apps, err := tx.AppsLabelledForGroups(ctx, groupIDs)
	if err != nil {
		return err
	}
	return s.enqueueApps(ctx, tx, apps, reason)
}

// WatchTransitions makes policy follow the assignment transitions applied through d (each
// database handle once; the service's own is watched from the start, a scheduler with a handle
// of its own adds its own): inside the transaction that applies them, a license label's
// assignment that Apple refused queues its app's evaluation (its holder then waits with
// Apple's reason), and a license that came back to a pool (a completed reclaim, a refusal)
// queues the evaluation of its app when holders wait for it — they are served without anyone
// asking.
func (s *Service) WatchTransitions(d *db.DB) {
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	if s.watched[d] {
		return
	}
	s.watched[d] = true
	d.OnTransitions(func(ctx context.Context, tx *db.DB, applied []model.AppliedTransition) error {
		var refused, freed []int64
		for _, t := range applied {
			if t.Origin == model.OriginLabel && t.To == model.AssignmentFailed {
				refused = append(refused, t.AppID)
			}
			if t.FreesLicense() {
				freed = append(freed, t.AppID)
			}
		}
		if len(refused) > 0 {
			if err := s.enqueueApps(ctx, tx, refused, "Apple refused a label's license"); err != nil {
				return err
			}
		}
		return tx.EnqueueAppsWithWaiting(ctx, dedupe(freed), "licenses came back to a pool")
	})
}

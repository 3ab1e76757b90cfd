package scheduler

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"orchard/apple"
	"orchard/db"
	"orchard/model"
)

// reconcile brings Orchard's picture of an account in line with Apple's (doc/design.md §2.3): every
// asset page (counts and inventory), then the assignments (every page on a full pass, the
// changes since the last versionId on an incremental one), then the users. Pages stream: the
// client fetches ahead while a page is written, and only a page is held at a time. A full pass
// ends with sweeps that find what Apple no longer holds, and every pass with a recount of the
// pools from their assignment rows (on an incremental pass, of the pools it was given
// assignments of).
func (s *Scheduler) reconcile(ctx context.Context, a *model.Account, tok *apple.Token, run *model.SyncRun) (passResult, error) {
	var res passResult
	passStart := db.Now()
	full := run.Kind == model.SyncFull
	markRun := int64(0)
	if full {
		markRun = run.ID
	}
	var total db.SyncCounts
	progress := func() {
		run.Added, run.Changed, run.Removed = total.Added, total.Changed, total.Removed
		if run.Pages%10 == 0 {
			_ = s.db.SyncRunProgress(context.WithoutCancel(ctx), run)
		}
	}

	// Assets: always every page (Apple has no delta for them).
	pools := map[string]db.PoolRef{}
	for page, err := range s.api.Assets(ctx, tok, apple.AssetsQuery{Parallel: s.cfg.PageParallel}) {
		if err != nil {
			return res, fmt.Errorf("read assets: %w", err)
		}
		res.assetsVersion = page.VersionID
		rows := make([]db.AssetRow, 0, len(page.Assets))
		for _, as := range page.Assets {
			rows = append(rows, assetRow(as))
		}
		refs, c, err := s.db.UpsertAssets(ctx, a.ID, markRun, rows)
		if err != nil {
			return res, fmt.Errorf("store assets: %w", err)
		}
		for k, v := range refs {
			pools[k] = v
		}
		total.Add(c)
		res.newPools = res.newPools || c.Added > 0
		run.Pages++
		run.ItemsSeen += len(rows)
		progress()
	}
	if full {
		if _, err := s.db.MarkGonePools(ctx, a.ID, run.ID); err != nil {
			return res, err
		}
	}

	// Assignments. touched collects the pools of the assignments Apple listed (at most the
	// account's pools), which an incremental pass recounts.
	touched := map[int64]struct{}{}
	q := apple.AssignmentsQuery{Parallel: s.cfg.PageParallel}
	if !full {
		q.SinceVersionID = a.AssignmentsVersionID
	}
	// Pages are written by assignmentWriters(…) workers (each batch in its own transaction;
	// pages hold distinct assignments) while the client fetches ahead. A worker takes every
	// page waiting when it gets to them (up to maxBatchRows): when the database is the slower
	// side, fewer, larger transactions write each index page fewer times.
	readAssignments := func(q apple.AssignmentsQuery) error {
		writers := assignmentWriters(s.db)
		type page struct {
			rows []db.AppleAssignmentRow
			seen int
		}
		queue := make(chan page, writers)
		var wg sync.WaitGroup
		var mu sync.Mutex // total, run, progress and firstErr
		var firstErr error
		failed := func() bool { mu.Lock(); defer mu.Unlock(); return firstErr != nil }
		for range writers {
			wg.Go(func() {
				for p := range queue {
					rows, seen, pages := p.rows, p.seen, 1
				more:
					for len(rows) < maxBatchRows {
						select {
						case next, ok := <-queue:
							if !ok {
								break more
							}
							rows, seen, pages = append(rows, next.rows...), seen+next.seen, pages+1
						default:
							break more
						}
					}
					if failed() {
						continue // drain: the pass has failed
					}
					c, skipped, err := s.db.ApplyAssignments(ctx, a.ID, markRun, rows, pools)
					mu.Lock()
					if err != nil {
						if firstErr == nil {
							firstErr = fmt.Errorf("store assignments: %w", err)
						}
						mu.Unlock()
						continue
					}
					if skipped > 0 {
						s.log.Warn("assignments of assets Apple did not list were skipped", "account", a.ID, "count", skipped)
					}
					total.Add(c)
					for range pages {
						run.Pages++
						progress()
					}
					run.ItemsSeen += seen
					mu.Unlock()
				}
			})
		}
		var readErr error
		for pg, err := range s.api.Assignments(ctx, tok, q) {
			if err != nil {
				readErr = err
				break
			}
			if failed() {
				break
			}
			res.assignmentsVersion = pg.VersionID
			rows := make([]db.AppleAssignmentRow, 0, len(pg.Assignments))
			for _, x := range pg.Assignments {
				if x.Removed {
					continue // a delta's removal marker (a doc/apple-api.md §15 switch): the next full pass confirms it
				}
				r := db.AppleAssignmentRow{AdamID: x.AdamID, PricingParam: pricing(x.PricingParam), SerialNumber: x.SerialNumber, ClientUserID: x.ClientUserID}
				if ref, ok := pools[db.AssetKey(r.AdamID, r.PricingParam)]; ok {
					touched[ref.PoolID] = struct{}{}
				}
				rows = append(rows, r)
			}
			queue <- page{rows: rows, seen: len(pg.Assignments)}
		}
		close(queue)
		wg.Wait()
		if readErr != nil {
			return readErr
		}
		return firstErr
	}
	err := readAssignments(q)
	if errors.Is(err, apple.ErrBadVersion) && !full {
		// Apple no longer knows the version: do the assignments in full, and the sweep with it.
		s.log.Info("versionId unknown to Apple; turning the pass into a full one", "account", a.ID)
		run.Kind, full, markRun = model.SyncFull, true, run.ID
		q.SinceVersionID = ""
		err = readAssignments(q)
	}
	if err != nil {
		return res, fmt.Errorf("read assignments: %w", err)
	}
	if full {
		n, err := s.db.SweepAssignments(ctx, a.ID, run.ID, passStart)
		if err != nil {
			return res, err
		}
		total.Removed += n
	}

	// Users registered at Apple (needed for user licenses).
	uq := apple.UsersQuery{ActiveOnly: full, Parallel: s.cfg.PageParallel}
	if !full {
		uq.SinceVersionID = a.UsersVersionID
	}
	for page, err := range s.api.Users(ctx, tok, uq) {
		if errors.Is(err, apple.ErrBadVersion) {
			break // the next full pass lists them all
		}
		if err != nil {
			return res, fmt.Errorf("read users: %w", err)
		}
		res.usersVersion = page.VersionID
		rows := make([]db.AppleUserRow, 0, len(page.Users))
		for _, u := range page.Users {
			rows = append(rows, db.AppleUserRow{ClientUserID: u.ClientUserID, Email: u.Email, Status: u.Status, InviteCode: u.InviteCode, IDHash: u.IDHash})
		}
		c, err := s.db.UpsertAppleUsers(ctx, a.ID, markRun, rows)
		if err != nil {
			return res, fmt.Errorf("store users: %w", err)
		}
		total.Add(c)
		run.Pages++
		run.ItemsSeen += len(rows)
		progress()
	}
	if full {
		if _, err := s.db.SweepAppleUsers(ctx, a.ID, run.ID); err != nil {
			return res, err
		}
	}
	// A full pass recounts every pool (it settles any drift); an incremental one the pools
	// of the assignments it was given, so that its cost follows the changes, not the
	// account's size (a recount reads every active assignment of the pools it counts).
	var recounted int
	if full {
		recounted, err = s.db.RecountPools(ctx, a.ID)
	} else {
		recounted, err = s.db.RecountPoolsOf(ctx, a.ID, slices.Sorted(maps.Keys(touched)))
	}
	if err != nil {
		return res, fmt.Errorf("recount pools: %w", err)
	}
	res.changed = recounted > 0
	run.Added, run.Changed, run.Removed = total.Added, total.Changed, total.Removed
	return res, nil
}

// maxBatchRows bounds the assignments a worker takes into one transaction (it may go over by
// one page).
const maxBatchRows = 4000

// assignmentWriters is how many assignment pages a pass writes at once: two on MySQL (its
// server works while Orchard prepares the next page; a 100,000-assignment first pass takes
// half the time), one on SQLite (one writer at a time).
func assignmentWriters(d *db.DB) int {
	if d.Dialect() == db.MySQL {
		return 2
	}
	return 1
}

func pricing(p string) string {
	if p == "" {
		return apple.PricingSTDQ
	}
	return p
}

// assetRow converts an Apple asset.
func assetRow(as apple.Asset) db.AssetRow {
	r := db.AssetRow{AdamID: as.AdamID, PricingParam: pricing(as.PricingParam), ProductType: as.ProductType,
		Total: int64(as.TotalCount), Assigned: int64(as.AssignedCount), Available: int64(as.AvailableCount), Retired: int64(as.RetiredCount),
		Unlimited: as.IsUnlimited(), DeviceAssignable: as.DeviceAssignable, Revocable: as.Revocable}
	if r.Unlimited {
		r.Total = model.UnlimitedCount
	}
	r.Platforms = model.JoinPlatforms(platforms(as.SupportedPlatforms))
	return r
}

// platforms maps Apple's platform names onto Orchard's (an iOS app runs on iPads too).
func platforms(ps []string) []model.Platform {
	var out []model.Platform
	seen := map[model.Platform]bool{}
	add := func(p model.Platform) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, p := range ps {
		switch strings.ToLower(p) {
		case "ios":
			add(model.PlatformIOS)
			add(model.PlatformIPadOS)
		case "ipados":
			add(model.PlatformIPadOS)
		case "macos", "osx":
			add(model.PlatformMacOS)
		case "tvos":
			add(model.PlatformTvOS)
		case "watchos":
			add(model.PlatformWatchOS)
		case "visionos", "xros":
			add(model.PlatformVisionOS)
		}
	}
	return out
}

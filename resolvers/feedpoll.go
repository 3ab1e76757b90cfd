package resolvers

import (
	"context"
	"fmt"
	"time"

	"orchard/db"
	"orchard/graph"
	"orchard/model"
)

// feedPoller reads what changed in the database since its last poll, for the feed hub (one
// poller per hub, used by its loop goroutine only). It follows the database, not in-process
// events, so the feed carries what every replica does.
//
// Changes are read by position: assignments by updated_at, sync runs by started_at and
// finished_at, policy evaluations by audit id. A position read as "after the last one seen"
// misses a row that becomes visible late with an earlier position: a transaction that took
// its timestamp (or, on MySQL, its auto-increment id) before a concurrent one but committed
// after it. So every poll reads again an overlap window (from the previous poll's database
// clock less the overlap; for ids, from the highest id seen overlap ago) and skips what it
// already delivered, by (id, updated_at) for assignments, (id, finished_at) for sync runs and
// id for evaluations. Still missed: a transaction that commits more than the overlap after it
// took its position, a row stamped by a replica whose clock is more than the overlap behind
// the database's, and a late row during a catch-up (a poll resuming after its budget reads on
// from where it stopped, without the overlap). The overlap costs a poll the rows changed in
// its window, read again (at 200 changes/s and 2 s, about 400 rows).
type feedPoller struct {
	db      *db.DB
	overlap time.Duration

	started  bool
	accounts map[int64]accountState // nil until the first account poll

	// budget is about how many assignment events one poll reads (see assignmentChanges).
	budget int

	// runsNow is the previous poll's clock: each poll reads from overlap before it.
	runsNow time.Time
	// readAt is this process's clock when the answer with runsNow arrived: the database read
	// its clock before that, so runsNow plus the time since readAt is never after the
	// database's clock.
	readAt time.Time

	// Assignments: where a poll that stopped at its budget left off, what was delivered
	// within the window, and the ones delivered PENDING (by creation time), so that a
	// PENDING state is never made up for one already streamed PENDING.
	resume      *db.FeedCursor
	seenAssign  map[assignKey]struct{}
	seenPending map[int64]time.Time

	// Sync runs: the run states delivered within the window.
	seenRuns map[runKey]time.Time

	// Policy evaluations: the audit ids read again from (the highest id seen overlap ago),
	// the ids delivered above it, and the highest id seen at each recent poll.
	evalFloor int64
	seenEvals map[int64]struct{}
	evalMarks []idMark
}

// accountState is what an ACCOUNT event reports a change of.
type accountState struct {
	health model.TokenHealth
	held   string
	sync   model.SyncStatus
}

type assignKey struct {
	id int64
	at int64 // updated_at, Unix nanoseconds
}

type runKey struct {
	id       int64
	finished int64 // finished_at, Unix nanoseconds; 0 while the run runs
}

type idMark struct {
	at time.Time
	id int64
}

// feedEvent is an event of the feed with what the subscribers filter it by.
type feedEvent struct {
	ev *graph.LicenseEvent
	// changed is when the change happened: a subscriber gets only the changes after it
	// subscribed.
	changed time.Time
	// accountID is the account concerned; appID, for assignments, the app; evalApp, for a
	// policy evaluation of one app, that app.
	accountID, appID, evalApp int64
}

// matches says whether a subscriber filtering by account and app (0: any) gets the event:
// assignments by both, accounts and sync runs by account, policy evaluations only without an
// account filter, and by app when the evaluation was of one app.
func (e *feedEvent) matches(accountID, appID int64) bool {
	switch e.ev.Kind {
	case graph.LicenseEventKindAssignment:
		return (accountID == 0 || accountID == e.accountID) && (appID == 0 || appID == e.appID)
	case graph.LicenseEventKindLabelEvaluation:
		return accountID == 0 && (appID == 0 || appID == e.evalApp)
	default:
		return accountID == 0 || accountID == e.accountID
	}
}

// feedPage is how many rows one statement of a poll reads; a poll reads pages until one is
// short.
const feedPage = 500

func newFeedPoller(d *db.DB, overlap time.Duration, budget int) *feedPoller {
	return &feedPoller{db: d, overlap: overlap, budget: max(budget, 1),
		seenAssign: map[assignKey]struct{}{}, seenPending: map[int64]time.Time{},
		seenRuns: map[runKey]time.Time{}, seenEvals: map[int64]struct{}{}}
}

// start fixes the positions the feed begins from: now.
func (p *feedPoller) start(ctx context.Context) error {
	now, err := p.db.ClockNow(ctx)
	if err != nil {
		return err
	}
	last, err := p.db.LastAuditID(ctx)
	if err != nil {
		return err
	}
	p.runsNow, p.evalFloor = now, last
	p.evalMarks = []idMark{{now, last}}
	p.started = true
	return nil
}

// poll reads the changes since the last poll, in the order subscribers get them: accounts
// (when withAccounts), sync runs, policy evaluations, assignments. A failed poll leaves the
// positions where they were (the next one reads the same changes again).
func (p *feedPoller) poll(ctx context.Context, withAccounts bool) ([]feedEvent, error) {
	if !p.started {
		if err := p.start(ctx); err != nil {
			return nil, fmt.Errorf("start the feed: %w", err)
		}
	}
	now, err := p.db.ClockNow(ctx)
	if err != nil {
		return nil, err
	}
	read := time.Now()
	var out []feedEvent
	if withAccounts {
		if out, err = p.accountChanges(ctx, now, out); err != nil {
			return nil, err
		}
	}
	if out, err = p.runChanges(ctx, now, out); err != nil {
		return nil, err
	}
	if out, err = p.evalChanges(ctx, now, out); err != nil {
		return nil, err
	}
	if out, err = p.assignmentChanges(ctx, now, out); err != nil {
		return nil, err
	}
	p.runsNow, p.readAt = now, read
	return out, nil
}

// accountChanges reports the accounts whose health, hold or sync status changed since the
// last account poll, and the accounts added since (the first poll only records the states).
func (p *feedPoller) accountChanges(ctx context.Context, now time.Time, out []feedEvent) ([]feedEvent, error) {
	as, err := p.db.ListLiveAccounts(ctx)
	if err != nil {
		return nil, err
	}
	first := p.accounts == nil
	next := make(map[int64]accountState, len(as))
	for _, a := range as {
		held := ""
		if a.ThrottledUntil != nil && a.ThrottledUntil.After(now) {
			held = a.ThrottledUntil.String()
		}
		st := accountState{a.EffectiveHealth(now), held, a.SyncStatus}
		if prev, ok := p.accounts[a.ID]; !first && (!ok || prev != st) {
			out = append(out, feedEvent{ev: &graph.LicenseEvent{Kind: graph.LicenseEventKindAccount, At: now, Account: a},
				changed: now, accountID: a.ID})
		}
		next[a.ID] = st
	}
	p.accounts = next
	return out, nil
}

// runChanges reports the sync runs that started or finished since the last poll (a run that
// did both between two polls is reported once, finished).
func (p *feedPoller) runChanges(ctx context.Context, now time.Time, out []feedEvent) ([]feedEvent, error) {
	from := p.runsNow.Add(-p.overlap)
	runs, err := p.db.SyncRunChanges(ctx, from, 0)
	if err != nil {
		return nil, err
	}
	for _, run := range runs {
		changed := run.StartedAt
		k := runKey{id: run.ID}
		if run.FinishedAt != nil {
			changed, k.finished = *run.FinishedAt, run.FinishedAt.UnixNano()
		}
		if _, ok := p.seenRuns[k]; ok {
			continue
		}
		p.seenRuns[k] = changed
		out = append(out, feedEvent{ev: &graph.LicenseEvent{Kind: graph.LicenseEventKindSyncRun, At: now, SyncRun: run},
			changed: changed, accountID: run.AccountID})
	}
	for k, at := range p.seenRuns {
		if !at.After(from) {
			delete(p.seenRuns, k)
		}
	}
	return out, nil
}

// evalChanges reports the policy evaluations that changed something, each once.
func (p *feedPoller) evalChanges(ctx context.Context, now time.Time, out []feedEvent) ([]feedEvent, error) {
	after, top := p.evalFloor, p.evalFloor
	for {
		evs, err := p.db.PolicyEvaluationChanges(ctx, after, feedPage)
		if err != nil {
			return nil, err
		}
		for _, ev := range evs {
			after, top = ev.ID, max(top, ev.ID)
			if _, ok := p.seenEvals[ev.ID]; ok {
				continue
			}
			p.seenEvals[ev.ID] = struct{}{}
			fe := feedEvent{ev: &graph.LicenseEvent{Kind: graph.LicenseEventKindLabelEvaluation, At: ev.At, LabelEvaluation: ev}, changed: ev.At}
			if ev.SubjectType == "App" && ev.SubjectID != nil {
				fe.evalApp = *ev.SubjectID
			}
			out = append(out, fe)
		}
		if len(evs) < feedPage {
			break
		}
	}
	// The floor moves up to the highest id seen overlap ago.
	if last := p.evalMarks[len(p.evalMarks)-1]; top > last.id {
		p.evalMarks = append(p.evalMarks, idMark{now, top})
	}
	cut := now.Add(-p.overlap)
	for len(p.evalMarks) > 1 && !p.evalMarks[1].at.After(cut) {
		p.evalMarks = p.evalMarks[1:]
	}
	if p.evalMarks[0].at.After(cut) {
		return out, nil
	}
	p.evalFloor = p.evalMarks[0].id
	for id := range p.seenEvals {
		if id <= p.evalFloor {
			delete(p.seenEvals, id)
		}
	}
	return out, nil
}

// assignmentChanges reports the assignments changed since the last poll, oldest change first,
// with the PENDING state of one created since that moved on before the feed looked. It stops
// at the poll's budget of events (a bulk change of thousands is streamed over several polls,
// which a subscriber that keeps up can take within its buffer), and the next poll resumes
// where it stopped; the overlap is read again once the feed has caught up.
func (p *feedPoller) assignmentChanges(ctx context.Context, now time.Time, out []feedEvent) ([]feedEvent, error) {
	from := p.runsNow.Add(-p.overlap) // the previous poll's clock, less the overlap
	cursor := db.FeedCursor{At: from}
	if p.resume != nil {
		cursor = *p.resume
	}
	p.resume = nil
	n := 0
	for {
		changes, err := p.db.AssignmentChanges(ctx, cursor, 0, 0, feedPage)
		if err != nil {
			return nil, err
		}
		for _, a := range changes {
			cursor = db.FeedCursor{At: a.UpdatedAt, ID: a.ID}
			k := assignKey{a.ID, a.UpdatedAt.UnixNano()}
			if _, ok := p.seenAssign[k]; ok {
				continue
			}
			p.seenAssign[k] = struct{}{}
			if a.Status == model.AssignmentPending {
				p.seenPending[a.ID] = a.CreatedAt
			} else if _, streamed := p.seenPending[a.ID]; !streamed {
				if pend := pendingBefore(a, db.FeedCursor{At: from}); pend != nil {
					p.seenPending[a.ID] = a.CreatedAt
					out = append(out, assignmentEvent(pend))
					n++
				}
			}
			out = append(out, assignmentEvent(a))
			n++
		}
		if len(changes) < feedPage {
			break
		}
		if n >= p.budget {
			p.resume = &cursor
			break
		}
	}
	cut := now.Add(-p.overlap).UnixNano() // the next poll's window starts after it
	for k := range p.seenAssign {
		if k.at <= cut {
			delete(p.seenAssign, k)
		}
	}
	for id, created := range p.seenPending {
		if created.UnixNano() <= cut {
			delete(p.seenPending, id)
		}
	}
	return out, nil
}

func assignmentEvent(a *model.LicenseAssignment) feedEvent {
	return feedEvent{ev: &graph.LicenseEvent{Kind: graph.LicenseEventKindAssignment, At: a.UpdatedAt, Assignment: a},
		changed: a.UpdatedAt, accountID: a.AccountID, appID: a.AppID}
}

// pendingBefore returns the PENDING state of an assignment Orchard created after the feed's
// cursor and that moved on before the feed looked (Apple confirmed it, or refused it, between
// two polls): the feed reads rows as they are now, so without it a subscriber would never see
// that the assignment was PENDING. Assignments found at Apple are created ASSIGNED and have no
// such state. The poller calls it for rows it has not streamed PENDING, with the start of its
// window as the cursor: a row created before that was streamed (or predates the feed).
func pendingBefore(a *model.LicenseAssignment, c db.FeedCursor) *model.LicenseAssignment {
	if a.Status == model.AssignmentPending || a.Origin == model.OriginFoundAtApple || !a.CreatedAt.After(c.At) {
		return nil
	}
	p := *a
	p.Status, p.UpdatedAt = model.AssignmentPending, a.CreatedAt
	p.AssignedAt, p.ReclaimedAt, p.RemovedAtAppleAt = nil, nil, nil
	p.ErrorNumber, p.ErrorMessage, p.ReclaimReason, p.ReclaimedBy = nil, nil, nil, nil
	return &p
}

package resolvers

import (
	"context"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"orchard/db"
	"orchard/graph"
	"orchard/model"
	"orchard/resolvers/loaders"
)

// responseLoaders gives every event of a subscription fresh loaders, and every operation sent
// over a WebSocket connection too. gqlgen resolves the fields of a response — a query's one
// answer, each event of a subscription — in the context the transport passes for it, which for
// a WebSocket is the connection's: loaders put there would serve the nested fields of every
// event and operation of the connection from what its first one loaded (a sync run's account
// keeping its old name, an assignment's app its old metadata, for as long as the connection
// lives). An HTTP request already carries loaders of its own (loaders.Middleware), kept.
func responseLoaders(d *db.DB) graphql.ResponseMiddleware {
	return func(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
		if !loaders.Has(ctx) || isSubscription(ctx) {
			ctx = loaders.NewContext(ctx, d)
		}
		return next(ctx)
	}
}

func isSubscription(ctx context.Context) bool {
	if !graphql.HasOperationContext(ctx) {
		return false
	}
	op := graphql.GetOperationContext(ctx).Operation
	return op != nil && op.Operation == ast.Subscription
}

// feedInterval is how often a licenseEvents subscription looks for changes.
const feedInterval = 500 * time.Millisecond

// licenseFeed streams changes to one subscriber until its context ends. It follows the
// database, so it sees what every replica does; a slow subscriber makes the feed wait (nothing
// is dropped).
func (r *Resolver) licenseFeed(ctx context.Context, accountID, appID int64) (<-chan *graph.LicenseEvent, error) {
	start, err := r.DB.ClockNow(ctx)
	if err != nil {
		return nil, err
	}
	out := make(chan *graph.LicenseEvent, 64)
	go func() {
		defer close(out)
		cursor := db.FeedCursor{At: start}
		runsSince := start
		lastEval := int64(0)
		type state struct {
			health model.TokenHealth
			held   string
			sync   model.SyncStatus
		}
		accounts := map[int64]state{}
		first := true
		t := time.NewTicker(feedInterval)
		defer t.Stop()
		send := func(ev *graph.LicenseEvent) bool {
			select {
			case out <- ev:
				return true
			case <-ctx.Done():
				return false
			}
		}
		for {
			now, err := r.DB.ClockNow(ctx)
			if err != nil {
				return
			}
			// Accounts: health, holds and sync status, as they change.
			as, err := r.DB.ListLiveAccounts(ctx)
			if err != nil {
				return
			}
			for _, a := range as {
				if accountID != 0 && a.ID != accountID {
					continue
				}
				held := ""
				if a.ThrottledUntil != nil && a.ThrottledUntil.After(now) {
					held = a.ThrottledUntil.String()
				}
				st := state{a.EffectiveHealth(now), held, a.SyncStatus}
				if prev, ok := accounts[a.ID]; ok && prev != st || !ok && !first {
					if !send(&graph.LicenseEvent{Kind: graph.LicenseEventKindAccount, At: now, Account: a}) {
						return
					}
				}
				accounts[a.ID] = st
			}
			first = false
			runs, err := r.DB.SyncRunChanges(ctx, runsSince, accountID)
			if err != nil {
				return
			}
			for _, run := range runs {
				if !send(&graph.LicenseEvent{Kind: graph.LicenseEventKindSyncRun, At: now, SyncRun: run}) {
					return
				}
			}
			runsSince = now
			// Policy evaluations that changed something (appear once each, by id).
			for {
				f := db.AuditFilter{Action: "policy.evaluate", Since: &start}
				if appID != 0 {
					f.SubjectType, f.SubjectID = "App", appID
				}
				evs, _, err := r.DB.ListAuditEvents(ctx, f, db.Page{First: 100, After: lastEval})
				if err != nil {
					return
				}
				for _, ev := range evs {
					lastEval = ev.ID
					if accountID == 0 && !send(&graph.LicenseEvent{Kind: graph.LicenseEventKindLabelEvaluation, At: ev.At, LabelEvaluation: ev}) {
						return
					}
				}
				if len(evs) < 100 {
					break
				}
			}
			for {
				changes, err := r.DB.AssignmentChanges(ctx, cursor, accountID, appID, 500)
				if err != nil {
					return
				}
				for _, a := range changes {
					if p := pendingBefore(a, cursor); p != nil {
						if !send(&graph.LicenseEvent{Kind: graph.LicenseEventKindAssignment, At: p.UpdatedAt, Assignment: p}) {
							return
						}
					}
					cursor = db.FeedCursor{At: a.UpdatedAt, ID: a.ID}
					if !send(&graph.LicenseEvent{Kind: graph.LicenseEventKindAssignment, At: a.UpdatedAt, Assignment: a}) {
						return
					}
				}
				if len(changes) < 500 {
					break
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return out, nil
}

// pendingBefore returns the PENDING state of an assignment Orchard created after the feed's
// cursor and that moved on before the feed looked (Apple confirmed it, or refused it, between
// two polls): the feed reads rows as they are now, so without it a subscriber would never see
// that the assignment was PENDING. Assignments found at Apple are created ASSIGNED and have no
// such state. An assignment created after the cursor was never streamed: a streamed row's
// creation is at or before its change, which is at or before the cursor.
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

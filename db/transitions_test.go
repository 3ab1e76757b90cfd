package db_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
)

// transitionFixture is one account with one pool of 10 licenses and one assignment per
// state, each to a device of its own.
type transitionFixture struct {
	account *model.Account
	app     *model.App
	pool    *model.LicensePool
	by      map[model.AssignmentState]*model.LicenseAssignment
	// command waits for the PENDING assignment's confirmation.
	command *model.DeviceCommand
}

func newTransitionFixture(t *testing.T, d *db.DB) *transitionFixture {
	t.Helper()
	ctx := context.Background()
	now := db.Now()
	key := "uid-transitions"
	f := &transitionFixture{by: map[model.AssignmentState]*model.LicenseAssignment{}}
	f.account = &model.Account{Name: "Account", OrgName: "Org", LocationName: "Location", CountryCode: "US", AppleUID: key,
		LocationKey: &key, TokenCiphertext: []byte("sealed"), TokenExpiresAt: now.Add(24 * time.Hour),
		Health: model.TokenHealthActive, HealthChangedAt: now, SyncStatus: model.SyncStatusNever}
	mustDo(t, d.InsertRows(ctx, f.account))
	f.app = &model.App{AdamID: "100001", Kind: model.AppKindApp, Name: "App", BundleID: "com.example.app", Platforms: "IOS"}
	mustDo(t, d.InsertRows(ctx, f.app))
	f.pool = &model.LicensePool{AccountID: f.account.ID, AppID: f.app.ID, AdamID: f.app.AdamID, PricingParam: "STDQ",
		TotalCount: 10, DeviceAssignable: true, Revocable: true}
	mustDo(t, d.InsertRows(ctx, f.pool))
	reason := "asked back"
	var held, pending int64
	for i, s := range model.AssignmentStates {
		serial := fmt.Sprintf("SER%03d", i)
		dev := &model.Device{SerialNumber: serial, Name: serial, Platform: model.PlatformIOS, OSVersion: "17.4", CountryCode: "US",
			Status: model.DeviceActive}
		mustDo(t, d.InsertRows(ctx, dev))
		a := &model.LicenseAssignment{PoolID: f.pool.ID, AccountID: f.account.ID, AppID: f.app.ID, Kind: model.LicenseKindDevice,
			SerialNumber: &serial, DeviceID: &dev.ID, Status: s.Status, Origin: model.OriginAdmin, Reason: "test", CausedBy: "test"}
		if s.Status.Active() {
			hk := model.HolderKeyFor(model.LicenseKindDevice, serial, "")
			a.HolderKey = &hk
		}
		if s.ReclaimAsked {
			a.ReclaimReason = &reason
		}
		mustDo(t, d.InsertRows(ctx, a))
		f.by[s] = a
		if s.Status.HeldAtApple() {
			held++
		} else if s.Status.Active() {
			pending++
		}
		if s == model.StatePending {
			f.command = &model.DeviceCommand{DeviceID: dev.ID, AppID: f.app.ID, AssignmentID: &a.ID,
				Kind: model.CommandInstall, Status: model.CommandPending, Reason: "test", WaitsForAssignment: true}
			mustDo(t, d.InsertCommands(ctx, f.command))
		}
	}
	mustDo(t, d.SetPoolCounts(ctx, f.pool.ID, held, pending))
	return f
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (f *transitionFixture) ids(states ...model.AssignmentState) []int64 {
	out := make([]int64, len(states))
	for i, s := range states {
		out[i] = f.by[s].ID
	}
	return out
}

// counts reads the pool's Orchard counters.
func counts(t *testing.T, d *db.DB, poolID int64) [2]int64 {
	t.Helper()
	p, err := d.PoolByID(context.Background(), poolID)
	mustDo(t, err)
	return [2]int64{p.AssignedCount, p.ReservedCount}
}

// TestApplyTransitions applies events in bulk to assignments in every state: only the
// transitions of the table happen, the pool's counters move by its deltas, the effects are
// written (a disassociate queued for a license reclaimed on its way, waiting commands
// released, the holder slot freed), and the observer sees each transition, inside the
// transaction, with the assignment's pool, app and holder.
func TestApplyTransitions(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := newTransitionFixture(t, d)
		var seen []model.AppliedTransition
		d.OnTransitions(func(ctx context.Context, tx *db.DB, applied []model.AppliedTransition) error {
			seen = append(seen, applied...)
			// Inside the transaction: the rows already show the new status.
			for _, a := range applied {
				got, err := tx.AssignmentByID(ctx, a.AssignmentID)
				if err != nil {
					return err
				}
				if got.Status != a.To {
					return fmt.Errorf("observer sees assignment %d %s, want %s", a.AssignmentID, got.Status, a.To)
				}
			}
			return nil
		})
		sortApplied := func(a []model.AppliedTransition) []model.AppliedTransition {
			sort.Slice(a, func(i, j int) bool { return a[i].AssignmentID < a[j].AssignmentID })
			return a
		}
		transition := func(s model.AssignmentState, ev model.AssignmentEvent, to model.AssignmentStatus) model.AppliedTransition {
			a := f.by[s]
			return model.AppliedTransition{AssignmentID: a.ID, PoolID: f.pool.ID, AccountID: f.account.ID, AppID: f.app.ID,
				Kind: model.LicenseKindDevice, DeviceID: a.DeviceID, Origin: model.OriginAdmin, Event: ev, From: s.Status, To: to}
		}
		before := counts(t, d, f.pool.ID) // held: ASSIGNED, RECLAIMING; reserved: the two PENDING

		// Apple confirms associates of every state (and of an assignment that does not exist):
		// the two PENDING ones move, nothing else.
		all := append(f.ids(model.AssignmentStates...), 999999)
		applied, err := d.ApplyTransitions(ctx, model.EventAssociateConfirmed, all, db.TransitionDetails{})
		mustDo(t, err)
		want := sortApplied([]model.AppliedTransition{
			transition(model.StatePending, model.EventAssociateConfirmed, model.AssignmentAssigned),
			transition(model.StatePendingReclaim, model.EventAssociateConfirmed, model.AssignmentReclaiming),
		})
		if diff := cmp.Diff(want, sortApplied(applied)); diff != "" {
			t.Errorf("applied mismatch (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(want, sortApplied(seen)); diff != "" {
			t.Errorf("observed mismatch (-want +got):\n%s", diff)
		}
		if got, want := counts(t, d, f.pool.ID), [2]int64{before[0] + 2, before[1] - 2}; got != want {
			t.Errorf("pool counters (assigned, reserved) = %v, want %v", got, want)
		}
		confirmed, err := d.AssignmentByID(ctx, f.by[model.StatePending].ID)
		mustDo(t, err)
		if confirmed.AssignedAt == nil || confirmed.HolderKey == nil {
			t.Errorf("confirmed assignment: assigned_at %v, holder key %v; want both set", confirmed.AssignedAt, confirmed.HolderKey)
		}
		queued, err := d.QueuedOutbox(ctx, f.account.ID, db.Now().Add(time.Minute), 10)
		mustDo(t, err)
		var gotItems []string
		for _, it := range queued {
			gotItems = append(gotItems, fmt.Sprintf("%s %d %s/%s %s", it.Action, *it.AssignmentID, it.AdamID, it.PricingParam, *it.SerialNumber))
		}
		rec := f.by[model.StatePendingReclaim]
		if diff := cmp.Diff([]string{fmt.Sprintf("DISASSOCIATE %d 100001/STDQ %s", rec.ID, *rec.SerialNumber)}, gotItems); diff != "" {
			t.Errorf("queued outbox mismatch (-want +got):\n%s", diff)
		}
		cmds, err := d.CommandsByID(ctx, []int64{f.command.ID})
		mustDo(t, err)
		if len(cmds) != 1 || cmds[0].WaitsForAssignment {
			t.Errorf("the command that waited for the license still waits: %+v", cmds)
		}

		// Apple confirms the reclaims: both RECLAIMING ones (the original and the one just
		// confirmed) are reclaimed, their holder slots freed.
		seen = nil
		ids := f.ids(model.StateReclaiming, model.StatePendingReclaim)
		applied, err = d.ApplyTransitions(ctx, model.EventReclaimConfirmed, ids, db.TransitionDetails{})
		mustDo(t, err)
		want = sortApplied([]model.AppliedTransition{
			transition(model.StateReclaiming, model.EventReclaimConfirmed, model.AssignmentReclaimed),
			transition(model.StatePendingReclaim, model.EventReclaimConfirmed, model.AssignmentReclaimed),
		})
		want[0].From, want[1].From = model.AssignmentReclaiming, model.AssignmentReclaiming
		if diff := cmp.Diff(want, sortApplied(applied)); diff != "" {
			t.Errorf("applied mismatch (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(want, sortApplied(seen)); diff != "" {
			t.Errorf("observed mismatch (-want +got):\n%s", diff)
		}
		if got, want := counts(t, d, f.pool.ID), [2]int64{before[0], before[1] - 2}; got != want {
			t.Errorf("pool counters (assigned, reserved) = %v, want %v", got, want)
		}
		for _, id := range ids {
			a, err := d.AssignmentByID(ctx, id)
			mustDo(t, err)
			if a.HolderKey != nil || a.ReclaimedAt == nil {
				t.Errorf("reclaimed assignment %d: holder key %v, reclaimed at %v; want none and set", id, a.HolderKey, a.ReclaimedAt)
			}
		}

		// An event that applies to none of them changes nothing and tells no observer.
		seen = nil
		applied, err = d.ApplyTransitions(ctx, model.EventReclaimRefused, f.ids(model.StateFailed, model.StateAssigned), db.TransitionDetails{})
		mustDo(t, err)
		if len(applied) != 0 || len(seen) != 0 {
			t.Errorf("RECLAIM_REFUSED of FAILED and ASSIGNED applied %v, observed %v; want nothing", applied, seen)
		}
	})
}

// TestTransitionObserverRollsBack: an observer's error rolls back the transaction it was
// called in — the transitions, the counters, and what the observer wrote — and what an
// observer writes commits with the transitions.
func TestTransitionObserverRollsBack(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := newTransitionFixture(t, d)
		refuse := errors.New("observer refuses")
		d.OnTransitions(func(ctx context.Context, tx *db.DB, applied []model.AppliedTransition) error {
			for _, a := range applied {
				if err := tx.InsertAudit(ctx, &model.AuditEvent{ActorKind: model.ActorSystem, Action: "observed." + string(a.Event)}); err != nil {
					return err
				}
				if a.Event == model.EventGoneAtApple {
					return refuse
				}
			}
			return nil
		})
		before := counts(t, d, f.pool.ID)
		assigned := f.by[model.StateAssigned].ID
		err := d.Tx(ctx, func(tx *db.DB) error {
			_, err := tx.ApplyTransitions(ctx, model.EventGoneAtApple, []int64{assigned}, db.TransitionDetails{ReclaimReason: "gone", ReclaimedBy: "test"})
			return err
		})
		if !errors.Is(err, refuse) {
			t.Fatalf("ApplyTransitions with a refusing observer: %v, want %v", err, refuse)
		}
		a, err := d.AssignmentByID(ctx, assigned)
		mustDo(t, err)
		if a.Status != model.AssignmentAssigned || a.HolderKey == nil || a.ReclaimReason != nil {
			t.Errorf("after the rollback the assignment is %s (holder %v, reason %v), want ASSIGNED as it was", a.Status, a.HolderKey, a.ReclaimReason)
		}
		if got := counts(t, d, f.pool.ID); got != before {
			t.Errorf("after the rollback the pool counters are %v, want %v", got, before)
		}
		if n, err := d.CountAuditEvents(ctx, db.AuditFilter{Action: "observed.GONE_AT_APPLE"}); err != nil || n != 0 {
			t.Errorf("observer's rows after the rollback = %d, %v; want 0", n, err)
		}

		// Outside a caller's transaction ApplyTransitions opens its own; the observer's rows
		// commit with it.
		if _, err := d.ApplyTransitions(ctx, model.EventReclaimAsked, []int64{assigned}, db.TransitionDetails{ReclaimReason: "r", ReclaimedBy: "test"}); err != nil {
			t.Fatal(err)
		}
		if n, err := d.CountAuditEvents(ctx, db.AuditFilter{Action: "observed.RECLAIM_ASKED"}); err != nil || n != 1 {
			t.Errorf("observer's rows after the commit = %d, %v; want 1", n, err)
		}
	})
}

// TestCallSitesReportTransitions: the db operations that move assignments — Apple's
// outcomes, the cancellation of an account's work, a notification that licenses are gone —
// move them through the table, and the observer sees each move with its event.
func TestCallSitesReportTransitions(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := newTransitionFixture(t, d)
		var seen []string
		d.OnTransitions(func(ctx context.Context, tx *db.DB, applied []model.AppliedTransition) error {
			for _, a := range applied {
				if a.PoolID != f.pool.ID || a.AppID != f.app.ID || a.AccountID != f.account.ID {
					return fmt.Errorf("transition %+v: want pool %d, app %d, account %d", a, f.pool.ID, f.app.ID, f.account.ID)
				}
				seen = append(seen, fmt.Sprintf("%d %s %s→%s", a.AssignmentID, a.Event, a.From, a.To))
			}
			return nil
		})
		item := func(action model.OutboxAction, s model.AssignmentState) *model.OutboxItem {
			a := f.by[s]
			it := &model.OutboxItem{AccountID: f.account.ID, Action: action, AssignmentID: &a.ID, AdamID: f.app.AdamID,
				PricingParam: "STDQ", SerialNumber: a.SerialNumber, Status: model.OutboxSent, NotBefore: db.Now(), CreatedAt: db.Now()}
			mustDo(t, d.InsertOutbox(ctx, it))
			return it
		}
		line := func(s model.AssignmentState, ev model.AssignmentEvent, from, to model.AssignmentStatus) string {
			return fmt.Sprintf("%d %s %s→%s", f.by[s].ID, ev, from, to)
		}
		check := func(step string, want ...string) {
			t.Helper()
			sort.Strings(want)
			sort.Strings(seen)
			if diff := cmp.Diff(want, seen); diff != "" {
				t.Errorf("%s: observed transitions mismatch (-want +got):\n%s", step, diff)
			}
			seen = nil
		}

		// Apple confirms the PENDING one's associate and the RECLAIMING one's disassociate,
		// and refuses the other PENDING one's associate.
		assigned, err := d.ApplyOutcomes(ctx, []db.Outcome{
			{Item: item(model.OutboxAssociate, model.StatePending), OK: true},
			{Item: item(model.OutboxDisassociate, model.StateReclaiming), OK: true},
			{Item: item(model.OutboxAssociate, model.StatePendingReclaim), ErrorNumber: 9610, ErrorMessage: "refused"},
		})
		mustDo(t, err)
		if diff := cmp.Diff([]int64{f.by[model.StatePending].ID}, assigned); diff != "" {
			t.Errorf("ApplyOutcomes' assigned mismatch (-want +got):\n%s", diff)
		}
		check("outcomes",
			line(model.StatePending, model.EventAssociateConfirmed, model.AssignmentPending, model.AssignmentAssigned),
			line(model.StateReclaiming, model.EventReclaimConfirmed, model.AssignmentReclaiming, model.AssignmentReclaimed),
			line(model.StatePendingReclaim, model.EventAssociateRefused, model.AssignmentPending, model.AssignmentFailed))
		refused, err := d.AssignmentByID(ctx, f.by[model.StatePendingReclaim].ID)
		mustDo(t, err)
		if refused.ErrorNumber == nil || *refused.ErrorNumber != 9610 || refused.ErrorMessage == nil || *refused.ErrorMessage != "refused" {
			t.Errorf("refused assignment: error %v %v, want 9610 refused", refused.ErrorNumber, refused.ErrorMessage)
		}
		if got := counts(t, d, f.pool.ID); got != [2]int64{2, 0} {
			t.Errorf("pool counters (assigned, reserved) = %v, want [2 0]", got) // the two ASSIGNED ones held, nothing on its way
		}

		// Apple says the first ASSIGNED one is gone: drift.
		gone := f.by[model.StateAssigned]
		n, _, err := d.GoneAtApple(ctx, f.account.ID, []db.AppleAssignmentRow{{AdamID: f.app.AdamID, PricingParam: "STDQ", SerialNumber: *gone.SerialNumber}},
			map[string]db.PoolRef{db.AssetKey(f.app.AdamID, "STDQ"): {PoolID: f.pool.ID, AppID: f.app.ID}})
		mustDo(t, err)
		if n != 1 {
			t.Errorf("GoneAtApple changed %d, want 1", n)
		}
		check("gone at Apple", line(model.StateAssigned, model.EventGoneAtApple, model.AssignmentAssigned, model.AssignmentRemovedAtApple))

		// The one Apple confirmed is asked back (its disassociate is queued), then the
		// account's work is cancelled: the reclaim will not happen.
		back := f.by[model.StatePending]
		_, err = d.ApplyTransitions(ctx, model.EventReclaimAsked, []int64{back.ID}, db.TransitionDetails{ReclaimReason: "r", ReclaimedBy: "test"})
		mustDo(t, err)
		cancelled, err := d.CancelAccountWork(ctx, f.account.ID, "the account was removed")
		mustDo(t, err)
		if cancelled != 1 {
			t.Errorf("CancelAccountWork cancelled %d items, want 1 (the disassociate)", cancelled)
		}
		check("cancel",
			line(model.StatePending, model.EventReclaimAsked, model.AssignmentAssigned, model.AssignmentReclaiming),
			line(model.StatePending, model.EventReclaimCancelled, model.AssignmentReclaiming, model.AssignmentAssigned))
		b, err := d.AssignmentByID(ctx, back.ID)
		mustDo(t, err)
		if b.Status != model.AssignmentAssigned || b.ReclaimReason != nil || b.ReclaimedBy != nil {
			t.Errorf("after the cancelled reclaim: %s, reason %v, by %v; want ASSIGNED with no reclaim", b.Status, b.ReclaimReason, b.ReclaimedBy)
		}
		g, err := d.AssignmentByID(ctx, gone.ID)
		mustDo(t, err)
		if g.ReclaimedBy == nil || *g.ReclaimedBy != "apple" || g.RemovedAtAppleAt == nil || g.HolderKey != nil {
			t.Errorf("gone assignment: reclaimed by %v, removed at %v, holder %v; want apple, set, none", g.ReclaimedBy, g.RemovedAtAppleAt, g.HolderKey)
		}
	})
}

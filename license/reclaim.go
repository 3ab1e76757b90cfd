package license

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"orchard/db"
	"orchard/model"
)

// Taking licenses back (R4). A reclaim marks the assignment RECLAIMING and queues a
// disassociate for Apple in one transaction; the license counts as held until Apple confirms.
// A license still on its way to Apple is cancelled if its associate has not been sent, or
// reclaimed as soon as Apple confirms it if it has — an accepted reclaim is never dropped.

// Reclaim takes one license back.
func (s *Service) Reclaim(ctx context.Context, actor Actor, assignmentID int64, reason, idempotencyKey string) (int64, error) {
	in := map[string]any{"assignmentId": assignmentID, "reason": reason}
	id, _, err := idempotent(ctx, s, actor, idempotencyKey, "reclaimLicense", in, func(tx *db.DB) (int64, error) {
		a, err := tx.LockAssignment(ctx, assignmentID)
		if errors.Is(err, model.ErrNotFound) {
			return 0, &model.Error{Code: model.CodeNotFound, Field: []string{"input", "assignmentId"}, Message: "no such license assignment"}
		}
		if err != nil {
			return 0, err
		}
		if !a.Status.Active() {
			return 0, &model.Error{Code: model.CodeConflict, Field: []string{"input", "assignmentId"},
				Message: fmt.Sprintf("the assignment is %s: there is nothing to take back", a.Status)}
		}
		pool, err := tx.PoolByID(ctx, a.PoolID)
		if err != nil {
			return 0, err
		}
		if !pool.Revocable && a.Status == model.AssignmentAssigned {
			return 0, &model.Error{Code: model.CodeInvalidInput, Field: []string{"input", "assignmentId"},
				Message: "Apple does not allow this license to be taken back (books and other non-revocable assets stay with their holder)"}
		}
		if err := s.reclaimTx(ctx, tx, actor, a, pool, reasonOr(reason, actor)); err != nil {
			return 0, err
		}
		return a.ID, nil
	})
	if err == nil {
		if a, e := s.db.AssignmentByID(ctx, id); e == nil {
			s.kick(a.AccountID)
		}
	}
	return id, err
}

func reasonOr(reason string, actor Actor) string {
	if strings.TrimSpace(reason) != "" {
		return strings.TrimSpace(reason)
	}
	return "reclaimed by " + actor.String()
}

// reclaimTx takes one active assignment back, inside the caller's transaction (see
// reclaimBatchTx).
func (s *Service) reclaimTx(ctx context.Context, tx *db.DB, actor Actor, a *model.LicenseAssignment, pool *model.LicensePool, reason string) error {
	return s.reclaimTxInto(ctx, tx, actor, a, pool, reason, nil)
}

// reclaimTxInto is reclaimTx leaving its audit event in audits, when set, for the caller to
// write with its own.
func (s *Service) reclaimTxInto(ctx context.Context, tx *db.DB, actor Actor, a *model.LicenseAssignment, pool *model.LicensePool, reason string, audits *[]*model.AuditEvent) error {
	_, err := s.reclaimBatchTxInto(ctx, tx, actor, []*model.LicenseAssignment{a}, map[int64]*model.LicensePool{pool.ID: pool}, reason, audits)
	return err
}

// reclaimBatchTx takes active assignments back, inside the caller's transaction, by the
// transition table: an ASSIGNED one goes RECLAIMING with its disassociate queued; a PENDING
// one whose associate was never sent has it cancelled and is reclaimed at once
// (RECLAIM_UNSENT); one whose associate may have reached Apple is marked, and reclaimed as
// soon as Apple confirms it (see the dispatcher). One already on its way back is left alone,
// as are non-revocable licenses (the caller decides whether that is an error). pools holds
// the assignments' pools by id. It returns how many it took back, each audited.
func (s *Service) reclaimBatchTx(ctx context.Context, tx *db.DB, actor Actor, as []*model.LicenseAssignment, pools map[int64]*model.LicensePool, reason string) (int, error) {
	return s.reclaimBatchTxInto(ctx, tx, actor, as, pools, reason, nil)
}

// reclaimBatchTxInto is reclaimBatchTx leaving its audit events in audits, when set, for the
// caller to write with its own; otherwise they are written in one statement.
func (s *Service) reclaimBatchTxInto(ctx context.Context, tx *db.DB, actor Actor, as []*model.LicenseAssignment, pools map[int64]*model.LicensePool, reason string, audits *[]*model.AuditEvent) (int, error) {
	reason = truncate(reason, 1000)
	var asked, unsent []int64
	for _, a := range as {
		if a.Status == model.AssignmentAssigned && !pools[a.PoolID].Revocable {
			continue
		}
		if _, ok := model.LookupTransition(model.EventReclaimUnsent, model.StateOf(a.Status, a.ReclaimReason)); ok {
			cancelled, err := tx.CancelQueuedAssociate(ctx, a.ID)
			if err != nil {
				return 0, fmt.Errorf("reclaim %d: %w", a.ID, err)
			}
			if cancelled { // never reached Apple: the reservation is simply released
				unsent = append(unsent, a.ID)
				continue
			}
		}
		asked = append(asked, a.ID)
	}
	det := db.TransitionDetails{ReclaimReason: reason, ReclaimedBy: actor.String()}
	applied, err := tx.ApplyTransitions(ctx, model.EventReclaimUnsent, unsent, det)
	if err != nil {
		return 0, fmt.Errorf("reclaim: %w", err)
	}
	more, err := tx.ApplyTransitions(ctx, model.EventReclaimAsked, asked, det)
	if err != nil {
		return 0, fmt.Errorf("reclaim: %w", err)
	}
	applied = append(applied, more...)
	slices.SortFunc(applied, func(a, b model.AppliedTransition) int { return cmp.Compare(a.AssignmentID, b.AssignmentID) })
	events := make([]*model.AuditEvent, 0, len(applied))
	for _, t := range applied {
		acct := t.AccountID
		e, err := auditEvent(actor, "license.reclaim", "LicenseAssignment", t.AssignmentID, &acct, "license taken back: "+reason, nil)
		if err != nil {
			return 0, fmt.Errorf("reclaim %d: %w", t.AssignmentID, err)
		}
		events = append(events, e)
	}
	if audits != nil {
		*audits = append(*audits, events...)
	} else if err := tx.InsertAudits(ctx, events); err != nil {
		return 0, fmt.Errorf("audit %d reclaims: %w", len(events), err)
	}
	return len(applied), nil
}

// ReclaimScope selects the licenses of a bulk reclaim: all of an account, or all of an app in
// an account.
type ReclaimScope struct {
	AccountID int64 `json:"accountId"`
	AppID     int64 `json:"appId,omitempty"`
}

// ReclaimMany takes back every revocable license in the scope (R4d), in batches, and returns
// how many reclaims it queued. Non-revocable licenses (books) stay.
func (s *Service) ReclaimMany(ctx context.Context, actor Actor, scope ReclaimScope, reason, idempotencyKey string) (int, error) {
	if _, err := s.liveAccount(ctx, scope.AccountID); err != nil {
		return 0, err
	}
	in := map[string]any{"scope": scope, "reason": reason}
	// A bulk reclaim runs in batches of its own transactions (an account may hold hundreds of
	// thousands of licenses); it is idempotent by nature — a second run takes back what is still
	// held — so its key only records the answer, once the work is done.
	n, _, err := idempotentOutside(ctx, s, actor, idempotencyKey, "reclaimLicenses", in, func(bool) (int, error) {
		return s.reclaimScope(ctx, actor, scope, reasonOr(reason, actor))
	})
	if err == nil {
		s.kick(scope.AccountID)
	}
	return n, err
}

// reclaimScope reclaims every active revocable license in the scope, a batch per
// transaction, in id order, so memory and lock times stay bounded however many there are.
func (s *Service) reclaimScope(ctx context.Context, actor Actor, scope ReclaimScope, reason string) (int, error) {
	pools := map[int64]*model.LicensePool{}
	n := 0
	after := int64(0)
	for {
		done, took := false, 0
		err := s.db.Tx(ctx, func(tx *db.DB) error {
			took = 0
			batch, err := tx.ActiveAssignmentsIn(ctx, scope.AccountID, scope.AppID, after, 500)
			if err != nil {
				return fmt.Errorf("reclaim: %w", err)
			}
			if len(batch) == 0 {
				done = true
				return nil
			}
			for _, a := range batch {
				if pools[a.PoolID] == nil {
					p, err := tx.PoolByID(ctx, a.PoolID)
					if err != nil {
						return fmt.Errorf("reclaim: %w", err)
					}
					pools[a.PoolID] = p
				}
			}
			if took, err = s.reclaimBatchTx(ctx, tx, actor, batch, pools, reason); err != nil {
				return err
			}
			after = batch[len(batch)-1].ID
			return nil
		})
		if err != nil {
			return n, err
		}
		n += took
		if done {
			return n, err
		}
	}
}

// reclaimAccountForRemoval queues the reclaim of every license of an account and marks it for
// removal; the scheduler removes it once nothing is left to take back.
func (s *Service) reclaimAccountForRemoval(ctx context.Context, actor Actor, a *model.Account) (int, error) {
	if hl := a.EffectiveHealth(s.now()); !hl.Usable() {
		return 0, &model.Error{Code: model.CodeAccountUnavailable, Field: []string{"input", "reclaimLicenses"},
			Message: fmt.Sprintf("the account's token is %s, so Orchard cannot take licenses back at Apple; renew the token first, or remove the account without reclaiming", hl)}
	}
	// Marked first, so that no new license is handed out from it meanwhile.
	if err := s.db.UpdateAccount(ctx, a.ID, map[string]any{"removal_requested_at": s.now()}); err != nil {
		return 0, err
	}
	n, err := s.reclaimScope(ctx, actor, ReclaimScope{AccountID: a.ID}, "the account is being removed")
	if err != nil {
		return n, err
	}
	if err := s.audit(ctx, actor, "account.remove_requested", "Account", a.ID, &a.ID,
		fmt.Sprintf("removal of account %q asked for: %d licenses to take back first", a.Name, n), nil); err != nil {
		return n, err
	}
	s.kick(a.ID)
	return n, nil
}

// FinishRemoval removes an account marked for removal once it holds no license Orchard can
// still take back; it reports whether it did.
func (s *Service) FinishRemoval(ctx context.Context, accountID int64) (bool, error) {
	left, err := s.db.CountReclaimable(ctx, accountID)
	if err != nil || left > 0 {
		return false, err
	}
	err = s.db.Tx(ctx, func(tx *db.DB) error {
		return s.removeAccountTx(ctx, tx, SystemActor, accountID, "its licenses were taken back first")
	})
	return err == nil, err
}

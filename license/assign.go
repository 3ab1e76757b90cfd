package license

import (
	"context"
	"errors"
	"fmt"
	"time"

	"orchard/db"
	"orchard/model"
)

// Assigning a license (doc/design.md §2.1, R5, R9, R10, R11, R13). The rules are checked, a license is
// reserved with a conditional update, the assignment (PENDING) and its outbox row are written,
// all in one transaction; the dispatcher sends it to Apple and its event completes it. Nothing
// here calls Apple.

// Target names whom a license is for: a device (by id or serial number) or a user (by id or
// the directory's external id).
type Target struct {
	DeviceID     int64  `json:"deviceId,omitempty"`
	SerialNumber string `json:"serialNumber,omitempty"`
	UserID       int64  `json:"userId,omitempty"`
	ExternalID   string `json:"externalId,omitempty"`
}

// AssignInput asks for a license: from a pool, or of an app from a given account or from the
// account Orchard chooses.
type AssignInput struct {
	PoolID int64 `json:"poolId,omitempty"`
	AppID  int64 `json:"appId,omitempty"`
	// AdamID names the app by Apple's id instead of AppID.
	AdamID    string            `json:"adamId,omitempty"`
	AccountID int64             `json:"accountId,omitempty"`
	Kind      model.LicenseKind `json:"kind"`
	Target    Target            `json:"target"`
	Reason    string            `json:"reason,omitempty"`
	// Origin says why (ADMIN by default); CONVERSION and LABEL come from the rules.
	Origin model.AssignmentOrigin `json:"origin,omitempty"`
}

// AssignResult is an accepted assignment.
type AssignResult struct {
	AssignmentID int64 `json:"assignmentId"`
	AccountID    int64 `json:"accountId"`
	// HeldUntil is set when Apple asked Orchard to wait for this account: the intent is kept
	// and carried out then.
	HeldUntil *time.Time `json:"heldUntil,omitempty"`
	// Note explains the choice of account when Orchard chose it.
	Note string `json:"note,omitempty"`
	// Assignment and Account are the rows as written (absent when the answer is replayed).
	Assignment *model.LicenseAssignment `json:"-"`
	Account    *model.Account           `json:"-"`
}

// Assign records an assignment intent: the one-target case of the planner (planner.go), with
// assignLicense's wording. idempotencyKey (optional) makes a retried call answer the same
// without assigning twice.
func (s *Service) Assign(ctx context.Context, actor Actor, in AssignInput, idempotencyKey string) (*AssignResult, error) {
	// The rules read outside the transaction, so that the transaction holds its locks only for
	// the writes; what they decided cannot go stale in a way that matters: the reservation is
	// conditional (R13) and the unique index refuses a second active assignment per pool and
	// holder. A refusal is answered (and recorded under the key) like any other.
	req := oneTargetRequest(in)
	f, plans, perr := s.planOne(ctx, s.db, req)
	if perr != nil {
		return nil, perr
	}
	if err := poolAgrees(in, f); err != nil {
		return nil, err
	}
	res, _, err := idempotent(ctx, s, actor, idempotencyKey, "assignLicense", in, func(tx *db.DB) (*AssignResult, error) {
		return s.commitOne(ctx, tx, actor, req, f, plans)
	})
	if err == nil {
		s.kick(res.AccountID)
	}
	return res, err
}

// ErrContradictory is the cause of a refusal of redundant arguments that name different
// things, such as a pool and an app or account it does not belong to. Preferring one of them
// would assign what the caller did not ask for, so the request is refused as a whole: a
// top-level BAD_USER_INPUT error (README, Errors), not a userError, and never recorded under
// an idempotency key. Arguments that agree are accepted.
var ErrContradictory = errors.New("contradictory arguments")

// contradiction is a BAD_USER_INPUT refusal caused by ErrContradictory.
func contradiction(field []string, format string, args ...any) error {
	return &model.Error{Code: model.CodeBadUserInput, Field: field, Message: fmt.Sprintf(format, args...), Err: ErrContradictory}
}

// poolAgrees checks that the app and account an assignment names besides its pool (appId,
// adamId, accountId) are the pool's own. The pool decides which license is taken, so the others
// can only agree with it or contradict it. f is as read for the request (the pool, if it
// exists, is its one candidate).
func poolAgrees(in AssignInput, f *assignFacts) error {
	if in.PoolID == 0 || f.app == nil || len(f.cands) != 1 {
		return nil // no pool given, or none found (refused by the plan)
	}
	pool := f.cands[0].pool
	switch {
	case in.AppID != 0 && in.AppID != f.app.ID:
		return contradiction([]string{"input", "appId"}, "poolId names a pool of app %s (adamId %s), not the app given by appId or adamId; give the pool alone, or the app and account", f.app.Name, f.app.AdamID)
	case in.AdamID != "" && in.AdamID != f.app.AdamID:
		return contradiction([]string{"input", "adamId"}, "poolId names a pool of app %s (adamId %s), not of adamId %s; give the pool alone, or the app and account", f.app.Name, f.app.AdamID, in.AdamID)
	case in.AccountID != 0 && in.AccountID != pool.AccountID:
		return contradiction([]string{"input", "accountId"}, "poolId names a pool of account %q, not the account given by accountId; give the pool alone, or the app and account", f.cands[0].account.Name)
	}
	return nil
}

// oneTargetRequest is an AssignInput as the planner's request.
func oneTargetRequest(in AssignInput) *assignRequest {
	return &assignRequest{PoolID: in.PoolID, AppID: in.AppID, AdamID: in.AdamID, AccountID: in.AccountID, Kind: in.Kind,
		Targets: []Target{in.Target}, Origin: in.Origin, Reason: in.Reason, oneTarget: true}
}

// planOne reads the facts of a one-target request and applies the rules (a refusal is part of
// the plan, not an error).
func (s *Service) planOne(ctx context.Context, q *db.DB, req *assignRequest) (*assignFacts, []targetPlan, error) {
	f, err := s.readAssignFacts(ctx, q, req, req.Targets)
	if err != nil {
		return nil, nil, err
	}
	return f, planTargets(f, req, req.Targets, 0, false), nil
}

// commitOne commits a one-target plan inside tx and answers as assignLicense does.
func (s *Service) commitOne(ctx context.Context, tx *db.DB, actor Actor, req *assignRequest, f *assignFacts, plans []targetPlan) (*AssignResult, error) {
	outs, _, err := s.commitPlans(ctx, tx, actor, req, f, plans, -1)
	if err != nil {
		return nil, err
	}
	o := outs[0]
	if o.Error != nil {
		return nil, o.Error
	}
	res := &AssignResult{AssignmentID: o.AssignmentID, AccountID: o.Account.ID, Assignment: o.Assignment, Account: o.Account}
	if o.Account.HeldAt(s.now()) {
		t := *o.Account.ThrottledUntil
		res.HeldUntil = &t
	}
	if req.PoolID == 0 && req.AccountID == 0 {
		res.Note = fmt.Sprintf("licensed from account %q (%s)", o.Account.Name, choiceReason(candidate{pool: o.Pool, account: o.Account}, o.h, o.rank, o.of))
	}
	return res, nil
}

// assignTx is the whole of an assignment inside the caller's transaction (for rules that
// assign as part of a larger change, such as a conversion). It returns the holder the rules
// resolved, also when they refused the target.
func (s *Service) assignTx(ctx context.Context, tx *db.DB, actor Actor, in AssignInput) (*AssignResult, holder, error) {
	req := oneTargetRequest(in)
	f, plans, err := s.planOne(ctx, tx, req)
	if err != nil {
		return nil, holder{}, err
	}
	res, err := s.commitOne(ctx, tx, actor, req, f, plans)
	return res, plans[0].h, err
}

// ensureRegistered makes sure a user is registered at Apple in an account before a user license
// is sent: a missing (or retired, or failed) registration is queued for users/create with the
// user's stable clientUserId (the outbox row it returns, for the caller to queue). The
// dispatcher sends the license once the registration is done.
func (s *Service) ensureRegistered(ctx context.Context, tx *db.DB, accountID int64, u *model.User) (*model.OutboxItem, error) {
	au, err := tx.AppleUserOf(ctx, accountID, u.ClientUserID)
	switch {
	case errors.Is(err, model.ErrNotFound):
		uid := u.ID
		au, created, err := tx.InsertAppleUser(ctx, &model.AppleUser{AccountID: accountID, UserID: &uid, ClientUserID: u.ClientUserID,
			Email: u.Email, Status: model.AppleUserRegistering, CreatedAt: s.now(), UpdatedAt: s.now()})
		if err != nil || !created {
			return nil, err
		}
		return s.registration(au, u), nil
	case err != nil:
		return nil, err
	}
	switch au.Status {
	case model.AppleUserRetired, model.AppleUserFailed:
		if err := tx.UpdateAppleUser(ctx, au.ID, map[string]any{"status": model.AppleUserRegistering, "error_message": nil}); err != nil {
			return nil, err
		}
		return s.registration(au, u), nil
	case model.AppleUserRetiring:
		return nil, &model.Error{Code: model.CodeConflict, Field: []string{"input", "target"},
			Message: fmt.Sprintf("user %s is being retired at Apple in this account; try again when that is done", u.ExternalID)}
	}
	if au.UserID == nil {
		return nil, tx.UpdateAppleUser(ctx, au.ID, map[string]any{"user_id": u.ID})
	}
	return nil, nil
}

// registration is the outbox row that registers a user at Apple (users/create); the caller
// queues it in the statement that queues the user's associates, ahead of them.
func (s *Service) registration(au *model.AppleUser, u *model.User) *model.OutboxItem {
	now := s.now()
	id, cuid := au.ID, u.ClientUserID
	return &model.OutboxItem{AccountID: au.AccountID, Action: model.OutboxCreateUser, AppleUserID: &id,
		ClientUserID: &cuid, Status: model.OutboxQueued, NotBefore: now, CreatedAt: now}
}

// truncate cuts s to at most n characters for a column: see model.Truncate.
func truncate(s string, n int) string { return model.Truncate(s, n) }

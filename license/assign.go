package license

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
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

// Assign records an assignment intent. idempotencyKey (optional) makes a retried call answer
// the same without assigning twice.
func (s *Service) Assign(ctx context.Context, actor Actor, in AssignInput, idempotencyKey string) (*AssignResult, error) {
	// The rules read outside the transaction; a refusal is answered (and recorded under the
	// key) like any other.
	plan, perr := s.planAssign(ctx, s.db, in)
	if perr != nil {
		if _, ok := model.AsError(perr); !ok {
			return nil, perr
		}
	}
	res, _, err := idempotent(ctx, s, actor, idempotencyKey, "assignLicense", in, func(tx *db.DB) (*AssignResult, error) {
		if perr != nil {
			return nil, perr
		}
		return s.commitAssign(ctx, tx, actor, in, plan)
	})
	if err == nil {
		s.kick(res.AccountID)
	}
	return res, err
}

// holder is a resolved target.
type holder struct {
	kind   model.LicenseKind
	device *model.Device
	user   *model.User
}

func (h holder) key() string {
	if h.kind == model.LicenseKindDevice {
		return model.HolderKeyFor(h.kind, h.device.SerialNumber, "")
	}
	return model.HolderKeyFor(h.kind, "", h.user.ClientUserID)
}

// resolveTarget finds the device or user and checks the rules that depend on them alone.
func (s *Service) resolveTarget(ctx context.Context, tx *db.DB, kind model.LicenseKind, t Target, field ...string) (holder, error) {
	h := holder{kind: kind}
	var err error
	switch {
	case t.DeviceID != 0:
		h.device, err = tx.DeviceByID(ctx, t.DeviceID)
	case t.SerialNumber != "":
		h.device, err = tx.DeviceBySerial(ctx, t.SerialNumber)
	case t.UserID != 0:
		h.user, err = tx.UserByID(ctx, t.UserID)
	case t.ExternalID != "":
		h.user, err = tx.UserByExternalID(ctx, t.ExternalID)
	default:
		return h, model.FieldError(field, "give a device or a user")
	}
	if errors.Is(err, model.ErrNotFound) {
		what := "device"
		if h.device == nil && (t.UserID != 0 || t.ExternalID != "") {
			what = "user"
		}
		return h, &model.Error{Code: model.CodeNotFound, Field: field, Message: "no such " + what}
	}
	if err != nil {
		return h, err
	}
	switch kind {
	case model.LicenseKindDevice:
		if h.device == nil {
			return h, model.FieldError(field, "a DEVICE license needs a device, not a user")
		}
	case model.LicenseKindUser:
		if h.device != nil {
			// A user license "to a device" goes to the device's user.
			if h.device.SharedIPad {
				return h, &model.Error{Code: model.CodeSharedIPadNeedsDeviceLicense, Field: field,
					Message: fmt.Sprintf("%s is a shared iPad: it takes device licenses only (an install serves every user of it)", h.device.SerialNumber)}
			}
			if h.device.UserID == nil {
				return h, model.FieldError(field, "device %s has no user to hold a USER license; assign a DEVICE license or give the user", h.device.SerialNumber)
			}
			if h.user, err = tx.UserByID(ctx, *h.device.UserID); err != nil {
				return h, err
			}
		}
	default:
		return h, model.FieldError(append(field[:len(field):len(field)], "kind"), "kind must be USER or DEVICE")
	}
	if h.device != nil && h.device.Status == model.DeviceRetired {
		return h, &model.Error{Code: model.CodeDeviceRetired, Field: field, Message: fmt.Sprintf("device %s is retired", h.device.SerialNumber)}
	}
	if h.user != nil && h.user.Status == model.UserRemoved {
		return h, &model.Error{Code: model.CodeNotFound, Field: field, Message: fmt.Sprintf("user %s was removed", h.user.ExternalID)}
	}
	return h, nil
}

// candidate is a pool an assignment could come from, with its account.
type candidate struct {
	pool    *model.LicensePool
	account *model.Account
}

// candidates lists the pools an intent may use: the given pool, the app's pool in the given
// account, or (no account given) the app's pools in every account, in the order Orchard prefers
// them: an account in the device's country first (no cross-country rule to meet), then the one
// with most licenses left, then the oldest account.
func (s *Service) candidates(ctx context.Context, tx *db.DB, in AssignInput, h holder) ([]candidate, *model.App, error) {
	var pools []*model.LicensePool
	var app *model.App
	switch {
	case in.PoolID != 0:
		p, err := tx.PoolByID(ctx, in.PoolID)
		if errors.Is(err, model.ErrNotFound) {
			return nil, nil, &model.Error{Code: model.CodeNotFound, Field: []string{"input", "poolId"}, Message: "no such license pool"}
		}
		if err != nil {
			return nil, nil, err
		}
		pools = []*model.LicensePool{p}
	case in.AppID != 0 || in.AdamID != "":
		appID := in.AppID
		if appID == 0 {
			var err error
			if app, err = tx.AppByAdamID(ctx, in.AdamID); errors.Is(err, model.ErrNotFound) {
				return nil, nil, &model.Error{Code: model.CodeNotFound, Field: []string{"input", "adamId"}, Message: "no account has bought an app with this adamId"}
			} else if err != nil {
				return nil, nil, err
			}
			appID = app.ID
		}
		ps, err := tx.PoolsOfApp(ctx, appID)
		if err != nil {
			return nil, nil, err
		}
		for _, p := range ps {
			if in.AccountID == 0 || p.AccountID == in.AccountID {
				pools = append(pools, p)
			}
		}
		if len(pools) == 0 {
			msg := "no account has bought this app"
			if in.AccountID != 0 {
				msg = "this account has not bought this app"
			}
			return nil, nil, &model.Error{Code: model.CodeNotFound, Field: []string{"input", "appId"}, Message: msg}
		}
	default:
		return nil, nil, model.FieldError([]string{"input"}, "give a poolId, or an appId (with an optional accountId)")
	}
	if app == nil {
		var err error
		if app, err = tx.AppByID(ctx, pools[0].AppID); err != nil {
			return nil, nil, err
		}
	}
	ids := make([]int64, len(pools))
	for i, p := range pools {
		ids[i] = p.AccountID
	}
	accounts, err := tx.AccountsByID(ctx, ids)
	if err != nil {
		return nil, nil, err
	}
	byID := make(map[int64]*model.Account, len(accounts))
	for _, a := range accounts {
		byID[a.ID] = a
	}
	out := make([]candidate, 0, len(pools))
	for _, p := range pools {
		a, ok := byID[p.AccountID]
		if !ok {
			return nil, nil, fmt.Errorf("pool %d: account %d: %w", p.ID, p.AccountID, model.ErrNotFound)
		}
		out = append(out, candidate{pool: p, account: a})
	}
	return orderFor(out, h), app, nil
}

// checkPool applies the rules that depend on the pool, its account and the holder.
func (s *Service) checkPool(ctx context.Context, tx *db.DB, c candidate, app *model.App, h holder, field []string) error {
	a, p := c.account, c.pool
	if a.RemovedAt != nil || a.RemovalRequestedAt != nil {
		return &model.Error{Code: model.CodeAccountUnavailable, Field: field, Message: fmt.Sprintf("account %q is removed", a.Name)}
	}
	if hl := a.EffectiveHealth(s.now()); !hl.Usable() {
		return &model.Error{Code: model.CodeAccountUnavailable, Field: field,
			Message: fmt.Sprintf("account %q cannot be used: its token is %s; renew the token (or take the account over) first", a.Name, hl)}
	}
	if h.kind == model.LicenseKindDevice && (!p.DeviceAssignable || app.Kind == model.AppKindBook) {
		what := "this app"
		if app.Kind == model.AppKindBook {
			what = "books"
		}
		return &model.Error{Code: model.CodeNotDeviceAssignable, Field: field,
			Message: fmt.Sprintf("%s cannot be assigned to devices (Apple allows only user licenses for %s); assign a USER license", nameOf(app), what)}
	}
	if h.kind == model.LicenseKindDevice && h.device.CountryCode != "" && a.CountryCode != "" && !strings.EqualFold(h.device.CountryCode, a.CountryCode) && !app.IsB2B {
		// R11: cross-country assignment needs iOS 9 or later and the app sold in the device's
		// country. Custom (B2B) apps are assignable everywhere.
		if osBefore(h.device, 9) {
			return &model.Error{Code: model.CodeOSTooOldForCrossCountry, Field: field,
				Message: fmt.Sprintf("device %s (%s) runs %s %s; licenses bought in %s can go to a device in another country only from iOS 9 on", h.device.SerialNumber, h.device.CountryCode, h.device.Platform, h.device.OSVersion, a.CountryCode)}
		}
		sold, known, err := tx.AppAvailability(ctx, app.ID, h.device.CountryCode)
		if err != nil {
			return err
		}
		if !sold {
			msg := fmt.Sprintf("%s is not sold in %s, where device %s is; licenses bought in %s can go only to countries where the app is sold", nameOf(app), h.device.CountryCode, h.device.SerialNumber, a.CountryCode)
			if !known {
				msg = fmt.Sprintf("Orchard does not know yet whether %s is sold in %s (availability is looked up with each sync); assign from an account in %s, or try again after the next sync", nameOf(app), h.device.CountryCode, h.device.CountryCode)
			}
			return &model.Error{Code: model.CodeAppNotSoldInCountry, Field: field, Message: msg}
		}
	}
	return nil
}

func osBefore(d *model.Device, major int) bool {
	switch d.Platform {
	case model.PlatformIOS, model.PlatformIPadOS, "":
	default:
		return false // the rule is about iOS devices
	}
	v := strings.TrimSpace(d.OSVersion)
	if v == "" {
		return false
	}
	head, _, _ := strings.Cut(v, ".")
	n, err := strconv.Atoi(head)
	return err == nil && n < major
}

func nameOf(app *model.App) string {
	if app.Name != "" {
		return fmt.Sprintf("%q", app.Name)
	}
	return "app " + app.AdamID
}

// assignPlan is what the rules decided for an assignment before anything is written: the
// holder, the app, and the pools that may provide the license, in order of preference.
type assignPlan struct {
	h     holder
	app   *model.App
	cands []candidate
	// rank is each eligible candidate's position among all candidates (for the note).
	rank []int
	all  int
	// refusal is why no candidate is eligible.
	refusal error
}

// planAssign checks every rule that reads (the holder, the app, what the holder holds
// already, R9, R11, account health) and lists the eligible pools. It runs outside the writing
// transaction, so that the transaction holds its locks only for the writes; what the reads
// decided cannot go stale in a way that matters: the reservation is conditional (R13) and the
// unique index refuses a second active assignment per pool and holder.
func (s *Service) planAssign(ctx context.Context, q *db.DB, in AssignInput) (*assignPlan, error) {
	h, err := s.resolveTarget(ctx, q, in.Kind, in.Target, "input", "target")
	if err != nil {
		return nil, err
	}
	cands, app, err := s.candidates(ctx, q, in, h)
	if err != nil {
		return nil, err
	}
	if existing, err := q.ActiveAssignmentOfApp(ctx, app.ID, h.kind, serialOf(h), clientIDOf(h)); err == nil {
		return nil, &model.Error{Code: model.CodeAlreadyAssigned, Field: []string{"input", "target"},
			Message: fmt.Sprintf("%s already has (or is getting) a %s license for %s (assignment in state %s)", holderName(h), strings.ToLower(string(h.kind)), nameOf(app), existing.Status)}
	} else if !errors.Is(err, model.ErrNotFound) {
		return nil, err
	}
	if h.kind == model.LicenseKindDevice && h.device.UserID != nil {
		// R9: no device license over a user license Orchard assigned to the device's user.
		has, err := q.UserLicenseByOrchard(ctx, app.ID, *h.device.UserID)
		if err != nil {
			return nil, err
		}
		if has {
			return nil, &model.Error{Code: model.CodeUserLicenseExists, Field: []string{"input", "target"},
				Message: fmt.Sprintf("the user of device %s already holds a user license for %s; a device license is not assigned over it", h.device.SerialNumber, nameOf(app))}
		}
	}
	p := &assignPlan{h: h, app: app, all: len(cands)}
	for i, c := range cands {
		if err := s.checkPool(ctx, q, c, app, h, []string{"input", "target"}); err != nil {
			if _, ok := model.AsError(err); !ok {
				return nil, err
			}
			if p.refusal == nil {
				p.refusal = err
			}
			continue
		}
		p.cands = append(p.cands, c)
		p.rank = append(p.rank, i)
	}
	if len(p.cands) == 0 {
		return nil, p.refusal
	}
	return p, nil
}

// commitAssign reserves a license from the first eligible pool that has one left and writes
// the assignment, inside the caller's transaction.
func (s *Service) commitAssign(ctx context.Context, tx *db.DB, actor Actor, in AssignInput, p *assignPlan) (*AssignResult, error) {
	var exhausted *candidate
	for k, c := range p.cands {
		ok, err := tx.ReserveLicense(ctx, c.pool.ID)
		if err != nil {
			return nil, err
		}
		if !ok {
			if exhausted == nil {
				exhausted = &p.cands[k]
			}
			continue
		}
		a, err := s.writeAssignment(ctx, tx, actor, c, p.app, p.h, in.Reason, in.Origin)
		if err != nil {
			return nil, err
		}
		res := &AssignResult{AssignmentID: a.ID, AccountID: c.account.ID, Assignment: a, Account: c.account}
		if c.account.HeldAt(s.now()) {
			t := *c.account.ThrottledUntil
			res.HeldUntil = &t
		}
		if in.PoolID == 0 && in.AccountID == 0 {
			res.Note = fmt.Sprintf("licensed from account %q (%s)", c.account.Name, choiceReason(c, p.h, p.rank[k], p.all))
		}
		return res, nil
	}
	return nil, noLicenses(exhausted, p.app)
}

// assignTx is the whole of an assignment inside the caller's transaction (for rules that
// assign as part of a larger change, such as a conversion).
func (s *Service) assignTx(ctx context.Context, tx *db.DB, actor Actor, in AssignInput) (*AssignResult, error) {
	p, err := s.planAssign(ctx, tx, in)
	if err != nil {
		return nil, err
	}
	return s.commitAssign(ctx, tx, actor, in, p)
}

func choiceReason(c candidate, h holder, i, n int) string {
	switch {
	case n == 1:
		return "the only account that bought the app"
	case h.device != nil && c.account.CountryCode == h.device.CountryCode:
		return "in the device's country, with licenses left"
	case i == 0:
		return "the most licenses left"
	}
	return "the first account, in Orchard's order of preference, whose rules allow it and that had a license left"
}

// noLicenses is R5's error: a free app's message says that more cost nothing.
func noLicenses(c *candidate, app *model.App) error {
	msg := fmt.Sprintf("no %s license left in account %q (%d owned, %d assigned, %d on their way)", nameOf(app), c.account.Name,
		c.pool.TotalCount, c.pool.AssignedCount, c.pool.ReservedCount)
	if app.IsFree {
		msg += fmt.Sprintf(". %s is free: more licenses cost nothing — add them in Apple Business Manager (Apps and Books), and Orchard sees them at the next sync", nameOf(app))
	} else {
		msg += "; buy more in Apple Business Manager, or reclaim unused ones"
	}
	return &model.Error{Code: model.CodeNoLicensesAvailable, Field: []string{"input"}, Message: msg}
}

// writeAssignment inserts the PENDING assignment, its outbox row (and the user's registration
// at Apple when it needs one) and the audit event. The license is already reserved.
func (s *Service) writeAssignment(ctx context.Context, tx *db.DB, actor Actor, c candidate, app *model.App, h holder, reason string, origin model.AssignmentOrigin) (*model.LicenseAssignment, error) {
	now := s.now()
	if origin == "" {
		origin = model.OriginAdmin
	}
	if reason == "" {
		reason = "assigned by " + actor.String()
	}
	key := h.key()
	a := &model.LicenseAssignment{PoolID: c.pool.ID, AccountID: c.account.ID, AppID: app.ID, Kind: h.kind, HolderKey: &key,
		Status: model.AssignmentPending, Origin: origin, Reason: truncate(reason, 1000), CausedBy: actor.String(), CreatedAt: now, UpdatedAt: now}
	item := &model.OutboxItem{AccountID: c.account.ID, Action: model.OutboxAssociate, AdamID: c.pool.AdamID, PricingParam: c.pool.PricingParam,
		Status: model.OutboxQueued, NotBefore: now, CreatedAt: now}
	if h.kind == model.LicenseKindDevice {
		a.SerialNumber, a.DeviceID = &h.device.SerialNumber, &h.device.ID
		item.SerialNumber = &h.device.SerialNumber
	} else {
		a.ClientUserID, a.UserID = &h.user.ClientUserID, &h.user.ID
		item.ClientUserID = &h.user.ClientUserID
		if h.device != nil {
			a.DeviceID = &h.device.ID
		}
		if err := s.ensureRegistered(ctx, tx, c.account.ID, h.user); err != nil {
			return nil, err
		}
	}
	if err := tx.InsertAssignment(ctx, a); err != nil {
		if errors.Is(err, db.ErrHolderHasLicense) {
			return nil, &model.Error{Code: model.CodeAlreadyAssigned, Field: []string{"input", "target"},
				Message: fmt.Sprintf("%s already has (or is getting) a license from this pool", holderName(h))}
		}
		return nil, err
	}
	item.AssignmentID = &a.ID
	if err := tx.InsertOutbox(ctx, item); err != nil {
		return nil, err
	}
	if err := s.auditTx(ctx, tx, actor, "license.assign", "LicenseAssignment", a.ID, &c.account.ID,
		fmt.Sprintf("%s license for %s to %s from account %q: %s", strings.ToLower(string(h.kind)), nameOf(app), holderName(h), c.account.Name, a.Reason),
		map[string]any{"origin": origin, "poolId": c.pool.ID}); err != nil {
		return nil, err
	}
	return a, nil
}

// ensureRegistered makes sure a user is registered at Apple in an account before a user license
// is sent: a missing (or retired, or failed) registration is queued for users/create with the
// user's stable clientUserId. The dispatcher sends the license once the registration is done.
func (s *Service) ensureRegistered(ctx context.Context, tx *db.DB, accountID int64, u *model.User) error {
	au, err := tx.AppleUserOf(ctx, accountID, u.ClientUserID)
	switch {
	case errors.Is(err, model.ErrNotFound):
		uid := u.ID
		au, created, err := tx.InsertAppleUser(ctx, &model.AppleUser{AccountID: accountID, UserID: &uid, ClientUserID: u.ClientUserID,
			Email: u.Email, Status: model.AppleUserRegistering, CreatedAt: s.now(), UpdatedAt: s.now()})
		if err != nil || !created {
			return err
		}
		return s.queueRegistration(ctx, tx, au, u)
	case err != nil:
		return err
	}
	switch au.Status {
	case model.AppleUserRetired, model.AppleUserFailed:
		if err := tx.UpdateAppleUser(ctx, au.ID, map[string]any{"status": model.AppleUserRegistering, "error_message": nil}); err != nil {
			return err
		}
		return s.queueRegistration(ctx, tx, au, u)
	case model.AppleUserRetiring:
		return &model.Error{Code: model.CodeConflict, Field: []string{"input", "target"},
			Message: fmt.Sprintf("user %s is being retired at Apple in this account; try again when that is done", u.ExternalID)}
	}
	if au.UserID == nil {
		return tx.UpdateAppleUser(ctx, au.ID, map[string]any{"user_id": u.ID})
	}
	return nil
}

func (s *Service) queueRegistration(ctx context.Context, tx *db.DB, au *model.AppleUser, u *model.User) error {
	now := s.now()
	id, cuid := au.ID, u.ClientUserID
	return tx.InsertOutbox(ctx, &model.OutboxItem{AccountID: au.AccountID, Action: model.OutboxCreateUser, AppleUserID: &id,
		ClientUserID: &cuid, Status: model.OutboxQueued, NotBefore: now, CreatedAt: now})
}

func serialOf(h holder) string {
	if h.device != nil && h.kind == model.LicenseKindDevice {
		return h.device.SerialNumber
	}
	return ""
}

func clientIDOf(h holder) string {
	if h.user != nil && h.kind == model.LicenseKindUser {
		return h.user.ClientUserID
	}
	return ""
}

func holderName(h holder) string {
	if h.kind == model.LicenseKindDevice {
		return "device " + h.device.SerialNumber
	}
	return "user " + h.user.ExternalID
}

// truncate cuts s to at most n characters for a column: see model.Truncate.
func truncate(s string, n int) string { return model.Truncate(s, n) }

package license

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"orchard/apple"
	"orchard/db"
	"orchard/model"
)

// Accounts (R1, R12). Adding an account is the one mutation that asks Apple inline: the token
// is checked locally, then with Apple's client config, the location is refused if another live
// account has it, and the account is claimed for this installation (mdmInfo), subscribing to
// notifications when ORCHARD_PUBLIC_URL is set. Everything else about an account — its sync,
// its health, its holds — is the scheduler's, which a mutation only asks for work.

// AddAccountInput is what an admin gives to add an account.
type AddAccountInput struct {
	Name string
	// Token is the content token file's content (base64 JSON), as downloaded.
	Token string
	// TakeOver claims the account even when another manager holds it; without it such an
	// account is refused with ACCOUNT_CLAIMED_ELSEWHERE naming that manager.
	TakeOver bool
}

// NotificationTypes are the notifications Orchard subscribes to.
var NotificationTypes = []string{"ASSET_MANAGEMENT", "ASSET_COUNT", "USER_MANAGEMENT", "USER_ASSOCIATED"}

// AddAccount validates, claims and stores a new account, and queues its first (full) sync.
func (s *Service) AddAccount(ctx context.Context, actor Actor, in AddAccountInput) (*model.Account, *model.SyncRun, error) {
	if err := s.needApple(); err != nil {
		return nil, nil, err
	}
	name := strings.TrimSpace(in.Name)
	if name == "" || utf8.RuneCountInString(name) > 200 {
		return nil, nil, model.FieldError([]string{"input", "name"}, "name must be 1 to 200 characters")
	}
	tok, err := s.parseToken(in.Token)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := s.apple.ClientConfig(ctx, tok)
	var claimed *apple.ClaimedError
	switch {
	case errors.As(err, &claimed):
		if !in.TakeOver {
			return nil, nil, &model.Error{Code: model.CodeAccountClaimedElsewhere, Field: []string{"input", "takeOver"},
				Message: fmt.Sprintf("another device-management server, %q (id %s), manages this Apple location; Apple allows one manager per location. To move it to Orchard, add it again with takeOver: true (the other server will stop working with it)", claimed.Manager.Name, claimed.Manager.ID)}
		}
	case err != nil:
		return nil, nil, s.appleError(err, "input", "token")
	}
	uid := cfg.UID
	if uid == "" {
		uid = "token:" + tok.Fingerprint()
	}
	if existing, err := s.db.LiveAccountByLocation(ctx, uid); err == nil {
		return nil, nil, &model.Error{Code: model.CodeDuplicateAccount, Field: []string{"input", "token"},
			Message: fmt.Sprintf("account %q already manages this Apple location (%s); use renewAccountToken to give it a new token", existing.Name, cfg.LocationName)}
	} else if !errors.Is(err, model.ErrNotFound) {
		return nil, nil, err
	}

	now := s.now()
	firstPassAt := now.Add(time.Minute)
	sealedToken, err := s.sealer.Seal([]byte(strings.TrimSpace(in.Token)), PurposeToken)
	if err != nil {
		return nil, nil, err
	}
	secret := ""
	var sealedSecret []byte
	if s.publicURL != "" {
		secret = randomSecret()
		if sealedSecret, err = s.sealer.Seal([]byte(secret), PurposeNotificationSecret); err != nil {
			return nil, nil, err
		}
	}
	expires := tok.ExpiresAt
	if !cfg.TokenExpirationDate.IsZero() {
		expires = cfg.TokenExpirationDate
	}
	a := &model.Account{
		Name: name, OrgName: tok.OrgName, LocationName: cfg.LocationName, CountryCode: strings.ToUpper(cfg.CountryISO2ACode),
		DefaultPlatform: cfg.DefaultPlatform, WebsiteURL: cfg.WebsiteURL, AppleUID: uid, LocationKey: &uid,
		TokenCiphertext: sealedToken, TokenFingerprint: tok.Fingerprint(), TokenExpiresAt: expires.UTC(),
		NotificationSecretCiphertext: sealedSecret, Health: model.TokenHealthActive, HealthChangedAt: now,
		SyncStatus: model.SyncStatusNever,
		// Not due yet: the first pass is queued below, once the account is claimed (a pass
		// started by the schedule meanwhile would race the claim and then run twice). Should
		// the add stop half-way, the schedule takes the account then.
		NextSyncAt: &firstPassAt,
	}
	a.Health = a.EffectiveHealth(now)
	// The row exists before the claim so that Apple's test notification, sent while the claim
	// is being made, finds the account and its secret.
	if err := s.db.InsertAccount(ctx, a); err != nil {
		if errors.Is(err, db.ErrDuplicateLocation) {
			return nil, nil, model.Errorf(model.CodeDuplicateAccount, "an account for this Apple location was just added")
		}
		return nil, nil, err
	}
	req := apple.ClientConfigRequest{}
	if s.publicURL != "" {
		req.NotificationURL = s.publicURL + "/apple/notifications/" + fmt.Sprint(a.ID)
		req.NotificationAuthToken = secret
		req.NotificationTypes = NotificationTypes
	}
	if _, err := s.apple.SetClientConfig(ctx, tok, req); err != nil && !errors.As(err, &claimed) {
		// Nothing refers to the row yet: remove it, so the add can simply be tried again.
		if derr := s.db.DeleteAccountRow(context.WithoutCancel(ctx), a.ID); derr != nil {
			s.log.ErrorContext(ctx, "remove half-added account", "account", a.ID, "error", derr)
		}
		if errors.Is(err, apple.ErrNotificationUnreachable) {
			return nil, nil, model.Errorf(model.CodeAppleUnavailable, "Apple could not deliver a test notification to %s: make ORCHARD_PUBLIC_URL reachable from the internet over https, then add the account again", req.NotificationURL)
		}
		return nil, nil, s.appleError(err, "input", "token")
	}
	if s.publicURL != "" {
		a.NotificationsEnabled = true
		if err := s.db.UpdateAccount(ctx, a.ID, map[string]any{"notifications_enabled": true}); err != nil {
			return nil, nil, err
		}
	}
	details := map[string]any{"location": cfg.LocationName, "uId": uid, "country": a.CountryCode, "expiresAt": a.TokenExpiresAt}
	if claimed != nil {
		details["tookOverFrom"] = claimed.Manager
	}
	if err := s.audit(ctx, actor, "account.add", "Account", a.ID, &a.ID, fmt.Sprintf("account %q added for %s / %s", a.Name, a.OrgName, a.LocationName), details); err != nil {
		return nil, nil, err
	}
	run, err := s.queueSync(ctx, a.ID, model.SyncFull, model.TriggerAccountAdded)
	if err != nil {
		return nil, nil, err
	}
	return a, run, nil
}

// RenewAccountToken replaces an account's token with a new one for the same Apple location
// (tokens last a year, and die early when the password of their Apple Account changes).
func (s *Service) RenewAccountToken(ctx context.Context, actor Actor, accountID int64, file string) (*model.Account, error) {
	if err := s.needApple(); err != nil {
		return nil, err
	}
	a, err := s.liveAccount(ctx, accountID)
	if err != nil {
		return nil, err
	}
	if err := s.checkNotHeld(a); err != nil {
		return nil, err
	}
	tok, err := s.parseToken(file)
	if err != nil {
		return nil, err
	}
	cfg, err := s.apple.ClientConfig(ctx, tok)
	var claimed *apple.ClaimedError
	if err != nil && !errors.As(err, &claimed) {
		return nil, s.holdOrError(ctx, a.ID, err, "input", "token")
	}
	if cfg.UID != "" && cfg.UID != a.AppleUID {
		return nil, model.FieldError([]string{"input", "token"}, "this token is for the Apple location %q, not for %q of this account; add it as a new account instead", cfg.LocationName, a.LocationName)
	}
	if claimed != nil {
		return nil, &model.Error{Code: model.CodeAccountClaimedElsewhere, Field: []string{"input", "token"},
			Message: fmt.Sprintf("the token is valid, but %q (id %s) manages this location now; use takeOverAccount to claim it back", claimed.Manager.Name, claimed.Manager.ID)}
	}
	if _, err := s.apple.Claim(ctx, tok); err != nil {
		return nil, s.holdOrError(ctx, a.ID, err, "input", "token")
	}
	sealed, err := s.sealer.Seal([]byte(strings.TrimSpace(file)), PurposeToken)
	if err != nil {
		return nil, err
	}
	expires := tok.ExpiresAt
	if !cfg.TokenExpirationDate.IsZero() {
		expires = cfg.TokenExpirationDate
	}
	cols := map[string]any{"token_ciphertext": sealed, "token_fingerprint": tok.Fingerprint(), "token_expires_at": expires.UTC(),
		"last_error": nil, "claimed_by_id": nil, "claimed_by_name": nil, "org_name": tok.OrgName}
	if err := s.db.UpdateAccount(ctx, a.ID, cols); err != nil {
		return nil, err
	}
	a.TokenExpiresAt = expires.UTC()
	// Apple accepted the new token: whatever was wrong with the old one (expired, revoked,
	// invalid) is over.
	if err := s.SetHealth(ctx, a.ID, UsableHealth(a, s.now()), "", nil, actor); err != nil {
		return nil, err
	}
	if err := s.audit(ctx, actor, "account.renew_token", "Account", a.ID, &a.ID, fmt.Sprintf("token of account %q renewed; it expires %s", a.Name, expires.UTC().Format(time.DateOnly)), nil); err != nil {
		return nil, err
	}
	if _, err := s.queueSync(ctx, a.ID, model.SyncFull, model.TriggerManual); err != nil {
		return nil, err
	}
	return s.db.AccountByID(ctx, a.ID)
}

// SyncAccount asks for a pass of an account and answers with the (queued) sync run; a pass
// already queued is reused (and made full if a full one is asked for).
func (s *Service) SyncAccount(ctx context.Context, actor Actor, accountID int64, kind model.SyncKind) (*model.SyncRun, error) {
	a, err := s.liveAccount(ctx, accountID)
	if err != nil {
		return nil, err
	}
	run, err := s.queueSync(ctx, a.ID, kind, model.TriggerManual)
	if err != nil {
		return nil, err
	}
	if err := s.audit(ctx, actor, "account.sync", "Account", a.ID, &a.ID, fmt.Sprintf("%s sync of account %q asked for", strings.ToLower(string(kind)), a.Name), nil); err != nil {
		return nil, err
	}
	return run, nil
}

// TakeOverPreview is what takeOverAccount shows before it claims: who holds the account now.
type TakeOverPreview struct {
	Previous *apple.MDMInfo
}

// TakeOverAccount claims an account back from another manager (R12). Without confirm it only
// reads who holds it (and changes nothing); with confirm it claims it for this installation and
// queues a full sync, after which what the other manager did is visible as drift.
func (s *Service) TakeOverAccount(ctx context.Context, actor Actor, accountID int64, confirm bool) (*model.Account, *TakeOverPreview, error) {
	if err := s.needApple(); err != nil {
		return nil, nil, err
	}
	a, err := s.liveAccount(ctx, accountID)
	if err != nil {
		return nil, nil, err
	}
	if err := s.checkNotHeld(a); err != nil {
		return nil, nil, err
	}
	tok, err := s.Token(a)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := s.apple.ClientConfig(ctx, tok)
	var claimed *apple.ClaimedError
	if err != nil && !errors.As(err, &claimed) {
		return nil, nil, s.holdOrError(ctx, a.ID, err, "input", "accountId")
	}
	preview := &TakeOverPreview{}
	if cfg != nil && cfg.MDMInfo != nil {
		m := *cfg.MDMInfo
		preview.Previous = &m
	}
	if !confirm {
		return a, preview, nil
	}
	// Claimed back, with Apple's notifications pointed at Orchard again (the other manager
	// will have pointed them at itself).
	req := apple.ClientConfigRequest{}
	if a.NotificationsEnabled && s.publicURL != "" {
		secret, err := s.NotificationSecret(a)
		if err != nil {
			return nil, nil, err
		}
		if secret != "" {
			req.NotificationURL = s.publicURL + "/apple/notifications/" + fmt.Sprint(a.ID)
			req.NotificationAuthToken = secret
			req.NotificationTypes = NotificationTypes
		}
	}
	if _, err := s.apple.SetClientConfig(ctx, tok, req); err != nil && !errors.As(err, &claimed) {
		return nil, nil, s.holdOrError(ctx, a.ID, err, "input", "accountId")
	}
	// No longer CLAIMED_ELSEWHERE (EffectiveHealth would keep the stored state).
	if err := s.SetHealth(ctx, a.ID, UsableHealth(a, s.now()), "", nil, actor); err != nil {
		return nil, nil, err
	}
	msg := fmt.Sprintf("account %q claimed for Orchard", a.Name)
	if preview.Previous != nil {
		msg += fmt.Sprintf(" from %q (id %s)", preview.Previous.Name, preview.Previous.ID)
	}
	if err := s.audit(ctx, actor, "account.take_over", "Account", a.ID, &a.ID, msg, map[string]any{"previous": preview.Previous}); err != nil {
		return nil, nil, err
	}
	if _, err := s.queueSync(ctx, a.ID, model.SyncFull, model.TriggerManual); err != nil {
		return nil, nil, err
	}
	a, err = s.db.AccountByID(ctx, a.ID)
	return a, preview, err
}

// UsableHealth is the health of an account whose token Apple has just accepted, with Orchard's
// claim: ACTIVE, or EXPIRING_SOON / EXPIRED by its expiry date, whatever was stored before.
func UsableHealth(a *model.Account, now time.Time) model.TokenHealth {
	fresh := *a
	fresh.Health = model.TokenHealthActive
	return fresh.EffectiveHealth(now)
}

// Token opens an account's sealed token.
func (s *Service) Token(a *model.Account) (*apple.Token, error) {
	if s.sealer == nil {
		return nil, errors.New("no secret key configured")
	}
	raw, err := s.sealer.Open(a.TokenCiphertext, PurposeToken)
	if err != nil {
		return nil, fmt.Errorf("account %d: %w", a.ID, err)
	}
	tok, err := apple.ParseToken(raw, s.now())
	if err != nil && !errors.Is(err, apple.ErrTokenExpiredLocally) {
		return nil, fmt.Errorf("account %d: stored token: %w", a.ID, err)
	}
	return tok, nil
}

// NotificationSecret opens an account's notification secret ("" when it has none).
func (s *Service) NotificationSecret(a *model.Account) (string, error) {
	if len(a.NotificationSecretCiphertext) == 0 || s.sealer == nil {
		return "", nil
	}
	b, err := s.sealer.Open(a.NotificationSecretCiphertext, PurposeNotificationSecret)
	return string(b), err
}

// SetHealth records an account's token health; a change is audited and counted. claimedBy
// names the other manager for CLAIMED_ELSEWHERE. lastError "" clears it.
func (s *Service) SetHealth(ctx context.Context, accountID int64, h model.TokenHealth, lastError string, claimedBy *apple.MDMInfo, actor Actor) error {
	return s.db.Tx(ctx, func(tx *db.DB) error {
		a, err := tx.LockAccount(ctx, accountID)
		if err != nil {
			return err
		}
		cols := map[string]any{"last_error": nilIfEmpty(lastError)}
		if claimedBy != nil {
			cols["claimed_by_id"], cols["claimed_by_name"] = claimedBy.ID, claimedBy.Name
		} else if h != model.TokenHealthClaimedElsewhere {
			cols["claimed_by_id"], cols["claimed_by_name"] = nil, nil
		}
		changed := a.Health != h
		if changed {
			cols["health"], cols["health_changed_at"] = h, s.now()
		}
		if err := tx.UpdateAccount(ctx, accountID, cols); err != nil {
			return err
		}
		if !changed {
			return nil
		}
		healthChanges.WithLabelValues(string(h)).Inc()
		msg := fmt.Sprintf("token health of account %q changed from %s to %s", a.Name, a.Health, h)
		if claimedBy != nil {
			msg += fmt.Sprintf(" (claimed by %q, id %s)", claimedBy.Name, claimedBy.ID)
		}
		if lastError != "" {
			msg += ": " + lastError
		}
		return s.auditTx(ctx, tx, actor, "account.health_changed", "Account", a.ID, &a.ID, msg,
			map[string]any{"from": a.Health, "to": h, "claimedBy": claimedBy})
	})
}

// queueSync queues a pass (or reuses a queued one) and wakes the scheduler.
func (s *Service) queueSync(ctx context.Context, accountID int64, kind model.SyncKind, trigger model.SyncTrigger) (*model.SyncRun, error) {
	var run *model.SyncRun
	err := s.db.Tx(ctx, func(tx *db.DB) error {
		if _, err := tx.LockAccount(ctx, accountID); err != nil {
			return err
		}
		q, err := tx.QueuedSyncRun(ctx, accountID)
		switch {
		case err == nil:
			if kind != model.SyncFull || q.Kind == model.SyncFull {
				run = q
				return nil
			}
			// Made full only while it is still queued: the scheduler may be starting it
			// (it does not lock the account), and a started pass keeps its kind.
			ok, err := tx.MakeQueuedRunFull(ctx, q.ID)
			if err != nil {
				return err
			}
			if ok {
				q.Kind = model.SyncFull
				run = q
				return nil
			}
		case !errors.Is(err, model.ErrNotFound):
			return err
		}
		run = &model.SyncRun{AccountID: accountID, Kind: kind, Trigger: trigger, Status: model.SyncRunQueued, StartedAt: s.now()}
		return tx.InsertSyncRun(ctx, run)
	})
	if err != nil {
		return nil, err
	}
	s.kick(accountID)
	return run, nil
}

// QueueSync asks the scheduler for a pass (for notifications that leave doubt).
func (s *Service) QueueSync(ctx context.Context, accountID int64, kind model.SyncKind, trigger model.SyncTrigger) (*model.SyncRun, error) {
	return s.queueSync(ctx, accountID, kind, trigger)
}

func (s *Service) liveAccount(ctx context.Context, id int64) (*model.Account, error) {
	a, err := s.db.AccountByID(ctx, id)
	if errors.Is(err, model.ErrNotFound) || (err == nil && a.RemovedAt != nil) {
		return nil, &model.Error{Code: model.CodeNotFound, Field: []string{"input", "accountId"}, Message: "no such account (or it was removed)"}
	}
	return a, err
}

// checkNotHeld refuses to ask Apple anything for an account under Retry-After (R3).
func (s *Service) checkNotHeld(a *model.Account) error {
	if a.HeldAt(s.now()) {
		return model.Errorf(model.CodeAccountThrottled, "Apple asked Orchard to leave this account alone until %s; try again then", a.ThrottledUntil.UTC().Format(time.RFC3339))
	}
	return nil
}

// holdOrError records a throttle answer as a hold of the account and maps Apple's error.
func (s *Service) holdOrError(ctx context.Context, accountID int64, err error, field ...string) error {
	if until, ok := apple.ThrottledUntil(err); ok {
		if herr := s.db.HoldAccount(ctx, accountID, until, "Apple answered: "+err.Error()); herr != nil {
			return herr
		}
	}
	return s.appleError(err, field...)
}

func (s *Service) parseToken(file string) (*apple.Token, error) {
	tok, err := apple.ParseToken([]byte(file), s.now())
	switch {
	case errors.Is(err, apple.ErrTokenExpiredLocally):
		return nil, &model.Error{Code: model.CodeTokenExpired, Field: []string{"input", "token"},
			Message: fmt.Sprintf("the token of %q expired on %s; download a new one in Apple Business Manager (Settings → Payments & Billing → Apps and Books)", tok.OrgName, tok.ExpiresAt.Format(time.DateOnly))}
	case err != nil:
		return nil, &model.Error{Code: model.CodeInvalidToken, Field: []string{"input", "token"},
			Message: "this is not a content token file (" + strings.TrimPrefix(err.Error(), "apple: ") + "); upload the .vpptoken file from Apple Business Manager as it is"}
	}
	return tok, nil
}

// appleError maps an error from Apple onto a client-safe error.
func (s *Service) appleError(err error, field ...string) error {
	var claimed *apple.ClaimedError
	switch {
	case errors.As(err, &claimed):
		return &model.Error{Code: model.CodeAccountClaimedElsewhere, Field: field, Err: err,
			Message: fmt.Sprintf("%q (id %s) manages this Apple location", claimed.Manager.Name, claimed.Manager.ID)}
	case errors.Is(err, apple.ErrTokenExpired):
		return &model.Error{Code: model.CodeTokenExpired, Field: field, Err: err, Message: "Apple says the token has expired; download a new one"}
	case errors.Is(err, apple.ErrTokenRevoked):
		return &model.Error{Code: model.CodeInvalidToken, Field: field, Err: err, Message: "Apple has revoked the token (for instance after a password change); download a new one"}
	case errors.Is(err, apple.ErrTokenInvalid):
		return &model.Error{Code: model.CodeInvalidToken, Field: field, Err: err, Message: "Apple does not accept this token"}
	case errors.Is(err, apple.ErrThrottled):
		msg := "Apple asked to wait before more requests for this account"
		if until, ok := apple.ThrottledUntil(err); ok {
			msg += "; try again after " + until.UTC().Format(time.RFC3339)
		}
		return &model.Error{Code: model.CodeAccountThrottled, Field: field, Err: err, Message: msg}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	s.log.Warn("apple request failed", "error", err)
	return &model.Error{Code: model.CodeAppleUnavailable, Field: field, Err: err, Message: "Apple could not be reached or refused the request; try again later"}
}

func (s *Service) needApple() error {
	if s.apple == nil || s.sealer == nil {
		return errors.New("license service built without an Apple client or secret key")
	}
	return nil
}

// audit records an audit event outside any transaction.
func (s *Service) audit(ctx context.Context, actor Actor, action, subjectType string, subjectID int64, accountID *int64, msg string, details any) error {
	return s.auditTx(ctx, s.db, actor, action, subjectType, subjectID, accountID, msg, details)
}

func (s *Service) auditTx(ctx context.Context, tx *db.DB, actor Actor, action, subjectType string, subjectID int64, accountID *int64, msg string, details any) error {
	e, err := auditEvent(actor, action, subjectType, subjectID, accountID, msg, details)
	if err != nil {
		return err
	}
	return tx.InsertAudit(ctx, e)
}

// auditEvent builds the audit event auditTx writes, for a caller that writes several at once.
func auditEvent(actor Actor, action, subjectType string, subjectID int64, accountID *int64, msg string, details any) (*model.AuditEvent, error) {
	d := "{}"
	if details != nil {
		b, err := json.Marshal(details)
		if err != nil {
			return nil, err
		}
		d = string(b)
	}
	id := subjectID
	return actor.audit(&model.AuditEvent{Action: action, SubjectType: subjectType, SubjectID: &id, AccountID: accountID, Message: msg, Details: d}), nil
}

func randomSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// RemoveAccount removes an account. Without reclaim it is removed at once: the scheduler stops
// working on it, its queued work for Apple is cancelled (reservations released), and its
// record and history stay readable. With reclaim every license Orchard holds in it is taken
// back first; the account is removed when the last reclaim is done.
func (s *Service) RemoveAccount(ctx context.Context, actor Actor, accountID int64, reclaim bool) (*model.Account, int, error) {
	a, err := s.liveAccount(ctx, accountID)
	if err != nil {
		return nil, 0, err
	}
	if reclaim {
		n, err := s.reclaimAccountForRemoval(ctx, actor, a)
		if err != nil {
			return nil, 0, err
		}
		a, err = s.db.AccountByID(ctx, a.ID)
		return a, n, err
	}
	err = s.db.Tx(ctx, func(tx *db.DB) error {
		return s.removeAccountTx(ctx, tx, actor, a.ID, "removed by an admin")
	})
	if err != nil {
		return nil, 0, err
	}
	a, err = s.db.AccountByID(ctx, a.ID)
	return a, 0, err
}

// removeAccountTx marks an account removed and cancels its pending work.
func (s *Service) removeAccountTx(ctx context.Context, tx *db.DB, actor Actor, accountID int64, why string) error {
	a, err := tx.LockAccount(ctx, accountID)
	if err != nil {
		return err
	}
	if a.RemovedAt != nil {
		return nil
	}
	now := s.now()
	if err := tx.UpdateAccount(ctx, a.ID, map[string]any{"removed_at": now, "location_key": nil, "next_sync_at": nil, "removal_requested_at": nil}); err != nil {
		return err
	}
	cancelled, err := tx.CancelAccountWork(ctx, a.ID, "the account was removed")
	if err != nil {
		return err
	}
	return s.auditTx(ctx, tx, actor, "account.remove", "Account", a.ID, &a.ID,
		fmt.Sprintf("account %q removed (%s); %d queued requests to Apple cancelled", a.Name, why, cancelled), nil)
}

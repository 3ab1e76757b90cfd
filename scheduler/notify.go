package scheduler

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"orchard/apple"
	"orchard/db"
	"orchard/model"
)

// NotificationHandler serves POST /apple/notifications/{accountID}: Apple's pushes for an
// account, verified with the account's shared secret (compared in constant time), applied
// once each (Apple delivers duplicates), and answered 2xx so Apple stops retrying. Where a
// notification leaves doubt, an incremental pass is queued.
//
// An unknown (or removed) account and a known one with a wrong secret get the same answer —
// status, body and the work done before it (the secret check runs either way) — so that the
// endpoint does not tell which account ids exist. A notification must name the account's
// location (its uId): one for another location is refused, whoever holds the secret.
func (s *Scheduler) NotificationHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		refuse := func() {
			notifications.WithLabelValues("rejected").Inc()
			http.Error(w, "unknown account or bad credentials", http.StatusUnauthorized)
		}
		id, err := strconv.ParseInt(r.PathValue("accountID"), 10, 64)
		if err != nil || id <= 0 {
			apple.VerifyNotificationAuth(r.Header.Get("Authorization"), "no account") // the same work as a known one
			refuse()
			return
		}
		a, err := s.db.AccountByID(ctx, id)
		if errors.Is(err, model.ErrNotFound) || (err == nil && a.RemovedAt != nil) {
			apple.VerifyNotificationAuth(r.Header.Get("Authorization"), "no account")
			refuse()
			return
		}
		if err != nil {
			s.log.ErrorContext(ctx, "notification: read the account", "account", id, "error", err)
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		secret, err := s.svc.NotificationSecret(a)
		if err != nil || secret == "" || !apple.VerifyNotificationAuth(r.Header.Get("Authorization"), secret) {
			refuse()
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4<<20))
		if err != nil {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		n, err := apple.ParseNotification(body)
		if err != nil {
			notifications.WithLabelValues("malformed").Inc()
			http.Error(w, "malformed notification", http.StatusBadRequest)
			return
		}
		if a.AppleUID != "" && n.UID != a.AppleUID {
			notifications.WithLabelValues("foreign").Inc()
			s.log.WarnContext(ctx, "notification for another location refused", "account", a.ID, "uId", model.Truncate(n.UID, 64))
			http.Error(w, "notification for another location", http.StatusBadRequest)
			return
		}
		if err := s.applyNotification(ctx, a, n); errors.Is(err, db.ErrNotificationInProgress) {
			// Another delivery of it is being applied right now; Apple's retry will find it done.
			http.Error(w, "being applied; retry later", http.StatusServiceUnavailable)
			return
		} else if err != nil {
			s.log.ErrorContext(ctx, "apply notification", "account", a.ID, "type", n.NotificationType, "error", err)
			http.Error(w, "try again", http.StatusServiceUnavailable) // Apple retries
			return
		}
		w.WriteHeader(http.StatusOK)
	})
}

// applyNotification applies one notification, once.
func (s *Scheduler) applyNotification(ctx context.Context, a *model.Account, n *apple.Notification) error {
	if n.NotificationID != "" {
		fresh, err := s.db.ClaimNotification(ctx, n.NotificationID, a.ID, n.NotificationType)
		if err != nil {
			return err // in progress elsewhere: Apple's retry finds it applied
		}
		if !fresh {
			notifications.WithLabelValues("duplicate").Inc()
			return nil
		}
	}
	notifications.WithLabelValues(n.NotificationType).Inc()
	err := s.applyPayload(ctx, a, n)
	if n.NotificationID == "" {
		return err
	}
	if err != nil {
		// Let Apple's retry apply it.
		_ = s.db.ForgetNotification(context.WithoutCancel(ctx), n.NotificationID)
		return err
	}
	return s.db.MarkNotificationApplied(context.WithoutCancel(ctx), n.NotificationID)
}

func (s *Scheduler) applyPayload(ctx context.Context, a *model.Account, n *apple.Notification) error {
	switch {
	case n.Test:
		return nil
	case n.AssetCount != nil:
		c := n.AssetCount
		if !c.Plausible() {
			// Not written: a change of nothing, or of more licenses than anyone buys at once,
			// is not taken as it is (it could make the pool's counts wrong or unreadable); a
			// full pass reads Apple's counts instead.
			notifications.WithLabelValues("implausible").Inc()
			s.log.WarnContext(ctx, "implausible ASSET_COUNT notification: a full pass reads the counts instead",
				"account", a.ID, "adamId", model.Truncate(c.AdamID, 32), "countDelta", c.CountDelta, "notification", model.Truncate(n.NotificationID, 64))
			_, err := s.svc.QueueSync(ctx, a.ID, model.SyncFull, model.TriggerNotification)
			return err
		}
		applied, err := s.db.AdjustPoolTotal(ctx, a.ID, c.AdamID, pricing(c.PricingParam), int64(c.CountDelta))
		if err != nil {
			return err
		}
		if !applied {
			// A new asset, or a pass under way that may have listed the change already: a
			// pass lists the counts.
			return s.queue(ctx, a.ID)
		}
		return nil
	case n.AssetManagement != nil:
		return s.applyAssetManagement(ctx, a, n.AssetManagement)
	case n.UserManagement != nil:
		return s.applyUsers(ctx, a, n.UserManagement.EventID, n.UserManagement.Result, n.UserManagement.Users, n.UserManagement.Error)
	case n.UserAssociated != nil:
		return s.applyUsers(ctx, a, "", apple.ResultSuccess, n.UserAssociated.AssociatedUsers, nil)
	}
	// Types Orchard does not use (subscriptions, UNLIMITED_ASSET): a pass will show their effect.
	return s.queue(ctx, a.ID)
}

// applyAssetManagement applies an associate, disassociate or revoke that completed at Apple,
// whether Orchard asked for it (its event completes) or not (drift, applied at once).
func (s *Scheduler) applyAssetManagement(ctx context.Context, a *model.Account, m *apple.AssetManagementNotification) error {
	if m.EventID != "" {
		done, err := s.completeFromNotification(ctx, a, m)
		if err != nil || done {
			return err
		}
	}
	if m.Result != apple.ResultSuccess {
		return nil // a failure of something Orchard did not ask for changes nothing here
	}
	rows := make([]db.AppleAssignmentRow, 0, len(m.Assignments))
	var adamIDs []string
	for _, x := range m.Assignments {
		rows = append(rows, db.AppleAssignmentRow{AdamID: x.AdamID, PricingParam: pricing(x.PricingParam), SerialNumber: x.SerialNumber, ClientUserID: x.ClientUserID})
		adamIDs = append(adamIDs, x.AdamID)
	}
	pools, err := s.db.PoolRefs(ctx, a.ID, adamIDs)
	if err != nil {
		return err
	}
	switch m.Type {
	case apple.EventTypeAssociate:
		_, skipped, doubt, err := s.db.FoundAtApple(ctx, a.ID, rows, pools)
		if err != nil {
			return err
		}
		if skipped > 0 || doubt {
			// An asset Orchard does not know yet, or Apple's counts left to a pass.
			return s.queue(ctx, a.ID)
		}
		return nil
	case apple.EventTypeDisassociate, apple.EventTypeRevoke:
		_, doubt, err := s.db.GoneAtApple(ctx, a.ID, rows, pools)
		if err == nil && doubt {
			err = s.queue(ctx, a.ID)
		}
		return err
	}
	return s.queue(ctx, a.ID)
}

// applyUsers applies user registrations, updates, retirements and invitation acceptances.
func (s *Scheduler) applyUsers(ctx context.Context, a *model.Account, eventID, result string, users []apple.User, failure *apple.Error) error {
	if eventID != "" {
		stop, err := s.completeUsersFromNotification(ctx, a, eventID, result, users, failure)
		if err != nil || stop {
			return err
		}
	}
	if result != apple.ResultSuccess {
		return nil
	}
	rows := make([]db.AppleUserRow, 0, len(users))
	for _, u := range users {
		rows = append(rows, db.AppleUserRow{ClientUserID: u.ClientUserID, Email: u.Email, Status: u.Status, InviteCode: u.InviteCode, IDHash: u.IDHash})
	}
	_, err := s.db.UpsertAppleUsers(ctx, a.ID, 0, rows)
	return err
}

// queue asks for an incremental pass of the account.
func (s *Scheduler) queue(ctx context.Context, accountID int64) error {
	_, err := s.svc.QueueSync(ctx, accountID, model.SyncIncremental, model.TriggerNotification)
	return err
}

// pruneNotifications forgets old notification ids, once in a while.
func (s *Scheduler) pruneNotifications(ctx context.Context) {
	if err := s.db.PruneNotifications(ctx, time.Now().Add(-48*time.Hour)); err != nil {
		s.log.Warn("prune notification ids", "error", err)
	}
}

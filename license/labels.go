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

// License labels and app labels (doc/design.md §2.4, R4a, R10). Every change to a label is written
// with a durable evaluation row for its app in one transaction; the evaluation (scheduler)
// then assigns and reclaims. A preview runs the very same change and evaluation in a
// transaction that is rolled back, so that what it answers is what the change then does
// (unless something else changes in between).

// maxGrace bounds a label's grace time.
const maxGrace = 30 * 24 * time.Hour

// LicenseLabelInput creates a license label, or (with ID) changes one: on update, nil fields
// are left as they are.
type LicenseLabelInput struct {
	ID   int64
	Name *string
	// AppID names the app (create only).
	AppID int64
	Kind  *model.LicenseKind
	// GroupIDs are the groups the label applies to.
	GroupIDs *[]int64
	// AccountIDs are the accounts to take licenses from, in priority order; empty: any.
	AccountIDs *[]int64
	// Cap bounds the licenses handed out through the label; ClearCap removes the bound.
	Cap      *int64
	ClearCap bool
	// GraceSeconds is the time an out-of-scope holder keeps its license.
	GraceSeconds *int64
}

// CreateLicenseLabel creates a license label and queues its evaluation.
func (s *Service) CreateLicenseLabel(ctx context.Context, actor Actor, in LicenseLabelInput) (*model.Label, error) {
	in.ID = 0
	var l *model.Label
	err := s.db.Tx(ctx, func(tx *db.DB) error {
		var err error
		l, err = s.applyLicenseLabel(ctx, tx, actor, in)
		return err
	})
	if err == nil {
		s.kick(0) // the scheduler looks at the policy queue at once
	}
	return l, err
}

// UpdateLicenseLabel changes a license label and queues its evaluation.
func (s *Service) UpdateLicenseLabel(ctx context.Context, actor Actor, in LicenseLabelInput) (*model.Label, error) {
	if in.ID == 0 {
		return nil, model.FieldError([]string{"input", "id"}, "give the label's id")
	}
	var l *model.Label
	err := s.db.Tx(ctx, func(tx *db.DB) error {
		var err error
		l, err = s.applyLicenseLabel(ctx, tx, actor, in)
		return err
	})
	if err == nil {
		s.kick(0) // the scheduler looks at the policy queue at once
	}
	return l, err
}

// DeleteLicenseLabel deletes a license label: its licenses go to other labels of the app that
// cover their holders, or back (at the evaluation that follows).
func (s *Service) DeleteLicenseLabel(ctx context.Context, actor Actor, id int64) (*model.Label, error) {
	var l *model.Label
	err := s.db.Tx(ctx, func(tx *db.DB) error {
		var err error
		l, err = s.deleteLicenseLabel(ctx, tx, actor, id)
		return err
	})
	if err == nil {
		s.kick(0)
	}
	return l, err
}

func (s *Service) deleteLicenseLabel(ctx context.Context, tx *db.DB, actor Actor, id int64) (*model.Label, error) {
	l, err := s.liveLicenseLabel(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	now := s.now()
	l.DeletedAt, l.UpdatedAt = &now, now
	if err := tx.SaveLabel(ctx, l); err != nil {
		return nil, err
	}
	if err := s.enqueueApps(ctx, tx, []int64{l.AppID}, fmt.Sprintf("label %q deleted", l.Name)); err != nil {
		return nil, err
	}
	return l, s.auditTx(ctx, tx, actor, "label.delete", "LicenseLabel", l.ID, nil, fmt.Sprintf("license label %q deleted", l.Name), nil)
}

func (s *Service) liveLicenseLabel(ctx context.Context, tx *db.DB, id int64) (*model.Label, error) {
	l, err := tx.LabelByID(ctx, id)
	if errors.Is(err, model.ErrNotFound) || (err == nil && (l.Kind != model.LabelLicense || l.DeletedAt != nil)) {
		return nil, &model.Error{Code: model.CodeNotFound, Field: []string{"input", "id"}, Message: "no such license label"}
	}
	return l, err
}

// applyLicenseLabel validates and writes a label create or update inside tx, and queues the
// evaluation of its app.
func (s *Service) applyLicenseLabel(ctx context.Context, tx *db.DB, actor Actor, in LicenseLabelInput) (*model.Label, error) {
	var l *model.Label
	now := s.now()
	if in.ID == 0 {
		if in.Name == nil || in.Kind == nil || in.AppID == 0 || in.GroupIDs == nil {
			return nil, model.FieldError([]string{"input"}, "a new license label needs a name, an app, a kind and its groups")
		}
		l = &model.Label{Kind: model.LabelLicense, AppID: in.AppID, CreatedAt: now}
	} else {
		var err error
		if l, err = s.liveLicenseLabel(ctx, tx, in.ID); err != nil {
			return nil, err
		}
		if in.AppID != 0 && in.AppID != l.AppID {
			return nil, model.FieldError([]string{"input", "appId"}, "a label's app cannot change; create another label")
		}
		if in.Kind != nil && (l.LicenseKind == nil || *in.Kind != *l.LicenseKind) {
			return nil, model.FieldError([]string{"input", "kind"}, "a label's license kind cannot change; create another label")
		}
	}
	if in.Name != nil {
		name := strings.TrimSpace(*in.Name)
		if name == "" || len(name) > 255 {
			return nil, model.FieldError([]string{"input", "name"}, "name must be 1 to 255 characters")
		}
		l.Name = name
	}
	app, err := tx.AppByID(ctx, l.AppID)
	if errors.Is(err, model.ErrNotFound) {
		return nil, &model.Error{Code: model.CodeNotFound, Field: []string{"input", "appId"}, Message: "no such app"}
	}
	if err != nil {
		return nil, err
	}
	pools, err := tx.PoolsOfApp(ctx, app.ID)
	if err != nil {
		return nil, err
	}
	if in.Kind != nil {
		if *in.Kind != model.LicenseKindDevice && *in.Kind != model.LicenseKindUser {
			return nil, model.FieldError([]string{"input", "kind"}, "kind must be USER or DEVICE")
		}
		if *in.Kind == model.LicenseKindDevice {
			ok := false
			for _, p := range pools {
				ok = ok || (p.DeviceAssignable && app.Kind != model.AppKindBook)
			}
			if !ok {
				return nil, &model.Error{Code: model.CodeNotDeviceAssignable, Field: []string{"input", "kind"},
					Message: fmt.Sprintf("%s cannot be assigned to devices (Apple allows only user licenses for it); use a USER label", nameOf(app))}
			}
		}
		k := *in.Kind
		l.LicenseKind = &k
	}
	if in.Cap != nil {
		if *in.Cap < 0 {
			return nil, model.FieldError([]string{"input", "cap"}, "cap must be 0 or more")
		}
		c := *in.Cap
		l.CapCount = &c
	}
	if in.ClearCap {
		l.CapCount = nil
	}
	if in.GraceSeconds != nil {
		if *in.GraceSeconds < 0 || time.Duration(*in.GraceSeconds)*time.Second > maxGrace {
			return nil, model.FieldError([]string{"input", "graceSeconds"}, "graceSeconds must be 0 to %d (30 days)", int64(maxGrace/time.Second))
		}
		l.GraceSeconds = *in.GraceSeconds
	}
	var accounts []int64
	if in.AccountIDs != nil {
		has := map[int64]bool{}
		for _, p := range pools {
			has[p.AccountID] = true
		}
		seen := map[int64]bool{}
		for i, id := range *in.AccountIDs {
			field := []string{"input", "accountIds", strconv.Itoa(i)}
			if seen[id] {
				return nil, model.FieldError(field, "an account appears twice")
			}
			seen[id] = true
			a, err := tx.AccountByID(ctx, id)
			if errors.Is(err, model.ErrNotFound) || (err == nil && a.RemovedAt != nil) {
				return nil, &model.Error{Code: model.CodeNotFound, Field: field, Message: "no such account"}
			}
			if err != nil {
				return nil, err
			}
			if !has[id] {
				return nil, model.FieldError(field, "account %q has not bought %s", a.Name, nameOf(app))
			}
			accounts = append(accounts, id)
		}
		l.AccountID = nil
		if len(accounts) > 0 {
			first := accounts[0]
			l.AccountID = &first
		}
	}
	if in.GroupIDs != nil {
		if err := s.checkGroups(ctx, tx, *in.GroupIDs); err != nil {
			return nil, err
		}
	}
	l.UpdatedAt = now
	created := l.ID == 0
	if err := tx.SaveLabel(ctx, l); err != nil {
		return nil, err
	}
	if in.GroupIDs != nil {
		if err := tx.SetLabelGroups(ctx, l.ID, dedupe(*in.GroupIDs)); err != nil {
			return nil, err
		}
	}
	if in.AccountIDs != nil {
		if err := tx.SetLabelAccounts(ctx, l.ID, accounts); err != nil {
			return nil, err
		}
	}
	if err := s.enqueueApps(ctx, tx, []int64{l.AppID}, fmt.Sprintf("label %q changed", l.Name)); err != nil {
		return nil, err
	}
	action := "label.update"
	if created {
		action = "label.create"
	}
	return l, s.auditTx(ctx, tx, actor, action, "LicenseLabel", l.ID, nil, fmt.Sprintf("license label %q for %s", l.Name, nameOf(app)), nil)
}

func (s *Service) checkGroups(ctx context.Context, tx *db.DB, ids []int64) error {
	gs, err := tx.GroupsByID(ctx, ids)
	if err != nil {
		return err
	}
	have := map[int64]bool{}
	for _, g := range gs {
		have[g.ID] = true
	}
	for i, id := range ids {
		if !have[id] {
			return &model.Error{Code: model.CodeNotFound, Field: []string{"input", "groupIds", strconv.Itoa(i)}, Message: "no such group"}
		}
	}
	return nil
}

func dedupe(ids []int64) []int64 {
	seen := map[int64]bool{}
	var out []int64
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// AppLabelInput is one app label of setAppLabels.
type AppLabelInput struct {
	Name                  string
	GroupIDs              []int64
	InstallOnRegistration bool
	InstallOnSignIn       bool
}

// SetAppLabels replaces an app's app labels: which groups' devices get the app installed, and
// when (on registration, on sign-in, or only by an explicit sendInstallRequest).
func (s *Service) SetAppLabels(ctx context.Context, actor Actor, appID int64, in []AppLabelInput) ([]*model.Label, error) {
	var out []*model.Label
	err := s.db.Tx(ctx, func(tx *db.DB) error {
		out = nil
		app, err := tx.AppByID(ctx, appID)
		if errors.Is(err, model.ErrNotFound) {
			return &model.Error{Code: model.CodeNotFound, Field: []string{"input", "appId"}, Message: "no such app"}
		}
		if err != nil {
			return err
		}
		old, err := tx.LabelsOfApp(ctx, appID, model.LabelApp)
		if err != nil {
			return err
		}
		ids := make([]int64, len(old))
		for i, l := range old {
			ids[i] = l.ID
		}
		if err := tx.DeleteLabels(ctx, ids); err != nil {
			return err
		}
		now := s.now()
		for i, a := range in {
			field := []string{"input", "labels", strconv.Itoa(i)}
			name := strings.TrimSpace(a.Name)
			if name == "" || len(name) > 255 {
				return model.FieldError(append(field, "name"), "name must be 1 to 255 characters")
			}
			if err := s.checkGroups(ctx, tx, a.GroupIDs); err != nil {
				if e, ok := model.AsError(err); ok {
					e.Field = append(field, e.Field[1:]...)
				}
				return err
			}
			l := &model.Label{Kind: model.LabelApp, Name: name, AppID: appID, InstallOnEnroll: a.InstallOnRegistration, InstallOnSignIn: a.InstallOnSignIn,
				CreatedAt: now, UpdatedAt: now}
			if err := tx.SaveLabel(ctx, l); err != nil {
				return err
			}
			if err := tx.SetLabelGroups(ctx, l.ID, dedupe(a.GroupIDs)); err != nil {
				return err
			}
			out = append(out, l)
		}
		if err := s.enqueueApps(ctx, tx, []int64{appID}, "app labels of "+nameOf(app)+" changed"); err != nil {
			return err
		}
		return s.auditTx(ctx, tx, actor, "label.app_labels", "App", appID, nil, fmt.Sprintf("%d app labels for %s", len(out), nameOf(app)), nil)
	})
	if err == nil {
		s.kick(0)
	}
	return out, err
}

// errPreview rolls a preview's transaction back.
var errPreview = errors.New("preview: roll back")

// LabelChange is what a preview previews: a create or update (Label), or a delete (DeleteID).
type LabelChange struct {
	Label    *LicenseLabelInput
	DeleteID int64
}

// ChangeLicenseLabel carries out a label change (a create or update, or a delete) and its
// evaluation once, in one transaction: the change queues its app as every change does, the
// evaluation runs at once through the ordinary write path (savepoints of the transaction), and
// the app's queue rows it covers are deleted with it — so the background evaluation does not
// do the work again, and the answer is what was done, not a preview of it. A crash before the
// commit leaves nothing done and nothing queued; the label change is then simply not made.
func (s *Service) ChangeLicenseLabel(ctx context.Context, actor Actor, ch LabelChange) (*model.Label, *EvalResult, error) {
	var l *model.Label
	var res *EvalResult
	err := s.db.Tx(ctx, func(tx *db.DB) error {
		var err error
		if l, err = s.applyLabelChange(ctx, tx, actor, ch); err != nil {
			return err
		}
		queued, err := tx.DueItemsOfApp(ctx, l.AppID, s.now())
		if err != nil {
			return err
		}
		if res, err = s.evaluateApp(ctx, tx, l.AppID); err != nil {
			return err
		}
		s.evaluations.Add(1)
		return tx.DeletePolicyItems(ctx, queued)
	})
	if err != nil {
		return nil, nil, err
	}
	s.kick(0) // the outbox has work
	return l, res, nil
}

// applyLabelChange makes a label change — a create or update, or a delete — in tx.
func (s *Service) applyLabelChange(ctx context.Context, tx *db.DB, actor Actor, ch LabelChange) (*model.Label, error) {
	switch {
	case ch.DeleteID != 0:
		return s.deleteLicenseLabel(ctx, tx, actor, ch.DeleteID)
	case ch.Label != nil:
		return s.applyLicenseLabel(ctx, tx, actor, *ch.Label)
	default:
		return nil, model.FieldError([]string{"input"}, "give a label to create or update, or one to delete")
	}
}

// PreviewLicenseLabel answers what a label change would do — licenses to assign, licenses to
// take back, holders left waiting and why, per account — without doing it: the change and its
// evaluation run in a transaction that is then rolled back.
func (s *Service) PreviewLicenseLabel(ctx context.Context, actor Actor, ch LabelChange) (*EvalResult, error) {
	var res *EvalResult
	err := s.db.Tx(ctx, func(tx *db.DB) error {
		l, err := s.applyLabelChange(ctx, tx, actor, ch)
		if err != nil {
			return err
		}
		if res, err = s.evaluateApp(ctx, tx, l.AppID); err != nil {
			return err
		}
		return errPreview
	})
	if errors.Is(err, errPreview) {
		return res, nil
	}
	return nil, err
}

// Explanation says why a holder holds a license of an app, or not.
type Explanation struct {
	App    *model.App
	Holder PolicyHolder
	// Holds is the holder's active assignment of the app, if any.
	Holds *model.LicenseAssignment
	// Covering are the live license labels that cover the holder, with the group through
	// which each does.
	Covering []ExplainedLabel
	// LeftOut are the labels that reach the holder but leave it out, with why.
	LeftOut []*model.PolicyWaiting
	// Would is what an evaluation now would do for the holder: assign (from which account,
	// through which label) or take back.
	WouldAssign  *EvalAssigned
	WouldReclaim *EvalReclaimed
	// AppLabels are the app labels that cover the device.
	AppLabels []*model.Label
}

// ExplainedLabel is a label covering a holder through a group.
type ExplainedLabel struct {
	Label *model.Label
	Group *model.Group
}

// Explain answers, for one app and one device or user, which labels and groups cover it, which
// rule leaves it out, and what an evaluation would do now (assign from which account, or take
// back) — the evaluation runs in a transaction rolled back afterwards.
func (s *Service) Explain(ctx context.Context, actor Actor, appID int64, ref Target) (*Explanation, error) {
	var out *Explanation
	err := s.db.Tx(ctx, func(tx *db.DB) error {
		st, err := s.loadPolicy(ctx, tx, appID)
		if errors.Is(err, model.ErrNotFound) {
			return &model.Error{Code: model.CodeNotFound, Field: []string{"appId"}, Message: "no such app"}
		}
		if err != nil {
			return err
		}
		f := st.facts
		out = &Explanation{App: f.App}
		var dev *model.Device
		var user *model.User
		switch {
		case ref.DeviceID != 0 || ref.SerialNumber != "":
			if dev, err = s.deviceRef(ctx, tx, ref); err != nil {
				return err
			}
			out.Holder = PolicyHolder{Kind: model.LicenseKindDevice, Key: model.HolderKeyFor(model.LicenseKindDevice, dev.SerialNumber, ""), Device: dev}
		case ref.UserID != 0:
			user, err = tx.UserByID(ctx, ref.UserID)
		case ref.ExternalID != "":
			user, err = tx.UserByExternalID(ctx, ref.ExternalID)
		default:
			return model.FieldError([]string{"holder"}, "give a device or a user")
		}
		if errors.Is(err, model.ErrNotFound) {
			return &model.Error{Code: model.CodeNotFound, Field: []string{"holder"}, Message: "no such user"}
		}
		if err != nil {
			return err
		}
		if user != nil {
			out.Holder = PolicyHolder{Kind: model.LicenseKindUser, Key: model.HolderKeyFor(model.LicenseKindUser, "", user.ClientUserID), User: user}
		}
		// Keys under which the holder may be covered: a device's own and, for USER labels,
		// its user's.
		keys := map[string]bool{out.Holder.Key: true}
		if dev != nil && dev.UserID != nil {
			if u := f.Users[*dev.UserID]; u != nil {
				keys[model.HolderKeyFor(model.LicenseKindUser, "", u.ClientUserID)] = true
			}
		}
		var leftOut []*model.PolicyWaiting
		covered := coverageOf(f, func(labelID int64, h PolicyHolder, code model.Code, reason string) {
			if keys[h.Key] {
				leftOut = append(leftOut, &model.PolicyWaiting{LabelID: labelID, HolderKey: h.Key, AppID: appID, Kind: h.Kind, Code: code, Reason: reason})
			}
		})
		for k := range keys {
			if c := covered[k]; c != nil {
				for _, id := range c.labels {
					out.Covering = append(out.Covering, ExplainedLabel{Label: st.labels[id].Label, Group: f.Groups[c.groups[id]]})
				}
			}
		}
		for _, a := range f.Assignments {
			if a.HolderKey != nil && keys[*a.HolderKey] && out.Holds == nil {
				out.Holds = a
			}
		}
		if dev != nil {
			for _, al := range f.AppLabels {
				if intersects(f.DeviceGroups[dev.ID], al.GroupIDs) {
					out.AppLabels = append(out.AppLabels, al.Label)
				}
			}
		}
		res, err := s.evaluateApp(ctx, tx, appID)
		if err != nil {
			return err
		}
		for i := range res.Assigned {
			if keys[res.Assigned[i].HolderKey] {
				out.WouldAssign = &res.Assigned[i]
			}
		}
		for i := range res.Reclaimed {
			if keys[res.Reclaimed[i].HolderKey] {
				out.WouldReclaim = &res.Reclaimed[i]
			}
		}
		for _, w := range res.Waiting {
			// A CONFLICT is the evaluator (or an admin) serving the holder at this moment,
			// not a reason it is left out: what it holds is read afresh below.
			if keys[w.HolderKey] && w.Code != model.CodeConflict && !hasWaiting(leftOut, w) {
				leftOut = append(leftOut, w)
			}
		}
		out.LeftOut = leftOut
		return errPreview
	})
	if !errors.Is(err, errPreview) {
		return nil, err
	}
	if out.Holds == nil && out.WouldAssign == nil && out.WouldReclaim == nil && len(out.Covering) > 0 && len(out.LeftOut) == 0 {
		// The evaluation found the holder served meanwhile: the policy evaluator (or an
		// admin) assigned it between the explanation's first read and its evaluation, which
		// then answered ALREADY_ASSIGNED or CONFLICT. Say what it holds now rather than nothing.
		if err := s.explainHeldNow(ctx, appID, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// explainHeldNow fills out.Holds with the holder's active assignment of the app, read afresh.
func (s *Service) explainHeldNow(ctx context.Context, appID int64, out *Explanation) error {
	var users, serials []string
	if d := out.Holder.Device; d != nil {
		serials = append(serials, d.SerialNumber)
	}
	if u := out.Holder.User; u != nil {
		users = append(users, u.ClientUserID)
	}
	active, _, err := s.db.AssignmentsOfHolders(ctx, appID, users, serials, s.now())
	if err != nil {
		return fmt.Errorf("explain: %w", err)
	}
	if len(active) > 0 {
		out.Holds = active[0]
	}
	return nil
}

func hasWaiting(ws []*model.PolicyWaiting, w *model.PolicyWaiting) bool {
	for _, x := range ws {
		if x.LabelID == w.LabelID && x.HolderKey == w.HolderKey {
			return true
		}
	}
	return false
}

// SignInResult is what a sign-in queued.
type SignInResult struct {
	Device     *model.Device
	CommandIDs []int64
}

// RecordDeviceSignIn records that a user (or a guest, with no user) signed in on a device, and
// queues the install commands of the apps whose app label covering the device asks for an
// install on sign-in and that the device holds a license for (a DEVICE license; on a device
// that is not shared, also the signed-in user's USER license). An install on a shared iPad
// serves every user of it: an app installed (or on its way) is not queued again.
func (s *Service) RecordDeviceSignIn(ctx context.Context, actor Actor, ref Target, userID int64, userExternalID string) (*SignInResult, error) {
	res := &SignInResult{}
	err := s.db.Tx(ctx, func(tx *db.DB) error {
		res.CommandIDs = nil
		dev, err := s.deviceRef(ctx, tx, ref)
		if err != nil {
			return err
		}
		if dev.Status == model.DeviceRetired {
			return &model.Error{Code: model.CodeDeviceRetired, Field: []string{"input", "device"}, Message: fmt.Sprintf("device %s is retired", dev.SerialNumber)}
		}
		var user *model.User
		switch {
		case userID != 0:
			user, err = tx.UserByID(ctx, userID)
		case strings.TrimSpace(userExternalID) != "":
			user, err = tx.UserByExternalID(ctx, strings.TrimSpace(userExternalID))
		}
		if errors.Is(err, model.ErrNotFound) {
			return &model.Error{Code: model.CodeNotFound, Field: []string{"input", "user"}, Message: "no such user"}
		}
		if err != nil {
			return err
		}
		now := s.now()
		dev.LastSeenAt, dev.UpdatedAt = &now, now
		if err := tx.SaveDevice(ctx, dev); err != nil {
			return err
		}
		res.Device = dev
		groups, err := tx.GroupIDsOfDevice(ctx, dev.ID)
		if err != nil {
			return err
		}
		labels, err := tx.LiveLabelsOnGroups(ctx, groups)
		if err != nil {
			return err
		}
		apps := map[int64]bool{}
		for _, l := range labels {
			if l.Kind == model.LabelApp && l.InstallOnSignIn {
				apps[l.AppID] = true
			}
		}
		if len(apps) == 0 {
			return s.signInAudit(ctx, tx, actor, dev, user, 0)
		}
		held, err := tx.ActiveAssignmentsOf(ctx, db.AssignmentFilter{DeviceID: dev.ID, Kind: model.LicenseKindDevice})
		if err != nil {
			return err
		}
		if user != nil && !dev.SharedIPad {
			more, err := tx.ActiveAssignmentsOf(ctx, db.AssignmentFilter{UserID: user.ID, Kind: model.LicenseKindUser})
			if err != nil {
				return err
			}
			held = append(held, more...)
		}
		for _, a := range held {
			if !apps[a.AppID] || a.Status == model.AssignmentReclaiming {
				continue
			}
			delete(apps, a.AppID) // one command per app
			exists, err := tx.InstallCommandExists(ctx, dev.ID, a.AppID)
			if err != nil {
				return err
			}
			if exists {
				continue // one install serves every user of the device
			}
			c := &model.DeviceCommand{DeviceID: dev.ID, AppID: a.AppID, Kind: model.CommandInstall, Status: model.CommandPending,
				Reason: "install on sign-in (app label)", CreatedAt: now, WaitsForAssignment: a.Status == model.AssignmentPending}
			id := a.ID
			c.AssignmentID = &id
			if err := tx.InsertCommands(ctx, c); err != nil {
				return err
			}
			res.CommandIDs = append(res.CommandIDs, c.ID)
		}
		return s.signInAudit(ctx, tx, actor, dev, user, len(res.CommandIDs))
	})
	return res, err
}

func (s *Service) signInAudit(ctx context.Context, tx *db.DB, actor Actor, dev *model.Device, user *model.User, n int) error {
	who := "a guest"
	if user != nil {
		who = "user " + user.ExternalID
	}
	return s.auditTx(ctx, tx, actor, "device.sign_in", "Device", dev.ID, nil, fmt.Sprintf("%s signed in on %s; %d install commands queued", who, dev.SerialNumber, n), nil)
}

// Summary says in a sentence why the holder holds the license or not.
func (e *Explanation) Summary() string {
	who := e.Holder.Name()
	var parts []string
	if e.Holds != nil {
		by := strings.ToLower(string(e.Holds.Origin))
		parts = append(parts, fmt.Sprintf("%s holds a %s license of %s (%s, assignment %s by %s)", who, strings.ToLower(string(e.Holds.Kind)), nameOf(e.App), e.Holds.Status, e.Holds.NodeID(), by))
	} else {
		parts = append(parts, fmt.Sprintf("%s holds no license of %s", who, nameOf(e.App)))
	}
	if len(e.Covering) == 0 {
		parts = append(parts, "no license label covers it")
	} else {
		var ls []string
		for _, c := range e.Covering {
			g := "?"
			if c.Group != nil {
				g = c.Group.Name
				if g == "" {
					g = c.Group.ExternalID
				}
			}
			ls = append(ls, fmt.Sprintf("label %q through group %s", c.Label.Name, g))
		}
		parts = append(parts, "covered by "+strings.Join(ls, ", "))
	}
	for _, w := range e.LeftOut {
		parts = append(parts, fmt.Sprintf("left out (%s): %s", w.Code, w.Reason))
	}
	if e.WouldAssign != nil {
		parts = append(parts, fmt.Sprintf("an evaluation now assigns it through label %d from account %d", e.WouldAssign.LabelID, e.WouldAssign.AccountID))
	}
	if e.WouldReclaim != nil {
		parts = append(parts, "an evaluation now takes it back: "+e.WouldReclaim.Reason)
	}
	return strings.Join(parts, "; ") + "."
}

package license

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"orchard/db"
	"orchard/model"
)

// Bulk assignment: one app to many devices or users in one call, with a result per target.
// Targets are handled in chunks, a transaction each; within a chunk the holders, their existing
// licenses and the R9 conflicts are read with a statement per kind of fact, licenses are
// reserved per pool in one conditional update, and assignments, outbox rows and audit events
// are written in batches. The rules are those of Assign.

// MaxBulkTargets bounds the targets of one assignLicenses call.
const MaxBulkTargets = 10000

const bulkChunk = 500

// bulkGather is how long a bulk request's outbox items wait at most for the rest of the
// request to be recorded.
const bulkGather = 2 * time.Minute

// AssignManyInput asks for licenses of one app for many targets.
type AssignManyInput struct {
	AppID     int64             `json:"appId"`
	AccountID int64             `json:"accountId,omitempty"`
	Kind      model.LicenseKind `json:"kind"`
	Targets   []Target          `json:"targets"`
	Reason    string            `json:"reason,omitempty"`

	// Policy (label evaluation sets these; the API never does): the origin and label recorded
	// on each assignment, who caused it, the accounts to take licenses from in priority order
	// (empty: Orchard's own order over every account), and a reason per target.
	Origin       model.AssignmentOrigin `json:"-"`
	LabelID      int64                  `json:"-"`
	CausedBy     string                 `json:"-"`
	AccountOrder []int64                `json:"-"`
	Reasons      []string               `json:"-"`
}

// TargetResult is what became of one target.
type TargetResult struct {
	Index        int          `json:"index"`
	AssignmentID int64        `json:"assignmentId,omitempty"`
	Error        *model.Error `json:"error,omitempty"`
}

// AssignMany records assignment intents for many targets.
func (s *Service) AssignMany(ctx context.Context, actor Actor, in AssignManyInput, idempotencyKey string) ([]TargetResult, error) {
	if len(in.Targets) == 0 || len(in.Targets) > MaxBulkTargets {
		return nil, model.FieldError([]string{"input", "targets"}, "give 1 to %d targets", MaxBulkTargets)
	}
	if in.Kind != model.LicenseKindDevice && in.Kind != model.LicenseKindUser {
		return nil, model.FieldError([]string{"input", "kind"}, "kind must be USER or DEVICE")
	}
	// Chunks commit one by one (10,000 targets in one transaction would hold pool locks for
	// long); a retry under the same key therefore replays the recorded answer, and a retry
	// without a key finds the targets already assigned.
	res, _, err := idempotentOutside(ctx, s, actor, idempotencyKey, "assignLicenses", in, func(resume bool) ([]TargetResult, error) {
		out := make([]TargetResult, len(in.Targets))
		for start := 0; start < len(in.Targets); start += bulkChunk {
			end := min(start+bulkChunk, len(in.Targets))
			err := s.db.Tx(ctx, func(tx *db.DB) error {
				return s.assignChunk(ctx, tx, actor, in, start, end, out, resume)
			})
			if err != nil {
				return nil, err
			}
		}
		var ids []int64
		for _, r := range out {
			if r.AssignmentID != 0 {
				ids = append(ids, r.AssignmentID)
			}
		}
		if err := s.db.ReleaseOutbox(ctx, ids); err != nil {
			return nil, err
		}
		return out, nil
	})
	if err == nil {
		s.kick(0)
	}
	return res, err
}

// assignChunk handles targets [start, end).
// With resume (a retry of a request that stopped half-way), a target that already holds the
// license is answered with that assignment, as the first run would have.
func (s *Service) assignChunk(ctx context.Context, tx *db.DB, actor Actor, in AssignManyInput, start, end int, out []TargetResult, resume bool) error {
	fail := func(i int, e *model.Error) {
		e.Field = []string{"input", "targets", strconv.Itoa(i)}
		out[i] = TargetResult{Index: i, Error: e}
	}
	for i := start; i < end; i++ {
		out[i] = TargetResult{Index: i}
	}
	holders, err := s.resolveTargets(ctx, tx, in.Kind, in.Targets[start:end])
	if err != nil {
		return err
	}
	cands, app, err := s.candidates(ctx, tx, AssignInput{AppID: in.AppID, AccountID: in.AccountID, Kind: in.Kind}, holder{kind: in.Kind})
	if err != nil {
		return err
	}
	// Licenses the holders have already, and R9's user licenses.
	var serials, cuids []string
	var deviceUsers []int64
	for _, h := range holders {
		if h.err != nil {
			continue
		}
		if in.Kind == model.LicenseKindDevice {
			serials = append(serials, h.device.SerialNumber)
			if h.device.UserID != nil {
				deviceUsers = append(deviceUsers, *h.device.UserID)
			}
		} else {
			cuids = append(cuids, h.user.ClientUserID)
		}
	}
	held, err := tx.HoldersWithApp(ctx, app.ID, in.Kind, serials, cuids)
	if err != nil {
		return err
	}
	withUserLicense, err := tx.UsersWithOrchardUserLicense(ctx, app.ID, deviceUsers)
	if err != nil {
		return err
	}
	reserved := map[int64]int64{} // pool id -> licenses reserved and not yet used
	type pending struct {
		i int
		h holder
		c candidate
	}
	var assigned []pending
	seenHolder := map[string]bool{}
	checked := map[string]error{} // pool id + country -> checkPool's answer
	for k, r := range holders {
		i := start + k
		if r.err != nil {
			fail(i, r.err)
			continue
		}
		h := r.holder
		key := h.key()
		if id := held[key]; id != 0 && resume && !seenHolder[key] {
			out[i] = TargetResult{Index: i, AssignmentID: id}
			seenHolder[key] = true
			continue
		}
		if held[key] != 0 || seenHolder[key] {
			fail(i, &model.Error{Code: model.CodeAlreadyAssigned, Message: fmt.Sprintf("%s already has (or is getting) a license for %s", holderName(h), nameOf(app))})
			continue
		}
		if in.Kind == model.LicenseKindDevice && h.device.UserID != nil && withUserLicense[*h.device.UserID] {
			fail(i, &model.Error{Code: model.CodeUserLicenseExists, Message: fmt.Sprintf("the user of device %s already holds a user license for %s", h.device.SerialNumber, nameOf(app))})
			continue
		}
		order := orderFor(cands, h)
		if len(in.AccountOrder) > 0 {
			order = byAccountOrder(cands, in.AccountOrder)
			if len(order) == 0 {
				fail(i, &model.Error{Code: model.CodeNotFound, Message: "none of the label's accounts has bought " + nameOf(app)})
				continue
			}
		}
		var firstErr error
		var exhausted *candidate
		done := false
		for _, c := range order {
			country := ""
			if h.device != nil {
				country = h.device.CountryCode
			}
			ck := strconv.FormatInt(c.pool.ID, 10) + "/" + country
			cerr, ok := checked[ck]
			if !ok {
				cerr = s.checkPool(ctx, tx, c, app, h, nil)
				if _, isDomain := model.AsError(cerr); cerr != nil && !isDomain {
					return cerr
				}
				checked[ck] = cerr
			}
			if cerr != nil {
				if firstErr == nil {
					firstErr = cerr
				}
				continue
			}
			if reserved[c.pool.ID] == 0 {
				// Reserve for this holder and the rest of the chunk at once.
				got, err := tx.ReserveLicenses(ctx, c.pool.ID, int64(len(holders)-k))
				if err != nil {
					return err
				}
				reserved[c.pool.ID] = got
			}
			if reserved[c.pool.ID] == 0 {
				if exhausted == nil {
					cc := c
					exhausted = &cc
				}
				continue
			}
			reserved[c.pool.ID]--
			seenHolder[key] = true
			assigned = append(assigned, pending{i, h, c})
			done = true
			break
		}
		if done {
			continue
		}
		var e *model.Error
		switch {
		case exhausted != nil:
			e, _ = model.AsError(noLicenses(exhausted, app))
		case firstErr != nil:
			e, _ = model.AsError(firstErr)
		default:
			e = &model.Error{Code: model.CodeNoLicensesAvailable, Message: "no account can provide this license"}
		}
		fail(i, &model.Error{Code: e.Code, Message: e.Message})
	}
	// Give back what was reserved and not used.
	for poolID, n := range reserved {
		if n > 0 {
			if err := tx.AdjustPoolCounts(ctx, poolID, 0, -n); err != nil {
				return err
			}
		}
	}
	if len(assigned) == 0 {
		return nil
	}
	now := s.now()
	reason := truncate(reasonOr(in.Reason, actor), 1000)
	if in.Reason == "" {
		reason = "assigned by " + actor.String()
	}
	origin, causedBy := model.OriginAdmin, actor.String()
	if in.Origin != "" {
		origin = in.Origin
	}
	if in.CausedBy != "" {
		causedBy = in.CausedBy
	}
	var labelID *int64
	if in.LabelID != 0 {
		labelID = &in.LabelID
	}
	rows := make([]*model.LicenseAssignment, 0, len(assigned))
	reasons := make([]string, 0, len(assigned))
	for _, p := range assigned {
		key := p.h.key()
		reason := reason
		if p.i < len(in.Reasons) && in.Reasons[p.i] != "" {
			reason = truncate(in.Reasons[p.i], 1000)
		}
		reasons = append(reasons, reason)
		a := &model.LicenseAssignment{PoolID: p.c.pool.ID, AccountID: p.c.account.ID, AppID: app.ID, Kind: p.h.kind, HolderKey: &key,
			Status: model.AssignmentPending, Origin: origin, Reason: reason, CausedBy: causedBy, LabelID: labelID, CreatedAt: now, UpdatedAt: now}
		if p.h.kind == model.LicenseKindDevice {
			a.SerialNumber, a.DeviceID = &p.h.device.SerialNumber, &p.h.device.ID
		} else {
			a.ClientUserID, a.UserID = &p.h.user.ClientUserID, &p.h.user.ID
			if err := s.ensureRegistered(ctx, tx, p.c.account.ID, p.h.user); err != nil {
				return err
			}
		}
		rows = append(rows, a)
	}
	if err := tx.InsertAssignments(ctx, rows); err != nil {
		if errors.Is(err, db.ErrHolderHasLicense) {
			return model.Errorf(model.CodeConflict, "some targets were given this license by another request at the same moment; send the request again")
		}
		return err
	}
	// Read the ids back (a multi-row insert's ids need not be consecutive).
	ids, err := tx.ActiveAssignmentIDs(ctx, rows)
	if err != nil {
		return err
	}
	items := make([]*model.OutboxItem, 0, len(rows))
	audits := make([]*model.AuditEvent, 0, len(rows))
	for k, a := range rows {
		id := ids[k]
		a.ID = id
		p := assigned[k]
		out[p.i].AssignmentID = id
		// The items wait until the whole request is recorded (AssignMany releases them), so
		// that the dispatcher packs all its targets together instead of chunk by chunk; a
		// crash in between only delays them by bulkGather.
		items = append(items, &model.OutboxItem{AccountID: a.AccountID, Action: model.OutboxAssociate, AssignmentID: &id,
			AdamID: p.c.pool.AdamID, PricingParam: p.c.pool.PricingParam, SerialNumber: a.SerialNumber, ClientUserID: a.ClientUserID,
			Status: model.OutboxQueued, NotBefore: now.Add(bulkGather), CreatedAt: now})
		acct := a.AccountID
		audits = append(audits, actor.audit(&model.AuditEvent{At: now, Action: "license.assign", SubjectType: "LicenseAssignment", SubjectID: &id, AccountID: &acct,
			Message: fmt.Sprintf("%s license for %s to %s from account %q: %s", strings.ToLower(string(a.Kind)), nameOf(app), holderName(p.h), p.c.account.Name, reasons[k])}))
	}
	if err := tx.InsertOutbox(ctx, items...); err != nil {
		return err
	}
	return tx.InsertAudits(ctx, audits)
}

// orderFor sorts candidate pools in Orchard's order of preference for a holder: an account in
// the device's country first (no cross-country rule to meet), then the one with most licenses
// left, then the oldest account — so the choice is deterministic.
func orderFor(cands []candidate, h holder) []candidate {
	out := append([]candidate(nil), cands...)
	country := ""
	if h.device != nil {
		country = h.device.CountryCode
	}
	sort.SliceStable(out, func(i, j int) bool {
		ci, cj := out[i].account.CountryCode == country, out[j].account.CountryCode == country
		if ci != cj {
			return ci
		}
		ai, aj := out[i].pool.Available(), out[j].pool.Available()
		if ai != aj {
			return ai > aj
		}
		return out[i].account.ID < out[j].account.ID
	})
	return out
}

// byAccountOrder keeps the candidates of the given accounts, in that order (a license label's
// priority: the first account with a license left serves, then the next).
func byAccountOrder(cands []candidate, accounts []int64) []candidate {
	var out []candidate
	for _, id := range accounts {
		for _, c := range cands {
			if c.account.ID == id {
				out = append(out, c)
			}
		}
	}
	return out
}

// resolvedTarget is a target of a bulk call, resolved or refused.
type resolvedTarget struct {
	holder
	err *model.Error
}

// resolveTargets resolves a chunk's targets with a statement per kind of reference.
func (s *Service) resolveTargets(ctx context.Context, tx *db.DB, kind model.LicenseKind, ts []Target) ([]resolvedTarget, error) {
	var serials, exts []string
	var devIDs, userIDs []int64
	for _, t := range ts {
		switch {
		case t.DeviceID != 0:
			devIDs = append(devIDs, t.DeviceID)
		case t.SerialNumber != "":
			serials = append(serials, t.SerialNumber)
		case t.UserID != 0:
			userIDs = append(userIDs, t.UserID)
		case t.ExternalID != "":
			exts = append(exts, t.ExternalID)
		}
	}
	devs := map[string]*model.Device{}
	devByID := map[int64]*model.Device{}
	ds, err := tx.DevicesBySerials(ctx, serials)
	if err != nil {
		return nil, err
	}
	ds2, err := tx.DevicesByID(ctx, devIDs)
	if err != nil {
		return nil, err
	}
	for _, d := range append(ds, ds2...) {
		devs[d.SerialNumber], devByID[d.ID] = d, d
		if kind == model.LicenseKindUser && d.UserID != nil {
			userIDs = append(userIDs, *d.UserID)
		}
	}
	users := map[string]*model.User{}
	userByID := map[int64]*model.User{}
	us, err := tx.UsersByExternalIDs(ctx, exts)
	if err != nil {
		return nil, err
	}
	us2, err := tx.UsersByID(ctx, userIDs)
	if err != nil {
		return nil, err
	}
	for _, u := range append(us, us2...) {
		users[u.ExternalID], userByID[u.ID] = u, u
	}
	out := make([]resolvedTarget, len(ts))
	for i, t := range ts {
		r := resolvedTarget{holder: holder{kind: kind}}
		switch {
		case t.DeviceID != 0:
			r.device = devByID[t.DeviceID]
		case t.SerialNumber != "":
			r.device = devs[t.SerialNumber]
		case t.UserID != 0:
			r.user = userByID[t.UserID]
		case t.ExternalID != "":
			r.user = users[t.ExternalID]
		default:
			r.err = &model.Error{Code: model.CodeInvalidInput, Message: "give a device or a user"}
		}
		switch {
		case r.err != nil:
		case r.device == nil && r.user == nil:
			r.err = &model.Error{Code: model.CodeNotFound, Message: "no such device or user"}
		case kind == model.LicenseKindDevice && r.device == nil:
			r.err = &model.Error{Code: model.CodeInvalidInput, Message: "a DEVICE license needs a device, not a user"}
		case r.device != nil && r.device.Status == model.DeviceRetired:
			r.err = &model.Error{Code: model.CodeDeviceRetired, Message: "device " + r.device.SerialNumber + " is retired"}
		case kind == model.LicenseKindUser && r.device != nil && r.device.SharedIPad:
			r.err = &model.Error{Code: model.CodeSharedIPadNeedsDeviceLicense, Message: r.device.SerialNumber + " is a shared iPad: it takes device licenses only"}
		case kind == model.LicenseKindUser && r.device != nil && r.device.UserID == nil:
			r.err = &model.Error{Code: model.CodeInvalidInput, Message: "device " + r.device.SerialNumber + " has no user to hold a USER license"}
		case kind == model.LicenseKindUser && r.device != nil:
			r.user = userByID[*r.device.UserID]
		}
		if r.err == nil && r.user != nil && r.user.Status == model.UserRemoved {
			r.err = &model.Error{Code: model.CodeNotFound, Message: "user " + r.user.ExternalID + " was removed"}
		}
		out[i] = r
	}
	return out, nil
}

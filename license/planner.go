package license

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"orchard/db"
	"orchard/model"
)

// The assignment planner: the one path by which a license is assigned, whether an admin asks
// for one target (Assign), for many (AssignMany), or a rule assigns on its own (conversion,
// policy). It reads the facts of a chunk of targets in bulk (facts.go), lets the pure rules
// decide each target (rules_*.go), reserves licenses per pool with one conditional statement,
// and writes the PENDING assignments, their outbox rows and audit events in batches.

// assignRequest asks for licenses of one app (or from one pool) for targets.
//
// A caller in package license (a policy engine reacting to a group or label change, say)
// builds one and calls assignTargets, which runs the targets in chunks of bulkChunk, a
// transaction each, and returns one targetOutcome per target, in order:
//
//	outs, err := s.assignTargets(ctx, RuleActor("label:7"), &assignRequest{
//		AppID: appID, Kind: model.LicenseKindDevice, Targets: targets,
//		Origin: model.OriginLabel, Reason: `label "Science iPads"`, CausedBy: "label:7",
//		Accounts: []int64{usAccount, gbAccount}, // take from the US account first, then GB
//		Limit:    10,                            // at most 10 new assignments from this call
//		Gather:   true,                          // pack the outbox rows (AssignMany does)
//	}, false)
//
// err is a failure of the whole call: the database, or a request that names no pool at all
// (NOT_FOUND, INVALID_INPUT, as a *model.Error). Otherwise each outcome says what became of its
// target: AssignmentID and Account/Pool when assigned, Error (with its code:
// NO_LICENSES_AVAILABLE, ALREADY_ASSIGNED, USER_LICENSE_EXISTS, DEVICE_RETIRED, ...) when a
// rule refused it, Capped when Limit was reached first. Nothing is sent to Apple here: the
// caller kicks the scheduler (s.kick) once the call has returned (once its transaction has
// committed, with assignTargetsTx), and the dispatcher sends the outbox rows.
//
// Inside a transaction of its own (assigning as part of a larger change), a caller uses
// assignTargetsTx instead: the same outcomes, everything written in its transaction.
type assignRequest struct {
	// What: a pool, or an app (by id or Apple's adamId) from one account (AccountID), from the
	// accounts listed (Accounts) or from any account.
	PoolID    int64
	AppID     int64
	AdamID    string
	AccountID int64
	Kind      model.LicenseKind
	Targets   []Target
	// Accounts, when given, are the accounts the licenses may come from, in order: each target
	// takes its license from the first of them whose pool the rules allow and that has one
	// left, and falls back to the next. nil: any account, in Orchard's order of preference
	// (preferredOrder).
	Accounts []int64
	// Limit, when above 0, caps the assignments this call makes: the targets after the
	// Limit-th new assignment are not assigned (Capped). Targets refused by a rule, or
	// answered with an earlier run's assignment (resume), do not count.
	Limit int
	// Origin (ADMIN when empty), Reason ("assigned by <actor>" when empty) and CausedBy (the
	// actor when empty) are recorded on each assignment.
	Origin   model.AssignmentOrigin
	Reason   string
	CausedBy string
	// Gather holds the outbox rows back for bulkGather, so that the dispatcher packs all the
	// targets of the request into Apple's requests of up to 1,000 instead of chunk by chunk;
	// assignTargets releases them when the whole request is recorded.
	Gather bool
	// LabelID, when set, is the license label the assignments are made for (recorded on each,
	// in the statement that inserts it); Reasons, when set, is each target's own reason (by
	// index in Targets), in place of Reason.
	LabelID int64
	Reasons []string
	// known, when set, holds the targets' devices and users and app the app, already read in
	// the caller's transaction (a per-holder policy evaluation): they are not read again.
	known *namedTargets
	app   *model.App
	// room, when set, is asked inside each chunk's transaction, before anything is reserved,
	// how many more assignments the caller allows (-1: no bound): a label's cap, counted
	// under the label's row lock so that concurrent evaluations never overshoot it.
	// afterChunk, when set, runs inside each chunk's transaction with its outcomes (a label's
	// install commands are queued with the assignments they follow).
	room       func(tx *db.DB) (int, error)
	afterChunk func(tx *db.DB, outs []targetOutcome) error
	// audits, when set, collects the assignments' audit events for the caller to write with
	// its own, in its transaction; the caller drops those of a chunk that rolled back.
	audits *[]*model.AuditEvent
	// oneTarget answers as assignLicense does: its wording and fields, and a refusal of the
	// request's pools answered as the target's. Otherwise as assignLicenses does.
	oneTarget bool
}

// callersOrder reports whether the pools go in the order of req.Accounts.
func (req *assignRequest) callersOrder() bool {
	return len(req.Accounts) > 0 && req.AccountID == 0 && req.PoolID == 0
}

// targetOutcome is what became of one target of an assignRequest.
type targetOutcome struct {
	// Index is the target's position in assignRequest.Targets.
	Index int
	// AssignmentID is the assignment made (or, on resume, the one the first run made).
	AssignmentID int64
	// Assignment, Account and Pool are the row written and where its license came from (nil
	// when refused, capped or answered from an earlier run).
	Assignment *model.LicenseAssignment
	Account    *model.Account
	Pool       *model.LicensePool
	// Error is why a rule refused the target.
	Error *model.Error
	// Capped: assignRequest.Limit was reached before this target.
	Capped bool

	// rank and of place Account's pool in the order of preference, for assignLicense's note.
	rank, of int
	h        holder
}

// targetPlan is what the rules decided for one target before anything is reserved.
type targetPlan struct {
	index   int
	h       holder
	refused *refusal
	// resumed is the assignment that a resumed request's first run made for this target.
	resumed int64
	// eligible are the pools whose rules allow the target, in order of preference; rank[k] is
	// eligible[k]'s place among all the candidates (all).
	eligible []candidate
	rank     []int
	all      int
}

// planTargets applies every rule to targets (the chunk of a request starting at start), over
// facts read for them. It reads and writes nothing. With resume (a retry of a request that
// stopped half-way), a holder that has the license already is answered with that assignment
// once, as the first run would have answered.
func planTargets(f *assignFacts, req *assignRequest, targets []Target, start int, resume bool) []targetPlan {
	plans := make([]targetPlan, len(targets))
	resumed := map[string]bool{}
	for k, t := range targets {
		p := &plans[k]
		p.index = start + k
		var r *refusal
		if p.h, r = resolveHolder(f, t, req.oneTarget); r != nil {
			p.refused = r
			continue
		}
		if f.poolsRefused != nil {
			p.refused = f.poolsRefused
			continue
		}
		key := p.h.key()
		if held, ok := f.held[key]; ok && resume && !resumed[key] {
			p.resumed, resumed[key] = held.ID, true
			continue
		}
		if r := checkAlreadyAssigned(f, p.h); r != nil {
			p.refused = r
			continue
		}
		if r := checkR9(f, p.h); r != nil {
			p.refused = r
			continue
		}
		order := preferredOrder(f.cands, p.h, req.callersOrder())
		p.all = len(order)
		var first *refusal
		for i, c := range order {
			if r := checkPool(f, c, p.h); r != nil {
				if first == nil {
					first = r
				}
				continue
			}
			p.eligible = append(p.eligible, c)
			p.rank = append(p.rank, i)
		}
		if len(p.eligible) == 0 {
			p.refused = first
			if first == nil {
				p.refused = &refusal{Code: model.CodeNoLicensesAvailable, Field: []string{"input"}, Message: "no account can provide this license"}
			}
		}
	}
	return plans
}

// assignTargets runs a request in chunks of bulkChunk targets, a transaction each (so that
// 10,000 targets do not hold pool locks for long), and returns an outcome per target. With
// Gather it releases the outbox rows once every chunk is recorded. See assignRequest.
func (s *Service) assignTargets(ctx context.Context, actor Actor, req *assignRequest, resume bool) ([]targetOutcome, error) {
	return s.runChunks(ctx, s.db, actor, req, resume, func(fn func(tx *db.DB) error) error { return s.db.Tx(ctx, fn) })
}

// assignTargetsTx is assignTargets inside the caller's transaction tx (a rule that assigns as
// part of a larger change): every chunk is written in tx, and nothing is written when tx rolls
// back.
func (s *Service) assignTargetsTx(ctx context.Context, tx *db.DB, actor Actor, req *assignRequest) ([]targetOutcome, error) {
	return s.runChunks(ctx, tx, actor, req, false, func(fn func(tx *db.DB) error) error { return fn(tx) })
}

// runChunks plans and commits req chunk by chunk, each inside a transaction that inTx opens
// (or not), then releases the gathered outbox rows through q.
func (s *Service) runChunks(ctx context.Context, q *db.DB, actor Actor, req *assignRequest, resume bool, inTx func(func(tx *db.DB) error) error) ([]targetOutcome, error) {
	out := make([]targetOutcome, len(req.Targets))
	if req.Gather && len(req.Targets) <= bulkChunk {
		// One chunk is recorded at once: its outbox rows are packed without being held back.
		r := *req
		r.Gather = false
		req = &r
	}
	left := -1 // no cap
	if req.Limit > 0 {
		left = req.Limit
	}
	for start := 0; start < len(req.Targets); start += bulkChunk {
		end := min(start+bulkChunk, len(req.Targets))
		var made int
		err := inTx(func(tx *db.DB) error {
			bound := left
			if req.room != nil {
				room, err := req.room(tx)
				if err != nil {
					return err
				}
				if room >= 0 && (bound < 0 || room < bound) {
					bound = room
				}
			}
			o, n, err := s.assignChunkTx(ctx, tx, actor, req, start, end, resume, bound)
			if err != nil {
				return err
			}
			copy(out[start:end], o)
			made = n
			if req.afterChunk != nil {
				return req.afterChunk(tx, o)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if left > 0 {
			left -= made
		}
	}
	if req.Gather {
		var ids []int64
		for _, o := range out {
			if o.AssignmentID != 0 {
				ids = append(ids, o.AssignmentID)
			}
		}
		if err := q.ReleaseOutbox(ctx, ids); err != nil {
			return nil, fmt.Errorf("release the outbox rows of %d assignments: %w", len(ids), err)
		}
	}
	return out, nil
}

// assignChunkTx reads the facts of targets [start, end) of req, plans and commits them inside
// tx. left caps the new assignments (-1: no cap); it returns how many it made.
func (s *Service) assignChunkTx(ctx context.Context, tx *db.DB, actor Actor, req *assignRequest, start, end int, resume bool, left int) ([]targetOutcome, int, error) {
	f, err := s.readAssignFacts(ctx, tx, req, req.Targets[start:end])
	if err != nil {
		return nil, 0, err
	}
	if f.poolsRefused != nil && !req.oneTarget {
		return nil, 0, f.poolsRefused.one()
	}
	plans := planTargets(f, req, req.Targets[start:end], start, resume)
	return s.commitPlans(ctx, tx, actor, req, f, plans, left)
}

// commitPlans reserves licenses for the targets the rules allowed, from the first of their
// eligible pools with one left, and writes their assignments, inside tx. Licenses are reserved
// per pool for the rest of the chunk at once (one conditional statement; what is left over is
// given back), so a chunk costs a statement per pool, not per target. left caps the new
// assignments (-1: no cap); it returns the outcomes and how many assignments it made.
func (s *Service) commitPlans(ctx context.Context, tx *db.DB, actor Actor, req *assignRequest, f *assignFacts, plans []targetPlan, left int) ([]targetOutcome, int, error) {
	out := make([]targetOutcome, len(plans))
	refuse := func(o *targetOutcome, r *refusal) {
		if req.oneTarget {
			o.Error = r.one()
		} else {
			o.Error = r.of(o.Index)
		}
	}
	reserved := map[int64]int64{} // pool id -> licenses reserved and not yet used
	seen := map[string]bool{}     // holders given their license in this chunk
	var made []int                // indexes (in plans) of the targets to write
	for k := range plans {
		p, o := &plans[k], &out[k]
		o.Index, o.h = p.index, p.h
		switch {
		case p.refused != nil:
			refuse(o, p.refused)
			continue
		case p.resumed != 0:
			o.AssignmentID = p.resumed
			continue
		case seen[p.h.key()]:
			refuse(o, alreadyAssignedInRequest(f, p.h))
			continue
		case left == len(made):
			o.Capped = true
			continue
		}
		var exhausted *candidate
		for e, c := range p.eligible {
			if reserved[c.pool.ID] == 0 {
				want := int64(len(plans) - k)
				if left >= 0 {
					want = min(want, int64(left-len(made)))
				}
				got, err := reserve(ctx, tx, c.pool.ID, want)
				if err != nil {
					return nil, 0, err
				}
				reserved[c.pool.ID] = got
			}
			if reserved[c.pool.ID] == 0 {
				if exhausted == nil {
					exhausted = &p.eligible[e]
				}
				continue
			}
			reserved[c.pool.ID]--
			seen[p.h.key()] = true
			o.Account, o.Pool, o.rank, o.of = c.account, c.pool, p.rank[e], p.all
			made = append(made, k)
			break
		}
		if o.Pool == nil {
			refuse(o, noLicenses(*exhausted, f.app))
		}
	}
	// Give back what was reserved and not used.
	for poolID, n := range reserved {
		if n > 0 {
			if err := tx.AdjustPoolCounts(ctx, poolID, 0, -n); err != nil {
				return nil, 0, fmt.Errorf("give back %d reserved licenses of pool %d: %w", n, poolID, err)
			}
		}
	}
	if len(made) == 0 {
		return out, 0, nil
	}
	if err := s.writeAssignments(ctx, tx, actor, req, f.app, out, made); err != nil {
		return nil, 0, err
	}
	return out, len(made), nil
}

// reserve takes up to n licenses of a pool: one is the conditional update alone (the
// one-target case, which the database serialises per pool), more lock the pool's row first.
func reserve(ctx context.Context, tx *db.DB, poolID, n int64) (int64, error) {
	if n == 1 {
		ok, err := tx.ReserveLicense(ctx, poolID)
		if err != nil || !ok {
			return 0, err
		}
		return 1, nil
	}
	return tx.ReserveLicenses(ctx, poolID, n)
}

// writeAssignments writes the PENDING assignments of the outcomes made (their licenses are
// reserved), the users' registrations at Apple they need, their outbox rows and audit events,
// and sets each outcome's assignment.
func (s *Service) writeAssignments(ctx context.Context, tx *db.DB, actor Actor, req *assignRequest, app *model.App, out []targetOutcome, made []int) error {
	now := s.now()
	origin, reason, causedBy := req.Origin, req.Reason, req.CausedBy
	if origin == "" {
		origin = model.OriginAdmin
	}
	// A reason of only whitespace says nothing: it is absent (assignLicense and assignLicenses
	// alike, both come through here).
	if reason = strings.TrimSpace(reason); reason == "" {
		reason = "assigned by " + actor.String()
	}
	reason = truncate(reason, 1000)
	if causedBy == "" {
		causedBy = actor.String()
	}
	rows := make([]*model.LicenseAssignment, len(made))
	reasons := make([]string, len(made))
	var registrations []*model.OutboxItem // users to register at Apple, queued ahead of their associates
	for i, k := range made {
		o := &out[k]
		h := o.h
		key := h.key()
		reasons[i] = reason
		if req.Reasons != nil && strings.TrimSpace(req.Reasons[o.Index]) != "" {
			reasons[i] = truncate(strings.TrimSpace(req.Reasons[o.Index]), 1000)
		}
		a := &model.LicenseAssignment{PoolID: o.Pool.ID, AccountID: o.Account.ID, AppID: app.ID, Kind: h.kind, HolderKey: &key,
			Status: model.AssignmentPending, Origin: origin, Reason: reasons[i], CausedBy: causedBy, CreatedAt: now, UpdatedAt: now}
		if req.LabelID != 0 {
			l := req.LabelID
			a.LabelID = &l
		}
		if h.kind == model.LicenseKindDevice {
			a.SerialNumber, a.DeviceID = &h.device.SerialNumber, &h.device.ID
		} else {
			a.ClientUserID, a.UserID = &h.user.ClientUserID, &h.user.ID
			if h.device != nil {
				a.DeviceID = &h.device.ID
			}
			reg, err := s.ensureRegistered(ctx, tx, o.Account.ID, h.user)
			if err != nil {
				return err
			}
			if reg != nil {
				registrations = append(registrations, reg)
			}
		}
		rows[i] = a
	}
	if err := insertAssignments(ctx, tx, req, rows, out[made[0]].h); err != nil {
		return err
	}
	notBefore := now
	if req.Gather {
		// The rows wait until the whole request is recorded (assignTargets releases them), so
		// that the dispatcher packs all its targets together instead of chunk by chunk; a crash
		// in between only delays them by bulkGather.
		notBefore = now.Add(bulkGather)
	}
	items := make([]*model.OutboxItem, len(rows))
	audits := make([]*model.AuditEvent, len(rows))
	for i, a := range rows {
		o := &out[made[i]]
		o.AssignmentID, o.Assignment = a.ID, a
		id, acct := a.ID, a.AccountID
		items[i] = &model.OutboxItem{AccountID: acct, Action: model.OutboxAssociate, AssignmentID: &id,
			AdamID: o.Pool.AdamID, PricingParam: o.Pool.PricingParam, SerialNumber: a.SerialNumber, ClientUserID: a.ClientUserID,
			Status: model.OutboxQueued, NotBefore: notBefore, CreatedAt: now}
		details, err := json.Marshal(map[string]any{"origin": origin, "poolId": o.Pool.ID})
		if err != nil {
			return err
		}
		audits[i] = actor.audit(&model.AuditEvent{At: now, Action: "license.assign", SubjectType: "LicenseAssignment", SubjectID: &id, AccountID: &acct,
			Message: fmt.Sprintf("%s license for %s to %s from account %q: %s", strings.ToLower(string(a.Kind)), nameOf(app), holderName(o.h), o.Account.Name, reasons[i]),
			Details: string(details)})
	}
	if err := tx.InsertOutbox(ctx, append(registrations, items...)...); err != nil {
		return fmt.Errorf("queue %d associates: %w", len(items), err)
	}
	if req.audits != nil {
		*req.audits = append(*req.audits, audits...)
		return nil
	}
	if err := tx.InsertAudits(ctx, audits); err != nil {
		return fmt.Errorf("audit %d assignments: %w", len(audits), err)
	}
	return nil
}

// insertAssignments inserts the rows and sets their ids. The unique index on (pool, holder)
// refuses a holder that another request gave the license at the same moment: assignLicense
// answers ALREADY_ASSIGNED, assignLicenses asks for the request again (CONFLICT: its chunk is
// rolled back as a whole).
func insertAssignments(ctx context.Context, tx *db.DB, req *assignRequest, rows []*model.LicenseAssignment, first holder) error {
	var err error
	if len(rows) == 1 {
		err = tx.InsertAssignment(ctx, rows[0])
	} else {
		err = tx.InsertAssignments(ctx, rows)
	}
	switch {
	case errors.Is(err, db.ErrHolderHasLicense) && req.oneTarget:
		return &model.Error{Code: model.CodeAlreadyAssigned, Field: targetField,
			Message: fmt.Sprintf("%s already has (or is getting) a license from this pool", holderName(first))}
	case errors.Is(err, db.ErrHolderHasLicense):
		return model.Errorf(model.CodeConflict, "some targets were given this license by another request at the same moment; send the request again")
	case err != nil:
		return fmt.Errorf("insert %d assignments: %w", len(rows), err)
	case len(rows) == 1:
		return nil
	}
	// Read the ids back (a multi-row insert's ids need not be consecutive).
	ids, err := tx.ActiveAssignmentIDs(ctx, rows)
	if err != nil {
		return fmt.Errorf("read back the ids of %d assignments: %w", len(rows), err)
	}
	for i, a := range rows {
		a.ID = ids[i]
	}
	return nil
}

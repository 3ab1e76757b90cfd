package license

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	"orchard/db"
	"orchard/model"
)

// Evaluating policy: the facts of one app are read, PlanPolicy decides, and the plan is carried
// out through the ordinary write path — assignments through the bulk assignment of
// assign_many.go (every rule of R5, R9, R11 and R13 applies; the outbox carries them to Apple,
// packed as assignLicenses packs them), reclaims through reclaimTx — in bounded chunks, a
// transaction each. Evaluation is idempotent: after a crash between chunks the next run reads
// what was committed and does the rest. What is queued is evaluated by the holder of the
// policy lease only (see scheduler/policy.go); a change that evaluates itself (a label change,
// a small membership change) does it inside its own transaction. Evaluations of one app are
// kept apart by the app's label rows: a per-holder evaluation reads them locked and holds them
// to its commit, and every chunk that assigns under a capped label counts the label's licenses
// under its lock (capRoom), so a cap is never overshot whoever evaluates; pools are safe under
// any concurrency by their conditional reservation.

// evalChunk bounds the assignments or reclaims of one transaction.
const evalChunk = 500

// refusedFor is how long Apple's refusal of a label license holds before it is asked again.
const refusedFor = 24 * time.Hour

// departuresFor is how long departures are kept for reclaim reasons.
const departuresFor = 30 * 24 * time.Hour

// EvalAssigned is a license a label asked for.
type EvalAssigned struct {
	LabelID      int64  `json:"labelId"`
	HolderKey    string `json:"holderKey"`
	Kind         model.LicenseKind
	DeviceID     int64  // the device, for DEVICE licenses (and a user license through its device)
	UserID       int64  // the user, for USER licenses
	AssignmentID int64  `json:"assignmentId"`
	AccountID    int64  `json:"accountId"`
	Reason       string `json:"reason"`
}

// EvalReclaimed is a label license taken back.
type EvalReclaimed struct {
	LabelID      int64  `json:"labelId"`
	HolderKey    string `json:"holderKey"`
	Kind         model.LicenseKind
	DeviceID     int64
	UserID       int64
	AssignmentID int64  `json:"assignmentId"`
	AccountID    int64  `json:"accountId"`
	Reason       string `json:"reason"`
}

// EvalResult is what one evaluation of an app did (or, in a preview, would do).
type EvalResult struct {
	AppID      int64                  `json:"appId"`
	Assigned   []EvalAssigned         `json:"assigned"`
	Reclaimed  []EvalReclaimed        `json:"reclaimed"`
	Relabelled int                    `json:"relabelled"`
	Kept       int                    `json:"kept"`
	Waiting    []*model.PolicyWaiting `json:"-"`
	// InstallCommands counts the install commands queued for devices whose app label asks
	// for an install on registration (R10).
	InstallCommands int `json:"installCommands"`
}

// Changed reports whether the evaluation changed anything.
func (r *EvalResult) Changed() bool {
	return len(r.Assigned)+len(r.Reclaimed)+r.Relabelled+r.InstallCommands > 0
}

// policyState is the facts of an app and the labels by id; scope is set when the facts hold
// only some holders of the app.
type policyState struct {
	facts  *PolicyFacts
	labels map[int64]LabelSpec
	scope  *holderScope
	// moreDepartures, when set, reads the departures the facts do not hold yet (they hold the
	// newest only): read when a reclaim is not explained by those.
	moreDepartures func() ([]*model.PolicyDeparture, error)
	// audits, when set, collects the evaluation's own audit event for the caller to write
	// with its own (a membership change: one statement for both).
	audits *[]*model.AuditEvent
}

// tx runs fn in a transaction of h — or, in a per-holder evaluation, which runs in one
// transaction of its own that any error rolls back, directly in h (no savepoint to pay for).
func (st *policyState) tx(ctx context.Context, h *db.DB, fn func(tx *db.DB) error) error {
	if st.scope != nil {
		return fn(h)
	}
	return h.Tx(ctx, fn)
}

// holderScope names the holders a per-holder evaluation covers.
type holderScope struct {
	keys   []string         // their holder keys
	userOf map[string]int64 // holder key → user id
	devOf  map[string]int64 // holder key → device id
}

// carryOut plans the facts of st and carries the plan out through h.
func (s *Service) carryOut(ctx context.Context, h *db.DB, st *policyState) (*EvalResult, error) {
	appID := st.facts.App.ID
	f := st.facts
	plan := PlanPolicy(f)
	if st.moreDepartures != nil && !departuresExplain(st, plan) {
		deps, err := st.moreDepartures()
		if err != nil {
			return nil, fmt.Errorf("policy of app %d: %w", appID, err)
		}
		f.Departures = deps
		plan = PlanPolicy(f)
	}
	res := &EvalResult{AppID: appID, Kept: plan.Kept}

	// Licenses handed to another covering label, and grace times started or ended.
	if len(plan.Relabel)+len(plan.GraceStart)+len(plan.GraceEnd) > 0 {
		err := st.tx(ctx, h, func(tx *db.DB) error {
			for labelID, ids := range plan.Relabel {
				if err := tx.SetAssignmentLabel(ctx, ids, labelID, "label:"+strconv.FormatInt(labelID, 10)); err != nil {
					return err
				}
			}
			now := f.Now
			if err := tx.SetLabelOutSince(ctx, plan.GraceStart, &now); err != nil {
				return err
			}
			return tx.SetLabelOutSince(ctx, plan.GraceEnd, nil)
		})
		if err != nil {
			return nil, fmt.Errorf("policy of app %d: relabel: %w", appID, err)
		}
		for _, ids := range plan.Relabel {
			res.Relabelled += len(ids)
		}
	}

	// Reclaims.
	pools := map[int64]*model.LicensePool{}
	for start := 0; start < len(plan.Reclaim); start += evalChunk {
		chunk := plan.Reclaim[start:min(start+evalChunk, len(plan.Reclaim))]
		var done []EvalReclaimed
		err := st.tx(ctx, h, func(tx *db.DB) error {
			done = done[:0]
			for _, r := range chunk {
				a, err := tx.LockAssignment(ctx, r.Assignment.ID)
				if err != nil {
					return err
				}
				// Still the label's and still held: anything else changed it meanwhile.
				if !a.Status.Active() || a.Status == model.AssignmentReclaiming || a.LabelID == nil || *a.LabelID != r.LabelID {
					continue
				}
				p := pools[a.PoolID]
				if p == nil {
					if p, err = tx.PoolByID(ctx, a.PoolID); err != nil {
						return err
					}
					pools[a.PoolID] = p
				}
				if a.Status == model.AssignmentAssigned && !p.Revocable {
					continue // books stay with their holder
				}
				actor := LabelActor(labelOr(st, r.LabelID))
				// In a per-holder evaluation the chunk is the caller's transaction itself (no
				// savepoint to roll back): its audit events may wait for the caller's.
				var audits *[]*model.AuditEvent
				if st.scope != nil {
					audits = st.audits
				}
				if err := s.reclaimTxInto(ctx, tx, actor, a, p, r.Reason, audits); err != nil {
					return err
				}
				done = append(done, EvalReclaimed{LabelID: r.LabelID, HolderKey: holderKeyOf(a), Kind: a.Kind, DeviceID: deref64(a.DeviceID), UserID: deref64(a.UserID),
					AssignmentID: a.ID, AccountID: a.AccountID, Reason: r.Reason})
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("policy of app %d: reclaim: %w", appID, err)
		}
		res.Reclaimed = append(res.Reclaimed, done...)
	}

	// Assignments, label by label in the order of the plan (fair order within a label).
	waiting := append([]*model.PolicyWaiting(nil), plan.Waiting...)
	installOnReg := s.installOnRegistration(f)
	var order []int64
	byLabel := map[int64][]PlannedAssign{}
	for _, a := range plan.Assign {
		if byLabel[a.LabelID] == nil {
			order = append(order, a.LabelID)
		}
		byLabel[a.LabelID] = append(byLabel[a.LabelID], a)
	}
	for _, labelID := range order {
		spec := st.labels[labelID]
		todo := byLabel[labelID]
		causedBy := "label:" + strconv.FormatInt(labelID, 10)
		// Each assignment records its label and says which group it is for, in the statement
		// that inserts it (a crash never leaves a label license that no label owns).
		req := &assignRequest{AppID: appID, Kind: *spec.Label.LicenseKind, Accounts: spec.AccountIDs, Origin: model.OriginLabel,
			Reason: fmt.Sprintf("label %q", spec.Label.Name), CausedBy: causedBy, Gather: true, LabelID: labelID}
		for _, a := range todo {
			req.Targets = append(req.Targets, a.Holder.target())
			req.Reasons = append(req.Reasons, a.Reason)
		}
		if st.scope != nil {
			// The holders and the app were read in this transaction: the planner need not read
			// them again.
			req.known, req.app = knownHolders(todo), f.App
		}
		if spec.Label.CapCount != nil {
			req.room = func(tx *db.DB) (int, error) { return s.capRoom(ctx, tx, spec.Label) }
		}
		// The planner commits chunk by chunk, each in a transaction of h (a savepoint); in the
		// same transaction the install commands of the chunk's new device licenses are queued.
		// The outbox rows of several chunks are released once every chunk is recorded (packed:
		// 1,000 per request).
		cmds := 0
		req.afterChunk = func(tx *db.DB, outs []targetOutcome) error {
			for _, o := range outs {
				a := o.Assignment
				if a == nil || a.Kind != model.LicenseKindDevice || a.DeviceID == nil || !installOnReg[*a.DeviceID] {
					continue
				}
				queued, err := s.queueCommand(ctx, tx, *a.DeviceID, appID, a, model.CommandInstall,
					fmt.Sprintf("install on registration: an app label of %s covers the device", nameOf(f.App)))
				if err != nil {
					return err
				}
				if queued {
					cmds++
				}
			}
			return nil
		}
		req.audits = st.audits
		outs, err := s.runChunks(ctx, h, LabelActor(spec.Label), req, false, func(fn func(tx *db.DB) error) error {
			if st.audits == nil {
				return h.Tx(ctx, fn)
			}
			kept := len(*st.audits)
			err := h.Tx(ctx, fn)
			if err != nil {
				*st.audits = (*st.audits)[:kept] // the chunk rolled back: so do its events
			}
			return err
		})
		var refusal *model.Error
		if e, ok := model.AsError(err); ok {
			refusal, err = e, nil // the whole request is refused (e.g. no account has bought the app)
		}
		if err != nil {
			return nil, fmt.Errorf("policy of app %d: assign through label %d: %w", appID, labelID, err)
		}
		res.InstallCommands += cmds
		for k, pa := range todo {
			var o targetOutcome
			if refusal == nil {
				o = outs[k]
			}
			e := o.Error
			switch {
			case refusal != nil:
				e = refusal
			case o.Capped:
				// The cap, counted under the label's lock, was reached meanwhile.
				e = &model.Error{Code: model.CodeLabelCapReached, Message: fmt.Sprintf("label %q has handed out its cap of %d licenses", spec.Label.Name, *spec.Label.CapCount)}
			}
			if e == nil && o.AssignmentID != 0 {
				ea := EvalAssigned{LabelID: labelID, HolderKey: pa.Holder.Key, Kind: pa.Holder.Kind, AssignmentID: o.AssignmentID, Reason: pa.Reason}
				if o.Account != nil {
					ea.AccountID = o.Account.ID
				}
				if pa.Holder.Device != nil {
					ea.DeviceID = pa.Holder.Device.ID
				}
				if pa.Holder.User != nil {
					ea.UserID = pa.Holder.User.ID
				}
				res.Assigned = append(res.Assigned, ea)
				continue
			}
			if e == nil || e.Code == model.CodeAlreadyAssigned {
				continue // served meanwhile (an admin assigned it): nothing to wait for
			}
			w := &model.PolicyWaiting{LabelID: labelID, HolderKey: pa.Holder.Key, AppID: appID, Kind: pa.Holder.Kind, Code: e.Code, Reason: truncate(e.Message, 1000),
				FirstCoveredAt: pa.FirstCoveredAt, UpdatedAt: f.Now}
			if pa.Holder.Device != nil {
				w.DeviceID = &pa.Holder.Device.ID
			}
			if pa.Holder.User != nil {
				w.UserID = &pa.Holder.User.ID
			}
			waiting = append(waiting, w)
		}
	}

	// Waiting holders, written only when they changed (in a per-holder evaluation, only the
	// rows of the holders evaluated).
	sortWaiting(waiting)
	res.Waiting = waiting
	if !sameWaiting(f.Waiting, waiting) {
		err := st.tx(ctx, h, func(tx *db.DB) error {
			if st.scope != nil {
				return tx.ReplaceWaitingOfHolders(ctx, appID, st.scope.keys, waiting)
			}
			return tx.ReplaceWaiting(ctx, appID, waiting)
		})
		if err != nil {
			return nil, fmt.Errorf("policy of app %d: waiting holders: %w", appID, err)
		}
	}
	if plan.NextDue != nil && len(plan.GraceStart) > 0 {
		if err := s.queueGraceEnd(ctx, h, st, plan); err != nil {
			return nil, fmt.Errorf("policy of app %d: queue the end of a grace time: %w", appID, err)
		}
	}
	if res.Changed() {
		msg := fmt.Sprintf("policy of %s evaluated: %d licenses asked for, %d taken back, %d handed to another label, %d waiting",
			nameOf(f.App), len(res.Assigned), len(res.Reclaimed), res.Relabelled, len(waiting))
		e, err := auditEvent(RuleActor("policy"), "policy.evaluate", "App", appID, nil, msg,
			map[string]any{"assigned": len(res.Assigned), "reclaimed": len(res.Reclaimed), "relabelled": res.Relabelled, "waiting": len(waiting)})
		if err != nil {
			return nil, err
		}
		if st.audits != nil {
			*st.audits = append(*st.audits, e)
		} else if err := h.InsertAudit(ctx, e); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// installOnRegistration lists the devices an app label covers that asks for an install on
// registration.
func (s *Service) installOnRegistration(f *PolicyFacts) map[int64]bool {
	out := map[int64]bool{}
	for _, al := range f.AppLabels {
		if al.Label.DeletedAt != nil || !al.Label.InstallOnEnroll {
			continue
		}
		for d, gs := range f.DeviceGroups {
			if intersects(gs, al.GroupIDs) {
				out[d] = true
			}
		}
	}
	return out
}

// departuresExplain reports whether each reclaim of the plan is worded from a departure the
// facts hold (or needs none: its label is gone), so that older departures would not change it.
func departuresExplain(st *policyState, plan *PolicyPlan) bool {
	for _, r := range plan.Reclaim {
		spec, live := st.labels[r.LabelID]
		if !live || spec.Label.DeletedAt != nil {
			continue
		}
		a, found := r.Assignment, false
		for _, d := range st.facts.Departures {
			if contains(spec.GroupIDs, d.GroupID) && ((d.UserID != nil && a.UserID != nil && *d.UserID == *a.UserID) || (d.DeviceID != nil && a.DeviceID != nil && *d.DeviceID == *a.DeviceID)) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// knownHolders are the devices and users of planned assignments, as the planner's facts
// name them (its targets name holders by id).
func knownHolders(todo []PlannedAssign) *namedTargets {
	n := &namedTargets{devicesByID: map[int64]*model.Device{}, devicesBySerial: map[string]*model.Device{},
		usersByID: map[int64]*model.User{}, usersByExternalID: map[string]*model.User{}}
	for _, a := range todo {
		if d := a.Holder.Device; d != nil {
			n.devicesByID[d.ID], n.devicesBySerial[d.SerialNumber] = d, d
		}
		if u := a.Holder.User; u != nil {
			n.usersByID[u.ID], n.usersByExternalID[u.ExternalID] = u, u
		}
	}
	return n
}

// capRoom locks a capped label's row and counts the licenses it holds, inside the
// transaction that is about to assign through it: how many more it may give (never below 0).
// Every evaluation takes the lock before it assigns under a cap, so two evaluations of one
// app — the background evaluator's and a mutation's own — never overshoot the cap together.
func (s *Service) capRoom(ctx context.Context, tx *db.DB, l *model.Label) (int, error) {
	capCount, err := tx.LockLabelCap(ctx, l.ID)
	if err != nil {
		return 0, fmt.Errorf("lock label %d: %w", l.ID, err)
	}
	if capCount == nil {
		return -1, nil // the cap was lifted meanwhile
	}
	held, err := tx.CountLabelAssignments(ctx, []int64{l.ID})
	if err != nil {
		return 0, err
	}
	return int(max(0, *capCount-int64(held[l.ID]))), nil
}

func labelOr(st *policyState, id int64) *model.Label {
	if spec, ok := st.labels[id]; ok {
		return spec.Label
	}
	return &model.Label{ID: id, Name: "#" + strconv.FormatInt(id, 10)}
}

func sortWaiting(ws []*model.PolicyWaiting) {
	sort.SliceStable(ws, func(i, j int) bool {
		if !ws[i].FirstCoveredAt.Equal(ws[j].FirstCoveredAt) {
			return ws[i].FirstCoveredAt.Before(ws[j].FirstCoveredAt)
		}
		if ws[i].HolderKey != ws[j].HolderKey {
			return ws[i].HolderKey < ws[j].HolderKey
		}
		return ws[i].LabelID < ws[j].LabelID
	})
}

// sameWaiting compares two lists of waiting holders, ignoring when they were last written.
func sameWaiting(a, b []*model.PolicyWaiting) bool {
	if len(a) != len(b) {
		return false
	}
	key := func(w *model.PolicyWaiting) string {
		return fmt.Sprintf("%d/%s/%s/%s/%d", w.LabelID, w.HolderKey, w.Code, w.Reason, w.FirstCoveredAt.UnixMicro())
	}
	seen := map[string]int{}
	for _, w := range a {
		seen[key(w)]++
	}
	for _, w := range b {
		k := key(w)
		if seen[k] == 0 {
			return false
		}
		seen[k]--
	}
	return true
}

func deref64(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// queueGraceEnd queues the evaluation due when the first running grace time ends: of the
// holders concerned in a per-holder evaluation, of the app otherwise.
func (s *Service) queueGraceEnd(ctx context.Context, h *db.DB, st *policyState, plan *PolicyPlan) error {
	f := st.facts
	appID := f.App.ID
	if st.scope == nil {
		return h.EnqueuePolicy(ctx, &model.PolicyQueueItem{AppID: &appID, Reason: "a grace time ends", NotBefore: *plan.NextDue, CreatedAt: f.Now})
	}
	started := map[int64]bool{}
	for _, id := range plan.GraceStart {
		started[id] = true
	}
	var refs []db.HolderRef
	for _, a := range f.Assignments {
		if !started[a.ID] || a.HolderKey == nil {
			continue
		}
		refs = append(refs, db.HolderRef{AppID: appID, UserID: st.scope.userOf[*a.HolderKey], DeviceID: st.scope.devOf[*a.HolderKey]})
	}
	return h.EnqueuePolicyHolders(ctx, refs, "a grace time ends", *plan.NextDue)
}

// Evaluations counts the evaluations this service has carried out (whole apps and batches of
// holders; previews and explanations, rolled back, not included).
func (s *Service) Evaluations() int64 { return s.evaluations.Load() }

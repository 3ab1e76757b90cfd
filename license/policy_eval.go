package license

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
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
// what was committed and does the rest. Only the holder of the policy lease evaluates (see
// scheduler/policy.go), so a label's cap and fair order are not raced by another replica;
// pools are safe under any concurrency by their conditional reservation.

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

// loadPolicy reads the facts of one app: a statement per kind of fact.
func (s *Service) loadPolicy(ctx context.Context, q *db.DB, appID int64) (*policyState, error) {
	app, err := q.AppByID(ctx, appID)
	if err != nil {
		return nil, fmt.Errorf("policy of app %d: %w", appID, err)
	}
	now := s.now()
	f := &PolicyFacts{App: app, Now: now, Groups: map[int64]*model.Group{}, Users: map[int64]*model.User{}, Devices: map[int64]*model.Device{}}
	lic, err := q.LabelsOfApp(ctx, appID, model.LabelLicense)
	if err != nil {
		return nil, err
	}
	apl, err := q.LabelsOfApp(ctx, appID, model.LabelApp)
	if err != nil {
		return nil, err
	}
	var ids, licIDs []int64
	for _, l := range lic {
		ids, licIDs = append(ids, l.ID), append(licIDs, l.ID)
	}
	for _, l := range apl {
		ids = append(ids, l.ID)
	}
	groupsOf, err := q.LabelGroupIDs(ctx, ids)
	if err != nil {
		return nil, err
	}
	accountsOf, err := q.LabelAccountIDs(ctx, licIDs)
	if err != nil {
		return nil, err
	}
	st := &policyState{facts: f, labels: map[int64]LabelSpec{}}
	groupSet := map[int64]bool{}
	for _, l := range lic {
		spec := LabelSpec{Label: l, GroupIDs: groupsOf[l.ID], AccountIDs: accountsOf[l.ID]}
		f.Labels = append(f.Labels, spec)
		st.labels[l.ID] = spec
		for _, g := range spec.GroupIDs {
			groupSet[g] = true
		}
	}
	for _, l := range apl {
		spec := LabelSpec{Label: l, GroupIDs: groupsOf[l.ID]}
		f.AppLabels = append(f.AppLabels, spec)
		for _, g := range spec.GroupIDs {
			groupSet[g] = true
		}
	}
	groupIDs := slices.Sorted(maps.Keys(groupSet))
	gs, err := q.GroupsByID(ctx, groupIDs)
	if err != nil {
		return nil, err
	}
	for _, g := range gs {
		f.Groups[g.ID] = g
	}
	members, err := q.MembersOfGroups(ctx, groupIDs)
	if err != nil {
		return nil, err
	}
	f.UserGroups, f.DeviceGroups = members.Users, members.Devices
	devIDs := make([]int64, 0, len(members.Devices))
	for id := range members.Devices {
		devIDs = append(devIDs, id)
	}
	devs, err := q.DevicesByID(ctx, devIDs)
	if err != nil {
		return nil, err
	}
	userSet := map[int64]bool{}
	for id := range members.Users {
		userSet[id] = true
	}
	for _, d := range devs {
		f.Devices[d.ID] = d
		if d.UserID != nil {
			userSet[*d.UserID] = true
		}
	}
	userIDs := make([]int64, 0, len(userSet))
	for id := range userSet {
		userIDs = append(userIDs, id)
	}
	us, err := q.UsersByID(ctx, userIDs)
	if err != nil {
		return nil, err
	}
	for _, u := range us {
		f.Users[u.ID] = u
	}
	if f.Assignments, err = q.ActiveAssignmentsOfAppAll(ctx, appID); err != nil {
		return nil, err
	}
	if f.Refused, err = q.FailedLabelAssignments(ctx, appID, now.Add(-refusedFor)); err != nil {
		return nil, err
	}
	if f.Waiting, err = q.WaitingOfApp(ctx, appID); err != nil {
		return nil, err
	}
	if f.Departures, err = q.DeparturesOfGroups(ctx, groupIDs, now.Add(-departuresFor)); err != nil {
		return nil, err
	}
	return st, nil
}

// evaluateApp evaluates one app's policy and carries the plan out through h: chunks are
// transactions of their own when h is the database, savepoints of h's transaction when h is
// one (a preview, rolled back afterwards).
func (s *Service) evaluateApp(ctx context.Context, h *db.DB, appID int64) (*EvalResult, error) {
	st, err := s.loadPolicy(ctx, h, appID)
	if errors.Is(err, model.ErrNotFound) {
		return &EvalResult{AppID: appID}, nil
	}
	if err != nil {
		return nil, err
	}
	return s.carryOut(ctx, h, st)
}

// carryOut plans the facts of st and carries the plan out through h.
func (s *Service) carryOut(ctx context.Context, h *db.DB, st *policyState) (*EvalResult, error) {
	appID := st.facts.App.ID
	f := st.facts
	plan := PlanPolicy(f)
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
				if err := s.reclaimTx(ctx, tx, actor, a, p, r.Reason); err != nil {
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
		req := &assignRequest{AppID: appID, Kind: *spec.Label.LicenseKind, Accounts: spec.AccountIDs, Origin: model.OriginLabel,
			Reason: fmt.Sprintf("label %q", spec.Label.Name), CausedBy: causedBy, Gather: true}
		for _, a := range todo {
			req.Targets = append(req.Targets, a.Holder.target())
		}
		// The planner commits chunk by chunk, each in a transaction of h; in the same
		// transaction the chunk's new assignments are marked as this label's (so that a crash
		// never leaves a label license that no label owns) and their install commands queued.
		// The outbox rows are released once every chunk is recorded (packed: 1,000 per request).
		cmds := 0
		outs, err := s.runChunks(ctx, h, LabelActor(spec.Label), req, false, func(fn func(tx *db.DB) error) error {
			return h.Tx(ctx, func(tx *db.DB) error {
				if err := fn(tx); err != nil {
					return err
				}
				made, err := tx.ClaimLabelAssignments(ctx, appID, labelID, causedBy)
				if err != nil {
					return err
				}
				for _, a := range made {
					if a.Kind != model.LicenseKindDevice || a.DeviceID == nil || !installOnReg[*a.DeviceID] {
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
			})
		})
		var refusal *model.Error
		if e, ok := model.AsError(err); ok {
			refusal, err = e, nil // the whole request is refused (e.g. no account has bought the app)
		}
		if err != nil {
			return nil, fmt.Errorf("policy of app %d: assign through label %d: %w", appID, labelID, err)
		}
		res.InstallCommands += cmds
		reasons := map[string][]int64{}
		for k, pa := range todo {
			var o targetOutcome
			if refusal == nil {
				o = outs[k]
			}
			e := o.Error
			if refusal != nil {
				e = refusal
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
				reasons[pa.Reason] = append(reasons[pa.Reason], o.AssignmentID)
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
		// Each assignment says which group and label it is for (one statement per group).
		if len(reasons) > 0 {
			if err := st.tx(ctx, h, func(tx *db.DB) error {
				for reason, ids := range reasons {
					if err := tx.SetAssignmentReason(ctx, ids, truncate(reason, 1000)); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				return nil, fmt.Errorf("policy of app %d: reasons: %w", appID, err)
			}
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
		if err := s.auditTx(ctx, h, RuleActor("policy"), "policy.evaluate", "App", appID, nil, msg,
			map[string]any{"assigned": len(res.Assigned), "reclaimed": len(res.Reclaimed), "relabelled": res.Relabelled, "waiting": len(waiting)}); err != nil {
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

// EvaluatePolicyQueue evaluates what the queue asks for that is due, oldest rows first, and
// returns how many evaluations it ran. A row without an app asks for everything; a row with
// an app and no holder for the whole app (it also covers the app's holder rows read with it);
// holder rows are evaluated per app, up to holderBatch holders a transaction that also deletes
// them. Whole-app rows are deleted once their evaluation is done (a crash leaves them to be
// evaluated again; evaluation is idempotent). Only the policy lease's holder calls it.
func (s *Service) EvaluatePolicyQueue(ctx context.Context) (int, error) {
	n := 0
	for {
		items, err := s.db.DuePolicyItems(ctx, s.now(), holderBatch)
		if err != nil || len(items) == 0 {
			return n, err
		}
		last := len(items) < holderBatch // the queue was read to its end: no need to look again
		type holders struct{ users, devices, items []int64 }
		whole := map[int64][]int64{}
		some := map[int64]*holders{}
		var apps, holderApps []int64
		var all, ids []int64
		for _, it := range items {
			ids = append(ids, it.ID)
			switch {
			case it.AppID == nil:
				all = append(all, it.ID)
			case it.UserID == nil && it.DeviceID == nil:
				if whole[*it.AppID] == nil {
					apps = append(apps, *it.AppID)
				}
				whole[*it.AppID] = append(whole[*it.AppID], it.ID)
			default:
				h := some[*it.AppID]
				if h == nil {
					h = &holders{}
					some[*it.AppID] = h
					holderApps = append(holderApps, *it.AppID)
				}
				if it.UserID != nil {
					h.users = append(h.users, *it.UserID)
				}
				if it.DeviceID != nil {
					h.devices = append(h.devices, *it.DeviceID)
				}
				h.items = append(h.items, it.ID)
			}
		}
		if len(all) > 0 {
			if _, err := s.EvaluateAllPolicy(ctx); err != nil {
				return n, err
			}
			if err := s.db.DeletePolicyItems(ctx, ids); err != nil {
				return n, err
			}
			n++
			continue
		}
		for _, app := range apps {
			if ctx.Err() != nil {
				return n, ctx.Err()
			}
			if _, err := s.evaluateApp(ctx, s.db, app); err != nil {
				return n, err
			}
			s.evaluations.Add(1)
			done := whole[app]
			if h := some[app]; h != nil {
				done = append(done, h.items...) // the whole app covers its holders
				delete(some, app)
			}
			if err := s.db.DeletePolicyItems(ctx, done); err != nil {
				return n, err
			}
			n++
		}
		for _, app := range holderApps {
			h := some[app]
			if h == nil {
				continue
			}
			if ctx.Err() != nil {
				return n, ctx.Err()
			}
			if _, err := s.evaluateHolders(ctx, app, dedupe(h.users), dedupe(h.devices), h.items); err != nil {
				return n, err
			}
			n++
		}
		if last {
			return n, nil // rows queued meanwhile are found at the scheduler's next look
		}
	}
}

// EvaluateAllPolicy evaluates every app under policy (the periodic full evaluation that heals
// anything an incremental one missed). Every fact is read once in bulk for all the apps
// (readSnapshot) and each app is planned from it; only an app whose plan has something to do
// is evaluated for real (its facts read again, as of now, and the plan carried out), so that a
// full evaluation with nothing to change reads each table once and writes nothing.
func (s *Service) EvaluateAllPolicy(ctx context.Context) (int, error) {
	apps, err := s.db.AppsUnderPolicy(ctx)
	if err != nil {
		return 0, err
	}
	snap, err := s.readSnapshot(ctx, apps)
	if err != nil {
		return 0, err
	}
	for _, app := range apps {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if f := snap.factsOf(app); f != nil && nothingToDo(f, PlanPolicy(f)) {
			continue
		}
		if _, err := s.evaluateApp(ctx, s.db, app); err != nil {
			return 0, err
		}
		s.evaluations.Add(1)
	}
	if err := s.db.PruneDepartures(ctx, s.now().Add(-departuresFor)); err != nil {
		return 0, err
	}
	return len(apps), nil
}

// nothingToDo reports whether carrying the plan out would change nothing.
func nothingToDo(f *PolicyFacts, p *PolicyPlan) bool {
	if len(p.Assign)+len(p.Reclaim)+len(p.Relabel)+len(p.GraceStart)+len(p.GraceEnd) > 0 {
		return false
	}
	w := append([]*model.PolicyWaiting(nil), p.Waiting...)
	sortWaiting(w)
	return sameWaiting(f.Waiting, w)
}

// snapshot is every fact of the apps under policy, read in bulk.
type snapshot struct {
	now          time.Time
	apps         map[int64]*model.App
	labels       *db.PolicyLabels
	groups       map[int64]*model.Group
	userGroups   map[int64][]int64 // group → users
	deviceGroups map[int64][]int64 // group → devices
	users        map[int64]*model.User
	devices      map[int64]*model.Device
	assignments  map[int64][]*model.LicenseAssignment // by app: active ones
	refused      map[int64][]*model.LicenseAssignment // by app
	waiting      map[int64][]*model.PolicyWaiting     // by app
}

// snapshotBatch is the rows of one statement of the bulk reads.
const snapshotBatch = 5000

func (s *Service) readSnapshot(ctx context.Context, apps []int64) (*snapshot, error) {
	now := s.now()
	sn := &snapshot{now: now, apps: map[int64]*model.App{}, groups: map[int64]*model.Group{}, userGroups: map[int64][]int64{}, deviceGroups: map[int64][]int64{},
		users: map[int64]*model.User{}, devices: map[int64]*model.Device{}, assignments: map[int64][]*model.LicenseAssignment{},
		refused: map[int64][]*model.LicenseAssignment{}, waiting: map[int64][]*model.PolicyWaiting{}}
	if len(apps) == 0 {
		return sn, nil
	}
	as, err := s.db.AppsByID(ctx, apps)
	if err != nil {
		return nil, err
	}
	for _, a := range as {
		sn.apps[a.ID] = a
	}
	if sn.labels, err = s.db.AllLabelsWithLinks(ctx); err != nil {
		return nil, err
	}
	groupSet := map[int64]bool{}
	for _, gs := range sn.labels.GroupsOf {
		for _, g := range gs {
			groupSet[g] = true
		}
	}
	groupIDs := slices.Sorted(maps.Keys(groupSet))
	gs, err := s.db.GroupsByID(ctx, groupIDs)
	if err != nil {
		return nil, err
	}
	for _, g := range gs {
		sn.groups[g.ID] = g
	}
	members, err := s.db.MembersOfGroups(ctx, groupIDs)
	if err != nil {
		return nil, err
	}
	needUsers := map[int64]bool{}
	for u, gs := range members.Users {
		needUsers[u] = true
		for _, g := range gs {
			sn.userGroups[g] = append(sn.userGroups[g], u)
		}
	}
	for d, gs := range members.Devices {
		for _, g := range gs {
			sn.deviceGroups[g] = append(sn.deviceGroups[g], d)
		}
	}
	// Devices and users in id order, a batch a statement (a sequential pass beats an IN
	// lookup per member when most of the fleet is covered).
	for after := int64(0); ; {
		ds, err := s.db.DevicesAfter(ctx, after, snapshotBatch)
		if err != nil {
			return nil, err
		}
		for _, d := range ds {
			if len(members.Devices[d.ID]) > 0 {
				sn.devices[d.ID] = d
				if d.UserID != nil {
					needUsers[*d.UserID] = true
				}
			}
		}
		if len(ds) < snapshotBatch {
			break
		}
		after = ds[len(ds)-1].ID
	}
	for after := int64(0); ; {
		us, err := s.db.UsersAfter(ctx, after, snapshotBatch)
		if err != nil {
			return nil, err
		}
		for _, u := range us {
			if needUsers[u.ID] {
				sn.users[u.ID] = u
			}
		}
		if len(us) < snapshotBatch {
			break
		}
		after = us[len(us)-1].ID
	}
	for after := int64(0); ; {
		rs, err := s.db.PolicyAssignmentsAfter(ctx, apps, now.Add(-refusedFor), after, snapshotBatch)
		if err != nil {
			return nil, err
		}
		for _, a := range rs {
			if a.Status == model.AssignmentFailed {
				sn.refused[a.AppID] = append(sn.refused[a.AppID], a)
			} else {
				sn.assignments[a.AppID] = append(sn.assignments[a.AppID], a)
			}
		}
		if len(rs) < snapshotBatch {
			break
		}
		after = rs[len(rs)-1].ID
	}
	ws, err := s.db.WaitingOfApps(ctx, apps)
	if err != nil {
		return nil, err
	}
	for _, w := range ws {
		sn.waiting[w.AppID] = append(sn.waiting[w.AppID], w)
	}
	return sn, nil
}

// factsOf builds one app's facts from the snapshot, as loadPolicy reads them (without the
// departures, which only word reclaims: an app with a reclaim is evaluated for real). nil:
// the app is gone.
func (sn *snapshot) factsOf(appID int64) *PolicyFacts {
	app := sn.apps[appID]
	if app == nil {
		return nil
	}
	f := &PolicyFacts{App: app, Now: sn.now, Groups: map[int64]*model.Group{}, Users: map[int64]*model.User{}, Devices: map[int64]*model.Device{},
		UserGroups: map[int64][]int64{}, DeviceGroups: map[int64][]int64{},
		Assignments: sn.assignments[appID], Refused: sn.refused[appID], Waiting: sn.waiting[appID]}
	groupSet := map[int64]bool{}
	for _, l := range sn.labels.Labels {
		if l.AppID != appID {
			continue
		}
		spec := LabelSpec{Label: l, GroupIDs: sn.labels.GroupsOf[l.ID]}
		if l.Kind == model.LabelApp {
			f.AppLabels = append(f.AppLabels, spec)
		} else {
			spec.AccountIDs = sn.labels.AccountsOf[l.ID]
			f.Labels = append(f.Labels, spec)
		}
		for _, g := range spec.GroupIDs {
			groupSet[g] = true
		}
	}
	groupIDs := slices.Sorted(maps.Keys(groupSet))
	// Each member's groups in group order, as MembersOfGroups gives them.
	for _, g := range groupIDs {
		if gr := sn.groups[g]; gr != nil {
			f.Groups[g] = gr
		}
		for _, u := range sn.userGroups[g] {
			f.UserGroups[u] = append(f.UserGroups[u], g)
			if us := sn.users[u]; us != nil {
				f.Users[u] = us
			}
		}
		for _, d := range sn.deviceGroups[g] {
			f.DeviceGroups[d] = append(f.DeviceGroups[d], g)
			if dv := sn.devices[d]; dv != nil {
				f.Devices[d] = dv
				if dv.UserID != nil && sn.users[*dv.UserID] != nil {
					f.Users[*dv.UserID] = sn.users[*dv.UserID]
				}
			}
		}
	}
	return f
}

// enqueueApps records, inside the caller's transaction, that apps must be evaluated.
func (s *Service) enqueueApps(ctx context.Context, tx *db.DB, apps []int64, reason string) error {
	now := s.now()
	items := make([]*model.PolicyQueueItem, 0, len(apps))
	seen := map[int64]bool{}
	for _, a := range apps {
		if seen[a] {
			continue
		}
		seen[a] = true
		id := a
		items = append(items, &model.PolicyQueueItem{AppID: &id, Reason: truncate(reason, 1000), NotBefore: now, CreatedAt: now})
	}
	return tx.EnqueuePolicy(ctx, items...)
}

// enqueueGroups records that the apps labelled for any of the groups must be evaluated.
func (s *Service) enqueueGroups(ctx context.Context, tx *db.DB, groupIDs []int64, reason string) error {
	if len(groupIDs) == 0 {
		return nil
	}
	apps, err := tx.AppsLabelledForGroups(ctx, groupIDs)
	if err != nil {
		return err
	}
	return s.enqueueApps(ctx, tx, apps, reason)
}

func deref64(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// WatchTransitions makes policy follow the assignment transitions applied through d (each
// database handle once; the service's own is watched from the start, a scheduler with a handle
// of its own adds its own): inside the transaction that applies them, a license label's
// assignment that Apple refused queues its app's evaluation (its holder then waits with
// Apple's reason), and a license that came back to a pool (a completed reclaim, a refusal)
// queues the evaluation of its app when holders wait for it — they are served without anyone
// asking.
func (s *Service) WatchTransitions(d *db.DB) {
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	if s.watched[d] {
		return
	}
	s.watched[d] = true
	d.OnTransitions(func(ctx context.Context, tx *db.DB, applied []model.AppliedTransition) error {
		var refused, freed []int64
		for _, t := range applied {
			if t.Origin == model.OriginLabel && t.To == model.AssignmentFailed {
				refused = append(refused, t.AppID)
			}
			if t.FreesLicense() {
				freed = append(freed, t.AppID)
			}
		}
		if len(refused) > 0 {
			if err := s.enqueueApps(ctx, tx, refused, "Apple refused a label's license"); err != nil {
				return err
			}
		}
		return tx.EnqueueAppsWithWaiting(ctx, dedupe(freed), "licenses came back to a pool")
	})
}

// Per-holder evaluation. A membership change (members set, added or removed, a device upserted
// into or out of a dynamic group, a user removed, a device retired) queues, in its own
// transaction, a row per app concerned and holder. The evaluation reads only those holders'
// facts — their groups among the app's labels' groups, their devices and users, their
// assignments and waiting rows of the app — plus two app-wide aggregates that keep the plan
// fair (the licenses each capped label holds, the holders waiting because a label is short),
// plans them with PlanPolicy and carries the plan out through the same write path as a whole
// app's evaluation, all in one transaction that also deletes the queue rows: a crash leaves
// both the work and the rows undone. Its cost follows the holders evaluated, not the app's
// holders. Label and app-label changes, pool gains and the periodic full evaluation stay
// whole-app.

// holderBatch bounds the holders of one app evaluated in one transaction.
const holderBatch = 1000

// loadHolders reads the facts of some holders of one app. A user's devices and a device's
// user are evaluated with it: a USER label covers a user through the devices it uses, so
// their facts are one.
func (s *Service) loadHolders(ctx context.Context, q *db.DB, appID int64, userIDs, deviceIDs []int64) (*policyState, error) {
	app, err := q.AppByID(ctx, appID)
	if err != nil {
		return nil, fmt.Errorf("policy of app %d: %w", appID, err)
	}
	now := s.now()
	f := &PolicyFacts{App: app, Now: now, Groups: map[int64]*model.Group{}, Users: map[int64]*model.User{}, Devices: map[int64]*model.Device{},
		HeldElsewhere: map[int64]int{}, Ahead: map[int64]WaitingAhead{}}
	pl, err := q.LabelsOfAppWithLinks(ctx, appID)
	if err != nil {
		return nil, err
	}
	st := &policyState{facts: f, labels: map[int64]LabelSpec{}, scope: &holderScope{userOf: map[string]int64{}, devOf: map[string]int64{}}}
	groupSet := map[int64]bool{}
	var capped []int64
	for _, l := range pl.Labels {
		spec := LabelSpec{Label: l, GroupIDs: pl.GroupsOf[l.ID]}
		for _, g := range spec.GroupIDs {
			groupSet[g] = true
		}
		if l.Kind == model.LabelApp {
			f.AppLabels = append(f.AppLabels, spec)
			continue
		}
		spec.AccountIDs = pl.AccountsOf[l.ID]
		f.Labels = append(f.Labels, spec)
		st.labels[l.ID] = spec
		if l.CapCount != nil && l.DeletedAt == nil {
			capped = append(capped, l.ID)
		}
	}
	groupIDs := slices.Sorted(maps.Keys(groupSet))

	// The holders, closed over "a device's user" and "a user's devices".
	devs, err := q.DevicesByID(ctx, deviceIDs)
	if err != nil {
		return nil, err
	}
	userSet := map[int64]bool{}
	for _, id := range userIDs {
		userSet[id] = true
	}
	for _, d := range devs {
		f.Devices[d.ID] = d
		if d.UserID != nil {
			userSet[*d.UserID] = true
		}
	}
	allUsers := slices.Sorted(maps.Keys(userSet))
	us, err := q.UsersByID(ctx, allUsers)
	if err != nil {
		return nil, err
	}
	for _, u := range us {
		f.Users[u.ID] = u
	}
	more, err := q.DevicesOfUsers(ctx, allUsers)
	if err != nil {
		return nil, err
	}
	for _, d := range more {
		f.Devices[d.ID] = d
	}
	allDevices := slices.Sorted(maps.Keys(f.Devices))
	var cuids, serials []string
	for _, id := range allUsers {
		if u := f.Users[id]; u != nil {
			k := model.HolderKeyFor(model.LicenseKindUser, "", u.ClientUserID)
			st.scope.keys, st.scope.userOf[k] = append(st.scope.keys, k), id
			cuids = append(cuids, u.ClientUserID)
		}
	}
	for _, id := range allDevices {
		d := f.Devices[id]
		k := model.HolderKeyFor(model.LicenseKindDevice, d.SerialNumber, "")
		st.scope.keys, st.scope.devOf[k] = append(st.scope.keys, k), id
		serials = append(serials, d.SerialNumber)
	}

	members, err := q.MembershipsOf(ctx, allUsers, allDevices, groupIDs)
	if err != nil {
		return nil, err
	}
	f.UserGroups, f.DeviceGroups = members.Users, members.Devices
	gs, err := q.GroupsByID(ctx, groupIDs)
	if err != nil {
		return nil, err
	}
	for _, g := range gs {
		f.Groups[g.ID] = g
	}
	if f.Assignments, f.Refused, err = q.AssignmentsOfHolders(ctx, appID, cuids, serials, now.Add(-refusedFor)); err != nil {
		return nil, err
	}
	if f.Waiting, err = q.WaitingOfHolders(ctx, appID, st.scope.keys); err != nil {
		return nil, err
	}
	if len(f.Labels) > 0 {
		ahead, err := q.ShortWaitingOfApp(ctx, appID, st.scope.keys)
		if err != nil {
			return nil, err
		}
		for id, a := range ahead {
			f.Ahead[id] = WaitingAhead{N: a.N, First: a.First, Code: a.Code}
		}
	}
	if len(capped) > 0 {
		held, err := q.CountLabelAssignments(ctx, capped)
		if err != nil {
			return nil, err
		}
		for _, a := range f.Assignments {
			if a.LabelID != nil {
				held[*a.LabelID]--
			}
		}
		for id, n := range held {
			f.HeldElsewhere[id] = max(0, n)
		}
	}
	// Departures name the membership change behind a reclaim: read only when a label license
	// may be taken back.
	for _, a := range f.Assignments {
		if a.LabelID != nil {
			if f.Departures, err = q.DeparturesOfHolders(ctx, allUsers, allDevices, groupIDs, now.Add(-departuresFor)); err != nil {
				return nil, err
			}
			break
		}
	}
	return st, nil
}

// evaluateHolders evaluates some holders of one app and deletes the queue rows that asked
// for it, in one transaction.
func (s *Service) evaluateHolders(ctx context.Context, appID int64, userIDs, deviceIDs, itemIDs []int64) (*EvalResult, error) {
	var res *EvalResult
	err := s.db.Tx(ctx, func(tx *db.DB) error {
		st, err := s.loadHolders(ctx, tx, appID, userIDs, deviceIDs)
		switch {
		case errors.Is(err, model.ErrNotFound):
			res = &EvalResult{AppID: appID}
		case err != nil:
			return err
		default:
			if res, err = s.carryOut(ctx, tx, st); err != nil {
				return err
			}
			s.evaluations.Add(1)
		}
		return tx.DeletePolicyItems(ctx, itemIDs)
	})
	if err != nil {
		return nil, fmt.Errorf("policy of app %d: evaluate %d holders: %w", appID, len(userIDs)+len(deviceIDs), err)
	}
	return res, nil
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

// enqueueHolders records, inside the caller's transaction, that the holders (users, devices)
// must be evaluated for every app labelled for any of the groups (those whose membership
// changed): a row per app and holder.
func (s *Service) enqueueHolders(ctx context.Context, tx *db.DB, groupIDs, userIDs, deviceIDs []int64, reason string) error {
	if len(groupIDs) == 0 || len(userIDs)+len(deviceIDs) == 0 {
		return nil
	}
	apps, err := tx.AppsLabelledForGroups(ctx, groupIDs)
	if err != nil || len(apps) == 0 {
		return err
	}
	refs := make([]db.HolderRef, 0, len(apps)*(len(userIDs)+len(deviceIDs)))
	for _, a := range apps {
		for _, u := range dedupe(userIDs) {
			refs = append(refs, db.HolderRef{AppID: a, UserID: u})
		}
		for _, d := range dedupe(deviceIDs) {
			refs = append(refs, db.HolderRef{AppID: a, DeviceID: d})
		}
	}
	return tx.EnqueuePolicyHolders(ctx, refs, truncate(reason, 1000), s.now())
}

// Evaluations counts the evaluations this service has carried out (whole apps and batches of
// holders; previews and explanations, rolled back, not included).
func (s *Service) Evaluations() int64 { return s.evaluations.Load() }

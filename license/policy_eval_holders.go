package license

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"orchard/db"
	"orchard/model"
)

// Per-holder evaluation. A membership change (members set, added or removed, a device upserted
// into or out of a dynamic group, a user removed, a device retired) queues, in its own
// transaction, a row per app concerned and holder. The evaluation reads only those holders'
// facts — their groups among the app's labels' groups, their devices and users, their
// assignments and waiting rows of the app — plus two app-wide aggregates that keep the plan
// fair (the licenses each capped label holds, the holders waiting because a label is short),
// plans them with PlanPolicy and carries the plan out through the same write path as a whole
// app's evaluation, all in one transaction that also deletes the queue rows: a crash leaves
// both the work and the rows undone. A membership call of a few holders (inlineHolders)
// evaluates them itself instead, in its own transaction, with what it read already (the users,
// the departures it recorded): no queue row is written, read or deleted. Its cost follows the
// holders evaluated, not the app's holders. Label and app-label changes, pool gains and the
// periodic full evaluation stay whole-app.

// holderBatch bounds the holders of one app evaluated in one transaction.
const holderBatch = 1000

// loadHolders reads the facts of some holders of one app. A user's devices and a device's
// user are evaluated with it: a USER label covers a user through the devices it uses, so
// their facts are one. What k holds was read in q's transaction already and is not read again;
// the app's labels, when k has none, are read (and locked) first.
func (s *Service) loadHolders(ctx context.Context, q *db.DB, appID int64, k knownFacts, userIDs, deviceIDs []int64) (*policyState, error) {
	pl, known := k.labels, k.users
	if pl == nil {
		var err error
		if pl, err = q.LabelsOfAppWithLinks(ctx, appID); err != nil {
			return nil, err
		}
	}
	app, err := q.AppByID(ctx, appID)
	if err != nil {
		return nil, fmt.Errorf("policy of app %d: %w", appID, err)
	}
	now := s.now()
	f := &PolicyFacts{App: app, Now: now, Groups: map[int64]*model.Group{}, Users: map[int64]*model.User{}, Devices: map[int64]*model.Device{},
		HeldElsewhere: map[int64]int{}, Ahead: map[int64]WaitingAhead{}}
	st := &policyState{facts: f, labels: map[int64]LabelSpec{}, scope: &holderScope{userOf: map[string]int64{}, devOf: map[string]int64{}}}
	groupSet := map[int64]bool{}
	var capped []int64
	for _, l := range pl.Labels {
		if l.AppID != appID {
			continue
		}
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
	var unread []int64
	for _, id := range allUsers {
		if u := known[id]; u != nil {
			f.Users[id] = u
		} else {
			unread = append(unread, id)
		}
	}
	us, err := q.UsersByID(ctx, unread)
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
	for _, g := range groupIDs {
		if gr := pl.Groups[g]; gr != nil {
			f.Groups[g] = gr // the names its reasons are worded with
		}
	}
	if f.Assignments, f.Refused, err = q.AssignmentsOfHolders(ctx, appID, cuids, serials, now.Add(-refusedFor)); err != nil {
		return nil, err
	}
	waiting, ahead, err := q.WaitingOfHoldersAndAhead(ctx, appID, st.scope.keys)
	if err != nil {
		return nil, err
	}
	f.Waiting = waiting
	if len(f.Labels) > 0 {
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
	// With the departures the change itself recorded (the newest), the others are read only
	// if a reclaim is not explained by them (carryOut).
	readDepartures := func() ([]*model.PolicyDeparture, error) {
		return q.DeparturesOfHolders(ctx, allUsers, allDevices, groupIDs, now.Add(-departuresFor))
	}
	for _, a := range f.Assignments {
		if a.LabelID == nil {
			continue
		}
		if k.departures != nil {
			f.Departures = slices.SortedFunc(slices.Values(k.departures), func(a, b *model.PolicyDeparture) int { return cmp.Compare(b.ID, a.ID) })
			st.moreDepartures = readDepartures
		} else if f.Departures, err = readDepartures(); err != nil {
			return nil, err
		}
		break
	}
	st.audits = k.audits
	return st, nil
}

// knownFacts are facts of a per-holder evaluation read already in its transaction: the apps'
// labels (read and locked), users, and the departures the change recorded (newest of all).
type knownFacts struct {
	labels     *db.PolicyLabels
	users      map[int64]*model.User
	departures []*model.PolicyDeparture
	// audits, when set, collects the evaluations' audit events for the change to write with
	// its own.
	audits *[]*model.AuditEvent
}

// evaluateHolders evaluates some holders of one app and deletes the queue rows that asked
// for it, in one transaction.
func (s *Service) evaluateHolders(ctx context.Context, appID int64, userIDs, deviceIDs, itemIDs []int64) (*EvalResult, error) {
	var res *EvalResult
	err := s.db.Tx(ctx, func(tx *db.DB) error {
		var err error
		if res, err = s.evaluateHoldersTx(ctx, tx, appID, knownFacts{}, userIDs, deviceIDs); err != nil {
			return err
		}
		return tx.DeletePolicyItems(ctx, itemIDs)
	})
	if err != nil {
		return nil, fmt.Errorf("policy of app %d: evaluate %d holders: %w", appID, len(userIDs)+len(deviceIDs), err)
	}
	return res, nil
}

// evaluateHoldersTx evaluates some holders of one app inside tx (k: what tx read already).
func (s *Service) evaluateHoldersTx(ctx context.Context, tx *db.DB, appID int64, k knownFacts, userIDs, deviceIDs []int64) (*EvalResult, error) {
	st, err := s.loadHolders(ctx, tx, appID, k, userIDs, deviceIDs)
	switch {
	case errors.Is(err, model.ErrNotFound):
		return &EvalResult{AppID: appID}, nil
	case err != nil:
		return nil, err
	}
	res, err := s.carryOut(ctx, tx, st)
	if err != nil {
		return nil, err
	}
	s.evaluations.Add(1)
	return res, nil
}

// inlineHolders bounds the holders of a membership change that the change evaluates itself,
// in its own transaction; a larger change queues its holders for the policy lease's holder
// (whose evaluation packs many holders' assignments into Apple's requests of 1,000).
const inlineHolders = 10

// evaluateOrEnqueueHolders has the holders (users, devices) of a membership change of the
// groups evaluated for every app labelled for any of the groups, inside the change's
// transaction: at once, when they are few (inlineHolders), otherwise queued, a row per app and
// holder, for the lease's holder. Evaluated at once, the evaluation commits or rolls back
// with the change — a crash leaves neither, so nothing is lost and nothing is left to queue;
// it runs once, in the change's replica; and it holds the apps' label rows (locked as they
// are read) until the commit, so evaluations of one app never interleave and a capped
// label's count is taken under its lock (capRoom) — the policy lease's guarantees without the
// queue's three statements.
func (s *Service) evaluateOrEnqueueHolders(ctx context.Context, tx *db.DB, groupIDs, userIDs, deviceIDs []int64, reason string, k knownFacts) error {
	userIDs, deviceIDs = dedupe(userIDs), dedupe(deviceIDs)
	if len(userIDs)+len(deviceIDs) > inlineHolders {
		return s.enqueueHolders(ctx, tx, groupIDs, userIDs, deviceIDs, reason)
	}
	if len(groupIDs) == 0 || len(userIDs)+len(deviceIDs) == 0 {
		return nil
	}
	var err error
	if k.labels, err = tx.LabelsOfGroupsAppsWithLinks(ctx, groupIDs); err != nil {
		return err
	}
	var apps []int64
	for _, l := range k.labels.Labels {
		if len(apps) == 0 || apps[len(apps)-1] != l.AppID {
			apps = append(apps, l.AppID)
		}
	}
	for _, app := range dedupe(apps) {
		if _, err := s.evaluateHoldersTx(ctx, tx, app, k, userIDs, deviceIDs); err != nil {
			return fmt.Errorf("policy of app %d: evaluate %d holders: %w", app, len(userIDs)+len(deviceIDs), err)
		}
	}
	return nil
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

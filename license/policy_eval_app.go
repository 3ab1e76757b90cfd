package license

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"orchard/db"
	"orchard/model"
)

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

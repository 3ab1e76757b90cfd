package license

import (
	"context"
	"maps"
	"slices"
	"time"

	"orchard/db"
	"orchard/model"
)

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
		ds, err := s.db.PolicyDevicesAfter(ctx, after, snapshotBatch)
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
		us, err := s.db.PolicyUsersAfter(ctx, after, snapshotBatch)
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

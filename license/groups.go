package license

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"orchard/db"
	"orchard/model"
)

// Groups and their members, as the directory and MDM integrations push them (doc/design.md §2.4). A
// membership change is written with a durable evaluation row for every app labelled for the
// group, in one transaction, so that the licenses follow (R4a) whichever replica evaluates.
// A dynamic group's members are the devices matching its rule; Orchard keeps them current as
// devices are upserted, and they cannot be set by hand.

// GroupInput creates or updates a group by the directory's id.
type GroupInput struct {
	ExternalID string
	Name       *string
	// Rule, when set, makes the group dynamic (or changes its rule).
	Rule *model.GroupRule
}

// UpsertGroup creates or updates a group. A new or changed rule recomputes the group's members
// over every device.
func (s *Service) UpsertGroup(ctx context.Context, actor Actor, in GroupInput) (*model.Group, error) {
	ext := strings.TrimSpace(in.ExternalID)
	if ext == "" || len(ext) > 255 {
		return nil, model.FieldError([]string{"input", "externalId"}, "externalId must be 1 to 255 characters")
	}
	if in.Name != nil && len(strings.TrimSpace(*in.Name)) > 255 {
		return nil, model.FieldError([]string{"input", "name"}, "name must be at most 255 characters")
	}
	var rule *string
	if in.Rule != nil {
		if err := canonicalRule(in.Rule); err != nil {
			return nil, err
		}
		b, err := json.Marshal(in.Rule)
		if err != nil {
			return nil, fmt.Errorf("encode group rule: %w", err)
		}
		r := string(b)
		rule = &r
	}
	var g *model.Group
	err := s.db.Tx(ctx, func(tx *db.DB) error {
		var err error
		g, err = tx.GroupByExternalID(ctx, ext)
		created := false
		switch {
		case errors.Is(err, model.ErrNotFound):
			g = &model.Group{ExternalID: ext, CreatedAt: s.now()}
			created = true
		case err != nil:
			return err
		}
		if in.Name != nil {
			g.Name = strings.TrimSpace(*in.Name)
		}
		ruleChanged := rule != nil && (g.Rule == nil || *g.Rule != *rule)
		if rule != nil && !created && g.Rule == nil {
			if users, devices, err := tx.GroupMemberIDs(ctx, g.ID); err != nil {
				return err
			} else if len(users)+len(devices) > 0 {
				return model.FieldError([]string{"input", "rule"}, "group %s has members set by hand; remove them (setGroupMembers with none) before giving it a rule", ext)
			}
		}
		if rule != nil {
			g.Rule = rule
		}
		g.UpdatedAt = s.now()
		if err := tx.SaveGroup(ctx, g); err != nil {
			return err
		}
		if ruleChanged {
			if err := s.refillDynamicGroup(ctx, tx, g, *in.Rule); err != nil {
				return err
			}
		}
		action, msg := "group.update", "group "+ext+" updated"
		if created {
			action, msg = "group.create", "group "+ext+" added"
		}
		return s.auditTx(ctx, tx, actor, action, "Group", g.ID, nil, msg, nil)
	})
	if err == nil {
		s.kick(0)
	}
	return g, err
}

// canonicalRule checks a dynamic group's rule and brings its identifiers to their canonical
// form (model/ident.go), in place: countries upper-cased and assigned, the minimum OS version
// a bounded dotted number.
func canonicalRule(r *model.GroupRule) error {
	for i, p := range r.Platforms {
		if !validPlatform(p) {
			return model.FieldError([]string{"input", "rule", "platforms", strconv.Itoa(i)}, "unknown platform %q", p)
		}
	}
	if r.MinOSVersion != "" {
		v, err := model.CanonicalOSVersion(r.MinOSVersion, "input", "rule", "minOsVersion")
		if err != nil {
			return err
		}
		r.MinOSVersion = v
	}
	for i, c := range r.Countries {
		cc, err := model.CanonicalCountry(c, "input", "rule", "countries", strconv.Itoa(i))
		if err != nil {
			return err
		}
		r.Countries[i] = cc
	}
	for i, st := range r.Statuses {
		if st != model.DeviceActive && st != model.DeviceRetired {
			return model.FieldError([]string{"input", "rule", "statuses", strconv.Itoa(i)}, "unknown device status %q", st)
		}
	}
	return nil
}

// refillDynamicGroup sets a dynamic group's members to the devices matching its rule, reading
// the devices in batches.
func (s *Service) refillDynamicGroup(ctx context.Context, tx *db.DB, g *model.Group, rule model.GroupRule) error {
	_, current, err := tx.GroupMemberIDs(ctx, g.ID)
	if err != nil {
		return err
	}
	isMember := map[int64]bool{}
	for _, id := range current {
		isMember[id] = true
	}
	var add, remove []int64
	matched := map[int64]bool{}
	after := int64(0)
	for {
		devs, err := tx.DevicesAfter(ctx, after, 1000)
		if err != nil {
			return err
		}
		if len(devs) == 0 {
			break
		}
		for _, d := range devs {
			if rule.Matches(d) {
				matched[d.ID] = true
				if !isMember[d.ID] {
					add = append(add, d.ID)
				}
			}
		}
		after = devs[len(devs)-1].ID
	}
	for _, id := range current {
		if !matched[id] {
			remove = append(remove, id)
		}
	}
	return s.changeMembers(ctx, tx, g, nil, add, nil, remove, model.DepartureNoMatch, "the rule of dynamic group "+g.ExternalID+" changed")
}

// changeMembers adds and removes members of a group, records departures and queues the
// evaluation of the apps labelled for it. It returns how many were added and removed.
func (s *Service) changeMembers(ctx context.Context, tx *db.DB, g *model.Group, addUsers, addDevices, rmUsers, rmDevices []int64, how model.DepartureHow, why string) error {
	_, _, err := s.changeMembersN(ctx, tx, g, addUsers, addDevices, rmUsers, rmDevices, how, why, knownFacts{})
	return err
}

// changeMembersN is changeMembers answering how many were added and removed; k holds what tx
// read already (users), which the evaluation does not read again, and where it leaves its
// audit events (or nothing).
func (s *Service) changeMembersN(ctx context.Context, tx *db.DB, g *model.Group, addUsers, addDevices, rmUsers, rmDevices []int64, how model.DepartureHow, why string, k knownFacts) (int, int, error) {
	now := s.now()
	au, ad, err := tx.AddGroupMembers(ctx, g.ID, addUsers, addDevices, now)
	if err != nil {
		return 0, 0, err
	}
	ru, rd, err := tx.RemoveGroupMembers(ctx, g.ID, rmUsers, rmDevices)
	if err != nil {
		return 0, 0, err
	}
	deps := make([]*model.PolicyDeparture, 0, len(ru)+len(rd))
	for _, id := range ru {
		uid := id
		deps = append(deps, &model.PolicyDeparture{GroupID: g.ID, UserID: &uid, How: how, At: now})
	}
	for _, id := range rd {
		did := id
		deps = append(deps, &model.PolicyDeparture{GroupID: g.ID, DeviceID: &did, How: how, At: now})
	}
	if err := tx.InsertDepartures(ctx, deps); err != nil {
		return 0, 0, err
	}
	added, removed := len(au)+len(ad), len(ru)+len(rd)
	if added+removed > 0 {
		// Only the members that came or went are evaluated (policy_eval_holders.go).
		if err := s.evaluateOrEnqueueHolders(ctx, tx, []int64{g.ID}, append(au, ru...), append(ad, rd...), why, knownFacts{users: k.users, departures: deps, audits: k.audits}); err != nil {
			return 0, 0, err
		}
	}
	return added, removed, nil
}

// MemberRef names a member: a user by id or external id, or a device by id or serial number,
// as an assignment's Target names its holder (both are resolved by readTargets).
type MemberRef = Target

// MembersResult is what a membership call did.
type MembersResult struct {
	Group   *model.Group
	Added   int
	Removed int
	// Errors name the members that were refused (unknown ones), by index.
	Errors []*model.Error
}

// MembersOp says what a membership call does.
type MembersOp int

const (
	MembersSet    MembersOp = iota // replace the members
	MembersAdd                     // add these
	MembersRemove                  // remove these
)

// ChangeGroupMembers sets, adds or removes members of a (directory) group.
func (s *Service) ChangeGroupMembers(ctx context.Context, actor Actor, groupID int64, groupExternalID string, op MembersOp, refs []MemberRef) (*MembersResult, error) {
	if len(refs) == 0 && op != MembersSet { // the most: @constraint on GroupMembersInput.members
		return nil, model.FieldError([]string{"input", "members"}, "give at least one member")
	}
	res := &MembersResult{}
	err := s.db.Tx(ctx, func(tx *db.DB) error {
		res.Errors, res.Added, res.Removed = nil, 0, 0
		var g *model.Group
		var err error
		switch {
		case groupID != 0:
			g, err = tx.GroupByID(ctx, groupID)
		case strings.TrimSpace(groupExternalID) != "":
			g, err = tx.GroupByExternalID(ctx, strings.TrimSpace(groupExternalID))
		default:
			return model.FieldError([]string{"input", "group"}, "give groupId or groupExternalId")
		}
		if errors.Is(err, model.ErrNotFound) {
			return &model.Error{Code: model.CodeNotFound, Field: []string{"input", "group"}, Message: "no such group; create it with upsertGroup first"}
		}
		if err != nil {
			return err
		}
		if g.Dynamic() {
			return model.FieldError([]string{"input", "group"}, "group %s is dynamic: its members are the devices matching its rule", g.ExternalID)
		}
		res.Group = g
		users, devices, known, errs, err := s.resolveMembers(ctx, tx, refs)
		if err != nil {
			return err
		}
		res.Errors = errs
		var addU, addD, rmU, rmD []int64
		switch op {
		case MembersAdd:
			addU, addD = users, devices
		case MembersRemove:
			rmU, rmD = users, devices
		case MembersSet:
			curU, curD, err := tx.GroupMemberIDs(ctx, g.ID)
			if err != nil {
				return err
			}
			addU, addD = missing(users, curU), missing(devices, curD)
			rmU, rmD = missing(curU, users), missing(curD, devices)
		}
		why := "membership of group " + g.ExternalID + " changed"
		// The evaluation's audit events are written with the change's, in one statement.
		var audits []*model.AuditEvent
		res.Added, res.Removed, err = s.changeMembersN(ctx, tx, g, addU, addD, rmU, rmD, model.DepartureRemoved, why, knownFacts{users: known, audits: &audits})
		if err != nil {
			return err
		}
		e, err := auditEvent(actor, "group.members", "Group", g.ID, nil,
			fmt.Sprintf("group %s: %d members added, %d removed, %d refused", g.ExternalID, res.Added, res.Removed, len(res.Errors)), nil)
		if err != nil {
			return err
		}
		return tx.InsertAudits(ctx, append(audits, e))
	})
	if err == nil {
		s.kick(0)
	}
	return res, err
}

func missing(want, have []int64) []int64 {
	h := make(map[int64]bool, len(have))
	for _, id := range have {
		h[id] = true
	}
	var out []int64
	for _, id := range want {
		if !h[id] {
			h[id] = true
			out = append(out, id)
		}
	}
	return out
}

// resolveMembers resolves member references in bulk (readTargets); unknown members get an
// error each, named by index.
func (s *Service) resolveMembers(ctx context.Context, tx *db.DB, refs []MemberRef) (users, devices []int64, known map[int64]*model.User, errs []*model.Error, err error) {
	named, err := readTargets(ctx, tx, refs, false)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("group members: %w", err)
	}
	for i, r := range refs {
		field := []string{"input", "members", strconv.Itoa(i)}
		var u *model.User
		var d *model.Device
		switch {
		case r.UserID != 0:
			u = named.usersByID[r.UserID]
		case r.ExternalID != "":
			u = named.usersByExternalID[r.ExternalID]
		case r.DeviceID != 0:
			d = named.devicesByID[r.DeviceID]
		case r.SerialNumber != "":
			d = named.devicesBySerial[model.SerialNumberKey(r.SerialNumber)]
		default:
			errs = append(errs, model.FieldError(field, "give a user (userId or externalId) or a device (deviceId or serialNumber)"))
			continue
		}
		switch {
		case u != nil:
			users = append(users, u.ID)
		case d != nil:
			devices = append(devices, d.ID)
		case r.UserID != 0 || r.ExternalID != "":
			errs = append(errs, &model.Error{Code: model.CodeNotFound, Field: field, Message: "no such user" + quoted(r.ExternalID) + "; upsert it first"})
		default:
			errs = append(errs, &model.Error{Code: model.CodeNotFound, Field: field, Message: "no such device" + quoted(r.SerialNumber) + "; upsert it first"})
		}
	}
	return users, devices, named.usersByID, errs, nil
}

func quoted(s string) string {
	if s == "" {
		return ""
	}
	return fmt.Sprintf(" %q", s)
}

// leaveAllGroups takes a removed user or a retired device out of every group, inside the
// caller's transaction, and queues the evaluation of the apps labelled for those groups.
func (s *Service) leaveAllGroups(ctx context.Context, tx *db.DB, userID, deviceID int64, how model.DepartureHow, why string) error {
	groups, err := tx.LeaveAllGroups(ctx, userID, deviceID)
	if err != nil || len(groups) == 0 {
		return err
	}
	now := s.now()
	deps := make([]*model.PolicyDeparture, 0, len(groups))
	for _, g := range groups {
		dep := &model.PolicyDeparture{GroupID: g, How: how, At: now}
		if userID != 0 {
			uid := userID
			dep.UserID = &uid
		} else {
			did := deviceID
			dep.DeviceID = &did
		}
		deps = append(deps, dep)
	}
	if err := tx.InsertDepartures(ctx, deps); err != nil {
		return err
	}
	if userID != 0 {
		return s.enqueueHolders(ctx, tx, groups, []int64{userID}, nil, why)
	}
	return s.enqueueHolders(ctx, tx, groups, nil, []int64{deviceID}, why)
}

// dynamicGroups caches the dynamic groups and their rules for one batch of device upserts.
type dynamicGroups struct {
	groups []*model.Group
	rules  []model.GroupRule
}

func (s *Service) loadDynamicGroups(ctx context.Context, tx *db.DB) (*dynamicGroups, error) {
	gs, err := tx.DynamicGroups(ctx)
	if err != nil {
		return nil, err
	}
	out := &dynamicGroups{}
	for _, g := range gs {
		var r model.GroupRule
		if err := json.Unmarshal([]byte(*g.Rule), &r); err != nil {
			return nil, fmt.Errorf("group %d: rule: %w", g.ID, err)
		}
		out.groups, out.rules = append(out.groups, g), append(out.rules, r)
	}
	return out, nil
}

// syncDeviceGroups keeps a device's dynamic memberships current after an upsert and queues
// the evaluation of the apps labelled for the groups it is in (or was in) when anything that
// coverage depends on changed: its dynamic groups, its user, its shared-iPad flag or status.
func (s *Service) syncDeviceGroups(ctx context.Context, tx *db.DB, dyn *dynamicGroups, dev *model.Device, relevantChange bool) error {
	if len(dyn.groups) == 0 && !relevantChange {
		return nil
	}
	groups, err := tx.GroupIDsOfDevice(ctx, dev.ID)
	if err != nil {
		return err
	}
	in := map[int64]bool{}
	for _, g := range groups {
		in[g] = true
	}
	touched := []int64{}
	for i, g := range dyn.groups {
		match := dyn.rules[i].Matches(dev)
		switch {
		case match && !in[g.ID]:
			if _, _, err := tx.AddGroupMembers(ctx, g.ID, nil, []int64{dev.ID}, s.now()); err != nil {
				return err
			}
			touched = append(touched, g.ID)
		case !match && in[g.ID]:
			if _, _, err := tx.RemoveGroupMembers(ctx, g.ID, nil, []int64{dev.ID}); err != nil {
				return err
			}
			did := dev.ID
			if err := tx.InsertDepartures(ctx, []*model.PolicyDeparture{{GroupID: g.ID, DeviceID: &did, How: model.DepartureNoMatch, At: s.now()}}); err != nil {
				return err
			}
			touched = append(touched, g.ID)
		}
	}
	why := "device " + dev.SerialNumber + " changed"
	if relevantChange {
		// Its user, shared-iPad flag or status changed: the user it had may lose coverage too,
		// and which user that was is not known here — the whole apps are evaluated.
		return s.enqueueGroups(ctx, tx, append(touched, groups...), why)
	}
	return s.enqueueHolders(ctx, tx, touched, nil, []int64{dev.ID}, why)
}

package license

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"orchard/model"
)

// The desired state of one app under policy, and its difference from what labels gave: a pure
// function of the facts (labels, memberships, holders, assignments), so that evaluation,
// preview and explain share one decision and the decision is table-tested without a database.
//
// The rules:
//   - A live license label covers the members of its groups: a USER label the users (and the
//     users of the non-shared devices that are members), a DEVICE label the devices. Retired
//     devices and removed users are covered by nothing.
//   - R10: a shared iPad takes only DEVICE licenses (a USER label leaves it out, saying so), and
//     only when an app label of the app covers it too.
//   - A holder covered by several labels of one app holds one license: it keeps the one it has
//     while any of them covers it (handed to a covering label when the label that made it no
//     longer does — no Apple request), and a new one comes through the first covering label
//     (by id) whose cap has room.
//   - Only what a label gave is reclaimed: a holder that holds an admin's, a conversion's or a
//     found license of the app is served and never touched.
//   - A holder no longer covered gives its label license back at once, or after the label's
//     grace time (a holder back in scope within it keeps the license and nothing is sent).
//   - Holders a label cannot serve wait, first covered first served: new holders come after
//     those already waiting, whatever the order of ids.
//   - A plan may cover only some holders of the app (a membership change evaluates only the
//     holders it affects). The app-wide figures that keep it fair come as aggregates: the
//     licenses each label holds for other holders count against its cap, and a holder does not
//     take a license from a label while holders covered before it wait because the label is
//     short — it joins the end of the queue, to be served in order when licenses appear.

// LabelSpec is a label with its groups and its accounts in priority order.
type LabelSpec struct {
	Label      *model.Label
	GroupIDs   []int64
	AccountIDs []int64
}

// PolicyFacts is everything the desired state of one app depends on.
type PolicyFacts struct {
	App *model.App
	// Labels are the app's license labels (deleted ones too), AppLabels its app labels.
	Labels    []LabelSpec
	AppLabels []LabelSpec
	Groups    map[int64]*model.Group
	Users     map[int64]*model.User
	Devices   map[int64]*model.Device
	// UserGroups and DeviceGroups map members of the labels' groups to their groups.
	UserGroups   map[int64][]int64
	DeviceGroups map[int64][]int64
	// Assignments are the app's active assignments (any origin).
	Assignments []*model.LicenseAssignment
	// Refused are label assignments Apple refused lately, not asked for again meanwhile.
	Refused []*model.LicenseAssignment
	// Waiting are the holders left waiting by the last evaluation (for the fair order).
	Waiting []*model.PolicyWaiting
	// Departures say who left which group, newest first (for reclaim reasons).
	Departures []*model.PolicyDeparture
	Now        time.Time

	// HeldElsewhere and Ahead are set when the facts hold only some holders of the app:
	// HeldElsewhere counts, per label, the licenses it holds for holders outside the facts;
	// Ahead says, per label, who outside the facts waits because the label is short.
	HeldElsewhere map[int64]int
	Ahead         map[int64]WaitingAhead
}

// WaitingAhead is how many holders (outside the facts) wait for a label because it is short,
// since when the earliest of them was covered, and with which code.
type WaitingAhead struct {
	N     int
	First time.Time
	Code  model.Code
}

// PolicyHolder is a device or user a label covers.
type PolicyHolder struct {
	Kind   model.LicenseKind
	Key    string // the assignment holder key: D:<serial> or U:<clientUserId>
	Device *model.Device
	User   *model.User
}

func (h PolicyHolder) target() Target {
	if h.Kind == model.LicenseKindDevice {
		return Target{DeviceID: h.Device.ID}
	}
	return Target{UserID: h.User.ID}
}

// Name names the holder for people.
func (h PolicyHolder) Name() string {
	if h.Kind == model.LicenseKindDevice {
		return "device " + h.Device.SerialNumber
	}
	return "user " + h.User.ExternalID
}

// PlannedAssign is a license to ask for through a label.
type PlannedAssign struct {
	LabelID        int64
	Holder         PolicyHolder
	Reason         string
	FirstCoveredAt time.Time
}

// PlannedReclaim is a label license to take back.
type PlannedReclaim struct {
	Assignment *model.LicenseAssignment
	LabelID    int64
	Reason     string
}

// PolicyPlan is what evaluation must do for one app.
type PolicyPlan struct {
	// Assign, in fair order (first covered first).
	Assign  []PlannedAssign
	Reclaim []PlannedReclaim
	// Relabel hands assignments (by id) to another covering label (label id → assignment ids).
	Relabel map[int64][]int64
	// GraceStart and GraceEnd start and stop the grace time of assignments.
	GraceStart []int64
	GraceEnd   []int64
	// NextDue is when a running grace time ends (evaluate again then).
	NextDue *time.Time
	// Waiting are covered holders the plan itself leaves out (cap reached, a rule of R10,
	// refused by Apple); the evaluation adds those the pools cannot serve.
	Waiting []*model.PolicyWaiting
	// Kept counts covered holders already served by a label license.
	Kept int
	// Held counts, per label, the licenses it holds once the plan is carried out (before the
	// new assignments).
	Held map[int64]int
}

type coverage struct {
	holder PolicyHolder
	labels []int64 // covering live labels, in id order
	groups map[int64]int64
}

// PlanPolicy computes the plan of one app from its facts.
func PlanPolicy(f *PolicyFacts) *PolicyPlan {
	p := &PolicyPlan{Relabel: map[int64][]int64{}, Held: map[int64]int{}}
	labels := map[int64]LabelSpec{}
	for _, l := range f.Labels {
		labels[l.Label.ID] = l
	}
	firstCovered := map[string]time.Time{}
	for _, w := range f.Waiting {
		if t, ok := firstCovered[w.HolderKey]; !ok || w.FirstCoveredAt.Before(t) {
			firstCovered[w.HolderKey] = w.FirstCoveredAt
		}
	}
	leftOut := map[string]*model.PolicyWaiting{} // by label/holder
	leave := func(labelID int64, h PolicyHolder, code model.Code, reason string) {
		k := fmt.Sprintf("%d/%s", labelID, h.Key)
		if leftOut[k] != nil {
			return
		}
		w := &model.PolicyWaiting{LabelID: labelID, HolderKey: h.Key, AppID: f.App.ID, Kind: h.Kind, Code: code, Reason: reason,
			FirstCoveredAt: firstOr(firstCovered, h.Key, f.Now), UpdatedAt: f.Now}
		if h.Device != nil {
			w.DeviceID = &h.Device.ID
		}
		if h.User != nil {
			w.UserID = &h.User.ID
		}
		leftOut[k] = w
		p.Waiting = append(p.Waiting, w)
	}

	covered := coverageOf(f, leave)

	// What is held now.
	served := map[string]bool{}
	for _, a := range f.Assignments {
		if a.HolderKey == nil {
			continue
		}
		key := *a.HolderKey
		if a.Origin != model.OriginLabel || a.LabelID == nil {
			served[key] = true // an admin's, a conversion's or a found license: never ours to take
			continue
		}
		if a.Status == model.AssignmentReclaiming {
			served[key] = true // on its way back; a new one once it is back
			continue
		}
		c := covered[key]
		if c != nil {
			served[key] = true
			if contains(c.labels, *a.LabelID) {
				p.Held[*a.LabelID]++
				p.Kept++
				if a.LabelOutSince != nil {
					p.GraceEnd = append(p.GraceEnd, a.ID)
				}
				continue
			}
			to := c.labels[0]
			p.Relabel[to] = append(p.Relabel[to], a.ID)
			p.Held[to]++
			p.Kept++
			continue
		}
		// No label covers the holder any more.
		spec, live := labels[*a.LabelID]
		grace := int64(0)
		if live && spec.Label.DeletedAt == nil {
			grace = spec.Label.GraceSeconds
		}
		if grace > 0 {
			since := f.Now
			if a.LabelOutSince != nil {
				since = *a.LabelOutSince
			} else {
				p.GraceStart = append(p.GraceStart, a.ID)
			}
			end := since.Add(time.Duration(grace) * time.Second)
			if f.Now.Before(end) {
				served[key] = true
				p.Held[*a.LabelID]++
				if p.NextDue == nil || end.Before(*p.NextDue) {
					e := end
					p.NextDue = &e
				}
				continue
			}
		}
		p.Reclaim = append(p.Reclaim, PlannedReclaim{Assignment: a, LabelID: *a.LabelID, Reason: reclaimReason(f, spec, live, a)})
	}
	refused := map[string]*model.LicenseAssignment{}
	for _, a := range f.Refused {
		k := holderKeyOf(a)
		if k != "" && refused[k] == nil {
			refused[k] = a
		}
	}

	// Who must get a license, in fair order.
	var todo []*coverage
	for key, c := range covered {
		if !served[key] {
			todo = append(todo, c)
		}
	}
	sort.Slice(todo, func(i, j int) bool {
		ti, tj := firstOr(firstCovered, todo[i].holder.Key, f.Now), firstOr(firstCovered, todo[j].holder.Key, f.Now)
		if !ti.Equal(tj) {
			return ti.Before(tj)
		}
		return holderLess(todo[i].holder, todo[j].holder)
	})
	room := map[int64]int64{} // label id → licenses left under its cap (-1: no cap)
	for _, l := range f.Labels {
		room[l.Label.ID] = -1
		if l.Label.CapCount != nil {
			room[l.Label.ID] = max(0, *l.Label.CapCount-int64(p.Held[l.Label.ID]+f.HeldElsewhere[l.Label.ID]))
		}
	}
	for _, c := range todo {
		if a := refused[c.holder.Key]; a != nil {
			msg := "Apple refused the license"
			if a.ErrorMessage != nil {
				msg += ": " + *a.ErrorMessage
			}
			leave(c.labels[0], c.holder, model.CodeAppleRefused, msg)
			continue
		}
		first := firstOr(firstCovered, c.holder.Key, f.Now)
		chosen, behind := int64(0), int64(0)
		for _, id := range c.labels {
			if room[id] == 0 {
				continue
			}
			if a := f.Ahead[id]; a.N > 0 && !first.Before(a.First) {
				if behind == 0 {
					behind = id // holders covered earlier wait for this label: no jumping the queue
				}
				continue
			}
			chosen = id
			break
		}
		if chosen == 0 && behind != 0 {
			a, l := f.Ahead[behind], labels[behind].Label
			leave(l.ID, c.holder, a.Code, fmt.Sprintf("label %q is short: %d holders covered before this one wait for a license (first covered, first served)", l.Name, a.N))
			continue
		}
		if chosen == 0 {
			l := labels[c.labels[0]].Label
			leave(l.ID, c.holder, model.CodeLabelCapReached, fmt.Sprintf("label %q has handed out its cap of %d licenses", l.Name, *l.CapCount))
			continue
		}
		if room[chosen] > 0 {
			room[chosen]--
		}
		p.Assign = append(p.Assign, PlannedAssign{LabelID: chosen, Holder: c.holder, FirstCoveredAt: firstOr(firstCovered, c.holder.Key, f.Now),
			Reason: coverReason(f, labels[chosen], c)})
	}
	sort.Slice(p.Waiting, func(i, j int) bool {
		if !p.Waiting[i].FirstCoveredAt.Equal(p.Waiting[j].FirstCoveredAt) {
			return p.Waiting[i].FirstCoveredAt.Before(p.Waiting[j].FirstCoveredAt)
		}
		if p.Waiting[i].HolderKey != p.Waiting[j].HolderKey {
			return p.Waiting[i].HolderKey < p.Waiting[j].HolderKey
		}
		return p.Waiting[i].LabelID < p.Waiting[j].LabelID
	})
	sort.Slice(p.Reclaim, func(i, j int) bool { return p.Reclaim[i].Assignment.ID < p.Reclaim[j].Assignment.ID })
	sort.Slice(p.GraceStart, func(i, j int) bool { return p.GraceStart[i] < p.GraceStart[j] })
	sort.Slice(p.GraceEnd, func(i, j int) bool { return p.GraceEnd[i] < p.GraceEnd[j] })
	for _, ids := range p.Relabel {
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	}
	return p
}

// coverageOf computes which holders the live license labels cover; leave is told about members
// a label leaves out by a rule (R10). Keys are holder keys.
func coverageOf(f *PolicyFacts, leave func(labelID int64, h PolicyHolder, code model.Code, reason string)) map[string]*coverage {
	covered := map[string]*coverage{}
	cover := func(l *model.Label, h PolicyHolder, group int64) {
		c := covered[h.Key]
		if c == nil {
			c = &coverage{holder: h, groups: map[int64]int64{}}
			covered[h.Key] = c
		}
		if !contains(c.labels, l.ID) {
			c.labels = append(c.labels, l.ID)
			c.groups[l.ID] = group
		}
	}
	appCovered := map[int64]bool{} // devices an app label covers
	for _, al := range f.AppLabels {
		if al.Label.DeletedAt != nil {
			continue
		}
		for d, gs := range f.DeviceGroups {
			if intersects(gs, al.GroupIDs) {
				appCovered[d] = true
			}
		}
	}
	specs := append([]LabelSpec(nil), f.Labels...)
	sort.Slice(specs, func(i, j int) bool { return specs[i].Label.ID < specs[j].Label.ID })
	for _, spec := range specs {
		l := spec.Label
		if l.DeletedAt != nil || l.LicenseKind == nil {
			continue
		}
		kind := *l.LicenseKind
		for _, d := range sortedKeys(f.DeviceGroups) {
			g := firstCommon(f.DeviceGroups[d], spec.GroupIDs)
			dev := f.Devices[d]
			if g == 0 || dev == nil || dev.Status != model.DeviceActive {
				continue
			}
			dh := PolicyHolder{Kind: model.LicenseKindDevice, Key: model.HolderKeyFor(model.LicenseKindDevice, dev.SerialNumber, ""), Device: dev}
			switch {
			case kind == model.LicenseKindDevice && dev.SharedIPad && !appCovered[dev.ID]:
				leave(l.ID, dh, model.CodeNeedsAppLabel, fmt.Sprintf("%s is a shared iPad: it gets %s only when an app label of the app covers it too (R10)", dev.SerialNumber, nameOf(f.App)))
			case kind == model.LicenseKindDevice:
				cover(l, dh, g)
			case dev.SharedIPad:
				leave(l.ID, dh, model.CodeSharedIPadNeedsDeviceLicense, fmt.Sprintf("%s is a shared iPad: it takes device licenses only, and label %q gives user licenses (R10)", dev.SerialNumber, l.Name))
			case dev.UserID == nil || f.Users[*dev.UserID] == nil || f.Users[*dev.UserID].Status != model.UserActive:
				leave(l.ID, dh, model.CodeNoUser, fmt.Sprintf("device %s has no user to hold the user license of label %q", dev.SerialNumber, l.Name))
			default:
				u := f.Users[*dev.UserID]
				cover(l, PolicyHolder{Kind: model.LicenseKindUser, Key: model.HolderKeyFor(model.LicenseKindUser, "", u.ClientUserID), User: u, Device: dev}, g)
			}
		}
		if kind != model.LicenseKindUser {
			continue
		}
		for _, uid := range sortedKeys(f.UserGroups) {
			g := firstCommon(f.UserGroups[uid], spec.GroupIDs)
			u := f.Users[uid]
			if g == 0 || u == nil || u.Status != model.UserActive {
				continue
			}
			cover(l, PolicyHolder{Kind: model.LicenseKindUser, Key: model.HolderKeyFor(model.LicenseKindUser, "", u.ClientUserID), User: u}, g)
		}
	}
	return covered
}

// coverReason says why a holder gets a license through a label.
func coverReason(f *PolicyFacts, spec LabelSpec, c *coverage) string {
	g := groupName(f, c.groups[spec.Label.ID])
	if c.holder.Kind == model.LicenseKindUser && c.holder.Device != nil {
		return fmt.Sprintf("the user of device %s, a member of group %s (label %q)", c.holder.Device.SerialNumber, g, spec.Label.Name)
	}
	return fmt.Sprintf("member of group %s (label %q)", g, spec.Label.Name)
}

// reclaimReason says why a label license goes back: the membership change behind it.
func reclaimReason(f *PolicyFacts, spec LabelSpec, live bool, a *model.LicenseAssignment) string {
	if !live {
		return fmt.Sprintf("label %d no longer exists", *a.LabelID)
	}
	l := spec.Label
	if l.DeletedAt != nil {
		return fmt.Sprintf("label %q was deleted", l.Name)
	}
	for _, d := range f.Departures {
		if !contains(spec.GroupIDs, d.GroupID) {
			continue
		}
		mine := (d.UserID != nil && a.UserID != nil && *d.UserID == *a.UserID) || (d.DeviceID != nil && a.DeviceID != nil && *d.DeviceID == *a.DeviceID)
		if !mine {
			continue
		}
		g := groupName(f, d.GroupID)
		switch d.How {
		case model.DepartureNoMatch:
			return fmt.Sprintf("no longer matches dynamic group %s (label %q)", g, l.Name)
		case model.DepartureUserRemoved:
			return fmt.Sprintf("removed from group %s: the user left the directory (label %q)", g, l.Name)
		case model.DepartureRetired:
			return fmt.Sprintf("removed from group %s: the device was retired (label %q)", g, l.Name)
		}
		return fmt.Sprintf("removed from group %s (label %q)", g, l.Name)
	}
	var names []string
	for _, g := range spec.GroupIDs {
		names = append(names, groupName(f, g))
	}
	if len(names) == 0 {
		return fmt.Sprintf("label %q applies to no group any more", l.Name)
	}
	return fmt.Sprintf("no longer in any group of label %q (%s)", l.Name, strings.Join(names, ", "))
}

func groupName(f *PolicyFacts, id int64) string {
	if g := f.Groups[id]; g != nil {
		if g.Name != "" {
			return g.Name
		}
		return g.ExternalID
	}
	return fmt.Sprintf("#%d", id)
}

func holderKeyOf(a *model.LicenseAssignment) string {
	switch {
	case a.Kind == model.LicenseKindDevice && a.SerialNumber != nil:
		return model.HolderKeyFor(model.LicenseKindDevice, *a.SerialNumber, "")
	case a.Kind == model.LicenseKindUser && a.ClientUserID != nil:
		return model.HolderKeyFor(model.LicenseKindUser, "", *a.ClientUserID)
	}
	return ""
}

func holderLess(a, b PolicyHolder) bool {
	ia, ib := holderID(a), holderID(b)
	if ia != ib {
		return ia < ib
	}
	return a.Key < b.Key
}

func holderID(h PolicyHolder) int64 {
	if h.Kind == model.LicenseKindDevice {
		return h.Device.ID
	}
	return h.User.ID
}

func firstOr(m map[string]time.Time, k string, def time.Time) time.Time {
	if t, ok := m[k]; ok {
		return t
	}
	return def
}

func contains(xs []int64, x int64) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func intersects(a, b []int64) bool { return firstCommon(a, b) != 0 }

// firstCommon returns the first id of a (in order) that is also in b, or 0.
func firstCommon(a, b []int64) int64 {
	for _, x := range a {
		if contains(b, x) {
			return x
		}
	}
	return 0
}

func sortedKeys(m map[int64][]int64) []int64 {
	out := make([]int64, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

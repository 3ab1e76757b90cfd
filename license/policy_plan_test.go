package license

import (
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"orchard/model"
)

// planView is the part of a plan the table compares: who gets what through which label, what
// goes back and why, who waits and why.
type planView struct {
	Assign     []string
	Reclaim    []string
	Relabel    map[int64][]int64
	GraceStart []int64
	GraceEnd   []int64
	NextDue    *time.Time
	Waiting    []string
}

func viewOf(p *PolicyPlan) planView {
	v := planView{Relabel: p.Relabel, GraceStart: p.GraceStart, GraceEnd: p.GraceEnd, NextDue: p.NextDue}
	for _, a := range p.Assign {
		v.Assign = append(v.Assign, a.Holder.Key+" via "+itoa(a.LabelID)+": "+a.Reason)
	}
	for _, r := range p.Reclaim {
		v.Reclaim = append(v.Reclaim, itoa(r.Assignment.ID)+": "+r.Reason)
	}
	for _, w := range p.Waiting {
		v.Waiting = append(v.Waiting, w.HolderKey+" on "+itoa(w.LabelID)+": "+string(w.Code))
	}
	return v
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestPlanPolicy(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	user, device := model.LicenseKindUser, model.LicenseKindDevice
	app := &model.App{ID: 1, Name: "Keynote"}
	users := map[int64]*model.User{
		1: {ID: 1, ExternalID: "ann", ClientUserID: "c-ann", Status: model.UserActive},
		2: {ID: 2, ExternalID: "bob", ClientUserID: "c-bob", Status: model.UserActive},
		3: {ID: 3, ExternalID: "cy", ClientUserID: "c-cy", Status: model.UserActive},
		4: {ID: 4, ExternalID: "gone", ClientUserID: "c-gone", Status: model.UserRemoved},
	}
	uid := func(n int64) *int64 { return &n }
	devices := map[int64]*model.Device{
		10: {ID: 10, SerialNumber: "S10", Status: model.DeviceActive},
		11: {ID: 11, SerialNumber: "S11", Status: model.DeviceActive, SharedIPad: true},
		12: {ID: 12, SerialNumber: "S12", Status: model.DeviceRetired},
		13: {ID: 13, SerialNumber: "S13", Status: model.DeviceActive, UserID: uid(2)},
	}
	groups := map[int64]*model.Group{100: {ID: 100, Name: "Teachers"}, 101: {ID: 101, Name: "Staff"}, 102: {ID: 102, Name: "Carts"}}
	label := func(id int64, kind model.LicenseKind, groups ...int64) LabelSpec {
		k := kind
		return LabelSpec{Label: &model.Label{ID: id, Kind: model.LabelLicense, Name: "L" + itoa(id), AppID: 1, LicenseKind: &k}, GroupIDs: groups}
	}
	capped := func(l LabelSpec, n int64) LabelSpec { l.Label.CapCount = &n; return l }
	grace := func(l LabelSpec, secs int64) LabelSpec { l.Label.GraceSeconds = secs; return l }
	deleted := func(l LabelSpec) LabelSpec { l.Label.DeletedAt = &now; return l }
	str := func(s string) *string { return &s }
	held := func(id int64, key string, origin model.AssignmentOrigin, labelID int64, mod ...func(*model.LicenseAssignment)) *model.LicenseAssignment {
		a := &model.LicenseAssignment{ID: id, AppID: 1, HolderKey: str(key), Status: model.AssignmentAssigned, Origin: origin}
		if key[0] == 'U' {
			a.Kind, a.ClientUserID = user, str(key[2:])
			for _, u := range users {
				if u.ClientUserID == key[2:] {
					a.UserID = &u.ID
				}
			}
		} else {
			a.Kind, a.SerialNumber = device, str(key[2:])
		}
		if labelID != 0 {
			a.LabelID = &labelID
		}
		for _, m := range mod {
			m(a)
		}
		return a
	}
	outSince := func(t time.Time) func(*model.LicenseAssignment) {
		return func(a *model.LicenseAssignment) { a.LabelOutSince = &t }
	}
	tests := []struct {
		name  string
		facts PolicyFacts
		want  planView
	}{{
		name: "a member gets a license; a removed user and an admin's license are left alone",
		facts: PolicyFacts{Labels: []LabelSpec{label(7, user, 100)}, UserGroups: map[int64][]int64{1: {100}, 4: {100}},
			Assignments: []*model.LicenseAssignment{held(50, "U:c-bob", model.OriginAdmin, 0)}},
		want: planView{Assign: []string{`U:c-ann via 7: member of group Teachers (label "L7")`}},
	}, {
		name: "out of the group: the label's license goes back with the group named; an admin's stays",
		facts: PolicyFacts{Labels: []LabelSpec{label(7, user, 100)}, UserGroups: map[int64][]int64{},
			Assignments: []*model.LicenseAssignment{held(50, "U:c-ann", model.OriginLabel, 7), held(51, "U:c-bob", model.OriginAdmin, 0)},
			Departures:  []*model.PolicyDeparture{{GroupID: 100, UserID: uid(1), How: model.DepartureRemoved}}},
		want: planView{Reclaim: []string{`50: removed from group Teachers (label "L7")`}},
	}, {
		name: "two labels of one app: one license, kept (handed over) while either covers",
		facts: PolicyFacts{Labels: []LabelSpec{label(7, user, 100), label(8, user, 101)}, UserGroups: map[int64][]int64{1: {101}, 2: {100, 101}},
			Assignments: []*model.LicenseAssignment{held(50, "U:c-ann", model.OriginLabel, 7), held(51, "U:c-bob", model.OriginLabel, 8)}},
		want: planView{Relabel: map[int64][]int64{8: {50}}},
	}, {
		name: "a deleted label's licenses go to a covering label or back",
		facts: PolicyFacts{Labels: []LabelSpec{deleted(label(7, user, 100)), label(8, user, 101)}, UserGroups: map[int64][]int64{1: {100, 101}, 2: {100}},
			Assignments: []*model.LicenseAssignment{held(50, "U:c-ann", model.OriginLabel, 7), held(51, "U:c-bob", model.OriginLabel, 7)}},
		want: planView{Relabel: map[int64][]int64{8: {50}}, Reclaim: []string{`51: label "L7" was deleted`}},
	}, {
		name: "grace: out of scope starts the grace time and nothing is reclaimed",
		facts: PolicyFacts{Labels: []LabelSpec{grace(label(7, user, 100), 600)}, UserGroups: map[int64][]int64{},
			Assignments: []*model.LicenseAssignment{held(50, "U:c-ann", model.OriginLabel, 7)}},
		want: planView{GraceStart: []int64{50}, NextDue: ptr(now.Add(10 * time.Minute))},
	}, {
		name: "grace: back in scope within it ends it; a grace run out reclaims",
		facts: PolicyFacts{Labels: []LabelSpec{grace(label(7, user, 100), 600)}, UserGroups: map[int64][]int64{1: {100}},
			Assignments: []*model.LicenseAssignment{held(50, "U:c-ann", model.OriginLabel, 7, outSince(now.Add(-time.Minute))),
				held(51, "U:c-bob", model.OriginLabel, 7, outSince(now.Add(-11*time.Minute)))}},
		want: planView{GraceEnd: []int64{50}, Reclaim: []string{`51: no longer in any group of label "L7" (Teachers)`}},
	}, {
		name: "cap: first covered, first served; the rest wait with the reason",
		facts: PolicyFacts{Labels: []LabelSpec{capped(label(7, user, 100), 2)}, UserGroups: map[int64][]int64{1: {100}, 2: {100}, 3: {100}},
			Waiting: []*model.PolicyWaiting{{LabelID: 7, HolderKey: "U:c-cy", FirstCoveredAt: now.Add(-time.Hour)}}},
		want: planView{Assign: []string{`U:c-cy via 7: member of group Teachers (label "L7")`, `U:c-ann via 7: member of group Teachers (label "L7")`},
			Waiting: []string{"U:c-bob on 7: LABEL_CAP_REACHED"}},
	}, {
		name: "cap of one label full: the next covering label serves",
		facts: PolicyFacts{Labels: []LabelSpec{capped(label(7, user, 100), 1), label(8, user, 100)}, UserGroups: map[int64][]int64{1: {100}, 2: {100}},
			Assignments: []*model.LicenseAssignment{held(50, "U:c-ann", model.OriginLabel, 7)}},
		want: planView{Assign: []string{`U:c-bob via 8: member of group Teachers (label "L8")`}},
	}, {
		name:  "R10: a shared iPad needs an app label, takes device licenses only; retired devices are not covered",
		facts: PolicyFacts{Labels: []LabelSpec{label(7, device, 102), label(8, user, 102)}, DeviceGroups: map[int64][]int64{10: {102}, 11: {102}, 12: {102}, 13: {102}}},
		want: planView{
			Assign: []string{`U:c-bob via 8: the user of device S13, a member of group Carts (label "L8")`,
				`D:S10 via 7: member of group Carts (label "L7")`, `D:S13 via 7: member of group Carts (label "L7")`},
			Waiting: []string{"D:S10 on 8: NO_USER", "D:S11 on 7: NEEDS_APP_LABEL", "D:S11 on 8: SHARED_IPAD_NEEDS_DEVICE_LICENSE"}},
	}, {
		name: "R10: with an app label the shared iPad gets its device license",
		facts: PolicyFacts{Labels: []LabelSpec{label(7, device, 102)}, AppLabels: []LabelSpec{{Label: &model.Label{ID: 9, Kind: model.LabelApp}, GroupIDs: []int64{102}}},
			DeviceGroups: map[int64][]int64{11: {102}}},
		want: planView{Assign: []string{`D:S11 via 7: member of group Carts (label "L7")`}},
	}, {
		name: "Apple refused the holder lately: it waits instead of being asked again",
		facts: PolicyFacts{Labels: []LabelSpec{label(7, user, 100)}, UserGroups: map[int64][]int64{1: {100}},
			Refused: []*model.LicenseAssignment{held(40, "U:c-ann", model.OriginLabel, 7, func(a *model.LicenseAssignment) { a.Status = model.AssignmentFailed; a.HolderKey = nil })}},
		want: planView{Waiting: []string{"U:c-ann on 7: APPLE_REFUSED"}},
	}, {
		name: "per holder: licenses the label holds for others count against its cap",
		facts: PolicyFacts{Labels: []LabelSpec{capped(label(7, user, 100), 2)}, UserGroups: map[int64][]int64{1: {100}},
			HeldElsewhere: map[int64]int{7: 2}},
		want: planView{Waiting: []string{"U:c-ann on 7: LABEL_CAP_REACHED"}},
	}, {
		name: "per holder: room under the cap left by others is taken",
		facts: PolicyFacts{Labels: []LabelSpec{capped(label(7, user, 100), 2)}, UserGroups: map[int64][]int64{1: {100}},
			HeldElsewhere: map[int64]int{7: 1}},
		want: planView{Assign: []string{`U:c-ann via 7: member of group Teachers (label "L7")`}},
	}, {
		name: "per holder: holders covered earlier wait for a short label, so a newcomer joins the queue",
		facts: PolicyFacts{Labels: []LabelSpec{label(7, user, 100)}, UserGroups: map[int64][]int64{1: {100}},
			Ahead: map[int64]WaitingAhead{7: {N: 3, First: now.Add(-time.Hour), Code: model.CodeNoLicensesAvailable}}},
		want: planView{Waiting: []string{"U:c-ann on 7: NO_LICENSES_AVAILABLE"}},
	}, {
		name: "per holder: a holder waiting since before the others is tried first",
		facts: PolicyFacts{Labels: []LabelSpec{label(7, user, 100)}, UserGroups: map[int64][]int64{1: {100}},
			Waiting: []*model.PolicyWaiting{{LabelID: 7, HolderKey: "U:c-ann", Code: model.CodeNoLicensesAvailable, FirstCoveredAt: now.Add(-2 * time.Hour)}},
			Ahead:   map[int64]WaitingAhead{7: {N: 3, First: now.Add(-time.Hour), Code: model.CodeNoLicensesAvailable}}},
		want: planView{Assign: []string{`U:c-ann via 7: member of group Teachers (label "L7")`}},
	}, {
		name: "per holder: a short label with a queue is passed over for another covering label",
		facts: PolicyFacts{Labels: []LabelSpec{label(7, user, 100), label(8, user, 100)}, UserGroups: map[int64][]int64{1: {100}},
			Ahead: map[int64]WaitingAhead{7: {N: 1, First: now.Add(-time.Hour), Code: model.CodeNoLicensesAvailable}}},
		want: planView{Assign: []string{`U:c-ann via 8: member of group Teachers (label "L8")`}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.facts
			f.App, f.Users, f.Devices, f.Groups, f.Now = app, users, devices, groups, now
			got := viewOf(PlanPolicy(&f))
			if tt.want.Relabel == nil {
				tt.want.Relabel = map[int64][]int64{}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("plan mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestGroupRuleMatches(t *testing.T) {
	yes, no := true, false
	dev := &model.Device{Platform: model.PlatformIPadOS, OSVersion: "17.10", CountryCode: "US", SharedIPad: true, Supervised: true, Status: model.DeviceActive}
	tests := []struct {
		name string
		rule model.GroupRule
		want bool
	}{
		{"empty rule: every active device", model.GroupRule{}, true},
		{"platform", model.GroupRule{Platforms: []model.Platform{model.PlatformIOS, model.PlatformIPadOS}}, true},
		{"other platform", model.GroupRule{Platforms: []model.Platform{model.PlatformMacOS}}, false},
		{"OS at least, numerically", model.GroupRule{MinOSVersion: "17.9"}, true},
		{"OS too old", model.GroupRule{MinOSVersion: "18"}, false},
		{"country, any case", model.GroupRule{Countries: []string{"us"}}, true},
		{"shared iPad", model.GroupRule{SharedIPad: &yes}, true},
		{"not supervised wanted", model.GroupRule{Supervised: &no}, false},
		{"retired devices only", model.GroupRule{Statuses: []model.DeviceStatus{model.DeviceRetired}}, false},
	}
	var got, want []string
	for _, tt := range tests {
		if tt.rule.Matches(dev) != tt.want {
			got = append(got, tt.name)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rules that answered wrong mismatch (-want +got):\n%s", diff)
	}
}

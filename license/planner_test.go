package license

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"orchard/db"
	"orchard/model"
)

// TestPlanTargets: the pure half of the planner — every rule applied to each target of a
// chunk, in order, before anything is reserved.
func TestPlanTargets(t *testing.T) {
	us := candidate{testPool(11, 1, 10, 0, 0), testAccount(1, "Main", "US")}
	gb := candidate{testPool(12, 2, 50, 0, 0), testAccount(2, "London", "GB")}
	gone := testAccount(3, "Old", "US")
	gone.RemovalRequestedAt = ptr(ruleNow)
	removed := candidate{testPool(13, 3, 90, 0, 0), gone}
	devs := []*model.Device{
		testDevice(1, "D1"), testDevice(2, "D2"), testDevice(3, "D3", func(d *model.Device) { d.UserID = ptr(int64(9)) }),
		testDevice(4, "D4", func(d *model.Device) { d.CountryCode, d.OSVersion = "GB", "8.0" }),
		testDevice(5, "D5", func(d *model.Device) { d.Status = model.DeviceRetired }),
	}
	facts := func(cands ...candidate) *assignFacts {
		f := factsOf(model.LicenseKindDevice, testApp(), devs, []*model.User{testUser(9, "alice")}, cands...)
		f.held["D:D2"] = db.HeldLicense{ID: 77, Status: model.AssignmentAssigned}
		f.userLicensed[9] = true
		f.sold["US"] = true
		return f
	}
	type plan struct {
		Index    int
		Code     model.Code
		Resumed  int64
		Eligible []int64 // account ids, in order
		Rank     []int
	}
	summary := func(ps []targetPlan) []plan {
		var out []plan
		for _, p := range ps {
			x := plan{Index: p.index, Resumed: p.resumed, Rank: p.rank}
			if p.refused != nil {
				x.Code = p.refused.Code
			}
			for _, c := range p.eligible {
				x.Eligible = append(x.Eligible, c.account.ID)
			}
			out = append(out, x)
		}
		return out
	}
	targets := []Target{{SerialNumber: "D1"}, {SerialNumber: "D2"}, {SerialNumber: "D3"}, {SerialNumber: "D4"}, {SerialNumber: "D5"}, {SerialNumber: "NOPE"}, {SerialNumber: "D2"}}
	for _, tc := range []struct {
		name   string
		f      *assignFacts
		req    assignRequest
		resume bool
		want   []plan
	}{
		{"Orchard's order", facts(gb, us, removed), assignRequest{}, false, []plan{
			// A US device: the US accounts first, most licenses left first (the removed one, refused), then GB.
			{Index: 100, Eligible: []int64{1, 2}, Rank: []int{1, 2}},
			{Index: 101, Code: model.CodeAlreadyAssigned},
			{Index: 102, Code: model.CodeUserLicenseExists},
			{Index: 103, Eligible: []int64{2}, Rank: []int{0}}, // GB on iOS 8: only the GB account
			{Index: 104, Code: model.CodeDeviceRetired},
			{Index: 105, Code: model.CodeNotFound},
			{Index: 106, Code: model.CodeAlreadyAssigned},
		}},
		{"the caller's order", facts(gb, us), assignRequest{Accounts: []int64{2, 1}}, false, []plan{
			{Index: 100, Eligible: []int64{2, 1}, Rank: []int{0, 1}},
			{Index: 101, Code: model.CodeAlreadyAssigned},
			{Index: 102, Code: model.CodeUserLicenseExists},
			{Index: 103, Eligible: []int64{2}, Rank: []int{0}},
			{Index: 104, Code: model.CodeDeviceRetired},
			{Index: 105, Code: model.CodeNotFound},
			{Index: 106, Code: model.CodeAlreadyAssigned},
		}},
		{"resumed: a holder's license answered once", facts(us), assignRequest{}, true, []plan{
			{Index: 100, Eligible: []int64{1}, Rank: []int{0}},
			{Index: 101, Resumed: 77},
			{Index: 102, Code: model.CodeUserLicenseExists},
			{Index: 103, Code: model.CodeOSTooOldForCrossCountry},
			{Index: 104, Code: model.CodeDeviceRetired},
			{Index: 105, Code: model.CodeNotFound},
			{Index: 106, Code: model.CodeAlreadyAssigned},
		}},
		{"only refused pools: the first pool's refusal", facts(removed), assignRequest{}, false, []plan{
			{Index: 100, Code: model.CodeAccountUnavailable},
			{Index: 101, Code: model.CodeAlreadyAssigned},
			{Index: 102, Code: model.CodeUserLicenseExists},
			{Index: 103, Code: model.CodeAccountUnavailable},
			{Index: 104, Code: model.CodeDeviceRetired},
			{Index: 105, Code: model.CodeNotFound},
			{Index: 106, Code: model.CodeAlreadyAssigned},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.Kind = model.LicenseKindDevice
			if diff := cmp.Diff(tc.want, summary(planTargets(tc.f, &tc.req, targets, 100, tc.resume))); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// A one-target request whose pools are refused answers the target's own refusal first, as
// assignLicense always has: "no such device" before "no such app".
func TestPlanOneTargetRefusalOrder(t *testing.T) {
	f := factsOf(model.LicenseKindDevice, nil, []*model.Device{testDevice(1, "D1")}, nil)
	f.poolsRefused = &refusal{Code: model.CodeNotFound, Field: []string{"input", "adamId"}, Message: "no account has bought an app with this adamId"}
	req := &assignRequest{Kind: model.LicenseKindDevice, oneTarget: true}
	got := planTargets(f, req, []Target{{SerialNumber: "NOPE"}, {SerialNumber: "D1"}}, 0, false)
	if diff := cmp.Diff([]string{"no such device", "no account has bought an app with this adamId"}, []string{got[0].refused.Message, got[1].refused.Message}); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}

package license

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"orchard/model"
)

// R5: free apps consume licenses like paid ones; an empty free app's pool says that more cost
// nothing.
func TestR5FreeAppEmptyPoolSaysMoreCostNothing(t *testing.T) {
	c := candidate{testPool(1, 1, 3, 2, 1), testAccount(1, "Main", "US")}
	for _, tc := range []struct {
		name string
		app  *model.App
		want *refusal
	}{
		{"free app", testApp(func(a *model.App) { a.IsFree = true }), &refusal{Code: model.CodeNoLicensesAvailable, Field: []string{"input"},
			Message: `no "Maps Pro" license left in account "Main" (3 owned, 2 assigned, 1 on their way). "Maps Pro" is free: more licenses cost nothing — add them in Apple Business Manager (Apps and Books), and Orchard sees them at the next sync`}},
		{"paid app", testApp(), &refusal{Code: model.CodeNoLicensesAvailable, Field: []string{"input"},
			Message: `no "Maps Pro" license left in account "Main" (3 owned, 2 assigned, 1 on their way); buy more in Apple Business Manager, or reclaim unused ones`}},
		{"free app without a name", testApp(func(a *model.App) { a.IsFree, a.Name = true, "" }), &refusal{Code: model.CodeNoLicensesAvailable, Field: []string{"input"},
			Message: `no app 7001 license left in account "Main" (3 owned, 2 assigned, 1 on their way). app 7001 is free: more licenses cost nothing — add them in Apple Business Manager (Apps and Books), and Orchard sees them at the next sync`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, noLicenses(c, tc.app), refusalCmp); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// Which pool first: the caller's order when it gives one, otherwise the device's country,
// then most licenses left, then the oldest account.
func TestPoolPreferenceOrder(t *testing.T) {
	us1 := candidate{testPool(11, 1, 10, 8, 0), testAccount(1, "US small", "US")}
	us2 := candidate{testPool(12, 2, 10, 0, 0), testAccount(2, "US big", "US")}
	gb := candidate{testPool(13, 3, 100, 0, 0), testAccount(3, "GB", "GB")}
	de := candidate{testPool(14, 4, 100, 0, 0), testAccount(4, "DE", "DE")}
	all := []candidate{us1, us2, gb, de}
	ids := func(cs []candidate) []int64 {
		out := []int64{}
		for _, c := range cs {
			out = append(out, c.account.ID)
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		h      holder
		cands  []candidate
		caller bool
		want   []int64
	}{
		{"US device: its country first, then most left", holder{kind: model.LicenseKindDevice, device: testDevice(1, "D1")}, all, false, []int64{2, 1, 3, 4}},
		{"GB device", holder{kind: model.LicenseKindDevice, device: testDevice(1, "D1", func(d *model.Device) { d.CountryCode = "GB" })}, all, false, []int64{3, 4, 2, 1}},
		{"user: most left, then oldest", holder{kind: model.LicenseKindUser, user: testUser(9, "alice")}, all, false, []int64{3, 4, 2, 1}},
		{"the caller's order", holder{kind: model.LicenseKindDevice, device: testDevice(1, "D1")}, []candidate{de, us1, gb}, true, []int64{4, 1, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, ids(preferredOrder(tc.cands, tc.h, tc.caller))); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPoolsOfAccounts(t *testing.T) {
	ps := []*model.LicensePool{testPool(11, 1, 1, 0, 0), testPool(12, 2, 1, 0, 0), testPool(13, 3, 1, 0, 0)}
	ids := func(ps []*model.LicensePool) []int64 {
		out := []int64{}
		for _, p := range ps {
			out = append(out, p.ID)
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		account  int64
		accounts []int64
		want     []int64
	}{
		{"any account", 0, nil, []int64{11, 12, 13}},
		{"one account", 2, nil, []int64{12}},
		{"accounts in the caller's order, repeats and unknown ones dropped", 0, []int64{3, 9, 1, 3}, []int64{13, 11}},
		{"an account that has not bought it", 9, nil, []int64{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, ids(poolsOfAccounts(ps, tc.account, tc.accounts))); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

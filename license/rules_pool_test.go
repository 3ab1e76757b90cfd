package license

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"orchard/model"
)

func TestAccountUsable(t *testing.T) {
	removed, leaving, expired, claimed := testAccount(1, "Main", "US"), testAccount(1, "Main", "US"), testAccount(1, "Main", "US"), testAccount(1, "Main", "US")
	removed.RemovedAt = ptr(ruleNow.Add(-time.Hour))
	leaving.RemovalRequestedAt = ptr(ruleNow.Add(-time.Hour))
	expired.TokenExpiresAt = ruleNow.Add(-time.Minute) // ACTIVE as stored, expired by now
	claimed.Health = model.TokenHealthClaimedElsewhere
	for _, tc := range []struct {
		name string
		a    *model.Account
		want *refusal
	}{
		{"active", testAccount(1, "Main", "US"), nil},
		{"removed", removed, &refusal{Code: model.CodeAccountUnavailable, Field: targetField, Message: `account "Main" is removed`}},
		{"being removed", leaving, &refusal{Code: model.CodeAccountUnavailable, Field: targetField, Message: `account "Main" is removed`}},
		{"token expired since the last pass", expired, &refusal{Code: model.CodeAccountUnavailable, Field: targetField,
			Message: `account "Main" cannot be used: its token is EXPIRED; renew the token (or take the account over) first`}},
		{"claimed by another manager", claimed, &refusal{Code: model.CodeAccountUnavailable, Field: targetField,
			Message: `account "Main" cannot be used: its token is CLAIMED_ELSEWHERE; renew the token (or take the account over) first`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, checkAccountUsable(factsOf(model.LicenseKindDevice, testApp(), nil, nil), tc.a), refusalCmp); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// Apple lets only user licenses go for books and for pools it marks so.
func TestDeviceAssignablePoolsOnly(t *testing.T) {
	book := testApp(func(a *model.App) { a.Kind, a.Name = model.AppKindBook, "Field Guide" })
	userOnly := testPool(1, 1, 10, 0, 0)
	userOnly.DeviceAssignable = false
	dev := holder{kind: model.LicenseKindDevice, device: testDevice(1, "D1")}
	usr := holder{kind: model.LicenseKindUser, user: testUser(9, "alice")}
	for _, tc := range []struct {
		name string
		app  *model.App
		pool *model.LicensePool
		h    holder
		want *refusal
	}{
		{"app, device license", testApp(), testPool(1, 1, 10, 0, 0), dev, nil},
		{"app of a user-only pool, device license", testApp(), userOnly, dev, &refusal{Code: model.CodeNotDeviceAssignable, Field: targetField,
			Message: `"Maps Pro" cannot be assigned to devices (Apple allows only user licenses for this app); assign a USER license`}},
		{"book, device license", book, testPool(1, 1, 10, 0, 0), dev, &refusal{Code: model.CodeNotDeviceAssignable, Field: targetField,
			Message: `"Field Guide" cannot be assigned to devices (Apple allows only user licenses for books); assign a USER license`}},
		{"book, user license", book, userOnly, usr, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, checkDeviceAssignable(factsOf(tc.h.kind, tc.app, nil, nil), tc.pool, tc.h), refusalCmp); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// checkPool applies the account's rule first, then the pool's, then R11.
func TestPoolChecksInOrder(t *testing.T) {
	removed := testAccount(1, "Main", "GB")
	removed.RemovedAt = ptr(ruleNow)
	userOnly := testPool(1, 1, 10, 0, 0)
	userOnly.DeviceAssignable = false
	oldIOS := holder{kind: model.LicenseKindDevice, device: testDevice(1, "D1", func(d *model.Device) { d.OSVersion = "8.4" })}
	f := factsOf(model.LicenseKindDevice, testApp(), nil, nil)
	for _, tc := range []struct {
		name string
		c    candidate
		want model.Code
	}{
		{"removed account, user-only pool, cross-country", candidate{userOnly, removed}, model.CodeAccountUnavailable},
		{"user-only pool, cross-country", candidate{userOnly, testAccount(1, "Main", "GB")}, model.CodeNotDeviceAssignable},
		{"cross-country on iOS 8", candidate{testPool(1, 1, 10, 0, 0), testAccount(1, "Main", "GB")}, model.CodeOSTooOldForCrossCountry},
		{"same country", candidate{testPool(1, 1, 10, 0, 0), testAccount(1, "Main", "US")}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got model.Code
			if r := checkPool(f, tc.c, oldIOS); r != nil {
				got = r.Code
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

package license

import (
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"orchard/db"
	"orchard/model"
)

// Helpers of the rule tests (rules_*_test.go): facts built from literals, no database.

var ruleNow = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)

// factsOf builds the facts of a request of kind over the given devices and users (keyed as
// readAssignFacts keys them), for app with the candidates given.
func factsOf(kind model.LicenseKind, app *model.App, devices []*model.Device, users []*model.User, cands ...candidate) *assignFacts {
	f := &assignFacts{now: ruleNow, kind: kind, app: app, cands: cands,
		devicesByID: map[int64]*model.Device{}, devicesBySerial: map[string]*model.Device{},
		usersByID: map[int64]*model.User{}, usersByExternalID: map[string]*model.User{},
		held: map[string]db.HeldLicense{}, userLicensed: map[int64]bool{}, sold: map[string]bool{}}
	for _, d := range devices {
		f.devicesByID[d.ID], f.devicesBySerial[d.SerialNumber] = d, d
	}
	for _, u := range users {
		f.usersByID[u.ID], f.usersByExternalID[u.ExternalID] = u, u
	}
	return f
}

func ptr[T any](v T) *T { return &v }

func testDevice(id int64, serial string, mod ...func(*model.Device)) *model.Device {
	d := &model.Device{ID: id, SerialNumber: serial, Platform: model.PlatformIPadOS, OSVersion: "17.4", CountryCode: "US", Status: model.DeviceActive}
	for _, m := range mod {
		m(d)
	}
	return d
}

func testUser(id int64, ext string) *model.User {
	return &model.User{ID: id, ExternalID: ext, ClientUserID: "cu-" + ext, Status: model.UserActive}
}

func testApp(mod ...func(*model.App)) *model.App {
	a := &model.App{ID: 7, AdamID: "7001", Name: "Maps Pro", Kind: model.AppKindApp}
	for _, m := range mod {
		m(a)
	}
	return a
}

func testAccount(id int64, name, country string) *model.Account {
	return &model.Account{ID: id, Name: name, CountryCode: country, Health: model.TokenHealthActive, TokenExpiresAt: ruleNow.Add(365 * 24 * time.Hour)}
}

func testPool(id, accountID int64, total, assigned, reserved int64) *model.LicensePool {
	return &model.LicensePool{ID: id, AccountID: accountID, AppID: 7, AdamID: "7001", PricingParam: "STDQ",
		TotalCount: total, AssignedCount: assigned, ReservedCount: reserved, DeviceAssignable: true, Revocable: true}
}

// refusalCmp compares refusals by code, messages and field.
var refusalCmp = cmp.Options{cmpopts.EquateEmpty()}

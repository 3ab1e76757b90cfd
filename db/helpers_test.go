package db_test

// Shared fixtures of the db tests: each seeds one row through the store's own methods
// (InsertAccount, SaveUser, SaveDevice, InsertAssignment; apps and pools, which only a sync
// pass creates, through InsertRows, the store's fixture insert) and returns it with its id.
// Every seeded row gets unique keys of its own (location, adamId, bundle id, serial number,
// external id), so a test may seed as many as it needs in one database; an option function
// changes the row before it is stored.
//
// The names below are shared with other test files of the package: add helpers, do not rename
// these.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
)

// seedSeq makes the keys of seeded rows unique within a test binary.
var seedSeq atomic.Int64

func nextSeed() int64 { return seedSeq.Add(1) }

// seeded is a complete small world: an account with one pool of an app, a user with a
// device, and an ASSIGNED device license of the pool to the device (the pool's counters say
// so).
type seeded struct {
	Account    *model.Account
	App        *model.App
	Pool       *model.LicensePool
	User       *model.User
	Device     *model.Device
	Assignment *model.LicenseAssignment
}

// seedAll seeds one of every aggregate: see seeded.
func seedAll(t testing.TB, d *db.DB) *seeded {
	t.Helper()
	s := &seeded{}
	s.Account = seedAccount(t, d)
	s.App = seedApp(t, d)
	s.Pool = seedPool(t, d, s.Account, s.App)
	s.User = seedUser(t, d)
	s.Device = seedDevice(t, d, func(dev *model.Device) { dev.UserID = &s.User.ID })
	s.Assignment = seedDeviceAssignment(t, d, s.Pool, s.Device, model.AssignmentAssigned)
	seedPoolCounts(t, d, s.Pool, 1, 0)
	return s
}

// seedAccount stores a live account with an active token.
func seedAccount(t testing.TB, d *db.DB, opts ...func(*model.Account)) *model.Account {
	t.Helper()
	n := nextSeed()
	now := db.Now()
	key := fmt.Sprintf("uid-%d", n)
	a := &model.Account{Name: fmt.Sprintf("Account %d", n), OrgName: "Org", LocationName: "Location", CountryCode: "US",
		AppleUID: key, LocationKey: &key, TokenCiphertext: []byte("sealed"), TokenExpiresAt: now.Add(24 * time.Hour),
		Health: model.TokenHealthActive, HealthChangedAt: now, SyncStatus: model.SyncStatusNever}
	for _, o := range opts {
		o(a)
	}
	if err := d.InsertAccount(context.Background(), a); err != nil {
		t.Fatalf("seed account: %v", err)
	}
	return a
}

// seedApp stores an iOS app.
func seedApp(t testing.TB, d *db.DB, opts ...func(*model.App)) *model.App {
	t.Helper()
	n := nextSeed()
	a := &model.App{AdamID: fmt.Sprintf("%d", 100000+n), Kind: model.AppKindApp, Name: fmt.Sprintf("App %d", n),
		BundleID: fmt.Sprintf("com.example.app%d", n), Platforms: string(model.PlatformIOS)}
	for _, o := range opts {
		o(a)
	}
	if err := d.InsertRows(context.Background(), a); err != nil {
		t.Fatalf("seed app: %v", err)
	}
	return a
}

// seedPool stores a pool of 10 device-assignable, revocable licenses of app owned by account.
func seedPool(t testing.TB, d *db.DB, account *model.Account, app *model.App, opts ...func(*model.LicensePool)) *model.LicensePool {
	t.Helper()
	p := &model.LicensePool{AccountID: account.ID, AppID: app.ID, AdamID: app.AdamID, PricingParam: "STDQ",
		TotalCount: 10, DeviceAssignable: true, Revocable: true}
	for _, o := range opts {
		o(p)
	}
	if err := d.InsertRows(context.Background(), p); err != nil {
		t.Fatalf("seed pool: %v", err)
	}
	return p
}

// seedPoolCounts sets the pool's Orchard counters (assigned, reserved), in the database and
// in p.
func seedPoolCounts(t testing.TB, d *db.DB, p *model.LicensePool, assigned, reserved int64) {
	t.Helper()
	if err := d.SetPoolCounts(context.Background(), p.ID, assigned, reserved); err != nil {
		t.Fatalf("seed pool counts: %v", err)
	}
	p.AssignedCount, p.ReservedCount = assigned, reserved
}

// seedUser stores an active user.
func seedUser(t testing.TB, d *db.DB, opts ...func(*model.User)) *model.User {
	t.Helper()
	n := nextSeed()
	u := &model.User{ExternalID: fmt.Sprintf("ext-%d", n), ClientUserID: fmt.Sprintf("cu-%d", n),
		Email: fmt.Sprintf("user%d@example.com", n), Name: fmt.Sprintf("User %d", n), Status: model.UserActive}
	for _, o := range opts {
		o(u)
	}
	if err := d.SaveUser(context.Background(), u); err != nil {
		t.Fatalf("seed user: %v", err)
	}
	return u
}

// seedDevice stores an active iOS device in the US.
func seedDevice(t testing.TB, d *db.DB, opts ...func(*model.Device)) *model.Device {
	t.Helper()
	n := nextSeed()
	dev := &model.Device{SerialNumber: fmt.Sprintf("SER%06d", n), Name: fmt.Sprintf("Device %d", n),
		Platform: model.PlatformIOS, OSVersion: "17.4", CountryCode: "US", Status: model.DeviceActive}
	for _, o := range opts {
		o(dev)
	}
	if err := d.SaveDevice(context.Background(), dev); err != nil {
		t.Fatalf("seed device: %v", err)
	}
	return dev
}

// seedDeviceAssignment stores a device license of pool to dev in the given status; an
// active one holds its holder key. It does not move the pool's counters (seedPoolCounts).
func seedDeviceAssignment(t testing.TB, d *db.DB, pool *model.LicensePool, dev *model.Device, status model.AssignmentStatus, opts ...func(*model.LicenseAssignment)) *model.LicenseAssignment {
	t.Helper()
	serial := dev.SerialNumber
	a := &model.LicenseAssignment{PoolID: pool.ID, AccountID: pool.AccountID, AppID: pool.AppID, Kind: model.LicenseKindDevice,
		SerialNumber: &serial, DeviceID: &dev.ID, UserID: dev.UserID, Status: status, Origin: model.OriginAdmin,
		Reason: "test", CausedBy: "test"}
	if status.Active() {
		hk := model.HolderKeyFor(model.LicenseKindDevice, serial, "")
		a.HolderKey = &hk
	}
	return insertSeedAssignment(t, d, a, opts)
}

// seedUserAssignment stores a user license of pool to u in the given status (see
// seedDeviceAssignment).
func seedUserAssignment(t testing.TB, d *db.DB, pool *model.LicensePool, u *model.User, status model.AssignmentStatus, opts ...func(*model.LicenseAssignment)) *model.LicenseAssignment {
	t.Helper()
	cu := u.ClientUserID
	a := &model.LicenseAssignment{PoolID: pool.ID, AccountID: pool.AccountID, AppID: pool.AppID, Kind: model.LicenseKindUser,
		ClientUserID: &cu, UserID: &u.ID, Status: status, Origin: model.OriginAdmin, Reason: "test", CausedBy: "test"}
	if status.Active() {
		hk := model.HolderKeyFor(model.LicenseKindUser, "", cu)
		a.HolderKey = &hk
	}
	return insertSeedAssignment(t, d, a, opts)
}

func insertSeedAssignment(t testing.TB, d *db.DB, a *model.LicenseAssignment, opts []func(*model.LicenseAssignment)) *model.LicenseAssignment {
	t.Helper()
	for _, o := range opts {
		o(a)
	}
	if err := d.InsertAssignment(context.Background(), a); err != nil {
		t.Fatalf("seed assignment: %v", err)
	}
	return a
}

// idsOf returns the ids of rows, in their order, for comparing results with cmp.Diff.
func idsOf[T any](rows []*T, id func(*T) int64) []int64 {
	out := make([]int64, len(rows))
	for i, r := range rows {
		out[i] = id(r)
	}
	return out
}

// TestSeedAll checks the fixtures themselves: every seeded row reads back by id with the
// links between them, on every engine.
func TestSeedAll(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := seedAll(t, d)
		second := seedAll(t, d) // keys do not collide
		if second.Account.ID == s.Account.ID || second.Device.SerialNumber == s.Device.SerialNumber {
			t.Fatalf("two seeds share keys: %+v %+v", s.Account, second.Account)
		}
		p, err := d.PoolByID(ctx, s.Pool.ID)
		if err != nil {
			t.Fatal(err)
		}
		dev, err := d.DeviceByID(ctx, s.Device.ID)
		if err != nil {
			t.Fatal(err)
		}
		a, err := d.AssignmentByID(ctx, s.Assignment.ID)
		if err != nil {
			t.Fatal(err)
		}
		type links struct {
			PoolAccount, PoolApp, DeviceUser, AssignmentPool, AssignmentDevice, AssignmentUser, Assigned int64
			HolderKey                                                                                    string
		}
		want := links{s.Account.ID, s.App.ID, s.User.ID, s.Pool.ID, s.Device.ID, s.User.ID, 1, "D:" + s.Device.SerialNumber}
		got := links{p.AccountID, p.AppID, *dev.UserID, a.PoolID, *a.DeviceID, *a.UserID, p.AssignedCount, *a.HolderKey}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("seeded rows mismatch (-want +got):\n%s", diff)
		}
	})
}

// opErr is one case of an errors-name-the-operation table: the operation's name and a call
// that fails.
type opErr struct {
	op   string
	call func() error
}

// closedStore returns d closed: every statement on it fails, so that a test can check which
// operation each failing store function names.
func closedStore(t testing.TB, d *db.DB) *db.DB {
	t.Helper()
	if err := d.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	return d
}

// checkOpErrors runs each call (on a closed store) and checks that its error starts with the
// operation's name, so that a log line says which query failed.
func checkOpErrors(t *testing.T, cases []opErr) {
	t.Helper()
	for _, c := range cases {
		err := c.call()
		if err == nil {
			t.Errorf("%s: no error on a closed database", c.op)
			continue
		}
		if !strings.HasPrefix(err.Error(), c.op+": ") {
			t.Errorf("%s: error %q does not name the operation", c.op, err)
		}
	}
}

// isNotFound checks that err is the store's not-found error, still matchable after wrapping,
// and names the operation.
func isNotFound(t *testing.T, op string, err error) {
	t.Helper()
	if !errors.Is(err, model.ErrNotFound) {
		t.Errorf("%s: got %v, want model.ErrNotFound", op, err)
		return
	}
	if !strings.HasPrefix(err.Error(), op+": ") {
		t.Errorf("%s: not-found error %q does not name the operation", op, err)
	}
}

// bg is the context of the store calls in tests.
func bg() context.Context { return context.Background() }

// sortedIDs returns the ids of rows in ascending order, for batch reads that promise no order.
func sortedIDs[T any](rows []*T, id func(*T) int64) []int64 {
	out := idsOf(rows, id)
	slices.Sort(out)
	return out
}

// Id accessors for idsOf and sortedIDs.
func accountID(a *model.Account) int64              { return a.ID }
func apiKeyID(k *model.APIKey) int64                { return k.ID }
func auditID(e *model.AuditEvent) int64             { return e.ID }
func appID(a *model.App) int64                      { return a.ID }
func commandID(c *model.DeviceCommand) int64        { return c.ID }
func deviceID(d *model.Device) int64                { return d.ID }
func groupID(g *model.Group) int64                  { return g.ID }
func userID(u *model.User) int64                    { return u.ID }
func assignmentID(a *model.LicenseAssignment) int64 { return a.ID }
func syncRunID(r *model.SyncRun) int64              { return r.ID }

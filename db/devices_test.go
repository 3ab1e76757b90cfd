package db_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
)

// TestSaveDevice inserts a new device and updates a known one; a second device with the same
// serial number is ErrDuplicate.
func TestSaveDevice(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		dev := seedDevice(t, d)
		dev.Name, dev.SharedIPad = "Renamed", true
		mustDo(t, d.SaveDevice(bg(), dev))
		got, err := d.DeviceByID(bg(), dev.ID)
		mustDo(t, err)
		if diff := cmp.Diff(dev, got); diff != "" {
			t.Errorf("device mismatch (-want +got):\n%s", diff)
		}
		dup := &model.Device{SerialNumber: dev.SerialNumber, Platform: model.PlatformIOS, Status: model.DeviceActive}
		if err := d.SaveDevice(bg(), dup); !errors.Is(err, db.ErrDuplicate) {
			t.Errorf("second device with serial %s: got %v, want ErrDuplicate", dev.SerialNumber, err)
		}
	})
}

// TestDeviceLookups reads a device by id and by serial number, and devices by serial numbers
// and by ids (unknown keys left out, no keys read nothing); unknown single keys are the
// not-found error named after the lookup.
func TestDeviceLookups(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		a, b, c := seedDevice(t, d), seedDevice(t, d), seedDevice(t, d)
		got, err := d.DeviceBySerial(bg(), b.SerialNumber)
		mustDo(t, err)
		if got.ID != b.ID {
			t.Errorf("device by serial: %d, want %d", got.ID, b.ID)
		}
		_, err = d.DeviceBySerial(bg(), "NONE")
		isNotFound(t, "device by serial", err)
		_, err = d.DeviceByID(bg(), c.ID+1000)
		isNotFound(t, "device by id", err)
		tests := []struct {
			name string
			read func() ([]*model.Device, error)
			want []int64
		}{
			{"by serials", func() ([]*model.Device, error) {
				return d.DevicesBySerials(bg(), []string{c.SerialNumber, a.SerialNumber, "NONE"})
			},
				[]int64{a.ID, c.ID}},
			{"by no serials", func() ([]*model.Device, error) { return d.DevicesBySerials(bg(), nil) }, []int64{}},
			{"by ids", func() ([]*model.Device, error) { return d.DevicesByID(bg(), []int64{b.ID, c.ID, c.ID + 1000}) }, []int64{b.ID, c.ID}},
			{"by no ids", func() ([]*model.Device, error) { return d.DevicesByID(bg(), []int64{}) }, []int64{}},
		}
		for _, tc := range tests {
			got, err := tc.read()
			mustDo(t, err)
			if diff := cmp.Diff(tc.want, sortedIDs(got, deviceID)); diff != "" {
				t.Errorf("%s: mismatch (-want +got):\n%s", tc.name, diff)
			}
		}
	})
}

// TestReplaceInventory replaces a device's inventory: entries kept (by bundle id) keep their
// id and take the new values, entries gone are deleted, new ones are added; other devices'
// inventories are untouched.
func TestReplaceInventory(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		dev, other := seedDevice(t, d), seedDevice(t, d)
		now := db.Now()
		entry := func(bundle, version string) *model.DeviceApp {
			return &model.DeviceApp{BundleID: bundle, Name: bundle, Version: version, Managed: true, ReportedAt: now}
		}
		mustDo(t, d.ReplaceInventory(bg(), dev.ID, []*model.DeviceApp{entry("com.a", "1"), entry("com.b", "1")}))
		mustDo(t, d.ReplaceInventory(bg(), other.ID, []*model.DeviceApp{entry("com.a", "1")}))
		first, err := d.DeviceInventory(bg(), dev.ID)
		mustDo(t, err)
		mustDo(t, d.ReplaceInventory(bg(), dev.ID, []*model.DeviceApp{entry("com.b", "2"), entry("com.c", "1")}))
		got, err := d.DeviceInventory(bg(), dev.ID)
		mustDo(t, err)
		type item struct {
			Bundle, Version string
			SameID          bool
		}
		var items []item
		for _, g := range got {
			items = append(items, item{g.BundleID, g.Version, g.BundleID == "com.b" && g.ID == first[1].ID})
		}
		want := []item{{"com.b", "2", true}, {"com.c", "1", false}}
		if diff := cmp.Diff(want, items); diff != "" {
			t.Errorf("inventory mismatch (-want +got):\n%s", diff)
		}
		others, err := d.DeviceInventory(bg(), other.ID)
		mustDo(t, err)
		if len(others) != 1 || others[0].BundleID != "com.a" {
			t.Errorf("the other device's inventory changed: %+v", others)
		}
		mustDo(t, d.ReplaceInventory(bg(), dev.ID, nil))
		if got, err := d.DeviceInventory(bg(), dev.ID); err != nil || len(got) != 0 {
			t.Errorf("emptied inventory: %d entries, %v", len(got), err)
		}
	})
}

// TestUserHasAppOnDevices reports an app in the inventory of one of the user's active
// devices; a retired device or another user's device does not count.
func TestUserHasAppOnDevices(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		u, other := seedUser(t, d), seedUser(t, d)
		active := seedDevice(t, d, func(x *model.Device) { x.UserID = &u.ID })
		retired := seedDevice(t, d, func(x *model.Device) { x.UserID = &u.ID; x.Status = model.DeviceRetired })
		others := seedDevice(t, d, func(x *model.Device) { x.UserID = &other.ID })
		now := db.Now()
		inv := func(dev *model.Device, bundle string) {
			mustDo(t, d.ReplaceInventory(bg(), dev.ID, []*model.DeviceApp{{BundleID: bundle, ReportedAt: now}}))
		}
		inv(active, "com.active")
		inv(retired, "com.retired")
		inv(others, "com.other")
		tests := []struct {
			bundle string
			want   bool
		}{{"com.active", true}, {"com.retired", false}, {"com.other", false}, {"com.none", false}}
		for _, tc := range tests {
			got, err := d.UserHasAppOnDevices(bg(), u.ID, tc.bundle)
			mustDo(t, err)
			if got != tc.want {
				t.Errorf("%s: %v, want %v", tc.bundle, got, tc.want)
			}
		}
	})
}

// TestListDevices filters by status, platform, shared iPad, user, country (any case) and
// search text (serial or name), in id order, and counts the same set.
func TestListDevices(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		u := seedUser(t, d)
		phone := seedDevice(t, d, func(x *model.Device) { x.Name = "Alice's iPhone"; x.UserID = &u.ID })
		ipad := seedDevice(t, d, func(x *model.Device) { x.Platform = model.PlatformIPadOS; x.SharedIPad = true; x.CountryCode = "DE" })
		old := seedDevice(t, d, func(x *model.Device) { x.Status = model.DeviceRetired; x.SerialNumber = "OLD_1" })
		yes := true
		tests := []struct {
			name string
			f    db.DeviceFilter
			want []int64
		}{
			{"all", db.DeviceFilter{}, []int64{phone.ID, ipad.ID, old.ID}},
			{"status", db.DeviceFilter{Status: model.DeviceActive}, []int64{phone.ID, ipad.ID}},
			{"platform", db.DeviceFilter{Platform: model.PlatformIPadOS}, []int64{ipad.ID}},
			{"shared iPad", db.DeviceFilter{SharedIPad: &yes}, []int64{ipad.ID}},
			{"user", db.DeviceFilter{UserID: u.ID}, []int64{phone.ID}},
			{"country any case", db.DeviceFilter{CountryCode: "de"}, []int64{ipad.ID}},
			{"search name", db.DeviceFilter{Search: "alice"}, []int64{phone.ID}},
			{"search serial, underscore literal", db.DeviceFilter{Search: "d_1"}, []int64{old.ID}},
		}
		for _, tc := range tests {
			got, more, err := d.ListDevices(bg(), tc.f, db.Page{First: 10})
			mustDo(t, err)
			if diff := cmp.Diff(tc.want, idsOf(got, deviceID)); diff != "" || more {
				t.Errorf("%s: mismatch (-want +got), more %v:\n%s", tc.name, more, diff)
			}
			n, err := d.CountDevices(bg(), tc.f)
			mustDo(t, err)
			if n != len(tc.want) {
				t.Errorf("%s: count %d, want %d", tc.name, n, len(tc.want))
			}
		}
	})
}

// TestDevicesByUser lists one page of devices per user, in id order after each user's
// cursor, with a count per user; users without devices are absent; no users read nothing.
func TestDevicesByUser(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		u1, u2, u3 := seedUser(t, d), seedUser(t, d), seedUser(t, d)
		var of1 []int64
		for range 4 {
			of1 = append(of1, seedDevice(t, d, func(x *model.Device) { x.UserID = &u1.ID }).ID)
		}
		of2 := seedDevice(t, d, func(x *model.Device) { x.UserID = &u2.ID }).ID
		got, err := d.DevicesByUser(bg(), 2, []db.ChildPage{{ParentID: u1.ID, After: of1[0]}, {ParentID: u2.ID}, {ParentID: u3.ID}})
		mustDo(t, err)
		ids := map[int64][]int64{}
		for k, v := range got {
			ids[k] = idsOf(v, deviceID)
		}
		// First+1 rows per parent: the loader learns from the extra row that a page follows.
		want := map[int64][]int64{u1.ID: {of1[1], of1[2], of1[3]}, u2.ID: {of2}}
		if diff := cmp.Diff(want, ids); diff != "" {
			t.Errorf("devices by user mismatch (-want +got):\n%s", diff)
		}
		counts, err := d.CountDevicesByUser(bg(), []int64{u1.ID, u2.ID, u3.ID})
		mustDo(t, err)
		if diff := cmp.Diff(map[int64]int{u1.ID: 4, u2.ID: 1}, counts); diff != "" {
			t.Errorf("counts mismatch (-want +got):\n%s", diff)
		}
		var sc db.StatementCounter
		c := db.WithStatementCounter(bg(), &sc)
		none, err := d.DevicesByUser(c, 2, nil)
		mustDo(t, err)
		noCounts, err := d.CountDevicesByUser(c, nil)
		mustDo(t, err)
		if len(none) != 0 || len(noCounts) != 0 || sc.Count() != 0 {
			t.Errorf("no users: %d pages, %d counts, %d statements; want none", len(none), len(noCounts), sc.Count())
		}
	})
}

// TestDeviceAppsByDevice lists one page of inventory per device, in id order, with a count
// per device.
func TestDeviceAppsByDevice(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		a, b := seedDevice(t, d), seedDevice(t, d)
		now := db.Now()
		mustDo(t, d.ReplaceInventory(bg(), a.ID, []*model.DeviceApp{{BundleID: "com.1", ReportedAt: now}, {BundleID: "com.2", ReportedAt: now}, {BundleID: "com.3", ReportedAt: now}}))
		inv, err := d.DeviceInventory(bg(), a.ID)
		mustDo(t, err)
		got, err := d.DeviceAppsByDevice(bg(), 1, []db.ChildPage{{ParentID: a.ID}, {ParentID: b.ID}})
		mustDo(t, err)
		bundles := map[int64][]string{}
		for k, v := range got {
			for _, x := range v {
				bundles[k] = append(bundles[k], x.BundleID)
			}
		}
		if diff := cmp.Diff(map[int64][]string{a.ID: {inv[0].BundleID, inv[1].BundleID}}, bundles); diff != "" {
			t.Errorf("device apps mismatch (-want +got):\n%s", diff)
		}
		counts, err := d.CountDeviceAppsByDevice(bg(), []int64{a.ID, b.ID})
		mustDo(t, err)
		if diff := cmp.Diff(map[int64]int{a.ID: 3}, counts); diff != "" {
			t.Errorf("counts mismatch (-want +got):\n%s", diff)
		}
	})
}

// TestDeviceErrorsNameTheOperation: see TestAccountErrorsNameTheOperation.
func TestDeviceErrorsNameTheOperation(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		d = closedStore(t, d)
		pages := []db.ChildPage{{ParentID: 1}}
		checkOpErrors(t, []opErr{
			{"device apps by device", func() error { _, err := d.DeviceAppsByDevice(bg(), 1, pages); return err }},
			{"count device apps by device", func() error { _, err := d.CountDeviceAppsByDevice(bg(), []int64{1}); return err }},
			{"devices by user", func() error { _, err := d.DevicesByUser(bg(), 1, pages); return err }},
			{"count devices by user", func() error { _, err := d.CountDevicesByUser(bg(), []int64{1}); return err }},
			{"device by id", func() error { _, err := d.DeviceByID(bg(), 1); return err }},
			{"save device", func() error { return d.SaveDevice(bg(), &model.Device{}) }},
			{"save device", func() error { return d.SaveDevice(bg(), &model.Device{ID: 1}) }},
			{"devices by serials", func() error { _, err := d.DevicesBySerials(bg(), []string{"x"}); return err }},
			{"device inventory", func() error { _, err := d.DeviceInventory(bg(), 1); return err }},
			{"replace inventory", func() error { return d.ReplaceInventory(bg(), 1, nil) }},
			{"user has app on devices", func() error { _, err := d.UserHasAppOnDevices(bg(), 1, "x"); return err }},
			{"list devices", func() error { _, _, err := d.ListDevices(bg(), db.DeviceFilter{}, db.Page{First: 1}); return err }},
			{"count devices", func() error { _, err := d.CountDevices(bg(), db.DeviceFilter{}); return err }},
			{"devices by id", func() error { _, err := d.DevicesByID(bg(), []int64{1}); return err }},
			{"device by serial", func() error { _, err := d.DeviceBySerial(bg(), "x"); return err }},
			{"devices after", func() error { _, err := d.DevicesAfter(bg(), 0, 1); return err }},
			{"devices of users", func() error { _, err := d.DevicesOfUsers(bg(), []int64{1}); return err }},
		})
	})
}

// TestDevicesAfter pages through devices in id order (a dynamic group's first fill, the
// policy snapshot): a batch after a cursor, the limit, the last batch short, nothing after
// the last device.
func TestDevicesAfter(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		var all []int64
		for range 4 {
			all = append(all, seedDevice(t, d).ID)
		}
		for _, tt := range []struct {
			name  string
			after int64
			limit int
			want  []int64
		}{
			{"from the start, two", 0, 2, all[:2]},
			{"after the first, two", all[0], 2, all[1:3]},
			{"the last batch is short", all[2], 10, all[3:]},
			{"nothing after the last", all[3], 10, []int64{}},
		} {
			got, err := d.DevicesAfter(bg(), tt.after, tt.limit)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if diff := cmp.Diff(tt.want, idsOf(got, deviceID)); diff != "" {
				t.Errorf("%s: devices after mismatch (-want +got):\n%s", tt.name, diff)
			}
		}
	})
}

// TestDevicesOfUsers reads every device of the given users, in id order, whatever the
// number of users: unknown users and users without devices add nothing, no users reads
// nothing (no statement), and more users than one statement takes are read in chunks.
func TestDevicesOfUsers(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		u1, u2, u3 := seedUser(t, d), seedUser(t, d), seedUser(t, d)
		// Interleaved so that id order is not user order.
		a := seedDevice(t, d, func(x *model.Device) { x.UserID = &u2.ID }).ID
		b := seedDevice(t, d, func(x *model.Device) { x.UserID = &u1.ID }).ID
		c := seedDevice(t, d, func(x *model.Device) { x.UserID = &u2.ID }).ID
		seedDevice(t, d) // no user
		for _, tt := range []struct {
			name  string
			users []int64
			want  []int64
		}{
			{"two users, id order", []int64{u1.ID, u2.ID}, []int64{a, b, c}},
			{"one user", []int64{u1.ID}, []int64{b}},
			{"a user without devices and an unknown one", []int64{u3.ID, u3.ID + 1000}, []int64{}},
		} {
			got, err := d.DevicesOfUsers(bg(), tt.users)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if diff := cmp.Diff(tt.want, idsOf(got, deviceID)); diff != "" {
				t.Errorf("%s: devices of users mismatch (-want +got):\n%s", tt.name, diff)
			}
		}

		var sc db.StatementCounter
		got, err := d.DevicesOfUsers(db.WithStatementCounter(bg(), &sc), nil)
		mustDo(t, err)
		if got == nil || len(got) != 0 || sc.Count() != 0 {
			t.Errorf("no users: %v in %d statements, want an empty list and none", got, sc.Count())
		}

		// 2,500 user ids (the two real ones last) are more than one IN list of either engine
		// (250 on SQLite, 1,000 on MySQL): the read is split, and still finds both users'
		// devices.
		many := make([]int64, 0, 2500)
		for i := range int64(2498) {
			many = append(many, u3.ID+1000+i)
		}
		many = append(many, u2.ID, u1.ID)
		sc = db.StatementCounter{}
		got, err = d.DevicesOfUsers(db.WithStatementCounter(bg(), &sc), many)
		mustDo(t, err)
		if diff := cmp.Diff([]int64{a, b, c}, sortedIDs(got, deviceID)); diff != "" {
			t.Errorf("many users: devices mismatch (-want +got):\n%s", diff)
		}
		if sc.Count() < 3 {
			t.Errorf("many users: %d statements, want one per chunk (at least 3)", sc.Count())
		}
	})
}

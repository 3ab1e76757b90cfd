package db_test

import (
	"testing"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
)

// TestStatementCounter counts every kind of statement (query, create, update, delete, raw,
// count) issued with its context, inside transactions too, and only those: a context
// without a counter, or with another counter, does not add to it.
func TestStatementCounter(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		s := seedAll(t, d)
		var sc, other db.StatementCounter
		c := db.WithStatementCounter(bg(), &sc)
		step := func(name string, want int64, fn func() error) {
			t.Helper()
			before := sc.Count()
			mustDo(t, fn())
			if got := sc.Count() - before; got != want {
				t.Errorf("%s: counted %d statements, want %d", name, got, want)
			}
		}
		step("query", 1, func() error { _, err := d.AccountByID(c, s.Account.ID); return err })
		step("count", 1, func() error { _, err := d.CountDevices(c, db.DeviceFilter{}); return err })
		step("raw", 1, func() error { _, err := d.CountDevicesByUser(c, []int64{s.User.ID}); return err })
		step("create", 1, func() error {
			return d.InsertCommands(c, &model.DeviceCommand{DeviceID: s.Device.ID, AppID: s.App.ID, Kind: model.CommandInstall, Status: model.CommandPending})
		})
		step("update", 1, func() error { return d.CancelCommands(c, s.Device.ID, "test") })
		step("read, delete and create", 3, func() error {
			mustDo(t, d.ReplaceInventory(bg(), s.Device.ID, []*model.DeviceApp{{BundleID: "com.a", ReportedAt: db.Now()}}))
			return d.ReplaceInventory(c, s.Device.ID, []*model.DeviceApp{{BundleID: "com.b", ReportedAt: db.Now()}})
		})
		step("in a transaction", 2, func() error {
			return d.Tx(c, func(tx *db.DB) error {
				if _, err := tx.LockAccount(c, s.Account.ID); err != nil {
					return err
				}
				_, err := tx.AssignmentByID(c, s.Assignment.ID)
				return err
			})
		})
		step("another counter's context", 0, func() error {
			_, err := d.AccountByID(db.WithStatementCounter(bg(), &other), s.Account.ID)
			return err
		})
		step("no counter", 0, func() error { _, err := d.AccountByID(bg(), s.Account.ID); return err })
		if other.Count() != 1 {
			t.Errorf("the other counter counted %d, want 1", other.Count())
		}
	})
}

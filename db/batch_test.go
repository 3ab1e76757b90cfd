package db_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
)

// TestBatchOfBoundsParameters inserts a batch of models (batch.go's batchOf): on SQLite, whose
// driver binds parameters in quadratic time, a statement carries at most 500 parameters
// (500 / columns rows); MySQL takes 500 rows a statement. Every row is stored either way.
func TestBatchOfBoundsParameters(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		s := seedAll(t, d)
		cols, err := d.Columns(bg(), "device_commands")
		mustDo(t, err)
		perStatement := 500
		if d.Dialect() == db.SQLite {
			perStatement = 500 / len(cols)
		}
		for _, n := range []int{1, perStatement, perStatement + 1, 3*perStatement + 7} {
			cmds := make([]*model.DeviceCommand, n)
			for i := range cmds {
				cmds[i] = &model.DeviceCommand{DeviceID: s.Device.ID, AppID: s.App.ID, Kind: model.CommandInstall, Status: model.CommandPending,
					Reason: fmt.Sprint("batch ", n)}
			}
			var sc db.StatementCounter
			mustDo(t, d.InsertCommands(db.WithStatementCounter(bg(), &sc), cmds...))
			want := int64((n + perStatement - 1) / perStatement)
			if sc.Count() != want {
				t.Errorf("%d rows: %d statements, want %d (%d rows each)", n, sc.Count(), want, perStatement)
			}
			ids := idsOf(cmds, commandID)
			got, err := d.CommandsByID(bg(), ids)
			mustDo(t, err)
			if len(got) != n {
				t.Errorf("%d rows: %d stored", n, len(got))
			}
		}
	})
}

// TestInsertRowsInChunks applies pages of assignments found at Apple, which batch.go's
// insertRows writes a bounded number of rows per statement (a thousand on SQLite, in one JSON
// parameter; 500 on MySQL) with conflicts ignored: every row is stored once with its values,
// a page of 40 rows costs no more statements than a page of one, a page of 2,500 rows (over
// several statements on both engines) is stored whole, and applying pages again inserts
// nothing.
func TestInsertRowsInChunks(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		acct, app := seedAccount(t, d), seedApp(t, d)
		pool := seedPool(t, d, acct, app, func(p *model.LicensePool) { p.TotalCount = 10000 })
		pools := map[string]db.PoolRef{db.AssetKey(app.AdamID, pool.PricingParam): {PoolID: pool.ID, AppID: app.ID}}
		page := func(from, n int) []db.AppleAssignmentRow {
			rows := make([]db.AppleAssignmentRow, n)
			for i := range rows {
				rows[i] = db.AppleAssignmentRow{AdamID: app.AdamID, PricingParam: pool.PricingParam, SerialNumber: fmt.Sprintf("FOUND%04d", from+i)}
			}
			return rows
		}
		apply := func(rows []db.AppleAssignmentRow) (db.SyncCounts, int64) {
			var sc db.StatementCounter
			counts, skipped, err := d.ApplyAssignments(db.WithStatementCounter(bg(), &sc), acct.ID, 0, rows, pools)
			mustDo(t, err)
			if skipped != 0 {
				t.Errorf("%d rows skipped", skipped)
			}
			return counts, sc.Count()
		}
		before := time.Now().Add(-time.Second)
		oneCounts, one := apply(page(0, 1))
		forty, statements := apply(page(1, 40))
		big, _ := apply(page(41, 2500))
		if diff := cmp.Diff([]db.SyncCounts{{Added: 1}, {Added: 40}, {Added: 2500}}, []db.SyncCounts{oneCounts, forty, big}); diff != "" {
			t.Errorf("counts mismatch (-want +got):\n%s", diff)
		}
		if statements != one {
			t.Errorf("a page of 40 ran %d statements, one of 1 ran %d: want as many", statements, one)
		}
		if again, _ := apply(page(0, 2541)); again != (db.SyncCounts{}) {
			t.Errorf("applying the same rows again: %+v, want nothing", again)
		}
		var all []*model.LicenseAssignment
		for p := (db.Page{First: 1000}); ; {
			got, more, err := d.ListAssignments(bg(), db.AssignmentFilter{PoolID: pool.ID}, p)
			mustDo(t, err)
			all = append(all, got...)
			if !more {
				break
			}
			p.After = got[len(got)-1].ID
		}
		if len(all) != 2541 {
			t.Fatalf("%d assignments stored, want 2541", len(all))
		}
		for _, a := range all {
			if a.AssignedAt == nil || a.AssignedAt.Before(before) || a.AssignedAt.After(time.Now().Add(time.Second)) || !a.CreatedAt.Equal(*a.AssignedAt) {
				t.Fatalf("assignment %s: assigned at %v, created at %v, want the time of the insert in both", *a.SerialNumber, a.AssignedAt, a.CreatedAt)
			}
		}
		type row struct {
			Serial, HolderKey string
			Status            model.AssignmentStatus
			Origin            model.AssignmentOrigin
		}
		var rows, want []row
		for _, a := range all {
			rows = append(rows, row{*a.SerialNumber, *a.HolderKey, a.Status, a.Origin})
		}
		// A page is inserted in no particular order: compare by serial number.
		slices.SortFunc(rows, func(a, b row) int { return strings.Compare(a.Serial, b.Serial) })
		for i := range 2541 {
			serial := fmt.Sprintf("FOUND%04d", i)
			want = append(want, row{serial, "D:" + serial, model.AssignmentAssigned, model.OriginFoundAtApple})
		}
		if diff := cmp.Diff(want, rows); diff != "" {
			t.Errorf("stored rows mismatch (-want +got):\n%s", diff)
		}
	})
}

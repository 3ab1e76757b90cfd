package db_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
)

// TestKeysetPages walks a filtered list page by page (page.go's list), ascending and newest
// first: the pages are in id order, do not overlap, cover the set, and say whether another
// follows; a cursor past the end gives an empty last page.
func TestKeysetPages(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		var all []int64
		for range 5 {
			all = append(all, seedDevice(t, d).ID)
		}
		seedDevice(t, d, func(x *model.Device) { x.Status = model.DeviceRetired }) // filtered out
		walk := func(desc bool) ([][]int64, []bool) {
			var pages [][]int64
			var mores []bool
			after := int64(0)
			for range 10 {
				got, more, err := d.ListDevices(bg(), db.DeviceFilter{Status: model.DeviceActive}, db.Page{First: 2, After: after, Desc: desc})
				mustDo(t, err)
				pages = append(pages, idsOf(got, deviceID))
				mores = append(mores, more)
				if !more {
					break
				}
				after = got[len(got)-1].ID
			}
			return pages, mores
		}
		tests := []struct {
			name      string
			desc      bool
			wantPages [][]int64
			wantMore  []bool
		}{
			{"ascending", false, [][]int64{{all[0], all[1]}, {all[2], all[3]}, {all[4]}}, []bool{true, true, false}},
			{"newest first", true, [][]int64{{all[4], all[3]}, {all[2], all[1]}, {all[0]}}, []bool{true, true, false}},
		}
		for _, tc := range tests {
			pages, mores := walk(tc.desc)
			if diff := cmp.Diff(tc.wantPages, pages); diff != "" {
				t.Errorf("%s: pages mismatch (-want +got):\n%s", tc.name, diff)
			}
			if diff := cmp.Diff(tc.wantMore, mores); diff != "" {
				t.Errorf("%s: more mismatch (-want +got):\n%s", tc.name, diff)
			}
		}
		past, more, err := d.ListDevices(bg(), db.DeviceFilter{}, db.Page{First: 2, After: all[4] + 1000})
		mustDo(t, err)
		if len(past) != 0 || more {
			t.Errorf("past the end: %d rows, more %v", len(past), more)
		}
	})
}

// TestChildPages lists the children of many parents in one statement (page.go's childrenOf):
// each parent gets its own page after its own cursor, First+1 rows at most (the extra row
// tells the loader a page follows) however many children the others have, and a count per
// parent (countChildren); the statements do not grow with the number of parents.
func TestChildPages(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		users := make([]*model.User, 4)
		devices := map[int64][]int64{}
		for i := range users {
			users[i] = seedUser(t, d)
			for range i * 2 { // 0, 2, 4, 6 devices
				devices[users[i].ID] = append(devices[users[i].ID], seedDevice(t, d, func(x *model.Device) { x.UserID = &users[i].ID }).ID)
			}
		}
		u := func(i int) int64 { return users[i].ID }
		pages := []db.ChildPage{{ParentID: u(0)}, {ParentID: u(1)}, {ParentID: u(2), After: devices[u(2)][0]}, {ParentID: u(3), After: devices[u(3)][1]}}
		var sc db.StatementCounter
		got, err := d.DevicesByUser(db.WithStatementCounter(bg(), &sc), 2, pages)
		mustDo(t, err)
		ids := map[int64][]int64{}
		for k, v := range got {
			ids[k] = idsOf(v, deviceID)
		}
		want := map[int64][]int64{
			u(1): devices[u(1)],      // both of 2
			u(2): devices[u(2)][1:4], // after the first: 3 of 3 left
			u(3): devices[u(3)][2:5], // after the second: 3 (First+1) of 4 left
		}
		if diff := cmp.Diff(want, ids); diff != "" {
			t.Errorf("pages mismatch (-want +got):\n%s", diff)
		}
		counts, err := d.CountDevicesByUser(db.WithStatementCounter(bg(), &sc), []int64{u(0), u(1), u(2), u(3)})
		mustDo(t, err)
		if diff := cmp.Diff(map[int64]int{u(1): 2, u(2): 4, u(3): 6}, counts); diff != "" {
			t.Errorf("counts mismatch (-want +got):\n%s", diff)
		}
		if sc.Count() != 2 {
			t.Errorf("%d statements for 4 parents' pages and counts, want 2", sc.Count())
		}
	})
}

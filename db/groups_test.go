package db_test

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
)

func seedGroup(t *testing.T, d *db.DB, name string, members ...*model.User) *model.Group {
	t.Helper()
	g := &model.Group{ExternalID: fmt.Sprintf("grp-%d", nextSeed()), Name: name}
	mustDo(t, d.SaveGroup(bg(), g))
	ids := idsOf(members, userID)
	if len(ids) > 0 {
		_, _, err := d.AddGroupMembers(bg(), g.ID, ids, nil, db.Now())
		mustDo(t, err)
	}
	return g
}

// TestGroupsByUser lists one page of groups per user and one page of members per group (both
// through group_members, in id order after the cursor), with counts; parents without
// children are absent, and no parents read nothing.
func TestGroupsByUser(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		u1, u2, u3 := seedUser(t, d), seedUser(t, d), seedUser(t, d)
		g1 := seedGroup(t, d, "One", u1, u2)
		g2 := seedGroup(t, d, "Two", u1)
		g3 := seedGroup(t, d, "Three", u1, u2, u3)
		empty := seedGroup(t, d, "Empty")

		groups, err := d.GroupsByUser(bg(), 5, []db.ChildPage{{ParentID: u1.ID, After: g1.ID}, {ParentID: u2.ID}, {ParentID: u3.ID + 1000}})
		mustDo(t, err)
		gotGroups := map[int64][]int64{}
		for k, v := range groups {
			gotGroups[k] = idsOf(v, groupID)
		}
		if diff := cmp.Diff(map[int64][]int64{u1.ID: {g2.ID, g3.ID}, u2.ID: {g1.ID, g3.ID}}, gotGroups); diff != "" {
			t.Errorf("groups by user mismatch (-want +got):\n%s", diff)
		}
		members, err := d.MembersByGroup(bg(), 1, []db.ChildPage{{ParentID: g3.ID}, {ParentID: g1.ID, After: u1.ID}, {ParentID: empty.ID}})
		mustDo(t, err)
		gotMembers := map[int64][]int64{}
		for k, v := range members {
			gotMembers[k] = idsOf(v, userID)
		}
		// First+1 rows: the extra one tells the loader that a page follows.
		if diff := cmp.Diff(map[int64][]int64{g3.ID: {u1.ID, u2.ID}, g1.ID: {u2.ID}}, gotMembers); diff != "" {
			t.Errorf("members by group mismatch (-want +got):\n%s", diff)
		}
		groupCounts, err := d.CountGroupsByUser(bg(), []int64{u1.ID, u2.ID, u3.ID})
		mustDo(t, err)
		if diff := cmp.Diff(map[int64]int{u1.ID: 3, u2.ID: 2, u3.ID: 1}, groupCounts); diff != "" {
			t.Errorf("group counts mismatch (-want +got):\n%s", diff)
		}
		memberCounts, err := d.CountMembersByGroup(bg(), []int64{g1.ID, g2.ID, g3.ID, empty.ID})
		mustDo(t, err)
		if diff := cmp.Diff(map[int64]int{g1.ID: 2, g2.ID: 1, g3.ID: 3}, memberCounts); diff != "" {
			t.Errorf("member counts mismatch (-want +got):\n%s", diff)
		}
		var sc db.StatementCounter
		c := db.WithStatementCounter(bg(), &sc)
		a, err := d.GroupsByUser(c, 5, nil)
		mustDo(t, err)
		b, err := d.MembersByGroup(c, 5, nil)
		mustDo(t, err)
		n1, err := d.CountGroupsByUser(c, nil)
		mustDo(t, err)
		n2, err := d.CountMembersByGroup(c, nil)
		mustDo(t, err)
		if len(a)+len(b)+len(n1)+len(n2) != 0 || sc.Count() != 0 {
			t.Errorf("no parents: %d results, %d statements; want none", len(a)+len(b)+len(n1)+len(n2), sc.Count())
		}
	})
}

// TestListGroups filters by search text (name or external id, any case), in id order, and
// counts the same set; GroupsByID reads the groups asked.
func TestListGroups(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		sales := seedGroup(t, d, "Sales")
		staff := seedGroup(t, d, "Staff 100%")
		tests := []struct {
			name string
			f    db.GroupFilter
			want []int64
		}{
			{"all", db.GroupFilter{}, []int64{sales.ID, staff.ID}},
			{"name any case", db.GroupFilter{Search: "SAL"}, []int64{sales.ID}},
			{"external id", db.GroupFilter{Search: staff.ExternalID}, []int64{staff.ID}},
			{"percent literal", db.GroupFilter{Search: "0%"}, []int64{staff.ID}},
			{"no match", db.GroupFilter{Search: "zzz"}, []int64{}},
		}
		for _, tc := range tests {
			got, more, err := d.ListGroups(bg(), tc.f, db.Page{First: 10})
			mustDo(t, err)
			if diff := cmp.Diff(tc.want, idsOf(got, groupID)); diff != "" || more {
				t.Errorf("%s: mismatch (-want +got), more %v:\n%s", tc.name, more, diff)
			}
			n, err := d.CountGroups(bg(), tc.f)
			mustDo(t, err)
			if n != len(tc.want) {
				t.Errorf("%s: count %d, want %d", tc.name, n, len(tc.want))
			}
		}
		byID, err := d.GroupsByID(bg(), []int64{staff.ID, staff.ID + 1000})
		mustDo(t, err)
		if diff := cmp.Diff([]int64{staff.ID}, idsOf(byID, groupID)); diff != "" {
			t.Errorf("groups by id mismatch (-want +got):\n%s", diff)
		}
	})
}

// TestGroupErrorsNameTheOperation: see TestAccountErrorsNameTheOperation.
func TestGroupErrorsNameTheOperation(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		d = closedStore(t, d)
		pages := []db.ChildPage{{ParentID: 1}}
		checkOpErrors(t, []opErr{
			{"groups by user", func() error { _, err := d.GroupsByUser(bg(), 1, pages); return err }},
			{"count groups by user", func() error { _, err := d.CountGroupsByUser(bg(), []int64{1}); return err }},
			{"members by group", func() error { _, err := d.MembersByGroup(bg(), 1, pages); return err }},
			{"count members by group", func() error { _, err := d.CountMembersByGroup(bg(), []int64{1}); return err }},
			{"list groups", func() error { _, _, err := d.ListGroups(bg(), db.GroupFilter{}, db.Page{First: 1}); return err }},
			{"count groups", func() error { _, err := d.CountGroups(bg(), db.GroupFilter{}); return err }},
			{"groups by id", func() error { _, err := d.GroupsByID(bg(), []int64{1}); return err }},
		})
	})
}

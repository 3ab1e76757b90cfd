package db_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
)

// assignmentWorld is two accounts, each with a revocable pool of one app (and account A a
// second, non-revocable pool of another app), a user with a device, and assignments in
// several states.
type assignmentWorld struct {
	a, b                 *model.Account
	app, app2            *model.App
	poolA, poolA2, poolB *model.LicensePool
	user                 *model.User
	dev, dev2            *model.Device
	// Assignments: in poolA, dev ASSIGNED, dev2 PENDING, user RECLAIMING (user license),
	// dev FAILED (inactive); in poolA2 (not revocable) dev ASSIGNED; in poolB dev2 ASSIGNED.
	assigned, pending, reclaiming, failed, assignedA2, assignedB *model.LicenseAssignment
}

func newAssignmentWorld(t *testing.T, d *db.DB) *assignmentWorld {
	t.Helper()
	w := &assignmentWorld{}
	w.a, w.b = seedAccount(t, d), seedAccount(t, d)
	w.app, w.app2 = seedApp(t, d), seedApp(t, d)
	w.poolA = seedPool(t, d, w.a, w.app)
	w.poolA2 = seedPool(t, d, w.a, w.app2, func(p *model.LicensePool) { p.Revocable = false })
	w.poolB = seedPool(t, d, w.b, w.app)
	w.user = seedUser(t, d)
	w.dev = seedDevice(t, d, func(x *model.Device) { x.UserID = &w.user.ID })
	w.dev2 = seedDevice(t, d)
	w.assigned = seedDeviceAssignment(t, d, w.poolA, w.dev, model.AssignmentAssigned)
	w.pending = seedDeviceAssignment(t, d, w.poolA, w.dev2, model.AssignmentPending)
	w.reclaiming = seedUserAssignment(t, d, w.poolA, w.user, model.AssignmentReclaiming)
	w.failed = seedDeviceAssignment(t, d, w.poolA, w.dev, model.AssignmentFailed)
	w.assignedA2 = seedDeviceAssignment(t, d, w.poolA2, w.dev, model.AssignmentAssigned)
	w.assignedB = seedDeviceAssignment(t, d, w.poolB, w.dev2, model.AssignmentAssigned)
	return w
}

// TestInsertAssignment stores an assignment that reads back as written (plain and locked);
// a second active assignment of the pool to the same holder is ErrHolderHasLicense, while
// an inactive one (no holder key) is not limited. An unknown id is the not-found error.
func TestInsertAssignment(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		s := seedAll(t, d)
		got, err := d.AssignmentByID(bg(), s.Assignment.ID)
		mustDo(t, err)
		if diff := cmp.Diff(s.Assignment, got); diff != "" {
			t.Errorf("assignment mismatch (-want +got):\n%s", diff)
		}
		mustDo(t, d.Tx(bg(), func(tx *db.DB) error {
			locked, err := tx.LockAssignment(bg(), s.Assignment.ID)
			if err == nil && locked.ID != s.Assignment.ID {
				t.Errorf("locked %d, want %d", locked.ID, s.Assignment.ID)
			}
			_, miss := tx.LockAssignment(bg(), s.Assignment.ID+1000)
			isNotFound(t, "lock assignment", miss)
			return err
		}))
		_, err = d.AssignmentByID(bg(), s.Assignment.ID+1000)
		isNotFound(t, "assignment by id", err)

		serial := s.Device.SerialNumber
		hk := model.HolderKeyFor(model.LicenseKindDevice, serial, "")
		again := &model.LicenseAssignment{PoolID: s.Pool.ID, AccountID: s.Account.ID, AppID: s.App.ID, Kind: model.LicenseKindDevice,
			SerialNumber: &serial, HolderKey: &hk, Status: model.AssignmentPending, Origin: model.OriginAdmin}
		if err := d.InsertAssignment(bg(), again); !errors.Is(err, db.ErrHolderHasLicense) {
			t.Errorf("second active assignment to a holder: got %v, want ErrHolderHasLicense", err)
		}
		seedDeviceAssignment(t, d, s.Pool, s.Device, model.AssignmentFailed)
		seedDeviceAssignment(t, d, s.Pool, s.Device, model.AssignmentReclaimed)
	})
}

// TestInsertAssignments stores a batch of several statements on SQLite (see batch_test.go), and
// maps a duplicate holder onto ErrHolderHasLicense; an empty batch writes nothing.
func TestInsertAssignments(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		acct, app := seedAccount(t, d), seedApp(t, d)
		pool := seedPool(t, d, acct, app, func(p *model.LicensePool) { p.TotalCount = 1000 })
		const n = 120
		batch := make([]*model.LicenseAssignment, n)
		for i := range batch {
			serial := fmt.Sprintf("BULK%03d", i)
			hk := model.HolderKeyFor(model.LicenseKindDevice, serial, "")
			batch[i] = &model.LicenseAssignment{PoolID: pool.ID, AccountID: acct.ID, AppID: app.ID, Kind: model.LicenseKindDevice,
				SerialNumber: &serial, HolderKey: &hk, Status: model.AssignmentPending, Origin: model.OriginAdmin}
		}
		mustDo(t, d.InsertAssignments(bg(), batch))
		ids, err := d.ActiveAssignmentIDs(bg(), batch)
		mustDo(t, err)
		if diff := cmp.Diff(idsOf(batch, assignmentID), ids); diff != "" {
			t.Errorf("ids read back by holder mismatch (-want +got):\n%s", diff)
		}
		n2, err := d.CountAssignments(bg(), db.AssignmentFilter{PoolID: pool.ID})
		mustDo(t, err)
		if n2 != n {
			t.Errorf("stored %d assignments, want %d", n2, n)
		}
		dup := *batch[7]
		dup.ID = 0
		if err := d.InsertAssignments(bg(), []*model.LicenseAssignment{&dup}); !errors.Is(err, db.ErrHolderHasLicense) {
			t.Errorf("duplicate holder in a batch: got %v, want ErrHolderHasLicense", err)
		}
		var sc db.StatementCounter
		mustDo(t, d.InsertAssignments(db.WithStatementCounter(bg(), &sc), nil))
		if sc.Count() != 0 {
			t.Errorf("an empty batch ran %d statements", sc.Count())
		}
	})
}

// TestActiveAssignmentIDs returns the ids in the order of the rows given, whatever the order
// of insertion, and fails (naming the operation) when a row has no active assignment.
func TestActiveAssignmentIDs(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		w := newAssignmentWorld(t, d)
		rows := []*model.LicenseAssignment{w.assignedB, w.reclaiming, w.assigned}
		got, err := d.ActiveAssignmentIDs(bg(), rows)
		mustDo(t, err)
		if diff := cmp.Diff(idsOf(rows, assignmentID), got); diff != "" {
			t.Errorf("ids mismatch (-want +got):\n%s", diff)
		}
		gone := "D:NONE"
		_, err = d.ActiveAssignmentIDs(bg(), []*model.LicenseAssignment{{PoolID: w.poolA.ID, HolderKey: &gone}})
		if err == nil || !strings.HasPrefix(err.Error(), "active assignment ids: ") {
			t.Errorf("a row without an assignment: got %v, want an error naming the operation", err)
		}
		none, err := d.ActiveAssignmentIDs(bg(), nil)
		if err != nil || len(none) != 0 {
			t.Errorf("no rows: %v, %v", none, err)
		}
	})
}

// TestActiveAssignmentOfApp finds a holder's active assignment of an app in any pool, by
// serial number for a device license and by clientUserId for a user license; an inactive
// one or another kind is not found.
func TestActiveAssignmentOfApp(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		w := newAssignmentWorld(t, d)
		tests := []struct {
			name         string
			app          int64
			kind         model.LicenseKind
			serial, user string
			want         int64 // 0: not found
		}{
			{"device", w.app.ID, model.LicenseKindDevice, w.dev.SerialNumber, "", w.assigned.ID},
			{"device, pending, in account B's pool too: the oldest", w.app.ID, model.LicenseKindDevice, w.dev2.SerialNumber, "", w.pending.ID},
			{"user", w.app.ID, model.LicenseKindUser, "", w.user.ClientUserID, w.reclaiming.ID},
			{"other app", w.app2.ID, model.LicenseKindDevice, w.dev.SerialNumber, "", w.assignedA2.ID},
			{"no user license of app2", w.app2.ID, model.LicenseKindUser, "", w.user.ClientUserID, 0},
			{"unknown serial", w.app.ID, model.LicenseKindDevice, "NONE", "", 0},
		}
		for _, tc := range tests {
			got, err := d.ActiveAssignmentOfApp(bg(), tc.app, tc.kind, tc.serial, tc.user)
			if tc.want == 0 {
				isNotFound(t, "active assignment of app", err)
				continue
			}
			mustDo(t, err)
			if got.ID != tc.want {
				t.Errorf("%s: %d, want %d", tc.name, got.ID, tc.want)
			}
		}
	})
}

// TestAssignmentsByParent lists one page of assignments per account, pool, device or user,
// optionally of some statuses, in id order after the cursor, with counts per parent; an
// unknown parent column is an error, and no parents read nothing.
func TestAssignmentsByParent(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		w := newAssignmentWorld(t, d)
		active := []model.AssignmentStatus{model.AssignmentPending, model.AssignmentAssigned, model.AssignmentReclaiming}
		tests := []struct {
			name     string
			parent   db.AssignmentParent
			statuses []model.AssignmentStatus
			first    int
			pages    []db.ChildPage
			want     map[int64][]int64
			counts   map[int64]int
		}{
			{"accounts", db.AssignmentsOfAccount, nil, 10, []db.ChildPage{{ParentID: w.a.ID}, {ParentID: w.b.ID}},
				map[int64][]int64{w.a.ID: {w.assigned.ID, w.pending.ID, w.reclaiming.ID, w.failed.ID, w.assignedA2.ID}, w.b.ID: {w.assignedB.ID}},
				map[int64]int{w.a.ID: 5, w.b.ID: 1}},
			{"pool, active, after a cursor", db.AssignmentsOfPool, active, 10, []db.ChildPage{{ParentID: w.poolA.ID, After: w.assigned.ID}},
				map[int64][]int64{w.poolA.ID: {w.pending.ID, w.reclaiming.ID}}, map[int64]int{w.poolA.ID: 3}},
			{"device, first 1 (+1 to tell a page follows)", db.AssignmentsOfDevice, nil, 1, []db.ChildPage{{ParentID: w.dev.ID}, {ParentID: w.dev2.ID}},
				map[int64][]int64{w.dev.ID: {w.assigned.ID, w.failed.ID}, w.dev2.ID: {w.pending.ID, w.assignedB.ID}},
				map[int64]int{w.dev.ID: 3, w.dev2.ID: 2}},
			{"user, failed", db.AssignmentsOfUser, []model.AssignmentStatus{model.AssignmentFailed}, 10, []db.ChildPage{{ParentID: w.user.ID}},
				map[int64][]int64{w.user.ID: {w.failed.ID}}, map[int64]int{w.user.ID: 1}},
			{"no parents", db.AssignmentsOfPool, nil, 10, nil, map[int64][]int64{}, map[int64]int{}},
		}
		for _, tc := range tests {
			got, err := d.AssignmentsByParent(bg(), tc.parent, tc.statuses, tc.first, tc.pages)
			mustDo(t, err)
			ids := map[int64][]int64{}
			parents := make([]int64, 0, len(tc.pages))
			for k, v := range got {
				ids[k] = idsOf(v, assignmentID)
			}
			for _, p := range tc.pages {
				parents = append(parents, p.ParentID)
			}
			if diff := cmp.Diff(tc.want, ids); diff != "" {
				t.Errorf("%s: pages mismatch (-want +got):\n%s", tc.name, diff)
			}
			counts, err := d.CountAssignmentsByParent(bg(), tc.parent, tc.statuses, parents)
			mustDo(t, err)
			if diff := cmp.Diff(tc.counts, counts); diff != "" {
				t.Errorf("%s: counts mismatch (-want +got):\n%s", tc.name, diff)
			}
		}
		for _, op := range []string{"assignments by parent", "count assignments by parent"} {
			var err error
			if op == "assignments by parent" {
				_, err = d.AssignmentsByParent(bg(), "status", nil, 1, []db.ChildPage{{ParentID: 1}})
			} else {
				_, err = d.CountAssignmentsByParent(bg(), "status", nil, []int64{1})
			}
			if err == nil || !strings.HasPrefix(err.Error(), op+": unknown assignment parent") {
				t.Errorf("%s of an unknown parent: got %v", op, err)
			}
		}
	})
}

// TestActiveAssignmentsIn reads an account's active assignments in id order after a cursor,
// optionally of one app, at most limit of them, inside a transaction (locked on MySQL).
func TestActiveAssignmentsIn(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		w := newAssignmentWorld(t, d)
		tests := []struct {
			name       string
			app, after int64
			limit      int
			want       []int64
		}{
			{"all", 0, 0, 10, []int64{w.assigned.ID, w.pending.ID, w.reclaiming.ID, w.assignedA2.ID}},
			{"after, limited", 0, w.assigned.ID, 2, []int64{w.pending.ID, w.reclaiming.ID}},
			{"app", w.app2.ID, 0, 10, []int64{w.assignedA2.ID}},
		}
		for _, tc := range tests {
			mustDo(t, d.Tx(bg(), func(tx *db.DB) error {
				got, err := tx.ActiveAssignmentsIn(bg(), w.a.ID, tc.app, tc.after, tc.limit)
				if diff := cmp.Diff(tc.want, idsOf(got, assignmentID)); diff != "" {
					t.Errorf("%s: mismatch (-want +got):\n%s", tc.name, diff)
				}
				return err
			}))
		}
	})
}

// TestActiveAssignmentsOf reads the active assignments matching a filter, whatever status the
// filter asks (it asks for active ones), in id order.
func TestActiveAssignmentsOf(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		w := newAssignmentWorld(t, d)
		tests := []struct {
			name string
			f    db.AssignmentFilter
			want []int64
		}{
			{"device", db.AssignmentFilter{DeviceID: w.dev.ID}, []int64{w.assigned.ID, w.assignedA2.ID}},
			{"user", db.AssignmentFilter{UserID: w.user.ID}, []int64{w.assigned.ID, w.reclaiming.ID, w.assignedA2.ID}},
			{"app, statuses ignored", db.AssignmentFilter{AppID: w.app.ID, Statuses: []model.AssignmentStatus{model.AssignmentFailed}},
				[]int64{w.assigned.ID, w.pending.ID, w.reclaiming.ID, w.assignedB.ID}},
		}
		for _, tc := range tests {
			mustDo(t, d.Tx(bg(), func(tx *db.DB) error {
				got, err := tx.ActiveAssignmentsOf(bg(), tc.f)
				if diff := cmp.Diff(tc.want, idsOf(got, assignmentID)); diff != "" {
					t.Errorf("%s: mismatch (-want +got):\n%s", tc.name, diff)
				}
				return err
			}))
		}
	})
}

// TestCountReclaimable counts what stands between an account and its removal: pending and
// reclaiming licenses, and assigned ones of revocable pools (not of a non-revocable pool, not
// failed ones).
func TestCountReclaimable(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		w := newAssignmentWorld(t, d)
		empty := seedAccount(t, d)
		for _, tc := range []struct {
			account int64
			want    int64
		}{{w.a.ID, 3}, {w.b.ID, 1}, {empty.ID, 0}} {
			got, err := d.CountReclaimable(bg(), tc.account)
			mustDo(t, err)
			if got != tc.want {
				t.Errorf("account %d: %d reclaimable, want %d", tc.account, got, tc.want)
			}
		}
	})
}

// TestUsersWithOrchardUserLicense reports the users holding an active user license of the app
// that Orchard assigned (R9): not a device license, not an inactive one, not one found at
// Apple; no users ask nothing.
func TestUsersWithOrchardUserLicense(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		acct, app := seedAccount(t, d), seedApp(t, d)
		pool := seedPool(t, d, acct, app)
		holder, found, failed, deviceOnly := seedUser(t, d), seedUser(t, d), seedUser(t, d), seedUser(t, d)
		seedUserAssignment(t, d, pool, holder, model.AssignmentPending)
		seedUserAssignment(t, d, pool, found, model.AssignmentAssigned, func(a *model.LicenseAssignment) { a.Origin = model.OriginFoundAtApple })
		seedUserAssignment(t, d, pool, failed, model.AssignmentFailed)
		seedDeviceAssignment(t, d, pool, seedDevice(t, d, func(x *model.Device) { x.UserID = &deviceOnly.ID }), model.AssignmentAssigned)
		tests := []struct {
			name  string
			users []int64
			want  map[int64]bool
		}{
			{"some", []int64{holder.ID, found.ID, failed.ID, deviceOnly.ID}, map[int64]bool{holder.ID: true}},
			{"none", nil, map[int64]bool{}},
		}
		for _, tc := range tests {
			got, err := d.UsersWithOrchardUserLicense(bg(), app.ID, tc.users)
			mustDo(t, err)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s: mismatch (-want +got):\n%s", tc.name, diff)
			}
		}
	})
}

// TestListAssignments filters by every field of the filter, in id order, and counts the same
// set; AssignmentsByID reads the assignments asked (none for no ids).
func TestListAssignments(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		w := newAssignmentWorld(t, d)
		tests := []struct {
			name string
			f    db.AssignmentFilter
			want []int64
		}{
			{"account", db.AssignmentFilter{AccountID: w.b.ID}, []int64{w.assignedB.ID}},
			{"app", db.AssignmentFilter{AppID: w.app2.ID}, []int64{w.assignedA2.ID}},
			{"pool and statuses", db.AssignmentFilter{PoolID: w.poolA.ID, Statuses: []model.AssignmentStatus{model.AssignmentPending, model.AssignmentFailed}},
				[]int64{w.pending.ID, w.failed.ID}},
			{"kind", db.AssignmentFilter{Kind: model.LicenseKindUser}, []int64{w.reclaiming.ID}},
			{"serial", db.AssignmentFilter{SerialNumber: w.dev2.SerialNumber}, []int64{w.pending.ID, w.assignedB.ID}},
			{"device", db.AssignmentFilter{DeviceID: w.dev.ID, AccountID: w.a.ID}, []int64{w.assigned.ID, w.failed.ID, w.assignedA2.ID}},
			{"user", db.AssignmentFilter{UserID: w.user.ID, Kind: model.LicenseKindUser}, []int64{w.reclaiming.ID}},
			{"origin", db.AssignmentFilter{Origin: model.OriginFoundAtApple}, []int64{}},
		}
		for _, tc := range tests {
			got, more, err := d.ListAssignments(bg(), tc.f, db.Page{First: 10})
			mustDo(t, err)
			if diff := cmp.Diff(tc.want, idsOf(got, assignmentID)); diff != "" || more {
				t.Errorf("%s: mismatch (-want +got), more %v:\n%s", tc.name, more, diff)
			}
			n, err := d.CountAssignments(bg(), tc.f)
			mustDo(t, err)
			if n != len(tc.want) {
				t.Errorf("%s: count %d, want %d", tc.name, n, len(tc.want))
			}
		}
		byID, err := d.AssignmentsByID(bg(), []int64{w.failed.ID, w.pending.ID})
		mustDo(t, err)
		if diff := cmp.Diff([]int64{w.pending.ID, w.failed.ID}, sortedIDs(byID, assignmentID)); diff != "" {
			t.Errorf("assignments by id mismatch (-want +got):\n%s", diff)
		}
		none, err := d.AssignmentsByID(bg(), nil)
		if err != nil || len(none) != 0 {
			t.Errorf("no ids: %v, %v", none, err)
		}
	})
}

// TestAssignmentErrorsNameTheOperation: see TestAccountErrorsNameTheOperation.
func TestAssignmentErrorsNameTheOperation(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		d = closedStore(t, d)
		hk := "D:X"
		pages := []db.ChildPage{{ParentID: 1}}
		checkOpErrors(t, []opErr{
			{"assignments by parent", func() error {
				_, err := d.AssignmentsByParent(bg(), db.AssignmentsOfPool, nil, 1, pages)
				return err
			}},
			{"count assignments by parent", func() error {
				_, err := d.CountAssignmentsByParent(bg(), db.AssignmentsOfPool, nil, []int64{1})
				return err
			}},
			{"assignment by id", func() error { _, err := d.AssignmentByID(bg(), 1); return err }},
			{"active assignment of app", func() error {
				_, err := d.ActiveAssignmentOfApp(bg(), 1, model.LicenseKindDevice, "x", "")
				return err
			}},
			{"insert assignment", func() error { return d.InsertAssignment(bg(), &model.LicenseAssignment{}) }},
			{"lock assignment", func() error { _, err := d.LockAssignment(bg(), 1); return err }},
			{"active assignments in", func() error { _, err := d.ActiveAssignmentsIn(bg(), 1, 0, 0, 1); return err }},
			{"count reclaimable", func() error { _, err := d.CountReclaimable(bg(), 1); return err }},
			{"users with orchard user license", func() error { _, err := d.UsersWithOrchardUserLicense(bg(), 1, []int64{1}); return err }},
			{"active assignment ids", func() error {
				_, err := d.ActiveAssignmentIDs(bg(), []*model.LicenseAssignment{{PoolID: 1, HolderKey: &hk}})
				return err
			}},
			{"active assignments of", func() error { _, err := d.ActiveAssignmentsOf(bg(), db.AssignmentFilter{DeviceID: 1}); return err }},
			{"insert assignments", func() error { return d.InsertAssignments(bg(), []*model.LicenseAssignment{{}}) }},
			{"list assignments", func() error {
				_, _, err := d.ListAssignments(bg(), db.AssignmentFilter{}, db.Page{First: 1})
				return err
			}},
			{"count assignments", func() error { _, err := d.CountAssignments(bg(), db.AssignmentFilter{}); return err }},
			{"assignments by id", func() error { _, err := d.AssignmentsByID(bg(), []int64{1}); return err }},
		})
	})
}

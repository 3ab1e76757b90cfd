package db_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
)

// Tests of db/policy_queue.go, one per exported function, on both engines, on the fixture of
// policy_test.go (policySeed). Each checks the happy path, that empty input issues no
// statement, the order the function promises, and, where the function splits its input into
// bounded IN lists or batches, that input past one statement (2,100 values: more than one IN
// list on either engine, 250 on SQLite and 1,000 on MySQL) is split and still read right.

// queuePadding is the number of made-up values that push an input past one statement.
const queuePadding = 2100

// queueCounted returns a context that counts statements, and the counter.
func queueCounted() (context.Context, *db.StatementCounter) {
	sc := &db.StatementCounter{}
	return db.WithStatementCounter(context.Background(), sc), sc
}

// queueNoStatement checks that a call on empty input issued no statement.
func queueNoStatement(t *testing.T, what string, sc *db.StatementCounter) {
	t.Helper()
	if n := sc.Count(); n != 0 {
		t.Errorf("%s: %d statements on empty input, want none", what, n)
	}
}

// queueSplit checks that a call on padded input issued more than one statement.
func queueSplit(t *testing.T, what string, sc *db.StatementCounter) {
	t.Helper()
	if n := sc.Count(); n < 2 {
		t.Errorf("%s: %d statement(s) for %d values, want the input split", what, n, queuePadding)
	}
}

// queuePadIDs returns ids followed by made-up ids above any row of the fixture.
func queuePadIDs(ids ...int64) []int64 {
	out := make([]int64, 0, queuePadding+len(ids))
	for i := range int64(queuePadding) {
		out = append(out, 1_000_000+i)
	}
	return append(out, ids...)
}

// queuePadStrings returns ss after made-up strings no row has.
func queuePadStrings(ss ...string) []string {
	out := make([]string, 0, queuePadding+len(ss))
	for i := range queuePadding {
		out = append(out, fmt.Sprintf("nobody-%d", i))
	}
	return append(out, ss...)
}

func deviceKey(dev *model.Device) string {
	return model.HolderKeyFor(model.LicenseKindDevice, dev.SerialNumber, "")
}

func userKey(u *model.User) string {
	return model.HolderKeyFor(model.LicenseKindUser, "", u.ClientUserID)
}

// queueItem is what a test compares of a queue row.
type queueItem struct {
	App, User, Device int64
	Reason            string
}

func queueItems(items []*model.PolicyQueueItem) []queueItem {
	deref := func(p *int64) int64 {
		if p == nil {
			return 0
		}
		return *p
	}
	out := []queueItem{}
	for _, it := range items {
		out = append(out, queueItem{deref(it.AppID), deref(it.UserID), deref(it.DeviceID), it.Reason})
	}
	return out
}

// EnqueuePolicyHolders writes one row per holder (user or device) with the app, reason and
// due time; rows not yet due are not due; no holders write nothing; many holders are written in
// batches, every one of them.
func TestPolicyQueueEnqueuePolicyHolders(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := policySeed(t, d)
		now := db.Now()
		app0, app1 := f.apps[0].ID, f.apps[1].ID
		policyMust(t, d.EnqueuePolicyHolders(ctx, []db.HolderRef{{AppID: app0, UserID: f.users[1].ID}, {AppID: app1, DeviceID: f.devices[2].ID}}, "joined", now))
		policyMust(t, d.EnqueuePolicyHolders(ctx, []db.HolderRef{{AppID: app0, DeviceID: f.devices[0].ID}}, "grace ends", now.Add(time.Hour)))
		due, err := d.DuePolicyItems(ctx, now, 100)
		policyMust(t, err)
		want := []queueItem{{app0, f.users[1].ID, 0, "joined"}, {app1, 0, f.devices[2].ID, "joined"}}
		if diff := cmp.Diff(want, queueItems(due)); diff != "" {
			t.Errorf("due now mismatch (-want +got):\n%s", diff)
		}
		later, err := d.DuePolicyItems(ctx, now.Add(time.Hour), 100)
		policyMust(t, err)
		want = append(want, queueItem{app0, 0, f.devices[0].ID, "grace ends"})
		if diff := cmp.Diff(want, queueItems(later)); diff != "" {
			t.Errorf("due in an hour mismatch (-want +got):\n%s", diff)
		}

		c, sc := queueCounted()
		policyMust(t, d.EnqueuePolicyHolders(c, nil, "none", now))
		queueNoStatement(t, "enqueue no holders", sc)

		refs := make([]db.HolderRef, queuePadding)
		for i := range refs {
			refs[i] = db.HolderRef{AppID: app1, UserID: f.users[i%len(f.users)].ID}
		}
		c, sc = queueCounted()
		policyMust(t, d.EnqueuePolicyHolders(c, refs, "bulk", now.Add(2*time.Hour)))
		queueSplit(t, "enqueue many holders", sc)
		n, err := d.CountPolicyQueue(ctx, now.Add(2*time.Hour))
		policyMust(t, err)
		if n != queuePadding+3 {
			t.Errorf("%d queue rows after enqueueing %d more, want %d", n, queuePadding, queuePadding+3)
		}
	})
}

// queueLabels is two labels of app 0 (the second deleted) with groups and accounts, and a
// label of app 1 with neither.
type queueLabels struct{ a, deleted, other *model.Label }

func queueSeedLabels(t *testing.T, d *db.DB, f *policyFixture) *queueLabels {
	t.Helper()
	ctx := context.Background()
	ls := &queueLabels{
		a:       policyLabel(t, d, f.apps[0], "A", model.LicenseKindDevice),
		deleted: policyLabel(t, d, f.apps[0], "Deleted", model.LicenseKindUser),
		other:   policyLabel(t, d, f.apps[1], "Other", ""),
	}
	policyMust(t, d.SetLabelGroups(ctx, ls.a.ID, []int64{f.groups[1].ID, f.groups[0].ID}))
	policyMust(t, d.SetLabelAccounts(ctx, ls.a.ID, []int64{f.accounts[1].ID, f.accounts[0].ID}))
	policyMust(t, d.SetLabelGroups(ctx, ls.deleted.ID, []int64{f.groups[0].ID}))
	policyMust(t, d.SetLabelAccounts(ctx, ls.deleted.ID, []int64{f.accounts[0].ID}))
	gone := db.Now()
	ls.deleted.DeletedAt = &gone
	policyMust(t, d.SaveLabel(ctx, ls.deleted))
	return ls
}

// LabelsOfAppWithLinks and AllLabelsWithLinks: labels in id order, deleted ones too, their
// groups in id order and their accounts in priority order (not id order); an app without
// labels reads one statement and gets empty maps.
func TestPolicyQueueLabelsWithLinks(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := policySeed(t, d)
		ls := queueSeedLabels(t, d, f)
		type links struct {
			Labels     []int64
			GroupsOf   map[int64][]int64
			AccountsOf map[int64][]int64
		}
		of := func(p *db.PolicyLabels) links {
			return links{policyLabelIDs(p.Labels), p.GroupsOf, p.AccountsOf}
		}
		g0, g1, acc0, acc1 := f.groups[0].ID, f.groups[1].ID, f.accounts[0].ID, f.accounts[1].ID
		app0 := links{
			Labels:     []int64{ls.a.ID, ls.deleted.ID},
			GroupsOf:   map[int64][]int64{ls.a.ID: {g0, g1}, ls.deleted.ID: {g0}},
			AccountsOf: map[int64][]int64{ls.a.ID: {acc1, acc0}, ls.deleted.ID: {acc0}},
		}
		all := app0
		all.Labels = []int64{ls.a.ID, ls.deleted.ID, ls.other.ID}
		for _, tt := range []struct {
			name string
			read func(context.Context) (*db.PolicyLabels, error)
			want links
		}{
			{"labels of app 0", func(c context.Context) (*db.PolicyLabels, error) { return d.LabelsOfAppWithLinks(c, f.apps[0].ID) }, app0},
			{"labels of app 1", func(c context.Context) (*db.PolicyLabels, error) { return d.LabelsOfAppWithLinks(c, f.apps[1].ID) },
				links{[]int64{ls.other.ID}, map[int64][]int64{}, map[int64][]int64{}}},
			{"all labels", d.AllLabelsWithLinks, all},
		} {
			got, err := tt.read(ctx)
			policyMust(t, err)
			if diff := cmp.Diff(tt.want, of(got)); diff != "" {
				t.Errorf("%s mismatch (-want +got):\n%s", tt.name, diff)
			}
			if got.Labels[len(got.Labels)-1].ID == ls.deleted.ID && got.Labels[len(got.Labels)-1].DeletedAt == nil {
				t.Errorf("%s: the deleted label reads without its DeletedAt", tt.name)
			}
		}

		none := seedApp(t, d)
		c, sc := queueCounted()
		got, err := d.LabelsOfAppWithLinks(c, none.ID)
		policyMust(t, err)
		if diff := cmp.Diff(links{[]int64{}, map[int64][]int64{}, map[int64][]int64{}}, of(got)); diff != "" {
			t.Errorf("labels of an app without labels mismatch (-want +got):\n%s", diff)
		}
		if sc.Count() != 1 {
			t.Errorf("labels of an app without labels: %d statements, want 1 (the labels only)", sc.Count())
		}
	})
}

// MembershipsOf maps each given user and device to the given groups it is in (in group id
// order), leaving out other groups and other members; no groups or no members read nothing;
// many members are read in chunks.
func TestPolicyQueueMembershipsOf(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := policySeed(t, d)
		g0, g1 := f.groups[0].ID, f.groups[1].ID
		now := db.Now()
		_, _, err := d.AddGroupMembers(ctx, g1, []int64{f.users[0].ID, f.users[1].ID}, []int64{f.devices[0].ID}, now)
		policyMust(t, err)
		_, _, err = d.AddGroupMembers(ctx, g0, []int64{f.users[0].ID, f.users[2].ID}, []int64{f.devices[0].ID, f.devices[1].ID}, now)
		policyMust(t, err)
		users := []int64{f.users[0].ID, f.users[1].ID, f.users[3].ID}
		devices := []int64{f.devices[0].ID, f.devices[1].ID}
		for _, tt := range []struct {
			name           string
			users, devices []int64
			groups         []int64
			want           *db.GroupMembers
			splitOrNoStmt  string // "split", "none" or ""
		}{
			{"both groups", users, devices, []int64{g1, g0}, &db.GroupMembers{
				Users:   map[int64][]int64{f.users[0].ID: {g0, g1}, f.users[1].ID: {g1}},
				Devices: map[int64][]int64{f.devices[0].ID: {g0, g1}, f.devices[1].ID: {g0}},
			}, ""},
			{"one group", users, devices, []int64{g1}, &db.GroupMembers{
				Users:   map[int64][]int64{f.users[0].ID: {g1}, f.users[1].ID: {g1}},
				Devices: map[int64][]int64{f.devices[0].ID: {g1}},
			}, ""},
			{"many members", queuePadIDs(users...), queuePadIDs(devices...), []int64{g0}, &db.GroupMembers{
				Users:   map[int64][]int64{f.users[0].ID: {g0}},
				Devices: map[int64][]int64{f.devices[0].ID: {g0}, f.devices[1].ID: {g0}},
			}, "split"},
			{"no groups", users, devices, nil, &db.GroupMembers{Users: map[int64][]int64{}, Devices: map[int64][]int64{}}, "none"},
			{"no members", nil, nil, []int64{g0}, &db.GroupMembers{Users: map[int64][]int64{}, Devices: map[int64][]int64{}}, "none"},
		} {
			c, sc := queueCounted()
			got, err := d.MembershipsOf(c, tt.users, tt.devices, tt.groups)
			policyMust(t, err)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("%s: memberships mismatch (-want +got):\n%s", tt.name, diff)
			}
			switch tt.splitOrNoStmt {
			case "split":
				queueSplit(t, tt.name, sc)
			case "none":
				queueNoStatement(t, tt.name, sc)
			}
		}
	})
}

// queueAssignment stores a label's or an admin's assignment with a chosen last update, so
// that a test can place a refusal before or after refusedSince.
func queueAssignment(t *testing.T, d *db.DB, a *model.LicenseAssignment, updated time.Time) *model.LicenseAssignment {
	t.Helper()
	a.Reason, a.CausedBy, a.CreatedAt, a.UpdatedAt = "test", "test", updated, updated
	if a.Origin == "" {
		a.Origin = model.OriginAdmin
	}
	if a.LabelID != nil {
		a.Origin = model.OriginLabel
	}
	if a.Status.Active() {
		var hk string
		if a.Kind == model.LicenseKindUser {
			hk = model.HolderKeyFor(model.LicenseKindUser, "", *a.ClientUserID)
		} else {
			hk = model.HolderKeyFor(model.LicenseKindDevice, *a.SerialNumber, "")
		}
		a.HolderKey = &hk
	}
	policyMust(t, d.InsertRows(context.Background(), a))
	return a
}

func queueDeviceLicense(p *model.LicensePool, dev *model.Device, status model.AssignmentStatus, labelID *int64) *model.LicenseAssignment {
	serial := dev.SerialNumber
	return &model.LicenseAssignment{PoolID: p.ID, AccountID: p.AccountID, AppID: p.AppID, Kind: model.LicenseKindDevice, SerialNumber: &serial,
		DeviceID: &dev.ID, Status: status, LabelID: labelID}
}

func queueUserLicense(p *model.LicensePool, u *model.User, status model.AssignmentStatus, labelID *int64) *model.LicenseAssignment {
	cu := u.ClientUserID
	return &model.LicenseAssignment{PoolID: p.ID, AccountID: p.AccountID, AppID: p.AppID, Kind: model.LicenseKindUser, ClientUserID: &cu,
		UserID: &u.ID, Status: status, LabelID: labelID}
}

// queueAssignments is app 0's assignments of the fixture (pool 0 is account A's of app 0,
// pool 2 account A's of app 1), each a case of what the policy reads pick or leave.
type queueAssignments struct {
	dev0Assigned, dev1Pending, user0Reclaiming *model.LicenseAssignment // active: read
	dev2RefusedNew, user1RefusedNew            *model.LicenseAssignment // label's, refused since: read as refused
	dev3RefusedOld                             *model.LicenseAssignment // label's, refused before: left out
	dev3FailedAdmin                            *model.LicenseAssignment // an admin's refusal: left out
	dev1Reclaimed                              *model.LicenseAssignment // not active: left out
	otherApp                                   *model.LicenseAssignment // app 1: left out
	since                                      time.Time
}

func queueSeedAssignments(t *testing.T, d *db.DB, f *policyFixture) *queueAssignments {
	t.Helper()
	l := policyLabel(t, d, f.apps[0], "L", model.LicenseKindDevice)
	now := db.Now().Truncate(time.Second)
	since := now.Add(-time.Hour)
	p0, p2 := f.pools[0], f.pools[2]
	return &queueAssignments{
		dev0Assigned:    queueAssignment(t, d, queueDeviceLicense(p0, f.devices[0], model.AssignmentAssigned, nil), now),
		dev1Pending:     queueAssignment(t, d, queueDeviceLicense(p0, f.devices[1], model.AssignmentPending, &l.ID), now),
		user0Reclaiming: queueAssignment(t, d, queueUserLicense(p0, f.users[0], model.AssignmentReclaiming, nil), now),
		dev2RefusedNew:  queueAssignment(t, d, queueDeviceLicense(p0, f.devices[2], model.AssignmentFailed, &l.ID), now),
		user1RefusedNew: queueAssignment(t, d, queueUserLicense(p0, f.users[1], model.AssignmentFailed, &l.ID), since),
		dev3RefusedOld:  queueAssignment(t, d, queueDeviceLicense(p0, f.devices[3], model.AssignmentFailed, &l.ID), since.Add(-time.Second)),
		dev3FailedAdmin: queueAssignment(t, d, queueDeviceLicense(p0, f.devices[3], model.AssignmentFailed, nil), now),
		dev1Reclaimed:   queueAssignment(t, d, queueDeviceLicense(p0, f.devices[1], model.AssignmentReclaimed, nil), now),
		otherApp:        queueAssignment(t, d, queueDeviceLicense(p2, f.devices[0], model.AssignmentAssigned, nil), now),
		since:           since,
	}
}

// AssignmentsOfHolders reads, for one app and the given holders, the active assignments and
// the label's assignments Apple refused since a time (refusedSince itself included), each list
// in id order; users and devices alone or together; no holders, no statement; many holders
// split and still read.
func TestPolicyQueueAssignmentsOfHolders(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		f := policySeed(t, d)
		as := queueSeedAssignments(t, d, f)
		cus := []string{f.users[0].ClientUserID, f.users[1].ClientUserID, f.users[2].ClientUserID}
		serials := []string{f.devices[0].SerialNumber, f.devices[1].SerialNumber, f.devices[2].SerialNumber, f.devices[3].SerialNumber}
		ids := func(xs ...*model.LicenseAssignment) []int64 { return policyAssignmentIDs(xs) }
		for _, tt := range []struct {
			name                  string
			cus, serials          []string
			wantActive, wantRefus []int64
			split                 bool
		}{
			{"users and devices", cus, serials, ids(as.dev0Assigned, as.dev1Pending, as.user0Reclaiming), ids(as.dev2RefusedNew, as.user1RefusedNew), false},
			{"users only", cus, nil, ids(as.user0Reclaiming), ids(as.user1RefusedNew), false},
			{"devices only", nil, serials[:2], ids(as.dev0Assigned, as.dev1Pending), ids(), false},
			// The real holders at the end of long lists: the chunk that holds them is the last.
			{"many holders", queuePadStrings(cus...), queuePadStrings(serials...), ids(as.dev0Assigned, as.dev1Pending, as.user0Reclaiming), ids(as.dev2RefusedNew, as.user1RefusedNew), true},
		} {
			c, sc := queueCounted()
			active, refused, err := d.AssignmentsOfHolders(c, f.apps[0].ID, tt.cus, tt.serials, as.since)
			policyMust(t, err)
			if diff := cmp.Diff([][]int64{tt.wantActive, tt.wantRefus}, [][]int64{sortedIDs(active, assignmentID), sortedIDs(refused, assignmentID)}, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s: active, refused mismatch (-want +got):\n%s", tt.name, diff)
			}
			if !tt.split {
				// One statement: its rows come in id order.
				if diff := cmp.Diff(tt.wantActive, idsOf(active, assignmentID), cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("%s: active order mismatch (-want +got):\n%s", tt.name, diff)
				}
			} else {
				queueSplit(t, tt.name, sc)
			}
		}
		c, sc := queueCounted()
		active, refused, err := d.AssignmentsOfHolders(c, f.apps[0].ID, nil, nil, as.since)
		policyMust(t, err)
		if len(active)+len(refused) != 0 {
			t.Errorf("no holders: %d active, %d refused, want none", len(active), len(refused))
		}
		queueNoStatement(t, "assignments of no holders", sc)
	})
}

// PolicyAssignmentsAfter pages in id order through the active assignments of the given apps
// and their label's refusals since a time; no apps, no statement.
func TestPolicyQueuePolicyAssignmentsAfter(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := policySeed(t, d)
		as := queueSeedAssignments(t, d, f)
		ofApp0 := policyAssignmentIDs([]*model.LicenseAssignment{as.dev0Assigned, as.dev1Pending, as.user0Reclaiming, as.dev2RefusedNew, as.user1RefusedNew})
		for _, tt := range []struct {
			name  string
			apps  []int64
			after int64
			limit int
			want  []int64
		}{
			{"app 0, all", []int64{f.apps[0].ID}, 0, 100, ofApp0},
			{"app 0, first two", []int64{f.apps[0].ID}, 0, 2, ofApp0[:2]},
			{"app 0, after the second", []int64{f.apps[0].ID}, ofApp0[1], 2, ofApp0[2:4]},
			{"both apps", []int64{f.apps[1].ID, f.apps[0].ID}, ofApp0[4], 100, []int64{as.otherApp.ID}},
			{"after the last", []int64{f.apps[0].ID}, ofApp0[4], 100, []int64{}},
		} {
			got, err := d.PolicyAssignmentsAfter(ctx, tt.apps, as.since, tt.after, tt.limit)
			policyMust(t, err)
			if diff := cmp.Diff(tt.want, idsOf(got, assignmentID)); diff != "" {
				t.Errorf("%s mismatch (-want +got):\n%s", tt.name, diff)
			}
		}
		c, sc := queueCounted()
		got, err := d.PolicyAssignmentsAfter(c, nil, as.since, 0, 100)
		policyMust(t, err)
		if got == nil || len(got) != 0 {
			t.Errorf("no apps: %v, want an empty list", idsOf(got, assignmentID))
		}
		queueNoStatement(t, "assignments of no apps", sc)
	})
}

func queueWaitingKeys(ws []*model.PolicyWaiting) []string {
	out := []string{}
	for _, w := range ws {
		out = append(out, fmt.Sprintf("%d %s", w.LabelID, w.HolderKey))
	}
	return out
}

// queueWaiting is a waiting holder (a user) of a label with a code, covered since at.
func queueUserWaiting(l *model.Label, u *model.User, code model.Code, at time.Time) *model.PolicyWaiting {
	return &model.PolicyWaiting{LabelID: l.ID, HolderKey: userKey(u), AppID: l.AppID, Kind: model.LicenseKindUser, UserID: &u.ID,
		Code: code, Reason: string(code), FirstCoveredAt: at, UpdatedAt: at}
}

// ReplaceWaitingOfHolders replaces an app's waiting rows of the given holders only (other
// holders' rows and other apps' rows stay); WaitingOfHolders and WaitingOfApps read them back
// first covered first, then by holder key; empty input reads and writes nothing; many keys or
// apps are split.
func TestPolicyQueueWaitingOfHolders(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := policySeed(t, d)
		l0 := policyLabel(t, d, f.apps[0], "L0", model.LicenseKindDevice)
		l1 := policyLabel(t, d, f.apps[1], "L1", model.LicenseKindDevice)
		now := db.Now().Truncate(time.Second)
		// App 0: devices 0, 1, 2 (device 2 covered first); app 1: device 0.
		policyMust(t, d.ReplaceWaiting(ctx, f.apps[0].ID, []*model.PolicyWaiting{
			policyWaiting(l0, f.devices[0], now.Add(time.Second)), policyWaiting(l0, f.devices[1], now.Add(time.Second)), policyWaiting(l0, f.devices[2], now)}))
		policyMust(t, d.ReplaceWaiting(ctx, f.apps[1].ID, []*model.PolicyWaiting{policyWaiting(l1, f.devices[0], now)}))
		// Devices 0 and 1 of app 0 are evaluated again: device 0 waits no more, device 3 joins.
		keys := []string{deviceKey(f.devices[0]), deviceKey(f.devices[1]), deviceKey(f.devices[3])}
		policyMust(t, d.ReplaceWaitingOfHolders(ctx, f.apps[0].ID, keys, []*model.PolicyWaiting{
			policyWaiting(l0, f.devices[1], now.Add(2*time.Second)), policyWaiting(l0, f.devices[3], now.Add(time.Second))}))
		k := func(l *model.Label, dev *model.Device) string { return fmt.Sprintf("%d %s", l.ID, deviceKey(dev)) }
		wantApp0 := []string{k(l0, f.devices[2]), k(l0, f.devices[3]), k(l0, f.devices[1])}
		for _, tt := range []struct {
			name  string
			read  func(context.Context) ([]*model.PolicyWaiting, error)
			want  []string
			split bool
		}{
			{"waiting of holders of app 0", func(c context.Context) ([]*model.PolicyWaiting, error) {
				return d.WaitingOfHolders(c, f.apps[0].ID, append(keys, deviceKey(f.devices[2])))
			}, wantApp0, false},
			{"waiting of some holders of app 0", func(c context.Context) ([]*model.PolicyWaiting, error) {
				return d.WaitingOfHolders(c, f.apps[0].ID, []string{deviceKey(f.devices[1]), deviceKey(f.devices[0])})
			}, []string{k(l0, f.devices[1])}, false},
			{"waiting of many holders of app 1", func(c context.Context) ([]*model.PolicyWaiting, error) {
				return d.WaitingOfHolders(c, f.apps[1].ID, queuePadStrings(deviceKey(f.devices[0])))
			}, []string{k(l1, f.devices[0])}, true},
			{"waiting of app 0", func(c context.Context) ([]*model.PolicyWaiting, error) {
				return d.WaitingOfApps(c, []int64{f.apps[0].ID})
			}, wantApp0, false},
			{"waiting of both apps", func(c context.Context) ([]*model.PolicyWaiting, error) {
				return d.WaitingOfApps(c, []int64{f.apps[0].ID, f.apps[1].ID})
				// Covered at the same time: by holder key, device 0's before device 2's.
			}, []string{k(l1, f.devices[0]), k(l0, f.devices[2]), k(l0, f.devices[3]), k(l0, f.devices[1])}, false},
			{"waiting of many apps", func(c context.Context) ([]*model.PolicyWaiting, error) {
				return d.WaitingOfApps(c, queuePadIDs(f.apps[1].ID))
			}, []string{k(l1, f.devices[0])}, true},
		} {
			c, sc := queueCounted()
			got, err := tt.read(c)
			policyMust(t, err)
			if diff := cmp.Diff(tt.want, queueWaitingKeys(got)); diff != "" {
				t.Errorf("%s mismatch (-want +got):\n%s", tt.name, diff)
			}
			if tt.split {
				queueSplit(t, tt.name, sc)
			}
		}

		c, sc := queueCounted()
		none, err := d.WaitingOfHolders(c, f.apps[0].ID, nil)
		policyMust(t, err)
		noApps, err := d.WaitingOfApps(c, nil)
		policyMust(t, err)
		policyMust(t, d.ReplaceWaitingOfHolders(c, f.apps[0].ID, nil, nil))
		if none == nil || len(none) != 0 || noApps == nil || len(noApps) != 0 {
			t.Errorf("empty input: %v, %v; want empty lists", queueWaitingKeys(none), queueWaitingKeys(noApps))
		}
		queueNoStatement(t, "waiting reads and replace of nothing", sc)

		// Replacing the rows of many holders (device 2 among them, at the end) clears them
		// all, chunk by chunk.
		c, sc = queueCounted()
		policyMust(t, d.ReplaceWaitingOfHolders(c, f.apps[0].ID, queuePadStrings(deviceKey(f.devices[2]), deviceKey(f.devices[3])), nil))
		queueSplit(t, "replace waiting of many holders", sc)
		got, err := d.WaitingOfApps(ctx, []int64{f.apps[0].ID})
		policyMust(t, err)
		if diff := cmp.Diff([]string{k(l0, f.devices[1])}, queueWaitingKeys(got)); diff != "" {
			t.Errorf("after clearing many holders mismatch (-want +got):\n%s", diff)
		}
	})
}

// ShortWaitingOfApp counts, per label of one app, the holders waiting because the label is
// short (no licenses, or its cap), with the earliest first covered and the greatest code,
// leaving out the holders being evaluated and those waiting for another reason.
func TestPolicyQueueShortWaitingOfApp(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := policySeed(t, d)
		a := policyLabel(t, d, f.apps[0], "A", model.LicenseKindUser)
		b := policyLabel(t, d, f.apps[0], "B", model.LicenseKindUser)
		o := policyLabel(t, d, f.apps[1], "O", model.LicenseKindUser)
		now := db.Now().Truncate(time.Second)
		policyMust(t, d.ReplaceWaiting(ctx, f.apps[0].ID, []*model.PolicyWaiting{
			queueUserWaiting(a, f.users[0], model.CodeLabelCapReached, now.Add(2*time.Second)),
			queueUserWaiting(a, f.users[1], model.CodeNoLicensesAvailable, now.Add(time.Second)),
			queueUserWaiting(a, f.users[2], model.CodeLabelCapReached, now),
			queueUserWaiting(b, f.users[0], model.CodeAlreadyAssigned, now), // not short
			queueUserWaiting(b, f.users[3], model.CodeLabelCapReached, now.Add(3*time.Second)),
		}))
		policyMust(t, d.ReplaceWaiting(ctx, f.apps[1].ID, []*model.PolicyWaiting{queueUserWaiting(o, f.users[0], model.CodeLabelCapReached, now)}))
		for _, tt := range []struct {
			name   string
			except []string
			want   map[int64]db.WaitingAhead
		}{
			{"all holders", nil, map[int64]db.WaitingAhead{
				a.ID: {LabelID: a.ID, N: 3, First: now, Code: model.CodeNoLicensesAvailable},
				b.ID: {LabelID: b.ID, N: 1, First: now.Add(3 * time.Second), Code: model.CodeLabelCapReached},
			}},
			{"users 2 and 3 being evaluated", []string{userKey(f.users[2]), userKey(f.users[3])}, map[int64]db.WaitingAhead{
				a.ID: {LabelID: a.ID, N: 2, First: now.Add(time.Second), Code: model.CodeNoLicensesAvailable},
			}},
		} {
			got, err := d.ShortWaitingOfApp(ctx, f.apps[0].ID, tt.except)
			policyMust(t, err)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("%s mismatch (-want +got):\n%s", tt.name, diff)
			}
		}
		got, err := d.ShortWaitingOfApp(ctx, seedApp(t, d).ID, nil)
		policyMust(t, err)
		if got == nil || len(got) != 0 {
			t.Errorf("an app nobody waits for: %v, want an empty map", got)
		}
	})
}

// DeparturesOfHolders reads the departures of the given users and devices from the given
// groups since a time (since itself included), newest first; no groups or no holders read
// nothing; many holders are split.
func TestPolicyQueueDeparturesOfHolders(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := policySeed(t, d)
		g0, g1 := f.groups[0].ID, f.groups[1].ID
		now := db.Now().Truncate(time.Second)
		since := now.Add(-time.Hour)
		u0, u1, d0, d1 := f.users[0].ID, f.users[1].ID, f.devices[0].ID, f.devices[1].ID
		rows := []*model.PolicyDeparture{
			{GroupID: g0, UserID: &u0, How: model.DepartureRemoved, At: now},                     // 0: read
			{GroupID: g0, DeviceID: &d0, How: model.DepartureNoMatch, At: since},                 // 1: read (at since)
			{GroupID: g0, UserID: &u0, How: model.DepartureRemoved, At: since.Add(-time.Second)}, // 2: too old
			{GroupID: g1, DeviceID: &d0, How: model.DepartureRetired, At: now},                   // 3: other group
			{GroupID: g0, UserID: &u1, How: model.DepartureUserRemoved, At: now},                 // 4: other user
			{GroupID: g0, DeviceID: &d1, How: model.DepartureRetired, At: now},                   // 5: other device
			{GroupID: g0, DeviceID: &d0, How: model.DepartureRemoved, At: now.Add(-time.Minute)}, // 6: read
		}
		policyMust(t, d.InsertDepartures(ctx, rows))
		newestFirst := []int64{rows[6].ID, rows[1].ID, rows[0].ID}
		sort.Slice(newestFirst, func(i, j int) bool { return newestFirst[i] > newestFirst[j] })
		ids := func(ds []*model.PolicyDeparture) []int64 {
			return idsOf(ds, func(x *model.PolicyDeparture) int64 { return x.ID })
		}
		for _, tt := range []struct {
			name           string
			users, devices []int64
			groups         []int64
			want           []int64
			splitOrNoStmt  string
		}{
			{"user 0 and device 0 from group 0", []int64{u0}, []int64{d0}, []int64{g0}, newestFirst, ""},
			{"user 0 only", []int64{u0}, nil, []int64{g0}, []int64{rows[0].ID}, ""},
			{"many holders", queuePadIDs(u0), queuePadIDs(d0), []int64{g0}, newestFirst, "split"},
			{"no groups", []int64{u0}, []int64{d0}, nil, []int64{}, "none"},
			{"no holders", nil, nil, []int64{g0, g1}, []int64{}, "none"},
		} {
			c, sc := queueCounted()
			got, err := d.DeparturesOfHolders(c, tt.users, tt.devices, tt.groups, since)
			policyMust(t, err)
			if diff := cmp.Diff(tt.want, ids(got)); diff != "" {
				t.Errorf("%s mismatch (-want +got):\n%s", tt.name, diff)
			}
			switch tt.splitOrNoStmt {
			case "split":
				queueSplit(t, tt.name, sc)
			case "none":
				queueNoStatement(t, tt.name, sc)
			}
		}
	})
}

// DueItemsOfApp reads the ids of one app's queue rows due at a time (whole-app and holder
// rows, the time itself included), in id order; rows not yet due and other apps' stay out.
func TestPolicyQueueDueItemsOfApp(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := policySeed(t, d)
		now := db.Now().Truncate(time.Second)
		app0, app1 := f.apps[0].ID, f.apps[1].ID
		items := []*model.PolicyQueueItem{
			{AppID: &app0, Reason: "whole app", NotBefore: now.Add(-time.Minute), CreatedAt: now},
			{AppID: &app1, Reason: "other app", NotBefore: now, CreatedAt: now},
			{AppID: &app0, UserID: &f.users[0].ID, Reason: "holder", NotBefore: now, CreatedAt: now},
			{AppID: &app0, DeviceID: &f.devices[0].ID, Reason: "later", NotBefore: now.Add(time.Second), CreatedAt: now},
		}
		policyMust(t, d.EnqueuePolicy(ctx, items...))
		for _, tt := range []struct {
			name string
			app  int64
			at   time.Time
			want []int64
		}{
			{"app 0 now", app0, now, []int64{items[0].ID, items[2].ID}},
			{"app 0 a second later", app0, now.Add(time.Second), []int64{items[0].ID, items[2].ID, items[3].ID}},
			{"app 1 now", app1, now, []int64{items[1].ID}},
			{"app 1 before", app1, now.Add(-time.Second), []int64{}},
		} {
			got, err := d.DueItemsOfApp(ctx, tt.app, tt.at)
			policyMust(t, err)
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s mismatch (-want +got):\n%s", tt.name, diff)
			}
		}
	})
}

// The functions of policy_queue.go name the operation in their errors.
func TestPolicyQueueErrorsNameTheOperation(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		d = closedStore(t, d)
		ids, keys, now := []int64{1}, []string{"k"}, time.Now()
		checkOpErrors(t, []opErr{
			{"enqueue policy holders", func() error { return d.EnqueuePolicyHolders(bg(), []db.HolderRef{{AppID: 1, UserID: 1}}, "r", now) }},
			{"read labels of app 1", func() error { _, err := d.LabelsOfAppWithLinks(bg(), 1); return err }},
			{"read groups of users", func() error { _, err := d.MembershipsOf(bg(), ids, ids, ids); return err }},
			{"read assignments of holders of app 1", func() error { _, _, err := d.AssignmentsOfHolders(bg(), 1, keys, keys, now); return err }},
			{"read waiting holders of app 1", func() error { _, err := d.WaitingOfHolders(bg(), 1, keys); return err }},
			{"read waiting holders of app 1", func() error { _, err := d.ShortWaitingOfApp(bg(), 1, keys); return err }},
			{"clear waiting holders of app 1", func() error { return d.ReplaceWaitingOfHolders(bg(), 1, keys, nil) }},
			{"departures of holders", func() error { _, err := d.DeparturesOfHolders(bg(), ids, ids, ids, now); return err }},
			{"read labels", func() error { _, err := d.AllLabelsWithLinks(bg()); return err }},
			{"read assignments under policy", func() error { _, err := d.PolicyAssignmentsAfter(bg(), ids, now, 0, 1); return err }},
			{"read waiting holders", func() error { _, err := d.WaitingOfApps(bg(), ids); return err }},
			{"read policy queue of app 1", func() error { _, err := d.DueItemsOfApp(bg(), 1, now); return err }},
		})
	})
}

// PolicyAssignmentsAfter reads the columns a plan looks at, each as the full row has it (NULLs
// as nil, the grace start and Apple's message included), and leaves the others zero.
func TestPolicyQueuePolicyAssignmentsAfterColumns(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := policySeed(t, d)
		as := queueSeedAssignments(t, d, f)
		out := db.Now().Truncate(time.Second)
		policyMust(t, d.SetLabelOutSince(ctx, []int64{as.dev1Pending.ID}, &out))
		if _, err := d.SQL().Exec("UPDATE license_assignments SET error_message = 'no such user' WHERE id = ?", as.user1RefusedNew.ID); err != nil {
			t.Fatal(err)
		}
		got, err := d.PolicyAssignmentsAfter(ctx, []int64{f.apps[0].ID}, as.since, 0, 100)
		policyMust(t, err)
		full, err := d.AssignmentsByID(ctx, idsOf(got, assignmentID))
		policyMust(t, err)
		byID := map[int64]*model.LicenseAssignment{}
		for _, a := range full {
			byID[a.ID] = a
		}
		var want []*model.LicenseAssignment
		for _, a := range got {
			r := byID[a.ID]
			want = append(want, &model.LicenseAssignment{ID: r.ID, AppID: r.AppID, Kind: r.Kind, SerialNumber: r.SerialNumber, ClientUserID: r.ClientUserID,
				DeviceID: r.DeviceID, UserID: r.UserID, HolderKey: r.HolderKey, Status: r.Status, Origin: r.Origin, LabelID: r.LabelID,
				LabelOutSince: r.LabelOutSince, ErrorMessage: r.ErrorMessage})
		}
		if diff := cmp.Diff(want, got, cmpopts.EquateApproxTime(time.Second)); diff != "" {
			t.Errorf("columns read mismatch (-want +got):\n%s", diff)
		}
		var outSeen, msgSeen bool
		for _, a := range got {
			outSeen = outSeen || (a.ID == as.dev1Pending.ID && a.LabelOutSince != nil && a.LabelOutSince.Equal(out))
			msgSeen = msgSeen || (a.ID == as.user1RefusedNew.ID && a.ErrorMessage != nil && *a.ErrorMessage == "no such user")
		}
		if !outSeen || !msgSeen {
			t.Errorf("grace start read: %v, Apple's message read: %v; want both", outSeen, msgSeen)
		}
	})
}

// PolicyDevicesAfter and PolicyUsersAfter page through the fleet in id order with the columns
// a plan looks at, as the full rows have them, the others zero.
func TestPolicyQueuePolicyDevicesAndUsersAfter(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := policySeed(t, d)
		shared := seedDevice(t, d, func(dv *model.Device) {
			dv.SharedIPad, dv.UserID, dv.Status = true, &f.users[1].ID, model.DeviceRetired
		})
		gone := seedUser(t, d, func(u *model.User) { u.Status = model.UserRemoved })
		var devs []*model.Device
		for after := int64(0); ; {
			ds, err := d.PolicyDevicesAfter(ctx, after, 2)
			policyMust(t, err)
			devs = append(devs, ds...)
			if len(ds) < 2 {
				break
			}
			after = ds[len(ds)-1].ID
		}
		var wantDevs []*model.Device
		for _, dv := range append(f.devices[:], shared) {
			wantDevs = append(wantDevs, &model.Device{ID: dv.ID, SerialNumber: dv.SerialNumber, SharedIPad: dv.SharedIPad, UserID: dv.UserID, Status: dv.Status})
		}
		if diff := cmp.Diff(wantDevs, devs); diff != "" {
			t.Errorf("devices mismatch (-want +got):\n%s", diff)
		}
		var users []*model.User
		for after := int64(0); ; {
			us, err := d.PolicyUsersAfter(ctx, after, 3)
			policyMust(t, err)
			users = append(users, us...)
			if len(us) < 3 {
				break
			}
			after = us[len(us)-1].ID
		}
		var wantUsers []*model.User
		for _, u := range append(f.users[:], gone) {
			wantUsers = append(wantUsers, &model.User{ID: u.ID, ExternalID: u.ExternalID, ClientUserID: u.ClientUserID, Status: u.Status})
		}
		if diff := cmp.Diff(wantUsers, users); diff != "" {
			t.Errorf("users mismatch (-want +got):\n%s", diff)
		}
	})
}

// WaitingOfHoldersAndAhead answers what WaitingOfHolders and ShortWaitingOfApp answer for the
// same holders — the rows in the same order with the same fields, the same aggregates — in
// one statement, and falls back to the two reads for many holders.
func TestPolicyQueueWaitingOfHoldersAndAhead(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := policySeed(t, d)
		a := policyLabel(t, d, f.apps[0], "A", model.LicenseKindUser)
		b := policyLabel(t, d, f.apps[0], "B", model.LicenseKindDevice)
		now := db.Now().Truncate(time.Second)
		dw := &model.PolicyWaiting{LabelID: b.ID, HolderKey: deviceKey(f.devices[1]), AppID: f.apps[0].ID, Kind: model.LicenseKindDevice, DeviceID: &f.devices[1].ID,
			Code: model.CodeNeedsAppLabel, Reason: "shared iPad", FirstCoveredAt: now.Add(-time.Hour), UpdatedAt: now}
		policyMust(t, d.ReplaceWaiting(ctx, f.apps[0].ID, []*model.PolicyWaiting{
			queueUserWaiting(a, f.users[0], model.CodeLabelCapReached, now.Add(2*time.Second)),
			queueUserWaiting(a, f.users[1], model.CodeNoLicensesAvailable, now.Add(time.Second)),
			queueUserWaiting(a, f.users[2], model.CodeLabelCapReached, now),
			queueUserWaiting(b, f.users[0], model.CodeAlreadyAssigned, now),
			dw,
		}))
		for _, tt := range []struct {
			name  string
			keys  []string
			split bool
		}{
			{"two users and a device", []string{userKey(f.users[0]), userKey(f.users[2]), deviceKey(f.devices[1])}, false},
			{"a holder nobody waits for", []string{userKey(f.users[3])}, false},
			{"many holders", queuePadStrings(userKey(f.users[1])), true},
		} {
			wantRows, err := d.WaitingOfHolders(ctx, f.apps[0].ID, tt.keys)
			policyMust(t, err)
			wantAhead, err := d.ShortWaitingOfApp(ctx, f.apps[0].ID, tt.keys)
			policyMust(t, err)
			c, sc := queueCounted()
			rows, ahead, err := d.WaitingOfHoldersAndAhead(c, f.apps[0].ID, tt.keys)
			policyMust(t, err)
			if diff := cmp.Diff(wantRows, rows, cmpopts.EquateApproxTime(time.Second)); diff != "" {
				t.Errorf("%s: rows mismatch (-want +got):\n%s", tt.name, diff)
			}
			if diff := cmp.Diff(wantAhead, ahead); diff != "" {
				t.Errorf("%s: ahead mismatch (-want +got):\n%s", tt.name, diff)
			}
			if !tt.split && sc.Count() != 1 {
				t.Errorf("%s: %d statements, want 1", tt.name, sc.Count())
			}
		}
	})
}

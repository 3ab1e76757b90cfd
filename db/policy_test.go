package db_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
)

// Tests of db/policy.go, one per exported function (or per pair that only makes sense
// together, such as a setter and its getter), on both engines. The fixtures are this file's
// own (prefixed policy) so that they do not clash with the shared ones of db/helpers_test.go.

// policyFixture is two accounts, two apps, three pools (A/X, B/X, A/Y), four users, four
// devices (device i used by user i) and two groups, the second dynamic.
type policyFixture struct {
	accounts [2]*model.Account
	apps     [2]*model.App
	pools    [3]*model.LicensePool
	users    [4]*model.User
	devices  [4]*model.Device
	groups   [2]*model.Group
}

func policyMust(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func policySeed(t *testing.T, d *db.DB) *policyFixture {
	t.Helper()
	ctx := context.Background()
	now := db.Now()
	f := &policyFixture{}
	for i := range f.accounts {
		key := fmt.Sprintf("uid-policy-%d", i)
		f.accounts[i] = &model.Account{Name: fmt.Sprintf("Account %d", i), OrgName: "Org", LocationName: fmt.Sprintf("Location %d", i), CountryCode: "US",
			AppleUID: key, LocationKey: &key, TokenCiphertext: []byte("sealed"), TokenExpiresAt: now.Add(24 * time.Hour),
			Health: model.TokenHealthActive, HealthChangedAt: now, SyncStatus: model.SyncStatusNever}
		policyMust(t, d.InsertRows(ctx, f.accounts[i]))
		f.apps[i] = &model.App{AdamID: fmt.Sprint(700001 + i), Kind: model.AppKindApp, Name: fmt.Sprintf("App %d", i),
			BundleID: fmt.Sprintf("com.example.policy%d", i), Platforms: "IOS"}
		policyMust(t, d.InsertRows(ctx, f.apps[i]))
	}
	for i, ap := range [][2]int{{0, 0}, {1, 0}, {0, 1}} {
		f.pools[i] = &model.LicensePool{AccountID: f.accounts[ap[0]].ID, AppID: f.apps[ap[1]].ID, AdamID: f.apps[ap[1]].AdamID, PricingParam: "STDQ",
			TotalCount: 10, DeviceAssignable: true, Revocable: true}
		policyMust(t, d.InsertRows(ctx, f.pools[i]))
	}
	for i := range f.users {
		f.users[i] = &model.User{ExternalID: fmt.Sprintf("policy-ext-%d", i), ClientUserID: fmt.Sprintf("policy-cu-%d", i),
			Email: fmt.Sprintf("policy%d@example.com", i), Name: fmt.Sprintf("User %d", i), Status: model.UserActive}
		policyMust(t, d.InsertRows(ctx, f.users[i]))
		uid := f.users[i].ID
		f.devices[i] = &model.Device{SerialNumber: fmt.Sprintf("POLICY%03d", i), Name: fmt.Sprintf("iPad %d", i), Platform: model.PlatformIPadOS,
			OSVersion: "17.4", CountryCode: "US", UserID: &uid, Status: model.DeviceActive}
		policyMust(t, d.InsertRows(ctx, f.devices[i]))
	}
	rule := `{"platforms":["IPADOS"]}`
	for i := range f.groups {
		f.groups[i] = &model.Group{ExternalID: fmt.Sprintf("policy-group-%d", i), Name: fmt.Sprintf("Group %d", i), CreatedAt: now, UpdatedAt: now}
		if i == 1 {
			f.groups[i].Rule = &rule
		}
		policyMust(t, d.SaveGroup(ctx, f.groups[i]))
	}
	return f
}

// policyLabel saves a license label (licenseKind set) or an app label of an app.
func policyLabel(t *testing.T, d *db.DB, app *model.App, name string, licenseKind model.LicenseKind) *model.Label {
	t.Helper()
	now := db.Now()
	l := &model.Label{Kind: model.LabelApp, Name: name, AppID: app.ID, CreatedAt: now, UpdatedAt: now}
	if licenseKind != "" {
		l.Kind, l.LicenseKind = model.LabelLicense, &licenseKind
	}
	policyMust(t, d.SaveLabel(context.Background(), l))
	return l
}

// policyAssignment writes a device assignment of a pool in a state, made by a label (or not).
func policyAssignment(t *testing.T, d *db.DB, p *model.LicensePool, dev *model.Device, status model.AssignmentStatus, labelID *int64, causedBy string) *model.LicenseAssignment {
	t.Helper()
	now := db.Now()
	a := &model.LicenseAssignment{PoolID: p.ID, AccountID: p.AccountID, AppID: p.AppID, Kind: model.LicenseKindDevice, SerialNumber: &dev.SerialNumber,
		DeviceID: &dev.ID, Status: status, Origin: model.OriginAdmin, LabelID: labelID, Reason: "test", CausedBy: causedBy, CreatedAt: now, UpdatedAt: now}
	if labelID != nil {
		a.Origin = model.OriginLabel
	}
	if status.Active() {
		hk := model.HolderKeyFor(model.LicenseKindDevice, dev.SerialNumber, "")
		a.HolderKey = &hk
	}
	policyMust(t, d.InsertRows(context.Background(), a))
	return a
}

// policyWaiting is a waiting holder (a device) of a label, covered since at.
func policyWaiting(l *model.Label, dev *model.Device, at time.Time) *model.PolicyWaiting {
	return &model.PolicyWaiting{LabelID: l.ID, HolderKey: model.HolderKeyFor(model.LicenseKindDevice, dev.SerialNumber, ""), AppID: l.AppID,
		Kind: model.LicenseKindDevice, DeviceID: &dev.ID, Code: model.CodeLabelCapReached, Reason: "cap", FirstCoveredAt: at, UpdatedAt: at}
}

// policyNotFound checks an error is the not-found error, named after its operation.
func policyNotFound(t *testing.T, err error, op string) {
	t.Helper()
	if !errors.Is(err, model.ErrNotFound) || !strings.Contains(err.Error(), op) {
		t.Errorf("error %v; want the not-found error, naming %q", err, op)
	}
}

func policyLabelIDs(ls []*model.Label) []int64 {
	out := []int64{}
	for _, l := range ls {
		out = append(out, l.ID)
	}
	return out
}

func policyDeviceIDs(ds []*model.Device) []int64 {
	out := []int64{}
	for _, x := range ds {
		out = append(out, x.ID)
	}
	return out
}

func policyAssignmentIDs(as []*model.LicenseAssignment) []int64 {
	out := []int64{}
	for _, a := range as {
		out = append(out, a.ID)
	}
	return out
}

func TestPolicyGroupByIDAndExternalID(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := policySeed(t, d)
		g, err := d.GroupByID(ctx, f.groups[1].ID)
		policyMust(t, err)
		if g.ExternalID != "policy-group-1" || g.Rule == nil || !g.Dynamic() {
			t.Errorf("GroupByID: %+v; want the dynamic group policy-group-1", g)
		}
		g, err = d.GroupByExternalID(ctx, "policy-group-0")
		policyMust(t, err)
		if g.ID != f.groups[0].ID || g.Dynamic() {
			t.Errorf("GroupByExternalID: %+v; want the directory group %d", g, f.groups[0].ID)
		}
		_, err = d.GroupByID(ctx, 999999)
		policyNotFound(t, err, "group by id")
		_, err = d.GroupByExternalID(ctx, "nope")
		policyNotFound(t, err, "group by external id")
	})
}

func TestPolicySaveGroup(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := policySeed(t, d)
		if f.groups[0].ID == 0 {
			t.Fatal("an inserted group has no id")
		}
		f.groups[0].Name = "Renamed"
		policyMust(t, d.SaveGroup(ctx, f.groups[0]))
		g, err := d.GroupByID(ctx, f.groups[0].ID)
		policyMust(t, err)
		if g.Name != "Renamed" {
			t.Errorf("name after update %q, want Renamed", g.Name)
		}
		dup := &model.Group{ExternalID: "policy-group-0", Name: "Twin", CreatedAt: db.Now(), UpdatedAt: db.Now()}
		if err := d.SaveGroup(ctx, dup); !errors.Is(err, db.ErrDuplicate) {
			t.Errorf("a second group with external id policy-group-0: %v, want ErrDuplicate", err)
		}
	})
}

func TestPolicyDynamicGroups(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := policySeed(t, d)
		rule := `{"countries":["FR"]}`
		third := &model.Group{ExternalID: "policy-group-2", Name: "Group 2", Rule: &rule, CreatedAt: db.Now(), UpdatedAt: db.Now()}
		policyMust(t, d.SaveGroup(ctx, third))
		gs, err := d.DynamicGroups(ctx)
		policyMust(t, err)
		var got []int64
		for _, g := range gs {
			got = append(got, g.ID)
		}
		if diff := cmp.Diff([]int64{f.groups[1].ID, third.ID}, got); diff != "" {
			t.Errorf("dynamic groups mismatch (-want +got):\n%s", diff)
		}
	})
}

// AddGroupMembers answers the members that were not in the group (each once), and
// RemoveGroupMembers those that were; GroupMemberIDs reads what is left, in id order.
func TestPolicyGroupMembership(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := policySeed(t, d)
		g := f.groups[0].ID
		u, dv := f.users, f.devices
		type ids struct{ Users, Devices []int64 }
		step := func(what string, want ids, users, devices []int64, err error) {
			t.Helper()
			policyMust(t, err)
			if diff := cmp.Diff(want, ids{users, devices}, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s mismatch (-want +got):\n%s", what, diff)
			}
		}
		users, devices, err := d.AddGroupMembers(ctx, g, []int64{u[2].ID, u[0].ID, u[2].ID}, []int64{dv[1].ID}, db.Now())
		step("first add", ids{[]int64{u[2].ID, u[0].ID}, []int64{dv[1].ID}}, users, devices, err)
		users, devices, err = d.AddGroupMembers(ctx, g, []int64{u[0].ID, u[1].ID}, []int64{dv[1].ID, dv[3].ID}, db.Now())
		step("second add", ids{[]int64{u[1].ID}, []int64{dv[3].ID}}, users, devices, err)
		users, devices, err = d.AddGroupMembers(ctx, g, nil, nil, db.Now())
		step("empty add", ids{nil, nil}, users, devices, err)
		users, devices, err = d.GroupMemberIDs(ctx, g)
		step("members", ids{[]int64{u[0].ID, u[1].ID, u[2].ID}, []int64{dv[1].ID, dv[3].ID}}, users, devices, err)
		users, devices, err = d.RemoveGroupMembers(ctx, g, []int64{u[1].ID, u[3].ID}, []int64{dv[0].ID, dv[3].ID})
		step("remove", ids{[]int64{u[1].ID}, []int64{dv[3].ID}}, users, devices, err)
		users, devices, err = d.GroupMemberIDs(ctx, g)
		step("members after remove", ids{[]int64{u[0].ID, u[2].ID}, []int64{dv[1].ID}}, users, devices, err)
		users, devices, err = d.GroupMemberIDs(ctx, f.groups[1].ID)
		step("members of an empty group", ids{nil, nil}, users, devices, err)
		// One member at a time: the insert or delete alone answers (one statement).
		g1 := f.groups[1].ID
		for _, tt := range []struct {
			what           string
			add            bool
			users, devices []int64
			want           ids
		}{
			{"one user added", true, []int64{u[3].ID}, nil, ids{[]int64{u[3].ID}, nil}},
			{"the same user again", true, []int64{u[3].ID}, nil, ids{nil, nil}},
			{"one device added", true, nil, []int64{dv[2].ID}, ids{nil, []int64{dv[2].ID}}},
			{"the same device again", true, nil, []int64{dv[2].ID}, ids{nil, nil}},
			{"one user removed", false, []int64{u[3].ID}, nil, ids{[]int64{u[3].ID}, nil}},
			{"the same user again", false, []int64{u[3].ID}, nil, ids{nil, nil}},
			{"one device removed", false, nil, []int64{dv[2].ID}, ids{nil, []int64{dv[2].ID}}},
			{"a device not in the group", false, nil, []int64{dv[0].ID}, ids{nil, nil}},
		} {
			c, sc := queueCounted()
			if tt.add {
				users, devices, err = d.AddGroupMembers(c, g1, tt.users, tt.devices, db.Now())
			} else {
				users, devices, err = d.RemoveGroupMembers(c, g1, tt.users, tt.devices)
			}
			step(tt.what, tt.want, users, devices, err)
			if sc.Count() != 1 {
				t.Errorf("%s: %d statements, want 1", tt.what, sc.Count())
			}
		}
		users, devices, err = d.GroupMemberIDs(ctx, g1)
		step("members after one at a time", ids{nil, nil}, users, devices, err)
	})
}

// GroupIDsOfUser and GroupIDsOfDevice read a member's groups in id order; LeaveAllGroups takes
// it out of them all and answers which they were.
func TestPolicyGroupsOfMemberAndLeaveAllGroups(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := policySeed(t, d)
		u, dv := f.users[0].ID, f.devices[0].ID
		for _, g := range []*model.Group{f.groups[1], f.groups[0]} {
			_, _, err := d.AddGroupMembers(ctx, g.ID, []int64{u}, []int64{dv}, db.Now())
			policyMust(t, err)
		}
		both := []int64{f.groups[0].ID, f.groups[1].ID}
		got, err := d.GroupIDsOfUser(ctx, u)
		policyMust(t, err)
		if diff := cmp.Diff(both, got); diff != "" {
			t.Errorf("groups of user mismatch (-want +got):\n%s", diff)
		}
		got, err = d.GroupIDsOfDevice(ctx, dv)
		policyMust(t, err)
		if diff := cmp.Diff(both, got); diff != "" {
			t.Errorf("groups of device mismatch (-want +got):\n%s", diff)
		}
		for _, c := range []struct {
			name         string
			user, device int64
			want         []int64
		}{
			{name: "user", user: u, want: both},
			{name: "user again", user: u, want: nil},
			{name: "device", device: dv, want: both},
		} {
			got, err := d.LeaveAllGroups(ctx, c.user, c.device)
			policyMust(t, err)
			if diff := cmp.Diff(c.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("LeaveAllGroups(%s) mismatch (-want +got):\n%s", c.name, diff)
			}
		}
		if us, ds, err := d.GroupMemberIDs(ctx, f.groups[0].ID); err != nil || len(us)+len(ds) > 0 {
			t.Errorf("group 0 after leaving: users %v, devices %v, %v; want none", us, ds, err)
		}
	})
}

// DeparturesOfGroups reads the departures from the groups since a time, newest first;
// PruneDepartures deletes those before a time.
func TestPolicyDepartures(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := policySeed(t, d)
		now := db.Now()
		u, dv := f.users[0].ID, f.devices[0].ID
		rows := []*model.PolicyDeparture{
			{GroupID: f.groups[0].ID, UserID: &u, How: model.DepartureRemoved, At: now.Add(-2 * time.Hour)},
			{GroupID: f.groups[0].ID, DeviceID: &dv, How: model.DepartureRemoved, At: now.Add(-time.Minute)},
			{GroupID: f.groups[1].ID, DeviceID: &dv, How: model.DepartureNoMatch, At: now},
		}
		policyMust(t, d.InsertDepartures(ctx, rows))
		policyMust(t, d.InsertDepartures(ctx, nil))
		hows := func(ds []*model.PolicyDeparture) []string {
			out := []string{}
			for _, x := range ds {
				out = append(out, fmt.Sprintf("%d %s", x.ID, x.How))
			}
			return out
		}
		got, err := d.DeparturesOfGroups(ctx, []int64{f.groups[0].ID, f.groups[1].ID}, now.Add(-time.Hour))
		policyMust(t, err)
		want := []string{fmt.Sprintf("%d NO_MATCH", rows[2].ID), fmt.Sprintf("%d REMOVED", rows[1].ID)}
		if diff := cmp.Diff(want, hows(got)); diff != "" {
			t.Errorf("departures in the last hour mismatch (-want +got):\n%s", diff)
		}
		if got, err := d.DeparturesOfGroups(ctx, nil, now.Add(-time.Hour)); err != nil || len(got) > 0 {
			t.Errorf("departures of no group: %v, %v; want none", got, err)
		}
		policyMust(t, d.PruneDepartures(ctx, now.Add(-time.Hour)))
		got, err = d.DeparturesOfGroups(ctx, []int64{f.groups[0].ID}, now.Add(-24*time.Hour))
		policyMust(t, err)
		if diff := cmp.Diff([]string{fmt.Sprintf("%d REMOVED", rows[1].ID)}, hows(got)); diff != "" {
			t.Errorf("departures of group 0 after pruning mismatch (-want +got):\n%s", diff)
		}
	})
}

func TestPolicyMembersOfGroups(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := policySeed(t, d)
		g0, g1 := f.groups[0].ID, f.groups[1].ID
		_, _, err := d.AddGroupMembers(ctx, g0, []int64{f.users[0].ID, f.users[1].ID}, []int64{f.devices[0].ID}, db.Now())
		policyMust(t, err)
		_, _, err = d.AddGroupMembers(ctx, g1, []int64{f.users[1].ID}, []int64{f.devices[0].ID, f.devices[2].ID}, db.Now())
		policyMust(t, err)
		got, err := d.MembersOfGroups(ctx, []int64{g0, g1})
		policyMust(t, err)
		want := &db.GroupMembers{
			Users:   map[int64][]int64{f.users[0].ID: {g0}, f.users[1].ID: {g0, g1}},
			Devices: map[int64][]int64{f.devices[0].ID: {g0, g1}, f.devices[2].ID: {g1}},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("members mismatch (-want +got):\n%s", diff)
		}
		got, err = d.MembersOfGroups(ctx, nil)
		policyMust(t, err)
		if diff := cmp.Diff(&db.GroupMembers{Users: map[int64][]int64{}, Devices: map[int64][]int64{}}, got); diff != "" {
			t.Errorf("members of no group mismatch (-want +got):\n%s", diff)
		}
	})
}

// The store reads holders by id for every device and user a policy covers, which may be more
// than one statement takes on SQLite (32,766 variables): the read is split, not refused.
func TestPolicyHolderReadsBeyondOneStatement(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := policySeed(t, d)
		ids := make([]int64, 40000)
		for i := range ids {
			ids[i] = int64(1000000 + i)
		}
		ids[39999] = f.devices[2].ID
		ds, err := d.DevicesByID(ctx, ids)
		policyMust(t, err)
		if diff := cmp.Diff([]int64{f.devices[2].ID}, policyDeviceIDs(ds)); diff != "" {
			t.Errorf("devices of 40,000 ids mismatch (-want +got):\n%s", diff)
		}
		ids[39999] = f.users[1].ID
		us, err := d.UsersByID(ctx, ids)
		policyMust(t, err)
		if len(us) != 1 || us[0].ID != f.users[1].ID {
			t.Errorf("users of 40,000 ids: %d, want user %d", len(us), f.users[1].ID)
		}
	})
}

// SaveLabel inserts and updates; LabelByID reads one (deleted ones too), LabelsByID many.
func TestPolicySaveLabelAndLabelsByID(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := policySeed(t, d)
		a := policyLabel(t, d, f.apps[0], "A", model.LicenseKindUser)
		b := policyLabel(t, d, f.apps[0], "B", "")
		if a.ID == 0 || b.ID == a.ID {
			t.Fatalf("label ids %d, %d", a.ID, b.ID)
		}
		deleted := db.Now()
		a.Name, a.CapCount, a.DeletedAt = "A2", policyPtr(int64(5)), &deleted
		policyMust(t, d.SaveLabel(ctx, a))
		got, err := d.LabelByID(ctx, a.ID)
		policyMust(t, err)
		if got.Name != "A2" || got.CapCount == nil || *got.CapCount != 5 || got.DeletedAt == nil || got.Kind != model.LabelLicense ||
			got.LicenseKind == nil || *got.LicenseKind != model.LicenseKindUser {
			t.Errorf("label after update: %+v", got)
		}
		_, err = d.LabelByID(ctx, 999999)
		policyNotFound(t, err, "label by id")
		ls, err := d.LabelsByID(ctx, []int64{b.ID, 999999, a.ID})
		policyMust(t, err)
		if len(ls) != 2 {
			t.Errorf("LabelsByID: %v, want labels %d and %d", policyLabelIDs(ls), a.ID, b.ID)
		}
		ls, err = d.LabelsByID(ctx, nil)
		if err != nil || len(ls) != 0 {
			t.Errorf("LabelsByID(nil): %v, %v; want none", ls, err)
		}
	})
}

func policyPtr[T any](v T) *T { return &v }

// LabelsOfApp reads an app's labels of one kind, deleted ones included, in id order.
func TestPolicyLabelsOfApp(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := policySeed(t, d)
		l1 := policyLabel(t, d, f.apps[0], "L1", model.LicenseKindDevice)
		policyLabel(t, d, f.apps[0], "App label", "")
		l2 := policyLabel(t, d, f.apps[0], "L2", model.LicenseKindUser)
		policyLabel(t, d, f.apps[1], "Other app", model.LicenseKindUser)
		now := db.Now()
		l2.DeletedAt = &now
		policyMust(t, d.SaveLabel(ctx, l2))
		got, err := d.LabelsOfApp(ctx, f.apps[0].ID, model.LabelLicense)
		policyMust(t, err)
		if diff := cmp.Diff([]int64{l1.ID, l2.ID}, policyLabelIDs(got)); diff != "" {
			t.Errorf("license labels of app 0 mismatch (-want +got):\n%s", diff)
		}
	})
}

// SetLabelGroups and SetLabelAccounts replace; LabelGroupIDs and LabelAccountIDs read them
// per label, accounts in the priority order set (not id order).
func TestPolicyLabelGroupsAndAccounts(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := policySeed(t, d)
		a := policyLabel(t, d, f.apps[0], "A", model.LicenseKindDevice)
		b := policyLabel(t, d, f.apps[0], "B", model.LicenseKindDevice)
		g0, g1 := f.groups[0].ID, f.groups[1].ID
		acc0, acc1 := f.accounts[0].ID, f.accounts[1].ID
		policyMust(t, d.SetLabelGroups(ctx, a.ID, []int64{g1, g0}))
		policyMust(t, d.SetLabelGroups(ctx, b.ID, []int64{g0}))
		policyMust(t, d.SetLabelGroups(ctx, b.ID, []int64{g1}))
		policyMust(t, d.SetLabelAccounts(ctx, a.ID, []int64{acc1, acc0}))
		policyMust(t, d.SetLabelAccounts(ctx, b.ID, []int64{acc0}))
		policyMust(t, d.SetLabelAccounts(ctx, b.ID, nil))
		groups, err := d.LabelGroupIDs(ctx, []int64{a.ID, b.ID})
		policyMust(t, err)
		if diff := cmp.Diff(map[int64][]int64{a.ID: {g0, g1}, b.ID: {g1}}, groups); diff != "" {
			t.Errorf("label groups mismatch (-want +got):\n%s", diff)
		}
		accounts, err := d.LabelAccountIDs(ctx, []int64{a.ID, b.ID})
		policyMust(t, err)
		if diff := cmp.Diff(map[int64][]int64{a.ID: {acc1, acc0}}, accounts); diff != "" {
			t.Errorf("label accounts mismatch (-want +got):\n%s", diff)
		}
		for _, read := range []func(context.Context, []int64) (map[int64][]int64, error){d.LabelGroupIDs, d.LabelAccountIDs} {
			if m, err := read(ctx, nil); err != nil || len(m) != 0 {
				t.Errorf("read of no label: %v, %v; want none", m, err)
			}
		}
	})
}

// DeleteLabels removes labels with their groups, accounts and waiting holders, and nothing else.
func TestPolicyDeleteLabels(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := policySeed(t, d)
		gone := policyLabel(t, d, f.apps[0], "Gone", model.LicenseKindDevice)
		kept := policyLabel(t, d, f.apps[0], "Kept", model.LicenseKindDevice)
		for _, l := range []*model.Label{gone, kept} {
			policyMust(t, d.SetLabelGroups(ctx, l.ID, []int64{f.groups[0].ID}))
			policyMust(t, d.SetLabelAccounts(ctx, l.ID, []int64{f.accounts[0].ID}))
		}
		policyMust(t, d.ReplaceWaiting(ctx, f.apps[0].ID, []*model.PolicyWaiting{policyWaiting(gone, f.devices[0], db.Now()), policyWaiting(kept, f.devices[1], db.Now())}))
		policyMust(t, d.DeleteLabels(ctx, []int64{gone.ID}))
		policyMust(t, d.DeleteLabels(ctx, nil))
		_, err := d.LabelByID(ctx, gone.ID)
		policyNotFound(t, err, "label by id")
		groups, err := d.LabelGroupIDs(ctx, []int64{gone.ID, kept.ID})
		policyMust(t, err)
		accounts, err := d.LabelAccountIDs(ctx, []int64{gone.ID, kept.ID})
		policyMust(t, err)
		waiting, err := d.CountWaitingByLabel(ctx, []int64{gone.ID, kept.ID})
		policyMust(t, err)
		got := []any{groups, accounts, waiting}
		want := []any{map[int64][]int64{kept.ID: {f.groups[0].ID}}, map[int64][]int64{kept.ID: {f.accounts[0].ID}}, map[int64]int{kept.ID: 1}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("what is left mismatch (-want +got):\n%s", diff)
		}
	})
}

// policyLabels is a little policy: on app 0, license label L (groups 0 and 1), app label P
// (group 1) and license label D (group 0, deleted); on app 1, license label M (group 1).
type policyLabels struct{ l, p, dead, m *model.Label }

func policyLabelSet(t *testing.T, d *db.DB, f *policyFixture) *policyLabels {
	t.Helper()
	ctx := context.Background()
	ls := &policyLabels{
		l:    policyLabel(t, d, f.apps[0], "L", model.LicenseKindDevice),
		p:    policyLabel(t, d, f.apps[0], "P", ""),
		dead: policyLabel(t, d, f.apps[0], "D", model.LicenseKindDevice),
		m:    policyLabel(t, d, f.apps[1], "M", model.LicenseKindUser),
	}
	now := db.Now()
	ls.dead.DeletedAt = &now
	policyMust(t, d.SaveLabel(ctx, ls.dead))
	policyMust(t, d.SetLabelGroups(ctx, ls.l.ID, []int64{f.groups[0].ID, f.groups[1].ID}))
	policyMust(t, d.SetLabelGroups(ctx, ls.p.ID, []int64{f.groups[1].ID}))
	policyMust(t, d.SetLabelGroups(ctx, ls.dead.ID, []int64{f.groups[0].ID}))
	policyMust(t, d.SetLabelGroups(ctx, ls.m.ID, []int64{f.groups[1].ID}))
	return ls
}

// AppsLabelledForGroups: the apps with a live label of either kind on the groups; AppsUnderPolicy:
// the apps with a license label, deleted ones too.
func TestPolicyLabelledApps(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := policySeed(t, d)
		app0, app1 := f.apps[0].ID, f.apps[1].ID
		ls := policyLabelSet(t, d, f)
		for _, c := range []struct {
			groups []int64
			want   []int64
		}{
			{[]int64{f.groups[0].ID}, []int64{app0}},
			{[]int64{f.groups[1].ID, f.groups[0].ID}, []int64{app0, app1}},
			{nil, nil},
		} {
			got, err := d.AppsLabelledForGroups(ctx, c.groups)
			policyMust(t, err)
			if diff := cmp.Diff(c.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("apps labelled for groups %v mismatch (-want +got):\n%s", c.groups, diff)
			}
		}
		// Only app 1's license label and app 0's deleted one: both apps are still under policy.
		policyMust(t, d.DeleteLabels(ctx, []int64{ls.l.ID, ls.p.ID}))
		got, err := d.AppsUnderPolicy(ctx)
		policyMust(t, err)
		if diff := cmp.Diff([]int64{app0, app1}, got); diff != "" {
			t.Errorf("apps under policy mismatch (-want +got):\n%s", diff)
		}
		policyMust(t, d.DeleteLabels(ctx, []int64{ls.dead.ID}))
		got, err = d.AppsUnderPolicy(ctx)
		policyMust(t, err)
		if diff := cmp.Diff([]int64{app1}, got); diff != "" {
			t.Errorf("apps under policy after deleting app 0's labels mismatch (-want +got):\n%s", diff)
		}
	})
}

// ListLicenseLabels and CountLicenseLabels: live license labels only, by app and by group,
// paged in id order.
func TestPolicyListAndCountLicenseLabels(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := policySeed(t, d)
		ls := policyLabelSet(t, d, f)
		for _, c := range []struct {
			name   string
			filter db.LicenseLabelFilter
			want   []int64
		}{
			{"all", db.LicenseLabelFilter{}, []int64{ls.l.ID, ls.m.ID}},
			{"app 0", db.LicenseLabelFilter{AppID: f.apps[0].ID}, []int64{ls.l.ID}},
			{"group 0", db.LicenseLabelFilter{GroupID: f.groups[0].ID}, []int64{ls.l.ID}},
			{"group 1 of app 1", db.LicenseLabelFilter{GroupID: f.groups[1].ID, AppID: f.apps[1].ID}, []int64{ls.m.ID}},
			{"no such app", db.LicenseLabelFilter{AppID: 999999}, []int64{}},
		} {
			got, more, err := d.ListLicenseLabels(ctx, c.filter, db.Page{First: 10})
			policyMust(t, err)
			n, err := d.CountLicenseLabels(ctx, c.filter)
			policyMust(t, err)
			if diff := cmp.Diff(c.want, policyLabelIDs(got)); diff != "" || more || n != len(c.want) {
				t.Errorf("%s: more %v, count %d, labels mismatch (-want +got):\n%s", c.name, more, n, diff)
			}
		}
		first, more, err := d.ListLicenseLabels(ctx, db.LicenseLabelFilter{}, db.Page{First: 1})
		policyMust(t, err)
		next, more2, err := d.ListLicenseLabels(ctx, db.LicenseLabelFilter{}, db.Page{First: 1, After: ls.l.ID})
		policyMust(t, err)
		if diff := cmp.Diff([]any{[]int64{ls.l.ID}, true, []int64{ls.m.ID}, false}, []any{policyLabelIDs(first), more, policyLabelIDs(next), more2}); diff != "" {
			t.Errorf("pages of one mismatch (-want +got):\n%s", diff)
		}
	})
}

// LiveLabelsOnGroups: live labels of both kinds on any of the groups; LicenseLabelsByGroup:
// per group, the live license labels.
func TestPolicyLabelsOnGroups(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := policySeed(t, d)
		ls := policyLabelSet(t, d, f)
		g0, g1 := f.groups[0].ID, f.groups[1].ID
		got, err := d.LiveLabelsOnGroups(ctx, []int64{g1})
		policyMust(t, err)
		if diff := cmp.Diff([]int64{ls.l.ID, ls.p.ID, ls.m.ID}, policyLabelIDs(got)); diff != "" {
			t.Errorf("live labels on group 1 mismatch (-want +got):\n%s", diff)
		}
		if got, err := d.LiveLabelsOnGroups(ctx, nil); err != nil || len(got) != 0 {
			t.Errorf("live labels on no group: %v, %v; want none", policyLabelIDs(got), err)
		}
		byGroup, err := d.LicenseLabelsByGroup(ctx, []int64{g0, g1, 999999})
		policyMust(t, err)
		ids := map[int64][]int64{}
		for g, ls := range byGroup {
			ids[g] = policyLabelIDs(ls)
		}
		if diff := cmp.Diff(map[int64][]int64{g0: {ls.l.ID}, g1: {ls.l.ID, ls.m.ID}}, ids); diff != "" {
			t.Errorf("license labels by group mismatch (-want +got):\n%s", diff)
		}
		if byGroup[g1][1].Name != "M" || byGroup[g1][1].LicenseKind == nil {
			t.Errorf("a label read by group lacks its columns: %+v", byGroup[g1][1])
		}
	})
}

// ActiveAssignmentsOfAppAll reads an app's active assignments in id order; FailedLabelAssignments
// an app's refused label assignments since a time; CountLabelAssignments the active ones per label.
func TestPolicyAssignmentsOfApp(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := policySeed(t, d)
		ls := policyLabelSet(t, d, f)
		l := &ls.l.ID
		pending := policyAssignment(t, d, f.pools[0], f.devices[0], model.AssignmentPending, l, "label")
		assigned := policyAssignment(t, d, f.pools[1], f.devices[1], model.AssignmentAssigned, nil, "admin")
		reclaiming := policyAssignment(t, d, f.pools[0], f.devices[2], model.AssignmentReclaiming, l, "label")
		failed := policyAssignment(t, d, f.pools[0], f.devices[3], model.AssignmentFailed, l, "label")
		policyAssignment(t, d, f.pools[0], f.devices[1], model.AssignmentFailed, nil, "admin")
		policyAssignment(t, d, f.pools[0], f.devices[3], model.AssignmentReclaimed, l, "label")
		policyAssignment(t, d, f.pools[2], f.devices[0], model.AssignmentAssigned, nil, "other app")
		got, err := d.ActiveAssignmentsOfAppAll(ctx, f.apps[0].ID)
		policyMust(t, err)
		if diff := cmp.Diff([]int64{pending.ID, assigned.ID, reclaiming.ID}, policyAssignmentIDs(got)); diff != "" {
			t.Errorf("active assignments of app 0 mismatch (-want +got):\n%s", diff)
		}
		got, err = d.FailedLabelAssignments(ctx, f.apps[0].ID, db.Now().Add(-time.Hour))
		policyMust(t, err)
		if diff := cmp.Diff([]int64{failed.ID}, policyAssignmentIDs(got)); diff != "" {
			t.Errorf("failed label assignments mismatch (-want +got):\n%s", diff)
		}
		got, err = d.FailedLabelAssignments(ctx, f.apps[0].ID, db.Now().Add(time.Hour))
		policyMust(t, err)
		if len(got) != 0 {
			t.Errorf("failed label assignments since an hour ahead: %v, want none", policyAssignmentIDs(got))
		}
		n, err := d.CountLabelAssignments(ctx, []int64{ls.l.ID, ls.m.ID})
		policyMust(t, err)
		if diff := cmp.Diff(map[int64]int{ls.l.ID: 2}, n); diff != "" {
			t.Errorf("active assignments per label mismatch (-want +got):\n%s", diff)
		}
		if n, err := d.CountLabelAssignments(ctx, nil); err != nil || len(n) != 0 {
			t.Errorf("count of no label: %v, %v", n, err)
		}
	})
}

// SetAssignmentLabel hands assignments to a label (ending their grace time), SetLabelOutSince
// starts and ends a grace time.
func TestPolicyAssignmentColumns(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := policySeed(t, d)
		ls := policyLabelSet(t, d, f)
		a := policyAssignment(t, d, f.pools[0], f.devices[0], model.AssignmentAssigned, &ls.l.ID, "label:L")
		read := func(id int64) *model.LicenseAssignment {
			t.Helper()
			as, err := d.AssignmentsByID(ctx, []int64{id})
			policyMust(t, err)
			if len(as) != 1 {
				t.Fatalf("assignment %d not found", id)
			}
			return as[0]
		}
		since := db.Now().Add(-time.Minute)
		policyMust(t, d.SetLabelOutSince(ctx, []int64{a.ID}, &since))
		if got := read(a.ID); got.LabelOutSince == nil || got.LabelOutSince.Sub(since).Abs() > time.Second {
			t.Errorf("label out since %v, want %v", got.LabelOutSince, since)
		}
		other := ls.dead.ID
		policyMust(t, d.SetAssignmentLabel(ctx, []int64{a.ID}, other, "label:D"))
		if got := read(a.ID); got.LabelID == nil || *got.LabelID != other || got.CausedBy != "label:D" || got.LabelOutSince != nil {
			t.Errorf("after SetAssignmentLabel: label %v, caused by %q, out since %v; want %d, label:D, none", got.LabelID, got.CausedBy, got.LabelOutSince, other)
		}
		policyMust(t, d.SetLabelOutSince(ctx, []int64{a.ID}, &since))
		policyMust(t, d.SetLabelOutSince(ctx, []int64{a.ID}, nil))
		if got := read(a.ID); got.LabelOutSince != nil {
			t.Errorf("label out since %v after ending the grace, want none", got.LabelOutSince)
		}
		for _, set := range []func() error{
			func() error { return d.SetAssignmentLabel(ctx, nil, 1, "x") },
			func() error { return d.SetLabelOutSince(ctx, nil, nil) },
		} {
			policyMust(t, set())
		}
	})
}

// ReplaceWaiting replaces an app's waiting holders (another app's stay); WaitingOfApp reads
// them first covered first; WaitingOfHolder a holder's; CountWaitingByLabel counts per label.
func TestPolicyWaitingHolders(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := policySeed(t, d)
		ls := policyLabelSet(t, d, f)
		now := db.Now()
		keys := func(ws []*model.PolicyWaiting) []string {
			out := []string{}
			for _, w := range ws {
				out = append(out, fmt.Sprintf("%d %s", w.LabelID, w.HolderKey))
			}
			return out
		}
		key := func(l *model.Label, dev *model.Device) string {
			return fmt.Sprintf("%d %s", l.ID, policyWaiting(l, dev, now).HolderKey)
		}
		userWaiting := &model.PolicyWaiting{LabelID: ls.m.ID, HolderKey: "user-key", AppID: f.apps[1].ID, Kind: model.LicenseKindUser, UserID: &f.users[2].ID,
			Code: model.CodeLabelCapReached, Reason: "cap", FirstCoveredAt: now, UpdatedAt: now}
		policyMust(t, d.ReplaceWaiting(ctx, f.apps[1].ID, []*model.PolicyWaiting{userWaiting}))
		policyMust(t, d.ReplaceWaiting(ctx, f.apps[0].ID, []*model.PolicyWaiting{policyWaiting(ls.l, f.devices[0], now)}))
		policyMust(t, d.ReplaceWaiting(ctx, f.apps[0].ID, []*model.PolicyWaiting{
			policyWaiting(ls.l, f.devices[1], now.Add(2*time.Second)), policyWaiting(ls.l, f.devices[2], now), policyWaiting(ls.dead, f.devices[1], now.Add(time.Second))}))
		got, err := d.WaitingOfApp(ctx, f.apps[0].ID)
		policyMust(t, err)
		// First covered first, not in holder order.
		if diff := cmp.Diff([]string{key(ls.l, f.devices[2]), key(ls.dead, f.devices[1]), key(ls.l, f.devices[1])}, keys(got)); diff != "" {
			t.Errorf("waiting of app 0 mismatch (-want +got):\n%s", diff)
		}
		got, err = d.WaitingOfHolder(ctx, 0, f.devices[1].ID)
		policyMust(t, err)
		if diff := cmp.Diff([]string{key(ls.dead, f.devices[1]), key(ls.l, f.devices[1])}, keys(got)); diff != "" {
			t.Errorf("waiting of device 1 mismatch (-want +got):\n%s", diff)
		}
		got, err = d.WaitingOfHolder(ctx, f.users[2].ID, 0)
		policyMust(t, err)
		if diff := cmp.Diff([]string{fmt.Sprintf("%d user-key", ls.m.ID)}, keys(got)); diff != "" {
			t.Errorf("waiting of user 2 mismatch (-want +got):\n%s", diff)
		}
		n, err := d.CountWaitingByLabel(ctx, []int64{ls.l.ID, ls.dead.ID, ls.m.ID, ls.p.ID})
		policyMust(t, err)
		if diff := cmp.Diff(map[int64]int{ls.l.ID: 2, ls.dead.ID: 1, ls.m.ID: 1}, n); diff != "" {
			t.Errorf("waiting per label mismatch (-want +got):\n%s", diff)
		}
		policyMust(t, d.ReplaceWaiting(ctx, f.apps[0].ID, nil))
		if got, err := d.WaitingOfApp(ctx, f.apps[0].ID); err != nil || len(got) != 0 {
			t.Errorf("waiting of app 0 after replacing with none: %v, %v", keys(got), err)
		}
	})
}

// WaitingByLabel reads one page per label in fair order, its After an offset into that order,
// with one row more than asked when more follow.
func TestPolicyWaitingByLabel(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := policySeed(t, d)
		ls := policyLabelSet(t, d, f)
		now := db.Now()
		// Label L waits for devices 3, 1, 0, 2 in that order; label D for device 1.
		var rows []*model.PolicyWaiting
		for i, dev := range []int{3, 1, 0, 2} {
			rows = append(rows, policyWaiting(ls.l, f.devices[dev], now.Add(time.Duration(i)*time.Second)))
		}
		rows = append(rows, policyWaiting(ls.dead, f.devices[1], now))
		policyMust(t, d.ReplaceWaiting(ctx, f.apps[0].ID, rows))
		serials := func(m map[int64][]*model.PolicyWaiting) map[int64][]int64 {
			out := map[int64][]int64{}
			for l, ws := range m {
				for _, w := range ws {
					out[l] = append(out[l], *w.DeviceID)
				}
			}
			return out
		}
		dv := func(is ...int) []int64 {
			out := []int64{}
			for _, i := range is {
				out = append(out, f.devices[i].ID)
			}
			return out
		}
		for _, c := range []struct {
			name  string
			first int
			pages []db.ChildPage
			want  map[int64][]int64
		}{
			{"first pages of two", 2, []db.ChildPage{{ParentID: ls.l.ID}, {ParentID: ls.dead.ID}, {ParentID: ls.m.ID}},
				map[int64][]int64{ls.l.ID: dv(3, 1, 0), ls.dead.ID: dv(1)}},
			{"after two", 2, []db.ChildPage{{ParentID: ls.l.ID, After: 2}}, map[int64][]int64{ls.l.ID: dv(0, 2)}},
			{"after all", 2, []db.ChildPage{{ParentID: ls.l.ID, After: 4}}, map[int64][]int64{}},
			{"none asked", 2, nil, map[int64][]int64{}},
		} {
			got, err := d.WaitingByLabel(ctx, c.first, c.pages)
			policyMust(t, err)
			if diff := cmp.Diff(c.want, serials(got)); diff != "" {
				t.Errorf("%s mismatch (-want +got):\n%s", c.name, diff)
			}
		}
	})
}

// EnqueuePolicy queues; DuePolicyItems reads what is due, oldest first, at most a limit;
// CountPolicyQueue counts what is due; DeletePolicyItems removes.
func TestPolicyQueue(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := policySeed(t, d)
		now := db.Now()
		app0, app1 := f.apps[0].ID, f.apps[1].ID
		items := []*model.PolicyQueueItem{
			{AppID: &app0, Reason: "a", NotBefore: now.Add(-2 * time.Minute), CreatedAt: now},
			{AppID: &app1, Reason: "b", NotBefore: now.Add(time.Hour), CreatedAt: now},
			{Reason: "full", NotBefore: now.Add(-time.Minute), CreatedAt: now},
		}
		policyMust(t, d.EnqueuePolicy(ctx, items...))
		policyMust(t, d.EnqueuePolicy(ctx))
		reasons := func(is []*model.PolicyQueueItem) []string {
			out := []string{}
			for _, it := range is {
				out = append(out, it.Reason)
			}
			return out
		}
		due, err := d.DuePolicyItems(ctx, now, 10)
		policyMust(t, err)
		one, err := d.DuePolicyItems(ctx, now, 1)
		policyMust(t, err)
		n, err := d.CountPolicyQueue(ctx, now)
		policyMust(t, err)
		later, err := d.CountPolicyQueue(ctx, now.Add(2*time.Hour))
		policyMust(t, err)
		if diff := cmp.Diff([]any{[]string{"a", "full"}, []string{"a"}, 2, 3}, []any{reasons(due), reasons(one), n, later}); diff != "" {
			t.Errorf("due, first due, count now, count later mismatch (-want +got):\n%s", diff)
		}
		policyMust(t, d.DeletePolicyItems(ctx, []int64{items[0].ID, items[2].ID}))
		policyMust(t, d.DeletePolicyItems(ctx, nil))
		n, err = d.CountPolicyQueue(ctx, now.Add(2*time.Hour))
		policyMust(t, err)
		if n != 1 {
			t.Errorf("%d queue rows after deleting two of three, want 1", n)
		}
	})
}

// EnqueueWaitingApps queues, in one statement, each app with waiting holders that has a pool
// in the account; EnqueueAppsWithWaiting those of the given apps that have waiting holders.
func TestPolicyEnqueueAppsWithWaiting(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := policySeed(t, d)
		ls := policyLabelSet(t, d, f)
		now := db.Now()
		// App 0 has two waiting holders (one queue row all the same); app 1 none.
		policyMust(t, d.ReplaceWaiting(ctx, f.apps[0].ID, []*model.PolicyWaiting{policyWaiting(ls.l, f.devices[0], now), policyWaiting(ls.l, f.devices[1], now)}))
		queued := func() []string {
			t.Helper()
			items, err := d.DuePolicyItems(ctx, db.Now().Add(time.Minute), 100)
			policyMust(t, err)
			out := []string{}
			for _, it := range items {
				out = append(out, fmt.Sprintf("%d %s", *it.AppID, it.Reason))
				policyMust(t, d.DeletePolicyItems(ctx, []int64{it.ID}))
			}
			return out
		}
		app0 := f.apps[0].ID
		for _, c := range []struct {
			name    string
			enqueue func() error
			want    []string
		}{
			// Account 0 has pools of both apps, account 1 of app 0 only.
			{"account 0", func() error { return d.EnqueueWaitingApps(ctx, f.accounts[0].ID, "sync") }, []string{fmt.Sprintf("%d sync", app0)}},
			{"account 1", func() error { return d.EnqueueWaitingApps(ctx, f.accounts[1].ID, "sync") }, []string{fmt.Sprintf("%d sync", app0)}},
			{"apps 0 and 1", func() error { return d.EnqueueAppsWithWaiting(ctx, []int64{f.apps[1].ID, app0}, "reclaimed") }, []string{fmt.Sprintf("%d reclaimed", app0)}},
			{"app 1", func() error { return d.EnqueueAppsWithWaiting(ctx, []int64{f.apps[1].ID}, "reclaimed") }, []string{}},
			{"no app", func() error { return d.EnqueueAppsWithWaiting(ctx, nil, "reclaimed") }, []string{}},
		} {
			policyMust(t, c.enqueue())
			if diff := cmp.Diff(c.want, queued()); diff != "" {
				t.Errorf("%s: queued mismatch (-want +got):\n%s", c.name, diff)
			}
		}
		// Without waiting holders, an account queues nothing.
		policyMust(t, d.ReplaceWaiting(ctx, app0, nil))
		policyMust(t, d.EnqueueWaitingApps(ctx, f.accounts[0].ID, "sync"))
		if got := queued(); len(got) != 0 {
			t.Errorf("queued with no waiting holder: %v", got)
		}
	})
}

// InstallCommandExists: an install of the app queued for the device and not cancelled or failed.
func TestPolicyInstallCommandExists(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := policySeed(t, d)
		cmd := func(dev *model.Device, app *model.App, status model.CommandStatus) {
			policyMust(t, d.InsertRows(ctx, &model.DeviceCommand{DeviceID: dev.ID, AppID: app.ID, Kind: model.CommandInstall, Status: status, Reason: "test", CreatedAt: db.Now()}))
		}
		cmd(f.devices[0], f.apps[0], model.CommandPending)
		cmd(f.devices[1], f.apps[0], model.CommandAcknowledged)
		cmd(f.devices[2], f.apps[0], model.CommandFailed)
		cmd(f.devices[3], f.apps[0], model.CommandCancelled)
		for _, c := range []struct {
			dev, app int
			want     bool
		}{{0, 0, true}, {1, 0, true}, {2, 0, false}, {3, 0, false}, {0, 1, false}} {
			got, err := d.InstallCommandExists(ctx, f.devices[c.dev].ID, f.apps[c.app].ID)
			policyMust(t, err)
			if got != c.want {
				t.Errorf("install of app %d on device %d exists: %v, want %v", c.app, c.dev, got, c.want)
			}
		}
	})
}

// DevicesByGroup reads a page of devices per group in id order (one more when more follow);
// CountDevicesByGroup counts them.
func TestPolicyDevicesByGroup(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := policySeed(t, d)
		g0, g1 := f.groups[0].ID, f.groups[1].ID
		_, _, err := d.AddGroupMembers(ctx, g0, nil, []int64{f.devices[3].ID, f.devices[0].ID, f.devices[1].ID}, db.Now())
		policyMust(t, err)
		_, _, err = d.AddGroupMembers(ctx, g1, nil, []int64{f.devices[2].ID}, db.Now())
		policyMust(t, err)
		got, err := d.DevicesByGroup(ctx, 1, []db.ChildPage{{ParentID: g0}, {ParentID: g1}, {ParentID: g0 + g1 + 1000}})
		policyMust(t, err)
		after, err := d.DevicesByGroup(ctx, 5, []db.ChildPage{{ParentID: g0, After: f.devices[0].ID}})
		policyMust(t, err)
		n, err := d.CountDevicesByGroup(ctx, []int64{g0, g1, g0 + g1 + 1000})
		policyMust(t, err)
		want := []any{
			map[int64][]int64{g0: {f.devices[0].ID, f.devices[1].ID}, g1: {f.devices[2].ID}},
			map[int64][]int64{g0: {f.devices[1].ID, f.devices[3].ID}},
			map[int64]int{g0: 3, g1: 1},
		}
		ids := func(m map[int64][]*model.Device) map[int64][]int64 {
			out := map[int64][]int64{}
			for g, ds := range m {
				out[g] = policyDeviceIDs(ds)
			}
			return out
		}
		if diff := cmp.Diff(want, []any{ids(got), ids(after), n}); diff != "" {
			t.Errorf("first pages, page after device 0, counts mismatch (-want +got):\n%s", diff)
		}
	})
}

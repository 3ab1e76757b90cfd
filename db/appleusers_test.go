package db_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
)

// TestAppleUserStatusOf maps Apple's user statuses onto Orchard's, in any case; anything
// else is a registered user.
func TestAppleUserStatusOf(t *testing.T) {
	t.Parallel()
	tests := map[string]model.AppleUserStatus{
		"Associated": model.AppleUserAssociated, "ASSOCIATED": model.AppleUserAssociated,
		"Retired": model.AppleUserRetired, "deleted": model.AppleUserRetired,
		"Registered": model.AppleUserRegistered, "": model.AppleUserRegistered, "Unknown": model.AppleUserRegistered,
	}
	for in, want := range tests {
		if got := db.AppleUserStatusOf(in); got != want {
			t.Errorf("AppleUserStatusOf(%q) = %s, want %s", in, got, want)
		}
	}
}

// appleUserState is what the upsert tests compare of a registration.
type appleUserState struct {
	Status     model.AppleUserStatus
	Email      string
	InviteCode string
	UserID     int64
	SeenRunID  int64
}

func appleUserStates(t *testing.T, d *db.DB, accountID int64, ids ...string) map[string]appleUserState {
	t.Helper()
	got, err := d.AppleUserStatuses(bg(), accountID, ids)
	mustDo(t, err)
	out := map[string]appleUserState{}
	for id, u := range got {
		s := appleUserState{Status: u.Status, Email: u.Email}
		if u.InviteCode != nil {
			s.InviteCode = *u.InviteCode
		}
		if u.UserID != nil {
			s.UserID = *u.UserID
		}
		if u.SeenRunID != nil {
			s.SeenRunID = *u.SeenRunID
		}
		out[id] = s
	}
	return out
}

func runningRun(t *testing.T, d *db.DB, accountID int64) int64 {
	t.Helper()
	r := &model.SyncRun{AccountID: accountID, Kind: model.SyncFull, Trigger: model.TriggerManual, Status: model.SyncRunRunning, StartedAt: db.Now()}
	mustDo(t, d.InsertSyncRun(bg(), r))
	return r.ID
}

// TestUpsertAppleUsers applies pages of Apple's users: new ones are added (linked to the
// Orchard user with their clientUserId), changed ones updated, unchanged ones left alone; a
// retirement in flight keeps RETIRING until Apple says retired; an empty email keeps the
// known one; a full pass marks every row it saw; rows without clientUserId are skipped; an
// empty page does nothing.
func TestUpsertAppleUsers(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		acct := seedAccount(t, d)
		known := seedUser(t, d)
		run := runningRun(t, d, acct.ID)
		counts, err := d.UpsertAppleUsers(bg(), acct.ID, 0, []db.AppleUserRow{
			{ClientUserID: known.ClientUserID, Email: "k@example.com", Status: "Registered", InviteCode: "INV"},
			{ClientUserID: "cu-stranger", Email: "s@example.com", Status: "Associated"},
			{ClientUserID: "cu-retiring", Email: "r@example.com", Status: "Associated"},
			{ClientUserID: "", Email: "nobody@example.com"},
		})
		mustDo(t, err)
		if diff := cmp.Diff(db.SyncCounts{Added: 3}, counts); diff != "" {
			t.Errorf("first page counts mismatch (-want +got):\n%s", diff)
		}
		r, err := d.AppleUserOf(bg(), acct.ID, "cu-retiring")
		mustDo(t, err)
		mustDo(t, d.UpdateAppleUser(bg(), r.ID, map[string]any{"status": model.AppleUserRetiring}))

		counts, err = d.UpsertAppleUsers(bg(), acct.ID, run, []db.AppleUserRow{
			{ClientUserID: known.ClientUserID, Email: "", Status: "Associated"}, // accepted the invitation
			{ClientUserID: "cu-stranger", Email: "s@example.com", Status: "Associated"},
			{ClientUserID: "cu-retiring", Email: "r@example.com", Status: "Associated"},
		})
		mustDo(t, err)
		if diff := cmp.Diff(db.SyncCounts{Changed: 1}, counts); diff != "" {
			t.Errorf("second page counts mismatch (-want +got):\n%s", diff)
		}
		want := map[string]appleUserState{
			known.ClientUserID: {Status: model.AppleUserAssociated, Email: "k@example.com", UserID: known.ID, SeenRunID: run},
			"cu-stranger":      {Status: model.AppleUserAssociated, Email: "s@example.com", SeenRunID: run},
			"cu-retiring":      {Status: model.AppleUserRetiring, Email: "r@example.com", SeenRunID: run},
		}
		if diff := cmp.Diff(want, appleUserStates(t, d, acct.ID, known.ClientUserID, "cu-stranger", "cu-retiring", "")); diff != "" {
			t.Errorf("registrations mismatch (-want +got):\n%s", diff)
		}
		counts, err = d.UpsertAppleUsers(bg(), acct.ID, 0, []db.AppleUserRow{{ClientUserID: "cu-retiring", Status: "Retired"}})
		mustDo(t, err)
		if got := appleUserStates(t, d, acct.ID, "cu-retiring")["cu-retiring"].Status; got != model.AppleUserRetired || counts.Changed != 1 {
			t.Errorf("retirement confirmed: %s (%+v), want RETIRED", got, counts)
		}
		var sc db.StatementCounter
		counts, err = d.UpsertAppleUsers(db.WithStatementCounter(bg(), &sc), acct.ID, run, nil)
		if err != nil || counts != (db.SyncCounts{}) || sc.Count() != 0 {
			t.Errorf("empty page: %+v, %v, %d statements", counts, err, sc.Count())
		}
	})
}

// TestSweepAppleUsers retires, after a full pass, the registered and associated users the
// pass did not see; users it saw, users already retiring and other accounts' users stay. A
// pass no longer running (another replica declared it dead) sweeps nothing.
func TestSweepAppleUsers(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		acct, other := seedAccount(t, d), seedAccount(t, d)
		run := runningRun(t, d, acct.ID)
		_, err := d.UpsertAppleUsers(bg(), acct.ID, 0, []db.AppleUserRow{
			{ClientUserID: "cu-gone", Status: "Registered"}, {ClientUserID: "cu-gone2", Status: "Associated"},
			{ClientUserID: "cu-seen", Status: "Associated"}, {ClientUserID: "cu-retiring", Status: "Associated"},
		})
		mustDo(t, err)
		_, err = d.UpsertAppleUsers(bg(), other.ID, 0, []db.AppleUserRow{{ClientUserID: "cu-other", Status: "Registered"}})
		mustDo(t, err)
		r, err := d.AppleUserOf(bg(), acct.ID, "cu-retiring")
		mustDo(t, err)
		mustDo(t, d.UpdateAppleUser(bg(), r.ID, map[string]any{"status": model.AppleUserRetiring}))
		_, err = d.UpsertAppleUsers(bg(), acct.ID, run, []db.AppleUserRow{{ClientUserID: "cu-seen", Status: "Associated"}})
		mustDo(t, err)

		dead := &model.SyncRun{AccountID: acct.ID, Kind: model.SyncFull, Trigger: model.TriggerManual, Status: model.SyncRunFailed, StartedAt: db.Now()}
		mustDo(t, d.InsertSyncRun(bg(), dead))
		n, err := d.SweepAppleUsers(bg(), acct.ID, dead.ID)
		mustDo(t, err)
		if n != 0 {
			t.Errorf("a run no longer running swept %d users", n)
		}
		n, err = d.SweepAppleUsers(bg(), acct.ID, run)
		mustDo(t, err)
		if n != 2 {
			t.Errorf("swept %d users, want 2", n)
		}
		got := map[string]model.AppleUserStatus{}
		for id, s := range appleUserStates(t, d, acct.ID, "cu-gone", "cu-gone2", "cu-seen", "cu-retiring") {
			got[id] = s.Status
		}
		got["cu-other"] = appleUserStates(t, d, other.ID, "cu-other")["cu-other"].Status
		want := map[string]model.AppleUserStatus{"cu-gone": model.AppleUserRetired, "cu-gone2": model.AppleUserRetired,
			"cu-seen": model.AppleUserAssociated, "cu-retiring": model.AppleUserRetiring, "cu-other": model.AppleUserRegistered}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("statuses mismatch (-want +got):\n%s", diff)
		}
	})
}

// TestInsertAppleUser stores a registration (created), and on a second insert of the same
// (account, clientUserId) reads back the first one (not created).
func TestInsertAppleUser(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		acct, u := seedAccount(t, d), seedUser(t, d)
		first := &model.AppleUser{AccountID: acct.ID, UserID: &u.ID, ClientUserID: u.ClientUserID, Email: u.Email, Status: model.AppleUserRegistering}
		got, created, err := d.InsertAppleUser(bg(), first)
		mustDo(t, err)
		if !created || got.ID == 0 {
			t.Fatalf("first insert: created %v id %d", created, got.ID)
		}
		second := &model.AppleUser{AccountID: acct.ID, ClientUserID: u.ClientUserID, Email: "other@example.com", Status: model.AppleUserRegistering}
		again, created, err := d.InsertAppleUser(bg(), second)
		mustDo(t, err)
		if created || again.ID != first.ID || again.Email != u.Email {
			t.Errorf("second insert: created %v, id %d email %q; want the first (%d, %q)", created, again.ID, again.Email, first.ID, u.Email)
		}
		_, err = d.AppleUserOf(bg(), acct.ID, "cu-none")
		isNotFound(t, "apple user of", err)
	})
}

// TestAppleUsersOfUser reads a user's registrations in account order, one user's or (batch,
// for the loader) several users' by user id; users without any are absent and no ids read
// nothing, without a statement.
func TestAppleUsersOfUser(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		a1, a2 := seedAccount(t, d), seedAccount(t, d)
		u1, u2, u3 := seedUser(t, d), seedUser(t, d), seedUser(t, d)
		reg := func(a *model.Account, u *model.User) int64 {
			au, _, err := d.InsertAppleUser(bg(), &model.AppleUser{AccountID: a.ID, UserID: &u.ID, ClientUserID: u.ClientUserID, Status: model.AppleUserRegistered})
			mustDo(t, err)
			return au.ID
		}
		r12 := reg(a2, u1) // inserted first, listed second: account order
		r11 := reg(a1, u1)
		r21 := reg(a1, u2)
		one, err := d.AppleUsersOfUser(bg(), u1.ID)
		mustDo(t, err)
		appleUserID := func(u *model.AppleUser) int64 { return u.ID }
		if diff := cmp.Diff([]int64{r11, r12}, idsOf(one, appleUserID)); diff != "" {
			t.Errorf("apple users of user mismatch (-want +got):\n%s", diff)
		}
		tests := []struct {
			name       string
			ids        []int64
			want       map[int64][]int64
			statements int64
		}{
			{"some", []int64{u1.ID, u2.ID, u3.ID}, map[int64][]int64{u1.ID: {r11, r12}, u2.ID: {r21}}, 1},
			{"none", nil, map[int64][]int64{}, 0},
		}
		for _, tc := range tests {
			var sc db.StatementCounter
			got, err := d.AppleUsersByUserIDs(db.WithStatementCounter(bg(), &sc), tc.ids)
			mustDo(t, err)
			ids := map[int64][]int64{}
			for k, v := range got {
				ids[k] = idsOf(v, appleUserID)
			}
			if diff := cmp.Diff(tc.want, ids); diff != "" || sc.Count() != tc.statements {
				t.Errorf("%s: mismatch (-want +got), %d statements:\n%s", tc.name, sc.Count(), diff)
			}
		}
		none, err := d.AppleUserStatuses(bg(), a1.ID, nil)
		if err != nil || len(none) != 0 {
			t.Errorf("statuses of no users: %v, %v", none, err)
		}
	})
}

// TestAppleUserErrorsNameTheOperation: see TestAccountErrorsNameTheOperation.
func TestAppleUserErrorsNameTheOperation(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		d = closedStore(t, d)
		checkOpErrors(t, []opErr{
			{"upsert apple users", func() error {
				_, err := d.UpsertAppleUsers(bg(), 1, 0, []db.AppleUserRow{{ClientUserID: "x"}})
				return err
			}},
			{"sweep apple users", func() error { _, err := d.SweepAppleUsers(bg(), 1, 1); return err }},
			{"apple users by user ids", func() error { _, err := d.AppleUsersByUserIDs(bg(), []int64{1}); return err }},
			{"apple user of", func() error { _, err := d.AppleUserOf(bg(), 1, "x"); return err }},
			{"insert apple user", func() error { _, _, err := d.InsertAppleUser(bg(), &model.AppleUser{}); return err }},
			{"update apple user", func() error { return d.UpdateAppleUser(bg(), 1, map[string]any{"email": "x"}) }},
			{"apple users of user", func() error { _, err := d.AppleUsersOfUser(bg(), 1); return err }},
			{"apple user statuses", func() error { _, err := d.AppleUserStatuses(bg(), 1, []string{"x"}); return err }},
		})
	})
}

package license

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
)

// TestAssignTargetsForPolicy: what the planner gives a caller that is not an API mutation (the
// policy engine): the accounts it lists taken in its order, falling back to the next when one
// has no license left; a cap on the assignments of the call; the origin, reason and caused-by
// it gives; an outcome per target saying where the license came from or, with its code, why
// not; the reservations left over given back; the outbox rows released once the request is
// recorded.
func TestAssignTargetsForPolicy(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		now := db.Now()
		var accounts []*model.Account
		for i, c := range []string{"US", "US", "US"} {
			key := fmt.Sprintf("uid-%d", i)
			accounts = append(accounts, &model.Account{Name: fmt.Sprintf("Account %d", i), OrgName: "Org", LocationName: key, CountryCode: c,
				AppleUID: key, LocationKey: &key, TokenCiphertext: []byte("sealed"), TokenExpiresAt: now.Add(365 * 24 * time.Hour),
				Health: model.TokenHealthActive, HealthChangedAt: now, SyncStatus: model.SyncStatusNever})
		}
		mustDo(t, d.InsertRows(ctx, accounts))
		app := &model.App{AdamID: "5001", Kind: model.AppKindApp, Name: "Atlas", BundleID: "com.example.atlas", Platforms: "IOS,IPADOS"}
		mustDo(t, d.InsertRows(ctx, app))
		var pools []*model.LicensePool
		for i, total := range []int64{1, 2, 5} {
			pools = append(pools, &model.LicensePool{AccountID: accounts[i].ID, AppID: app.ID, AdamID: app.AdamID, PricingParam: "STDQ",
				TotalCount: total, DeviceAssignable: true, Revocable: true})
		}
		mustDo(t, d.InsertRows(ctx, pools))
		var devices []*model.Device
		for i := range 8 {
			devices = append(devices, &model.Device{SerialNumber: fmt.Sprintf("P%d", i), Platform: model.PlatformIPadOS, OSVersion: "17.4",
				CountryCode: "US", Status: model.DeviceActive})
		}
		devices[7].Status = model.DeviceRetired
		mustDo(t, d.InsertRows(ctx, devices))
		s := New(d, Options{Logger: dbtest.Quiet()})

		targets := func(serials ...string) []Target {
			var out []Target
			for _, sn := range serials {
				out = append(out, Target{SerialNumber: sn})
			}
			return out
		}
		type outcome struct {
			Index   int
			Account string // where the license came from
			Code    model.Code
			Capped  bool
		}
		summary := func(os []targetOutcome) []outcome {
			var out []outcome
			for _, o := range os {
				x := outcome{Index: o.Index, Capped: o.Capped}
				if o.Account != nil {
					x.Account = o.Account.Name
				}
				if o.Error != nil {
					x.Code = o.Error.Code
				}
				if (o.AssignmentID != 0) != (o.Account != nil) {
					t.Errorf("target %d: assignment %d from account %v", o.Index, o.AssignmentID, o.Account)
				}
				out = append(out, x)
			}
			return out
		}
		actor := RuleActor("label:science")

		// Account 1 first, then account 0 (one license); account 2 is not listed.
		outs, err := s.assignTargets(ctx, actor, &assignRequest{AppID: app.ID, Kind: model.LicenseKindDevice, Targets: targets("P0", "P1", "P2", "P3", "P7", "P0"),
			Accounts: []int64{accounts[1].ID, accounts[0].ID}, Origin: model.OriginLabel, Reason: "label science", CausedBy: "label:7", Gather: true}, false)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]outcome{
			{Index: 0, Account: "Account 1"}, {Index: 1, Account: "Account 1"}, {Index: 2, Account: "Account 0"},
			{Index: 3, Code: model.CodeNoLicensesAvailable}, {Index: 4, Code: model.CodeDeviceRetired}, {Index: 5, Code: model.CodeAlreadyAssigned},
		}, summary(outs)); diff != "" {
			t.Errorf("listed accounts: outcomes mismatch (-want +got):\n%s", diff)
		}
		if want := `no "Atlas" license left in account "Account 1" (2 owned, 0 assigned, 0 on their way); buy more in Apple Business Manager, or reclaim unused ones`; outs[3].Error.Message != want {
			t.Errorf("refusal of target 3: %q, want %q", outs[3].Error.Message, want)
		}
		a := outs[0].Assignment
		if diff := cmp.Diff([]any{model.OriginLabel, "label science", "label:7", model.AssignmentPending}, []any{a.Origin, a.Reason, a.CausedBy, a.Status}); diff != "" {
			t.Errorf("assignment recorded mismatch (-want +got):\n%s", diff)
		}

		// At most two more, from account 2: the third target is capped; the refused one does
		// not count.
		outs, err = s.assignTargets(ctx, actor, &assignRequest{AppID: app.ID, Kind: model.LicenseKindDevice, Targets: targets("P7", "P3", "P4", "P5", "P6"),
			Accounts: []int64{accounts[2].ID}, Limit: 2, Origin: model.OriginLabel, Gather: true}, false)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]outcome{
			{Index: 0, Code: model.CodeDeviceRetired}, {Index: 1, Account: "Account 2"}, {Index: 2, Account: "Account 2"},
			{Index: 3, Capped: true}, {Index: 4, Capped: true},
		}, summary(outs)); diff != "" {
			t.Errorf("capped call: outcomes mismatch (-want +got):\n%s", diff)
		}

		// The pools' counters: what was reserved and not used was given back.
		got, err := d.PoolsByID(ctx, []int64{pools[0].ID, pools[1].ID, pools[2].ID})
		if err != nil {
			t.Fatal(err)
		}
		reserved := map[int64]int64{}
		for _, p := range got {
			reserved[p.ID] = p.ReservedCount
		}
		if diff := cmp.Diff(map[int64]int64{pools[0].ID: 1, pools[1].ID: 2, pools[2].ID: 2}, reserved); diff != "" {
			t.Errorf("reserved counts mismatch (-want +got):\n%s", diff)
		}
		// Every associate is due now (released), one per assignment.
		due := map[string]int{}
		for _, acct := range accounts {
			items, err := d.QueuedOutbox(ctx, acct.ID, db.Now().Add(time.Second), 100)
			if err != nil {
				t.Fatal(err)
			}
			due[acct.Name] = len(items)
		}
		if diff := cmp.Diff(map[string]int{"Account 0": 1, "Account 1": 2, "Account 2": 2}, due); diff != "" {
			t.Errorf("due associates mismatch (-want +got):\n%s", diff)
		}

		// Inside the caller's transaction: written with it, and gone when it rolls back.
		errRollBack := errors.New("roll back")
		err = d.Tx(ctx, func(tx *db.DB) error {
			outs, err := s.assignTargetsTx(ctx, tx, actor, &assignRequest{AppID: app.ID, Kind: model.LicenseKindDevice, Targets: targets("P5", "P6"),
				Accounts: []int64{accounts[2].ID}, Origin: model.OriginLabel})
			if err != nil {
				return err
			}
			if diff := cmp.Diff([]outcome{{Index: 0, Account: "Account 2"}, {Index: 1, Account: "Account 2"}}, summary(outs)); diff != "" {
				t.Errorf("in the caller's transaction: outcomes mismatch (-want +got):\n%s", diff)
			}
			return errRollBack
		})
		if !errors.Is(err, errRollBack) {
			t.Fatalf("the caller's transaction: %v", err)
		}
		p, err := d.PoolByID(ctx, pools[2].ID)
		if err != nil {
			t.Fatal(err)
		}
		if p.ReservedCount != 2 {
			t.Errorf("after the roll-back, pool 2 has %d reserved, want 2", p.ReservedCount)
		}
	})
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

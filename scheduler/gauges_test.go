package scheduler_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
	"orchard/resolvers/gqltest"
	"orchard/scheduler"
)

// TestGauges reads the gauges of two accounts from the database, as /metrics does: the
// outbox backlog counts queued and sent items (not done ones), an empty pool is one with no
// license left (not an unlimited one, not one gone at Apple), a held account is held until
// its time, the data age runs from the last successful pass, the token's expiry is the
// account's.
func TestGauges(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := gqltest.Seed(t, d, 2, 3, 0)
		a, b := f.Accounts[0], f.Accounts[1]
		now := db.Now()
		held := now.Add(time.Hour)
		synced := now.Add(-10 * time.Minute)
		if err := d.UpdateAccount(ctx, a.ID, map[string]any{"throttled_until": held, "last_synced_at": synced}); err != nil {
			t.Fatal(err)
		}
		// Account a: pool 0 has licenses (total 5), pool 1 none left (total 0), pool 2 is
		// unlimited with total 0. Account b: pool 3 none left but gone at Apple.
		for i, set := range []string{
			"total_count = 5", "total_count = 0", "total_count = 0, unlimited = ?", "total_count = 0, gone_at_apple_at = ?",
		} {
			args := []any{}
			switch i {
			case 2:
				args = append(args, true)
			case 3:
				args = append(args, now)
			}
			args = append(args, f.Pools[i].ID)
			if _, err := d.SQL().ExecContext(ctx, "UPDATE license_pools SET "+set+" WHERE id = ?", args...); err != nil {
				t.Fatal(err)
			}
		}
		// Seeded with no licenses, b's pools 4 and 5 have none left either.
		var items []*model.OutboxItem
		for i, st := range []model.OutboxStatus{model.OutboxQueued, model.OutboxSent, model.OutboxDone, model.OutboxFailed} {
			items = append(items, &model.OutboxItem{AccountID: a.ID, Action: model.OutboxAssociate, AdamID: fmt.Sprint(i), Status: st, NotBefore: now, CreatedAt: now})
		}
		items = append(items, &model.OutboxItem{AccountID: b.ID, Action: model.OutboxRevoke, Status: model.OutboxQueued, NotBefore: now, CreatedAt: now})
		if err := d.InsertRows(ctx, items); err != nil {
			t.Fatal(err)
		}

		g := &scheduler.GaugeCollector{}
		g.Use(d, dbtest.Quiet())
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(g)
		want := fmt.Sprintf(`
# HELP orchard_account_held 1 while Apple holds the account with Retry-After (R3): nothing is sent to it until the hold ends.
# TYPE orchard_account_held gauge
orchard_account_held{account="%[1]d"} 1
orchard_account_held{account="%[2]d"} 0
# HELP orchard_account_held_until_timestamp_seconds When the account's current Retry-After hold ends (absent when not held).
# TYPE orchard_account_held_until_timestamp_seconds gauge
orchard_account_held_until_timestamp_seconds{account="%[1]d"} %[3]d
# HELP orchard_account_token_expiry_timestamp_seconds When the account's content token expires.
# TYPE orchard_account_token_expiry_timestamp_seconds gauge
orchard_account_token_expiry_timestamp_seconds{account="%[1]d"} %[4]d
orchard_account_token_expiry_timestamp_seconds{account="%[2]d"} %[5]d
# HELP orchard_gauges_up 1 when this scrape read the gauges from the database, 0 when it could not.
# TYPE orchard_gauges_up gauge
orchard_gauges_up 1
# HELP orchard_outbox_backlog Outbox items of the account not yet completed by Apple (queued or sent).
# TYPE orchard_outbox_backlog gauge
orchard_outbox_backlog{account="%[1]d"} 2
orchard_outbox_backlog{account="%[2]d"} 1
# HELP orchard_pools_empty License pools of the account (not unlimited, still at Apple) with no license left to hand out.
# TYPE orchard_pools_empty gauge
orchard_pools_empty{account="%[1]d"} 1
orchard_pools_empty{account="%[2]d"} 2
`, a.ID, b.ID, held.Unix(), a.TokenExpiresAt.Unix(), b.TokenExpiresAt.Unix())
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
			"orchard_account_held", "orchard_account_held_until_timestamp_seconds", "orchard_account_token_expiry_timestamp_seconds",
			"orchard_gauges_up", "orchard_outbox_backlog", "orchard_pools_empty"); err != nil {
			t.Error(err)
		}
		// The data age: about 10 minutes for a (its last pass), since its addition for b.
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		ages := map[string]float64{}
		for _, mf := range mfs {
			if mf.GetName() == "orchard_account_data_age_seconds" {
				for _, m := range mf.GetMetric() {
					ages[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
				}
			}
		}
		got := []bool{ages[fmt.Sprint(a.ID)] >= 600 && ages[fmt.Sprint(a.ID)] < 660, ages[fmt.Sprint(b.ID)] >= 0 && ages[fmt.Sprint(b.ID)] < 60}
		if diff := cmp.Diff([]bool{true, true}, got); diff != "" {
			t.Errorf("data ages %v mismatch (-want +got):\n%s", ages, diff)
		}
	})
}

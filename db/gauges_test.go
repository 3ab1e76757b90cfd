package db_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
)

// GaugeCounts counts, per account, the outbox items still waiting for Apple (QUEUED and SENT;
// DONE and FAILED are over) and the pools with no license left (total − assigned − reserved
// ≤ 0, over-committed ones included), leaving out unlimited pools and pools gone at Apple.
// Accounts with nothing to count are absent. Two statements, on an empty database too.
func TestGaugeCounts(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		c, sc := queueCounted()
		backlog, empty, err := d.GaugeCounts(c)
		mustDo(t, err)
		if diff := cmp.Diff([]map[int64]int64{{}, {}}, []map[int64]int64{backlog, empty}); diff != "" {
			t.Errorf("empty database: backlog, empty pools mismatch (-want +got):\n%s", diff)
		}
		if sc.Count() != 2 {
			t.Errorf("empty database: %d statements, want 2", sc.Count())
		}

		a, b, quiet := seedAccount(t, d), seedAccount(t, d), seedAccount(t, d)
		status := func(s model.OutboxStatus) func(*model.OutboxItem) {
			return func(it *model.OutboxItem) { it.Status = s }
		}
		for _, s := range []model.OutboxStatus{model.OutboxQueued, model.OutboxQueued, model.OutboxSent, model.OutboxDone, model.OutboxFailed} {
			seedOutbox(t, d, a, model.OutboxAssociate, status(s))
		}
		seedOutbox(t, d, b, model.OutboxDisassociate, status(model.OutboxSent))
		seedOutbox(t, d, quiet, model.OutboxAssociate, status(model.OutboxDone))

		// pool seeds a pool of a new app (one pool per account, app and pricing) of total
		// licenses with the given counters.
		pool := func(acc *model.Account, total, assigned, reserved int64, opts ...func(*model.LicensePool)) {
			p := seedPool(t, d, acc, seedApp(t, d), append([]func(*model.LicensePool){func(p *model.LicensePool) { p.TotalCount = total }}, opts...)...)
			seedPoolCounts(t, d, p, assigned, reserved)
		}
		unlimited := func(p *model.LicensePool) { p.Unlimited = true }
		gone := func(p *model.LicensePool) { now := db.Now(); p.GoneAtAppleAt = &now }
		pool(a, 5, 3, 2)            // none left: counted
		pool(a, 2, 3, 0)            // over-committed: counted
		pool(a, 0, 0, 0)            // no licenses at all: counted
		pool(a, 10, 1, 0)           // room left
		pool(a, 0, 0, 0, unlimited) // unlimited never runs out
		pool(a, 1, 1, 0, gone)      // gone at Apple: no gauge
		pool(b, 3, 1, 1)            // one left
		pool(quiet, 4, 0, 0)        // room left

		c, sc = queueCounted()
		backlog, empty, err = d.GaugeCounts(c)
		mustDo(t, err)
		want := []map[int64]int64{{a.ID: 3, b.ID: 1}, {a.ID: 3}}
		if diff := cmp.Diff(want, []map[int64]int64{backlog, empty}); diff != "" {
			t.Errorf("backlog, empty pools mismatch (-want +got):\n%s", diff)
		}
		if sc.Count() != 2 {
			t.Errorf("%d statements, want 2 whatever the number of accounts", sc.Count())
		}

		closed := closedStore(t, d)
		if _, _, err := closed.GaugeCounts(context.Background()); err == nil || !strings.HasPrefix(err.Error(), "count the outbox backlog: ") {
			t.Errorf("closed store: %v, want an error naming the outbox backlog count", err)
		}
	})
}

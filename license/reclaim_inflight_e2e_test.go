package license_test

import (
	"testing"
	"time"

	"orchard/apple/applesim"
	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
	"orchard/resolvers/gqltest"
	"orchard/scheduler"
)

// A license taken back while it is still on its way to Apple: before its associate was sent
// the intent is simply cancelled (RECLAIMED at once, the reservation released); after, it is
// reclaimed as soon as Apple's confirmation is known — whether the event's status or a sync
// pass tells Orchard first. An accepted reclaim is never dropped.
func TestReclaimWhileOnItsWay(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		// No notifications and slow polls: a sync pass can learn of the assignment before the
		// event's status is polled.
		e := newEnv(t, d, gqltest.StackOptions{NoNotifications: true, Scheduler: scheduler.Config{PollInterval: 3 * time.Second}},
			app("9401", total(3)))
		e.upsertDevices(iPad("W1"), iPad("W2"))
		reclaim := func(id string) string {
			t.Helper()
			var out struct {
				ReclaimLicense struct {
					Assignment *struct{ Status string }
					UserErrors []userError
				}
			}
			e.do(`mutation($id: ID!) { reclaimLicense(input: {assignmentId: $id, reason: "changed my mind"}) { assignment { status } userErrors { code message } } }`,
				map[string]any{"id": id}, &out)
			if out.ReclaimLicense.Assignment == nil {
				t.Fatalf("reclaimLicense: %+v", out.ReclaimLicense.UserErrors)
			}
			return out.ReclaimLicense.Assignment.Status
		}
		associates := func() int {
			n := 0
			for _, r := range e.st.Sim.RequestsFor(e.tok) {
				if r.Method == "POST" && r.Path == "/mdm/v2/assets/associate" && r.Status == 200 {
					n++
				}
			}
			return n
		}

		// Sent, then reclaimed, then confirmed by a sync pass before the event is polled.
		id := e.assignOK(deviceLicense("9401", "W1"))
		gqltest.WaitFor(t, "the associate to be sent", waitLong, func() bool { return associates() == 1 })
		if st := reclaim(id); st != "PENDING" && st != "RECLAIMING" {
			t.Errorf("reclaim of a license on its way: %s", st)
		}
		gqltest.WaitFor(t, "Apple to hold the license", waitLong, func() bool { return len(e.st.Sim.Assignments(e.tok)) == 1 })
		e.sync(e.acct)
		a := e.waitStatus(id, "RECLAIMED")
		if deref(a.ReclaimReason) != "changed my mind" {
			t.Errorf("reclaim reason %q", deref(a.ReclaimReason))
		}

		// Not sent yet (the account is held): cancelled at once, the reservation released.
		e.st.Sim.SetFault(e.tok, applesim.Fault{Kind: applesim.FaultUnavailable503, RetryAfterSeconds: 2, Count: 1})
		e.st.Do(t, e.st.Keys[model.RoleAdmin], `mutation($id: ID!) { syncAccount(input: {accountId: $id}) { userErrors { code } } }`,
			map[string]any{"id": e.acct}).MustData(t, &struct{}{})
		gqltest.WaitFor(t, "the hold", waitLong, func() bool {
			var out struct {
				Account struct{ ThrottledUntil *time.Time }
			}
			e.do(`query($id: ID!) { account(id: $id) { throttledUntil } }`, map[string]any{"id": e.acct}, &out)
			return out.Account.ThrottledUntil != nil
		})
		sent := associates()
		id2 := e.assignOK(deviceLicense("9401", "W2"))
		if st := reclaim(id2); st != "RECLAIMED" {
			if associates() == sent {
				t.Errorf("reclaim of a license not sent yet: %s", st)
			}
		}
		e.waitStatus(id2, "RECLAIMED")
		e.wantAudit(id2, "license.reclaim", "API_KEY", operatorName, "changed my mind")
		e.assertInSync(e.tok, e.acct)
		if got := e.st.Sim.Assignments(e.tok); len(got) != 0 {
			t.Errorf("the simulator still holds %+v", got)
		}
	})
}

package license_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/license"
	"orchard/model"
)

// TestMembershipChangeEvaluatesOnlyItsHolder: a user joining (then leaving) a group under a
// USER label costs the same statements — the mutation and its evaluation — whether the group
// has 10 other members or 1,000, and the user gets (then gives back) its license while the
// others' licenses are not touched.
func TestMembershipChangeEvaluatesOnlyItsHolder(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		type cost struct{ JoinMutation, JoinEvaluation, LeaveMutation, LeaveEvaluation int64 }
		got := map[int]cost{}
		for _, members := range []int{10, 1000} {
			d := d
			if members != 10 {
				d = dbtest.Engines()[engineIndex(t, d)].Open(t)
			}
			svc := license.New(d, license.Options{Logger: dbtest.Quiet()})
			seedLabelledGroup(t, d, members)
			var c cost
			c.JoinMutation, c.JoinEvaluation = countMembership(t, svc, license.MembersAdd)
			if n := countSQL(t, d, "SELECT COUNT(*) FROM license_assignments WHERE client_user_id = 'NEWC' AND status = 'PENDING' AND label_id = 1"); n != 1 {
				t.Fatalf("%d members: the newcomer holds %d label licenses, want 1", members, n)
			}
			c.LeaveMutation, c.LeaveEvaluation = countMembership(t, svc, license.MembersRemove)
			if n := countSQL(t, d, "SELECT COUNT(*) FROM license_assignments WHERE client_user_id = 'NEWC' AND status IN ('PENDING', 'ASSIGNED', 'RECLAIMING')"); n != 0 {
				t.Fatalf("%d members: the newcomer still holds %d licenses after leaving", members, n)
			}
			untouched := countSQL(t, d, "SELECT COUNT(*) FROM license_assignments WHERE client_user_id LIKE 'MC%' AND status = 'ASSIGNED' AND updated_at = created_at")
			if untouched != int64(members) {
				t.Fatalf("%d members: %d of their licenses untouched, want all", members, untouched)
			}
			got[members] = c
		}
		if diff := cmp.Diff(got[10], got[1000]); diff != "" {
			t.Errorf("statements with 10 members vs 1,000 mismatch (-10 +1000):\n%s", diff)
		}
	})
}

// engineIndex finds the engine of d among dbtest.Engines.
func engineIndex(t *testing.T, d *db.DB) int {
	for i, e := range dbtest.Engines() {
		if (e.Name == "mysql") == (d.Dialect() == db.MySQL) {
			return i
		}
	}
	t.Fatal("unknown engine")
	return 0
}

// countMembership adds or removes the user NEW to or from group G, which evaluates it in the
// change's transaction, and checks that nothing is left queued; it returns the statements of
// the change and of anything after it (none).
func countMembership(t *testing.T, svc *license.Service, op license.MembersOp) (mutation, evaluation int64) {
	t.Helper()
	var c db.StatementCounter
	ctx := db.WithStatementCounter(context.Background(), &c)
	res, err := svc.ChangeGroupMembers(ctx, license.RuleActor("test"), 0, "G", op, []license.MemberRef{{ExternalID: "NEW"}})
	if err != nil || res.Added+res.Removed != 1 {
		t.Fatalf("membership change: %+v, %v", res, err)
	}
	mutation = c.Count()
	// One member: the change evaluated it in its own transaction and queued nothing.
	if n, err := svc.EvaluatePolicyQueue(context.Background()); err != nil || n != 0 {
		t.Fatalf("evaluation after the change: %d evaluations, %v; want none left", n, err)
	}
	return mutation, c.Count() - mutation
}

// seedLabelledGroup writes an account, an app with a pool, a group G of members users each
// holding the ASSIGNED license of USER label 1 on G, and a user NEW in no group.
func seedLabelledGroup(t *testing.T, d *db.DB, members int) {
	t.Helper()
	ts := "'2024-01-01 00:00:00'"
	w := newBulkInserter(t, d)
	w.row("INSERT INTO accounts (id, name, token_ciphertext, token_expires_at, health, health_changed_at, created_at, updated_at) VALUES",
		fmt.Sprintf("(1, 'A', 'x', '2099-01-01 00:00:00', '%s', %s, %s, %s)", model.TokenHealthActive, ts, ts, ts))
	w.row("INSERT INTO apps (id, adam_id, kind, name, platforms, created_at, updated_at) VALUES", fmt.Sprintf("(1, '4242', 'APP', 'Keynote', 'IOS', %s, %s)", ts, ts))
	w.row("INSERT INTO license_pools (id, account_id, app_id, adam_id, pricing_param, total_count, apple_assigned_count, assigned_count, device_assignable, revocable, created_at, updated_at) VALUES",
		fmt.Sprintf("(1, 1, 1, '4242', 'STDQ', %d, %d, %d, 1, 1, %s, %s)", members+10, members, members, ts, ts))
	w.row("INSERT INTO `groups` (id, external_id, name, created_at, updated_at) VALUES", fmt.Sprintf("(1, 'G', 'Teachers', %s, %s)", ts, ts))
	w.row("INSERT INTO labels (id, kind, name, app_id, license_kind, created_at, updated_at) VALUES", fmt.Sprintf("(1, 'LICENSE', 'Keynote for teachers', 1, 'USER', %s, %s)", ts, ts))
	w.row("INSERT INTO label_groups (label_id, group_id) VALUES", "(1, 1)")
	w.row("INSERT INTO users (id, external_id, client_user_id, status, created_at, updated_at) VALUES", fmt.Sprintf("(%d, 'NEW', 'NEWC', 'ACTIVE', %s, %s)", members+1, ts, ts))
	for i := range members {
		w.row("INSERT INTO users (id, external_id, client_user_id, status, created_at, updated_at) VALUES", fmt.Sprintf("(%d, 'M%04d', 'MC%04d', 'ACTIVE', %s, %s)", i+1, i, i, ts, ts))
	}
	for i := range members {
		w.row("INSERT INTO group_members (group_id, user_id, created_at) VALUES", fmt.Sprintf("(1, %d, %s)", i+1, ts))
	}
	for i := range members {
		w.row("INSERT INTO license_assignments (pool_id, account_id, app_id, kind, client_user_id, user_id, holder_key, status, origin, reason, caused_by, assigned_at, label_id, created_at, updated_at) VALUES",
			fmt.Sprintf("(1, 1, 1, 'USER', 'MC%04d', %d, 'U:MC%04d', 'ASSIGNED', 'LABEL', 'seed', 'label:1', %s, 1, %s, %s)", i, i+1, i, ts, ts, ts))
	}
	w.flush()
}

func countSQL(t *testing.T, d *db.DB, q string) int64 {
	t.Helper()
	var n int64
	if err := d.SQL().QueryRow(q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// TestLabelChangeEvaluatedOnce: a label change is evaluated with the change, in its
// transaction, and the queue rows it covers go with it — the background evaluation finds
// nothing left to do, and the change's answer is what was done (issue 10: a real change was
// evaluated twice, by its preview and again in the background).
func TestLabelChangeEvaluatedOnce(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		seedLabelledGroup(t, d, 10)
		for _, q := range []string{
			"INSERT INTO `groups` (id, external_id, name, created_at, updated_at) VALUES (2, 'H', 'Newcomers', '2024-01-01 00:00:00', '2024-01-01 00:00:00')",
			"INSERT INTO group_members (group_id, user_id, created_at) VALUES (2, 11, '2024-01-01 00:00:00')",
		} {
			if _, err := d.SQL().Exec(q); err != nil {
				t.Fatal(err)
			}
		}
		svc := license.New(d, license.Options{Logger: dbtest.Quiet()})
		groups := []int64{1, 2}
		_, res, err := svc.ChangeLicenseLabel(ctx, license.RuleActor("test"), license.LabelChange{Label: &license.LicenseLabelInput{ID: 1, GroupIDs: &groups}})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Assigned) != 1 || res.Assigned[0].HolderKey != "U:NEWC" || len(res.Reclaimed) != 0 {
			t.Fatalf("the change's answer: assigned %+v, reclaimed %+v; want NEWC assigned, nothing reclaimed", res.Assigned, res.Reclaimed)
		}
		if n := svc.Evaluations(); n != 1 {
			t.Errorf("%d evaluations for one label change, want 1", n)
		}
		if n, err := svc.EvaluatePolicyQueue(ctx); err != nil || n != 0 {
			t.Errorf("the background evaluation found %d evaluations to run (%v), want 0", n, err)
		}
		if n := countSQL(t, d, "SELECT COUNT(*) FROM license_assignments WHERE client_user_id = 'NEWC' AND label_id = 1"); n != 1 {
			t.Errorf("the newcomer holds %d label licenses, want 1", n)
		}
	})
}

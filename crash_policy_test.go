package main

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"orchard/db/dbtest"
)

// Issue 10, done means 6: the orchard process is killed with SIGKILL several times while a
// membership change of 2,000 users is evaluated (assignments through a USER label), and again
// while 1,000 of them leave (reclaims). After the last restart and one full evaluation, what is
// held equals what the label says — one license per member, none for those who left, nothing
// doubled — no pool was over-assigned (sampled throughout), and Orchard equals the simulator.
func TestPolicyCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the orchard binary; skipped with -short")
	}
	bin := buildOrchard(t)
	for _, e := range dbtest.Engines() {
		t.Run(e.Name, func(t *testing.T) { policyCrashRun(t, bin, e) })
	}
}

const policyCrashUsers = 2000

func policyCrashRun(t *testing.T, bin string, e dbtest.Engine) {
	h := newCrashHarness(t, bin, e, []crashAsset{{"6001", 2200}}, 60*time.Second)
	sim, tok, d, cl := h.sim, h.tok, h.d, h.cl
	ext := func(i int) string { return fmt.Sprintf("crash-user-%04d", i) }
	for start := 0; start < policyCrashUsers; start += 1000 {
		var us []map[string]any
		for i := start; i < start+1000; i++ {
			us = append(us, map[string]any{"externalId": ext(i), "email": ext(i) + "@example.com"})
		}
		var out struct {
			UpsertUsers struct{ UserErrors []struct{ Code string } }
		}
		cl.must(t, `mutation($u: [UserInput!]!) { upsertUsers(input: {users: $u}) { userErrors { code } } }`, map[string]any{"u": us}, &out)
	}
	var g struct {
		UpsertGroup struct{ Group struct{ ID string } }
	}
	cl.must(t, `mutation { upsertGroup(input: {externalId: "crash-group", name: "Crash"}) { group { id } } }`, nil, &g)
	var l struct {
		CreateLicenseLabel struct {
			Label      *struct{ ID string }
			UserErrors []struct{ Code, Message string }
		}
	}
	cl.must(t, `mutation($g: ID!) { createLicenseLabel(input: {name: "Crash label", adamId: "6001", kind: USER, groupIds: [$g]}) { label { id } userErrors { code message } } }`,
		map[string]any{"g": g.UpsertGroup.Group.ID}, &l)
	if l.CreateLicenseLabel.Label == nil {
		t.Fatalf("createLicenseLabel: %+v", l.CreateLicenseLabel.UserErrors)
	}

	// Over-assignment is sampled all along.
	var violations []string
	stop, sampled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			for _, p := range crashPools(context.Background(), d) {
				if p.assigned+p.reserved > p.total || p.reserved < 0 {
					violations = append(violations, fmt.Sprintf("pool %s: assigned %d + reserved %d > total %d", p.adamID, p.assigned, p.reserved, p.total))
				}
			}
		}
	}()

	// members sends one membership change, retried until it is answered (a change is
	// idempotent by nature: adding a member twice adds it once).
	members := func(op string, from, to int) {
		var ms []map[string]any
		for i := from; i < to; i++ {
			ms = append(ms, map[string]any{"externalId": ext(i)})
		}
		for attempt := 0; ; attempt++ {
			var out map[string]struct{ UserErrors []struct{ Code string } }
			err := cl.do(context.Background(), `mutation($m: [GroupMemberInput!]!) { `+op+`(input: {groupExternalId: "crash-group", members: $m}) { userErrors { code } } }`,
				map[string]any{"m": ms}, &out)
			if err == nil {
				if len(out[op].UserErrors) > 0 {
					t.Fatalf("%s: %+v", op, out[op].UserErrors)
				}
				return
			}
			if attempt > 200 {
				t.Fatalf("%s never answered: %v", op, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	busy := func() bool {
		return crashCount(t, d, "SELECT COUNT(*) FROM policy_queue") > 0 ||
			crashCount(t, d, "SELECT COUNT(*) FROM license_assignments WHERE status IN ('PENDING', 'RECLAIMING')") > 0
	}
	kills := 0
	// killWhileBusy kills the process at moments spread over the evaluation and its work at
	// Apple, at least three times, then lets it finish.
	killWhileBusy := func(phase string) {
		for i := 0; i < 12 && (i < 3 || busy()); i++ {
			time.Sleep(time.Duration(300+150*(i%4)) * time.Millisecond)
			h.restart(t, func() { kills++ })
			h.waitReady(t)
		}
		t.Logf("%s: %d kills so far", phase, kills)
	}

	members("addGroupMembers", 0, policyCrashUsers)
	killWhileBusy("2,000 users joining")
	members("removeGroupMembers", 1000, policyCrashUsers)
	killWhileBusy("1,000 users leaving")

	// One full evaluation after the last restart, then the work settles.
	if _, err := d.SQL().Exec("DELETE FROM settings WHERE name = 'policy_full_evaluated_at'"); err != nil {
		t.Fatal(err)
	}
	crashWait(t, "a full evaluation", 120*time.Second, func() bool {
		return crashCount(t, d, "SELECT COUNT(*) FROM settings WHERE name = 'policy_full_evaluated_at'") == 1
	})
	crashWait(t, "the work to settle", 240*time.Second, func() bool { return !busy() })
	close(stop)
	<-sampled
	if len(violations) > 0 {
		t.Errorf("over-assignment sampled: %v", violations[:min(len(violations), 10)])
	}

	// What is held equals what the label says: members 0..999 hold one license each.
	rows, err := d.SQL().Query("SELECT u.external_id, a.origin, COUNT(*) FROM license_assignments a JOIN users u ON u.id = a.user_id WHERE a.status IN ('ASSIGNED', 'PENDING', 'RECLAIMING') GROUP BY u.external_id, a.origin")
	if err != nil {
		t.Fatal(err)
	}
	var got, want []string
	for rows.Next() {
		var who, origin string
		var n int
		if err := rows.Scan(&who, &origin, &n); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s %s %d", who, origin, n))
	}
	rows.Close()
	for i := 0; i < 1000; i++ {
		want = append(want, ext(i)+" LABEL 1")
	}
	slices.Sort(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("held licenses mismatch the label (-want +got):\n%s", diff)
	}
	var orch, apple []string
	rs, err := d.SQL().Query("SELECT client_user_id FROM license_assignments WHERE status = 'ASSIGNED'")
	if err != nil {
		t.Fatal(err)
	}
	for rs.Next() {
		var s string
		if err := rs.Scan(&s); err != nil {
			t.Fatal(err)
		}
		orch = append(orch, s)
	}
	rs.Close()
	for _, a := range sim.Assignments(tok) {
		apple = append(apple, a.ClientUserID)
	}
	slices.Sort(orch)
	slices.Sort(apple)
	if diff := cmp.Diff(apple, orch); diff != "" {
		t.Errorf("Orchard differs from the simulator (-sim +orchard):\n%s", diff)
	}
	for _, p := range crashPools(context.Background(), d) {
		if p.assigned != 1000 || p.reserved != 0 {
			t.Errorf("pool %s: assigned %d, reserved %d; want 1000, 0", p.adamID, p.assigned, p.reserved)
		}
	}
	// Apple's count as Orchard has it is its last pass's plus the batches it applied since,
	// and a pass whose read of the assets crossed a reclaim batch at Apple writes the count
	// from before the batch (CI saw 1,100 for 1,000 held, once): the next pass puts it right.
	// So it is checked after a full pass, as TestCrashSafety ends.
	fullPass(t, cl, d)
	for _, p := range crashPools(context.Background(), d) {
		if p.appleAssigned != 1000 {
			t.Errorf("pool %s: Apple's assigned %d after a full pass; want 1000", p.adamID, p.appleAssigned)
		}
	}
	t.Logf("%d kills", kills)
}

package license_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"orchard/apple/applesim"
	"orchard/db"
	"orchard/db/dbtest"
	"orchard/license"
	"orchard/model"
	"orchard/resolvers/gqltest"
)

// Issue 10, done means 7: the figures of policy on each engine.
//
//	go test ./license/ -run '^$' -bench Policy -benchtime 1x
//	ORCHARD_BENCH_POLICY_DEVICES=1000 go test ./license/ -run '^$' -bench Policy -benchtime 1x   (CI size)
//
// The fleet (seeded with bulk SQL inserts) is ORCHARD_BENCH_POLICY_DEVICES devices (default
// 100,000) and half as many users, in 500 groups (250 of devices, 250 of users) under 50
// license labels of 50 apps (25 DEVICE labels, 25 USER labels, 10 groups each), every covered
// holder already holding its label's license. Reported:
//
//	full/...            full-s, full-stmts: a full evaluation with nothing to change (the goal:
//	                    under 5 s on SQLite), and changed (0: it wrote nothing)
//	membership/fleet=N  join-stmts, leave-stmts: one user added to (removed from) a labelled
//	                    group, the mutation and its evaluation together (the goal: under 20,
//	                    the same at both fleet sizes); join-eval-stmts, leave-eval-stmts: the
//	                    share of an evaluation queued by the change (0: the change evaluated
//	                    its one member itself, in its transaction); device-join-stmts,
//	                    device-leave-stmts: the same for a device and a group under a DEVICE
//	                    label
//	add/latency=L       adding ORCHARD_BENCH_POLICY_ADD holders (default 10,000; devices under a
//	                    DEVICE label) to a group over GraphQL: associates (the associate
//	                    requests Apple saw; the goal is one per 1,000 holders) and assigned-s
//	                    (from the call to the last one ASSIGNED)
//	add-users/latency=L the same for users under a USER label, and user-creates (the
//	                    users/create requests that register them with Apple first)
func BenchmarkPolicy(b *testing.B) {
	devices := benchEnvInt(b, "ORCHARD_BENCH_POLICY_DEVICES", 100000)
	add := benchEnvInt(b, "ORCHARD_BENCH_POLICY_ADD", min(10000, max(100, devices/10)))
	for _, e := range dbtest.Engines() {
		b.Run(e.Name+"/full", func(b *testing.B) {
			b.StopTimer()
			d := e.Open(b)
			svc := license.New(d, license.Options{Logger: dbtest.Quiet()})
			seedPolicyFleet(b, d, devices)
			var sum struct {
				t     time.Duration
				stmts int64
			}
			before := policyChanges(b, d)
			for range b.N {
				var c db.StatementCounter
				ctx := db.WithStatementCounter(context.Background(), &c)
				b.StartTimer()
				start := time.Now()
				if _, err := svc.EvaluateAllPolicy(ctx); err != nil {
					b.Fatal(err)
				}
				sum.t += time.Since(start)
				b.StopTimer()
				sum.stmts += c.Count()
			}
			n := float64(b.N)
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(sum.t.Seconds()/n, "full-s")
			b.ReportMetric(float64(sum.stmts)/n, "full-stmts")
			b.ReportMetric(float64(policyChanges(b, d)-before), "changed")
		})
		for _, size := range dedupeInts(max(1000, devices/10), devices) {
			b.Run(fmt.Sprintf("%s/membership/fleet=%d", e.Name, size), func(b *testing.B) {
				b.StopTimer()
				d := e.Open(b)
				svc := license.New(d, license.Options{Logger: dbtest.Quiet()})
				seedPolicyFleet(b, d, size)
				var join, joinEval, leave, leaveEval, devJoin, devLeave int64
				for i := range b.N {
					user := license.MemberRef{ExternalID: fmt.Sprintf("SPARE%03d", i%policySpareUsers)}
					j, je := benchMembership(b, svc, d, "BG250", license.MembersAdd, user)
					if got := benchHeld(b, d, user.ExternalID); got != 1 {
						b.Fatalf("%s joined a labelled group: %d licenses, want 1", user.ExternalID, got)
					}
					l, le := benchMembership(b, svc, d, "BG250", license.MembersRemove, user)
					if got := benchHeld(b, d, user.ExternalID); got != 0 {
						b.Fatalf("%s left the labelled group: %d licenses held, want 0", user.ExternalID, got)
					}
					join, joinEval, leave, leaveEval = join+j, joinEval+je, leave+l, leaveEval+le
					dev := license.MemberRef{SerialNumber: fmt.Sprintf("SPARED%03d", i%policySpareUsers)}
					dj, _ := benchMembership(b, svc, d, "BG000", license.MembersAdd, dev)
					if got := benchHeldBy(b, d, "serial_number", dev.SerialNumber); got != 1 {
						b.Fatalf("%s joined a labelled group: %d licenses, want 1", dev.SerialNumber, got)
					}
					dl, _ := benchMembership(b, svc, d, "BG000", license.MembersRemove, dev)
					if got := benchHeldBy(b, d, "serial_number", dev.SerialNumber); got != 0 {
						b.Fatalf("%s left the labelled group: %d licenses held, want 0", dev.SerialNumber, got)
					}
					devJoin, devLeave = devJoin+dj, devLeave+dl
				}
				n := float64(b.N)
				b.ReportMetric(0, "ns/op")
				b.ReportMetric(float64(join)/n, "join-stmts")
				b.ReportMetric(float64(joinEval)/n, "join-eval-stmts")
				b.ReportMetric(float64(leave)/n, "leave-stmts")
				b.ReportMetric(float64(leaveEval)/n, "leave-eval-stmts")
				b.ReportMetric(float64(devJoin)/n, "device-join-stmts")
				b.ReportMetric(float64(devLeave)/n, "device-leave-stmts")
			})
		}
		for _, kind := range []string{"DEVICE", "USER"} {
			name := map[string]string{"DEVICE": "add", "USER": "add-users"}[kind]
			for _, lat := range benchLatencies {
				b.Run(fmt.Sprintf("%s/%s/latency=%s", e.Name, name, lat), func(b *testing.B) {
					b.StopTimer()
					var sum struct {
						associates, registrations int
						assigned                  time.Duration
					}
					for range b.N {
						r := benchAddToGroup(b, e, kind, add, lat)
						sum.associates += r.associates
						sum.registrations += r.registrations
						sum.assigned += r.assigned
					}
					n := float64(b.N)
					b.ReportMetric(0, "ns/op")
					b.ReportMetric(float64(sum.associates)/n, "associates")
					if kind == "USER" {
						b.ReportMetric(float64(sum.registrations)/n, "user-creates")
					}
					b.ReportMetric(sum.assigned.Seconds()/n, "assigned-s")
				})
			}
		}
	}
}

// benchHeldBy counts the licenses of the holder whose assignment column col is value that are
// not on their way back.
func benchHeldBy(b *testing.B, d *db.DB, col, value string) int64 {
	return benchCount(b, d, "SELECT COUNT(*) FROM license_assignments WHERE "+col+" = '"+value+"' AND status IN ('PENDING', 'ASSIGNED')")
}

// benchHeld counts the licenses a user holds that are not on their way back.
func benchHeld(b *testing.B, d *db.DB, externalID string) int64 {
	return benchCount(b, d, "SELECT COUNT(*) FROM license_assignments a JOIN users u ON u.id = a.user_id WHERE u.external_id = '"+externalID+"' AND a.status IN ('PENDING', 'ASSIGNED')")
}

func dedupeInts(xs ...int) []int {
	var out []int
	for _, x := range xs {
		if len(out) == 0 || out[len(out)-1] != x {
			out = append(out, x)
		}
	}
	return out
}

func benchEnvInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

// benchMembership adds (or removes) one member of a group (user group 250 is under a USER
// label, device group 0 under a DEVICE label) and
// runs the evaluation it queued, if any, counting the statements of both. A change of one
// member is evaluated in the mutation's own transaction: nothing is queued, and eval (the
// statements after the mutation) is 0.
func benchMembership(b *testing.B, svc *license.Service, d *db.DB, group string, op license.MembersOp, ref license.MemberRef) (all, eval int64) {
	var c db.StatementCounter
	ctx := db.WithStatementCounter(context.Background(), &c)
	res, err := svc.ChangeGroupMembers(ctx, license.RuleActor("bench"), 0, group, op, []license.MemberRef{ref})
	if err != nil || len(res.Errors) > 0 || res.Added+res.Removed != 1 {
		b.Fatalf("membership change: %+v, %v", res, err)
	}
	mutation := c.Count()
	queued, err := d.CountPolicyQueue(context.Background(), db.Now())
	if err != nil {
		b.Fatal(err)
	}
	if queued > 0 {
		if n, err := svc.EvaluatePolicyQueue(ctx); err != nil || n != 1 {
			b.Fatalf("evaluation: %d evaluations, %v", n, err)
		}
	}
	return c.Count(), c.Count() - mutation
}

// policyChanges counts what an evaluation may write: audit events of evaluations, waiting
// holders, outbox rows.
func policyChanges(b *testing.B, d *db.DB) int64 {
	return benchCount(b, d, "SELECT COUNT(*) FROM audit_events WHERE action = 'policy.evaluate'") +
		benchCount(b, d, "SELECT COUNT(*) FROM policy_waiting") + benchCount(b, d, "SELECT COUNT(*) FROM apple_outbox")
}

const (
	policyApps       = 50
	policyGroups     = 500
	policySpareUsers = 100
)

// seedPolicyFleet writes the benchmark's fleet with multi-row inserts: an account, 50 apps with
// a pool each, devices devices and devices/2 users (plus spare users and devices in no group), 500 groups,
// 50 labels and, for every covered holder, its label's ASSIGNED license.
func seedPolicyFleet(b *testing.B, d *db.DB, devices int) {
	b.Helper()
	users := devices / 2
	ts := "'2024-01-01 00:00:00'"
	ins := newBulkInserter(b, d)
	ins.row("INSERT INTO accounts (id, name, token_ciphertext, token_expires_at, health, health_changed_at, created_at, updated_at) VALUES",
		fmt.Sprintf("(1, 'Bench', 'x', '2099-01-01 00:00:00', '%s', %s, %s, %s)", model.TokenHealthActive, ts, ts, ts))
	ins.flush()
	held := make([]int, policyApps)
	for i := range devices {
		held[(i%250)/10*2]++
	}
	for j := range users {
		held[((j%250)/10)*2+1]++
	}
	for a := range policyApps {
		ins.row("INSERT INTO apps (id, adam_id, kind, name, platforms, created_at, updated_at) VALUES",
			fmt.Sprintf("(%d, '%d', 'APP', 'Bench app %d', 'IOS', %s, %s)", a+1, 990000+a, a, ts, ts))
	}
	ins.flush()
	for a := range policyApps {
		ins.row("INSERT INTO license_pools (id, account_id, app_id, adam_id, pricing_param, total_count, apple_assigned_count, assigned_count, device_assignable, revocable, created_at, updated_at) VALUES",
			fmt.Sprintf("(%d, 1, %d, '%d', 'STDQ', %d, %d, %d, 1, 1, %s, %s)", a+1, a+1, 990000+a, devices+policySpareUsers+1000, held[a], held[a], ts, ts))
	}
	ins.flush()
	for j := range users + policySpareUsers {
		ext, cu := fmt.Sprintf("BU%07d", j), fmt.Sprintf("BC%07d", j)
		if j >= users {
			ext, cu = fmt.Sprintf("SPARE%03d", j-users), fmt.Sprintf("SPAREC%03d", j-users)
		}
		ins.row("INSERT INTO users (id, external_id, client_user_id, status, created_at, updated_at) VALUES",
			fmt.Sprintf("(%d, '%s', '%s', 'ACTIVE', %s, %s)", j+1, ext, cu, ts, ts))
	}
	ins.flush()
	for i := range devices + policySpareUsers {
		serial := fmt.Sprintf("BD%07d", i)
		if i >= devices {
			serial = fmt.Sprintf("SPARED%03d", i-devices)
		}
		ins.row("INSERT INTO devices (id, serial_number, platform, os_version, country_code, status, created_at, updated_at) VALUES",
			fmt.Sprintf("(%d, '%s', 'IOS', '17.5', 'US', 'ACTIVE', %s, %s)", i+1, serial, ts, ts))
	}
	ins.flush()
	for g := range policyGroups {
		ins.row("INSERT INTO `groups` (id, external_id, name, created_at, updated_at) VALUES", fmt.Sprintf("(%d, 'BG%03d', 'Group %d', %s, %s)", g+1, g, g, ts, ts))
	}
	ins.flush()
	// Devices in groups 0-249, users in groups 250-499 (ids are one more).
	for i := range devices {
		ins.row("INSERT INTO group_devices (group_id, device_id, created_at) VALUES", fmt.Sprintf("(%d, %d, %s)", i%250+1, i+1, ts))
	}
	ins.flush()
	for j := range users {
		ins.row("INSERT INTO group_members (group_id, user_id, created_at) VALUES", fmt.Sprintf("(%d, %d, %s)", 250+j%250+1, j+1, ts))
	}
	ins.flush()
	// Label l (app l): even, DEVICE over device groups 10·(l/2)…; odd, USER over user groups.
	for l := range policyApps {
		kind := model.LicenseKindDevice
		if l%2 == 1 {
			kind = model.LicenseKindUser
		}
		ins.row("INSERT INTO labels (id, kind, name, app_id, license_kind, created_at, updated_at) VALUES",
			fmt.Sprintf("(%d, 'LICENSE', 'Bench label %d', %d, '%s', %s, %s)", l+1, l, l+1, kind, ts, ts))
	}
	ins.flush()
	for l := range policyApps {
		base := (l / 2) * 10
		if l%2 == 1 {
			base += 250
		}
		for g := base; g < base+10; g++ {
			ins.row("INSERT INTO label_groups (label_id, group_id) VALUES", fmt.Sprintf("(%d, %d)", l+1, g+1))
		}
	}
	ins.flush()
	cols := "INSERT INTO license_assignments (pool_id, account_id, app_id, kind, serial_number, client_user_id, device_id, user_id, holder_key, status, origin, reason, caused_by, assigned_at, label_id, created_at, updated_at) VALUES"
	for i := range devices {
		l := (i % 250) / 10 * 2
		ins.row(cols, fmt.Sprintf("(%d, 1, %d, 'DEVICE', 'BD%07d', NULL, %d, NULL, 'D:BD%07d', 'ASSIGNED', 'LABEL', 'bench', 'label:%d', %s, %d, %s, %s)",
			l+1, l+1, i, i+1, i, l+1, ts, l+1, ts, ts))
	}
	for j := range users {
		l := ((j%250)/10)*2 + 1
		ins.row(cols, fmt.Sprintf("(%d, 1, %d, 'USER', NULL, 'BC%07d', NULL, %d, 'U:BC%07d', 'ASSIGNED', 'LABEL', 'bench', 'label:%d', %s, %d, %s, %s)",
			l+1, l+1, j, j+1, j, l+1, ts, l+1, ts, ts))
	}
	ins.flush()
}

// bulkInserter batches rows of one INSERT into statements of 500 rows.
type bulkInserter struct {
	b    testing.TB
	d    *db.DB
	head string
	rows []string
}

func newBulkInserter(b testing.TB, d *db.DB) *bulkInserter { return &bulkInserter{b: b, d: d} }

func (w *bulkInserter) row(head, values string) {
	if head != w.head {
		w.flush()
		w.head = head
	}
	w.rows = append(w.rows, values)
	if len(w.rows) == 500 {
		w.flush()
	}
}

func (w *bulkInserter) flush() {
	if len(w.rows) == 0 {
		return
	}
	q := w.head + " " + strings.Join(w.rows, ", ")
	if _, err := w.d.SQL().Exec(q); err != nil {
		w.b.Fatalf("seed: %v\n%.300s", err, q)
	}
	w.rows = w.rows[:0]
}

// addFigures is what adding holders to a labelled group cost: the associate requests and the
// user registrations (users/create) Apple saw, and the time until the last was ASSIGNED.
type addFigures struct {
	associates, registrations int
	assigned                  time.Duration
}

// benchAddToGroup adds n holders — devices under a DEVICE label, or users under a USER label —
// to a group with one addGroupMembers call over GraphQL and waits until all are ASSIGNED at the
// simulator.
func benchAddToGroup(b *testing.B, e dbtest.Engine, kind string, n int, lat time.Duration) addFigures {
	d := e.Open(b)
	st := gqltest.NewStack(b, d, gqltest.StackOptions{})
	tok := st.Sim.AddToken(applesim.TokenSpec{OrgName: "Bench", LocationName: "Main", Country: "US", ExpiresAt: time.Now().Add(365 * 24 * time.Hour)})
	st.Sim.AddAsset(tok, applesim.Asset{AdamID: "995001", PricingParam: "STDQ", ProductType: "App", Total: n, DeviceAssignable: true, Revocable: true, Name: "Policy bench"})
	benchAccount(b, st, tok)
	var members []map[string]any
	if kind == "USER" {
		for _, id := range benchUsers(b, st, "PADDU", n) {
			members = append(members, map[string]any{"externalId": id})
		}
	} else {
		for _, sn := range benchDevices(b, st, "PADD", 0, n) {
			members = append(members, map[string]any{"serialNumber": sn})
		}
	}
	op := st.Keys[model.RoleOperator]
	var g struct {
		UpsertGroup struct{ Group struct{ ID string } }
	}
	st.Do(b, op, `mutation { upsertGroup(input: {externalId: "bench-add", name: "bench-add"}) { group { id } } }`, nil).MustData(b, &g)
	var l struct {
		CreateLicenseLabel struct {
			Label      *struct{ ID string }
			UserErrors []struct{ Code, Message string }
		}
	}
	st.Do(b, op, `mutation($g: ID!, $k: LicenseKind!) { createLicenseLabel(input: {name: "bench", adamId: "995001", kind: $k, groupIds: [$g]}) { label { id } userErrors { code message } } }`,
		map[string]any{"g": g.UpsertGroup.Group.ID, "k": kind}).MustData(b, &l)
	if l.CreateLicenseLabel.Label == nil {
		b.Fatalf("createLicenseLabel: %+v", l.CreateLicenseLabel.UserErrors)
	}
	gqltest.WaitFor(b, "policy to be idle", time.Minute, func() bool {
		n, err := d.CountPolicyQueue(context.Background(), db.Now())
		return err == nil && n == 0
	})
	if lat > 0 {
		st.Sim.SetFault(tok, applesim.Fault{Kind: applesim.FaultSlow, Delay: lat})
	}
	st.Sim.ResetRequests()
	b.StartTimer()
	start := time.Now()
	var out struct {
		AddGroupMembers struct {
			Added      int
			UserErrors []struct{ Code, Message string }
		}
	}
	st.Do(b, op, `mutation($m: [GroupMemberInput!]!) { addGroupMembers(input: {groupExternalId: "bench-add", members: $m}) { added userErrors { code message } } }`,
		map[string]any{"m": members}).MustData(b, &out)
	if out.AddGroupMembers.Added != n {
		b.Fatalf("addGroupMembers: %+v", out.AddGroupMembers)
	}
	q := "SELECT COUNT(*) FROM license_assignments a JOIN license_pools p ON p.id = a.pool_id WHERE p.adam_id = '995001' AND a.status = 'ASSIGNED'"
	gqltest.WaitFor(b, "all ASSIGNED", 10*time.Minute, func() bool { return benchCount(b, d, q) == int64(n) })
	took := time.Since(start)
	b.StopTimer()
	reqs := st.Sim.Requests()
	associates, _, _ := benchRequests(reqs)
	registrations := 0
	for _, r := range reqs {
		if r.Method == "POST" && r.Path == "/mdm/v2/users/create" {
			registrations++
		}
	}
	return addFigures{associates: associates, registrations: registrations, assigned: took}
}

// benchUsers creates n users (external ids prefix0000000…) through upsertUsers, 1,000 a call.
func benchUsers(b *testing.B, st *gqltest.Stack, prefix string, n int) []string {
	ids := make([]string, 0, n)
	for start := 0; start < n; start += 1000 {
		var us []map[string]any
		for i := start; i < min(start+1000, n); i++ {
			id := fmt.Sprintf("%s%07d", prefix, i)
			ids = append(ids, id)
			us = append(us, map[string]any{"externalId": id, "email": strings.ToLower(id) + "@example.com"})
		}
		var out struct {
			UpsertUsers struct {
				UserErrors []struct{ Code, Message string }
			}
		}
		st.Do(b, st.Keys[model.RoleOperator], `mutation($u: [UserInput!]!) { upsertUsers(input: {users: $u}) { userErrors { code message } } }`,
			map[string]any{"u": us}).MustData(b, &out)
		if len(out.UpsertUsers.UserErrors) > 0 {
			b.Fatal(out.UpsertUsers.UserErrors)
		}
	}
	return ids
}

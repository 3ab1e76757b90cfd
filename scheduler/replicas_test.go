package scheduler_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"orchard/apple/applesim"
	"orchard/db"
	"orchard/db/dbtest"
	"orchard/resolvers/gqltest"
)

// Done means 5: three schedulers (replicas) over one database share the accounts through
// lease rows. Every due account is reconciled exactly once per due time — its passes never
// overlap, and no pass starts before the due time the previous one set — and the accounts of a
// replica that stops are picked up by the others: at once when it stops cleanly (it gives its
// leases back), after its lease runs out when it dies.
func TestReplicasShareAccounts(t *testing.T) {
	t.Parallel()
	const (
		incremental = 300 * time.Millisecond
		full        = time.Second
		jitter      = 0.01
		accounts    = 4
	)
	// Replicas share a MySQL database; SQLite serves a single process (README, db/leases.go).
	// The test runs on MySQL when ORCHARD_TEST_MYSQL_DSN is set, else on SQLite, where leases
	// work the same within one process.
	engines := dbtest.Engines()
	e := engines[len(engines)-1]
	t.Run(e.Name, func(t *testing.T) {
		d := e.Open(t)
		// A short lease: 1s on MySQL. SQLite under the race detector can keep a renewal
		// waiting for its write lock for most of a second; it gets 3s.
		leaseTTL := time.Second
		if d.Dialect() == db.SQLite {
			leaseTTL = 3 * time.Second
		}
		st := newStack(t, d, gqltest.StackOptions{
			Replicas: 3, SeparateDBs: true, NoNotifications: true,
			Scheduler: schedulerConfig{IncrementalInterval: incremental, SyncInterval: full, Jitter: jitter, LeaseTTL: leaseTTL},
		})
		g := st.Sim.Generate(applesim.GenSpec{Tokens: accounts, AppsPerToken: 6, AssignmentsPerToken: 60, Seed: 51, Countries: []string{"US"}})
		ids := make([]string, accounts)
		names := make([]string, accounts)
		for i := range names {
			names[i] = fmt.Sprintf("add %d", i)
		}
		concurrently(t, names, func(t *testing.T, i int) {
			ids[i] = addSynced(t, st, fmt.Sprintf("replicated %d", i), g.TokenFiles[i])
		})
		if t.Failed() {
			t.FailNow()
		}
		ctx := context.Background()

		// Who works on what: sample the lease rows while the replicas run.
		holders := map[string]bool{}
		sample := func(until time.Time) {
			for time.Now().Before(until) {
				ls, err := d.Leases(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, l := range ls {
					holders[l.Holder] = true
				}
				time.Sleep(10 * time.Millisecond)
			}
		}

		// Phase 1: three replicas, until every account has had a few passes (a pass is due
		// every 300ms after the last one ended).
		start := time.Now()
		for {
			sample(time.Now().Add(500 * time.Millisecond))
			done := true
			for _, id := range ids {
				n := 0
				for _, r := range runs(t, st, id) {
					if r.StartedAt.After(start) && r.Status == "SUCCEEDED" {
						n++
					}
				}
				done = done && n >= 3
			}
			if done {
				break
			}
			if time.Since(start) > waitLong {
				t.Fatalf("accounts not synced every %s by three replicas", incremental)
			}
		}
		t.Logf("phase 1 done after %s; lease holders seen: %v", time.Since(start), keys(holders))

		// Phase 2: a replica dies in the middle of a pass. Passes are made slow (Apple takes
		// slowDelay to answer each request) so that one is caught under way.
		slowed := slow(st.Sim, g.TokenFiles)
		victim, held, running := leaseHolder(t, st, d, ids, nil, slowed)
		victim.Crash(t)
		crashed := time.Now()
		fast(st.Sim, g.TokenFiles)
		// Its leases stay until they run out (nobody gives them back).
		var expiry []db.Lease
		ls, err := d.Leases(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range ls {
			if l.Holder == victim.Holder && slices.Contains(held, l.Name) {
				expiry = append(expiry, l)
			}
		}
		if len(expiry) == 0 {
			t.Fatalf("the dead replica's leases %v vanished: it gave them back before it died (its lease renewals were late?)", held)
		}
		for _, l := range expiry {
			acc := accountOfLease(t, ids, l.Name)
			tok := g.TokenFiles[acc]
			var taken runView
			waitFor(t, "another replica to sync account "+l.Name, waitLong, func() bool {
				for _, r := range runs(t, st, ids[acc]) {
					if r.Status == "SUCCEEDED" && r.StartedAt.After(crashed) {
						taken = r
						return true
					}
				}
				return false
			})
			// Not before the lease ran out: no request for the account in between (the
			// dead replica's own request was logged when it arrived, before the crash).
			for _, r := range requestsSince(st.Sim, tok, crashed) {
				if r.Time.Before(l.ExpiresAt) {
					t.Errorf("%s: request at %s, before the dead replica's lease ran out at %s", l.Name, r.Time.Format(time.RFC3339Nano), l.ExpiresAt.Format(time.RFC3339Nano))
				}
			}
			if taken.StartedAt.Before(l.ExpiresAt.Add(-5 * time.Millisecond)) {
				t.Errorf("%s: taken over at %v, before the lease ran out at %v", l.Name, taken.StartedAt, l.ExpiresAt)
			}
			// The pass the dead replica was running is recorded as failed, not left RUNNING.
			if id, ok := running[l.Name]; ok {
				r := run(t, st, id)
				if r.Status != "FAILED" || !strings.Contains(deref(r.Error), "stopped") {
					t.Errorf("%s: the pass the dead replica left is %s (%v), want FAILED", l.Name, r.Status, deref(r.Error))
				}
			}
			for _, r := range runs(t, st, ids[acc]) {
				if r.Status == "RUNNING" && r.StartedAt.Before(crashed) {
					t.Errorf("%s: pass %s of the dead replica is still RUNNING", l.Name, r.ID)
				}
			}
		}
		if len(running) == 0 {
			t.Error("the dead replica was running no pass")
		}

		t.Logf("phase 2 done after %s", time.Since(start))
		// Phase 3: another replica stops cleanly in the middle of a pass: it gives its leases
		// back, and the last replica takes its accounts.
		slowed = slow(st.Sim, g.TokenFiles)
		stopping, held, running := leaseHolder(t, st, d, ids, victim, slowed)
		stopping.Stop()
		stopped := time.Now()
		fast(st.Sim, g.TokenFiles)
		for name, id := range running {
			// The pass it was running is recorded as stopped; the account is not to blame.
			r := run(t, st, id)
			if r.Status != "FAILED" || !strings.Contains(deref(r.Error), "stopped") {
				t.Errorf("%s: the pass of the stopped replica is %s (%v), want FAILED", name, r.Status, deref(r.Error))
			}
			if acc := account(t, st, ids[accountOfLease(t, ids, name)]); acc.LastError != nil {
				t.Errorf("%s: a replica's stop left the account's lastError %q", name, *acc.LastError)
			}
		}
		ls, err = d.Leases(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range ls {
			if l.Holder == stopping.Holder {
				t.Errorf("a replica that stopped cleanly kept its lease %s", l.Name)
			}
		}
		for _, name := range held {
			acc := accountOfLease(t, ids, name)
			waitFor(t, "the last replica to sync "+name, waitLong, func() bool {
				for _, r := range runs(t, st, ids[acc]) {
					if r.Status == "SUCCEEDED" && r.StartedAt.After(stopped) {
						return true
					}
				}
				return false
			})
		}
		// The last replica carries on with every account.
		t.Logf("phase 3 done after %s", time.Since(start))
		last := time.Now()
		waitFor(t, "every account synced by the last replica", waitLong, func() bool {
			for _, id := range ids {
				ok := false
				for _, r := range runs(t, st, id) {
					ok = ok || (r.Status == "SUCCEEDED" && r.StartedAt.After(last))
				}
				if !ok {
					return false
				}
			}
			return true
		})

		t.Logf("last replica done after %s", time.Since(start))
		// Over the whole test: exactly once per due time.
		for i, id := range ids {
			checkOncePerDueTime(t, fmt.Sprintf("account %d", i), runs(t, st, id), incremental, full, jitter)
		}
	})
}

// checkOncePerDueTime checks an account's passes: none overlaps another, and none started
// before the due time the previous successful pass set — the earlier of "incremental interval
// after it ended" and "full interval after the last full pass ended" (less the jitter). A
// second replica running the same due pass would start right after the first one ended.
func checkOncePerDueTime(t *testing.T, what string, rs []runView, incremental, full time.Duration, jitter float64) {
	t.Helper()
	for _, v := range dueViolations(what, rs, incremental, full, jitter) {
		t.Error(v)
	}
}

// dueViolations lists what checkOncePerDueTime reports: each pass that overlapped another or
// started before it was due (a second pass for the same due time).
func dueViolations(what string, rs []runView, incremental, full time.Duration, jitter float64) []string {
	var out []string
	const eps = 5 * time.Millisecond // the database's clock against the process's
	slices.SortFunc(rs, func(a, b runView) int { return a.StartedAt.Compare(b.StartedAt) })
	var lastFull time.Time
	for i, r := range rs {
		if i > 0 {
			prev := rs[i-1]
			if prev.FinishedAt == nil {
				out = append(out, fmt.Sprintf("%s: pass %s (%s) started at %v while pass %s (started %v) had not finished", what, r.ID, r.Kind, r.StartedAt, prev.ID, prev.StartedAt))
				continue
			}
			if r.StartedAt.Before(*prev.FinishedAt) {
				out = append(out, fmt.Sprintf("%s: passes overlap: %s %v–%v and %s from %v", what, prev.ID, prev.StartedAt, *prev.FinishedAt, r.ID, r.StartedAt))
			}
			if prev.Status == "SUCCEEDED" && r.Trigger == "SCHEDULE" {
				due := prev.FinishedAt.Add(time.Duration(float64(incremental) * (1 - jitter)))
				if !lastFull.IsZero() {
					if f := lastFull.Add(time.Duration(float64(full) * (1 - jitter))); f.Before(due) {
						due = f
					}
				}
				if r.StartedAt.Before(due.Add(-eps)) {
					out = append(out, fmt.Sprintf("%s: %s pass %s started at %v, %s after the previous pass ended; it was not due before %v",
						what, r.Kind, r.ID, r.StartedAt.Format(time.RFC3339Nano), r.StartedAt.Sub(*prev.FinishedAt), due.Format(time.RFC3339Nano)))
				}
			}
		}
		if r.Kind == "FULL" && r.Status == "SUCCEEDED" && r.FinishedAt != nil {
			lastFull = *r.FinishedAt
		}
	}
	return out
}

// leaseHolder waits until a running replica other than skip holds the sync lease of an
// account with a pass under way, and returns it with the names of its sync leases and, by
// lease, the pass it was running.
func leaseHolder(t *testing.T, st *gqltest.Stack, d *db.DB, ids []string, skip *gqltest.Replica, slowed time.Time) (*gqltest.Replica, []string, map[string]string) {
	t.Helper()
	var found *gqltest.Replica
	var names []string
	running := map[string]string{}
	waitFor(t, "a replica running a pass", waitLong, func() bool {
		ls, err := d.Leases(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range ls {
			if !strings.HasPrefix(l.Name, "sync:") || !l.ExpiresAt.After(time.Now()) {
				continue
			}
			var r *gqltest.Replica
			for _, x := range st.Replicas {
				if x != skip && x.Holder == l.Holder && (found == nil || x == found) {
					r = x
				}
			}
			if r == nil {
				continue
			}
			// A pass that started after Apple was made slow, less than slowDelay−1s ago, is
			// still in its first request: it cannot end before the replica is stopped.
			rs := runs(t, st, ids[accountOfLease(t, ids, l.Name)])
			if n := len(rs); n > 0 && rs[n-1].Status == "RUNNING" && rs[n-1].StartedAt.After(slowed) && time.Since(rs[n-1].StartedAt) < slowDelay-time.Second {
				found = r
				running[l.Name] = rs[len(rs)-1].ID
			}
		}
		if found == nil {
			return false
		}
		for _, l := range ls {
			if l.Holder == found.Holder && strings.HasPrefix(l.Name, "sync:") {
				names = append(names, l.Name)
			}
		}
		return true
	})
	return found, names, running
}

// slowDelay is how long Apple takes to answer while passes are made slow.
const slowDelay = 2 * time.Second

// slow makes Apple answer every request of the tokens after slowDelay; fast undoes it
// (requests already waiting still wait).
func slow(sim *applesim.Sim, toks []string) time.Time {
	for _, tok := range toks {
		sim.SetFault(tok, applesim.Fault{Kind: applesim.FaultSlow, Delay: slowDelay})
	}
	return db.Now()
}

func fast(sim *applesim.Sim, toks []string) {
	for _, tok := range toks {
		sim.ClearFaults(tok)
	}
}

// accountOfLease maps a lease name ("sync:<database id>") to the index of the account.
func accountOfLease(t *testing.T, gids []string, name string) int {
	t.Helper()
	var n int64
	if _, err := fmt.Sscanf(name, "sync:%d", &n); err != nil {
		t.Fatalf("lease %q: %v", name, err)
	}
	for i, gid := range gids {
		if dbID(t, gid) == n {
			return i
		}
	}
	t.Fatalf("lease %q names no account of the test", name)
	return -1
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

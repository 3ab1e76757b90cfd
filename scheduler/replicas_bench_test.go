package scheduler_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"orchard/apple/applesim"
	"orchard/db"
	"orchard/db/dbtest"
	"orchard/license"
	"orchard/resolvers/gqltest"
)

// BenchmarkReplicas is issue 13's "replicas": three schedulers (replicas, each with a database
// handle and an Apple client of its own) over one MySQL database share N accounts of the
// in-process simulator, Apple answering ORCHARD_BENCH_REPLICA_LATENCY (100ms) late. After every
// account's first pass they run for ORCHARD_BENCH_REPLICA_STEADY (2m) at an incremental interval
// of ORCHARD_BENCH_REPLICA_INTERVAL (60s; full passes every 10 intervals); halfway, one
// replica dies (its database handle closed, then its context cancelled: it gives no lease back,
// as gqltest.Replica.Crash models a process's death).
//
//	dup-passes     passes that overlapped another of the same account or started before their
//	               due time (a second pass for one due time), over the whole run (goal 0)
//	spread-max/min the largest replica's share of the successful passes ÷ the smallest's, while
//	               all three ran (goal ≤ 1.2); spread-after the same for the two left
//	handover-s     the longest time from the death to another replica's first pass of an
//	               account whose lease the dead replica held; handover/lease that ÷ the lease
//	               TTL (ORCHARD_BENCH_LEASE, 5s; goal ≤ 1, plus a tick)
//	dead-leases    the sync leases the dead replica held when it died
//	dead-not-due   those of them whose pass the dead replica had recorded before it died (the
//	               lease not yet given back): not due again within the window, so not handed
//	               over in it, and left out of handover-s
//
// SQLite serves a single process: the benchmark is skipped there.
//
//	ORCHARD_TEST_MYSQL_DSN=mysql://root@127.0.0.1:3306/orchard_test \
//	  go test ./scheduler/ -run '^$' -bench Replicas -benchtime 1x -timeout 60m
func BenchmarkReplicas(b *testing.B) {
	engines := dbtest.Engines()
	e := engines[len(engines)-1]
	if e.Name != "mysql" {
		b.Skip("replicas share a MySQL database (SQLite serves one process): set ORCHARD_TEST_MYSQL_DSN to run this benchmark")
	}
	n := envInt(b, "ORCHARD_BENCH_ACCOUNTS", 3000)
	b.Run(fmt.Sprintf("%s/accounts=%d", e.Name, n), func(b *testing.B) {
		for range b.N {
			replicasOnce(b, e, n)
		}
	})
}

func replicasOnce(b *testing.B, e dbtest.Engine, n int) {
	b.StopTimer()
	defer b.StartTimer()
	incr := envDuration(b, "ORCHARD_BENCH_REPLICA_INTERVAL", time.Minute)
	full := 10 * incr
	steady := envDuration(b, "ORCHARD_BENCH_REPLICA_STEADY", 2*time.Minute)
	ttl := envDuration(b, "ORCHARD_BENCH_LEASE", 5*time.Second)
	latency := envDuration(b, "ORCHARD_BENCH_REPLICA_LATENCY", 100*time.Millisecond)
	const jitter, tick = 0.1, time.Second
	d := e.Open(b)
	passes := &passCounter{}
	st := gqltest.NewStack(b, d, gqltest.StackOptions{
		Replicas: 3, SeparateDBs: true, NoNotifications: true,
		Scheduler: schedulerConfig{IncrementalInterval: incr, SyncInterval: full, Jitter: jitter, LeaseTTL: ttl, Tick: tick,
			Concurrency: envInt(b, "ORCHARD_BENCH_CONCURRENCY", 16), Log: slog.New(passes)},
	})
	g := st.Sim.Generate(applesim.GenSpec{Tokens: n, AppsPerToken: 10, AssignmentsPerToken: envInt(b, "ORCHARD_BENCH_ASSIGNMENTS", 300),
		Seed: 17, Countries: []string{"US"}})
	if latency > 0 {
		for _, tok := range g.TokenFiles {
			st.Sim.SetFault(tok, applesim.Fault{Kind: applesim.FaultSlow, Delay: latency})
		}
	}
	addAll(b, st.License, g.TokenFiles)
	waitAllSynced(b, d, n, 60*time.Minute)

	// All three, for half the time.
	before := passes.snapshot()
	time.Sleep(steady / 2)
	three := passes.snapshot().minus(before)

	// A replica dies while it holds sync leases.
	victim := st.Replicas[1]
	var dead []db.Lease
	for deadline := time.Now().Add(time.Minute); len(dead) == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("the replica to kill held no sync lease for a minute: too few accounts, or Apple too fast, to catch it at work")
		}
		ls, err := d.Leases(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		for _, l := range ls {
			if l.Holder == victim.Holder && strings.HasPrefix(l.Name, "sync:") {
				dead = append(dead, l)
			}
		}
	}
	victim.Crash(b)
	died := time.Now()
	// The leases it still held: the ones it had no time to give back.
	ls, err := d.Leases(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	dead = dead[:0]
	for _, l := range ls {
		if l.Holder == victim.Holder && strings.HasPrefix(l.Name, "sync:") {
			dead = append(dead, l)
		}
	}
	after0 := passes.snapshot()
	time.Sleep(steady / 2)
	two := passes.snapshot().minus(after0)

	// Handover: each dead lease's account is taken by another replica. A lease can outlive
	// its pass by a moment (the outcome recorded, the lease not yet given back): such an
	// account is not due again until its next due time, which may fall after the window; it
	// counts as not due (dead-not-due), not as a handover, when its next due time says so.
	var worst time.Duration
	end := time.Now()
	notDue := 0
	for _, l := range dead {
		id, err := strconv.ParseInt(strings.TrimPrefix(l.Name, "sync:"), 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		var started sql.NullTime
		if err := d.SQL().QueryRow("SELECT MIN(started_at) FROM sync_runs WHERE account_id = ? AND started_at > ?", id, died.UTC()).Scan(&started); err != nil {
			b.Fatal(err)
		}
		if !started.Valid {
			var next sql.NullTime
			if err := d.SQL().QueryRow("SELECT next_sync_at FROM accounts WHERE id = ?", id).Scan(&next); err != nil {
				b.Fatal(err)
			}
			if next.Valid && next.Time.After(end.Add(-ttl)) {
				notDue++
				continue
			}
			b.Fatalf("account %d, whose lease the dead replica held, was not synced again (next due %v, the window ended %v)", id, next.Time, end.UTC())
		}
		worst = max(worst, started.Time.Sub(died))
	}

	// Exactly once per due time, over the whole run.
	dups := 0
	for id, rs := range allRuns(b, d) {
		dups += len(dueViolations(fmt.Sprintf("account %d", id), rs, incr, full, jitter))
	}

	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(n), "accounts")
	b.Logf("successful passes by replica: %v with all three, %v after %s died", three, two, victim.Holder)
	b.ReportMetric(float64(dups), "dup-passes")
	b.ReportMetric(three.spread(st, nil), "spread-max/min")
	b.ReportMetric(two.spread(st, victim), "spread-after")
	b.ReportMetric(float64(three.total()), "passes-3")
	b.ReportMetric(float64(two.total()), "passes-2")
	b.ReportMetric(worst.Seconds(), "handover-s")
	b.ReportMetric(worst.Seconds()/ttl.Seconds(), "handover/lease")
	b.ReportMetric(float64(notDue), "dead-not-due")
	b.ReportMetric(float64(len(dead)), "dead-leases")
}

// addAll adds every token as an account, a few at a time.
func addAll(tb testing.TB, svc *license.Service, toks []string) {
	tb.Helper()
	var wg sync.WaitGroup
	var next atomic.Int64
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < len(toks); i = int(next.Add(1)) - 1 {
				if _, _, err := svc.AddAccount(context.Background(), license.SystemActor,
					license.AddAccountInput{Name: fmt.Sprintf("Replicated %05d", i), Token: toks[i]}); err != nil {
					errs <- fmt.Errorf("add account %d: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
}

// allRuns reads every pass, by account.
func allRuns(tb testing.TB, d *db.DB) map[int64][]runView {
	tb.Helper()
	rows, err := d.SQL().Query("SELECT id, account_id, kind, `trigger`, status, started_at, finished_at FROM sync_runs")
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	out := map[int64][]runView{}
	for rows.Next() {
		var id, acc int64
		var r runView
		var fin *time.Time
		if err := rows.Scan(&id, &acc, &r.Kind, &r.Trigger, &r.Status, &r.StartedAt, &fin); err != nil {
			tb.Fatal(err)
		}
		r.ID = strconv.FormatInt(id, 10)
		r.StartedAt = r.StartedAt.UTC()
		if fin != nil {
			f := fin.UTC()
			r.FinishedAt = &f
		}
		out[acc] = append(out[acc], r)
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// passCounter is a log handler counting the successful passes of each replica (the "sync
// pass" line names it).
type passCounter struct {
	mu sync.Mutex
	n  map[string]int
}

type passCounts map[string]int

func (p *passCounter) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }
func (p *passCounter) WithAttrs([]slog.Attr) slog.Handler           { return p }
func (p *passCounter) WithGroup(string) slog.Handler                { return p }

func (p *passCounter) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "sync pass" {
		return nil
	}
	var replica, outcome string
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "replica":
			replica = a.Value.String()
		case "outcome":
			outcome = a.Value.String()
		}
		return true
	})
	if outcome == "SUCCEEDED" {
		p.mu.Lock()
		if p.n == nil {
			p.n = map[string]int{}
		}
		p.n[replica]++
		p.mu.Unlock()
	}
	return nil
}

func (p *passCounter) snapshot() passCounts {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := passCounts{}
	for k, v := range p.n {
		out[k] = v
	}
	return out
}

func (c passCounts) minus(o passCounts) passCounts {
	out := passCounts{}
	for k, v := range c {
		out[k] = v - o[k]
	}
	return out
}

func (c passCounts) total() int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

// spread is the largest replica's passes ÷ the smallest's, over the replicas other than skip
// (a replica with none makes it infinite).
func (c passCounts) spread(st *gqltest.Stack, skip *gqltest.Replica) float64 {
	lo, hi := -1, 0
	for _, r := range st.Replicas {
		if r == skip {
			continue
		}
		v := c[r.Holder]
		hi = max(hi, v)
		if lo < 0 || v < lo {
			lo = v
		}
	}
	if lo <= 0 {
		return float64(hi) * 1e9
	}
	return float64(hi) / float64(lo)
}

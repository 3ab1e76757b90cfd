package scheduler_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"orchard/apple"
	"orchard/db"
	"orchard/db/dbtest"
	"orchard/license"
	"orchard/scheduler"
)

// BenchmarkManyAccounts is issue 13's "many accounts": N accounts of 300 assignments each in the
// simulator (a process of its own, see scale_sim_test.go), a few assignments changing in ABM per
// interval, on each engine, with Apple answering at once and 100 ms late. Orchard here is the
// license service and one scheduler, in this process, over a real HTTP client.
//
// Phases, with their metrics:
//
//  1. First sync: the accounts are added (not measured), then the scheduler starts with the
//     default intervals and runs every account's first (full) pass.
//     first-s       wall time until every account has a successful pass
//     first-cpu-s   this process's CPU time meanwhile (Orchard; with SQLite, the database too)
//     first-sim-cpu-s  the simulator process's, for comparison
//  2. Idle: every account synced, nothing due (default intervals): what the scheduler costs
//     when there is nothing to do (its ticks, with N accounts to look at).
//     idle-cpu%/1k  CPU % of one core per 1,000 accounts
//  3. Steady state: intervals compressed by ORCHARD_BENCH_COMPRESS (30: full 30m → 60s,
//     incremental 5m → 10s; one simulated hour = 2 minutes), the accounts' due times spread
//     over one interval, for ORCHARD_BENCH_STEADY (2m).
//     cpu-s/simh    this process's CPU seconds per simulated hour
//     sim-cpu-s/simh, db-cpu-s/simh  the simulator's and (MySQL) the database server's
//     proj-cpu%/1k  CPU % of one core per 1,000 accounts at the real intervals: the steady
//     state's work per pass at its real rate (÷ the compression) plus the idle
//     cost, which does not compress (goal < 2)
//     passes/acct/int, sql/acct/int, apple/acct/int  passes, SQL statements and Apple requests
//     per account per incremental interval (statements of the scheduler's
//     context: lease releases, one per pass, are sent without it)
//     age-p50, age-p99, age-max  of each account's largest data age (time since its last
//     successful pass) over the measured window, ÷ the incremental interval;
//     late-accts: accounts whose data age went over the interval + 10% (goal 0)
//
// Sizes and settings (environment): ORCHARD_BENCH_ACCOUNTS (3000), ORCHARD_BENCH_ASSIGNMENTS
// (300), ORCHARD_BENCH_CHANGES (assignments changed per account per incremental interval, 2),
// ORCHARD_BENCH_COMPRESS (30), ORCHARD_BENCH_STEADY (2m), ORCHARD_BENCH_IDLE (10s),
// ORCHARD_BENCH_CONCURRENCY (the scheduler's accounts at once, 16), ORCHARD_BENCH_APPLE_CONCURRENCY
// (requests to Apple in flight, 16), ORCHARD_BENCH_LATENCIES (0,100ms).
//
//	go test ./scheduler/ -run '^$' -bench ManyAccounts -benchtime 1x -timeout 120m
func BenchmarkManyAccounts(b *testing.B) {
	cfg := manyConfigFromEnv(b)
	for _, e := range dbtest.Engines() {
		for _, lat := range cfg.latencies {
			b.Run(fmt.Sprintf("%s/accounts=%d/latency=%s", e.Name, cfg.accounts, lat), func(b *testing.B) {
				for range b.N {
					manyAccountsOnce(b, e, cfg, lat)
				}
			})
		}
	}
}

// manyConfig is the benchmark's settings.
type manyConfig struct {
	accounts, assignments   int
	changes, compress       float64
	steady, idle            time.Duration
	concurrency, appleLimit int
	latencies               []time.Duration
}

func manyConfigFromEnv(tb testing.TB) manyConfig {
	c := manyConfig{
		accounts: envInt(tb, "ORCHARD_BENCH_ACCOUNTS", 3000), assignments: envInt(tb, "ORCHARD_BENCH_ASSIGNMENTS", 300),
		changes: envFloat(tb, "ORCHARD_BENCH_CHANGES", 2), compress: envFloat(tb, "ORCHARD_BENCH_COMPRESS", 30),
		steady: envDuration(tb, "ORCHARD_BENCH_STEADY", 2*time.Minute), idle: envDuration(tb, "ORCHARD_BENCH_IDLE", 10*time.Second),
		concurrency: envInt(tb, "ORCHARD_BENCH_CONCURRENCY", 16), appleLimit: envInt(tb, "ORCHARD_BENCH_APPLE_CONCURRENCY", 16),
	}
	for _, s := range strings.Split(envString("ORCHARD_BENCH_LATENCIES", "0,100ms"), ",") {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			tb.Fatalf("ORCHARD_BENCH_LATENCIES: %v", err)
		}
		c.latencies = append(c.latencies, d)
	}
	return c
}

// Production's intervals, which the steady state compresses.
const (
	realFull        = 30 * time.Minute
	realIncremental = 5 * time.Minute
)

// orchard is the part of Orchard the scale benchmarks run: the license service and a
// scheduler over a database, talking to the simulator over HTTP.
type orchard struct {
	d       *db.DB
	svc     *license.Service
	api     *apple.Client
	appleN  atomic.Int64 // requests sent to Apple
	sql     db.StatementCounter
	stopRun func()
}

func newOrchard(tb testing.TB, d *db.DB, simURL string, appleLimit int) *orchard {
	tb.Helper()
	o := &orchard{d: d}
	mdmID, _, err := d.ClaimSetting(context.Background(), "mdm_id", "orchard-bench-instance")
	if err != nil {
		tb.Fatal(err)
	}
	o.api = apple.New(apple.Config{BaseURL: simURL + "/mdm/v2", LookupURL: simURL + "/lookup",
		MDM: apple.MDMInfo{ID: mdmID, Name: "Orchard", Metadata: "bench"}, MaxConcurrent: appleLimit,
		LookupRequestsPerSecond: 10000,
		Observe:                 func(string, int, int, time.Duration) { o.appleN.Add(1) }})
	sealer, err := license.NewSealer([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		tb.Fatal(err)
	}
	o.svc = license.New(d, license.Options{Logger: dbtest.Quiet(), Apple: o.api, Sealer: sealer})
	return o
}

// run starts a scheduler with cfg (its statements counted in o.sql) until stop.
func (o *orchard) run(cfg scheduler.Config) (stop func()) {
	cfg.DB, cfg.License, cfg.Apple, cfg.Log = o.d, o.svc, o.api, dbtest.Quiet()
	s := scheduler.New(cfg)
	o.svc.SetKick(s.Kick)
	ctx, cancel := context.WithCancel(db.WithStatementCounter(context.Background(), &o.sql))
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx) }()
	return func() { cancel(); <-done; o.svc.SetKick(func(int64) {}) }
}

// addAccounts adds every token as an account, a few at a time (each add asks Apple twice).
func (o *orchard) addAccounts(tb testing.TB, toks []string) {
	tb.Helper()
	var wg sync.WaitGroup
	var failed atomic.Value
	next := atomic.Int64{}
	for range 16 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < len(toks); i = int(next.Add(1)) - 1 {
				if _, _, err := o.svc.AddAccount(context.Background(), license.SystemActor,
					license.AddAccountInput{Name: fmt.Sprintf("Account %05d", i), Token: toks[i]}); err != nil {
					failed.Store(fmt.Errorf("add account %d: %w", i, err))
					return
				}
			}
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		tb.Fatal(err)
	}
}

// usage is a moment's CPU counters.
type usage struct {
	at            time.Time
	self, sim, db time.Duration
	apple, sql    int64
}

func (o *orchard) usage(sim *simProcess, dbPid int) usage {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	u := usage{at: time.Now(), self: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), sim: sim.cpu(),
		apple: o.appleN.Load(), sql: o.sql.Count()}
	if dbPid > 0 {
		u.db = procCPU(dbPid)
	}
	return u
}

func (u usage) since(v usage) usage {
	return usage{at: u.at, self: u.self - v.self, sim: u.sim - v.sim, db: u.db - v.db, apple: u.apple - v.apple, sql: u.sql - v.sql}
}

func manyAccountsOnce(b *testing.B, e dbtest.Engine, cfg manyConfig, latency time.Duration) {
	b.StopTimer()
	n := cfg.accounts
	incr := time.Duration(float64(realIncremental) / cfg.compress)
	full := time.Duration(float64(realFull) / cfg.compress)
	sim := startSim(b, simSpec{Accounts: n, Assignments: cfg.assignments, Apps: 10, Seed: 13, Latency: latency,
		ChangesPerSecond: cfg.changes * float64(n) / incr.Seconds()})
	d := e.Open(b)
	dbPid := 0
	if d.Dialect() == db.MySQL {
		dbPid = findProcess("mariadbd", "mysqld")
	}
	o := newOrchard(b, d, sim.URL, cfg.appleLimit)
	o.addAccounts(b, sim.Tokens)
	sc := scheduler.Config{Concurrency: cfg.concurrency}

	// 1. First sync, at the default intervals.
	start := o.usage(sim, dbPid)
	stop := o.run(sc)
	waitAllSynced(b, d, n, 30*time.Minute)
	first := o.usage(sim, dbPid).since(start)

	// 2. Idle: nothing is due for minutes.
	time.Sleep(time.Second) // the last passes' lease releases
	idleStart := o.usage(sim, dbPid)
	time.Sleep(cfg.idle)
	idle := o.usage(sim, dbPid).since(idleStart)
	stop()

	// 3. Steady state at compressed intervals; due times spread over one interval, as a
	// scheduler that has run for a while leaves them.
	spreadDueTimes(b, d, incr, full)
	sc.SyncInterval, sc.IncrementalInterval = full, incr
	t0 := time.Now()
	steadyStart := o.usage(sim, dbPid)
	stop = o.run(sc)
	time.Sleep(cfg.steady)
	steady := o.usage(sim, dbPid).since(steadyStart)
	t1 := time.Now()
	stop()
	ages, passes := dataAges(b, d, t0.Add(incr), t1, t0)
	b.StartTimer()

	simHours := cfg.steady.Seconds() * cfg.compress / 3600
	intervals := cfg.steady.Seconds() / incr.Seconds() * float64(n)
	idleRate := idle.self.Seconds() / cfg.idle.Seconds()
	steadyRate := steady.self.Seconds() / cfg.steady.Seconds()
	per1k := 1000 / float64(n) * 100
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(n), "accounts")
	b.ReportMetric(first.at.Sub(start.at).Seconds(), "first-s")
	b.ReportMetric(first.self.Seconds(), "first-cpu-s")
	b.ReportMetric(first.sim.Seconds(), "first-sim-cpu-s")
	b.ReportMetric(float64(first.apple)/float64(n), "first-apple/acct")
	b.ReportMetric(float64(first.sql)/float64(n), "first-sql/acct")
	b.ReportMetric(idleRate*per1k, "idle-cpu%/1k")
	b.ReportMetric(float64(idle.sql)/cfg.idle.Seconds(), "idle-sql/s")
	b.ReportMetric(steady.self.Seconds()/simHours, "cpu-s/simh")
	b.ReportMetric(steady.sim.Seconds()/simHours, "sim-cpu-s/simh")
	if dbPid > 0 {
		b.ReportMetric(steady.db.Seconds()/simHours, "db-cpu-s/simh")
		b.ReportMetric(first.db.Seconds(), "first-db-cpu-s")
	}
	b.ReportMetric((idleRate+max(steadyRate-idleRate, 0)/cfg.compress)*per1k, "proj-cpu%/1k")
	b.ReportMetric(float64(passes)/intervals, "passes/acct/int")
	b.ReportMetric(float64(steady.sql)/intervals, "sql/acct/int")
	b.ReportMetric(float64(steady.apple)/intervals, "apple/acct/int")
	late := 0
	for _, a := range ages {
		if a > 1.1 {
			late++
		}
	}
	b.ReportMetric(quantile(ages, 0.5), "age-p50")
	b.ReportMetric(quantile(ages, 0.99), "age-p99")
	b.ReportMetric(quantile(ages, 1), "age-max")
	b.ReportMetric(float64(late), "late-accts")
}

// waitAllSynced waits until every one of n accounts has had a successful pass.
func waitAllSynced(tb testing.TB, d *db.DB, n int, timeout time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var got int
		if err := d.SQL().QueryRow("SELECT COUNT(*) FROM accounts WHERE last_synced_at IS NOT NULL").Scan(&got); err != nil {
			tb.Fatal(err)
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%d of %d accounts synced after %s", got, n, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// spreadDueTimes gives every account an incremental due time in the next incr and a full one
// in the next full, at random.
func spreadDueTimes(tb testing.TB, d *db.DB, incr, full time.Duration) {
	tb.Helper()
	rows, err := d.SQL().Query("SELECT id FROM accounts")
	if err != nil {
		tb.Fatal(err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			tb.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Close(); err != nil {
		tb.Fatal(err)
	}
	now := db.Now()
	rng := rand.New(rand.NewPCG(13, 13))
	for _, id := range ids {
		nextFull := now.Add(time.Duration(rng.Int64N(int64(full))))
		next := now.Add(time.Duration(rng.Int64N(int64(incr))))
		if nextFull.Before(next) {
			next = nextFull
		}
		if err := d.UpdateAccount(context.Background(), id, map[string]any{"next_sync_at": next, "next_full_sync_at": nextFull}); err != nil {
			tb.Fatal(err)
		}
	}
}

// dataAges reads every account's successful passes and returns, per account, its largest data
// age over [from, to] ÷ interval (the age at a moment: the time since the last successful pass
// ended; passes before floor count as ended at floor, when the due times were spread), and the
// number of successful passes that ended in [floor, to].
func dataAges(tb testing.TB, d *db.DB, from, to, floor time.Time) ([]float64, int) {
	tb.Helper()
	rows, err := d.SQL().Query("SELECT account_id, finished_at FROM sync_runs WHERE status = 'SUCCEEDED' AND finished_at IS NOT NULL ORDER BY account_id, finished_at")
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	ends := map[int64][]time.Time{}
	for rows.Next() {
		var id int64
		var at time.Time
		if err := rows.Scan(&id, &at); err != nil {
			tb.Fatal(err)
		}
		ends[id] = append(ends[id], at.UTC())
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	interval := from.Sub(floor)
	var ages []float64
	passes := 0
	for _, es := range ends {
		slices.SortFunc(es, func(a, b time.Time) int { return a.Compare(b) })
		last := floor
		worst := time.Duration(0)
		for _, e := range es {
			if e.Before(floor) {
				continue
			}
			if !e.After(to) {
				passes++
			}
			if e.After(from) && !e.After(to) {
				worst = max(worst, e.Sub(last))
			}
			if e.After(to) {
				break
			}
			last = e
		}
		worst = max(worst, to.Sub(last))
		ages = append(ages, worst.Seconds()/interval.Seconds())
	}
	return ages, passes
}

// quantile is the q-quantile of xs (nearest rank; 1 is the maximum).
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	i := int(q*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func envString(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func envInt(tb testing.TB, name string, def int) int {
	v, err := strconv.Atoi(envString(name, strconv.Itoa(def)))
	if err != nil || v <= 0 {
		tb.Fatalf("%s: want a positive whole number", name)
	}
	return v
}

func envFloat(tb testing.TB, name string, def float64) float64 {
	v, err := strconv.ParseFloat(envString(name, strconv.FormatFloat(def, 'g', -1, 64)), 64)
	if err != nil || v < 0 {
		tb.Fatalf("%s: want a number ≥ 0", name)
	}
	return v
}

func envDuration(tb testing.TB, name string, def time.Duration) time.Duration {
	v, err := time.ParseDuration(envString(name, def.String()))
	if err != nil || v <= 0 {
		tb.Fatalf("%s: want a duration such as 20s", name)
	}
	return v
}

package scheduler_test

import (
	"context"
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"orchard/apple"
	"orchard/apple/applesim"
	"orchard/db"
	"orchard/db/dbtest"
	"orchard/license"
	"orchard/model"
	"orchard/resolvers/gqltest"
	"orchard/scheduler"
)

// BenchmarkReconcile is issue 4's done-point 6: a full reconcile of one account with 100,000
// assignments over 2,000 assets from the in-process simulator, on each engine, with Apple
// answering at once and with 100 ms added to every Apple request. In the same run it times the
// client alone reading the same pages (client config, assets, assignments, active users; no
// database) and reports the ratio. Passes are driven by hand (no scheduler running).
//
// Metrics (seconds unless named otherwise):
//
//	first-s      the first full pass: everything is new (apps, pools, 100k assignments, users),
//	             including the app-metadata lookups that follow a pass (1,000 apps)
//	meta-s       looking up the other 1,000 apps' metadata (outside the passes measured below)
//	full-s       a second full pass that finds nothing changed (every row is marked seen)
//	incr-s       an incremental pass that finds nothing changed (goal < 1 s)
//	client-s     the client alone reading the pages a full pass reads
//	ratio-first  first-s ÷ client-s; ratio-full  full-s ÷ client-s (goal ≤ 1.5)
//	peak-heap-MB the largest heap seen during the first pass (objects, unswept garbage
//	             included; sampled every 5 ms; the simulator's own data, in the same process,
//	             included); base-heap-MB before it; peak-heap-full-MB the same during the
//	             no-change passes; peak-live-MB the largest live heap a collection found
//	             during the passes
//
//	go test ./scheduler/ -run '^$' -bench Reconcile -benchtime 1x -timeout 60m
func BenchmarkReconcile(b *testing.B) {
	for _, e := range dbtest.Engines() {
		for _, lat := range []time.Duration{0, 100 * time.Millisecond} {
			b.Run(fmt.Sprintf("%s/latency=%s", e.Name, lat), func(b *testing.B) {
				var m reconcileFigures
				for range b.N {
					m.add(reconcileOnce(b, e, lat))
				}
				m.report(b, b.N)
			})
		}
	}
}

type reconcileFigures struct {
	first, full, incr, client, meta time.Duration
	peak, peakFull, peakLive, base  uint64
	pages, items                    int
	simRSS                          uint64 // the simulator process's peak RSS (0: in this process)
}

func (m *reconcileFigures) add(x reconcileFigures) {
	m.first += x.first
	m.full += x.full
	m.incr += x.incr
	m.client += x.client
	m.meta += x.meta
	m.peak = max(m.peak, x.peak)
	m.peakFull = max(m.peakFull, x.peakFull)
	m.peakLive = max(m.peakLive, x.peakLive)
	m.simRSS = max(m.simRSS, x.simRSS)
	m.base = max(m.base, x.base)
	m.pages, m.items = x.pages, x.items
}

func (m *reconcileFigures) report(b *testing.B, n int) {
	div := func(d time.Duration) float64 { return d.Seconds() / float64(n) }
	b.ReportMetric(0, "ns/op") // the figures below are the point, not the loop's time
	b.ReportMetric(div(m.first), "first-s")
	b.ReportMetric(div(m.full), "full-s")
	b.ReportMetric(div(m.incr), "incr-s")
	b.ReportMetric(div(m.client), "client-s")
	b.ReportMetric(div(m.meta), "meta-s")
	b.ReportMetric(m.first.Seconds()/m.client.Seconds(), "ratio-first")
	b.ReportMetric(m.full.Seconds()/m.client.Seconds(), "ratio-full")
	b.ReportMetric(float64(m.peak)/(1<<20), "peak-heap-MB")
	b.ReportMetric(float64(m.peakFull)/(1<<20), "peak-heap-full-MB")
	b.ReportMetric(float64(m.peakLive)/(1<<20), "peak-live-MB")
	b.ReportMetric(float64(m.base)/(1<<20), "base-heap-MB")
	if m.simRSS > 0 {
		b.ReportMetric(float64(m.simRSS)/(1<<20), "sim-rss-MB")
	}
	b.ReportMetric(float64(m.pages), "pages")
	b.ReportMetric(float64(m.items), "items")
}

// reconcileOnce sets up a fresh database and account, with the simulator in this process, and
// measures its passes.
func reconcileOnce(b *testing.B, e dbtest.Engine, latency time.Duration) reconcileFigures {
	b.StopTimer()
	defer b.StartTimer()
	d := e.Open(b)
	st := gqltest.NewStack(b, d, gqltest.StackOptions{NoScheduler: true, NoNotifications: true})
	const n = 100000
	gen := st.Sim.Generate(applesim.GenSpec{Tokens: 1, AppsPerToken: 2000, AssignmentsPerToken: n, Seed: 1, Countries: []string{"US"}})
	tok := gen.TokenFiles[0]
	st.AddAccount(b, "Big", tok)
	if latency > 0 {
		st.Sim.SetFault(tok, applesim.Fault{Kind: applesim.FaultSlow, Delay: latency})
	}
	return measurePasses(b, benchSetup{d: d, svc: st.License, sched: st.Scheduler, api: st.Apple, accountID: benchAccountID(b, d), token: tok, assignments: n})
}

// benchSetup is what measurePasses drives: an account added but not yet synced, and the
// Orchard parts that sync it.
type benchSetup struct {
	d           *db.DB
	svc         *license.Service
	sched       *scheduler.Scheduler
	api         *apple.Client
	accountID   int64
	token       string
	assignments int64 // held at Apple
}

// measurePasses times a first full pass (sampling the heap), the metadata lookups left after
// it, a no-change full pass, a no-change incremental pass, and the client alone reading what
// a full pass reads.
func measurePasses(b *testing.B, s benchSetup) reconcileFigures {
	b.Helper()
	ctx := context.Background()
	pass := func(kind model.SyncKind) time.Duration {
		b.Helper()
		if _, err := s.svc.QueueSync(ctx, s.accountID, kind, model.TriggerManual); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if err := s.sched.SyncNow(ctx, s.accountID); err != nil {
			b.Fatal(err)
		}
		took := time.Since(start)
		benchCheckRun(b, s.d, kind)
		return took
	}

	var f reconcileFigures
	runtime.GC()
	f.base = benchHeap()
	stop := benchSampleHeap(&f.peak, &f.peakLive)
	f.first = pass(model.SyncFull)
	stop()
	if n := benchCount(b, s.d, "SELECT COUNT(*) FROM license_assignments WHERE status = 'ASSIGNED'"); n != s.assignments {
		b.Fatalf("%d assignments after the first pass, want %d", n, s.assignments)
	}
	// The first pass looked up the metadata of 1,000 apps (a pass's batch); the rest are
	// looked up now, so that the passes below measure the reconcile alone.
	start := time.Now()
	for range 3 {
		if err := s.sched.RefreshMetadata(ctx, s.accountID); err != nil {
			b.Fatal(err)
		}
	}
	f.meta = time.Since(start)
	stop = benchSampleHeap(&f.peakFull, &f.peakLive)
	f.full = pass(model.SyncFull)
	f.incr = pass(model.SyncIncremental)
	stop()

	tk, err := apple.ParseToken([]byte(s.token), time.Now())
	if err != nil {
		b.Fatal(err)
	}
	start = time.Now()
	f.pages, f.items = benchReadPages(b, s.api, tk)
	f.client = time.Since(start)
	return f
}

// benchReadPages reads what a full pass reads from Apple, and nothing else.
func benchReadPages(b *testing.B, api *apple.Client, tok *apple.Token) (pages, items int) {
	ctx := context.Background()
	if _, err := api.ClientConfig(ctx, tok); err != nil {
		b.Fatal(err)
	}
	const parallel = 3 // the scheduler's default PageParallel
	for p, err := range api.Assets(ctx, tok, apple.AssetsQuery{Parallel: parallel}) {
		if err != nil {
			b.Fatal(err)
		}
		pages++
		items += len(p.Assets)
	}
	for p, err := range api.Assignments(ctx, tok, apple.AssignmentsQuery{Parallel: parallel}) {
		if err != nil {
			b.Fatal(err)
		}
		pages++
		items += len(p.Assignments)
	}
	for p, err := range api.Users(ctx, tok, apple.UsersQuery{ActiveOnly: true, Parallel: parallel}) {
		if err != nil {
			b.Fatal(err)
		}
		pages++
		items += len(p.Users)
	}
	return pages, items
}

func benchAccountID(b *testing.B, d *db.DB) int64 {
	b.Helper()
	return benchCount(b, d, "SELECT MAX(id) FROM accounts")
}

func benchCount(b *testing.B, d *db.DB, q string) int64 {
	b.Helper()
	var n int64
	if err := d.SQL().QueryRow(q).Scan(&n); err != nil {
		b.Fatalf("%s: %v", q, err)
	}
	return n
}

// benchCheckRun fails unless the latest pass succeeded with the kind asked for.
func benchCheckRun(b *testing.B, d *db.DB, kind model.SyncKind) {
	b.Helper()
	var gotKind, status string
	var errMsg *string
	if err := d.SQL().QueryRow("SELECT kind, status, error FROM sync_runs ORDER BY id DESC LIMIT 1").Scan(&gotKind, &status, &errMsg); err != nil {
		b.Fatal(err)
	}
	if gotKind != string(kind) || status != string(model.SyncRunSucceeded) {
		b.Fatalf("pass %s %s (want a successful %s): %v", gotKind, status, kind, deref(errMsg))
	}
}

var heapSample = []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}

// benchHeap reads the live heap (objects, including unswept garbage) without stopping the world.
func benchHeap() uint64 {
	metrics.Read(heapSample)
	return heapSample[0].Value.Uint64()
}

// benchSampleHeap records, until stopped, the largest heap seen into *peak (objects, garbage
// not yet swept included: what the process holds) and the largest live heap the collector
// found into *live (what the pass keeps reachable).
func benchSampleHeap(peak, live *uint64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/live:bytes"}}
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			*peak = max(*peak, s[0].Value.Uint64())
			*live = max(*live, s[1].Value.Uint64())
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

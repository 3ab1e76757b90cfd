package scheduler_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"orchard/apple"
	"orchard/db/dbtest"
	"orchard/license"
	"orchard/model"
	"orchard/scheduler"
)

// BenchmarkReconcileHuge is issue 13's huge account: one account of ORCHARD_BENCH_ASSIGNMENTS
// assignments (default 1,000,000; the growth table's sizes are 10,000, 100,000 and 1,000,000)
// over ORCHARD_BENCH_APPS assets (default 2,000), on each engine, with Apple answering at once
// and with 100 ms added to every Apple request. It reports the figures of BenchmarkReconcile:
// first-s, full-s (no change), incr-s (no change; goal < 1 s), client-s, ratio-first (goal
// ≤ 1.3 at 100 ms), peak-heap-MB (goal < 256).
//
// The simulator runs in a child process (this test binary again, as TestScaleSimProcess: startSim), so
// that the heap figures are Orchard's alone: a million simulated assignments would otherwise
// count in them. The child's peak resident set is reported apart as sim-rss-MB.
//
//	ORCHARD_BENCH_ASSIGNMENTS=100000 go test ./scheduler/ -run '^$' -bench ReconcileHuge -benchtime 1x -timeout 120m
func BenchmarkReconcileHuge(b *testing.B) {
	n := envInt(b, "ORCHARD_BENCH_ASSIGNMENTS", 1_000_000)
	apps := envInt(b, "ORCHARD_BENCH_APPS", 2000)
	for _, e := range dbtest.Engines() {
		for _, lat := range []time.Duration{0, 100 * time.Millisecond} {
			b.Run(fmt.Sprintf("%s/latency=%s", e.Name, lat), func(b *testing.B) {
				var m reconcileFigures
				for range b.N {
					m.add(reconcileHugeOnce(b, e, lat, n, apps))
				}
				m.report(b, b.N)
			})
		}
	}
}

// reconcileHugeOnce starts a simulator process with one token of n assignments, adds the
// account to a fresh database and measures its passes.
func reconcileHugeOnce(b *testing.B, e dbtest.Engine, latency time.Duration, n, apps int) reconcileFigures {
	b.StopTimer()
	defer b.StartTimer()
	ctx := context.Background()
	// The latency is Apple's from the start: the account's addition (not measured) waits
	// for it too.
	sim := startSim(b, simSpec{Accounts: 1, Assignments: n, Apps: apps, Seed: 1, Latency: latency})
	token := sim.Tokens[0]
	d := e.Open(b)
	mdmID, _, err := d.ClaimSetting(ctx, "mdm_id", "orchard-bench-instance")
	if err != nil {
		b.Fatal(err)
	}
	api := apple.New(apple.Config{BaseURL: sim.URL + "/mdm/v2", LookupURL: sim.URL + "/lookup",
		MDM: apple.MDMInfo{ID: mdmID, Name: "Orchard", Metadata: "bench"}, BackoffBase: 50 * time.Millisecond})
	sealer, err := license.NewSealer([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		b.Fatal(err)
	}
	svc := license.New(d, license.Options{Logger: dbtest.Quiet(), Apple: api, Sealer: sealer})
	sched := scheduler.New(scheduler.Config{DB: d, License: svc, Apple: api, Log: dbtest.Quiet(), Holder: "bench", LeaseTTL: 30 * time.Second})
	a, _, err := svc.AddAccount(ctx, license.Actor{Kind: model.ActorSystem, ID: "bench", Name: "bench", Role: model.RoleAdmin},
		license.AddAccountInput{Name: "Huge", Token: token})
	if err != nil {
		b.Fatal(err)
	}
	f := measurePasses(b, benchSetup{d: d, svc: svc, sched: sched, api: api, accountID: a.ID, token: token, assignments: int64(n)})
	f.simRSS = sim.peakRSS(b)
	return f
}

// peakRSS reads the simulator process's peak resident set (VmHWM, Linux); 0 where unknown.
func (p *simProcess) peakRSS(b *testing.B) uint64 {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				b.Fatalf("VmHWM %q: %v", v, err)
			}
			return kb << 10
		}
	}
	return 0
}

package scheduler_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/scheduler"
)

// BenchmarkQuietPass is the unit of the many-accounts steady state: one incremental pass of an
// account in which nothing changed at Apple, as the scheduler runs it when the account falls
// due (lease taken, pass, lease given back). The simulator runs in a process of its own (as in
// BenchmarkManyAccounts), so that the CPU read here is Orchard's alone (with SQLite, the
// database engine's too). One account of ORCHARD_BENCH_ASSIGNMENTS (300) assignments, synced
// and its app metadata looked up before the passes measured.
//
//	sql/pass    SQL statements of one pass, lease statements included
//	apple/pass  requests sent to Apple
//	cpu-ms/pass Orchard's CPU (user + system) per pass
//
//	ORCHARD_TEST_MYSQL_DSN=mysql://root@127.0.0.1:3306/orchard_bench \
//	  go test ./scheduler/ -run '^$' -bench QuietPass -benchtime 200x
func BenchmarkQuietPass(b *testing.B) {
	for _, e := range dbtest.Engines() {
		b.Run(e.Name, func(b *testing.B) {
			b.StopTimer()
			sim := startSim(b, simSpec{Accounts: 1, Assignments: envInt(b, "ORCHARD_BENCH_ASSIGNMENTS", 300), Apps: 10, Seed: 13})
			d := e.Open(b)
			o := newOrchard(b, d, sim.URL, 16)
			o.addAccounts(b, sim.Tokens)
			s := scheduler.New(scheduler.Config{DB: d, License: o.svc, Apple: o.api, Log: dbtest.Quiet()})
			var id int64
			if err := d.SQL().QueryRow("SELECT MAX(id) FROM accounts").Scan(&id); err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			// The first (full) pass, queued by the addition, and one more incremental one: the
			// app metadata and availability are looked up by then.
			for range 2 {
				if err := s.SyncNow(ctx, id); err != nil {
					b.Fatal(err)
				}
				quietPassDue(b, d, id)
			}
			var sql db.StatementCounter
			cctx := db.WithStatementCounter(ctx, &sql)
			apple0, cpu0 := o.appleN.Load(), processCPU()
			b.StartTimer()
			for range b.N {
				if err := s.SyncNow(cctx, id); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				quietPassDue(b, d, id)
				b.StartTimer()
			}
			b.StopTimer()
			cpu := processCPU() - cpu0 // includes quietPassDue's one statement per pass
			b.ReportMetric(float64(sql.Count())/float64(b.N), "sql/pass")
			b.ReportMetric(float64(o.appleN.Load()-apple0)/float64(b.N), "apple/pass")
			b.ReportMetric(cpu.Seconds()*1000/float64(b.N), "cpu-ms/pass")
			var kind, status string
			if err := d.SQL().QueryRow("SELECT kind, status FROM sync_runs ORDER BY id DESC LIMIT 1").Scan(&kind, &status); err != nil {
				b.Fatal(err)
			}
			if kind != "INCREMENTAL" || status != "SUCCEEDED" {
				b.Fatalf("the last pass was %s %s, want a successful incremental one", kind, status)
			}
		})
	}
}

// quietPassDue makes the account's incremental pass due now (its full pass stays far off).
func quietPassDue(b *testing.B, d *db.DB, id int64) {
	b.Helper()
	past := time.Now().UTC().Add(-time.Second)
	if _, err := d.SQL().Exec("UPDATE accounts SET next_sync_at = ?, next_full_sync_at = ? WHERE id = ?", past, past.Add(time.Hour), id); err != nil {
		b.Fatal(fmt.Errorf("make the pass due: %w", err))
	}
}

// processCPU is this process's CPU time so far (user + system).
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

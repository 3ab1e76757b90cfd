package resolvers_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
	"orchard/resolvers/gqltest"
)

// BenchmarkNestedPage measures the nested 100-item page of assignments (pool → account, app;
// device → user; user) over HTTP on each engine, and in the same run the same SQL statements
// issued directly from Go (database/sql, every column scanned; TestBareNestedPageIsTheGraphQLStatements
// checks they are the same statements). Both run with the same number of concurrent clients,
// as a server is used; the benchmark reports GraphQL requests/s, statements per request, bare
// pages/s and the ratio of the two rates (GraphQL cost ÷ bare cost; the goal is at most 1.5).
// It also reports the CPU time of the process (server, clients and database engine for
// SQLite; not the MySQL server's) per GraphQL request and per bare page, and their ratio:
// on a machine that other work shares, the CPU ratio moves less than the wall-time one.
//
//	go test ./resolvers/ -run '^$' -bench NestedPage -benchtime 3s -count 3
func BenchmarkNestedPage(b *testing.B) {
	for _, e := range dbtest.Engines() {
		b.Run(e.Name, func(b *testing.B) {
			d := e.Open(b)
			gqltest.Seed(b, d, 3, 10, 1000)
			s := gqltest.New(b, d)
			key := s.Keys[model.RoleViewer]
			vars := map[string]any{"first": 100}
			s.Do(b, key, nestedPage, vars)
			s.Do(b, key, nestedPage, vars)
			stmts := s.Statements

			b.StopTimer()
			cpu0 := processCPU()
			bare := timeParallel(b.N, func() error { return bareNestedPage(context.Background(), d, nil) })
			cpu1 := processCPU()
			b.StartTimer()
			gql := timeParallel(b.N, func() error {
				if r := s.Do(b, key, nestedPage, vars); len(r.Errors) > 0 {
					return fmt.Errorf("%v", r.Errors)
				}
				return nil
			})
			cpu2 := processCPU()
			b.ReportMetric(float64(b.N)/gql.Seconds(), "req/s")
			b.ReportMetric(float64(stmts), "stmts/req")
			b.ReportMetric(float64(b.N)/bare.Seconds(), "bare-pages/s")
			b.ReportMetric(gql.Seconds()/bare.Seconds(), "ratio")
			if cpu1 > cpu0 && cpu2 > cpu1 {
				b.ReportMetric(float64(cpu2-cpu1)/float64(b.N)/1e6, "cpu-ms/req")
				b.ReportMetric(float64(cpu1-cpu0)/float64(b.N)/1e6, "bare-cpu-ms/page")
				b.ReportMetric(float64(cpu2-cpu1)/float64(cpu1-cpu0), "cpu-ratio")
			}
		})
	}
}

// clients is the number of concurrent clients of the benchmarks.
const clients = 4

// timeParallel runs fn n times from `clients` goroutines and returns the wall time.
func timeParallel(n int, fn func() error) time.Duration {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				if err := fn(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	d := time.Since(start)
	select {
	case err := <-errs:
		panic(err)
	default:
	}
	return d
}

// bareNestedPage issues the statements the GraphQL path issues for nestedPage, directly
// (TestBareNestedPageIsTheGraphQLStatements holds it to that), and tells record, if set,
// each statement and its arguments.
func bareNestedPage(ctx context.Context, d *db.DB, record func(query string, args []any)) error {
	q := d.SQL()
	scanAll := func(ctx context.Context, q *sql.DB, query string, args ...any) ([]map[string]any, error) {
		if record != nil {
			record(query, args)
		}
		return scanAll(ctx, q, query, args...)
	}
	const pageSQL = "SELECT * FROM license_assignments ORDER BY license_assignments.id ASC LIMIT "
	var page []map[string]any
	var err error
	if d.Dialect() == db.MySQL { // as GORM's MySQL dialect writes a limit: as an argument
		page, err = scanAll(ctx, q, pageSQL+"?", 101)
	} else {
		page, err = scanAll(ctx, q, pageSQL+"101")
	}
	if err != nil {
		return err
	}
	page = page[:min(len(page), 100)] // the 101st row only tells whether there is a next page
	col := func(rows []map[string]any, name string) []any {
		seen := map[int64]bool{}
		var out []any
		for _, r := range rows {
			if v, ok := asInt(r[name]); ok && !seen[v] {
				seen[v] = true
				out = append(out, v)
			}
		}
		return out
	}
	in := func(table string, ids []any) ([]map[string]any, error) {
		if len(ids) == 0 {
			return nil, nil
		}
		return scanAll(ctx, q, fmt.Sprintf("SELECT * FROM %s WHERE id IN (%s)", table, strings.TrimSuffix(strings.Repeat("?,", len(ids)), ",")), ids...)
	}
	pools, err := in("license_pools", col(page, "pool_id"))
	if err != nil {
		return err
	}
	if _, err := in("accounts", col(pools, "account_id")); err != nil {
		return err
	}
	if _, err := in("apps", col(pools, "app_id")); err != nil {
		return err
	}
	devices, err := in("devices", col(page, "device_id"))
	if err != nil {
		return err
	}
	_, err = in("users", append(col(devices, "user_id"), col(page, "user_id")...))
	return err
}

func scanAll(ctx context.Context, q *sql.DB, query string, args ...any) ([]map[string]any, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []map[string]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		m := make(map[string]any, len(cols))
		for i, c := range cols {
			m[c] = vals[i]
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

func asInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case []byte:
		var n int64
		_, err := fmt.Sscan(string(x), &n)
		return n, err == nil
	}
	return 0, false
}

package resolvers_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
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
// SQLite; not the MySQL server's) per GraphQL request and per bare page, and their ratio.
//
// The two sides run in alternating rounds of `round` pages each, and each side's time is the
// sum of its rounds: on a machine that other work shares, the speed the process gets moves by
// a fifth or more within seconds, and two halves run one after the other measured that move
// as much as the ratio (1.9 to 2.6 for the same code in three runs).
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
			s.Do(b, key, nestedPage, vars) // the first looks the key up
			s.Do(b, key, nestedPage, vars)
			stmts := s.Statements
			// The answer every later one must equal, decoded and checked whole.
			body, _ := json.Marshal(map[string]any{"query": nestedPage, "variables": vars})
			want, err := postPage(s, key, body, 0)
			var page struct {
				Data struct {
					LicenseAssignments struct{ Edges []struct{ Cursor string } }
				}
				Errors []any
			}
			if err == nil {
				err = json.Unmarshal(want, &page)
			}
			if n := len(page.Data.LicenseAssignments.Edges); err != nil || len(page.Errors) > 0 || n != 100 {
				b.Fatalf("the first answer (err %v, %d edges, want 100): %.300s", err, n, want)
			}

			bare := func() error { return bareNestedPage(context.Background(), d, nil) }
			gql := func() error {
				got, err := postPage(s, key, body, len(want))
				if err == nil && !bytes.Equal(got, want) {
					err = fmt.Errorf("the answer changed: %.300s", got)
				}
				return err
			}
			var bareSide, gqlSide side
			b.ResetTimer()
			for done := 0; done < b.N; {
				n := min(round, b.N-done)
				b.StopTimer()
				bareSide.run(n, bare)
				b.StartTimer()
				gqlSide.run(n, gql)
				done += n
			}
			b.ReportMetric(float64(b.N)/gqlSide.wall.Seconds(), "req/s")
			b.ReportMetric(float64(stmts), "stmts/req")
			b.ReportMetric(float64(b.N)/bareSide.wall.Seconds(), "bare-pages/s")
			b.ReportMetric(gqlSide.wall.Seconds()/bareSide.wall.Seconds(), "ratio")
			if bareSide.cpu > 0 && gqlSide.cpu > 0 {
				b.ReportMetric(float64(gqlSide.cpu)/float64(b.N)/1e6, "cpu-ms/req")
				b.ReportMetric(float64(bareSide.cpu)/float64(b.N)/1e6, "bare-cpu-ms/page")
				b.ReportMetric(float64(gqlSide.cpu)/float64(bareSide.cpu), "cpu-ratio")
			}
		})
	}
}

// postPage posts a GraphQL request and returns its answer. The benchmark's clients check each
// answer against the first, decoded and checked whole, byte for byte, rather than decode each:
// decoding 25 KB of JSON costs a fifth of a millisecond of the machine's two cores per request,
// which is the client's work and not the server's (and bare's rows are not decoded either).
// For the same reason the answer is read into a buffer of the size expected (size).
func postPage(s *gqltest.Server, key string, body []byte, size int) ([]byte, error) {
	resp, err := s.Raw(key, bytes.NewReader(body), "application/json")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	got := bytes.NewBuffer(make([]byte, 0, size+bytes.MinRead))
	_, err = got.ReadFrom(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d: %.300s", resp.StatusCode, got)
	}
	return got.Bytes(), err
}

// round is the number of pages each side of BenchmarkNestedPage runs before the other's turn:
// enough that the clients' start and end are a small part of a round (a round of the GraphQL
// side takes about 0.1 s), few enough that a change in the machine's speed meets both sides.
const round = 50

// side sums the wall and CPU time of one side of a benchmark over its rounds.
type side struct {
	wall time.Duration
	cpu  time.Duration // stays 0 where the process's CPU time cannot be read
}

// run runs fn n times from `clients` goroutines and adds the time they took.
func (s *side) run(n int, fn func() error) {
	cpu0 := processCPU()
	s.wall += timeParallel(n, fn)
	if cpu1 := processCPU(); cpu0 > 0 && cpu1 > cpu0 {
		s.cpu += cpu1 - cpu0
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

package resolvers_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"orchard/db/dbtest"
	"orchard/model"
	"orchard/resolvers/gqltest"
)

// BenchmarkMixedReads is a console's read load: 50 concurrent clients over HTTP, each
// sending, one after the other, a mix of list pages with filters (accounts, apps,
// assignments of an account and status, of an app), the nested 100-item page and single
// node lookups (an assignment, a device, a user), on the estate gqltest.Seed writes (3
// accounts, 10 apps, 1,000 assignments). It reports requests/s and the p50 and p99 latency
// of all requests, the p99 of the nested page alone and the process's CPU time per request
// (server, clients and, on SQLite, the database engine: the machine's cores divided by it
// bound the closed load's rate); it logs each kind's p50 and p99.
//
// Two loads per engine: "closed", where each client sends its next request as soon as the
// last is answered (the server's capacity: its latency is the clients' queue, 50 ÷ req/s
// on average), and "paced", where each client pauses 200 ms between requests, as the
// people behind a console do (at most 250 req/s offered): the goal, p99 under 50 ms on
// SQLite, is the paced p99.
//
//	go test ./resolvers/ -run '^$' -bench MixedReads -benchtime 5000x
//
// ORCHARD_BENCH_READ_CLIENTS and ORCHARD_BENCH_READ_THINK_MS change the number of clients
// (default 50) and the pause (default 200).
func BenchmarkMixedReads(b *testing.B) {
	clients := readEnvInt(b, "ORCHARD_BENCH_READ_CLIENTS", 50)
	think := time.Duration(readEnvInt(b, "ORCHARD_BENCH_READ_THINK_MS", 200)) * time.Millisecond
	for _, e := range dbtest.Engines() {
		b.Run(e.Name, func(b *testing.B) {
			d := e.Open(b)
			f := gqltest.Seed(b, d, 3, 10, 1000)
			s := gqltest.New(b, d)
			key := s.Keys[model.RoleViewer]
			mix := mixedReads(f)
			for _, r := range mix { // each answers, without errors, before the clock starts
				if err := s.Post(key, r.query, r.vars(0), nil); err != nil {
					b.Fatalf("%s: %v", r.name, err)
				}
			}
			b.Run("closed", func(b *testing.B) { mixedLoad(b, s, key, mix, clients, 0) })
			b.Run("paced", func(b *testing.B) { mixedLoad(b, s, key, mix, clients, think) })
		})
	}
}

// mixedLoad sends b.N requests of the mix from clients goroutines, each pausing think
// between its requests (with a random first pause, so that the clients do not move in step),
// and reports the rate and latencies.
func mixedLoad(b *testing.B, s *gqltest.Server, key string, mix []mixedRead, clients int, think time.Duration) {
	lat := make([]time.Duration, b.N)
	kinds := make([]int, b.N)
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	b.ResetTimer()
	start, cpu0 := time.Now(), processCPU()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if think > 0 {
				time.Sleep(rand.N(think))
			}
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N || failed.Load() != nil {
					return
				}
				k := i % len(mix)
				t0 := time.Now()
				if err := s.Post(key, mix[k].query, mix[k].vars(i), nil); err != nil {
					err = fmt.Errorf("%s: %w", mix[k].name, err)
					failed.Store(&err)
					return
				}
				lat[i], kinds[i] = time.Since(t0), k
				time.Sleep(think)
			}
		}()
	}
	wg.Wait()
	elapsed, cpu := time.Since(start), processCPU()-cpu0
	b.StopTimer()
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
	var nested []time.Duration
	for i, k := range kinds {
		if mix[k].name == "nested page" {
			nested = append(nested, lat[i])
		}
	}
	if b.N >= 10*len(mix) { // each kind's figures, from runs with enough of each
		var names []string
		by := map[string][]time.Duration{}
		for i, k := range kinds {
			n := mix[k].name
			if by[n] == nil {
				names = append(names, n)
			}
			by[n] = append(by[n], lat[i])
		}
		for _, n := range names {
			b.Logf("%-24s p50 %6.1f ms  p99 %6.1f ms", n, quantileMS(by[n], .5), quantileMS(by[n], .99))
		}
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(quantileMS(lat, 0.50), "p50-ms")
	b.ReportMetric(quantileMS(lat, 0.99), "p99-ms")
	b.ReportMetric(quantileMS(nested, 0.99), "nested-p99-ms")
	if cpu > 0 {
		b.ReportMetric(float64(cpu)/float64(b.N)/1e6, "cpu-ms/req")
	}
}

// mixedRead is one kind of request of the mix; vars gives the variables of the i-th request.
type mixedRead struct {
	name  string
	query string
	vars  func(i int) map[string]any
}

// mixedReads is the mix, in the proportions of its entries: four single nodes, three
// lists, two nested pages in ten requests.
func mixedReads(f *gqltest.Fixture) []mixedRead {
	nodeOf := func(ids func(i int) string) func(int) map[string]any {
		return func(i int) map[string]any { return map[string]any{"id": ids(i)} }
	}
	const node = `query($id: ID!) { node(id: $id) { id ... on LicenseAssignment { status pool { app { name } } }
  ... on Device { serialNumber user { email } } ... on User { email name } } }`
	nested := mixedRead{"nested page", nestedPage, func(int) map[string]any { return map[string]any{"first": 100} }}
	return []mixedRead{
		{"assignment node", node, nodeOf(func(i int) string { return f.Assignments[i%len(f.Assignments)].NodeID() })},
		{"accounts", `query { accounts(first: 20, filter: {health: [ACTIVE]}) { nodes { id name syncStatus
  licensePools(first: 5) { totalCount nodes { app { name } availableCount } } } } }`, func(int) map[string]any { return nil }},
		nested,
		{"device node", node, nodeOf(func(i int) string { return f.Devices[i%len(f.Devices)].NodeID() })},
		{"assignments of an account", `query($account: ID, $first: Int) { licenseAssignments(first: $first,
  filter: {accountId: $account, status: [ASSIGNED]}) { nodes { id status app { name } serialNumber clientUserId } pageInfo { hasNextPage endCursor } } }`,
			func(i int) map[string]any {
				return map[string]any{"account": f.Accounts[i%len(f.Accounts)].NodeID(), "first": 50}
			}},
		{"user node", node, nodeOf(func(i int) string { return f.Users[i%len(f.Users)].NodeID() })},
		{"apps", `query($kind: AppKind) { apps(first: 50, filter: {kind: $kind}) { nodes { id name adamId
  licensePools(first: 3) { nodes { account { name } assignedCount } } } } }`,
			func(i int) map[string]any { return map[string]any{"kind": []string{"APP", "BOOK"}[i%2]} }},
		nested,
		{"another assignment node", node, nodeOf(func(i int) string { return f.Assignments[(i*7)%len(f.Assignments)].NodeID() })},
		{"assignments of an app", `query($app: ID) { licenseAssignments(first: 20, filter: {appId: $app}) {
  edges { node { id kind device { serialNumber } user { email } } } } }`,
			func(i int) map[string]any { return map[string]any{"app": f.Apps[i%len(f.Apps)].NodeID()} }},
	}
}

// quantileMS is the q-quantile of ds, in milliseconds (nearest rank).
func quantileMS(ds []time.Duration, q float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.5) - 1
	return float64(s[max(0, min(i, len(s)-1))]) / float64(time.Millisecond)
}

// envInt reads a positive integer from the environment, def when it is unset.
func readEnvInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

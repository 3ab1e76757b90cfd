package resolvers_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
	"orchard/resolvers"
	"orchard/resolvers/gqltest"
)

// BenchmarkSubscribers: N licenseEvents subscribers over real WebSockets to the real HTTP
// handler (caps raised), with mixed filters (a quarter each: none, an account, an app, both),
// while a writer changes assignment states through the db layer at R changes/s for S seconds.
// It reports the delivery latency from each change's commit to its receipt (p50, p99, over
// every subscriber that gets it), the memory per idle subscriber (heap and goroutine stacks
// before and after opening the N subscriptions, ÷ N; client and server share the process, so
// this is the cost of both ends, an upper bound of the server's), goroutines per subscriber,
// the feed's SQL statements per second, and what one subscriber that never reads (a small
// receive buffer, so that its socket backs up within seconds) does: whether it was dropped
// with SUBSCRIBER_TOO_SLOW (or its socket closed with 1013) while the others' latencies are
// those reported.
//
// Sizes: ORCHARD_BENCH_SUBSCRIBERS (default 1000), ORCHARD_BENCH_RATE (changes/s, default
// 200), ORCHARD_BENCH_SECONDS (default 20). Run with -benchtime=1x.
func BenchmarkSubscribers(b *testing.B) {
	n := envInt("ORCHARD_BENCH_SUBSCRIBERS", 1000)
	rate := envInt("ORCHARD_BENCH_RATE", 200)
	seconds := envInt("ORCHARD_BENCH_SECONDS", 20)
	for _, e := range dbtest.Engines() {
		b.Run(e.Name, func(b *testing.B) {
			for b.Loop() {
				benchSubscribers(b, e.Open(b), n, rate, time.Duration(seconds)*time.Second)
			}
		})
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// metric reads a counter or gauge of the default registry.
func metric(b *testing.B, name string) float64 {
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.Counter != nil {
				return m.Counter.GetValue()
			}
			return m.Gauge.GetValue()
		}
	}
	return 0
}

func memInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse
}

// benchSub is one subscriber's connection.
type benchSub struct {
	c      *websocket.Conn
	cancel context.CancelFunc
}

func openSub(b *testing.B, url, key, filter, selection string, dialer *net.Dialer) *benchSub {
	ctx, cancel := context.WithCancel(context.Background())
	opts := &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}}
	if dialer != nil {
		opts.HTTPClient = &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}}
	}
	dctx, dcancel := context.WithTimeout(ctx, time.Minute)
	defer dcancel()
	c, _, err := websocket.Dial(dctx, url, opts)
	if err != nil {
		b.Fatalf("dial: %v", err)
	}
	c.SetReadLimit(1 << 20)
	write := func(v any) {
		bs, _ := json.Marshal(v)
		if err := c.Write(dctx, websocket.MessageText, bs); err != nil {
			b.Fatal(err)
		}
	}
	write(map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + key}})
	if _, m, err := c.Read(dctx); err != nil || !strings.Contains(string(m), "connection_ack") {
		b.Fatalf("connection_init: %s %v", m, err)
	}
	write(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{
		"query": "subscription { licenseEvents" + filter + " { kind assignment { id status } " + selection + "} }"}})
	return &benchSub{c: c, cancel: cancel}
}

func benchSubscribers(b *testing.B, d *db.DB, n, rate int, load time.Duration) {
	const accounts, apps = 4, 5
	f := gqltest.Seed(b, d, accounts, apps, max(2000, rate*4))
	s := gqltest.New(b, d, gqltest.Options{Limits: resolvers.Limits{WSPerKey: -1, WSPerAddress: -1}})
	url := "ws" + strings.TrimPrefix(s.URL, "http")
	key := s.Keys[model.RoleViewer]
	gid := func(typ string, id int64) string { return model.GlobalID(typ, id) }

	// Idle subscribers: memory.
	subsBase := metric(b, "orchard_feed_subscribers")
	goBefore := runtime.NumGoroutine()
	memBefore := memInUse()
	subs := make([]*benchSub, n)
	for i := range n {
		a, p := f.Accounts[i%accounts], f.Apps[(i/4)%apps]
		filter := map[int]string{
			0: "",
			1: fmt.Sprintf("(accountId: %q)", gid("Account", a.ID)),
			2: fmt.Sprintf("(appId: %q)", gid("App", p.ID)),
			3: fmt.Sprintf("(accountId: %q, appId: %q)", gid("Account", a.ID), gid("App", p.ID)),
		}[i%4]
		subs[i] = openSub(b, url, key, filter, "", nil)
	}
	defer func() {
		for _, sub := range subs {
			sub.cancel()
			sub.c.CloseNow()
		}
	}()
	deadline := time.Now().Add(2 * time.Minute)
	for metric(b, "orchard_feed_subscribers") < subsBase+float64(n) {
		if time.Now().After(deadline) {
			b.Fatalf("only %v of %d subscriptions registered", metric(b, "orchard_feed_subscribers")-subsBase, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	memAfter := memInUse()
	goAfter := runtime.NumGoroutine()
	b.ReportMetric(float64(int64(memAfter)-int64(memBefore))/float64(n)/1024, "KB/idle-sub")
	b.ReportMetric(float64(goAfter-goBefore)/float64(n), "goroutines/sub")

	// The slow subscriber: a receive buffer of a few KB, and nobody reads.
	small := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	// Its events are made large (the assignment 20 times over) so that its socket backs up
	// within seconds at the benchmark's rates.
	var big strings.Builder
	for i := range 20 {
		fmt.Fprintf(&big, "a%d: assignment { id status kind origin reason createdAt updatedAt } ", i)
	}
	slow := openSub(b, url, key, "", big.String(), small)
	defer func() { slow.cancel(); slow.c.CloseNow() }()

	// Receivers.
	var committed sync.Map // global id + status → commit time
	var mu sync.Mutex
	var lat []time.Duration
	var measuring atomic.Bool
	var received atomic.Int64
	var wg sync.WaitGroup
	for _, sub := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			defer func() { mu.Lock(); lat = append(lat, mine...); mu.Unlock() }()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			for {
				_, m, err := sub.c.Read(ctx)
				if err != nil {
					return
				}
				at := time.Now()
				var msg struct {
					Type    string
					Payload struct {
						Data struct {
							LicenseEvents struct {
								Kind       string
								Assignment *struct{ ID, Status string }
							}
						}
					}
				}
				if json.Unmarshal(m, &msg) != nil || msg.Type != "next" {
					if msg.Type == "error" || msg.Type == "complete" {
						b.Errorf("a reading subscriber ended: %s", m)
						return
					}
					continue
				}
				received.Add(1)
				a := msg.Payload.Data.LicenseEvents.Assignment
				if a == nil || !measuring.Load() {
					continue
				}
				if t, ok := committed.Load(a.ID + "/" + a.Status); ok {
					mine = append(mine, max(at.Sub(t.(time.Time)), 0))
				}
			}
		}()
	}

	// The writer: one assignment's state per change, round robin, ASSIGNED → RECLAIMING →
	// ASSIGNED.
	stmts0, polls0 := metric(b, "orchard_feed_statements_total"), metric(b, "orchard_feed_polls_total")
	dropped0 := metric(b, "orchard_feed_dropped_total")
	measuring.Store(true)
	start := time.Now()
	tick := time.NewTicker(time.Second / time.Duration(rate))
	changes := 0
	ctx := context.Background()
	for time.Since(start) < load {
		<-tick.C
		a := f.Assignments[changes%len(f.Assignments)]
		ev, status := model.EventReclaimAsked, "RECLAIMING"
		if (changes/len(f.Assignments))%2 == 1 {
			ev, status = model.EventReclaimCancelled, "ASSIGNED"
		}
		if _, err := d.ApplyTransitions(ctx, ev, []int64{a.ID}, db.TransitionDetails{ReclaimReason: "bench", ReclaimedBy: "bench"}); err != nil {
			b.Fatal(err)
		}
		committed.Store(gid("LicenseAssignment", a.ID)+"/"+status, time.Now())
		changes++
	}
	tick.Stop()
	elapsed := time.Since(start)
	time.Sleep(time.Second) // the last changes arrive
	measuring.Store(false)
	stmts := metric(b, "orchard_feed_statements_total") - stmts0
	polls := metric(b, "orchard_feed_polls_total") - polls0
	dropped := metric(b, "orchard_feed_dropped_total") - dropped0

	// The slow subscriber reads now: its backlog, then its end.
	slowEnd := ""
	for slowEnd == "" {
		rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, m, err := slow.c.Read(rctx)
		rcancel()
		var ce websocket.CloseError
		switch {
		case errors.As(err, &ce):
			slowEnd = fmt.Sprintf("close %d %s", ce.Code, ce.Reason)
		case errors.Is(err, context.DeadlineExceeded):
			slowEnd = "not ended: it took every event (its socket never backed up)"
		case err != nil:
			slowEnd = "ended: " + err.Error()
		case strings.Contains(string(m), `"type":"error"`):
			slowEnd = string(m)
		}
	}
	slowOK := 0.0
	if strings.Contains(slowEnd, "SUBSCRIBER_TOO_SLOW") {
		slowOK = 1
	}

	for _, sub := range subs {
		sub.cancel()
		sub.c.CloseNow()
	}
	wg.Wait()
	slices.Sort(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[min(int(p*float64(len(lat))), len(lat)-1)].Microseconds()) / 1000
	}
	b.ReportMetric(float64(changes)/elapsed.Seconds(), "changes/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(len(lat)), "deliveries")
	b.ReportMetric(stmts/elapsed.Seconds(), "feed-stmts/s")
	b.ReportMetric(polls/elapsed.Seconds(), "feed-polls/s")
	b.ReportMetric(dropped, "dropped")
	b.ReportMetric(slowOK, "slow-closed-with-code")
	b.Logf("%d subscribers, %d changes in %s, %d events received; the slow subscriber: %.200s", n, changes, elapsed.Round(time.Millisecond), received.Load(), slowEnd)
}

package resolvers_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/license"
	"orchard/model"
	"orchard/resolvers/gqltest"
)

// BenchmarkSubscribers: N licenseEvents subscribers over real WebSockets to the real HTTP
// handler, served by a process of its own (startFeedServer; caps raised), with mixed filters (a
// quarter each: none, an account, an app, both), while a writer changes assignment states
// through the db layer at R changes/s for S seconds. It reports:
//
//   - the delivery latency from each change's commit to its receipt (p50, p99, over every
//     subscriber that gets it);
//   - the server's memory per idle subscriber: its Go heap and goroutine stacks in use
//     (KB/idle-sub) and its resident set (RSS-KB/idle-sub) after a collection, before and
//     after opening the N subscriptions, ÷ N, and its goroutines per subscriber — the
//     clients' half is not counted, they live in the benchmark's process;
//   - the feed's SQL statements and polls per second;
//   - what one subscriber that stops reading does: it subscribes to every event (each made
//     ~3 KB), on a socket with a few KB of buffer at either end (the server's slow listener),
//     so that its buffer of events fills within seconds and the feed drops it. Once the server
//     counts the drop it reads again, as a client back from a stall, and should find its
//     backlog and then SUBSCRIBER_TOO_SLOW (or, had it read nothing for 10 s more, the 1013
//     close): slow-closed-with-code 1, dropped 1 (the others are not dropped), while the
//     others' latencies are those reported.
//
// Sizes: ORCHARD_BENCH_SUBSCRIBERS (default 1000), ORCHARD_BENCH_RATE (changes/s, default
// 200), ORCHARD_BENCH_SECONDS (default 20). Run with -benchtime=1x. ORCHARD_BENCH_PPROF=DIR
// writes the server's heap profile (every allocation sampled) and goroutine profile with the
// idle subscribers open to DIR/heap.pprof and DIR/goroutine.pprof.
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
	_, key, err := license.New(d, license.Options{Logger: dbtest.Quiet()}).CreateAPIKey(context.Background(), license.SystemActor, "bench viewer", model.RoleViewer)
	if err != nil {
		b.Fatal(err)
	}
	srv := startFeedServer(b, d)
	gid := func(typ string, id int64) string { return model.GlobalID(typ, id) }

	// The slow subscriber: a receive buffer of a few KB, on the listener whose sockets have a
	// send buffer of a few KB, and nobody reads until the server has dropped it (below).
	small := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	// Its events are made large (the assignment 20 times over, ~3 KB) so that its socket
	// backs up within a few events.
	var big strings.Builder
	for i := range 20 {
		fmt.Fprintf(&big, "a%d: assignment { id status kind origin reason createdAt updatedAt } ", i)
	}
	slow := openSub(b, srv.SlowURL, key, "", big.String(), small)
	defer func() { slow.cancel(); slow.c.CloseNow() }()

	// Idle subscribers: the server's memory and goroutines. The slow subscriber, open and
	// idle, has started the feed hub and warmed the server, so the difference is what the N
	// cost.
	subsBase := srv.metrics(b)["orchard_feed_subscribers"]
	for warm := time.Now().Add(time.Minute); subsBase < 1; {
		if time.Now().After(warm) {
			b.Fatal("the slow subscriber's subscription did not register")
		}
		time.Sleep(20 * time.Millisecond)
		subsBase = srv.metrics(b)["orchard_feed_subscribers"]
	}
	time.Sleep(500 * time.Millisecond)
	before := srv.memory(b)
	subs := make([]*benchSub, n)
	for i := range n {
		a, p := f.Accounts[i%accounts], f.Apps[(i/4)%apps]
		filter := map[int]string{
			0: "",
			1: fmt.Sprintf("(accountId: %q)", gid("Account", a.ID)),
			2: fmt.Sprintf("(appId: %q)", gid("App", p.ID)),
			3: fmt.Sprintf("(accountId: %q, appId: %q)", gid("Account", a.ID), gid("App", p.ID)),
		}[i%4]
		subs[i] = openSub(b, srv.URL, key, filter, "", nil)
	}
	defer func() {
		for _, sub := range subs {
			sub.cancel()
			sub.c.CloseNow()
		}
	}()
	deadline := time.Now().Add(2 * time.Minute)
	for srv.metrics(b)["orchard_feed_subscribers"] < subsBase+float64(n) {
		if time.Now().After(deadline) {
			b.Fatalf("only %v of %d subscriptions registered", srv.metrics(b)["orchard_feed_subscribers"]-subsBase, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	after := srv.memory(b)
	if dir := os.Getenv("ORCHARD_BENCH_PPROF"); dir != "" {
		for _, prof := range []string{"heap", "goroutine"} {
			resp, err := http.Get(srv.base + "/debug/pprof/" + prof)
			if err == nil {
				f, _ := os.Create(dir + "/" + prof + ".pprof")
				_, _ = io.Copy(f, resp.Body)
				f.Close()
				resp.Body.Close()
			}
		}
	}
	b.ReportMetric((after.heapStack-before.heapStack)/float64(n)/1024, "KB/idle-sub")
	b.ReportMetric((after.rss-before.rss)/float64(n)/1024, "RSS-KB/idle-sub")
	b.ReportMetric((after.goroutines-before.goroutines)/float64(n), "goroutines/sub")

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

	// The slow subscriber reads again once the server counts a drop (or the load ends): its
	// backlog, then its end.
	m0 := srv.metrics(b)
	stmts0, polls0, dropped0 := m0["orchard_feed_statements_total"], m0["orchard_feed_polls_total"], m0["orchard_feed_dropped_total"]
	loadDone := make(chan struct{})
	slowEnded := make(chan string, 1)
	var droppedAfter atomic.Int64 // ms from the load's start to the server's drop; 0: none seen
	start := time.Now()
	go func() {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
	wait:
		for {
			select {
			case <-loadDone:
				break wait
			case <-t.C:
				if m, err := srv.readMetrics(); err == nil && m["orchard_feed_dropped_total"] > dropped0 {
					droppedAfter.Store(max(time.Since(start).Milliseconds(), 1))
					break wait
				}
			}
		}
		backlog := 0
		for {
			rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, m, err := slow.c.Read(rctx)
			rcancel()
			var ce websocket.CloseError
			switch {
			case errors.As(err, &ce):
				slowEnded <- fmt.Sprintf("close %d %s after %d messages", ce.Code, ce.Reason, backlog)
				return
			case errors.Is(err, context.DeadlineExceeded):
				slowEnded <- fmt.Sprintf("not ended after %d messages: it took every event (its socket never backed up)", backlog)
				return
			case err != nil:
				slowEnded <- fmt.Sprintf("ended after %d messages: %v", backlog, err)
				return
			case strings.Contains(string(m), `"type":"error"`):
				slowEnded <- fmt.Sprintf("%s after %d messages", m, backlog)
				return
			}
			backlog++
		}
	}()

	// The writer: one assignment's state per change, round robin, ASSIGNED → RECLAIMING →
	// ASSIGNED.
	measuring.Store(true)
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
	close(loadDone)
	time.Sleep(time.Second) // the last changes arrive
	measuring.Store(false)
	m1 := srv.metrics(b)
	stmts := m1["orchard_feed_statements_total"] - stmts0
	polls := m1["orchard_feed_polls_total"] - polls0
	dropped := m1["orchard_feed_dropped_total"] - dropped0

	slowEnd := <-slowEnded
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
	b.Logf("%d subscribers, %d changes in %s, %d events received; server memory before/after the idle subscribers: heap+stacks %.1f/%.1f MB (stacks %.1f/%.1f), RSS %.1f/%.1f MB, %v/%v goroutines; the slow subscriber, dropped %.1f s into the load: %.300s",
		n, changes, elapsed.Round(time.Millisecond), received.Load(),
		before.heapStack/1e6, after.heapStack/1e6, before.stack/1e6, after.stack/1e6, before.rss/1e6, after.rss/1e6, before.goroutines, after.goroutines,
		float64(droppedAfter.Load())/1000, slowEnd)
}

package resolvers

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"orchard/db"
	"orchard/graph"
	"orchard/model"
)

// The feed hub: one per handler (so one per replica), behind every licenseEvents subscription.
// While it has subscribers it polls the database once per interval (feedPoller) and fans the
// changes out to every subscriber, each taking the events of its own account and app filter
// that happened after it subscribed. The cost of the feed is therefore one set of statements per
// interval whatever the number of subscribers, and an event reaches a subscriber within about
// one interval of its commit.
//
// Each subscriber has a bounded buffer, which the transport (gqlgen's WebSocket or event stream)
// drains as fast as the client reads: a small channel, and behind it a backlog that grows only
// while the client is behind (an idle subscriber's memory does not grow with the bound). The
// hub never waits for a subscriber: one whose buffer is full when an event comes is dropped at
// once — the others are not delayed — its channel is closed, and its subscription ends with
// one error, code SUBSCRIBER_TOO_SLOW, and no more events (on a WebSocket an error message for
// the operation, graphql-transport-ws's "error"; on an event stream a last "next" with the
// error, then "complete"). The client may subscribe again; what
// changed in between it reads with a query. A WebSocket that does not even take that error
// within feedOptions.stuck is closed with 1013 (try again later), so that a client that stopped
// reading altogether does not hold its connection.

// feedOptions tune the hub; defaultFeedOptions are the server's.
type feedOptions struct {
	// interval is how often the hub polls the database while it has subscribers.
	interval time.Duration
	// accounts is how often it reads the accounts (health, holds, sync status): every account
	// is read, so less often than the changes.
	accounts time.Duration
	// buffer is the events a subscriber may have waiting before it is dropped.
	buffer int
	// overlap is how far behind the last position seen each poll reads again (feedPoller).
	overlap time.Duration
	// stuck is how long a dropped subscriber's WebSocket has to take its error before it is
	// closed.
	stuck time.Duration
}

var defaultFeedOptions = feedOptions{
	interval: 100 * time.Millisecond,
	accounts: 500 * time.Millisecond,
	buffer:   512,
	overlap:  2 * time.Second,
	stuck:    10 * time.Second,
}

// codeSubscriberTooSlow ends a subscription whose client did not keep up with its events.
const codeSubscriberTooSlow model.Code = "SUBSCRIBER_TOO_SLOW"

// wsCloseTryAgainLater is RFC 6455's 1013, for a dropped subscriber's socket that takes
// nothing more (clients reconnect after it).
const wsCloseTryAgainLater = 1013

var (
	feedSubscribers = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "orchard_feed_subscribers",
		Help: "licenseEvents subscriptions open.",
	})
	feedPolls = promauto.NewCounter(prometheus.CounterOpts{
		Name: "orchard_feed_polls_total",
		Help: "Polls of the database by the licenseEvents feed.",
	})
	feedStatements = promauto.NewCounter(prometheus.CounterOpts{
		Name: "orchard_feed_statements_total",
		Help: "SQL statements of the licenseEvents feed's polls.",
	})
	feedDropped = promauto.NewCounter(prometheus.CounterOpts{
		Name: "orchard_feed_dropped_total",
		Help: "licenseEvents subscribers dropped for not keeping up (SUBSCRIBER_TOO_SLOW).",
	})
)

type feedHub struct {
	db  *db.DB
	log *slog.Logger
	opt feedOptions

	mu   sync.Mutex
	subs map[*feedSub]struct{}
	// backlogged are the subscribers with a backlog (feedSub.backlog), moved on at every poll.
	backlogged map[*feedSub]struct{}
	running    bool
	// clock and clockRead are the database's clock at the last poll and this process's when
	// the poll's answer with it arrived (clockNow).
	clock, clockRead time.Time
	// recent are the events fanned out within the overlap window: one who subscribes gets
	// those after its start, which a poll between its reading of the clock and its
	// registration has already fanned out.
	recent []feedEvent
}

// feedSub is one subscription.
type feedSub struct {
	ctx              context.Context
	accountID, appID int64
	start            time.Time
	out              chan *graph.LicenseEvent
	// backlog holds, oldest first, the events that found out full: out has room for a
	// usual poll's events (feedChannel), the backlog for the rest of the buffer, so that an
	// idle subscriber holds a small channel rather than a whole buffer's slots.
	backlog []*graph.LicenseEvent
	end     *feedEnd // nil: the operation has no place for its end (dropping just stops events)
	stop    func() bool
}

func newFeedHub(d *db.DB, log *slog.Logger, opt feedOptions) *feedHub {
	if log == nil {
		log = slog.Default()
	}
	return &feedHub{db: d, log: log, opt: opt, subs: map[*feedSub]struct{}{}, backlogged: map[*feedSub]struct{}{}}
}

// subscribe registers a subscriber of the changes after now (the database's clock) to the
// account and app (0: any), until ctx ends.
func (h *feedHub) subscribe(ctx context.Context, accountID, appID int64) (<-chan *graph.LicenseEvent, error) {
	start, ok := h.clockNow()
	if !ok {
		var err error
		if start, err = h.db.ClockNow(ctx); err != nil {
			return nil, err
		}
	}
	s := &feedSub{ctx: ctx, accountID: accountID, appID: appID, start: start,
		out: make(chan *graph.LicenseEvent, min(h.opt.buffer, feedChannel)), end: feedEndFrom(ctx)}
	s.stop = context.AfterFunc(ctx, func() { h.remove(s) })
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range h.recent {
		if !h.deliver(s, &h.recent[i]) {
			return s.out, nil
		}
	}
	h.subs[s] = struct{}{}
	feedSubscribers.Inc()
	if !h.running {
		h.running = true
		go h.run()
	}
	return s.out, nil
}

// clockFresh is how old the last poll's clock may be for clockNow to count from it.
const clockFresh = 5 * time.Second

// clockNow is the database's clock now as the hub knows it while it polls: the last poll's,
// plus the time since its answer arrived — never after the database's clock (the database read
// it before the answer left), behind it by at most the answer's trip. A subscriber's start
// read from it costs no statement: a thousand subscribing at once would otherwise each ask the
// database, and grow its connection pool for that alone.
func (h *feedHub) clockNow() (time.Time, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	since := time.Since(h.clockRead)
	if !h.running || h.clock.IsZero() || since > clockFresh {
		return time.Time{}, false
	}
	return h.clock.Add(since), true
}

// remove forgets a subscriber.
func (h *feedHub) remove(s *feedSub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		feedSubscribers.Dec()
	}
	delete(h.backlogged, s)
}

// run polls while the hub has subscribers.
func (h *feedHub) run() {
	var stmts db.StatementCounter
	ctx := db.WithStatementCounter(context.Background(), &stmts)
	p := newFeedPoller(h.db, h.opt.overlap, h.opt.buffer/2)
	t := time.NewTicker(h.opt.interval)
	defer t.Stop()
	var lastAccounts time.Time
	failing := false
	for {
		h.mu.Lock()
		if len(h.subs) == 0 {
			h.running, h.recent, h.clock = false, nil, time.Time{}
			h.mu.Unlock()
			return
		}
		h.mu.Unlock()

		withAccounts := time.Since(lastAccounts) >= h.opt.accounts
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		before := stmts.Count()
		evs, err := p.poll(pctx, withAccounts)
		cancel()
		feedPolls.Inc()
		feedStatements.Add(float64(stmts.Count() - before))
		switch {
		case err != nil && !failing:
			failing = true
			h.log.Error("licenseEvents feed: poll failed; retrying every interval", "error", err)
		case err == nil:
			if failing {
				failing = false
				h.log.Info("licenseEvents feed: polls succeed again")
			}
			if withAccounts {
				lastAccounts = time.Now()
			}
			h.mu.Lock()
			h.clock, h.clockRead = p.runsNow, p.readAt
			h.mu.Unlock()
			h.fanOut(evs)
		}
		<-t.C
	}
}

// fanOut hands a poll's events to every subscriber they match, and keeps them for the ones
// who subscribe within the overlap window.
func (h *feedHub) fanOut(evs []feedEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.backlogged {
		h.flush(s)
	}
	for s := range h.subs {
		for i := range evs {
			if !h.deliver(s, &evs[i]) {
				break
			}
		}
	}
	cut := time.Now().Add(-h.opt.overlap)
	keep := h.recent[:0]
	for _, e := range h.recent {
		if e.changed.After(cut) {
			keep = append(keep, e)
		}
	}
	h.recent = keep
	for _, e := range evs {
		if e.ev.Kind != graph.LicenseEventKindAccount {
			h.recent = append(h.recent, e)
		}
	}
}

// feedChannel is the room of a subscriber's channel: a poll's events for one subscriber at
// 200 changes/s (about 20 every 100 ms) fit in it, and a burst beyond it waits in the
// subscriber's backlog, up to its buffer, for the next poll or event.
const feedChannel = 64

// push queues an event for the subscriber: in its channel when the backlog is empty and the
// channel has room, else at the end of the backlog while the two hold less than the buffer.
// It reports false when the buffer is full. The hub's lock is held.
func (h *feedHub) push(s *feedSub, ev *graph.LicenseEvent) bool {
	if len(s.backlog) > 0 {
		h.flush(s)
	}
	if len(s.backlog) == 0 {
		select {
		case s.out <- ev:
			return true
		default:
		}
	}
	if len(s.out)+len(s.backlog) >= h.opt.buffer {
		return false
	}
	s.backlog = append(s.backlog, ev)
	h.backlogged[s] = struct{}{}
	return true
}

// flush moves what the subscriber's channel has room for from its backlog, oldest first.
// The hub's lock is held.
func (h *feedHub) flush(s *feedSub) {
	for len(s.backlog) > 0 {
		select {
		case s.out <- s.backlog[0]:
			s.backlog[0] = nil
			s.backlog = s.backlog[1:]
		default:
			return
		}
	}
	s.backlog = nil
	delete(h.backlogged, s)
}

// deliver puts the event in the subscriber's buffer when it matches its filter and start,
// without waiting: a full buffer drops the subscriber (false). The hub's lock is held.
func (h *feedHub) deliver(s *feedSub, e *feedEvent) bool {
	if !e.changed.After(s.start) || !e.matches(s.accountID, s.appID) {
		return true
	}
	if h.push(s, e.ev) {
		return true
	}
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		feedSubscribers.Dec()
	}
	delete(h.backlogged, s)
	s.backlog = nil
	feedDropped.Inc()
	if s.stop != nil {
		s.stop()
	}
	if s.end != nil {
		s.end.drop(h.opt.stuck)
	}
	// Nothing is sent to a dropped subscriber any more (it has left h.subs, and every send
	// is made here under h.mu), so its channel can be closed: a transport waiting on it
	// wakes and ends the subscription (with the error, endDroppedFeeds) instead of waiting
	// for an event that will not come.
	close(s.out)
	logFrom(s.ctx).WarnContext(s.ctx, "licenseEvents subscriber dropped: its buffer is full", "buffer", h.opt.buffer)
	return false
}

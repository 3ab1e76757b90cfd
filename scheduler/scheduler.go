// Package scheduler is Orchard's background work: the reconcile of every account with Apple
// (a full pass every ORCHARD_SYNC_INTERVAL, incremental passes between, passes asked for by
// admins and notifications), token health, Apple's Retry-After holds, and the handling of
// Apple's notifications. Replicas share the work through lease rows in the database: an account
// is worked on by the replica holding its lease, and a dead replica's accounts pass to the
// others when its leases run out.
package scheduler

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"orchard/apple"
	"orchard/db"
	"orchard/license"
	"orchard/model"
)

// Config configures a Scheduler.
type Config struct {
	DB      *db.DB
	License *license.Service
	Apple   *apple.Client
	Log     *slog.Logger
	// SyncInterval is the time between full passes of an account (default 30m);
	// IncrementalInterval the time between incremental passes (default 5m).
	SyncInterval        time.Duration
	IncrementalInterval time.Duration
	// Jitter spreads due times over this fraction of the interval, before its end, so that
	// accounts added together do not stay in step (default 0.1).
	Jitter float64
	// Tick is how often the scheduler looks for due work (default 1s).
	Tick time.Duration
	// LeaseTTL is how long a lease lasts without renewal (default 30s); a dead replica's work
	// passes to the others after it.
	LeaseTTL time.Duration
	// Concurrency bounds the accounts this replica works on at once (default 16). A quiet
	// incremental pass is three Apple round trips in sequence: at 0.1–0.3 s each, 16 at once
	// serve 20–50 passes/s, where 3,000 accounts at the 5-minute interval need 10 (the old
	// default, 4, served 4–13 and starved such an estate at Apple's slower times). The
	// requests in flight stay bounded by the Apple client's own cap (ORCHARD_APPLE_CONCURRENCY).
	Concurrency int
	// PageParallel is how many Apple pages a pass fetches ahead while it writes (1–5, default 3).
	PageParallel int
	// PollInterval is the time between status polls of a pending event (default 30s, Apple's
	// guidance); notifications usually complete events sooner.
	PollInterval time.Duration
	// MetadataRefresh is how old an app's metadata may get before it is looked up again
	// (default 24h).
	MetadataRefresh time.Duration
	// Holder names this replica in lease rows (default host/pid/random).
	Holder string
}

func (c *Config) defaults() {
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.SyncInterval == 0 {
		c.SyncInterval = 30 * time.Minute
	}
	if c.IncrementalInterval == 0 {
		c.IncrementalInterval = 5 * time.Minute
	}
	if c.Jitter == 0 {
		c.Jitter = 0.1
	}
	if c.Tick == 0 {
		c.Tick = time.Second
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = 30 * time.Second
	}
	if c.Concurrency == 0 {
		c.Concurrency = 16
	}
	if c.PageParallel == 0 {
		c.PageParallel = 3
	}
	if c.PollInterval == 0 {
		c.PollInterval = 30 * time.Second
	}
	if c.MetadataRefresh == 0 {
		c.MetadataRefresh = 24 * time.Hour
	}
	if c.Holder == "" {
		host, _ := os.Hostname()
		b := make([]byte, 4)
		_, _ = crand.Read(b)
		c.Holder = fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b))
	}
}

// Scheduler runs the background work of one replica.
type Scheduler struct {
	cfg  Config
	db   *db.DB
	svc  *license.Service
	api  *apple.Client
	log  *slog.Logger
	kick chan struct{}

	mu            sync.Mutex
	kicked        map[int64]bool  // accounts kicked since the last tick (0: look at every account)
	busy          map[string]bool // work keys this replica is running
	invitationURL string          // last invitation link template written
	wg            sync.WaitGroup
	sem           chan struct{}
	// freed wakes the loop when a worker frees up while due passes wait (waiting).
	freed     chan struct{}
	waiting   atomic.Bool
	countries countries // the countries in use, as last read (metadata.go)
	replicas  replicas  // the replicas alive, as last counted (share.go)
	// metaChecked: the accounts whose apps lacked no metadata at their last look (metadata.go).
	metaChecked map[int64]metadataCheck
}

// New returns a Scheduler; call Run to start it.
func New(cfg Config) *Scheduler {
	cfg.defaults()
	if cfg.License != nil && cfg.DB != nil {
		cfg.License.WatchTransitions(cfg.DB) // policy follows the transitions this replica applies
	}
	s := &Scheduler{cfg: cfg, db: cfg.DB, svc: cfg.License, api: cfg.Apple, log: cfg.Log,
		kick: make(chan struct{}, 1), freed: make(chan struct{}, 1), kicked: map[int64]bool{}, busy: map[string]bool{}, metaChecked: map[int64]metadataCheck{}, sem: make(chan struct{}, cfg.Concurrency)}
	return s
}

// Kick wakes the scheduler at once: work was queued for an account (0: for any account).
func (s *Scheduler) Kick(accountID int64) {
	s.mu.Lock()
	s.kicked[accountID] = true
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// takeKicks returns the accounts kicked since the last call (maybe none), or nil when any
// account may have work (a kick for account 0).
func (s *Scheduler) takeKicks() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := []int64{} // not nil: nil means every account
	all := s.kicked[0]
	for id := range s.kicked {
		ids = append(ids, id)
		delete(s.kicked, id)
	}
	if all {
		return nil
	}
	return ids
}

// kickGather is how long a kick waits for others to join it. The outbox packs what is queued
// into as few Apple requests as it can, so a few milliseconds of wait cost nothing there.
const kickGather = 10 * time.Millisecond

// Run works until ctx is cancelled, then waits for the work in flight to stop. Every Tick it
// looks at all the work there is; after a kick naming accounts, the look for outbox work (queued
// items, events to poll) covers those accounts only (under a stream of intents a kick comes
// with every call, and the look across every account's outbox would cost more than the
// intents themselves). Due passes and removals are looked at every time. Between ticks it also
// wakes when the next pass falls due and when a worker frees up while due passes wait for
// one, so that a pass starts at its due time rather than at the next tick, and looks for due
// passes only.
func (s *Scheduler) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.Tick)
	defer t.Stop()
	due := time.NewTimer(time.Hour)
	due.Stop()
	defer due.Stop()
	defer s.wg.Wait()
	defer s.stopHeartbeat()
	look := lookAll
	var kicked []int64
	for {
		next, err := s.tick(ctx, look, kicked)
		if err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, "scheduler tick", "error", err)
		}
		due.Stop()
		if !next.IsZero() {
			if d := time.Until(next); d < s.cfg.Tick {
				// A random part of dueGather on top: replicas waking for the same due
				// time take turns at it, rather than the quickest one taking every pass.
				due.Reset(max(d, dueGather) + rand.N(dueGather))
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			look, kicked = lookAll, nil
			s.takeKicks()
		case <-s.kick:
			// Kicks come in bursts (one per intent): gather those of the next few
			// milliseconds into one look rather than one look each.
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(kickGather):
			}
			look, kicked = lookKicked, s.takeKicks()
		case <-due.C:
			look = lookDue
		case <-s.freed:
			look = lookDue
		}
	}
}

// dueGather is the least time between two looks for due passes between ticks: the passes that
// fall due meanwhile are started together, by one look (a pass starts at most this late, a
// small part of any interval).
const dueGather = 100 * time.Millisecond

// look is what one tick looks at besides due passes and removals.
type look int

const (
	lookAll    look = iota // every account's outbox work, and policy work
	lookKicked             // the kicked accounts' outbox work (all of it after a kick for 0), and policy work
	lookDue                // due passes only
)

// duePage is how many accounts one read of the due order returns beyond the free workers:
// accounts running on other replicas come first in that order too, and are passed over.
const duePage = 32

// duePages bounds the reads of the due order in one look (when other replicas hold the leases
// of every account read, they are behind, and a longer look would cost a lease statement per
// account passed over).
const duePages = 8

// tick starts the due work this replica can lease: the queued passes, then the passes due, in
// the order they fell due, as long as workers are free; then, unless it looks at due passes
// only, removals, policy work and outbox work. It
// returns when the next pass falls due, when that is known (zero: not known, or workers are
// all busy and one freeing up wakes the loop).
func (s *Scheduler) tick(ctx context.Context, what look, kicked []int64) (time.Time, error) {
	now, err := s.db.ClockNow(ctx)
	if err != nil {
		return time.Time{}, err
	}
	next, err := s.startDue(ctx, now)
	if err != nil || what == lookDue {
		return next, err
	}
	removing, err := s.db.AccountsBeingRemoved(ctx, now)
	if err != nil {
		return time.Time{}, err
	}
	for _, id := range removing {
		if _, err := s.svc.FinishRemoval(ctx, id); err != nil {
			s.log.WarnContext(ctx, "finish account removal", "account", id, "error", err)
		}
	}
	if err := s.startPolicy(ctx, now); err != nil {
		s.log.WarnContext(ctx, "policy work", "error", err)
	}
	work := kicked
	if what == lookAll || work == nil {
		if work, err = s.db.AccountsWithWork(ctx, now); err != nil {
			return time.Time{}, err
		}
	}
	if len(work) == 0 {
		return next, nil
	}
	accounts, err := s.db.AccountsByID(ctx, work)
	if err != nil {
		return time.Time{}, err
	}
	for _, a := range accounts {
		if a.RemovedAt == nil && !a.HeldAt(now) {
			s.start(ctx, "outbox", a.ID, s.outboxWork)
		}
	}
	return next, nil
}

// startDue starts passes while workers are free: the queued ones first, then the due ones by
// due time, those of which another replica is the first choice only once they have waited
// preferGrace for it (share.go). It returns when to look again for due passes, zero when it
// stopped for want of workers or does not know.
func (s *Scheduler) startDue(ctx context.Context, now time.Time) (time.Time, error) {
	free := s.freeWorkers()
	if free == 0 {
		s.waiting.Store(true)
		return time.Time{}, nil
	}
	queued, err := s.db.AccountsWithQueuedPasses(ctx, now, free+duePage)
	if err != nil {
		return time.Time{}, err
	}
	for _, id := range queued {
		if s.start(ctx, "sync", id, s.syncAccount) == noWorker {
			s.waiting.Store(true)
			return time.Time{}, nil
		}
	}
	live, rank := s.liveReplicas(ctx)
	var later time.Time // the earliest time a due account is left to another replica until
	for offset, n := 0, 0; n < duePages; n++ {
		limit := s.freeWorkers() + duePage
		page, err := s.db.AccountsByDueTime(ctx, now, offset, limit)
		if err != nil {
			return time.Time{}, err
		}
		for i, a := range page {
			if a.NextSyncAt != nil && now.Before(*a.NextSyncAt) {
				return earliest(later, s.nextWake(page[i:], live, rank)), nil
			}
			if a.NextSyncAt != nil && !firstChoice(a.ID, live, rank) {
				if until := a.NextSyncAt.Add(preferGrace); now.Before(until) {
					later = earliest(later, until) // its first choice's, for now (share.go)
					continue
				}
			}
			if s.start(ctx, "sync", a.ID, s.syncAccount) == noWorker {
				s.waiting.Store(true)
				return time.Time{}, nil
			}
		}
		if len(page) < limit {
			return later, nil // nothing else is due, nor falls due later
		}
		offset += len(page)
	}
	// Every account read is due and leased by other replicas: they are behind, and this
	// replica's free workers try again at the next tick.
	return time.Time{}, nil
}

// nextWake is when to look again for the accounts of page, none of them due yet (by due
// time): at the due time of the first that is this replica's first choice, or within
// preferGrace of another's, or at the last one's, which no account beyond the page precedes.
func (s *Scheduler) nextWake(page []db.DueAccount, live, rank int) time.Time {
	var t time.Time
	for _, a := range page {
		if firstChoice(a.ID, live, rank) {
			return earliest(t, *a.NextSyncAt)
		}
		t = earliest(t, a.NextSyncAt.Add(preferGrace))
	}
	return earliest(t, *page[len(page)-1].NextSyncAt)
}

// earliest is the earlier of two times, the zero time standing for none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// freeWorkers is how many more pieces of work this replica can start now.
func (s *Scheduler) freeWorkers() int { return cap(s.sem) - len(s.sem) }

// started is what start did.
type started int

const (
	begun    started = iota // the work runs
	passed                  // already running here, or its lease is another replica's
	noWorker                // every worker is busy
)

// start runs work for an account in the background when this replica is not already running
// it, a worker slot is free and the account's lease for that kind of work can be taken.
func (s *Scheduler) start(ctx context.Context, kind string, accountID int64, work func(ctx context.Context, accountID int64) error) started {
	key := leaseName(kind, accountID)
	s.mu.Lock()
	if s.busy[key] {
		s.mu.Unlock()
		return passed
	}
	s.busy[key] = true
	s.mu.Unlock()
	release := func() {
		s.mu.Lock()
		delete(s.busy, key)
		s.mu.Unlock()
	}
	select {
	case s.sem <- struct{}{}:
	default:
		release() // all workers busy; a worker freeing up (or the next tick) tries again
		return noWorker
	}
	granted := time.Now()
	ok, err := s.db.AcquireLease(ctx, key, s.cfg.Holder, s.cfg.LeaseTTL)
	if err != nil || !ok {
		if err != nil {
			// The statement may have taken the lease all the same (a cancelled context — a
			// replica stopping — ends the wait for the answer, not always the statement):
			// give it back, or the account would wait for the lease to run out.
			rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if rerr := s.db.ReleaseLease(rctx, key, s.cfg.Holder); rerr != nil {
				s.log.Warn("release lease", "lease", key, "error", rerr)
			}
			rcancel()
		}
		<-s.sem
		release()
		if err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "take lease", "lease", key, "error", err)
		}
		return passed
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.workerFreed()
		defer func() { <-s.sem }()
		defer release()
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		lost := s.keepLease(wctx, cancel, key, granted)
		err := work(wctx, accountID)
		cancel()
		<-lost
		if err != nil && !errors.Is(err, context.Canceled) {
			s.log.Error("background work failed", "work", kind, "account", accountID, "error", err)
		}
		// Give the lease back so that another replica may take the next due work at once.
		rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer rcancel()
		if err := s.db.ReleaseLease(rctx, key, s.cfg.Holder); err != nil {
			s.log.Warn("release lease", "lease", key, "error", err)
		}
	}()
	return begun
}

// workerFreed wakes the loop when due passes were left waiting for a worker.
func (s *Scheduler) workerFreed() {
	if s.waiting.CompareAndSwap(true, false) {
		select {
		case s.freed <- struct{}{}:
		default:
		}
	}
}

// leaseName names the lease of one kind of work ("sync", "outbox") of an account.
func leaseName(kind string, accountID int64) string { return fmt.Sprintf("%s:%d", kind, accountID) }

// keepLease renews a lease while its work runs, every third of its TTL, and cancels the work
// when the lease may be lost: a renewal failed (another replica may hold it), or none got
// through for too long (the database is slow or unreachable: a renewal can hang). The lease
// is good until TTL after the last renewal was sent (by this process's clock; the database
// dates it from later, when it runs the statement), and the work is stopped a quarter of the
// TTL before that, so that it has ended before another replica may take the lease.
func (s *Scheduler) keepLease(ctx context.Context, cancel context.CancelFunc, key string, granted time.Time) <-chan struct{} {
	ttl := s.cfg.LeaseTTL
	var mu sync.Mutex
	validUntil := granted.Add(ttl)
	var wg sync.WaitGroup
	wg.Go(func() { // renewals
		t := time.NewTicker(ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			sent := time.Now()
			ok, err := s.db.AcquireLease(ctx, key, s.cfg.Holder, ttl)
			if ctx.Err() != nil {
				return
			}
			if err != nil || !ok {
				s.log.Warn("lease lost; stopping its work", "lease", key, "error", err)
				cancel()
				return
			}
			mu.Lock()
			validUntil = sent.Add(ttl)
			mu.Unlock()
		}
	})
	wg.Go(func() { // watchdog
		for {
			mu.Lock()
			stopAt := validUntil.Add(-ttl / 4)
			mu.Unlock()
			d := time.Until(stopAt)
			if d <= 0 {
				s.log.Warn("lease not renewed in time; stopping its work", "lease", key)
				cancel()
				return
			}
			timer := time.NewTimer(d)
			select {
			case <-ctx.Done():
				timer.Stop()
				return
			case <-timer.C:
			}
		}
	})
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	return done
}

// jitter spreads d over the configured fraction before its end: d×(1−Jitter) to d. Only
// earlier, never later, so that the spread never makes an account's data older than its
// interval (a due time at d×(1+Jitter) would, and with 3,000 accounts some always fall there).
func (s *Scheduler) jitter(d time.Duration) time.Duration {
	f := 1 - s.cfg.Jitter*rand.Float64()
	return time.Duration(float64(d) * f)
}

// token opens an account's token.
func (s *Scheduler) token(a *model.Account) (*apple.Token, error) { return s.svc.Token(a) }

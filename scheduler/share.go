package scheduler

import (
	"context"
	"slices"
	"time"

	"orchard/db"
)

// Replicas share the due passes evenly. Left to the race of their looks, the replica that
// looks first when passes fall due together takes as many as it has free workers (three
// replicas over 60 accounts did 1.3–2.5 times as many passes as one another). Instead each
// replica renews a heartbeat lease (db.ReplicaLeasePrefix and its holder) and reads the live
// ones: of L live replicas, the one at rank r (in the order of their names) is the first
// choice for the accounts whose id is r modulo L, and starts those as soon as they are due.
// An account whose first choice has not started it within preferGrace of its due time (the
// replica is busy, slow, or dead and its heartbeat not run out yet) is taken by whichever
// replica looks next, oldest due first as ever. The leases still decide who runs a pass: the
// first choice is a preference, never a lock, so a pass is never run twice nor left undone.

// preferGrace is how long past its due time an account is left to its first-choice replica:
// more than the random part of a due wake (dueGather), so that a live first choice with a
// free worker has looked by then.
const preferGrace = 3 * dueGather

// replicas is the last reading of the live replicas.
type replicas struct {
	n, rank int       // live replicas (0: never read) and this one's place among them
	at      time.Time // when the heartbeat was last renewed and the replicas read
}

// liveReplicas renews this replica's heartbeat and reads the live replicas, at most every
// third of the lease TTL (two statements); in between it returns the last reading. It reads
// as alone (n = 1: every account is its own) when the database cannot say.
func (s *Scheduler) liveReplicas(ctx context.Context) (n, rank int) {
	r := &s.replicas
	if r.n > 0 && time.Since(r.at) < s.cfg.LeaseTTL/3 {
		return r.n, r.rank
	}
	r.at, r.n, r.rank = time.Now(), 1, 0
	if _, err := s.db.AcquireLease(ctx, s.heartbeat(), s.cfg.Holder, s.cfg.LeaseTTL); err != nil {
		if ctx.Err() == nil {
			s.log.WarnContext(ctx, "renew the replica's heartbeat", "error", err)
		}
		return r.n, r.rank
	}
	live, err := s.db.LiveReplicas(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.WarnContext(ctx, "read the live replicas", "error", err)
		}
		return r.n, r.rank
	}
	if i := slices.Index(live, s.cfg.Holder); i >= 0 {
		r.n, r.rank = len(live), i
	}
	return r.n, r.rank
}

// firstChoice reports whether this replica (at rank of n live ones) is the first choice for
// the account's passes.
func firstChoice(accountID int64, n, rank int) bool {
	return n <= 1 || accountID%int64(n) == int64(rank)
}

// stopHeartbeat gives the heartbeat back when the replica stops, so that the others take its
// accounts at once rather than after preferGrace.
func (s *Scheduler) stopHeartbeat() {
	if s.replicas.n == 0 {
		return // never renewed
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.db.ReleaseLease(ctx, s.heartbeat(), s.cfg.Holder); err != nil {
		s.log.Warn("give the replica's heartbeat back", "error", err)
	}
}

// heartbeat names this replica's heartbeat lease.
func (s *Scheduler) heartbeat() string { return db.ReplicaLeasePrefix + s.cfg.Holder }

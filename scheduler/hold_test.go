package scheduler_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"orchard/apple"
	"orchard/apple/applesim"
	"orchard/db"
	"orchard/resolvers/gqltest"
)

// Done means 2 (R3): when Apple answers an account with a throttle, nothing goes to that
// account until Apple's time is up — measured on the simulator's request log, with no slack —
// then the account is synced again by itself, and the other accounts carry on meanwhile.
func TestRetryAfterHoldsOneAccount(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		fault func() applesim.Fault
		// status of the throttled answers in the request log
		status int
		// holdEnd is when the hold ends by Apple's word, given the time of the last throttled
		// answer in the simulator's log; nil for a backoff (no Retry-After), whose end only
		// Orchard knows: it is read from the account.
		holdEnd func(f applesim.Fault, answered time.Time) time.Time
		// long holds leave time for checks while they last.
		long bool
	}{
		{
			name: "503 with Retry-After in seconds",
			fault: func() applesim.Fault {
				return applesim.Fault{Kind: applesim.FaultUnavailable503, RetryAfterSeconds: 2, Count: 1}
			},
			status:  503,
			holdEnd: func(_ applesim.Fault, answered time.Time) time.Time { return answered.Add(2 * time.Second) },
			long:    true,
		},
		{
			name: "503 with Retry-After as an HTTP date",
			fault: func() applesim.Fault {
				// A date, not a delay: it must still be ahead when A's pass gets to its first
				// request, however slow the machine (a past date means "now").
				return applesim.Fault{Kind: applesim.FaultUnavailable503, RetryAfterDate: time.Now().Add(5 * time.Second), Count: 1}
			},
			status: 503,
			// An HTTP date has a resolution of one second: the header says the fault's date
			// truncated to the second.
			holdEnd: func(f applesim.Fault, _ time.Time) time.Time { return f.RetryAfterDate.UTC().Truncate(time.Second) },
			long:    true,
		},
		{
			name: "500 with Retry-After",
			fault: func() applesim.Fault {
				return applesim.Fault{Kind: applesim.FaultServerError500, RetryAfterSeconds: 1, Count: 1}
			},
			status:  500,
			holdEnd: func(_ applesim.Fault, answered time.Time) time.Time { return answered.Add(time.Second) },
		},
		{
			// No Retry-After: exponential backoff (the stack's BackoffBase is 50ms), three times
			// in a row.
			name:   "429/9646 without Retry-After",
			fault:  func() applesim.Fault { return applesim.Fault{Kind: applesim.FaultTooMany429, Count: 3} },
			status: 429,
		},
	}
	names := make([]string, len(cases))
	for i, c := range cases {
		names[i] = c.name
	}
	onEngines(t, func(t *testing.T, d *db.DB) {
		// Default intervals (passes due every 5 and 30 minutes): whatever syncs A after its
		// hold is the hold's own resumption, not the schedule.
		st := newStack(t, d, gqltest.StackOptions{Scheduler: schedulerConfig{Concurrency: 16}})
		// Every case has its own accounts A and B, tiny (what is tested is when requests go,
		// not what they carry), so that B's pass ends well within A's hold however loaded
		// the machine.
		g := st.Sim.Generate(applesim.GenSpec{Tokens: 2 * len(cases), AppsPerToken: 2, AssignmentsPerToken: 10, Seed: 21, Countries: []string{"US"}})
		concurrently(t, names, func(t *testing.T, i int) {
			c := cases[i]
			tokA, tokB := g.TokenFiles[2*i], g.TokenFiles[2*i+1]
			idA := addSynced(t, st, fmt.Sprintf("A%d", i), tokA)
			idB := addSynced(t, st, fmt.Sprintf("B%d", i), tokB)

			// Both passes asked for together (B's first: it is to end during A's hold).
			start := time.Now()
			runB := syncAccount(t, st, idB, "FULL")
			f := c.fault()
			st.Sim.SetFault(tokA, f)
			runA := syncAccount(t, st, idA, "FULL")

			// A's pass is stopped by Apple's answer. (A backoff can be shorter than the
			// request that met it: it is then over when the answer arrives, and the client
			// tries again at once, within the pass.)
			heldRun := waitRun(t, st, runA.ID)
			backoffWithinPass := c.holdEnd == nil && heldRun.Status == "SUCCEEDED"
			if r := heldRun; r.Status != "HELD" && !backoffWithinPass {
				var sb strings.Builder
				for _, r := range runs(t, st, idA) {
					fmt.Fprintf(&sb, "  %s %s %s %s %v %v\n", r.ID, r.Kind, r.Trigger, r.Status, r.StartedAt.Format("15:04:05.000000"), deref(r.Error))
				}
				t.Fatalf("A's pass %s ended %s (%v), want HELD; start %s; A's requests:\n%s runs:\n%s", runA.ID, r.Status, deref(r.Error),
					start.Format("15:04:05.000000"), logText(st.Sim.RequestsFor(tokA)), sb.String())
			}
			var held accountView
			if c.long {
				// While held, the account shows it.
				waitFor(t, "A to show HELD", waitLong, func() bool {
					held = account(t, st, idA)
					return held.SyncStatus == "HELD"
				})
				if held.ThrottledUntil == nil || heldRun.FinishedAt == nil || !held.ThrottledUntil.After(*heldRun.FinishedAt) {
					t.Errorf("while held, throttledUntil = %v; the held pass ended at %v", held.ThrottledUntil, heldRun.FinishedAt)
				}
			}

			// A is synced again by itself once the hold is over; B was synced meanwhile.
			resumed := waitSynced(t, st, idA, start)
			b := waitRun(t, st, runB.ID)
			if b.Status != "SUCCEEDED" {
				t.Errorf("B's pass ended %s (%v), want SUCCEEDED", b.Status, deref(b.Error))
			}

			// A's request log: the throttled answers, then nothing until the hold's end.
			reqs := requestsSince(st.Sim, tokA, start)
			var throttled []applesim.Request
			for _, r := range reqs {
				if r.Status == c.status {
					throttled = append(throttled, r)
				}
			}
			if want := max(f.Count, 1); len(throttled) != want {
				t.Fatalf("%d answers with status %d in A's log, want %d:\n%s", len(throttled), c.status, want, logText(reqs))
			}
			var answered, end time.Time
			if c.holdEnd != nil {
				answered = throttled[len(throttled)-1].Time
				end = c.holdEnd(f, answered)
			} else {
				// Backoff: the hold Orchard recorded last (holds only grow), which follows the
				// last throttled answer before it. (A backoff shorter than the request itself
				// is over when the answer arrives; the client then retries at once.) It is read
				// from the database: the API shows no throttledUntil once the hold is over.
				acc, err := st.DB.AccountByID(context.Background(), dbID(t, idA))
				if err != nil {
					t.Fatal(err)
				}
				switch {
				case acc.ThrottledUntil != nil:
					end = *acc.ThrottledUntil
					for _, r := range throttled {
						if r.Time.Before(end) {
							answered = r.Time
						}
					}
				case backoffWithinPass:
					t.Logf("every backoff was over before its answer arrived; no hold reached the account:\n%s", logText(reqs))
					answered, end = throttled[len(throttled)-1].Time, throttled[len(throttled)-1].Time
				default:
					t.Fatal("no throttledUntil recorded for a backoff")
				}
			}
			// Orchard holds a little longer than Apple asked, never shorter: db.HoldMargin, and
			// the time Apple's answer took to arrive (a Retry-After in seconds counts from the
			// answer; the simulator logs it when it sends it, Orchard dates it when it gets it).
			if c.long && held.ThrottledUntil != nil && (held.ThrottledUntil.Before(end) || held.ThrottledUntil.After(end.Add(db.HoldMargin+500*time.Millisecond))) {
				t.Errorf("throttledUntil %v, Apple's hold ends at %v", held.ThrottledUntil, end)
			}
			if !f.RetryAfterDate.IsZero() && held.ThrottledUntil != nil && !held.ThrottledUntil.Equal(end.Add(db.HoldMargin)) {
				t.Errorf("throttledUntil = %v, want the Retry-After date %v (+ %s)", held.ThrottledUntil, end, db.HoldMargin)
			}
			for _, r := range reqs {
				if r.Time.After(answered) && r.Time.Before(end) {
					t.Errorf("request for A at %s, during the hold [%s, %s):\n%s", r.Time.Format(time.RFC3339Nano),
						answered.Format(time.RFC3339Nano), end.Format(time.RFC3339Nano), logText(reqs))
					break
				}
			}
			if resumed.StartedAt.Before(end) && !backoffWithinPass {
				t.Errorf("A's successful pass started at %v, before the hold ended at %v", resumed.StartedAt, end)
			}
			if after := requestsSince(st.Sim, tokA, end); len(after) == 0 {
				t.Errorf("no request for A after the hold")
			} else {
				t.Logf("hold ended %s after the throttled answer; A's next request came %s after its end", end.Sub(answered), after[0].Time.Sub(end))
			}
			// B carried on: its pass was not kept waiting by A's hold, and (with the longer
			// hold of the HTTP date, which leaves a loaded machine time enough) it was over
			// before A's hold was.
			if c.long && !b.StartedAt.Before(end) {
				t.Errorf("B's pass started at %v, after A's hold (until %v)", b.StartedAt, end)
			}
			if !f.RetryAfterDate.IsZero() && (b.FinishedAt == nil || !b.FinishedAt.Before(end)) {
				t.Errorf("B's pass finished at %v, not during A's hold (until %v)", b.FinishedAt, end)
			}
			// Every throttled pass is recorded as HELD, with Apple's answer.
			nHeld := 0
			for _, r := range runs(t, st, idA) {
				if r.Status == "HELD" && r.StartedAt.After(start) {
					nHeld++
					if !strings.Contains(deref(r.Error), fmt.Sprint(c.status)) {
						t.Errorf("HELD run's error %q does not name the answer %d", deref(r.Error), c.status)
					}
				}
			}
			if (nHeld < 1 && !backoffWithinPass) || nHeld > len(throttled) {
				var sb strings.Builder
				for _, r := range runs(t, st, idA) {
					fmt.Fprintf(&sb, "  %s %s %s %s %s %v\n", r.ID, r.Kind, r.Trigger, r.Status, r.StartedAt.Format("15:04:05.000000"), deref(r.Error))
				}
				t.Errorf("%d HELD runs of A for %d throttled answers; A's requests:\n%s runs:\n%s", nHeld, len(throttled), logText(reqs), sb.String())
			}
			// Afterwards A is as Apple has it, and its status is OK again.
			checkMatchesSim(t, st, idA, tokA)
			waitFor(t, "A's syncStatus OK", waitLong, func() bool { return account(t, st, idA).SyncStatus == "OK" })
		})
	})
}

func logText(reqs []applesim.Request) string {
	var sb strings.Builder
	for _, r := range reqs {
		fmt.Fprintf(&sb, "  %s %s %s %d %d\n", r.Time.Format("15:04:05.000000"), r.Method, r.Path, r.Status, r.ErrorNumber)
	}
	return sb.String()
}

// A hold the Apple client knows of and the database does not (its write failed, say) keeps
// passes off the account all the same: the pass asked for meanwhile is put off, not run to a
// HELD end that sent nothing; the hold is recorded; the pass runs once the hold is over.
func TestClientHoldPutsOffThePass(t *testing.T) {
	t.Parallel()
	onEngines(t, func(t *testing.T, d *db.DB) {
		st := newStack(t, d, gqltest.StackOptions{})
		g := st.Sim.Generate(applesim.GenSpec{Tokens: 1, AppsPerToken: 1, AssignmentsPerToken: 5, Seed: 22, Countries: []string{"US"}})
		id := addSynced(t, st, "A", g.TokenFiles[0])

		// Apple throttles a request of the client's own, outside any pass: the client holds
		// the token for 2 s; the database knows nothing of it.
		tok, err := apple.ParseToken([]byte(g.TokenFiles[0]), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		st.Sim.SetFault(g.TokenFiles[0], applesim.Fault{Kind: applesim.FaultUnavailable503, RetryAfterSeconds: 2, Count: 1})
		if _, err := st.Apple.ClientConfig(context.Background(), tok); !errors.Is(err, apple.ErrThrottled) {
			t.Fatalf("client config under the fault: %v, want a throttle", err)
		}
		until, held := st.Apple.HeldUntil(tok)
		if !held {
			t.Fatal("the client does not hold the token after Apple's 503")
		}

		start := time.Now()
		queued := syncAccount(t, st, id, "FULL")
		r := waitRun(t, st, queued.ID)
		if r.Status != "SUCCEEDED" {
			t.Fatalf("the pass asked for during the client's hold ended %s (%v), want SUCCEEDED", r.Status, deref(r.Error))
		}
		if r.StartedAt.Before(until) {
			t.Errorf("the pass started at %v, before the client's hold ended at %v", r.StartedAt, until)
		}
		for _, run := range runs(t, st, id) {
			if run.Status == "HELD" && run.StartedAt.After(start) {
				t.Errorf("a pass ran into the client's hold: %s %s %v", run.ID, run.Status, deref(run.Error))
			}
		}
		acc, err := st.DB.AccountByID(context.Background(), dbID(t, id))
		if err != nil {
			t.Fatal(err)
		}
		if acc.ThrottledUntil == nil || acc.ThrottledUntil.Before(until) {
			t.Errorf("the database's hold is %v, want the client's (%v) recorded", acc.ThrottledUntil, until)
		}
		for _, q := range requestsSince(st.Sim, g.TokenFiles[0], start) {
			if q.Time.Before(until) {
				t.Errorf("request for A at %s, during the client's hold (until %s)", q.Time.Format(time.RFC3339Nano), until.Format(time.RFC3339Nano))
			}
		}
		checkMatchesSim(t, st, id, g.TokenFiles[0])
	})
}

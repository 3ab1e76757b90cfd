package db_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
)

func outboxIDs(items []*model.OutboxItem) []int64 {
	return idsOf(items, func(it *model.OutboxItem) int64 { return it.ID })
}

// TestQueuedOutbox: only QUEUED items of the account whose time has come, oldest first, at
// most limit.
func TestQueuedOutbox(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		acc, other := seedAccount(t, d), seedAccount(t, d)
		now := db.Now()
		due1 := seedOutbox(t, d, acc, model.OutboxAssociate)
		delayed := seedOutbox(t, d, acc, model.OutboxAssociate, func(it *model.OutboxItem) { it.NotBefore = now.Add(time.Hour) })
		due2 := seedOutbox(t, d, acc, model.OutboxDisassociate, func(it *model.OutboxItem) { it.NotBefore = now })
		seedOutbox(t, d, acc, model.OutboxAssociate, func(it *model.OutboxItem) { it.Status = model.OutboxSent })
		seedOutbox(t, d, acc, model.OutboxAssociate, func(it *model.OutboxItem) { it.Status = model.OutboxDone })
		seedOutbox(t, d, other, model.OutboxAssociate)
		for _, tt := range []struct {
			name    string
			account int64
			at      time.Time
			limit   int
			want    []int64
		}{
			{"due items oldest first", acc.ID, now, 10, []int64{due1.ID, due2.ID}},
			{"limit", acc.ID, now, 1, []int64{due1.ID}},
			{"not yet due", acc.ID, now.Add(-time.Hour), 10, []int64{}},
			{"account without items", 0, now, 10, []int64{}},
			{"later, the delayed item too", acc.ID, now.Add(2 * time.Hour), 10, []int64{due1.ID, delayed.ID, due2.ID}},
		} {
			got, err := d.QueuedOutbox(ctx, tt.account, tt.at, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, outboxIDs(got)); diff != "" {
				t.Errorf("%s: mismatch (-want +got):\n%s", tt.name, diff)
			}
		}
	})
}

// TestAccountsWithWork: accounts with a due item, a due event poll, or an item a crash left
// claimed without an event; not those whose work waits.
func TestAccountsWithWork(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		now := db.Now()
		dueItem, later, duePoll, crashed, idle := seedAccount(t, d), seedAccount(t, d), seedAccount(t, d), seedAccount(t, d), seedAccount(t, d)
		seedOutbox(t, d, dueItem, model.OutboxAssociate)
		seedOutbox(t, d, dueItem, model.OutboxAssociate) // two items, one account
		seedOutbox(t, d, later, model.OutboxAssociate, func(it *model.OutboxItem) { it.NotBefore = now.Add(time.Hour) })
		mustDo(t, d.InsertRows(ctx, &model.AppleEvent{EventID: "ev-due", AccountID: duePoll.ID, Action: model.OutboxAssociate,
			Status: model.EventPending, Failures: "[]", SentAt: now.Add(-time.Minute), NextPollAt: now.Add(-time.Second)}))
		mustDo(t, d.InsertRows(ctx, &model.AppleEvent{EventID: "ev-later", AccountID: later.ID, Action: model.OutboxAssociate,
			Status: model.EventPending, Failures: "[]", SentAt: now, NextPollAt: now.Add(time.Hour)}))
		mustDo(t, d.InsertRows(ctx, &model.AppleEvent{EventID: "ev-done", AccountID: idle.ID, Action: model.OutboxAssociate,
			Status: model.EventComplete, Failures: "[]", SentAt: now, NextPollAt: now.Add(-time.Hour)}))
		seedOutbox(t, d, crashed, model.OutboxAssociate, func(it *model.OutboxItem) {
			it.Status, it.SentAt = model.OutboxSent, refOf(now.Add(-time.Minute))
		})
		seedOutbox(t, d, idle, model.OutboxAssociate, func(it *model.OutboxItem) { // just claimed: its worker is at it
			it.Status, it.SentAt = model.OutboxSent, refOf(now)
		})
		got, err := d.AccountsWithWork(ctx, now)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		got = slices.Compact(got)
		if diff := cmp.Diff([]int64{dueItem.ID, duePoll.ID, crashed.ID}, got); diff != "" {
			t.Errorf("accounts mismatch (-want +got):\n%s", diff)
		}
	})
}

// TestClaimOutbox: claiming marks QUEUED items SENT (one attempt, no event yet) and returns
// them; an item is claimed once, however many claim it at the same time.
func TestClaimOutbox(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		acc := seedAccount(t, d)
		a, b := seedOutbox(t, d, acc, model.OutboxAssociate), seedOutbox(t, d, acc, model.OutboxAssociate)
		failed := seedOutbox(t, d, acc, model.OutboxAssociate, func(it *model.OutboxItem) { it.Status = model.OutboxFailed })
		got, err := d.ClaimOutbox(ctx, []int64{a.ID, b.ID, failed.ID})
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		if diff := cmp.Diff([]int64{a.ID, b.ID}, got); diff != "" {
			t.Errorf("claimed mismatch (-want +got):\n%s", diff)
		}
		type row struct {
			Status   model.OutboxStatus
			Attempts int
			Event    bool
			Sent     bool
		}
		var rows []row
		for _, it := range outboxNow(t, d, a.ID, b.ID, failed.ID) {
			rows = append(rows, row{it.Status, it.Attempts, it.EventID != nil, it.SentAt != nil})
		}
		want := []row{{model.OutboxSent, 1, false, true}, {model.OutboxSent, 1, false, true}, {model.OutboxFailed, 0, false, false}}
		if diff := cmp.Diff(want, rows); diff != "" {
			t.Errorf("items mismatch (-want +got):\n%s", diff)
		}
		again, err := d.ClaimOutbox(ctx, []int64{a.ID, b.ID})
		if err != nil {
			t.Fatal(err)
		}
		if len(again) != 0 {
			t.Errorf("claimed twice: %v", again)
		}

		// Racing claims of the same items: each item goes to exactly one of them.
		var ids []int64
		for range 20 {
			ids = append(ids, seedOutbox(t, d, acc, model.OutboxAssociate).ID)
		}
		var mu sync.Mutex
		var all []int64
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got, err := d.ClaimOutbox(ctx, ids)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				all = append(all, got...)
				mu.Unlock()
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		slices.Sort(all)
		if diff := cmp.Diff(ids, all); diff != "" {
			t.Errorf("racing claims mismatch (-want +got):\n%s", diff)
		}
	})
}

// TestUnclaimOutbox: a claimed item whose request did not reach Apple is queued again and its
// attempt is not counted; an item whose event is recorded stays SENT.
func TestUnclaimOutbox(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		acc := seedAccount(t, d)
		a, b := seedOutbox(t, d, acc, model.OutboxAssociate), seedOutbox(t, d, acc, model.OutboxAssociate)
		if _, err := d.ClaimOutbox(ctx, []int64{a.ID, b.ID}); err != nil {
			t.Fatal(err)
		}
		mustDo(t, d.RecordSent(ctx, &model.AppleEvent{EventID: "ev-b", AccountID: acc.ID, Action: model.OutboxAssociate,
			Status: model.EventPending, SentAt: db.Now(), NextPollAt: db.Now()}, []int64{b.ID}))
		mustDo(t, d.UnclaimOutbox(ctx, nil))
		mustDo(t, d.UnclaimOutbox(ctx, []int64{a.ID, b.ID}))
		type row struct {
			Status   model.OutboxStatus
			Attempts int
		}
		var got []row
		for _, it := range outboxNow(t, d, a.ID, b.ID) {
			got = append(got, row{it.Status, it.Attempts})
		}
		if diff := cmp.Diff([]row{{model.OutboxQueued, 0}, {model.OutboxSent, 1}}, got); diff != "" {
			t.Errorf("items mismatch (-want +got):\n%s", diff)
		}
	})
}

// TestRecordSent: the event is stored (times in UTC, failures "[]") and the claimed items
// point at it; SentItemsOfEvent finds them, oldest first; an item not claimed is not linked.
func TestRecordSent(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		acc := seedAccount(t, d)
		a, b := seedOutbox(t, d, acc, model.OutboxAssociate), seedOutbox(t, d, acc, model.OutboxAssociate)
		queued := seedOutbox(t, d, acc, model.OutboxAssociate)
		if _, err := d.ClaimOutbox(ctx, []int64{a.ID, b.ID}); err != nil {
			t.Fatal(err)
		}
		paris := time.FixedZone("Paris", 3600)
		sent := db.Now().In(paris)
		mustDo(t, d.RecordSent(ctx, &model.AppleEvent{EventID: "ev-1", AccountID: acc.ID, Action: model.OutboxAssociate,
			Status: model.EventPending, NumRequested: 2, SentAt: sent, NextPollAt: sent.Add(time.Minute)}, []int64{b.ID, a.ID, queued.ID}))
		ev, err := d.AppleEvent(ctx, "ev-1")
		if err != nil {
			t.Fatal(err)
		}
		if !ev.SentAt.Equal(sent) || ev.Failures != "[]" || ev.NumRequested != 2 {
			t.Errorf("event read back as %+v", ev)
		}
		items, err := d.SentItemsOfEvent(ctx, "ev-1")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]int64{a.ID, b.ID}, outboxIDs(items)); diff != "" {
			t.Errorf("items of the event mismatch (-want +got):\n%s", diff)
		}
		if q := outboxNow(t, d, queued.ID)[0]; q.EventID != nil || q.Status != model.OutboxQueued {
			t.Errorf("an unclaimed item was linked: %+v", q)
		}
		none, err := d.SentItemsOfEvent(ctx, "ev-unknown")
		if err != nil || len(none) != 0 {
			t.Errorf("items of an unknown event: %v, %v", none, err)
		}
		// The same event id twice is refused (Apple's ids are unique), and nothing is linked.
		c := seedOutbox(t, d, acc, model.OutboxAssociate)
		if _, err := d.ClaimOutbox(ctx, []int64{c.ID}); err != nil {
			t.Fatal(err)
		}
		err = d.RecordSent(ctx, &model.AppleEvent{EventID: "ev-1", AccountID: acc.ID, Action: model.OutboxAssociate,
			Status: model.EventPending, SentAt: db.Now(), NextPollAt: db.Now()}, []int64{c.ID})
		if err == nil || !strings.HasPrefix(err.Error(), "record sent: ") {
			t.Errorf("a second event ev-1: %v", err)
		}
		if got := outboxNow(t, d, c.ID)[0]; got.EventID != nil {
			t.Errorf("item linked by a refused event: %+v", got)
		}
	})
}

// TestRequeueUnrecorded: items claimed before the cut that never got an event are queued
// again; recent ones, and those with an event, are left.
func TestRequeueUnrecorded(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		acc := seedAccount(t, d)
		now := db.Now()
		old := seedOutbox(t, d, acc, model.OutboxAssociate, func(it *model.OutboxItem) {
			it.Status, it.SentAt, it.Attempts = model.OutboxSent, refOf(now.Add(-time.Hour)), 1
		})
		recent := seedOutbox(t, d, acc, model.OutboxAssociate, func(it *model.OutboxItem) {
			it.Status, it.SentAt = model.OutboxSent, refOf(now)
		})
		recorded := seedOutbox(t, d, acc, model.OutboxAssociate, func(it *model.OutboxItem) {
			it.Status, it.SentAt, it.EventID = model.OutboxSent, refOf(now.Add(-time.Hour)), refOf("ev")
		})
		n, err := d.RequeueUnrecorded(ctx, acc.ID, now.Add(-time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("requeued %d, want 1", n)
		}
		var got []model.OutboxStatus
		for _, it := range outboxNow(t, d, old.ID, recent.ID, recorded.ID) {
			got = append(got, it.Status)
		}
		if diff := cmp.Diff([]model.OutboxStatus{model.OutboxQueued, model.OutboxSent, model.OutboxSent}, got); diff != "" {
			t.Errorf("statuses mismatch (-want +got):\n%s", diff)
		}
		if it := outboxNow(t, d, old.ID)[0]; it.Attempts != 1 || it.LastError == nil {
			t.Errorf("requeued item: attempts %d (want 1, kept), last error %v", it.Attempts, it.LastError)
		}
		if n, err := d.RequeueUnrecorded(ctx, acc.ID, now.Add(-time.Minute)); err != nil || n != 0 {
			t.Errorf("second requeue: %d, %v; want 0", n, err)
		}
	})
}

// TestRetryAndDelayOutbox: a retry queues again, counts an attempt, keeps the reason (cut to
// the column) and forgets the event; a delay moves the due time only.
func TestRetryAndDelayOutbox(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		acc := seedAccount(t, d)
		now := db.Now()
		a := seedOutbox(t, d, acc, model.OutboxAssociate, func(it *model.OutboxItem) {
			it.Status, it.EventID, it.Attempts = model.OutboxSent, refOf("ev"), 1
		})
		b := seedOutbox(t, d, acc, model.OutboxAssociate)
		mustDo(t, d.RetryOutbox(ctx, nil, now, "nothing"))
		mustDo(t, d.DelayOutbox(ctx, nil, now))
		mustDo(t, d.RetryOutbox(ctx, []int64{a.ID}, now.Add(time.Minute), strings.Repeat("é", 1200)))
		mustDo(t, d.DelayOutbox(ctx, []int64{b.ID}, now.Add(2*time.Minute)))
		got := outboxNow(t, d, a.ID, b.ID)
		ra, rb := got[0], got[1]
		if ra.Status != model.OutboxQueued || ra.Attempts != 2 || ra.EventID != nil || !ra.NotBefore.Equal(now.Add(time.Minute)) {
			t.Errorf("retried item: %+v", ra)
		}
		if ra.LastError == nil || len([]rune(*ra.LastError)) > 1000 || !strings.HasPrefix(*ra.LastError, "éé") {
			t.Errorf("retried item's reason not kept within 1000 characters: %d", len([]rune(*ra.LastError)))
		}
		if rb.Status != model.OutboxQueued || rb.Attempts != 0 || !rb.NotBefore.Equal(now.Add(2*time.Minute)) {
			t.Errorf("delayed item: %+v", rb)
		}
	})
}

// TestDueAndStalledEvents: DueEvents reads PENDING events whose poll is due, soonest first, at
// most limit; StalledEvents those sent before the cut.
func TestDueAndStalledEvents(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		acc, other := seedAccount(t, d), seedAccount(t, d)
		now := db.Now()
		ev := func(id string, acc *model.Account, st model.EventStatus, sent, poll time.Duration) {
			mustDo(t, d.InsertRows(ctx, &model.AppleEvent{EventID: id, AccountID: acc.ID, Action: model.OutboxAssociate, Status: st,
				Failures: "[]", SentAt: now.Add(sent), NextPollAt: now.Add(poll)}))
		}
		ev("late", acc, model.EventPending, -20*time.Minute, -time.Second)
		ev("early", acc, model.EventPending, -time.Minute, -time.Minute)
		ev("future", acc, model.EventPending, 0, time.Minute)
		ev("done", acc, model.EventComplete, -20*time.Minute, -time.Hour)
		ev("others", other, model.EventPending, -20*time.Minute, -time.Hour)
		evIDs := func(es []*model.AppleEvent) []string {
			out := []string{}
			for _, e := range es {
				out = append(out, e.EventID)
			}
			return out
		}
		for _, tt := range []struct {
			name  string
			limit int
			want  []string
		}{{"soonest poll first", 10, []string{"early", "late"}}, {"limit", 1, []string{"early"}}} {
			got, err := d.DueEvents(ctx, acc.ID, now, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, evIDs(got)); diff != "" {
				t.Errorf("due events, %s: mismatch (-want +got):\n%s", tt.name, diff)
			}
		}
		stalled, err := d.StalledEvents(ctx, acc.ID, now.Add(-10*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"late"}, evIDs(stalled)); diff != "" {
			t.Errorf("stalled events mismatch (-want +got):\n%s", diff)
		}
	})
}

// TestAppleEventAndUpdate: an event reads back; an unknown one is not found (named); updated
// times are stored in UTC.
func TestAppleEventAndUpdate(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		acc := seedAccount(t, d)
		now := db.Now()
		mustDo(t, d.InsertRows(ctx, &model.AppleEvent{EventID: "ev", AccountID: acc.ID, Action: model.OutboxAssociate,
			Status: model.EventPending, Failures: "[]", SentAt: now, NextPollAt: now}))
		_, err := d.AppleEvent(ctx, "nope")
		checkNotFoundNamed(t, "apple event", err)
		polled := now.Add(time.Minute).In(time.FixedZone("UTC-5", -5*3600))
		mustDo(t, d.UpdateAppleEvent(ctx, "ev", map[string]any{"status": model.EventComplete, "polled_at": polled, "num_completed": 3}))
		ev, err := d.AppleEvent(ctx, "ev")
		if err != nil {
			t.Fatal(err)
		}
		if ev.Status != model.EventComplete || ev.NumCompleted != 3 || ev.PolledAt == nil || !ev.PolledAt.Equal(polled) {
			t.Errorf("updated event: %+v", ev)
		}
	})
}

// TestRequeueEvent: the event fails with the reason as valid JSON (whatever characters it
// holds) and its SENT items are queued again without it; its completed items stay.
func TestRequeueEvent(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		acc := seedAccount(t, d)
		now := db.Now()
		mustDo(t, d.InsertRows(ctx, &model.AppleEvent{EventID: "ev", AccountID: acc.ID, Action: model.OutboxAssociate,
			Status: model.EventPending, Failures: "[]", SentAt: now, NextPollAt: now}))
		sent := seedOutbox(t, d, acc, model.OutboxAssociate, func(it *model.OutboxItem) { it.Status, it.EventID = model.OutboxSent, refOf("ev") })
		done := seedOutbox(t, d, acc, model.OutboxAssociate, func(it *model.OutboxItem) { it.Status, it.EventID = model.OutboxDone, refOf("ev") })
		why := `no answer after 10 minutes ("stalled") \ retrying`
		mustDo(t, d.RequeueEvent(ctx, "ev", why))
		ev, err := d.AppleEvent(ctx, "ev")
		if err != nil {
			t.Fatal(err)
		}
		var failures []struct{ ErrorMessage string }
		if err := json.Unmarshal([]byte(ev.Failures), &failures); err != nil {
			t.Fatalf("failures are not JSON: %v: %s", err, ev.Failures)
		}
		if diff := cmp.Diff([]struct{ ErrorMessage string }{{why}}, failures); diff != "" || ev.Status != model.EventFailed || ev.CompletedAt == nil {
			t.Errorf("event: status %s, failures mismatch (-want +got):\n%s", ev.Status, diff)
		}
		got := outboxNow(t, d, sent.ID, done.ID)
		if got[0].Status != model.OutboxQueued || got[0].EventID != nil || got[0].LastError == nil || *got[0].LastError != why {
			t.Errorf("sent item: %+v", got[0])
		}
		if got[1].Status != model.OutboxDone || got[1].EventID == nil {
			t.Errorf("done item changed: %+v", got[1])
		}
	})
}

// TestOutboxByIDsAndInsert: InsertOutbox stores items (none is no statement), OutboxByIDs
// reads them back (no ids, nothing).
func TestOutboxByIDsAndInsert(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		acc := seedAccount(t, d)
		mustDo(t, d.InsertOutbox(ctx))
		items := []*model.OutboxItem{
			{AccountID: acc.ID, Action: model.OutboxAssociate, AdamID: "1", PricingParam: "STDQ", Status: model.OutboxQueued, NotBefore: db.Now()},
			{AccountID: acc.ID, Action: model.OutboxCreateUser, Status: model.OutboxQueued, NotBefore: db.Now(), ClientUserID: refOf("cu")},
		}
		mustDo(t, d.InsertOutbox(ctx, items...))
		if items[0].ID == 0 || items[1].ID == 0 {
			t.Fatalf("ids not set: %d %d", items[0].ID, items[1].ID)
		}
		got, err := d.OutboxByIDs(ctx, []int64{items[1].ID, items[0].ID, items[1].ID + 1000})
		if err != nil {
			t.Fatal(err)
		}
		type row struct {
			Action model.OutboxAction
			Client *string
		}
		var rows []row
		for _, it := range got {
			rows = append(rows, row{it.Action, it.ClientUserID})
		}
		slices.SortFunc(rows, func(a, b row) int { return strings.Compare(string(a.Action), string(b.Action)) })
		if diff := cmp.Diff([]row{{model.OutboxAssociate, nil}, {model.OutboxCreateUser, refOf("cu")}}, rows); diff != "" {
			t.Errorf("items mismatch (-want +got):\n%s", diff)
		}
		none, err := d.OutboxByIDs(ctx, nil)
		if err != nil || len(none) != 0 {
			t.Errorf("no ids: %v, %v", none, err)
		}
	})
}

// TestUserForRegistration: the user of a registration item, by clientUserId; none is not
// found.
func TestUserForRegistration(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		u := seedUser(t, d)
		got, err := d.UserForRegistration(ctx, &model.OutboxItem{ClientUserID: &u.ClientUserID})
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != u.ID {
			t.Errorf("user %d, want %d", got.ID, u.ID)
		}
		_, err = d.UserForRegistration(ctx, &model.OutboxItem{ClientUserID: refOf("nobody")})
		checkNotFoundNamed(t, "user for registration", err)
	})
}

// TestReleaseOutbox: the queued items of the given assignments are due now; others wait.
func TestReleaseOutbox(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := seedAll(t, d)
		otherDev := seedDevice(t, d)
		other := seedDeviceAssignment(t, d, s.Pool, otherDev, model.AssignmentPending)
		later := db.Now().Add(time.Hour)
		wait := func(it *model.OutboxItem) { it.NotBefore = later }
		mine := seedOutbox(t, d, s.Account, model.OutboxAssociate, forAssignment(s.Assignment), wait)
		seedOutbox(t, d, s.Account, model.OutboxAssociate, forAssignment(other), wait)
		mustDo(t, d.ReleaseOutbox(ctx, nil))
		mustDo(t, d.ReleaseOutbox(ctx, []int64{s.Assignment.ID}))
		due, err := d.QueuedOutbox(ctx, s.Account.ID, db.Now(), 10)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]int64{mine.ID}, outboxIDs(due)); diff != "" {
			t.Errorf("due after release mismatch (-want +got):\n%s", diff)
		}
	})
}

// TestDropObsoleteOutbox: an associate is needed while its assignment is PENDING, a
// disassociate while RECLAIMING; the others are completed unsent and returned. Items of no
// assignment, and other actions, are left.
func TestDropObsoleteOutbox(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		acc := seedAccount(t, d)
		pool := seedPool(t, d, acc, seedApp(t, d))
		assignment := func(st model.AssignmentStatus, opts ...func(*model.LicenseAssignment)) *model.LicenseAssignment {
			return seedDeviceAssignment(t, d, pool, seedDevice(t, d), st, opts...)
		}
		asked := func(a *model.LicenseAssignment) { a.ReclaimReason = refOf("asked back") }
		pending, assigned := assignment(model.AssignmentPending), assignment(model.AssignmentAssigned)
		reclaiming, reclaimed := assignment(model.AssignmentReclaiming, asked), assignment(model.AssignmentReclaimed)
		keepAssoc := seedOutbox(t, d, acc, model.OutboxAssociate, forAssignment(pending))
		dropAssoc := seedOutbox(t, d, acc, model.OutboxAssociate, forAssignment(assigned))
		keepDis := seedOutbox(t, d, acc, model.OutboxDisassociate, forAssignment(reclaiming))
		dropDis := seedOutbox(t, d, acc, model.OutboxDisassociate, forAssignment(reclaimed))
		dropDisOfAssigned := seedOutbox(t, d, acc, model.OutboxDisassociate, forAssignment(assigned))
		register := seedOutbox(t, d, acc, model.OutboxCreateUser)
		all := []*model.OutboxItem{keepAssoc, dropAssoc, keepDis, dropDis, dropDisOfAssigned, register}
		none, err := d.DropObsoleteOutbox(ctx, []*model.OutboxItem{register})
		if err != nil || len(none) != 0 {
			t.Fatalf("items of no assignment: dropped %v, %v", none, err)
		}
		dropped, err := d.DropObsoleteOutbox(ctx, all)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]int64{dropAssoc.ID, dropDis.ID, dropDisOfAssigned.ID}, dropped); diff != "" {
			t.Errorf("dropped mismatch (-want +got):\n%s", diff)
		}
		var got []model.OutboxStatus
		for _, it := range outboxNow(t, d, outboxIDs(all)...) {
			got = append(got, it.Status)
		}
		want := []model.OutboxStatus{model.OutboxQueued, model.OutboxDone, model.OutboxQueued, model.OutboxDone, model.OutboxDone, model.OutboxQueued}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("statuses mismatch (-want +got):\n%s", diff)
		}
	})
}

// TestCancelQueuedAssociate: only an associate never attempted is cancelled (one queued again
// after an attempt may have reached Apple), and only once.
func TestCancelQueuedAssociate(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := seedAll(t, d)
		other := seedDeviceAssignment(t, d, s.Pool, seedDevice(t, d), model.AssignmentPending)
		fresh := seedOutbox(t, d, s.Account, model.OutboxAssociate, forAssignment(s.Assignment))
		seedOutbox(t, d, s.Account, model.OutboxAssociate, forAssignment(other), func(it *model.OutboxItem) { it.Attempts = 1 })
		for _, tt := range []struct {
			name       string
			assignment int64
			want       bool
		}{
			{"never attempted", s.Assignment.ID, true},
			{"again", s.Assignment.ID, false},
			{"attempted before", other.ID, false},
			{"no item", 0, false},
		} {
			got, err := d.CancelQueuedAssociate(ctx, tt.assignment)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("%s: cancelled %v, want %v", tt.name, got, tt.want)
			}
		}
		if it := outboxNow(t, d, fresh.ID)[0]; it.Status != model.OutboxFailed || it.CompletedAt == nil {
			t.Errorf("cancelled item: %+v", it)
		}
	})
}

// TestCancelAccountWork: the account's queued items fail; the assignment an associate was for
// fails and frees its reservation, the one a disassociate was for is ASSIGNED again; queued
// passes are dropped; items already sent, and other accounts' work, are left.
func TestCancelAccountWork(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		acc, other := seedAccount(t, d), seedAccount(t, d)
		pool := seedPool(t, d, acc, seedApp(t, d))
		pending := seedDeviceAssignment(t, d, pool, seedDevice(t, d), model.AssignmentPending)
		reclaiming := seedDeviceAssignment(t, d, pool, seedDevice(t, d), model.AssignmentReclaiming,
			func(a *model.LicenseAssignment) { a.ReclaimReason = refOf("asked back") })
		sentFor := seedDeviceAssignment(t, d, pool, seedDevice(t, d), model.AssignmentPending)
		seedPoolCounts(t, d, pool, 1, 2)
		assoc := seedOutbox(t, d, acc, model.OutboxAssociate, forAssignment(pending))
		dis := seedOutbox(t, d, acc, model.OutboxDisassociate, forAssignment(reclaiming))
		sent := seedOutbox(t, d, acc, model.OutboxAssociate, forAssignment(sentFor), func(it *model.OutboxItem) { it.Status = model.OutboxSent })
		theirs := seedOutbox(t, d, other, model.OutboxAssociate)
		mustDo(t, d.InsertSyncRun(ctx, &model.SyncRun{AccountID: acc.ID, Kind: model.SyncFull, Trigger: model.TriggerManual, Status: model.SyncRunQueued, StartedAt: db.Now()}))
		mustDo(t, d.InsertSyncRun(ctx, &model.SyncRun{AccountID: other.ID, Kind: model.SyncFull, Trigger: model.TriggerManual, Status: model.SyncRunQueued, StartedAt: db.Now()}))

		n, err := d.CancelAccountWork(ctx, acc.ID, "account removed")
		if err != nil {
			t.Fatal(err)
		}
		if n != 2 {
			t.Errorf("cancelled %d items, want 2", n)
		}
		var items []model.OutboxStatus
		for _, it := range outboxNow(t, d, assoc.ID, dis.ID, sent.ID, theirs.ID) {
			items = append(items, it.Status)
		}
		if diff := cmp.Diff([]model.OutboxStatus{model.OutboxFailed, model.OutboxFailed, model.OutboxSent, model.OutboxQueued}, items); diff != "" {
			t.Errorf("items mismatch (-want +got):\n%s", diff)
		}
		var statuses []model.AssignmentStatus
		for _, a := range []*model.LicenseAssignment{pending, reclaiming, sentFor} {
			statuses = append(statuses, assignmentNow(t, d, a.ID).Status)
		}
		if diff := cmp.Diff([]model.AssignmentStatus{model.AssignmentFailed, model.AssignmentAssigned, model.AssignmentPending}, statuses); diff != "" {
			t.Errorf("assignments mismatch (-want +got):\n%s", diff)
		}
		if got := poolCountersOf(t, d, pool.ID); got.Assigned != 1 || got.Reserved != 1 {
			t.Errorf("pool counters assigned %d reserved %d, want 1 and 1", got.Assigned, got.Reserved)
		}
		for _, tt := range []struct {
			account int64
			want    int
		}{{acc.ID, 0}, {other.ID, 1}} {
			if n, err := d.CountSyncRuns(ctx, db.SyncRunFilter{AccountID: tt.account, Status: model.SyncRunQueued}); err != nil || n != tt.want {
				t.Errorf("queued passes of account %d: %d, %v; want %d", tt.account, n, err, tt.want)
			}
		}
		// Nothing left to cancel.
		if n, err := d.CancelAccountWork(ctx, acc.ID, "again"); err != nil || n != 0 {
			t.Errorf("second cancel: %d, %v; want 0", n, err)
		}
	})
}

// TestApplyOutcomes: Apple's answers complete the items and move the assignments and the
// pool's counters (Orchard's and Apple's) once: a second delivery of the same outcomes (the
// poll after the notification) changes nothing.
func TestApplyOutcomes(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		acc := seedAccount(t, d)
		pool := seedPool(t, d, acc, seedApp(t, d), func(p *model.LicensePool) { p.AppleAvailableCount = 10 })
		other := seedPool(t, d, acc, seedApp(t, d), func(p *model.LicensePool) { p.AppleAssignedCount, p.AppleAvailableCount = 3, 7 })
		ok := seedDeviceAssignment(t, d, pool, seedDevice(t, d), model.AssignmentPending)
		refused := seedDeviceAssignment(t, d, pool, seedDevice(t, d), model.AssignmentPending)
		reclaimed := seedDeviceAssignment(t, d, other, seedDevice(t, d), model.AssignmentReclaiming,
			func(a *model.LicenseAssignment) { a.ReclaimReason = refOf("asked back") })
		seedPoolCounts(t, d, pool, 0, 2)
		seedPoolCounts(t, d, other, 1, 0)
		items := []*model.OutboxItem{
			seedOutbox(t, d, acc, model.OutboxAssociate, forAssignment(ok), func(it *model.OutboxItem) { it.Status = model.OutboxSent }),
			seedOutbox(t, d, acc, model.OutboxAssociate, forAssignment(refused), func(it *model.OutboxItem) { it.Status = model.OutboxSent }),
			seedOutbox(t, d, acc, model.OutboxDisassociate, forAssignment(reclaimed), func(it *model.OutboxItem) { it.Status = model.OutboxSent }),
		}
		outcomes := []db.Outcome{{Item: items[0], OK: true}, {Item: items[1], ErrorNumber: 9632, ErrorMessage: "no licenses left"}, {Item: items[2], OK: true}}
		if got, err := d.ApplyOutcomes(ctx, nil); err != nil || got != nil {
			t.Fatalf("no outcomes: %v, %v", got, err)
		}
		assigned, err := d.ApplyOutcomes(ctx, outcomes)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]int64{ok.ID}, assigned); diff != "" {
			t.Errorf("assigned mismatch (-want +got):\n%s", diff)
		}
		type state struct {
			Items       []model.OutboxStatus
			Assignments []model.AssignmentStatus
			Pools       []poolCounters
		}
		read := func() state {
			var s state
			for _, it := range outboxNow(t, d, outboxIDs(items)...) {
				s.Items = append(s.Items, it.Status)
			}
			for _, a := range []*model.LicenseAssignment{ok, refused, reclaimed} {
				s.Assignments = append(s.Assignments, assignmentNow(t, d, a.ID).Status)
			}
			s.Pools = []poolCounters{poolCountersOf(t, d, pool.ID), poolCountersOf(t, d, other.ID)}
			return s
		}
		want := state{
			Items:       []model.OutboxStatus{model.OutboxDone, model.OutboxFailed, model.OutboxDone},
			Assignments: []model.AssignmentStatus{model.AssignmentAssigned, model.AssignmentFailed, model.AssignmentReclaimed},
			// Apple now holds one license more of the first pool and one less of the other.
			Pools: []poolCounters{
				{Assigned: 1, Reserved: 0, AppleAssigned: 1, AppleAvailable: 9, Total: 10},
				{Assigned: 0, Reserved: 0, AppleAssigned: 2, AppleAvailable: 8, Total: 10},
			},
		}
		if diff := cmp.Diff(want, read()); diff != "" {
			t.Errorf("after the outcomes mismatch (-want +got):\n%s", diff)
		}
		if a := assignmentNow(t, d, refused.ID); a.ErrorNumber == nil || *a.ErrorNumber != 9632 {
			t.Errorf("refused assignment's error number: %v", a.ErrorNumber)
		}
		again, err := d.ApplyOutcomes(ctx, outcomes)
		if err != nil {
			t.Fatal(err)
		}
		if len(again) != 0 {
			t.Errorf("second delivery assigned %v", again)
		}
		if diff := cmp.Diff(want, read()); diff != "" {
			t.Errorf("after a second delivery mismatch (-want +got):\n%s", diff)
		}
	})
}

// TestOutboxErrorsNameTheOperation: each function's error says which store operation failed
// and still wraps the cause.
func TestOutboxErrorsNameTheOperation(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		acc := seedAccount(t, d)
		it := seedOutbox(t, d, acc, model.OutboxAssociate)
		ids := []int64{it.ID}
		now := db.Now()
		ev := func() *model.AppleEvent {
			return &model.AppleEvent{EventID: "e", AccountID: acc.ID, Action: model.OutboxAssociate, Status: model.EventPending, SentAt: now, NextPollAt: now}
		}
		checkErrorsNameOps(t, []namedOp{
			{"cancel work of account " + fmt.Sprint(acc.ID), func(ctx context.Context) error { _, err := d.CancelAccountWork(ctx, acc.ID, "x"); return err }},
			{"accounts with work", func(ctx context.Context) error { _, err := d.AccountsWithWork(ctx, now); return err }},
			{"queued outbox", func(ctx context.Context) error { _, err := d.QueuedOutbox(ctx, acc.ID, now, 1); return err }},
			{"record sent", func(ctx context.Context) error { return d.RecordSent(ctx, ev(), ids) }},
			{"claim outbox", func(ctx context.Context) error { _, err := d.ClaimOutbox(ctx, ids); return err }},
			{"unclaim outbox", func(ctx context.Context) error { return d.UnclaimOutbox(ctx, ids) }},
			{"requeue unrecorded", func(ctx context.Context) error { _, err := d.RequeueUnrecorded(ctx, acc.ID, now); return err }},
			{"retry outbox", func(ctx context.Context) error { return d.RetryOutbox(ctx, ids, now, "x") }},
			{"delay outbox", func(ctx context.Context) error { return d.DelayOutbox(ctx, ids, now) }},
			{"due events", func(ctx context.Context) error { _, err := d.DueEvents(ctx, acc.ID, now, 1); return err }},
			{"apple event", func(ctx context.Context) error { _, err := d.AppleEvent(ctx, "e"); return err }},
			{"update apple event", func(ctx context.Context) error { return d.UpdateAppleEvent(ctx, "e", map[string]any{"status": "X"}) }},
			{"sent items of event", func(ctx context.Context) error { _, err := d.SentItemsOfEvent(ctx, "e"); return err }},
			{"apply outcomes", func(ctx context.Context) error {
				_, err := d.ApplyOutcomes(ctx, []db.Outcome{{Item: it, OK: true}})
				return err
			}},
			{"stalled events", func(ctx context.Context) error { _, err := d.StalledEvents(ctx, acc.ID, now); return err }},
			{"requeue event", func(ctx context.Context) error { return d.RequeueEvent(ctx, "e", "x") }},
			{"outbox by ids", func(ctx context.Context) error { _, err := d.OutboxByIDs(ctx, ids); return err }},
			{"user for registration", func(ctx context.Context) error { _, err := d.UserForRegistration(ctx, it); return err }},
			{"release outbox", func(ctx context.Context) error { return d.ReleaseOutbox(ctx, ids) }},
			{"drop obsolete outbox", func(ctx context.Context) error {
				_, err := d.DropObsoleteOutbox(ctx, []*model.OutboxItem{{ID: 1, Action: model.OutboxAssociate, AssignmentID: refOf(int64(1))}})
				return err
			}},
			{"insert outbox", func(ctx context.Context) error {
				return d.InsertOutbox(ctx, &model.OutboxItem{AccountID: acc.ID, NotBefore: now})
			}},
			{"cancel queued associate", func(ctx context.Context) error { _, err := d.CancelQueuedAssociate(ctx, 1); return err }},
		})
	})
}

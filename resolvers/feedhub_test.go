package resolvers

import (
	"context"
	"fmt"
	"testing"
	"time"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/graph"
	"orchard/model"
)

// feedEstate writes an account, an app and its pool.
func feedEstate(t *testing.T, d *db.DB) (*model.Account, *model.LicensePool) {
	t.Helper()
	ctx := context.Background()
	now := db.Now()
	a := &model.Account{Name: "Main", OrgName: "Org", LocationName: "L", CountryCode: "US", AppleUID: "uid-feed",
		TokenCiphertext: []byte("sealed"), TokenExpiresAt: now.Add(time.Hour), Health: model.TokenHealthActive,
		HealthChangedAt: now, SyncStatus: model.SyncStatusNever}
	if err := d.InsertRows(ctx, []*model.Account{a}); err != nil {
		t.Fatal(err)
	}
	app := &model.App{AdamID: "9401", Kind: model.AppKindApp, Name: "App", BundleID: "com.example.feed", Platforms: "IOS"}
	if err := d.InsertRows(ctx, []*model.App{app}); err != nil {
		t.Fatal(err)
	}
	p := &model.LicensePool{AccountID: a.ID, AppID: app.ID, AdamID: app.AdamID, PricingParam: "STDQ", TotalCount: 100,
		DeviceAssignable: true, Revocable: true}
	if err := d.InsertRows(ctx, []*model.LicensePool{p}); err != nil {
		t.Fatal(err)
	}
	return a, p
}

// testHub is a feed hub that polls every 20 ms, with buffer events per subscriber.
func testHub(d *db.DB, buffer int) *feedHub {
	return newFeedHub(d, dbtest.Quiet(), feedOptions{interval: 20 * time.Millisecond, accounts: time.Second, buffer: buffer,
		overlap: time.Second, stuck: time.Second})
}

// insertAssignment writes an ASSIGNED device assignment changed (and created) at at, as a
// transaction that stamped it then would when it commits.
func insertAssignment(t *testing.T, d *db.DB, p *model.LicensePool, serial string, at time.Time) *model.LicenseAssignment {
	t.Helper()
	key := model.HolderKeyFor(model.LicenseKindDevice, serial, "")
	a := &model.LicenseAssignment{PoolID: p.ID, AccountID: p.AccountID, AppID: p.AppID, Kind: model.LicenseKindDevice,
		SerialNumber: &serial, HolderKey: &key, Status: model.AssignmentAssigned, Origin: model.OriginAdmin,
		Reason: "test", CausedBy: "test", AssignedAt: &at, CreatedAt: at, UpdatedAt: at}
	if err := d.InsertRows(context.Background(), []*model.LicenseAssignment{a}); err != nil {
		t.Fatal(err)
	}
	return a
}

// statuses lists a poll's assignment events as id:status.
func statuses(evs []feedEvent) []string {
	var out []string
	for _, e := range evs {
		if e.ev.Kind == graph.LicenseEventKindAssignment {
			out = append(out, fmt.Sprintf("%d:%s", e.ev.Assignment.ID, e.ev.Assignment.Status))
		}
	}
	return out
}

// A change that becomes visible after a later one was streamed, with an earlier updated_at
// (its transaction stamped it first and committed last), and a policy evaluation whose audit id
// is below one already streamed (MySQL allocates auto-increment ids before commit) are both
// streamed, once. Without the overlap the feed's position had passed them.
func TestFeedPollerLateCommits(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		_, pool := feedEstate(t, d)
		p := newFeedPoller(d, 2*time.Second, 100)
		if evs, err := p.poll(ctx, true); err != nil || len(evs) != 0 {
			t.Fatalf("first poll: %v, %v; want nothing", statuses(evs), err)
		}
		now := db.Now()
		first := insertAssignment(t, d, pool, "S1", now)
		evs, err := p.poll(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{fmt.Sprintf("%d:PENDING", first.ID), fmt.Sprintf("%d:ASSIGNED", first.ID)}
		if got := statuses(evs); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("after the first change: %v, want %v", got, want)
		}

		late := insertAssignment(t, d, pool, "S2", now.Add(-300*time.Millisecond))
		evs, err = p.poll(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		want = []string{fmt.Sprintf("%d:PENDING", late.ID), fmt.Sprintf("%d:ASSIGNED", late.ID)}
		if got := statuses(evs); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("after the late commit: %v, want %v (the first one not again)", got, want)
		}

		eval := func(id int64) {
			if err := d.InsertAudit(ctx, &model.AuditEvent{ID: id, ActorKind: model.ActorRule, ActorName: "policy",
				Action: "policy.evaluate", SubjectType: "Label", Message: "assigned 1"}); err != nil {
				t.Fatal(err)
			}
		}
		evals := func() []int64 {
			t.Helper()
			evs, err := p.poll(ctx, false)
			if err != nil {
				t.Fatal(err)
			}
			var ids []int64
			for _, e := range evs {
				if e.ev.Kind == graph.LicenseEventKindLabelEvaluation {
					ids = append(ids, e.ev.LabelEvaluation.ID)
				}
			}
			return ids
		}
		eval(1_000_000)
		if got := evals(); fmt.Sprint(got) != "[1000000]" {
			t.Fatalf("evaluation: %v, want [1000000]", got)
		}
		eval(999_999)
		if got := evals(); fmt.Sprint(got) != "[999999]" {
			t.Errorf("evaluation committed late with a lower id: %v, want [999999]", got)
		}
		if evs, err := p.poll(ctx, false); err != nil || len(evs) != 0 {
			t.Errorf("a poll with no change: %v (%d events), %v; want nothing", statuses(evs), len(evs), err)
		}
	})
}

// One subscriber that never reads is dropped when its buffer is full; the others, filtered
// by account or app or not at all, get every event of theirs, and one of another account
// none.
func TestFeedHubDropsSlowSubscriber(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		acct, pool := feedEstate(t, d)
		h := testHub(d, 8)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		slow, err := h.subscribe(ctx, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		readers := map[string]<-chan *graph.LicenseEvent{}
		for name, f := range map[string][2]int64{"all": {0, 0}, "account": {acct.ID, 0}, "app": {0, pool.AppID}, "other": {acct.ID + 1000, 0}} {
			if readers[name], err = h.subscribe(ctx, f[0], f[1]); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(50 * time.Millisecond) // the subscriptions' start is before the changes
		got := map[string]int{}
		done := make(chan struct{})
		const changes = 20
		go func() {
			defer close(done)
			deadline := time.After(30 * time.Second)
			for got["all"] < 2*changes || got["account"] < 2*changes || got["app"] < 2*changes {
				select {
				case <-readers["all"]:
					got["all"]++
				case <-readers["account"]:
					got["account"]++
				case <-readers["app"]:
					got["app"]++
				case <-readers["other"]:
					got["other"]++
				case <-deadline:
					return
				}
			}
		}()
		for i := range changes { // one at a time: no poll brings more than a reader's buffer
			insertAssignment(t, d, pool, fmt.Sprintf("H%d", i), db.Now())
			time.Sleep(25 * time.Millisecond)
		}
		<-done
		for _, name := range []string{"all", "account", "app"} {
			if got[name] != 2*changes { // PENDING and ASSIGNED of each
				t.Errorf("subscriber %q got %d events, want %d", name, got[name], 2*changes)
			}
		}
		if got["other"] != 0 {
			t.Errorf("a subscriber of another account got %d events", got["other"])
		}
		h.mu.Lock()
		n := len(h.subs)
		h.mu.Unlock()
		if n != 4 {
			t.Errorf("%d subscribers left, want 4 (the slow one dropped)", n)
		}
		if len(slow) != 8 {
			t.Errorf("the slow subscriber holds %d events, want its buffer's 8", len(slow))
		}
		// Its channel is closed behind what it holds: a transport waiting on it ends the
		// subscription (with SUBSCRIBER_TOO_SLOW) instead of waiting for more.
		for range len(slow) {
			<-slow
		}
		select {
		case ev, ok := <-slow:
			if ok {
				t.Errorf("the dropped subscriber's channel gave %+v after its buffer, want it closed", ev)
			}
		case <-time.After(5 * time.Second):
			t.Error("the dropped subscriber's channel is still open")
		}
	})
}

// A burst beyond a subscriber's channel (feedChannel) and within its buffer waits in its
// backlog and reaches it whole and in order, without a drop; an idle subscriber holds no
// backlog.
func TestFeedHubBacklogKeepsABurst(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		_, pool := feedEstate(t, d)
		const n = 150 // two events each (PENDING, then ASSIGNED): 300, over 64 and under 400
		h := testHub(d, 400)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		ch, err := h.subscribe(ctx, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
		now := db.Now()
		rows := make([]*model.LicenseAssignment, n)
		for i := range rows {
			serial := fmt.Sprintf("B%03d", i)
			key := model.HolderKeyFor(model.LicenseKindDevice, serial, "")
			rows[i] = &model.LicenseAssignment{PoolID: pool.ID, AccountID: pool.AccountID, AppID: pool.AppID, Kind: model.LicenseKindDevice,
				SerialNumber: &serial, HolderKey: &key, Status: model.AssignmentAssigned, Origin: model.OriginAdmin,
				Reason: "test", CausedBy: "test", AssignedAt: &now, CreatedAt: now, UpdatedAt: now}
		}
		if err := d.InsertRows(ctx, rows); err != nil {
			t.Fatal(err)
		}
		// Nobody reads until the polls have brought the burst: the channel is full, the rest waits.
		deadline := time.Now().Add(10 * time.Second)
		for len(ch) < feedChannel && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond)
		h.mu.Lock()
		backlogged := len(h.backlogged) == 1
		h.mu.Unlock()
		if len(ch) != feedChannel || !backlogged {
			t.Fatalf("after the burst the channel holds %d events (backlog: %v), want %d and a backlog", len(ch), backlogged, feedChannel)
		}
		pending := map[int64]bool{}
		var last int64
		for i := range 2 * n {
			var ev *graph.LicenseEvent
			select {
			case ev = <-ch:
			case <-time.After(10 * time.Second):
				t.Fatalf("%d events of %d arrived", i, 2*n)
			}
			if ev == nil {
				t.Fatalf("the channel closed after %d events: the subscriber was dropped", i)
			}
			a := ev.Assignment
			switch a.Status {
			case model.AssignmentPending:
				pending[a.ID] = true
			case model.AssignmentAssigned:
				if !pending[a.ID] || a.ID < last {
					t.Fatalf("event %d: assignment %d ASSIGNED out of order (PENDING seen: %v, last ASSIGNED %d)", i, a.ID, pending[a.ID], last)
				}
				last = a.ID
			}
		}
		h.mu.Lock()
		nb, ns := len(h.backlogged), len(h.subs)
		h.mu.Unlock()
		if nb != 0 || ns != 1 {
			t.Errorf("after the burst was read: %d backlogged, %d subscribers; want 0 and 1", nb, ns)
		}
	})
}

// While the hub polls, a subscriber's start comes from the last poll's clock, with no statement
// of its own, and is not after the database's clock; a change after it reaches it.
func TestFeedHubSubscribeReadsNoClock(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		_, pool := feedEstate(t, d)
		h := testHub(d, 8)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if _, err := h.subscribe(ctx, 0, 0); err != nil { // the first one starts the hub
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, ok := h.clockNow(); ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the hub has no clock after its polls")
			}
			time.Sleep(10 * time.Millisecond)
		}
		var stmts db.StatementCounter
		ch, err := h.subscribe(db.WithStatementCounter(ctx, &stmts), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if n := stmts.Count(); n != 0 {
			t.Errorf("a subscription while the hub polls issued %d statements, want 0", n)
		}
		dbNow, err := d.ClockNow(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		h.mu.Lock()
		var start time.Time
		for s := range h.subs {
			if s.out == ch {
				start = s.start
			}
		}
		h.mu.Unlock()
		if start.IsZero() || start.After(dbNow) || dbNow.Sub(start) > time.Second {
			t.Errorf("the subscriber starts at %v; the database's clock read after it is %v", start, dbNow)
		}
		a := insertAssignment(t, d, pool, "AFTER1", db.Now())
		select {
		case ev := <-ch:
			if ev.Assignment == nil || ev.Assignment.ID != a.ID {
				t.Errorf("first event %+v, want assignment %d", ev, a.ID)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the change after the subscription did not reach it")
		}
	})
}

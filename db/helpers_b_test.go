package db_test

// Fixtures of the outbox, sync, notification and settings tests (helpers_test.go holds the
// shared ones: accounts, apps, pools, users, devices, assignments).

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"orchard/db"
	"orchard/model"
)

// seedOutbox queues one outbox item of account, due now, through InsertOutbox; opts change
// it before it is stored.
func seedOutbox(t testing.TB, d *db.DB, account *model.Account, action model.OutboxAction, opts ...func(*model.OutboxItem)) *model.OutboxItem {
	t.Helper()
	it := &model.OutboxItem{AccountID: account.ID, Action: action, AdamID: "1", PricingParam: "STDQ",
		Status: model.OutboxQueued, NotBefore: db.Now().Add(-time.Second)}
	for _, o := range opts {
		o(it)
	}
	if err := d.InsertOutbox(context.Background(), it); err != nil {
		t.Fatalf("seed outbox item: %v", err)
	}
	return it
}

// forAssignment makes an outbox item one for assignment a.
func forAssignment(a *model.LicenseAssignment) func(*model.OutboxItem) {
	return func(it *model.OutboxItem) {
		it.AssignmentID = &a.ID
		it.SerialNumber = a.SerialNumber
		it.ClientUserID = a.ClientUserID
	}
}

// outboxNow reads outbox items back by id, in the order of ids.
func outboxNow(t testing.TB, d *db.DB, ids ...int64) []*model.OutboxItem {
	t.Helper()
	got, err := d.OutboxByIDs(context.Background(), ids)
	if err != nil {
		t.Fatalf("read outbox: %v", err)
	}
	byID := map[int64]*model.OutboxItem{}
	for _, it := range got {
		byID[it.ID] = it
	}
	out := make([]*model.OutboxItem, len(ids))
	for i, id := range ids {
		if out[i] = byID[id]; out[i] == nil {
			t.Fatalf("outbox item %d is gone", id)
		}
	}
	return out
}

// assignmentNow reads one assignment back.
func assignmentNow(t testing.TB, d *db.DB, id int64) *model.LicenseAssignment {
	t.Helper()
	a, err := d.AssignmentByID(context.Background(), id)
	if err != nil {
		t.Fatalf("read assignment %d: %v", id, err)
	}
	return a
}

// poolCounters are a pool's counters as a test compares them.
type poolCounters struct{ Assigned, Reserved, AppleAssigned, AppleAvailable, Total, Retired int64 }

// poolCountersOf reads a pool's counters back.
func poolCountersOf(t testing.TB, d *db.DB, id int64) poolCounters {
	t.Helper()
	p, err := d.PoolByID(context.Background(), id)
	if err != nil {
		t.Fatalf("read pool %d: %v", id, err)
	}
	return poolCounters{p.AssignedCount, p.ReservedCount, p.AppleAssignedCount, p.AppleAvailableCount, p.TotalCount, p.RetiredCount}
}

// cancelled is a context that has ended: every statement run with it fails, which is how the
// tests make a store function fail on both engines.
func endedCtx() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// namedOp is one store call made to fail (with a cancelled context) and the operation its
// error must name.
type namedOp struct {
	op   string
	call func(ctx context.Context) error
}

// checkErrorsNameOps runs each call with a cancelled context and checks that its error begins
// with the operation's name and still wraps the context's error (wrap keeps %w), so that a
// logged error says which query failed and callers can still test it with errors.Is.
func checkErrorsNameOps(t *testing.T, cases []namedOp) {
	t.Helper()
	for _, c := range cases {
		err := c.call(endedCtx())
		switch {
		case err == nil:
			t.Errorf("%s: no error with a cancelled context", c.op)
		case !strings.HasPrefix(err.Error(), c.op+": "):
			t.Errorf("%s: error does not name the operation: %v", c.op, err)
		case !errors.Is(err, context.Canceled):
			t.Errorf("%s: error does not wrap context.Canceled: %v", c.op, err)
		}
	}
}

// checkNotFoundNamed checks that err is the not-found sentinel, wrapped with the operation.
func checkNotFoundNamed(t *testing.T, op string, err error) {
	t.Helper()
	if !errors.Is(err, model.ErrNotFound) {
		t.Errorf("%s: got %v, want model.ErrNotFound", op, err)
		return
	}
	if !strings.HasPrefix(err.Error(), op+": ") {
		t.Errorf("%s: not-found error does not name the operation: %v", op, err)
	}
}

func refOf[T any](v T) *T { return &v }

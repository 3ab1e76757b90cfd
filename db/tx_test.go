package db_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
)

// TestConcurrentTransactions: transactions that read then write, racing each other and
// statements outside any transaction, all succeed. (On SQLite this needs transactions to take
// the write lock at BEGIN: a deferred one fails with SQLITE_BUSY_SNAPSHOT when another writer
// commits between its read and its write.)
func TestConcurrentTransactions(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 25 {
					err := d.Tx(ctx, func(tx *db.DB) error {
						if _, err := tx.ListLiveAccounts(ctx); err != nil {
							return fmt.Errorf("read: %w", err)
						}
						if err := tx.InsertAudit(ctx, &model.AuditEvent{ActorKind: model.ActorSystem, Action: "test"}); err != nil {
							return fmt.Errorf("write: %w", err)
						}
						return nil
					})
					if err != nil {
						errs <- err
						return
					}
					if _, err := d.ListLiveAccounts(ctx); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		n, err := d.CountAuditEvents(ctx, db.AuditFilter{Action: "test"})
		if err != nil || n != 200 {
			t.Fatalf("audit events = %d, %v; want 200", n, err)
		}
	})
}

// TestWritersQueue: while a transaction writes, another writer of the same process waits for
// it — in a transaction or not — and one whose context ends stops waiting with the context's
// error (on SQLite it waits in Orchard's write queue, not in SQLite's busy handler, which
// would hold it for the whole busy timeout). Once the transaction ends, the writes go through.
func TestWritersQueue(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		audit := func(ctx context.Context, q *db.DB, action string) error {
			return q.InsertAudit(ctx, &model.AuditEvent{ActorKind: model.ActorSystem, Action: action})
		}
		holding, release, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
		go func() {
			done <- d.Tx(ctx, func(tx *db.DB) error {
				if err := audit(ctx, tx, "holder"); err != nil {
					return err
				}
				close(holding)
				<-release
				return nil
			})
		}()
		<-holding
		if d.Dialect() == db.SQLite {
			// Only SQLite lets one writer at a time: MySQL's writers of other rows go on.
			for name, write := range map[string]func(context.Context) error{
				"transaction": func(ctx context.Context) error {
					return d.Tx(ctx, func(tx *db.DB) error { return audit(ctx, tx, "waiter") })
				},
				"statement": func(ctx context.Context) error { return audit(ctx, d, "waiter") },
			} {
				wctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
				err := write(wctx)
				cancel()
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("%s while another transaction writes: %v, want the context's deadline", name, err)
				}
			}
		}
		after := make(chan error, 1)
		go func() { after <- audit(ctx, d, "after") }()
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if err := <-after; err != nil {
			t.Fatal(err)
		}
		for action, want := range map[string]int{"holder": 1, "waiter": 0, "after": 1} {
			if n, err := d.CountAuditEvents(ctx, db.AuditFilter{Action: action}); err != nil || n != want {
				t.Errorf("%s audit events = %d, %v; want %d", action, n, err, want)
			}
		}
	})
}

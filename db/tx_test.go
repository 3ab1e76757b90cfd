package db_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

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

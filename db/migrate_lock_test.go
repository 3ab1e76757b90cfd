package db_test

import (
	"context"
	"testing"
	"time"

	"orchard/db"
	"orchard/db/dbtest"
)

// A process killed while it held the migration lock leaves the lock row behind (for
// staleLockAfter, 10 minutes). A start with nothing to migrate must not wait for it: every
// start runs Migrate, and the crash test kills starts at random moments.
func TestMigrateIgnoresADeadHoldersLockWhenNothingIsPending(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		if err := d.ExecAdmin(ctx, "INSERT INTO schema_migrations_lock (id, holder, acquired_at) VALUES (1, 'dead/1/1', '"+
			db.Now().Format("2006-01-02 15:04:05")+"')"); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		applied, err := d.Migrate(ctx)
		if err != nil || len(applied) != 0 {
			t.Fatalf("Migrate = %v, %v; want nothing applied and no wait for the lock", applied, err)
		}
	})
}

package db_test

import (
	"context"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"orchard/db"
	"orchard/db/dbtest"
)

// TestColumnsAndTables: a table's columns with their nullability (a primary key is never
// nullable), read from the engine's catalogue; an unknown table has none; the table list
// holds Orchard's tables and not the engine's own.
func TestColumnsAndTables(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		for _, tt := range []struct {
			table string
			want  map[string]bool
		}{
			{"settings", map[string]bool{"name": false, "value": false, "updated_at": false}},
			{"apple_notifications", map[string]bool{"notification_id": false, "account_id": false, "type": false, "received_at": false, "applied_at": true}},
			{"no_such_table", map[string]bool{}},
		} {
			got, err := d.Columns(ctx, tt.table)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("columns of %s: mismatch (-want +got):\n%s", tt.table, diff)
			}
		}
		tables, err := d.Tables(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"settings", "apple_outbox", "license_pools", "sync_runs", "schema_migrations"} {
			if !slices.Contains(tables, want) {
				t.Errorf("tables lack %s: %v", want, tables)
			}
		}
		for _, tb := range tables {
			if len(tb) > 7 && tb[:7] == "sqlite_" {
				t.Errorf("tables list the engine's own %s", tb)
			}
		}
		checkErrorsNameOps(t, []namedOp{
			{"columns", func(ctx context.Context) error { _, err := d.Columns(ctx, "settings"); return err }},
			{"tables", func(ctx context.Context) error { _, err := d.Tables(ctx); return err }},
		})
	})
}

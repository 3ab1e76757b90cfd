package db_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"orchard/db"
	"orchard/db/dbtest"
)

// TestSplitStatements: a migration file splits at semicolons that end a line; comment-only
// and blank lines go; a semicolon inside a line does not split; a last statement without a
// semicolon is kept.
func TestSplitStatements(t *testing.T) {
	for _, tt := range []struct {
		name, src string
		want      []string
	}{
		{"empty", "", nil},
		{"only comments", "-- a\n  -- b\n\n", nil},
		{"two statements", "CREATE TABLE a (x INT);\nCREATE TABLE b (y INT);\n", []string{"CREATE TABLE a (x INT)", "CREATE TABLE b (y INT)"}},
		{"over lines, comments dropped", "-- the table\nCREATE TABLE a (\n  x INT, -- not a comment line\n  y INT\n);\n",
			[]string{"CREATE TABLE a (\n  x INT, -- not a comment line\n  y INT\n)"}},
		{"semicolon inside a line", "INSERT INTO t VALUES ('a;b');\n", []string{"INSERT INTO t VALUES ('a;b')"}},
		{"no final semicolon", "SELECT 1;\nSELECT 2", []string{"SELECT 1", "SELECT 2"}},
		{"trailing spaces", "SELECT 1;   \n", []string{"SELECT 1"}},
	} {
		if diff := cmp.Diff(tt.want, db.SplitStatements(tt.src)); diff != "" {
			t.Errorf("%s: mismatch (-want +got):\n%s", tt.name, diff)
		}
	}
}

// TestMigrationsAreNumbered: each engine's migrations are numbered 1, 2, 3… and checksummed.
func TestMigrationsAreNumbered(t *testing.T) {
	for _, dialect := range []db.Dialect{db.SQLite, db.MySQL} {
		ms, err := db.Migrations(dialect)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) == 0 {
			t.Fatalf("%s: no migrations", dialect)
		}
		for i, m := range ms {
			if m.Version != i+1 || m.Name == "" || len(m.Checksum) != 64 || strings.TrimSpace(m.SQL) == "" {
				t.Errorf("%s: migration %d: version %d, name %q, checksum %q", dialect, i+1, m.Version, m.Name, m.Checksum)
			}
		}
	}
	if _, err := db.Migrations(db.Dialect("oracle")); err == nil || !strings.HasPrefix(err.Error(), "read embedded migrations: ") {
		t.Errorf("an engine without migrations: %v", err)
	}
}

// TestMigrateIsCurrent: a migrated database is current, and migrating it again applies
// nothing; the errors of both name the operation.
func TestMigrateIsCurrent(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		st, err := d.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !st.Current() || st.Applied == 0 {
			t.Errorf("status after migrating: %+v", st)
		}
		done, err := d.Migrate(ctx)
		if err != nil || len(done) != 0 {
			t.Errorf("second migrate applied %v, %v", done, err)
		}
		checkErrorsNameOps(t, []namedOp{
			{"prepare migrations table", func(ctx context.Context) error { _, err := d.Migrate(ctx); return err }},
			{"read schema_migrations", func(ctx context.Context) error { _, err := d.Status(ctx); return err }},
		})
	})
}

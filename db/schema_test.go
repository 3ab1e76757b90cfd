package db_test

import (
	"context"
	"reflect"
	"sort"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gorm.io/gorm/schema"

	"orchard/db"
	"orchard/db/dbtest"
)

// TestSchemaMatchesModels fails when a model and the migrated schema of an engine disagree:
// a column missing on either side, a nullable column behind a non-pointer field (a NULL would
// fail to scan) or a NOT NULL column behind a pointer, or a table without a model.
func TestSchemaMatchesModels(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		tables := map[string]bool{}
		for _, m := range db.Models() {
			s, err := schema.Parse(m, &sync.Map{}, schema.NamingStrategy{})
			if err != nil {
				t.Fatal(err)
			}
			tables[s.Table] = true
			cols, err := d.Columns(ctx, s.Table)
			if err != nil {
				t.Fatalf("%s: %v", s.Table, err)
			}
			want := map[string]bool{} // column -> nullable
			for _, f := range s.Fields {
				if f.DBName == "" {
					continue
				}
				switch f.FieldType.Kind() {
				case reflect.Pointer:
					want[f.DBName] = true
				case reflect.Slice: // []byte scans NULL as nil: either is fine
					want[f.DBName] = cols[f.DBName]
				default:
					want[f.DBName] = false
				}
			}
			if diff := cmp.Diff(want, cols); diff != "" {
				t.Errorf("table %s: columns mismatch (-model +database; value = nullable):\n%s", s.Table, diff)
			}
		}
		all, err := d.Tables(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var orphans []string
		for _, name := range all {
			if !tables[name] && name != "schema_migrations" && name != "schema_migrations_lock" {
				orphans = append(orphans, name)
			}
		}
		sort.Strings(orphans)
		if len(orphans) > 0 {
			t.Errorf("tables without a model: %v", orphans)
		}
	})
}

// TestMigrateTwiceAndConcurrently checks that migrating is idempotent and that replicas
// starting together apply each migration once.
func TestMigrateTwiceAndConcurrently(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				applied, err := d.Migrate(ctx)
				if err == nil && len(applied) > 0 {
					t.Errorf("a second migrate applied %v again", applied)
				}
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		st, err := d.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !st.Current() || st.Applied == 0 {
			t.Fatalf("status = %+v, want current", st)
		}
	})
}

// TestMigrationsMirrorEachOther keeps the engines' migration folders in step.
func TestMigrationsMirrorEachOther(t *testing.T) {
	my, err := db.Migrations(db.MySQL)
	if err != nil {
		t.Fatal(err)
	}
	lite, err := db.Migrations(db.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	names := func(ms []db.Migration) []string {
		var out []string
		for _, m := range ms {
			out = append(out, m.Name)
		}
		return out
	}
	if diff := cmp.Diff(names(my), names(lite)); diff != "" {
		t.Errorf("migration names mismatch (-mysql +sqlite):\n%s", diff)
	}
}

package db_test

import (
	"reflect"
	"testing"
	"time"

	"orchard/db"
	"orchard/db/dbtest"
)

// TestInsertRowsStoresWhatABindStores inserts one row through insertRows (on SQLite its values
// travel as JSON: sqlitejson.go) and the same values through placeholders, and reads both back:
// every column has the same value and, on SQLite, the same storage class — integers, reals,
// text, booleans, times in the driver's layout, NULLs, and pointers to them.
func TestInsertRowsStoresWhatABindStores(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		if _, err := d.SQL().Exec("CREATE TABLE json_parity (tag VARCHAR(10) NOT NULL, i BIGINT NULL, big BIGINT NULL, f DOUBLE NULL, s VARCHAR(100) NULL, quoted VARCHAR(100) NULL, b BOOLEAN NULL, ts DATETIME(6) NULL, np VARCHAR(10) NULL, ip BIGINT NULL, tp DATETIME(6) NULL)"); err != nil {
			t.Fatal(err)
		}
		now := db.Now()
		s, n := "pointed", int64(-7)
		var nilTime *time.Time
		vals := []any{int64(42), int64(1) << 62, 2.5, "héllo", `a "quoted" \ back\slash` + "\n\t\u2028", true, now, &s, &n, nilTime}
		cols := []string{"tag", "i", "big", "f", "s", "quoted", "b", "ts", "np", "ip", "tp"}
		if _, err := d.InsertValues(bg(), "json_parity", cols, [][]any{append([]any{"rows"}, vals...)}, false); err != nil {
			t.Fatal(err)
		}
		if _, err := d.SQL().Exec("INSERT INTO json_parity (tag, i, big, f, s, quoted, b, ts, np, ip, tp) VALUES ('bound', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", vals...); err != nil {
			t.Fatal(err)
		}
		read := func(tag string) []any {
			t.Helper()
			q := "SELECT i, big, f, s, quoted, b, ts, np, ip, tp FROM json_parity WHERE tag = ?"
			if d.Dialect() == db.SQLite {
				q = "SELECT i, big, f, s, quoted, b, ts, np, ip, tp, typeof(i), typeof(f), typeof(s), typeof(b), typeof(ts), typeof(tp) FROM json_parity WHERE tag = ?"
			}
			rows, err := d.SQL().Query(q, tag)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			cs, _ := rows.Columns()
			out := make([]any, len(cs))
			ptrs := make([]any, len(cs))
			for i := range out {
				ptrs[i] = &out[i]
			}
			if !rows.Next() {
				t.Fatalf("no row %q", tag)
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			return out
		}
		if got, want := read("rows"), read("bound"); !reflect.DeepEqual(got, want) {
			t.Errorf("read back after insertRows:\n %#v\nafter a bind:\n %#v", got, want)
		}
	})
}

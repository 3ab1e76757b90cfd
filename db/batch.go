package db

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"gorm.io/gorm"
)

// sqliteParamsPerInsert bounds the parameters of one multi-row INSERT on SQLite: its driver
// (glebarez/go-sqlite) binds a statement's parameters in time quadratic in their number (each
// parameter is looked up among all the arguments), so 500 rows of 20 columns (10,000
// parameters) cost some 50 million comparisons per statement, where 25 rows cost 125,000.
// SQLite being in process, more statements cost little. MySQL's driver interpolates: 500 rows.
const sqliteParamsPerInsert = 500

// inChunk is the number of values per IN list in the statements of a sync pass, whose batches
// run to thousands of rows (fewer on SQLite: see sqliteParamsPerInsert).
func (d *DB) inChunk() int {
	if d.dialect == SQLite {
		return 250
	}
	return 1000
}

// batchOf is the number of rows per INSERT for rows (a slice of models) on this engine.
func (d *DB) batchOf(rows any) int {
	if d.dialect != SQLite {
		return 500
	}
	st := &gorm.Statement{DB: d.gorm}
	if err := st.Parse(rows); err != nil || st.Schema == nil || len(st.Schema.DBNames) == 0 {
		return 20
	}
	return max(1, sqliteParamsPerInsert/len(st.Schema.DBNames))
}

// sqliteJSONRowsPerStatement is the number of rows a bulk statement carries on SQLite in its
// JSON parameter (sqlitejson.go): a thousand rows of some 20 columns are a few hundred
// kilobytes of JSON.
const sqliteJSONRowsPerStatement = 1000

// insertRows inserts rows (values in the order of cols) into table, a bounded number per
// statement, and returns how many it inserted. With ignoreConflicts, a row that a unique index
// refuses is left out (and not counted).
func (d *DB) insertRows(ctx context.Context, table string, cols []string, rows [][]any, ignoreConflicts bool) (int64, error) {
	if d.dialect == SQLite {
		return d.insertRowsJSON(ctx, table, cols, rows, ignoreConflicts)
	}
	per, tail := 500, ""
	if ignoreConflicts {
		tail = " ON DUPLICATE KEY UPDATE id = id"
	}
	one := "(" + strings.TrimSuffix(strings.Repeat("?,", len(cols)), ",") + ")"
	head := "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES "
	var n int64
	args := make([]any, 0, min(per, len(rows))*len(cols))
	for chunk := range slices.Chunk(rows, per) {
		args = args[:0]
		for _, r := range chunk {
			args = append(args, r...)
		}
		k, err := d.execCounted(ctx, head+strings.TrimSuffix(strings.Repeat(one+",", len(chunk)), ",")+tail, args...)
		if err != nil {
			return n, wrap("insert rows", err)
		}
		n += k
	}
	return n, nil
}

// insertRowsJSON is insertRows on SQLite: a thousand rows per statement, in one JSON
// parameter (sqlitejson.go). "WHERE true" tells SQLite's parser that ON CONFLICT belongs to the
// INSERT, not to a join of the SELECT.
func (d *DB) insertRowsJSON(ctx context.Context, table string, cols []string, rows [][]any, ignoreConflicts bool) (int64, error) {
	q := "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") SELECT " + sqliteJSONColumns("r", len(cols)) + " FROM jsonb_each(?) AS r WHERE true"
	if ignoreConflicts {
		q += " ON CONFLICT DO NOTHING"
	}
	var n int64
	for chunk := range slices.Chunk(rows, sqliteJSONRowsPerStatement) {
		for _, r := range chunk {
			if len(r) != len(cols) {
				return n, fmt.Errorf("insert rows: %d values for %d columns", len(r), len(cols))
			}
		}
		js, err := sqliteJSONRows(chunk)
		if err != nil {
			return n, fmt.Errorf("insert rows: %w", err)
		}
		k, err := d.execCounted(ctx, q, js)
		if err != nil {
			return n, wrap("insert rows", err)
		}
		n += k
	}
	return n, nil
}

// execCounted runs one statement outside GORM (on the transaction, if any), counts it for a
// StatementCounter, and returns the rows it affected.
func (d *DB) execCounted(ctx context.Context, q string, args ...any) (int64, error) {
	res, err := d.gorm.Statement.ConnPool.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	if counter, _ := ctx.Value(counterKey{}).(*StatementCounter); counter != nil {
		counter.n.Add(1)
	}
	return res.RowsAffected()
}

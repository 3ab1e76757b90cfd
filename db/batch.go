package db

import (
	"context"
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

// sqliteRowsPerInsert is the number of rows per INSERT that insertRows sends on SQLite. Its
// driver prepares every statement anew (parsing and planning it: the fixed cost of an INSERT
// into a table with many indexes) and binds in quadratic time (sqliteParamsPerInsert); 16 rows
// of some 20 columns balance the two (measured with BenchmarkReconcile: a first pass over
// 100,000 assignments a fifth faster than 1 row or 25 rows per statement).
const sqliteRowsPerInsert = 16

// insertRows inserts rows (values in the order of cols) into table, a bounded number per
// statement, and returns how many it inserted. With ignoreConflicts, a row that a unique index
// refuses is left out (and not counted).
func (d *DB) insertRows(ctx context.Context, table string, cols []string, rows [][]any, ignoreConflicts bool) (int64, error) {
	per, tail := 500, ""
	if d.dialect == SQLite {
		per = sqliteRowsPerInsert
		if ignoreConflicts {
			tail = " ON CONFLICT DO NOTHING"
		}
	} else if ignoreConflicts {
		tail = " ON DUPLICATE KEY UPDATE id = id"
	}
	one := "(" + strings.TrimSuffix(strings.Repeat("?,", len(cols)), ",") + ")"
	head := "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES "
	counter, _ := ctx.Value(counterKey{}).(*StatementCounter)
	var n int64
	args := make([]any, 0, min(per, len(rows))*len(cols))
	for chunk := range slices.Chunk(rows, per) {
		args = args[:0]
		for _, r := range chunk {
			args = append(args, r...)
		}
		res, err := d.gorm.Statement.ConnPool.ExecContext(ctx, head+strings.TrimSuffix(strings.Repeat(one+",", len(chunk)), ",")+tail, args...)
		if err != nil {
			return n, wrap("insert rows", err)
		}
		if counter != nil {
			counter.n.Add(1)
		}
		k, err := res.RowsAffected()
		if err != nil {
			return n, wrap("insert rows", err)
		}
		n += k
	}
	return n, nil
}

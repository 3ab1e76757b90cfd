package db

import (
	"context"
	"strings"

	"gorm.io/gorm"
)

// sqliteParamsPerInsert bounds the parameters of one multi-row INSERT on SQLite: its driver
// (glebarez/go-sqlite) binds a statement's parameters in time quadratic in their number (each
// parameter is looked up among all the arguments), so 500 rows of 20 columns (10,000
// parameters) cost some 50 million comparisons per statement, where 25 rows cost 125,000.
// SQLite being in process, more statements cost little. MySQL's driver interpolates: 500 rows.
const sqliteParamsPerInsert = 500

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

// assignmentsByHolder reads into rows the given columns of the assignments with the given
// (pool_id, holder_key) pairs. SQLite does not use an index for a row-value IN (it scans the
// table once per call: quadratic over a pass), so there the pairs are a VALUES table joined
// on the unique (pool_id, holder_key) index; MySQL ranges over that index with a row-value IN.
func (d *DB) assignmentsByHolder(ctx context.Context, cols []string, pairs [][2]any, rows any) error {
	if len(pairs) == 0 {
		return nil
	}
	var sb strings.Builder
	args := make([]any, 0, 2*len(pairs))
	if d.dialect == SQLite {
		sb.WriteString("SELECT la.")
		sb.WriteString(strings.Join(cols, ", la."))
		sb.WriteString(" FROM (VALUES ")
	} else {
		sb.WriteString("SELECT ")
		sb.WriteString(strings.Join(cols, ", "))
		sb.WriteString(" FROM license_assignments WHERE (pool_id, holder_key) IN (")
	}
	for i, p := range pairs {
		if i > 0 {
			sb.WriteString(",")
		}
		sb.WriteString("(?,?)")
		args = append(args, p[0], p[1])
	}
	if d.dialect == SQLite {
		sb.WriteString(") AS v JOIN license_assignments la ON la.pool_id = v.column1 AND la.holder_key = v.column2")
	} else {
		sb.WriteString(")")
	}
	return d.with(ctx).Raw(sb.String(), args...).Scan(rows).Error
}

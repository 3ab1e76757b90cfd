package db

import (
	"fmt"
	"reflect"

	"gorm.io/gorm"
)

// The read helpers below (findAll, findOne, and list, count, byIDs, childrenOf, countChildren
// in page.go) return the driver's error with at most a detail of their own ("scan <table>"):
// naming the operation is the exported store function's job (wrap), so that a logged error
// reads "accounts by id: Error 1213 ..." once, not "accounts by id: find all: ...".

// findAll runs q (a query on T's table) and reads every row into a new T, each column scanned
// straight into its field. GORM's Find scans into intermediate values and then sets the
// fields through reflection, which on the hot read paths (a page of a connection and its
// relations) costs as much again as the database work. Columns that map to no field are read
// and dropped. The statement goes through GORM's row callbacks, so it is counted and logged
// like any other.
func findAll[T any](q *gorm.DB) ([]*T, error) {
	st := &gorm.Statement{DB: q}
	if err := st.Parse(new(T)); err != nil {
		return nil, fmt.Errorf("parse model: %w", err)
	}
	rows, err := q.Model(new(T)).Rows()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, fmt.Errorf("columns of %s: %w", st.Schema.Table, err)
	}
	fields := make([][]int, len(cols)) // the struct field index of each column, nil: none
	seen := make(map[string]bool, len(cols))
	for i, c := range cols {
		if f := st.Schema.LookUpField(c); f != nil && f.DBName != "" && !seen[f.DBName] {
			seen[f.DBName] = true
			fields[i] = f.StructField.Index
		}
	}
	out := []*T{}
	dest := make([]any, len(cols))
	var drop any
	for rows.Next() {
		t := new(T)
		v := reflect.ValueOf(t).Elem()
		for i, idx := range fields {
			if idx == nil {
				dest[i] = &drop
			} else {
				dest[i] = v.FieldByIndex(idx).Addr().Interface()
			}
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("scan %s: %w", st.Schema.Table, err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// findOne is findAll for at most one row: the row, or errNotFound.
func findOne[T any](q *gorm.DB) (*T, error) {
	rows, err := findAll[T](q.Limit(1))
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, errNotFound
	}
	return rows[0], nil
}

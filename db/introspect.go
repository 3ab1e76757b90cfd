package db

import (
	"context"
	"fmt"
)

// Columns returns a table's columns with their nullability, read from the database's own
// catalogue (for the schema test and the readiness check).
func (d *DB) Columns(ctx context.Context, table string) (map[string]bool, error) {
	out := map[string]bool{}
	switch d.dialect {
	case SQLite:
		rows, err := d.with(ctx).Raw("SELECT name, \"notnull\", pk FROM pragma_table_info(?)", table).Rows()
		if err != nil {
			return nil, wrap("columns", err)
		}
		defer rows.Close()
		for rows.Next() {
			var name string
			var notNull, pk int
			if err := rows.Scan(&name, &notNull, &pk); err != nil {
				return nil, wrap("columns", err)
			}
			out[name] = notNull == 0 && pk == 0
		}
		return out, wrap("columns", rows.Err())
	case MySQL:
		rows, err := d.with(ctx).Raw("SELECT column_name, is_nullable FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ?", table).Rows()
		if err != nil {
			return nil, wrap("columns", err)
		}
		defer rows.Close()
		for rows.Next() {
			var name, nullable string
			if err := rows.Scan(&name, &nullable); err != nil {
				return nil, wrap("columns", err)
			}
			out[name] = nullable == "YES"
		}
		return out, wrap("columns", rows.Err())
	}
	return nil, fmt.Errorf("columns: unsupported dialect %q", d.dialect)
}

// Tables lists the database's tables.
func (d *DB) Tables(ctx context.Context) ([]string, error) {
	var q string
	switch d.dialect {
	case SQLite:
		q = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
	case MySQL:
		q = "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()"
	}
	var out []string
	err := d.with(ctx).Raw(q).Scan(&out).Error
	return out, wrap("tables", err)
}

package db

import "context"

// InsertValues exposes insertRows to the package's external tests.
func (d *DB) InsertValues(ctx context.Context, table string, cols []string, rows [][]any, ignoreConflicts bool) (int64, error) {
	return d.insertRows(ctx, table, cols, rows, ignoreConflicts)
}

package db

import (
	"context"
	"sync/atomic"

	"gorm.io/gorm"
)

// StatementCounter counts the SQL statements issued with a context, for the N+1 guard tests
// and the benchmarks that report statements per request.
type StatementCounter struct{ n atomic.Int64 }

// Count is the number of statements counted so far.
func (c *StatementCounter) Count() int64 { return c.n.Load() }

type counterKey struct{}

// WithStatementCounter returns a context whose statements are counted in c.
func WithStatementCounter(ctx context.Context, c *StatementCounter) context.Context {
	return context.WithValue(ctx, counterKey{}, c)
}

// registerCounter hooks every GORM statement kind.
func registerCounter(g *gorm.DB) error {
	count := func(tx *gorm.DB) {
		if tx.Statement == nil || tx.Statement.Context == nil {
			return
		}
		if c, ok := tx.Statement.Context.Value(counterKey{}).(*StatementCounter); ok {
			c.n.Add(1)
		}
	}
	cb := g.Callback()
	for _, err := range []error{
		cb.Query().After("gorm:query").Register("orchard:count_query", count),
		cb.Create().After("gorm:create").Register("orchard:count_create", count),
		cb.Update().After("gorm:update").Register("orchard:count_update", count),
		cb.Delete().After("gorm:delete").Register("orchard:count_delete", count),
		cb.Row().After("gorm:row").Register("orchard:count_row", count),
		cb.Raw().After("gorm:raw").Register("orchard:count_raw", count),
	} {
		if err != nil {
			return wrap("register counter", err)
		}
	}
	return nil
}

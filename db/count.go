package db

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"

	"gorm.io/gorm"
)

// StatementCounter counts the SQL statements issued with a context, for the N+1 guard tests
// and the benchmarks that report statements per request. One made by NewStatementRecorder
// also keeps the text and arguments of the statements issued through GORM (the bulk inserts
// of InsertRows are counted only), for the tests that compare a request's statements with
// others.
type StatementCounter struct {
	n      atomic.Int64
	record bool
	mu     sync.Mutex
	stmts  []Statement
}

// Statement is a recorded statement: its SQL, with placeholders, and its arguments.
type Statement struct {
	SQL  string
	Args []any
}

// NewStatementRecorder returns a counter that also records the statements it counts.
func NewStatementRecorder() *StatementCounter { return &StatementCounter{record: true} }

// Count is the number of statements counted so far.
func (c *StatementCounter) Count() int64 { return c.n.Load() }

// Recorded returns the statements recorded so far, in the order they were issued.
func (c *StatementCounter) Recorded() []Statement {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.stmts)
}

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
			if c.record {
				c.mu.Lock()
				c.stmts = append(c.stmts, Statement{SQL: tx.Statement.SQL.String(), Args: slices.Clone(tx.Statement.Vars)})
				c.mu.Unlock()
			}
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

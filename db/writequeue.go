package db

import (
	"context"

	"gorm.io/gorm"
)

// The write queue (SQLite only). SQLite lets one transaction write at a time, and a writer
// that finds the lock taken polls for it, sleeping up to 100 ms between tries: under many
// concurrent writers the lock then sits free while they sleep, and a writer can be passed
// over until its busy timeout runs out. So this process's writers queue in Go for one token,
// handed on in arrival order: Tx holds it for a whole transaction, and a write outside any
// transaction (a lease renewal, a progress update) holds it for its statement. A caller whose
// context ends stops waiting. Other processes on the same file still meet through
// busy_timeout, which is why one process per database file is the efficient set-up.

// writeToken is the key under which a statement records that it holds the token.
const writeToken = "orchard:write_token"

// takeWriteToken waits for the token or for ctx to end.
func takeWriteToken(ctx context.Context, writers chan struct{}) error {
	select {
	case writers <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// queueWrites hooks GORM's write statements so that those outside a transaction take the
// token for themselves (those inside one run under the token their Tx holds).
func queueWrites(g *gorm.DB, writers chan struct{}) error {
	take := func(tx *gorm.DB) {
		if tx.Error != nil {
			return
		}
		if _, inTx := tx.Statement.ConnPool.(gorm.TxCommitter); inTx {
			return
		}
		if err := takeWriteToken(tx.Statement.Context, writers); err != nil {
			_ = tx.AddError(err)
			return
		}
		tx.InstanceSet(writeToken, true)
	}
	give := func(tx *gorm.DB) {
		if held, ok := tx.InstanceGet(writeToken); ok && held == true {
			tx.InstanceSet(writeToken, false)
			<-writers
		}
	}
	cb := g.Callback()
	for _, err := range []error{
		cb.Create().Before("gorm:create").Register("orchard:take_write_token", take),
		cb.Create().After("gorm:create").Register("orchard:give_write_token", give),
		cb.Update().Before("gorm:update").Register("orchard:take_write_token", take),
		cb.Update().After("gorm:update").Register("orchard:give_write_token", give),
		cb.Delete().Before("gorm:delete").Register("orchard:take_write_token", take),
		cb.Delete().After("gorm:delete").Register("orchard:give_write_token", give),
		cb.Raw().Before("gorm:raw").Register("orchard:take_write_token", take),
		cb.Raw().After("gorm:raw").Register("orchard:give_write_token", give),
	} {
		if err != nil {
			return wrap("register write queue", err)
		}
	}
	return nil
}

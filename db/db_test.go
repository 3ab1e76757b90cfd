package db_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
)

// TestTx: a transaction's writes commit together or not at all; the caller's own error comes
// back unchanged (the caller named it); a nested transaction that fails rolls back to its
// savepoint only; an error of the transaction itself (here: its context ended before it
// began) names the transaction and wraps the cause.
func TestTx(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		boom := errors.New("the caller's error")
		mustDo(t, d.Tx(ctx, func(tx *db.DB) error { return tx.SetSetting(ctx, "committed", "1") }))
		err := d.Tx(ctx, func(tx *db.DB) error {
			if err := tx.SetSetting(ctx, "rolled-back", "1"); err != nil {
				return err
			}
			return boom
		})
		if err != boom {
			t.Errorf("the caller's error came back as %v", err)
		}
		err = d.Tx(ctx, func(tx *db.DB) error {
			if err := tx.SetSetting(ctx, "outer", "1"); err != nil {
				return err
			}
			if err := tx.Tx(ctx, func(inner *db.DB) error {
				if err := inner.SetSetting(ctx, "inner", "1"); err != nil {
					return err
				}
				return boom
			}); err != boom {
				t.Errorf("nested: the caller's error came back as %v", err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, name := range []string{"committed", "rolled-back", "outer", "inner"} {
			_, err := d.Setting(ctx, name)
			if err != nil && !errors.Is(err, model.ErrNotFound) {
				t.Fatal(err)
			}
			got[name] = err == nil
		}
		if diff := cmp.Diff(map[string]bool{"committed": true, "rolled-back": false, "outer": true, "inner": false}, got); diff != "" {
			t.Errorf("stored settings mismatch (-want +got):\n%s", diff)
		}
		ran := false
		err = d.Tx(endedCtx(), func(tx *db.DB) error { ran = true; return nil })
		if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "transaction") || ran {
			t.Errorf("a transaction with an ended context: ran %v, %v", ran, err)
		}
	})
}

// TestHandleErrorsNameTheOperation: the handle's own calls name what failed.
func TestHandleErrorsNameTheOperation(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		if err := d.Ping(context.Background()); err != nil {
			t.Fatal(err)
		}
		checkErrorsNameOps(t, []namedOp{
			{"ping", func(ctx context.Context) error { return d.Ping(ctx) }},
			{"exec admin", func(ctx context.Context) error { return d.ExecAdmin(ctx, "SELECT 1") }},
			{"insert rows", func(ctx context.Context) error {
				return d.InsertRows(ctx, &model.Setting{Name: "x", UpdatedAt: db.Now()})
			}},
		})
	})
}

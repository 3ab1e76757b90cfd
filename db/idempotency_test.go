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

// TestIdempotencyKeys: the first claim of a key records it; a replay of the key (same scope)
// is refused with ErrIdempotencyKeyUsed and answers the stored record — its response once
// set, and the first request's hash, which is how the caller refuses a different payload under
// the same key; the same key in another scope is another key.
func TestIdempotencyKeys(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		type rec struct {
			Scope, Key, Operation, RequestHash, Response string
		}
		recOf := func(r *model.IdempotencyRecord) rec {
			return rec{r.Scope, r.Key, r.Operation, r.RequestHash, r.Response}
		}
		first, err := d.ClaimIdempotencyKey(ctx, "api-key:1", "k1", "assignLicense", "hash-a")
		if err != nil {
			t.Fatal(err)
		}
		if first.ID == 0 {
			t.Fatal("claimed record has no id")
		}
		mustDo(t, d.SetIdempotencyResponse(ctx, first.ID, `{"result":1}`))
		for _, tt := range []struct {
			name        string
			scope, hash string
			want        rec
			used        bool
		}{
			{"replay answers the stored result", "api-key:1", "hash-a", rec{"api-key:1", "k1", "assignLicense", "hash-a", `{"result":1}`}, true},
			{"another payload gets the first one's hash", "api-key:1", "hash-b", rec{"api-key:1", "k1", "assignLicense", "hash-a", `{"result":1}`}, true},
			{"another scope is another key", "api-key:2", "hash-b", rec{"api-key:2", "k1", "assignLicense", "hash-b", ""}, false},
		} {
			got, err := d.ClaimIdempotencyKey(ctx, tt.scope, "k1", "assignLicense", tt.hash)
			if used := errors.Is(err, db.ErrIdempotencyKeyUsed); used != tt.used || (err != nil && !used) {
				t.Fatalf("%s: error %v, want used=%v", tt.name, err, tt.used)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "claim idempotency key: ") {
				t.Errorf("%s: error does not name the operation: %v", tt.name, err)
			}
			if diff := cmp.Diff(tt.want, recOf(got)); diff != "" {
				t.Errorf("%s: mismatch (-want +got):\n%s", tt.name, diff)
			}
		}
		r, err := d.IdempotencyRecord(ctx, "api-key:1", "k1")
		if err != nil || r.ID != first.ID {
			t.Errorf("record: %+v, %v", r, err)
		}
		_, err = d.IdempotencyRecord(ctx, "api-key:1", "never")
		checkNotFoundNamed(t, "idempotency record", err)
	})
}

// TestIdempotencyKeyClaimRollsBack: a key claimed in a transaction that fails is not kept, so
// the retry runs the operation (nothing was done under it).
func TestIdempotencyKeyClaimRollsBack(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		boom := errors.New("the operation failed")
		err := d.Tx(ctx, func(tx *db.DB) error {
			if _, err := tx.ClaimIdempotencyKey(ctx, "s", "k", "op", "h"); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("transaction: %v", err)
		}
		if _, err := d.ClaimIdempotencyKey(ctx, "s", "k", "op", "h"); err != nil {
			t.Errorf("claim after a rolled-back claim: %v", err)
		}
	})
}

// TestIdempotencyErrorsNameTheOperation: each function's error says which store operation
// failed.
func TestIdempotencyErrorsNameTheOperation(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		checkErrorsNameOps(t, []namedOp{
			{"claim idempotency key", func(ctx context.Context) error { _, err := d.ClaimIdempotencyKey(ctx, "s", "k", "o", "h"); return err }},
			{"idempotency record", func(ctx context.Context) error { _, err := d.IdempotencyRecord(ctx, "s", "k"); return err }},
			{"set idempotency response", func(ctx context.Context) error { return d.SetIdempotencyResponse(ctx, 1, "r") }},
		})
	})
}

package license

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"

	"orchard/db"
	"orchard/model"
)

// Idempotency: a mutation given an idempotency key records its answer under the key, in the
// same transaction as its intent, so a client that retries after a timeout or a crash gets the
// first answer again and the work is never done twice. Keys are scoped to the API key that
// used them; reusing a key with another input is refused (IDEMPOTENCY_KEY_REUSED).

// stored is what is kept of an answer: the result (ids, to reload current state) or the
// refusal.
type stored[T any] struct {
	Result T            `json:"result"`
	Error  *model.Error `json:"error,omitempty"`
}

// idempotent runs do in a transaction, recording its answer under key (when key is set). It
// reports replayed=true when the answer is an earlier call's.
func idempotent[T any](ctx context.Context, s *Service, actor Actor, key, op string, input any, do func(tx *db.DB) (T, error)) (res T, replayed bool, err error) {
	key = strings.TrimSpace(key)
	if key == "" {
		err = s.db.Tx(ctx, func(tx *db.DB) error {
			var e error
			res, e = do(tx)
			return e
		})
		return res, false, err
	}
	if len(key) > 190 {
		return res, false, model.FieldError([]string{"input", "idempotencyKey"}, "idempotencyKey must be at most 190 characters")
	}
	b, _ := json.Marshal(input)
	sum := sha256.Sum256(append([]byte(op+"\x00"), b...))
	hash := hex.EncodeToString(sum[:])
	scope := string(actor.Kind) + ":" + actor.ID

	replay := func(prev *model.IdempotencyRecord) (T, bool, error) {
		var zero T
		if prev.Operation != op || prev.RequestHash != hash {
			return zero, false, &model.Error{Code: model.CodeIdempotencyKeyReused, Field: []string{"input", "idempotencyKey"},
				Message: "this idempotency key was used before with a different input; use a new key for a new request"}
		}
		var st stored[T]
		if err := json.Unmarshal([]byte(prev.Response), &st); err != nil {
			return zero, false, err
		}
		if st.Error != nil {
			return st.Result, true, st.Error
		}
		return st.Result, true, nil
	}
	err = s.db.Tx(ctx, func(tx *db.DB) error {
		rec, err := tx.ClaimIdempotencyKey(ctx, scope, key, op, hash)
		if errors.Is(err, db.ErrIdempotencyKeyUsed) {
			res, replayed, err = replay(rec)
			return errReplayed{err}
		}
		if err != nil {
			return err
		}
		res, err = do(tx)
		if err != nil {
			return err
		}
		out, _ := json.Marshal(stored[T]{Result: res})
		return tx.SetIdempotencyResponse(ctx, rec.ID, string(out))
	})
	var rep errReplayed
	if errors.As(err, &rep) {
		return res, replayed, rep.err
	}
	if e, ok := model.AsError(err); ok && e.Code != model.CodeIdempotencyKeyReused {
		// A refusal is an answer too: record it, so the retry gets it again.
		out, _ := json.Marshal(stored[T]{Result: res, Error: &model.Error{Code: e.Code, Message: e.Message, Field: e.Field}})
		_ = s.db.Tx(context.WithoutCancel(ctx), func(tx *db.DB) error {
			rec, cerr := tx.ClaimIdempotencyKey(ctx, scope, key, op, hash)
			if cerr != nil {
				return cerr
			}
			return tx.SetIdempotencyResponse(ctx, rec.ID, string(out))
		})
	}
	return res, false, err
}

// idempotentOutside is idempotent for work that runs its own transactions (bulk work done in
// batches, safe to run again). The key is claimed first; an earlier answer under it is
// replayed; a claim left without an answer (the process stopped half-way) makes the work run
// again with resume=true, so that it can answer for what the first run already did.
func idempotentOutside[T any](ctx context.Context, s *Service, actor Actor, key, op string, input any, do func(resume bool) (T, error)) (T, bool, error) {
	key = strings.TrimSpace(key)
	if key == "" {
		res, err := do(false)
		return res, false, err
	}
	scope := string(actor.Kind) + ":" + actor.ID
	b, _ := json.Marshal(input)
	sum := sha256.Sum256(append([]byte(op+"\x00"), b...))
	hash := hex.EncodeToString(sum[:])
	resume := false
	prev, err := s.db.ClaimIdempotencyKey(ctx, scope, key, op, hash)
	switch {
	case errors.Is(err, db.ErrIdempotencyKeyUsed) && prev.Response != "":
		return idempotent(ctx, s, actor, key, op, input, func(*db.DB) (T, error) { return *new(T), nil })
	case errors.Is(err, db.ErrIdempotencyKeyUsed):
		if prev.Operation != op || prev.RequestHash != hash {
			return *new(T), false, &model.Error{Code: model.CodeIdempotencyKeyReused, Field: []string{"input", "idempotencyKey"},
				Message: "this idempotency key was used before with a different input; use a new key for a new request"}
		}
		resume = true
	case err != nil:
		return *new(T), false, err
	}
	res, err := do(resume)
	if err != nil {
		return res, false, err
	}
	out, _ := json.Marshal(stored[T]{Result: res})
	rec, err := s.db.IdempotencyRecord(ctx, scope, key)
	if err != nil {
		return res, false, err
	}
	return res, false, s.db.SetIdempotencyResponse(ctx, rec.ID, string(out))
}

// errReplayed carries a replayed answer out of the transaction (which is rolled back: it
// wrote nothing).
type errReplayed struct{ err error }

func (e errReplayed) Error() string { return "replayed" }

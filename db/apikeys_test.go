package db_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
)

func seedAPIKey(t *testing.T, d *db.DB, name string) *model.APIKey {
	t.Helper()
	k := &model.APIKey{Name: name, Prefix: "ok_" + name, Hash: "hash-" + name, Role: model.RoleOperator, CreatedBy: "test"}
	mustDo(t, d.InsertAPIKey(bg(), k))
	return k
}

// TestAPIKeyLookups finds a key by the hash of its secret and by id; an unknown one is the
// not-found error named after the lookup.
func TestAPIKeyLookups(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		k := seedAPIKey(t, d, "a")
		seedAPIKey(t, d, "b")
		byHash, err := d.APIKeyByHash(bg(), "hash-a")
		mustDo(t, err)
		byID, err := d.APIKeyByID(bg(), k.ID)
		mustDo(t, err)
		for _, got := range []*model.APIKey{byHash, byID} {
			if diff := cmp.Diff(k, got); diff != "" {
				t.Errorf("key mismatch (-want +got):\n%s", diff)
			}
		}
		_, err = d.APIKeyByHash(bg(), "hash-none")
		isNotFound(t, "api key by hash", err)
		_, err = d.APIKeyByID(bg(), k.ID+1000)
		isNotFound(t, "api key by id", err)
	})
}

// TestRevokeAPIKey marks a key revoked once: a second revoke keeps the first time. Touching
// records the last use.
func TestRevokeAPIKey(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		k := seedAPIKey(t, d, "a")
		first := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		mustDo(t, d.RevokeAPIKey(bg(), k.ID, first))
		mustDo(t, d.RevokeAPIKey(bg(), k.ID, first.Add(time.Hour)))
		used := first.Add(-time.Minute)
		mustDo(t, d.TouchAPIKey(bg(), k.ID, used))
		got, err := d.APIKeyByID(bg(), k.ID)
		mustDo(t, err)
		if got.RevokedAt == nil || !got.RevokedAt.Equal(first) {
			t.Errorf("revoked at %v, want the first revoke %v", got.RevokedAt, first)
		}
		if got.LastUsedAt == nil || !got.LastUsedAt.Equal(used) {
			t.Errorf("last used %v, want %v", got.LastUsedAt, used)
		}
		if got.Active() {
			t.Error("a revoked key is active")
		}
	})
}

// TestListAPIKeys lists and counts live keys, or every key with includeRevoked, in id order;
// CountAPIKeysAll counts revoked keys too (0 on a fresh install).
func TestListAPIKeys(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		n, err := d.CountAPIKeysAll(bg())
		mustDo(t, err)
		if n != 0 {
			t.Fatalf("fresh install has %d keys", n)
		}
		var keys []*model.APIKey
		for i := range 4 {
			keys = append(keys, seedAPIKey(t, d, fmt.Sprint(i)))
		}
		mustDo(t, d.RevokeAPIKey(bg(), keys[1].ID, db.Now()))
		tests := []struct {
			includeRevoked bool
			want           []int64
		}{
			{false, []int64{keys[0].ID, keys[2].ID, keys[3].ID}},
			{true, []int64{keys[0].ID, keys[1].ID, keys[2].ID, keys[3].ID}},
		}
		for _, tc := range tests {
			got, more, err := d.ListAPIKeys(bg(), tc.includeRevoked, db.Page{First: 10})
			mustDo(t, err)
			if diff := cmp.Diff(tc.want, idsOf(got, apiKeyID)); diff != "" || more {
				t.Errorf("includeRevoked %v: mismatch (-want +got), more %v:\n%s", tc.includeRevoked, more, diff)
			}
			c, err := d.CountAPIKeys(bg(), tc.includeRevoked)
			mustDo(t, err)
			if c != len(tc.want) {
				t.Errorf("includeRevoked %v: count %d, want %d", tc.includeRevoked, c, len(tc.want))
			}
		}
		all, err := d.CountAPIKeysAll(bg())
		mustDo(t, err)
		if all != 4 {
			t.Errorf("count all %d, want 4", all)
		}
		byID, err := d.APIKeysByID(bg(), []int64{keys[3].ID, keys[1].ID, keys[3].ID + 1000})
		mustDo(t, err)
		if diff := cmp.Diff([]int64{keys[1].ID, keys[3].ID}, sortedIDs(byID, apiKeyID)); diff != "" {
			t.Errorf("keys by id mismatch (-want +got):\n%s", diff)
		}
		none, err := d.APIKeysByID(bg(), nil)
		if err != nil || len(none) != 0 {
			t.Errorf("no ids: %v, %v; want none", none, err)
		}
	})
}

// TestAPIKeyErrorsNameTheOperation: see TestAccountErrorsNameTheOperation.
func TestAPIKeyErrorsNameTheOperation(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		d = closedStore(t, d)
		checkOpErrors(t, []opErr{
			{"insert api key", func() error { return d.InsertAPIKey(bg(), &model.APIKey{}) }},
			{"api key by hash", func() error { _, err := d.APIKeyByHash(bg(), "x"); return err }},
			{"api key by id", func() error { _, err := d.APIKeyByID(bg(), 1); return err }},
			{"revoke api key", func() error { return d.RevokeAPIKey(bg(), 1, db.Now()) }},
			{"touch api key", func() error { return d.TouchAPIKey(bg(), 1, db.Now()) }},
			{"count api keys all", func() error { _, err := d.CountAPIKeysAll(bg()); return err }},
			{"list api keys", func() error { _, _, err := d.ListAPIKeys(bg(), true, db.Page{First: 1}); return err }},
			{"count api keys", func() error { _, err := d.CountAPIKeys(bg(), true); return err }},
			{"api keys by id", func() error { _, err := d.APIKeysByID(bg(), []int64{1}); return err }},
		})
	})
}

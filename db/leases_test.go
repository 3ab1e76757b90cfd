package db_test

import (
	"context"
	"testing"
	"time"

	"orchard/db"
	"orchard/db/dbtest"
)

func TestLeases(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		take := func(holder string, ttl time.Duration) bool {
			t.Helper()
			ok, err := d.AcquireLease(ctx, "sync:1", holder, ttl)
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		if !take("a", time.Minute) {
			t.Fatal("a could not take a free lease")
		}
		if take("b", time.Minute) {
			t.Fatal("b took a's live lease")
		}
		if !take("a", time.Minute) {
			t.Fatal("a could not renew its lease")
		}
		if err := d.ReleaseLease(ctx, "sync:1", "b"); err != nil {
			t.Fatal(err)
		}
		if take("b", time.Minute) {
			t.Fatal("b's release freed a's lease")
		}
		if !take("a", 50*time.Millisecond) {
			t.Fatal("a could not shorten its lease")
		}
		deadline := time.Now().Add(5 * time.Second)
		for !take("b", time.Minute) {
			if time.Now().After(deadline) {
				t.Fatal("b never got the expired lease")
			}
			time.Sleep(20 * time.Millisecond)
		}
		if take("a", time.Minute) {
			t.Fatal("a took b's lease back")
		}
		if err := d.ReleaseLease(ctx, "sync:1", "b"); err != nil {
			t.Fatal(err)
		}
		if !take("a", time.Minute) {
			t.Fatal("a could not take a released lease")
		}
	})
}

package db

import (
	"context"
	"fmt"
	"time"
)

// Leases let replicas share background work without talking to each other: a replica works on
// an account only while it holds the account's lease row, and a lease that is not renewed
// runs out, so a dead replica's work passes to the others. Expiry is measured on the
// database's clock (MySQL's UTC_TIMESTAMP), so replicas need not agree on the time. SQLite
// serves a single process, whose clock is the database's.

// dbNow returns the SQL expression of the database's current time and its arguments.
func (d *DB) dbNow() (string, []any) {
	if d.dialect == MySQL {
		return "UTC_TIMESTAMP(6)", nil
	}
	return "?", []any{Now()}
}

// ClockNow reads the database's clock.
func (d *DB) ClockNow(ctx context.Context) (time.Time, error) {
	if d.dialect != MySQL {
		return Now(), nil
	}
	var t time.Time
	if err := d.with(ctx).Raw("SELECT UTC_TIMESTAMP(6)").Row().Scan(&t); err != nil {
		return time.Time{}, fmt.Errorf("read database clock: %w", err)
	}
	return t.UTC(), nil
}

// AcquireLease takes or renews the named lease for holder for ttl. It succeeds when the lease
// is free, expired, or already the holder's.
func (d *DB) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	now, nowArgs := d.dbNow()
	exp, expArgs := d.after(ttl)
	upd := "UPDATE leases SET holder = ?, expires_at = " + exp + " WHERE name = ? AND (holder = ? OR expires_at < " + now + ")"
	all := append(append(append([]any{holder}, expArgs...), name, holder), nowArgs...)
	res := d.with(ctx).Exec(upd, all...)
	if res.Error != nil {
		return false, fmt.Errorf("renew lease %s: %w", name, res.Error)
	}
	if res.RowsAffected > 0 {
		return true, nil
	}
	ins := d.with(ctx).Exec("INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, "+exp+")", append([]any{name, holder}, expArgs...)...)
	if ins.Error == nil {
		return true, nil
	}
	if isDuplicate(ins.Error) {
		return false, nil
	}
	return false, fmt.Errorf("take lease %s: %w", name, ins.Error)
}

// ReleaseLease gives a lease up, if holder still holds it.
func (d *DB) ReleaseLease(ctx context.Context, name, holder string) error {
	return wrap("release lease", d.with(ctx).Exec("DELETE FROM leases WHERE name = ? AND holder = ?", name, holder).Error)
}

// after renders "the database's now + ttl".
func (d *DB) after(ttl time.Duration) (string, []any) {
	if d.dialect == MySQL {
		return fmt.Sprintf("UTC_TIMESTAMP(6) + INTERVAL %d MICROSECOND", ttl.Microseconds()), nil
	}
	return "?", []any{Now().Add(ttl)}
}

// Lease is a lease row: who holds the named work, until when (database clock).
type Lease struct {
	Name, Holder string
	ExpiresAt    time.Time
}

// Leases lists the leases, by name (who works on what, across replicas).
func (d *DB) Leases(ctx context.Context) ([]Lease, error) {
	var out []Lease
	if err := d.with(ctx).Raw("SELECT name, holder, expires_at FROM leases ORDER BY name").Scan(&out).Error; err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	for i := range out {
		out[i].ExpiresAt = out[i].ExpiresAt.UTC()
	}
	return out, nil
}

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
// is free (given back, or never taken), expired, or already the holder's. A lease given back
// keeps its row (ReleaseLease), so that taking it again is one statement; only a lease never
// taken before costs a second one (the INSERT).
func (d *DB) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	now, nowArgs := d.dbNow()
	exp, expArgs := d.after(ttl)
	upd := "UPDATE leases SET holder = ?, expires_at = " + exp + " WHERE name = ? AND (holder = ? OR holder = '' OR expires_at < " + now + ")"
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

// ReleaseLease gives a lease up, if holder still holds it. The row stays, with no holder (the
// empty string) and its expiry now, for the next AcquireLease to take in one statement: the
// rows are bounded by the accounts times the kinds of work, and a pass's lease is taken again
// at every pass.
func (d *DB) ReleaseLease(ctx context.Context, name, holder string) error {
	now, nowArgs := d.dbNow()
	args := append(nowArgs, name, holder)
	return wrap("release lease", d.with(ctx).Exec("UPDATE leases SET holder = '', expires_at = "+now+" WHERE name = ? AND holder = ?", args...).Error)
}

// ReplicaLeasePrefix begins the name of a replica's heartbeat lease ("replica:" and the
// holder): each running scheduler renews its own, so that the replicas can count each other.
const ReplicaLeasePrefix = "replica:"

// LiveReplicas lists the holders of the heartbeat leases (ReplicaLeasePrefix) that are held
// and have not run out, in order: the replicas alive, by the database's clock.
func (d *DB) LiveReplicas(ctx context.Context) ([]string, error) {
	now, nowArgs := d.dbNow()
	var out []string
	err := d.with(ctx).Raw("SELECT holder FROM leases WHERE name LIKE ? AND holder <> '' AND expires_at > "+now+" ORDER BY name",
		append([]any{ReplicaLeasePrefix + "%"}, nowArgs...)...).Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("list live replicas: %w", err)
	}
	return out, nil
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

// Leases lists the leases held (given back ones left out), by name (who works on what, across
// replicas).
func (d *DB) Leases(ctx context.Context) ([]Lease, error) {
	var out []Lease
	if err := d.with(ctx).Raw("SELECT name, holder, expires_at FROM leases WHERE holder <> '' ORDER BY name").Scan(&out).Error; err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	for i := range out {
		out[i].ExpiresAt = out[i].ExpiresAt.UTC()
	}
	return out, nil
}

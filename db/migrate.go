package db

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"orchard/model"
)

// Migrations are numbered SQL files per engine (NNNN_name.sql), embedded in the binary.
// They are forward-only and immutable: the checksum of every applied file is recorded, and a
// start with an edited migration is refused. Change the schema by adding a file to both
// engines' folders.
//
//go:embed migrations
var migrationFS embed.FS

// Migration is one numbered schema change.
type Migration struct {
	Version  int
	Name     string
	SQL      string
	Checksum string
}

// Migrations lists the embedded migrations of a dialect in order.
func Migrations(d Dialect) ([]Migration, error) {
	dir := path.Join("migrations", string(d))
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations: %w", err)
	}
	var out []Migration
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration file %s: name must be NNNN_name.sql", e.Name())
		}
		b, err := migrationFS.ReadFile(path.Join(dir, e.Name()))
		if err != nil {
			return nil, wrap("migrations", err)
		}
		sum := sha256.Sum256(b)
		out = append(out, Migration{Version: v, Name: name, SQL: string(b), Checksum: hex.EncodeToString(sum[:])})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i := range out {
		if out[i].Version != i+1 {
			return nil, fmt.Errorf("migrations of %s must be numbered 1, 2, 3… without gaps; found %d at position %d", d, out[i].Version, i+1)
		}
	}
	return out, nil
}

const (
	createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version INTEGER NOT NULL PRIMARY KEY,
  name VARCHAR(255) NOT NULL,
  checksum CHAR(64) NOT NULL,
  applied_at DATETIME(6) NOT NULL)`
	createLockTable = `CREATE TABLE IF NOT EXISTS schema_migrations_lock (
  id INTEGER NOT NULL PRIMARY KEY,
  holder VARCHAR(255) NOT NULL,
  acquired_at DATETIME(6) NOT NULL)`
	// staleLockAfter frees the lock of a process that died while migrating.
	staleLockAfter = 10 * time.Minute
)

// MigrationStatus compares the database with the embedded migrations.
type MigrationStatus struct {
	Applied int // the highest applied version
	Latest  int // the highest embedded version
}

// Current reports whether every embedded migration is applied.
func (s MigrationStatus) Current() bool { return s.Applied == s.Latest }

// Migrate applies pending migrations under a database lock row, so replicas that start
// together apply each migration once; the others wait and then find nothing to do. It returns
// the versions it applied.
func (d *DB) Migrate(ctx context.Context) ([]int, error) {
	ms, err := Migrations(d.dialect)
	if err != nil {
		return nil, wrap("migrate", err)
	}
	for _, stmt := range []string{d.ddl(createMigrationsTable), d.ddl(createLockTable)} {
		if err := d.with(ctx).Exec(stmt).Error; err != nil {
			return nil, fmt.Errorf("prepare migrations table: %w", err)
		}
	}
	// Nothing to apply (every start of every replica): no lock. A process killed while holding
	// the lock leaves it for staleLockAfter, so it is taken only when there is work.
	if d.migrated(ctx, ms) {
		return nil, nil
	}
	release, err := d.lockMigrations(ctx)
	if err != nil {
		return nil, wrap("migrate", err)
	}
	defer release()

	applied, err := d.appliedMigrations(ctx)
	if err != nil {
		return nil, wrap("migrate", err)
	}
	var done []int
	for _, m := range ms {
		if sum, ok := applied[m.Version]; ok {
			if sum != m.Checksum {
				return done, fmt.Errorf("migration %d (%s) was changed after it was applied; migrations are immutable, add a new one instead", m.Version, m.Name)
			}
			continue
		}
		if err := d.apply(ctx, m); err != nil {
			return done, fmt.Errorf("migration %d (%s): %w", m.Version, m.Name, err)
		}
		done = append(done, m.Version)
	}
	for v := range applied {
		if v > len(ms) {
			return done, fmt.Errorf("the database has migration %d, newer than this binary knows (%d): run a newer Orchard", v, len(ms))
		}
	}
	return done, nil
}

// Status reports applied and embedded versions without changing anything.
func (d *DB) Status(ctx context.Context) (MigrationStatus, error) {
	ms, err := Migrations(d.dialect)
	if err != nil {
		return MigrationStatus{}, wrap("status", err)
	}
	st := MigrationStatus{Latest: len(ms)}
	var v *int
	err = d.with(ctx).Raw("SELECT MAX(version) FROM schema_migrations").Row().Scan(&v)
	if err != nil {
		return st, fmt.Errorf("read schema_migrations: %w", err)
	}
	if v != nil {
		st.Applied = *v
	}
	return st, nil
}

// migrated reports whether exactly the embedded migrations are applied, unchanged. Anything
// else (an error included) is left to Migrate's checks under the lock.
func (d *DB) migrated(ctx context.Context, ms []Migration) bool {
	applied, err := d.appliedMigrations(ctx)
	if err != nil || len(applied) != len(ms) {
		return false
	}
	for _, m := range ms {
		if sum, ok := applied[m.Version]; !ok || sum != m.Checksum {
			return false
		}
	}
	return true
}

func (d *DB) appliedMigrations(ctx context.Context) (map[int]string, error) {
	rows, err := d.with(ctx).Raw("SELECT version, checksum FROM schema_migrations").Rows()
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	defer rows.Close()
	out := map[int]string{}
	for rows.Next() {
		var v int
		var sum string
		if err := rows.Scan(&v, &sum); err != nil {
			return nil, wrap("applied migrations", err)
		}
		out[v] = sum
	}
	return out, wrap("applied migrations", rows.Err())
}

// apply runs one migration. SQLite runs it in a transaction (its DDL is transactional);
// MySQL commits each DDL statement implicitly, so a migration there must be written so that a
// failure leaves a state an operator can read (one table per statement).
func (d *DB) apply(ctx context.Context, m Migration) error {
	stmts := SplitStatements(m.SQL)
	record := func(tx *DB) error {
		return wrap("apply", tx.with(ctx).Exec("INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)",
			m.Version, m.Name, m.Checksum, Now()).Error)
	}
	if d.dialect == SQLite {
		return d.Tx(ctx, func(tx *DB) error {
			for _, s := range stmts {
				if err := tx.with(ctx).Exec(s).Error; err != nil {
					return fmt.Errorf("%w\nin statement: %s", err, truncate(s, 200))
				}
			}
			return record(tx)
		})
	}
	for _, s := range stmts {
		if err := d.with(ctx).Exec(s).Error; err != nil {
			return fmt.Errorf("%w\nin statement: %s", err, truncate(s, 200))
		}
	}
	return record(d)
}

// lockMigrations takes the single lock row, waiting while another process holds it. A lock
// older than staleLockAfter belongs to a process that died and is taken over.
func (d *DB) lockMigrations(ctx context.Context) (release func(), err error) {
	host, _ := os.Hostname()
	holder := fmt.Sprintf("%s/%d/%d", host, os.Getpid(), time.Now().UnixNano())
	for {
		err := d.with(ctx).Exec("INSERT INTO schema_migrations_lock (id, holder, acquired_at) VALUES (1, ?, ?)", holder, Now()).Error
		if err == nil {
			return func() {
				// Release even when ctx is already cancelled.
				_ = d.with(context.WithoutCancel(ctx)).Exec("DELETE FROM schema_migrations_lock WHERE id = 1 AND holder = ?", holder).Error
			}, nil
		}
		if !isDuplicate(err) {
			return nil, fmt.Errorf("take migration lock: %w", err)
		}
		if err := d.with(ctx).Exec("DELETE FROM schema_migrations_lock WHERE id = 1 AND acquired_at < ?", Now().Add(-staleLockAfter)).Error; err != nil {
			return nil, fmt.Errorf("clear stale migration lock: %w", err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the migration lock: %w", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// ddl adapts the bootstrap statements to the dialect.
func (d *DB) ddl(s string) string {
	if d.dialect == SQLite {
		s = strings.ReplaceAll(s, "DATETIME(6)", "DATETIME")
		s = strings.ReplaceAll(s, "VARCHAR(255)", "TEXT")
		s = strings.ReplaceAll(s, "CHAR(64)", "TEXT")
	}
	return s
}

// SplitStatements splits a migration file into statements at semicolons that end a line,
// dropping comment-only lines.
func SplitStatements(src string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(src, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(trimmed, ";") {
			s := strings.TrimSuffix(strings.TrimSpace(cur.String()), ";")
			out = append(out, s)
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}

var errNotFound = model.ErrNotFound

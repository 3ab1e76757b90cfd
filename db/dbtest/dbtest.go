// Package dbtest gives tests a fresh, migrated Orchard database on every engine available:
// SQLite always, and MySQL/MariaDB when ORCHARD_TEST_MYSQL_DSN is set (CI sets it; the MySQL
// run is the one that matters). Each test gets a database of its own, so tests may run in
// parallel.
package dbtest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"orchard/db"
)

// EnvMySQL names the environment variable with the MySQL server tests use, as
// mysql://USER:PASS@HOST:PORT/DB; tests create and drop databases named DB_t<N> beside DB.
const EnvMySQL = "ORCHARD_TEST_MYSQL_DSN"

// Engine is a database engine tests run on.
type Engine struct {
	Name string
	open func(t testing.TB) *db.DB
}

// Engines lists the engines to test on.
func Engines() []Engine {
	es := []Engine{{Name: "sqlite", open: openSQLite}}
	if os.Getenv(EnvMySQL) != "" {
		es = append(es, Engine{Name: "mysql", open: openMySQL})
	}
	return es
}

// Open returns a fresh migrated database of this engine, closed (and dropped) at cleanup.
func (e Engine) Open(t testing.TB) *db.DB { t.Helper(); return e.open(t) }

// Run runs fn as a subtest on every engine, each with a fresh database.
func Run(t *testing.T, fn func(t *testing.T, d *db.DB)) {
	t.Helper()
	for _, e := range Engines() {
		t.Run(e.Name, func(t *testing.T) { fn(t, e.Open(t)) })
	}
}

// Quiet is a logger for tests that drops everything below ERROR.
func Quiet() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func openSQLite(t testing.TB) *db.DB {
	t.Helper()
	target, err := db.ParseTarget("sqlite:" + filepath.Join(t.TempDir(), "orchard.db"))
	if err != nil {
		t.Fatal(err)
	}
	return openMigrated(t, target)
}

func openMigrated(t testing.TB, target *db.Target) *db.DB {
	t.Helper()
	ctx := context.Background()
	d, err := db.Open(ctx, target, db.Options{Logger: Quiet()})
	if err != nil {
		t.Fatalf("open %s: %v", target, err)
	}
	t.Cleanup(func() { d.Close() })
	if _, err := d.Migrate(ctx); err != nil {
		t.Fatalf("migrate %s: %v", target, err)
	}
	return d
}

var (
	mysqlMu    sync.Mutex
	mysqlAdmin *db.DB
	mysqlSeq   int
)

// openMySQL creates a database of its own for the test on the server named by EnvMySQL.
func openMySQL(t testing.TB) *db.DB {
	t.Helper()
	base, err := db.ParseTarget(os.Getenv(EnvMySQL))
	if err != nil {
		t.Fatalf("%s: %v", EnvMySQL, err)
	}
	if base.Dialect != db.MySQL {
		t.Fatalf("%s must be a mysql:// URL", EnvMySQL)
	}
	ctx := context.Background()
	mysqlMu.Lock()
	if mysqlAdmin == nil {
		mysqlAdmin, err = db.Open(ctx, base, db.Options{Logger: Quiet()})
		if err != nil {
			mysqlMu.Unlock()
			t.Fatalf("MySQL named by %s cannot be reached: %v", EnvMySQL, err)
		}
	}
	mysqlSeq++
	name := fmt.Sprintf("%s_t%d_%d", base.MySQL.DBName, os.Getpid(), mysqlSeq)
	mysqlMu.Unlock()
	name = strings.ReplaceAll(name, "-", "_")
	if err := mysqlAdmin.ExecAdmin(ctx, "DROP DATABASE IF EXISTS `"+name+"`"); err != nil {
		t.Fatal(err)
	}
	if err := mysqlAdmin.ExecAdmin(ctx, "CREATE DATABASE `"+name+"` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() { _ = mysqlAdmin.ExecAdmin(context.Background(), "DROP DATABASE IF EXISTS `"+name+"`") })
	target := *base
	cfg := *base.MySQL
	cfg.DBName = name
	target.MySQL = &cfg
	return openMigrated(t, &target)
}

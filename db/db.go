// Package db opens Orchard's database (SQLite or MySQL/MariaDB), applies its versioned
// migrations, and holds every query: it is the only package that writes SQL. Every function
// takes the caller's context, so a cancelled request stops its queries.
package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	mysqldrv "github.com/go-sql-driver/mysql"
	"gorm.io/driver/mysql"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/logger"

	"orchard/model"
)

// DB is Orchard's handle on its database.
type DB struct {
	gorm    *gorm.DB
	sql     *sql.DB
	dialect Dialect
	target  *Target
	// writers is the token of SQLite's write queue (writequeue.go); nil on MySQL.
	writers chan struct{}
	// observers are told of applied transitions (transitions.go); shared with the copies
	// that transactions make.
	observers *observers
}

// Options tune Open.
type Options struct {
	Logger *slog.Logger
	// SlowQuery logs statements slower than this at WARN; 0 means 500ms.
	SlowQuery time.Duration
}

// Open connects to the target and checks that the database answers. It does not migrate;
// call Migrate (the server does so at start, under a lock).
func Open(ctx context.Context, t *Target, opts Options) (*DB, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.SlowQuery == 0 {
		opts.SlowQuery = 500 * time.Millisecond
	}
	var dialector gorm.Dialector
	switch t.Dialect {
	case SQLite:
		if err := prepareSQLiteFile(t.Path); err != nil {
			return nil, fmt.Errorf("open %s: %w", t, err)
		}
		q := url.Values{}
		q.Add("_pragma", "busy_timeout(10000)")
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "foreign_keys(1)")
		q.Add("_pragma", "synchronous(NORMAL)")
		// Writers take the lock at BEGIN: a deferred transaction that upgrades from read to
		// write in WAL mode fails with SQLITE_BUSY instead of waiting.
		q.Set("_txlock", "immediate")
		// Times are written as "2006-01-02 15:04:05.999999999-07:00" (the driver's default; do
		// not pass _time_format: the driver stops reading parameters after it, and _txlock
		// would be ignored). In UTC such strings sort chronologically.
		dialector = sqlite.Open("file:" + t.Path + "?" + q.Encode())
	case MySQL:
		dialector = mysql.New(mysql.Config{DSNConfig: t.MySQL, DefaultStringSize: 255})
	default:
		return nil, fmt.Errorf("unsupported dialect %q", t.Dialect)
	}
	g, err := openGorm(dialector, opts)
	if err != nil && t.Dialect == MySQL && strings.Contains(err.Error(), "Unknown system variable 'transaction_isolation'") {
		// MariaDB before 11.1 names the variable tx_isolation.
		cfg := *t.MySQL
		cfg.Params = maps.Clone(cfg.Params)
		cfg.Params["tx_isolation"] = cfg.Params["transaction_isolation"]
		delete(cfg.Params, "transaction_isolation")
		t.MySQL = &cfg
		g, err = openGorm(mysql.New(mysql.Config{DSNConfig: t.MySQL, DefaultStringSize: 255}), opts)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", t, err)
	}
	sqlDB, err := g.DB()

	if err != nil {
		return nil, fmt.Errorf("open %s: %w", t, err)
	}
	sqlDB.SetMaxOpenConns(t.MaxOpenConns)
	sqlDB.SetMaxIdleConns(t.MaxIdleConns)
	if t.ConnMaxLifetime > 0 {
		sqlDB.SetConnMaxLifetime(t.ConnMaxLifetime)
	}
	if err := registerCounter(g); err != nil {
		return nil, wrap("open", err)
	}
	if err := registerTracing(g); err != nil {
		return nil, wrap("open", err)
	}
	d := &DB{gorm: g, sql: sqlDB, dialect: t.Dialect, target: t, observers: &observers{}}
	if t.Dialect == SQLite {
		d.writers = make(chan struct{}, 1)
		if err := queueWrites(g, d.writers); err != nil {
			return nil, wrap("open", err)
		}
	}
	pingCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := sqlDB.PingContext(pingCtx); err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("cannot reach database %s: %w", t, err)
	}
	if t.Dialect == SQLite {
		// -wal and -shm left by an earlier version with a wider mode.
		if err := restrictSQLiteFiles(t.Path); err != nil {
			sqlDB.Close()
			return nil, fmt.Errorf("open %s: %w", t, err)
		}
	}
	return d, nil
}

func openGorm(d gorm.Dialector, opts Options) (*gorm.DB, error) {
	return gorm.Open(d, &gorm.Config{
		SkipDefaultTransaction: true,
		TranslateError:         true,
		NowFunc:                func() time.Time { return Now() },
		Logger:                 newGormLogger(opts.Logger, opts.SlowQuery),
	})
}

// Close closes the pool.
func (d *DB) Close() error { return wrap("close", d.sql.Close()) }

// Dialect is the engine in use.
func (d *DB) Dialect() Dialect { return d.dialect }

// Target is what was opened.
func (d *DB) Target() *Target { return d.target }

// Ping checks that the database answers.
func (d *DB) Ping(ctx context.Context) error { return wrap("ping", d.sql.PingContext(ctx)) }

// SQL exposes the pool for benchmarks that compare Orchard with bare statements.
func (d *DB) SQL() *sql.DB { return d.sql }

// Now is the time Orchard writes: UTC, truncated to the microsecond both engines keep, so a
// value read back equals the value written.
func Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// utc normalises a time parameter. SQLite stores times as text, which sorts chronologically
// only when every value has the same offset.
func utc(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func (d *DB) with(ctx context.Context) *gorm.DB { return d.gorm.WithContext(ctx) }

// in returns a copy of d that runs its statements on g (a transaction).
func (d *DB) in(g *gorm.DB) *DB {
	return &DB{gorm: g, sql: d.sql, dialect: d.dialect, target: d.target, writers: d.writers, observers: d.observers}
}

// Tx runs fn in a transaction; a returned error (or panic) rolls it back. A transaction that
// MySQL chose as a deadlock victim (or that timed out waiting for a lock) is run again, up to
// three times: fn must therefore not have effects outside the database. Nested calls run in
// the enclosing transaction. fn's own error comes back as it is (the caller names it); an
// error of the transaction itself (begin, commit, the write queue) is named here.
func (d *DB) Tx(ctx context.Context, fn func(tx *DB) error) error {
	if _, nested := d.gorm.Statement.ConnPool.(gorm.TxCommitter); nested {
		return d.transaction(ctx, fn)
	}
	if d.writers != nil { // see writequeue.go
		if err := takeWriteToken(ctx, d.writers); err != nil {
			return wrap("transaction: wait for the write queue", err)
		}
		defer func() { <-d.writers }()
	}
	var err error
	for attempt := 0; attempt < 4; attempt++ {
		err = d.transaction(ctx, fn)
		if !retryable(err) || ctx.Err() != nil {
			return err
		}
		time.Sleep(time.Duration(attempt+1) * 5 * time.Millisecond)
	}
	return err
}

// transaction runs fn in one GORM transaction (or savepoint, when nested). fn's error is
// returned unchanged; any other (BEGIN, COMMIT, savepoint) is wrapped as the transaction's.
func (d *DB) transaction(ctx context.Context, fn func(tx *DB) error) error {
	var fnErr error
	err := d.gorm.WithContext(ctx).Transaction(func(g *gorm.DB) error {
		fnErr = fn(d.in(g))
		return fnErr
	})
	if err != nil && err != fnErr {
		return wrap("transaction", err)
	}
	return err
}

// retryable reports a transaction error that a retry may not meet: a MySQL deadlock (1213) or
// lock wait timeout (1205), or SQLite's busy error.
func retryable(err error) bool {
	if err == nil {
		return false
	}
	var me *mysqldrv.MySQLError
	if errors.As(err, &me) {
		return me.Number == 1213 || me.Number == 1205
	}
	msg := err.Error()
	return strings.Contains(msg, "SQLITE_BUSY") || strings.Contains(msg, "database is locked")
}

// isDuplicate reports a unique-constraint violation.
func isDuplicate(err error) bool { return errors.Is(err, gorm.ErrDuplicatedKey) }

// notFound maps GORM's record-not-found onto model.ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return errNotFound
	}
	return err
}

// gormLogger sends GORM's slow-query and error logs to slog, without statement parameters
// (they may hold personal data) and without the noise of "record not found".
type gormLogger struct {
	log  *slog.Logger
	slow time.Duration
}

func newGormLogger(l *slog.Logger, slow time.Duration) logger.Interface {
	return &gormLogger{log: l, slow: slow}
}

func (g *gormLogger) LogMode(logger.LogLevel) logger.Interface { return g }
func (g *gormLogger) Info(ctx context.Context, msg string, args ...any) {
	g.log.InfoContext(ctx, fmt.Sprintf(msg, args...))
}
func (g *gormLogger) Warn(ctx context.Context, msg string, args ...any) {
	g.log.WarnContext(ctx, fmt.Sprintf(msg, args...))
}
func (g *gormLogger) Error(ctx context.Context, msg string, args ...any) {
	g.log.ErrorContext(ctx, fmt.Sprintf(msg, args...))
}
func (g *gormLogger) Trace(ctx context.Context, begin time.Time, fc func() (string, int64), err error) {
	elapsed := time.Since(begin)
	if elapsed >= g.slow {
		sql, rows := fc()
		g.log.WarnContext(ctx, "slow query", "elapsed_ms", elapsed.Milliseconds(), "rows", rows, "sql", truncate(sql, 300))
	}
}

// truncate cuts s to at most n characters for a column or a log line: see model.Truncate.
func truncate(s string, n int) string { return model.Truncate(s, n) }

// ExecAdmin runs an administrative statement (CREATE/DROP DATABASE) for test harnesses and
// the migrate command.
func (d *DB) ExecAdmin(ctx context.Context, stmt string) error {
	return wrap("exec admin", d.with(ctx).Exec(stmt).Error)
}

// InsertRows inserts model rows as they are (a struct pointer or a slice of them), in
// batches. It applies no domain rule: it is for test fixtures, benchmarks and the demo.
func (d *DB) InsertRows(ctx context.Context, rows any) error {
	return wrap("insert rows", d.with(ctx).CreateInBatches(rows, 500).Error)
}

// forUpdate adds a row lock on MySQL.
func (d *DB) forUpdate(q *gorm.DB) *gorm.DB {
	if d.dialect == MySQL {
		return q.Clauses(clause.Locking{Strength: clause.LockingStrengthUpdate})
	}
	return q
}

// ErrDuplicate is returned when a row with the same unique key exists.
var ErrDuplicate = errors.New("already exists")

// wrap names the store operation that failed, so that a logged error says which query it was
// ("assignments by parent: Error 1213 ..."); nil stays nil. Sentinels stay matchable with
// errors.Is (model.ErrNotFound, ErrHolderHasLicense, ...).
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", op, err)
}

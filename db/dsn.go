package db

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Dialect names a database engine.
type Dialect string

const (
	SQLite Dialect = "sqlite"
	MySQL  Dialect = "mysql"
)

// Target is a parsed ORCHARD_DATABASE value.
type Target struct {
	Dialect Dialect
	// Path is the SQLite file.
	Path string
	// MySQL is the driver configuration (with the session settings Orchard relies on).
	MySQL *mysql.Config
	// MaxOpenConns and MaxIdleConns bound the pool; ConnMaxLifetime recycles connections.
	MaxOpenConns    int
	MaxIdleConns    int
	ConnMaxLifetime time.Duration
}

// ParseTarget parses ORCHARD_DATABASE: "sqlite:PATH" (PATH may be ":memory:"-free file path) or
// "mysql://USER:PASS@HOST:PORT/DB[?maxOpenConns=N&maxIdleConns=N&connMaxLifetime=DURATION]".
// Errors never echo the password.
func ParseTarget(s string) (*Target, error) {
	switch {
	case strings.HasPrefix(s, "sqlite:"):
		path := strings.TrimPrefix(s, "sqlite:")
		path = strings.TrimPrefix(path, "//")
		if path == "" {
			return nil, fmt.Errorf("sqlite target needs a file path, as in sqlite:orchard.db")
		}
		if strings.ContainsAny(path, "?#") {
			return nil, fmt.Errorf("sqlite path %q must not contain '?' or '#'", path)
		}
		return &Target{Dialect: SQLite, Path: path, MaxOpenConns: 8, MaxIdleConns: 8}, nil
	case strings.HasPrefix(s, "mysql://"):
		return parseMySQL(s)
	default:
		return nil, fmt.Errorf("unsupported database %q: use sqlite:PATH or mysql://USER:PASS@HOST:PORT/DB", redactDSN(s))
	}
}

func parseMySQL(s string) (*Target, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("malformed mysql URL %q", redactDSN(s))
	}
	name := strings.TrimPrefix(u.Path, "/")
	if u.Host == "" || name == "" || strings.Contains(name, "/") {
		return nil, fmt.Errorf("mysql URL %q needs a host and a database name, as in mysql://user:pass@127.0.0.1:3306/orchard", redactDSN(s))
	}
	cfg := mysql.NewConfig()
	cfg.Net = "tcp"
	cfg.Addr = u.Host
	if u.Port() == "" {
		cfg.Addr = u.Host + ":3306"
	}
	cfg.DBName = name
	if u.User != nil {
		cfg.User = u.User.Username()
		cfg.Passwd, _ = u.User.Password()
	}
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	cfg.Collation = "utf8mb4_unicode_ci"
	cfg.InterpolateParams = true
	cfg.Timeout = 10 * time.Second
	cfg.Params = map[string]string{
		// Strict mode turns silent truncation into errors; UTC keeps DATETIME values honest.
		"sql_mode":  "'STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'",
		"time_zone": "'+00:00'",
		// READ COMMITTED avoids gap locks on the hot conditional updates of the write path.
		"transaction_isolation": "'READ-COMMITTED'",
	}
	t := &Target{Dialect: MySQL, MySQL: cfg, MaxOpenConns: 32, MaxIdleConns: 32, ConnMaxLifetime: 5 * time.Minute}
	q := u.Query()
	for k, vs := range q {
		v := vs[len(vs)-1]
		switch k {
		case "maxOpenConns", "maxIdleConns":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return nil, fmt.Errorf("mysql URL parameter %s=%q must be a positive integer", k, v)
			}
			if k == "maxOpenConns" {
				t.MaxOpenConns = n
			} else {
				t.MaxIdleConns = n
			}
		case "connMaxLifetime":
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return nil, fmt.Errorf("mysql URL parameter connMaxLifetime=%q must be a positive duration such as 5m", v)
			}
			t.ConnMaxLifetime = d
		case "tls":
			cfg.TLSConfig = v
		default:
			return nil, fmt.Errorf("unknown mysql URL parameter %q (known: maxOpenConns, maxIdleConns, connMaxLifetime, tls)", k)
		}
	}
	if t.MaxIdleConns > t.MaxOpenConns {
		t.MaxIdleConns = t.MaxOpenConns
	}
	return t, nil
}

// String renders the target without its password, for logs.
func (t *Target) String() string {
	if t.Dialect == SQLite {
		return "sqlite:" + t.Path
	}
	return fmt.Sprintf("mysql://%s@%s/%s", t.MySQL.User, t.MySQL.Addr, t.MySQL.DBName)
}

// redactDSN hides a password in a URL-like string.
func redactDSN(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		if i := strings.LastIndex(s, "@"); i >= 0 {
			return "…" + s[i:]
		}
		return s
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// sqliteFileMode is the mode of an SQLite database and of its -wal and -shm files: readable
// and writable by Orchard's user only. They hold API key hashes, users' emails and the audit
// log, and a world-readable copy is a leak however the process's umask is set.
const sqliteFileMode = 0o600

// prepareSQLiteFile creates the database file with sqliteFileMode before SQLite opens it
// (SQLite creates its -wal and -shm files with the database's own mode, whatever the umask),
// and takes group and other permissions away from a database created before (an upgrade
// tightens what an earlier version left readable).
func prepareSQLiteFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, sqliteFileMode)
	if err != nil {
		return fmt.Errorf("create the database file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("create the database file: %w", err)
	}
	return restrictSQLiteFiles(path)
}

// restrictSQLiteFiles takes group and other permissions away from the database and its -wal
// and -shm files, those that exist.
func restrictSQLiteFiles(path string) error {
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("check the mode of %s: %w", p, err)
		}
		if m := fi.Mode().Perm(); m&0o077 != 0 {
			if err := os.Chmod(p, m&^0o077); err != nil {
				return fmt.Errorf("restrict the mode of %s: %w", p, err)
			}
		}
	}
	return nil
}

package db_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"orchard/db"
)

// parsedTarget is what a test compares of a parsed target: the fields an operator's setting
// decides, so that a field added to db.Target (another branch adds file modes) does not make
// every case of the table fail.
type parsedTarget struct {
	Dialect                    db.Dialect
	Path                       string
	User, Passwd, Addr, DBName string
	TLS                        string
	MaxOpenConns, MaxIdleConns int
	ConnMaxLifetime            time.Duration
	String                     string
}

func parsedOf(t *db.Target) parsedTarget {
	p := parsedTarget{Dialect: t.Dialect, Path: t.Path, MaxOpenConns: t.MaxOpenConns, MaxIdleConns: t.MaxIdleConns,
		ConnMaxLifetime: t.ConnMaxLifetime, String: t.String()}
	if t.MySQL != nil {
		p.User, p.Passwd, p.Addr, p.DBName, p.TLS = t.MySQL.User, t.MySQL.Passwd, t.MySQL.Addr, t.MySQL.DBName, t.MySQL.TLSConfig
	}
	return p
}

// ParseTarget accepts SQLite file paths and MySQL URLs (with or without a password, the port
// defaulting to 3306, the pool options), and renders them for logs without the password.
func TestParseTarget(t *testing.T) {
	t.Parallel()
	sqlite := func(path string) parsedTarget {
		return parsedTarget{Dialect: db.SQLite, Path: path, MaxOpenConns: 8, MaxIdleConns: 8, String: "sqlite:" + path}
	}
	mysql := func(user, pass, addr, name string, edit ...func(*parsedTarget)) parsedTarget {
		p := parsedTarget{Dialect: db.MySQL, User: user, Passwd: pass, Addr: addr, DBName: name, MaxOpenConns: 32, MaxIdleConns: 32,
			ConnMaxLifetime: 5 * time.Minute, String: "mysql://" + user + "@" + addr + "/" + name}
		for _, e := range edit {
			e(&p)
		}
		return p
	}
	for _, tt := range []struct {
		name, in string
		want     parsedTarget
	}{
		{"sqlite, relative path", "sqlite:orchard.db", sqlite("orchard.db")},
		{"sqlite, absolute path", "sqlite:/var/lib/orchard/orchard.db", sqlite("/var/lib/orchard/orchard.db")},
		{"sqlite, URL form", "sqlite:///var/lib/orchard/orchard.db", sqlite("/var/lib/orchard/orchard.db")},
		{"sqlite, spaces kept", "sqlite:my data/orchard.db", sqlite("my data/orchard.db")},
		{"mysql with password", "mysql://orchard:s3cret@db.example.com:3307/orchard", mysql("orchard", "s3cret", "db.example.com:3307", "orchard")},
		{"mysql, escaped password", "mysql://orchard:p%40ss%2Fw@db:3306/orchard", mysql("orchard", "p@ss/w", "db:3306", "orchard")},
		{"mysql, password with @", "mysql://orchard:p@ss@db/orchard", mysql("orchard", "p@ss", "db:3306", "orchard")},
		{"mysql without password", "mysql://root@127.0.0.1/test", mysql("root", "", "127.0.0.1:3306", "test")},
		{"mysql without user", "mysql://db.internal:3306/orchard", mysql("", "", "db.internal:3306", "orchard")},
		{"mysql, pool options", "mysql://u:pw@db/o?maxOpenConns=4&maxIdleConns=2&connMaxLifetime=90s", mysql("u", "pw", "db:3306", "o", func(p *parsedTarget) {
			p.MaxOpenConns, p.MaxIdleConns, p.ConnMaxLifetime = 4, 2, 90*time.Second
		})},
		{"mysql, idle bounded by open", "mysql://u@db/o?maxOpenConns=4&maxIdleConns=10", mysql("u", "", "db:3306", "o", func(p *parsedTarget) {
			p.MaxOpenConns, p.MaxIdleConns = 4, 4
		})},
		{"mysql, the last of a repeated option", "mysql://u@db/o?maxOpenConns=2&maxOpenConns=6", mysql("u", "", "db:3306", "o", func(p *parsedTarget) {
			p.MaxOpenConns, p.MaxIdleConns = 6, 6
		})},
		{"mysql, tls", "mysql://u@db/o?tls=skip-verify", mysql("u", "", "db:3306", "o", func(p *parsedTarget) { p.TLS = "skip-verify" })},
	} {
		got, err := db.ParseTarget(tt.in)
		if err != nil {
			t.Errorf("%s: ParseTarget(%q): %v", tt.name, tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, parsedOf(got)); diff != "" {
			t.Errorf("%s: ParseTarget(%q) mismatch (-want +got):\n%s", tt.name, tt.in, diff)
		}
	}
}

// The session settings Orchard relies on (doc/design.md: strict mode, UTC, READ COMMITTED,
// parsed times) are on every MySQL target, whatever the URL says.
func TestParseTargetMySQLSession(t *testing.T) {
	t.Parallel()
	got, err := db.ParseTarget("mysql://u:pw@db/o?maxOpenConns=3")
	if err != nil {
		t.Fatal(err)
	}
	c := got.MySQL
	have := map[string]any{"net": c.Net, "parseTime": c.ParseTime, "loc": c.Loc.String(), "collation": c.Collation, "interpolateParams": c.InterpolateParams,
		"sql_mode strict": strings.Contains(c.Params["sql_mode"], "STRICT_ALL_TABLES"), "time_zone": c.Params["time_zone"],
		"transaction_isolation": c.Params["transaction_isolation"]}
	want := map[string]any{"net": "tcp", "parseTime": true, "loc": "UTC", "collation": "utf8mb4_unicode_ci", "interpolateParams": true,
		"sql_mode strict": true, "time_zone": "'+00:00'", "transaction_isolation": "'READ-COMMITTED'"}
	if diff := cmp.Diff(want, have); diff != "" {
		t.Errorf("session settings mismatch (-want +got):\n%s", diff)
	}
}

// ParseTarget refuses what it cannot use, with a message that says what is wrong; no message
// echoes the password, whatever part of the setting is wrong.
func TestParseTargetRefusals(t *testing.T) {
	t.Parallel()
	const secret = "Hunter2-SECRET"
	for _, tt := range []struct {
		name, in, says string
	}{
		{"empty", "", "unsupported database"},
		{"no scheme", "orchard.db", "unsupported database"},
		{"another engine", "postgres://u:" + secret + "@db/orchard", "unsupported database"},
		// Unparsable (the space) with an @ inside the password: cut at the last @, not the first.
		{"an @ in the password of an unparsable URL", "postgres://u:" + secret + "@" + secret + " x@db/orchard", "unsupported database"},
		{"a Go driver DSN", "u:" + secret + "@tcp(db:3306)/orchard", "unsupported database"},
		{"sqlite without path", "sqlite:", "needs a file path"},
		{"sqlite URL without path", "sqlite://", "needs a file path"},
		{"sqlite with a query", "sqlite:orchard.db?mode=ro", "must not contain"},
		{"sqlite with a fragment", "sqlite:orchard.db#x", "must not contain"},
		{"mysql without database", "mysql://u:" + secret + "@db:3306", "needs a host and a database name"},
		{"mysql without database, slash", "mysql://u:" + secret + "@db:3306/", "needs a host and a database name"},
		{"mysql without host", "mysql://u:" + secret + "@/orchard", "needs a host and a database name"},
		{"mysql, nested database", "mysql://u:" + secret + "@db/a/b", "needs a host and a database name"},
		{"mysql, malformed host", "mysql://u:" + secret + "@[::1/orchard", "malformed mysql URL"},
		{"mysql, bad escape", "mysql://u:" + secret + "@db/orch%zzard", "malformed mysql URL"},
		{"mysql, maxOpenConns zero", "mysql://u:" + secret + "@db/o?maxOpenConns=0", "must be a positive integer"},
		{"mysql, maxIdleConns not a number", "mysql://u:" + secret + "@db/o?maxIdleConns=many", "must be a positive integer"},
		{"mysql, connMaxLifetime negative", "mysql://u:" + secret + "@db/o?connMaxLifetime=-1s", "must be a positive duration"},
		{"mysql, connMaxLifetime without unit", "mysql://u:" + secret + "@db/o?connMaxLifetime=300", "must be a positive duration"},
		{"mysql, unknown option", "mysql://u:" + secret + "@db/o?password=x", "unknown mysql URL parameter"},
	} {
		got, err := db.ParseTarget(tt.in)
		if err == nil {
			t.Errorf("%s: ParseTarget(%q) = %v, want a refusal", tt.name, tt.in, got)
			continue
		}
		if !strings.Contains(err.Error(), tt.says) {
			t.Errorf("%s: ParseTarget(%q): %q, want it to say %q", tt.name, tt.in, err, tt.says)
		}
		if strings.Contains(err.Error(), "Hunter2") || strings.Contains(err.Error(), "SECRET") {
			t.Errorf("%s: ParseTarget refusal %q echoes the password", tt.name, err)
		}
	}
}

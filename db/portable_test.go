package db_test

// The portability guard: Orchard's SQL must run unchanged on a distributed MySQL-compatible
// engine (TiDB, Vitess) as well as on MySQL/MariaDB. doc/scale-portable.md lists the rules
// below with the engines' documentation; this file is where they are enforced.

import (
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"orchard/db"
	"orchard/db/dbtest"
	"orchard/model"
)

// scope says where a rule applies: to the schema (migrations), to the statements the code
// issues, or to both.
type scope int

const (
	inMigrations scope = 1 << iota
	inQueries
	everywhere = inMigrations | inQueries
)

// portableRule is one construct Orchard avoids. match reports the constructs of a normalised
// statement (see normaliseSQL): each match is a key that names the occurrence (a constraint's
// name, or the construct itself), so that a grandfathered one can be allowed by name.
type portableRule struct {
	id      string
	scope   scope
	why     string // what TiDB or Vitess does with it
	instead string // what Orchard does instead
	match   func(stmt string) []string
}

// re makes a rule's matcher from a pattern over normalised SQL; the key is the construct.
func re(pattern, key string) func(string) []string {
	rx := regexp.MustCompile(pattern)
	return func(s string) []string {
		n := len(rx.FindAllStringIndex(s, -1))
		out := make([]string, n)
		for i := range out {
			out[i] = key
		}
		return out
	}
}

// portableRules are the constructs Orchard avoids. Keep each reason short and point to
// doc/scale-portable.md for the sources.
var portableRules = []portableRule{
	{id: "fk-cascade", scope: inMigrations,
		why:     "cascaded deletes/updates happen inside InnoDB and never reach the binary log, so Vitess VReplication (resharding, MoveTables, online DDL) misses them, and no cascade reaches another shard; TiDB has them only from v6.6 (GA in v8.5)",
		instead: "the store deletes or clears child rows itself, in the transaction that deletes the parent",
		match:   constraintsWhere(regexp.MustCompile(`\bON (DELETE|UPDATE) (CASCADE|SET NULL|SET DEFAULT)\b`))},
	{id: "foreign-key", scope: inMigrations,
		why:     "a foreign key holds only within one MySQL server: Vitess cannot enforce it across shards, PlanetScale refuses sharded keyspaces (and, in its default mode, any DDL) with foreign keys; TiDB before v6.6 parses and ignores them",
		instead: "an index on the column; the store checks the parent in the transaction that writes the child",
		match:   constraintsWhere(nil)},
	{id: "trigger-routine-event", scope: everywhere,
		why:     "TiDB supports no triggers, stored procedures, functions or events; Vitess cannot create procedures through vtgate and CALLs them only on one shard",
		instead: "the behaviour lives in Go, in the store",
		match:   re(`\bCREATE (DEFINER = \S+ )?(TRIGGER|PROCEDURE|FUNCTION|EVENT)\b|^CALL\b`, "trigger, routine or event")},
	{id: "fulltext-spatial", scope: everywhere,
		why:     "TiDB supports neither FULLTEXT nor SPATIAL indexes, MATCH ... AGAINST or GIS types",
		instead: "prefix LIKE over an ordinary index; search, if needed, outside the database",
		match:   re(`\b(FULLTEXT|SPATIAL)\b|\bMATCH \(.*\) AGAINST\b|\b(GEOMETRY|POINT|POLYGON|LINESTRING)\b`, "FULLTEXT/SPATIAL")},
	{id: "table-lock", scope: everywhere,
		why:     "LOCK TABLES is off by default in TiDB (tidb_enable_table_lock, experimental) and means nothing across Vitess shards",
		instead: "row locks (SELECT ... FOR UPDATE on the rows concerned) or a lease row (leases.go)",
		match:   re(`\b(UN)?LOCK TABLES?\b`, "LOCK TABLES")},
	{id: "user-lock", scope: inQueries,
		why:     "GET_LOCK is per session: Vitess allows it only FROM dual on a reserved connection; TiDB clamps timeouts to 1 s..1 h and detects no deadlock between user locks",
		instead: "a lease row with an expiry (AcquireLease), which survives a lost connection",
		match:   re(`\b(GET_LOCK|RELEASE_LOCK|RELEASE_ALL_LOCKS|IS_FREE_LOCK|IS_USED_LOCK) \(`, "user-level lock")},
	{id: "skip-locked", scope: inQueries,
		why:     "SKIP LOCKED / NOWAIT behave differently or not at all across TiDB's pessimistic locks and Vitess shards",
		instead: "claim rows with a conditional UPDATE (status = QUEUED -> SENT) and read what was claimed",
		match:   re(`\bFOR (UPDATE|SHARE)( OF [^ ]+)? (SKIP LOCKED|NOWAIT)\b|\bLOCK IN SHARE MODE\b`, "SKIP LOCKED/NOWAIT/LOCK IN SHARE MODE")},
	{id: "session-state", scope: inQueries,
		why:     "user variables and temporary tables live in one session: a pool hands out any connection, Vitess pins a reserved connection (unsharded keyspaces only for temporary tables), and MySQL 8 deprecates assigning variables inside expressions",
		instead: "pass values as parameters; keep intermediate sets in Go",
		match:   re(`@[A-Z_][A-Z0-9_]* :=|\bSET @[A-Z_]|\bCREATE TEMPORARY TABLE\b`, "session state")},
	{id: "create-table-select", scope: everywhere,
		why:     "TiDB does not support CREATE TABLE ... SELECT",
		instead: "CREATE TABLE, then INSERT ... SELECT in a migration, or copy in Go",
		match:   re(`\bCREATE TABLE [^(]*\b(AS )?SELECT\b`, "CREATE TABLE ... SELECT")},
	{id: "replace-into", scope: inQueries,
		why:     "Vitess refuses REPLACE INTO in a sharded keyspace; REPLACE deletes and re-inserts, giving the row a new id",
		instead: "INSERT ... ON DUPLICATE KEY UPDATE of the changed columns (GORM clause.OnConflict)",
		match:   re(`^REPLACE (LOW_PRIORITY |DELAYED )?(INTO )?[A-Z0-9_.]+ (\(|VALUES\b|SET\b|SELECT\b)`, "REPLACE")},
	{id: "insert-ignore", scope: inQueries,
		why:     "INSERT IGNORE also turns data errors (truncation, bad values) into warnings, which TiDB and MySQL report differently",
		instead: "ON DUPLICATE KEY UPDATE id = id (GORM OnConflict{DoNothing: true}) to skip duplicates only",
		match:   re(`^INSERT (LOW_PRIORITY |HIGH_PRIORITY |DELAYED )?IGNORE\b`, "INSERT IGNORE")},
	{id: "multi-table-dml", scope: inQueries,
		why:     "Vitess refuses UPDATE or DELETE over several tables (joins or lists) unless all rows are on one shard",
		instead: "select the ids, then update or delete by id IN (...)",
		match:   re(`^UPDATE [^ ]+( AS)?( [A-Z0-9_]+)? (,|(INNER |LEFT |RIGHT |CROSS |STRAIGHT_)?JOIN\b)|^DELETE [^ ]+( , [^ ]+)* FROM\b|^DELETE FROM [^ ]+ USING\b`, "multi-table UPDATE/DELETE")},
	{id: "dml-limit", scope: inQueries,
		why:     "Vitess refuses UPDATE or DELETE with LIMIT across shards (the order of rows is not defined there)",
		instead: "select the ids (ORDER BY ... LIMIT), then update or delete by id",
		match:   dmlLimit},
	{id: "same-table-subquery", scope: inQueries,
		why:     "an UPDATE or DELETE reading its own table in a subquery: MySQL refuses it (1093) unless wrapped in a derived table, a workaround whose locking differs on TiDB and which Vitess refuses in sharded DML",
		instead: "select the ids first, then update or delete by id",
		match:   sameTableSubquery},
	{id: "last-insert-id", scope: inQueries,
		why:     "LAST_INSERT_ID() is session state: with Vitess sequences the id is made by vtgate, and LAST_INSERT_ID(expr) is not guaranteed to take the row MySQL would",
		instead: "read the id from the insert's result (GORM fills the model's ID)",
		match:   re(`\bLAST_INSERT_ID \(`, "LAST_INSERT_ID")},
	{id: "insert-select-auto-id", scope: inQueries,
		why:     "INSERT ... SELECT into a table with an AUTO_INCREMENT id: Vitess refuses it when the id comes from a sequence (any sharded table), and it is not one shard's statement",
		instead: "read the rows, then insert them in batches (CreateInBatches) in the same transaction",
		match:   insertSelect},
	{id: "engine-specific", scope: everywhere,
		why:     "TiDB-only syntax (AUTO_RANDOM, SHARD_ROW_ID_BITS, PRE_SPLIT_REGIONS, AUTO_ID_CACHE) and Vitess directives outside comments fail on MySQL; the same SQL must run on every engine",
		instead: "put engine-only options in the engine's executable comment (/*T! ... */), never in Orchard's SQL",
		match:   re(`\b(AUTO_RANDOM|SHARD_ROW_ID_BITS|PRE_SPLIT_REGIONS|AUTO_ID_CACHE)\b`, "engine-only option")},
}

// fkClause finds the foreign keys of a statement: CONSTRAINT name FOREIGN KEY (...)
// REFERENCES t (...) with its ON DELETE / ON UPDATE actions, up to the next comma at the
// clause (a normalised statement has no literals and one space between tokens).
var fkClause = regexp.MustCompile(`(?:CONSTRAINT ([A-Z0-9_]+) )?FOREIGN KEY (?:[A-Z0-9_]+ )?\( [^)]* \) REFERENCES [^ ]+ \( [^)]* \)((?: ON (?:DELETE|UPDATE) (?:CASCADE|SET NULL|SET DEFAULT|RESTRICT|NO ACTION))*)`)

// constraintsWhere returns a matcher of the foreign keys whose actions match actions (every
// foreign key when actions is nil), keyed by constraint name (lower case, as written).
func constraintsWhere(actions *regexp.Regexp) func(string) []string {
	return func(s string) []string {
		var out []string
		for i, m := range fkClause.FindAllStringSubmatch(s, -1) {
			if actions != nil && !actions.MatchString(m[2]) {
				continue
			}
			name := strings.ToLower(m[1])
			if name == "" {
				name = "unnamed#" + strconv.Itoa(i+1)
			}
			out = append(out, name)
		}
		return out
	}
}

var (
	dmlHead    = regexp.MustCompile(`^(UPDATE|DELETE FROM) ([A-Z0-9_]+)\b`)
	limitTail  = regexp.MustCompile(`\bLIMIT [0-9?]+$`)
	insertHead = regexp.MustCompile(`^INSERT (IGNORE )?INTO ([A-Z0-9_]+) (\( [^)]* \) )?(\( )?SELECT\b`)
)

// dmlLimit finds an UPDATE or DELETE that ends in LIMIT (a subquery's LIMIT is inside
// parentheses and does not end the statement).
func dmlLimit(s string) []string {
	if dmlHead.MatchString(s) && limitTail.MatchString(s) {
		return []string{"UPDATE/DELETE ... LIMIT"}
	}
	return nil
}

// sameTableSubquery finds an UPDATE t or DELETE FROM t whose statement reads t again.
func sameTableSubquery(s string) []string {
	m := dmlHead.FindStringSubmatchIndex(s)
	if m == nil {
		return nil
	}
	table := s[m[4]:m[5]]
	again := regexp.MustCompile(`\b(FROM|JOIN) ` + regexp.QuoteMeta(table) + `\b`)
	if again.MatchString(s[m[1]:]) {
		return []string{"subquery on " + strings.ToLower(table)}
	}
	return nil
}

// autoIDTables are the tables whose id is AUTO_INCREMENT, read from the MySQL migrations.
var autoIDTables = sync.OnceValue(func() map[string]bool {
	out := map[string]bool{}
	create := regexp.MustCompile(`^CREATE TABLE (?:IF NOT EXISTS )?([A-Z0-9_]+) \(.*\bAUTO_INCREMENT\b`)
	files, _ := filepath.Glob("migrations/mysql/*.sql")
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, st := range db.SplitStatements(string(b)) {
			if m := create.FindStringSubmatch(normaliseSQL(st)); m != nil {
				out[m[1]] = true
			}
		}
	}
	return out
})

// insertSelect finds INSERT ... SELECT into a table with an AUTO_INCREMENT id.
func insertSelect(s string) []string {
	m := insertHead.FindStringSubmatch(s)
	if m != nil && autoIDTables()[m[2]] {
		return []string{"INSERT ... SELECT into " + strings.ToLower(m[2])}
	}
	return nil
}

// grandfathered lists constructs that exist and may stay, each with why and its plan. The
// key is rule, file (relative to db/) and the finding's key; for code, the finding's key is
// prefixed by the function. An entry that no longer matches a finding fails the guard, so
// the list stays true: remove it with the construct.
var grandfathered = map[string]string{}

func init() {
	// Migrations 0001 and 0006 created cascading foreign keys; migrations are immutable, so
	// they stay in those files. Migration 0008 drops every one of them on MySQL, which
	// TestPortableSchemaHasNoCascades checks (from the files, and on a live MySQL).
	for file, names := range map[string][]string{
		"0001_initial.sql": {"fk_app_countries_app", "fk_apple_users_user", "fk_devices_user", "fk_device_apps_device",
			"fk_device_apps_app", "fk_license_assignments_device", "fk_license_assignments_user", "fk_group_members_group",
			"fk_group_members_user", "fk_label_groups_label", "fk_label_groups_group"},
		"0006_policy.sql": {"fk_group_devices_group", "fk_group_devices_device", "fk_label_accounts_label", "fk_policy_waiting_label"},
	} {
		for _, dialect := range []string{"mysql", "sqlite"} {
			for _, n := range names {
				grandfathered["fk-cascade|migrations/"+dialect+"/"+file+"|"+n] = "dropped on MySQL by 0008; SQLite keeps it, unused"
				grandfathered["foreign-key|migrations/"+dialect+"/"+file+"|"+n] = "dropped on MySQL by 0008; SQLite keeps it, unused"
			}
		}
	}
	// The plain foreign keys of 0001 and 0006 stay until Orchard is sharded: they run on TiDB
	// (v6.6+) and on an unsharded Vitess keyspace with foreign keys allowed. Before
	// sharding, a forward migration drops them on MySQL (the store checks parents already).
	for file, names := range map[string][]string{
		"0001_initial.sql": {"fk_license_pools_account", "fk_license_pools_app", "fk_apple_users_account",
			"fk_license_assignments_pool", "fk_labels_app", "fk_labels_account", "fk_device_commands_device", "fk_device_commands_app"},
		"0006_policy.sql": {"fk_label_accounts_account"},
	} {
		for _, dialect := range []string{"mysql", "sqlite"} {
			for _, n := range names {
				grandfathered["foreign-key|migrations/"+dialect+"/"+file+"|"+n] = "kept until sharding; see doc/scale-portable.md"
			}
		}
	}
	// The two INSERT ... SELECT into policy_queue (db/policy.go) run on TiDB and on an
	// unsharded Vitess keyspace with MySQL's own AUTO_INCREMENT. Plan: read the app ids, then
	// EnqueuePolicy them in the same transaction, before policy_queue is sharded.
	grandfathered["insert-select-auto-id|policy.go|EnqueueWaitingApps: INSERT ... SELECT into policy_queue"] = "unsharded policy_queue; plan in doc/scale-portable.md"
	grandfathered["insert-select-auto-id|policy.go|EnqueueAppsWithWaiting: INSERT ... SELECT into policy_queue"] = "unsharded policy_queue; plan in doc/scale-portable.md"
}

// finding is one construct found at a place.
type finding struct {
	rule  *portableRule
	file  string // relative to db/
	line  int
	key   string // for the allowlist
	text  string // the statement, shortened
	where scope
}

func (f finding) allowKey() string { return f.rule.id + "|" + f.file + "|" + f.key }

// TestPortableSQL is the guard of doc/scale-portable.md: no migration and no statement in
// the store's code uses a construct of portableRules, except the grandfathered ones, and
// every grandfathered entry still matches something. A failure names the file and line, the
// construct, why it does not run on TiDB or Vitess, and what Orchard does instead.
func TestPortableSQL(t *testing.T) {
	t.Parallel()
	var found []finding
	for _, dialect := range []string{"mysql", "sqlite"} {
		found = append(found, scanMigrations(t, dialect)...)
	}
	found = append(found, scanCode(t)...)
	if len(found) == 0 {
		t.Fatal("the guard found nothing at all, not even the grandfathered constructs: it is not reading the sources")
	}
	checkFindings(t, found, grandfathered)
}

// checkFindings fails for each finding not allowed, and for each allowlist entry that
// matches no finding.
func checkFindings(t *testing.T, found []finding, allowed map[string]string) {
	t.Helper()
	checkFindingsInto(t, found, allowed)
}

// checkFindingsInto is checkFindings reporting to any test-like t (the guard's own test
// passes a recorder).
func checkFindingsInto(t errorer, found []finding, allowed map[string]string) {
	t.Helper()
	used := map[string]bool{}
	var bad []string
	for _, f := range found {
		k := f.allowKey()
		if _, ok := allowed[k]; ok {
			used[k] = true
			continue
		}
		bad = append(bad, fmt.Sprintf("db/%s:%d: %s (%s): %s\n    why: %s\n    instead: %s\n    in: %s",
			f.file, f.line, f.rule.id, f.key, "not portable to TiDB/Vitess", f.rule.why, f.rule.instead, f.text))
	}
	sort.Strings(bad)
	for _, b := range bad {
		t.Error(b)
	}
	var stale []string
	for k := range allowed {
		if !used[k] {
			stale = append(stale, k)
		}
	}
	sort.Strings(stale)
	for _, k := range stale {
		t.Errorf("grandfathered entry %q matches nothing any more: remove it from the list", k)
	}
}

// scanMigrations checks every statement of a dialect's migration files, exactly as Migrate
// splits them (the split is compared with db.SplitStatements), with the line each starts on.
func scanMigrations(t *testing.T, dialect string) []finding {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("migrations", dialect, "*.sql"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no %s migrations found (%v)", dialect, err)
	}
	var out []finding
	for _, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		stmts := splitWithLines(string(b))
		var texts []string
		for _, s := range stmts {
			texts = append(texts, s.text)
		}
		if diff := cmp.Diff(db.SplitStatements(string(b)), texts); diff != "" {
			t.Fatalf("%s: the guard splits statements unlike Migrate (-migrate +guard):\n%s", path, diff)
		}
		for _, s := range stmts {
			out = append(out, scanStatement(filepath.ToSlash(path), s.line, s.text, inMigrations, "")...)
		}
	}
	return out
}

type lineStmt struct {
	line int
	text string
}

// splitWithLines splits a migration like db.SplitStatements and records each statement's
// first line.
func splitWithLines(src string) []lineStmt {
	var out []lineStmt
	var cur strings.Builder
	start := 0
	for i, line := range strings.Split(src, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "--") {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(trimmed, ";") {
			out = append(out, lineStmt{start, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";")})
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, lineStmt{start, s})
	}
	return out
}

// scanStatement applies the rules of scope to one statement; prefix goes before each key
// (the function, for code).
func scanStatement(file string, line int, stmt string, where scope, prefix string) []finding {
	n := normaliseSQL(stmt)
	var out []finding
	for i := range portableRules {
		r := &portableRules[i]
		if r.scope&where == 0 {
			continue
		}
		for _, key := range r.match(n) {
			out = append(out, finding{rule: r, file: strings.TrimPrefix(file, "db/"), line: line, key: prefix + key,
				text: shorten(strings.Join(strings.Fields(stmt), " "), 160), where: where})
		}
	}
	return out
}

var (
	sqlBlockComment = regexp.MustCompile(`(?s)/\*.*?\*/`)
	sqlLineComment  = regexp.MustCompile(`(?m)(--|#)[^\n]*$`)
	sqlString       = regexp.MustCompile(`'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.)*"`)
	sqlSpace        = regexp.MustCompile(`\s+`)
	sqlPunct        = strings.NewReplacer(":=", " := ", "(", " ( ", ")", " ) ", ",", " , ", "=", " = ")
)

// normaliseSQL makes a statement easy to match: comments (executable ones included) and
// string literals removed, backquotes dropped, upper case, and exactly one space between
// tokens, parentheses, commas, '=' and ':=' included ("KEY(a)" reads "KEY ( A )").
// Double-quoted text is a string in MySQL's default mode.
func normaliseSQL(s string) string {
	s = sqlBlockComment.ReplaceAllString(s, " ")
	s = sqlLineComment.ReplaceAllString(s, " ")
	s = sqlString.ReplaceAllString(s, "''")
	s = strings.ReplaceAll(s, "`", "")
	s = strings.ToUpper(s)
	s = sqlPunct.Replace(s)
	s = sqlSpace.ReplaceAllString(s, " ")
	return strings.TrimSpace(s)
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// sqlStart tells a Go string that holds SQL (a whole statement or a fragment of one) from
// other text: it has an SQL keyword at a word boundary.
var sqlStart = regexp.MustCompile(`(?i)\b(SELECT|INSERT|UPDATE|DELETE|REPLACE|CREATE|ALTER|DROP|LOCK|UNLOCK|SET|CALL|FOR UPDATE|FOR SHARE|SKIP LOCKED|NOWAIT|ON DUPLICATE|IGNORE|LIMIT|GET_LOCK|RELEASE_LOCK|LAST_INSERT_ID|MATCH|FULLTEXT|AUTO_RANDOM|TEMPORARY|JOIN|USING)\b|@\w+\s*:=`)

// scanCode checks the SQL in the store's Go source (db/*.go, not tests): every string
// literal, a concatenation of literals and other expressions read as one string with '?'
// for the expressions, and the GORM clauses that make SQL (clause.Insert's modifier,
// clause.Locking's strength and options).
func scanCode(t *testing.T) []finding {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var out []finding
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, scanGoFile(fset, f, name)...)
	}
	return out
}

// scanGoFile finds the SQL of one parsed file; see scanCode.
func scanGoFile(fset *token.FileSet, f *ast.File, name string) []finding {
	var out []finding
	for _, decl := range f.Decls {
		fn := "package"
		if fd, ok := decl.(*ast.FuncDecl); ok {
			fn = fd.Name.Name
		}
		add := func(pos token.Pos, text string) {
			if !sqlStart.MatchString(text) {
				return
			}
			out = append(out, scanStatement(name, fset.Position(pos).Line, text, inQueries, fn+": ")...)
		}
		ast.Inspect(decl, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.BinaryExpr:
				if x.Op == token.ADD {
					if text, ok := concatText(x); ok {
						add(x.Pos(), text)
						return false
					}
				}
			case *ast.BasicLit:
				if x.Kind == token.STRING {
					if s, err := strconv.Unquote(x.Value); err == nil {
						add(x.Pos(), s)
					}
				}
			case *ast.CompositeLit:
				if text := clauseText(x); text != "" {
					add(x.Pos(), text)
					return false
				}
			}
			return true
		})
	}
	return out
}

// concatText reads a + chain with at least one string literal as one string, '?' standing
// for the other operands.
func concatText(e *ast.BinaryExpr) (string, bool) {
	var parts []string
	lit := false
	var walk func(ast.Expr)
	walk = func(x ast.Expr) {
		switch v := x.(type) {
		case *ast.BinaryExpr:
			if v.Op == token.ADD {
				walk(v.X)
				walk(v.Y)
				return
			}
		case *ast.ParenExpr:
			walk(v.X)
			return
		case *ast.BasicLit:
			if v.Kind == token.STRING {
				if s, err := strconv.Unquote(v.Value); err == nil {
					parts = append(parts, s)
					lit = true
					return
				}
			}
		}
		parts = append(parts, " ? ")
	}
	walk(e)
	return strings.Join(parts, ""), lit
}

// clauseText renders the GORM clauses whose SQL the literal scan cannot see: an INSERT
// modifier (clause.Insert{Modifier: "IGNORE"}) and a lock's options
// (clause.Locking{Strength: ..., Options: "SKIP LOCKED"}).
func clauseText(c *ast.CompositeLit) string {
	sel, ok := c.Type.(*ast.SelectorExpr)
	if !ok {
		return ""
	}
	if id, ok := sel.X.(*ast.Ident); !ok || id.Name != "clause" {
		return ""
	}
	field := func(name string) string {
		for _, el := range c.Elts {
			kv, ok := el.(*ast.KeyValueExpr)
			if !ok {
				continue
			}
			if k, ok := kv.Key.(*ast.Ident); ok && k.Name == name {
				switch v := kv.Value.(type) {
				case *ast.BasicLit:
					s, _ := strconv.Unquote(v.Value)
					return s
				case *ast.SelectorExpr: // clause.LockingStrengthUpdate
					return strings.TrimPrefix(v.Sel.Name, "LockingStrength")
				}
			}
		}
		return ""
	}
	switch sel.Sel.Name {
	case "Insert":
		if m := field("Modifier"); m != "" {
			return "INSERT " + m + " INTO t (a) VALUES (?)"
		}
	case "Locking":
		return "SELECT * FROM t FOR " + field("Strength") + " " + field("Options")
	}
	return ""
}

// TestPortableGuardCatches runs the rules on sample statements, so that the guard itself
// can fail: each bad statement is caught by the rule named, each good one by none.
func TestPortableGuardCatches(t *testing.T) {
	t.Parallel()
	bad := []struct{ rule, sql string }{
		{"fk-cascade", "CREATE TABLE c (id BIGINT, p BIGINT, CONSTRAINT fk_c_p FOREIGN KEY (p) REFERENCES p (id) ON DELETE CASCADE)"},
		{"fk-cascade", "ALTER TABLE c ADD CONSTRAINT fk_x FOREIGN KEY(p) REFERENCES `p`(id) ON UPDATE SET NULL"},
		{"foreign-key", "ALTER TABLE c ADD CONSTRAINT fk_x FOREIGN KEY (p) REFERENCES p (id)"},
		{"foreign-key", "CREATE TABLE c (p BIGINT, FOREIGN KEY (p) REFERENCES p (id))"},
		{"trigger-routine-event", "CREATE TRIGGER t BEFORE INSERT ON x FOR EACH ROW SET NEW.a = 1"},
		{"trigger-routine-event", "CREATE DEFINER = root PROCEDURE p() BEGIN END"},
		{"trigger-routine-event", "CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO DELETE FROM x"},
		{"trigger-routine-event", "CALL refresh_counts(?)"},
		{"fulltext-spatial", "CREATE FULLTEXT INDEX ix ON apps (name)"},
		{"fulltext-spatial", "SELECT id FROM apps WHERE MATCH (name) AGAINST (?)"},
		{"fulltext-spatial", "ALTER TABLE d ADD COLUMN at POINT NOT NULL"},
		{"table-lock", "LOCK TABLES accounts WRITE"},
		{"table-lock", "unlock tables"},
		{"user-lock", "SELECT GET_LOCK('orchard-sync', 10)"},
		{"user-lock", "select release_lock(?)"},
		{"skip-locked", "SELECT id FROM apple_outbox WHERE status = ? FOR UPDATE SKIP LOCKED"},
		{"skip-locked", "SELECT id FROM apple_outbox FOR UPDATE NOWAIT"},
		{"skip-locked", "SELECT id FROM apple_outbox LOCK IN SHARE MODE"},
		{"session-state", "SELECT @n := @n + 1 AS rank FROM x"},
		{"session-state", "SET @last = ?"},
		{"session-state", "CREATE TEMPORARY TABLE t (id BIGINT)"},
		{"create-table-select", "CREATE TABLE copy AS SELECT * FROM apps"},
		{"create-table-select", "CREATE TABLE copy SELECT id FROM apps"},
		{"replace-into", "REPLACE INTO settings (name, value) VALUES (?, ?)"},
		{"insert-ignore", "INSERT IGNORE INTO group_members (group_id, user_id) VALUES (?, ?)"},
		{"multi-table-dml", "UPDATE license_pools p JOIN accounts a ON a.id = p.account_id SET p.total_count = 0"},
		{"multi-table-dml", "UPDATE license_pools, accounts SET license_pools.total_count = 0 WHERE accounts.id = license_pools.account_id"},
		{"multi-table-dml", "DELETE la FROM license_assignments la JOIN license_pools p ON p.id = la.pool_id"},
		{"dml-limit", "DELETE FROM apple_notifications WHERE received_at < ? LIMIT 1000"},
		{"dml-limit", "UPDATE apple_outbox SET status = ? WHERE status = ? ORDER BY id LIMIT ?"},
		{"same-table-subquery", "DELETE FROM sync_runs WHERE id IN (SELECT id FROM (SELECT id FROM sync_runs WHERE account_id = ?) x)"},
		{"same-table-subquery", "UPDATE license_pools SET total_count = (SELECT MAX(total_count) FROM license_pools) WHERE id = ?"},
		{"last-insert-id", "SELECT LAST_INSERT_ID()"},
		{"insert-select-auto-id", "INSERT INTO policy_queue (app_id, reason) SELECT app_id, ? FROM policy_waiting"},
		{"insert-select-auto-id", "insert into `audit_events` (at) (select at from audit_events)"},
		{"engine-specific", "CREATE TABLE x (id BIGINT AUTO_RANDOM PRIMARY KEY)"},
		{"engine-specific", "ALTER TABLE x SHARD_ROW_ID_BITS = 4"},
	}
	good := []string{
		"CREATE TABLE c (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, p BIGINT NOT NULL, KEY ix_c_p (p))",
		"ALTER TABLE c DROP FOREIGN KEY fk_c_p",
		"SELECT * FROM accounts WHERE id = ? FOR UPDATE",
		"INSERT INTO group_members (group_id, user_id) VALUES (?, ?) ON DUPLICATE KEY UPDATE group_id = group_id",
		"INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND)",
		"UPDATE license_pools SET reserved_count = reserved_count + 1 WHERE id = ? AND reserved_count < total_count",
		"UPDATE license_assignments SET status = ? WHERE pool_id IN (SELECT id FROM license_pools WHERE account_id = ?)",
		"DELETE FROM leases WHERE name = ? AND holder = ?",
		"SELECT name FROM apps WHERE name LIKE ? ORDER BY name LIMIT 50",
		"SELECT id FROM apple_outbox WHERE status = 'FOR UPDATE SKIP LOCKED'", // a literal, not a clause
		"INSERT INTO policy_waiting (label_id, holder_key) SELECT label_id, holder_key FROM policy_waiting_old",
		"CREATE TABLE t (id BIGINT) /*T! SHARD_ROW_ID_BITS=4 */",
		"SAVEPOINT sp1",
		"SELECT UTC_TIMESTAMP(6)",
	}
	for _, c := range bad {
		got := scanStatement("sample.sql", 1, c.sql, everywhere, "")
		ids := map[string]bool{}
		for _, f := range got {
			ids[f.rule.id] = true
		}
		if !ids[c.rule] {
			t.Errorf("%q: not caught by %s (caught by %v)", c.sql, c.rule, slices.Sorted(mapsKeys(ids)))
		}
	}
	for _, s := range good {
		for _, f := range scanStatement("sample.sql", 1, s, everywhere, "") {
			if f.rule.id == "foreign-key" || f.rule.id == "fk-cascade" {
				t.Errorf("%q: flagged by %s, want none", s, f.rule.id)
				continue
			}
			t.Errorf("%q: flagged by %s (%s), want none", s, f.rule.id, f.key)
		}
	}

	// The Go side: literals, concatenations and GORM clauses are read, other strings not.
	src := `package db
func A() { q := "SELECT id FROM t WHERE a = ? " + cond + " FOR UPDATE SKIP LOCKED"; _ = q }
func B() { db.Clauses(clause.Locking{Strength: clause.LockingStrengthUpdate, Options: "NOWAIT"}) }
func C() { db.Clauses(clause.Insert{Modifier: "IGNORE"}) }
func D() { db.Exec("REPLACE INTO settings (name, value) VALUES (?, ?)") }
func E() { db.Clauses(clause.Locking{Strength: clause.LockingStrengthUpdate}) }
func F() { log("the outbox items are claimed, never locked") }
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "x.go", src, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, fd := range scanGoFile(fset, f, "x.go") {
		got[strings.SplitN(fd.key, ":", 2)[0]] = fd.rule.id
	}
	want := map[string]string{"A": "skip-locked", "B": "skip-locked", "C": "insert-ignore", "D": "replace-into"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Go scan (-want +got):\n%s", diff)
	}

	// The allowlist: an allowed finding passes, a stale entry fails, an unknown finding fails.
	rule := &portableRules[0]
	ft := &fakeT{}
	checkFindingsInto(ft, []finding{{rule: rule, file: "a.sql", key: "fk_a"}},
		map[string]string{rule.id + "|a.sql|fk_a": "ok", rule.id + "|a.sql|fk_gone": "stale"})
	if len(ft.errs) != 1 || !strings.Contains(ft.errs[0], "fk_gone") {
		t.Errorf("stale allowlist entry: errors %q, want one naming fk_gone", ft.errs)
	}
	ft = &fakeT{}
	checkFindingsInto(ft, []finding{{rule: rule, file: "a.sql", line: 7, key: "fk_new"}}, map[string]string{})
	if len(ft.errs) != 1 || !strings.Contains(ft.errs[0], "db/a.sql:7: fk-cascade (fk_new)") || !strings.Contains(ft.errs[0], "why: ") {
		t.Errorf("unknown finding: errors %q, want one naming the place, the rule and why", ft.errs)
	}
}

// fakeT collects the errors of checkFindingsInto for the guard's own test.
type fakeT struct{ errs []string }

func (f *fakeT) Helper()                        {}
func (f *fakeT) Errorf(format string, a ...any) { f.errs = append(f.errs, fmt.Sprintf(format, a...)) }
func (f *fakeT) Error(a ...any)                 { f.errs = append(f.errs, fmt.Sprint(a...)) }

type errorer interface {
	Helper()
	Errorf(string, ...any)
	Error(...any)
}

func mapsKeys(m map[string]bool) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestPortableSchemaHasNoCascades: after every MySQL migration, no foreign key cascades or
// sets NULL — read from the files (each CONSTRAINT created and not dropped later), and, on
// MySQL, from the migrated database itself.
func TestPortableSchemaHasNoCascades(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("migrations/mysql/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("no MySQL migrations (%v)", err)
	}
	cascading := map[string]string{} // constraint -> where it was created
	all := 0
	drop := regexp.MustCompile(`^ALTER TABLE [A-Z0-9_]+ DROP FOREIGN KEY ([A-Z0-9_]+)$`)
	for _, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range splitWithLines(string(b)) {
			n := normaliseSQL(st.text)
			all += len(constraintsWhere(nil)(n))
			for _, name := range constraintsWhere(regexp.MustCompile(`\bON (DELETE|UPDATE) (CASCADE|SET NULL|SET DEFAULT)\b`))(n) {
				cascading[name] = fmt.Sprintf("%s:%d", path, st.line)
			}
			if m := drop.FindStringSubmatch(n); m != nil {
				delete(cascading, strings.ToLower(m[1]))
			}
		}
	}
	if all == 0 {
		t.Fatal("no foreign key found in the MySQL migrations: the parser is not reading them")
	}
	for name, at := range cascading {
		t.Errorf("db/%s: foreign key %s cascades and no later migration drops it", at, name)
	}
	for _, e := range dbtest.Engines() {
		if e.Name != "mysql" {
			continue
		}
		t.Run(e.Name, func(t *testing.T) {
			d := e.Open(t)
			rows, err := d.SQL().QueryContext(context.Background(), `SELECT constraint_name, delete_rule, update_rule
FROM information_schema.referential_constraints WHERE constraint_schema = DATABASE()`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			n := 0
			for rows.Next() {
				var name, del, upd string
				if err := rows.Scan(&name, &del, &upd); err != nil {
					t.Fatal(err)
				}
				n++
				for _, rule := range []string{del, upd} {
					if rule != "RESTRICT" && rule != "NO ACTION" {
						t.Errorf("live MySQL schema: foreign key %s is ON DELETE %s ON UPDATE %s", name, del, upd)
					}
				}
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				t.Error("the live MySQL schema has no foreign key at all: the query reads the wrong schema")
			}
		})
	}
}

// TestPortableStatementsIssued runs a representative slice of the store on every engine and
// checks the statements GORM actually wrote (including what its builders add: locking
// clauses, upserts, savepoints), as the tracing callbacks record them. It complements the
// source scan, which sees the literals but not GORM's own SQL. The statements insertRows
// sends past GORM (batch.go) are literals, which the source scan reads.
func TestPortableStatementsIssued(t *testing.T) {
	rec := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(rec))
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp)
	t.Cleanup(func() { otel.SetTracerProvider(prev); _ = tp.Shutdown(context.Background()) })
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		ctx, root := tp.Tracer("portable-test").Start(context.Background(), "workload "+t.Name())
		portableWorkload(t, ctx, d)
		root.End()
		var found []finding
		n, locks := 0, 0
		for _, s := range rec.GetSpans() {
			if s.Parent.TraceID() != root.SpanContext().TraceID() {
				continue
			}
			for _, a := range s.Attributes {
				if a.Key != attribute.Key("db.query.text") {
					continue
				}
				q := a.Value.AsString()
				n++
				if strings.Contains(strings.ToUpper(q), "FOR UPDATE") {
					locks++
				}
				found = append(found, scanStatement("(issued on "+string(d.Dialect())+")", 0, q, inQueries, "")...)
			}
		}
		if n < 12 {
			t.Fatalf("only %d statements recorded: the capture does not see the workload", n)
		}
		if d.Dialect() == db.MySQL && locks == 0 {
			t.Error("no SELECT ... FOR UPDATE recorded on MySQL: the capture misses GORM's clauses")
		}
		checkFindings(t, found, map[string]string{})
	})
}

// portableWorkload exercises the store's kinds of SQL: inserts through GORM, upserts that
// skip or update duplicates, row locks, nested transactions (savepoints), leases, the outbox
// and group membership.
func portableWorkload(t *testing.T, ctx context.Context, d *db.DB) {
	t.Helper()
	s := seedAll(t, d)
	if err := d.Tx(ctx, func(tx *db.DB) error {
		if _, err := tx.LockAccount(ctx, s.Account.ID); err != nil {
			return err
		}
		return tx.Tx(ctx, func(inner *db.DB) error {
			_, err := inner.AcquireLease(ctx, "portable-test", "me", time.Minute)
			return err
		})
	}); err != nil {
		t.Fatal(err)
	}
	if err := d.SetAvailability(ctx, []model.AppCountry{{AppID: s.App.ID, CountryCode: "us", Available: true, CheckedAt: db.Now()}}); err != nil {
		t.Fatal(err)
	}
	if err := d.SetAvailability(ctx, []model.AppCountry{{AppID: s.App.ID, CountryCode: "us", Available: false, CheckedAt: db.Now()}}); err != nil {
		t.Fatal(err)
	}
	g := &model.Group{ExternalID: fmt.Sprintf("portable-%d", nextSeed()), Name: "Portable"}
	if err := d.SaveGroup(ctx, g); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.AddGroupMembers(ctx, g.ID, []int64{s.User.ID}, []int64{s.Device.ID}, db.Now()); err != nil {
		t.Fatal(err)
	}
	it := &model.OutboxItem{AccountID: s.Account.ID, Action: model.OutboxAssociate, AdamID: s.App.AdamID, PricingParam: "STDQ",
		AssignmentID: &s.Assignment.ID, SerialNumber: s.Assignment.SerialNumber, Status: model.OutboxQueued, NotBefore: db.Now().Add(-time.Second)}
	if err := d.InsertOutbox(ctx, it); err != nil {
		t.Fatal(err)
	}
	items, err := d.QueuedOutbox(ctx, s.Account.ID, db.Now(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.DropObsoleteOutbox(ctx, items); err != nil {
		t.Fatal(err)
	}
	if err := d.ReleaseLease(ctx, "portable-test", "me"); err != nil {
		t.Fatal(err)
	}
}

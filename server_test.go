package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"orchard/resolvers"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader in different goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestServeFreshInstall is the README's first command: on a fresh SQLite database the service
// starts, prints an ADMIN key once and the GraphiQL address, and `{ viewer { role } }` with
// that key answers ADMIN. A restart prints no key.
func TestServeFreshInstall(t *testing.T) {
	dir := t.TempDir()
	env := []string{"ORCHARD_DATABASE=sqlite:" + filepath.Join(dir, "orchard.db"), "ORCHARD_LISTEN=127.0.0.1:0"}
	start := func() (base, out string, stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		var stdout, stderr syncBuffer
		done := make(chan error, 1)
		go func() { done <- run(ctx, nil, env, &stdout, &stderr) }()
		re := regexp.MustCompile(`listening on (http://\S+)`)
		deadline := time.Now().Add(20 * time.Second)
		for !re.MatchString(stdout.String()) {
			select {
			case err := <-done:
				t.Fatalf("serve stopped: %v\nstderr: %s", err, stderr.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("serve did not start; stderr: %s", stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		return re.FindStringSubmatch(stdout.String())[1], stdout.String(), func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve returned %v", err)
			}
			if strings.Contains(stderr.String(), "orch_") {
				t.Errorf("the key leaked into the log: %s", stderr.String())
			}
		}
	}
	base, out, stop := start()
	key := regexp.MustCompile(`orch_[A-Za-z0-9_-]+`).FindString(out)
	if key == "" {
		t.Fatalf("no key printed:\n%s", out)
	}
	if !strings.Contains(out, "GraphiQL: "+base+"/") {
		t.Errorf("no GraphiQL address in:\n%s", out)
	}
	body := `{"query":"{ viewer { role } }"}`
	req, _ := http.NewRequest(http.MethodPost, base+"/graphql", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Data struct{ Viewer struct{ Role string } }
	}
	json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if got.Data.Viewer.Role != "ADMIN" {
		t.Fatalf("viewer role = %q, want ADMIN", got.Data.Viewer.Role)
	}
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ready", "/metrics": "orchard_http_requests_total", "/": "graphiql"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("GET %s: %d, body lacks %q", path, resp.StatusCode, want)
		}
	}
	stop()

	_, out, stop = start()
	if strings.Contains(out, "orch_") {
		t.Errorf("a restart printed a key again:\n%s", out)
	}
	stop()
}

// TestConfigErrors: a bad setting stops the start with one line naming it.
func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	db := "ORCHARD_DATABASE=sqlite:" + filepath.Join(dir, "x.db")
	tests := []struct {
		env  []string
		args []string
		want string
	}{
		{[]string{db, "ORCHARD_LISTEN=nonsense"}, nil, "ORCHARD_LISTEN"},
		{[]string{"ORCHARD_DATABASE=postgres://x"}, nil, "ORCHARD_DATABASE"},
		{[]string{"ORCHARD_DATABASE=mysql://root:hunter2@127.0.0.1:3306/"}, nil, "ORCHARD_DATABASE"},
		{[]string{db, "ORCHARD_SYNC_INTERVAL=soon"}, nil, "ORCHARD_SYNC_INTERVAL"},
		{[]string{db, "ORCHARD_SYNC_INTERVAL=1s"}, nil, "ORCHARD_SYNC_INTERVAL"},
		{[]string{db, "ORCHARD_SECRET_KEY=short"}, nil, "ORCHARD_SECRET_KEY"},
		{[]string{"ORCHARD_DATABASE=mysql://root@127.0.0.1:3306/x"}, nil, "ORCHARD_SECRET_KEY"},
		{[]string{db, "ORCHARD_PUBLIC_URL=http://example.com"}, nil, "ORCHARD_PUBLIC_URL"},
		{[]string{db, "ORCHARD_APPLE_URL=ftp://x"}, nil, "ORCHARD_APPLE_URL"},
		{[]string{db, "ORCHARD_INTROSPECTION=maybe"}, nil, "ORCHARD_INTROSPECTION"},
		{[]string{db, "ORCHARD_LOG_LEVEL=loud"}, nil, "ORCHARD_LOG_LEVEL"},
		{[]string{db, "ORCHARD_SYNCINTERVAL=5m"}, nil, "unknown setting ORCHARD_SYNCINTERVAL"},
		{[]string{db}, []string{"-sync-interval", "2x"}, "ORCHARD_SYNC_INTERVAL"},
		{[]string{db, "ORCHARD_OPERATION_TIMEOUT=1ms"}, nil, "ORCHARD_OPERATION_TIMEOUT"},
		{[]string{db, "ORCHARD_MAX_RESPONSE_BYTES=lots"}, nil, "ORCHARD_MAX_RESPONSE_BYTES"},
		{[]string{db, "ORCHARD_WS_INIT_TIMEOUT=never"}, nil, "ORCHARD_WS_INIT_TIMEOUT"},
		{[]string{db, "ORCHARD_WS_MAX_PER_KEY=-1"}, nil, "ORCHARD_WS_MAX_PER_KEY"},
		{[]string{db, "ORCHARD_WS_MAX_PER_ADDRESS=x"}, nil, "ORCHARD_WS_MAX_PER_ADDRESS"},
	}
	for _, tt := range tests {
		_, err := loadConfig(tt.args, tt.env, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("env %v args %v: error %v, want one line naming %s", tt.env, tt.args, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error leaks the password: %v", err)
		}
	}
	if _, err := loadConfig(nil, []string{db}, io.Discard); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

// TestTransportSettings: the GraphQL transport's settings reach the endpoint's limits; a cap of
// 0 is no cap (negative there).
func TestTransportSettings(t *testing.T) {
	db := "ORCHARD_DATABASE=sqlite:" + filepath.Join(t.TempDir(), "x.db")
	tests := []struct {
		env  []string
		want resolvers.Limits
	}{
		{[]string{db}, resolvers.Limits{Timeout: 30 * time.Second, ResponseBytes: 4 << 20, WSInitTimeout: 10 * time.Second, WSPerKey: 32, WSPerAddress: 64}},
		{[]string{db, "ORCHARD_OPERATION_TIMEOUT=5s", "ORCHARD_MAX_RESPONSE_BYTES=65536", "ORCHARD_WS_INIT_TIMEOUT=2s", "ORCHARD_WS_MAX_PER_KEY=0", "ORCHARD_WS_MAX_PER_ADDRESS=500"},
			resolvers.Limits{Timeout: 5 * time.Second, ResponseBytes: 65536, WSInitTimeout: 2 * time.Second, WSPerKey: -1, WSPerAddress: 500}},
	}
	for _, tt := range tests {
		cfg, err := loadConfig(nil, tt.env, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tt.want, cfg.transportLimits()); diff != "" {
			t.Errorf("env %v: limits mismatch (-want +got):\n%s", tt.env, diff)
		}
	}
}

// TestAPIKeyCommand creates, lists and revokes a key from the command line.
func TestAPIKeyCommand(t *testing.T) {
	env := []string{"ORCHARD_DATABASE=sqlite:" + filepath.Join(t.TempDir(), "orchard.db")}
	var out bytes.Buffer
	ctx := context.Background()
	if err := run(ctx, []string{"apikey", "create", "-name", "ci", "-role", "operator"}, env, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`created API key 1 "ci" with role OPERATOR.*\norch_`).MatchString(out.String()) {
		t.Fatalf("create printed %q", out.String())
	}
	out.Reset()
	if err := run(ctx, []string{"apikey", "revoke", "1"}, env, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run(ctx, []string{"apikey", "list", "-all"}, env, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "ci") || strings.Contains(out.String(), "orch_") && !strings.Contains(out.String(), "…") {
		t.Fatalf("list printed %q", out.String())
	}
	if err := run(ctx, []string{"apikey", "create", "-name", "x", "-role", "boss"}, env, io.Discard, io.Discard); err == nil {
		t.Fatal("a bad role was accepted")
	}
	if err := run(ctx, []string{"migrate"}, env, &out, io.Discard); err != nil || !strings.Contains(out.String(), "up to date") {
		t.Fatalf("migrate: %v %q", err, out.String())
	}
}

// TestCLI: the command line by convention. -h and help exit 0 and list the commands; a
// command's -h has no side effect (no database file appears); version prints the build;
// a command that reads a database refuses a path where there is none, in one line; a usage
// mistake is one line that main turns into exit status 2.
func TestCLI(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	env := []string{"ORCHARD_DATABASE=sqlite:" + filepath.Join(dir, "orchard.db")}
	ctx := context.Background()
	commands := []string{"serve", "migrate", "apikey", "applesim", "version", "help"}
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}} {
		var out bytes.Buffer
		if err := run(ctx, args, env, &out, &out); err != nil {
			t.Errorf("orchard %v: %v", args, err)
		}
		for _, c := range commands {
			if !regexp.MustCompile(`(?m)^\s+` + c + `\b`).MatchString(out.String()) {
				t.Errorf("orchard %v does not list %s:\n%s", args, c, out.String())
			}
		}
	}
	for _, tt := range []struct {
		args []string
		want []string // in the help
		not  []string
	}{
		{[]string{"serve", "-h"}, []string{"--sync-interval duration", "--shutdown-timeout duration", "--introspection ", "[$ORCHARD_LISTEN]", "--demo"}, []string{"--sync-interval string", "--all"}},
		{[]string{"apikey", "-h"}, []string{"create", "list", "revoke"}, []string{"--listen"}},
		{[]string{"apikey", "list", "-h"}, []string{"--database string", "--all"}, []string{"--role", "--listen"}},
		{[]string{"apikey", "create", "-h"}, []string{"--name string", "--role string"}, []string{"--all"}},
		{[]string{"migrate", "-h"}, []string{"--database string"}, []string{"--listen"}},
		{[]string{"help", "apikey"}, []string{"create", "list", "revoke"}, nil},
	} {
		var out bytes.Buffer
		if err := run(ctx, tt.args, env, &out, &out); err != nil {
			t.Errorf("orchard %v: %v", tt.args, err)
		}
		for _, w := range tt.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("orchard %v lacks %q:\n%s", tt.args, w, out.String())
			}
		}
		for _, n := range tt.not {
			if strings.Contains(out.String(), n) {
				t.Errorf("orchard %v shows %q:\n%s", tt.args, n, out.String())
			}
		}
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*")); len(files) > 0 {
		t.Errorf("help created files: %v", files)
	}

	for _, args := range [][]string{{"version"}, {"-version"}} {
		var out bytes.Buffer
		if err := run(ctx, args, env, &out, io.Discard); err != nil {
			t.Fatalf("orchard %v: %v", args, err)
		}
		if !regexp.MustCompile(`^orchard \S+\ncommit: \S+.*\ngo: go1\.\d+`).MatchString(out.String()) {
			t.Errorf("orchard %v printed %q", args, out.String())
		}
	}

	for _, tt := range []struct {
		args  []string
		want  string
		usage bool
	}{
		{[]string{"apikey", "list", "-database", "sqlite:/nonexistent/x.db"}, "no database at /nonexistent/x.db", false},
		{[]string{"apikey", "revoke", "-database", "sqlite:" + filepath.Join(dir, "typo.db"), "1"}, "no database at", false},
		{[]string{"bogus"}, `unknown command "bogus"`, true},
		{[]string{"-bogus"}, "-bogus", true},
		{[]string{"apikey"}, "apikey needs a command", true},
		{[]string{"apikey", "revoke"}, "orchard apikey revoke ID", true},
		{[]string{"-sync-interval", "2x"}, `ORCHARD_SYNC_INTERVAL: "2x" is not a duration`, true},
		{[]string{"serve", "extra"}, `unexpected argument "extra"`, true},
	} {
		err := run(ctx, tt.args, env, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("orchard %v: error %v, want one line with %q", tt.args, err, tt.want)
			continue
		}
		if errors.Is(err, errUsage) != tt.usage {
			t.Errorf("orchard %v: usage error %v, want %v", tt.args, errors.Is(err, errUsage), tt.usage)
		}
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*")); len(files) > 0 {
		t.Errorf("refused commands created files: %v", files)
	}
}

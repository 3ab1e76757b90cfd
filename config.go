package main

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v3"

	"orchard/db"
	"orchard/resolvers"
)

// Config is the service's configuration, from ORCHARD_* environment variables and the flags
// of the same names (flags win). Every value is checked before anything starts; a bad one
// stops the start with one line naming the setting.
type Config struct {
	Listen              string
	Database            *db.Target
	AppleURL            string
	LookupURL           string
	SyncInterval        time.Duration
	IncrementalInterval time.Duration
	// AppleConcurrency caps the requests to Apple in flight at once (0: no cap).
	AppleConcurrency int
	// SecretKey is the AES-256 key that seals content tokens at rest.
	SecretKey []byte
	// SecretKeySource says where the key came from (never the key itself), for the log.
	SecretKeySource string
	PublicURL       string
	Introspection   bool
	LogLevel        slog.Level
	ShutdownTimeout time.Duration
	// GraphQL transport limits (ORCHARD_OPERATION_TIMEOUT, ORCHARD_MAX_RESPONSE_BYTES,
	// ORCHARD_WS_INIT_TIMEOUT, ORCHARD_WS_MAX_PER_KEY, ORCHARD_WS_MAX_PER_ADDRESS), as
	// resolvers.Limits takes them (a cap of 0 is no cap, -1 there).
	OperationTimeout time.Duration
	MaxResponseBytes int
	WSInitTimeout    time.Duration
	WSMaxPerKey      int
	WSMaxPerAddress  int
	Demo             bool
	// MetricsAddr, when set, is the separate listener GET /metrics is served on (and then not
	// on Listen); MetricsToken, when set, is the bearer token GET /metrics requires.
	MetricsAddr, MetricsToken string
	// Env is the whole environment, for the settings of other conventions (OTEL_*).
	Env map[string]string
}

// setting describes one configuration value: its environment variable, its flag, its default
// and its kind (the flag's type, shown in -h: a duration or a bool, not a string).
type setting struct {
	env, flag, def, help string
	kind                 settingKind
}

type settingKind int

const (
	kindString settingKind = iota
	kindDuration
	kindBool
)

var settings = []setting{
	{"ORCHARD_LISTEN", "listen", ":8080", "address to listen on", kindString},
	{"ORCHARD_DATABASE", "database", "sqlite:orchard.db", "sqlite:PATH or mysql://USER:PASS@HOST:PORT/DB", kindString},
	{"ORCHARD_APPLE_URL", "apple-url", "https://vpp.itunes.apple.com/mdm/v2", "base URL of Apple's license API (v2)", kindString},
	{"ORCHARD_LOOKUP_URL", "lookup-url", "https://uclient-api.itunes.apple.com/WebObjects/MZStorePlatform.woa/wa/lookup", "app metadata lookup URL", kindString},
	{"ORCHARD_SYNC_INTERVAL", "sync-interval", "30m", "time between full reconciles of an account", kindDuration},
	{"ORCHARD_INCREMENTAL_INTERVAL", "incremental-interval", "5m", "time between incremental (sinceVersionId) passes", kindDuration},
	{"ORCHARD_APPLE_CONCURRENCY", "apple-concurrency", "16", "requests to Apple in flight at once, across all accounts (0: no cap); each token also keeps Apple's own request rate", kindString},
	{"ORCHARD_SECRET_KEY", "secret-key", "", "32-byte key (64 hex chars or base64) sealing tokens at rest; with SQLite, a key file beside the database is created when unset", kindString},
	{"ORCHARD_PUBLIC_URL", "public-url", "", "public https URL of this service, for Apple notifications; unset: no notifications", kindString},
	{"ORCHARD_INTROSPECTION", "introspection", "true", "allow GraphQL introspection (GraphiQL needs it)", kindBool},
	{"ORCHARD_LOG_LEVEL", "log-level", "info", "debug, info, warn or error", kindString},
	{"ORCHARD_SHUTDOWN_TIMEOUT", "shutdown-timeout", "20s", "time to finish requests and background work on shutdown", kindDuration},
	// GraphQL transport limits (see resolvers.Limits).
	{"ORCHARD_OPERATION_TIMEOUT", "operation-timeout", "30s", "server-side time budget of each GraphQL query and mutation, its checks included", kindDuration},
	{"ORCHARD_MAX_RESPONSE_BYTES", "max-response-bytes", "4194304", "largest GraphQL response (each subscription event) sent; a larger one answers RESPONSE_TOO_LARGE", kindString},
	{"ORCHARD_WS_INIT_TIMEOUT", "ws-init-timeout", "10s", "time a WebSocket has to send connection_init (then it is closed with 4408)", kindDuration},
	{"ORCHARD_WS_MAX_PER_KEY", "ws-max-per-key", "32", "WebSockets open at once per API key (0: no cap; one more is closed with 4429)", kindString},
	{"ORCHARD_WS_MAX_PER_ADDRESS", "ws-max-per-address", "64", "WebSockets open at once per remote address, before authentication (0: no cap; behind a proxy, every client has its address)", kindString},
	// Protecting /metrics (README: Security).
	{"ORCHARD_METRICS_ADDR", "metrics-addr", "", "separate address for GET /metrics, such as 127.0.0.1:9090; unset: /metrics is served on ORCHARD_LISTEN", kindString},
	{"ORCHARD_METRICS_TOKEN", "metrics-token", "", "bearer token (16+ characters) GET /metrics requires; unset: /metrics needs none", kindString},
}

// envMap turns KEY=VALUE pairs into a map (the last one of a key wins, as in a shell).
func envMap(env []string) map[string]string {
	m := map[string]string{}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// envSource is a flag's environment variable, read from the environment run was given (not
// from os.Getenv, so that tests pass their own). It shows in -h as [$NAME].
type envSource struct {
	env map[string]string
	key string
}

func (e envSource) Lookup() (string, bool) { v, ok := e.env[e.key]; return v, ok }
func (e envSource) IsFromEnv() bool        { return true }
func (e envSource) Key() string            { return e.key }
func (e envSource) String() string         { return fmt.Sprintf("environment variable %q", e.key) }
func (e envSource) GoString() string       { return fmt.Sprintf("envSource{%q}", e.key) }

func fromEnv(env map[string]string, key string) cli.ValueSourceChain {
	return cli.NewValueSourceChain(envSource{env, key})
}

// settingFlag is the flag of one setting, typed by its kind, with its variable as its source.
func settingFlag(s setting, env map[string]string) cli.Flag {
	src := fromEnv(env, s.env)
	switch s.kind {
	case kindDuration:
		d, _ := time.ParseDuration(s.def)
		return &cli.DurationFlag{Name: s.flag, Value: d, Usage: s.help, Sources: src}
	case kindBool:
		b, _ := strconv.ParseBool(s.def)
		return &cli.BoolFlag{Name: s.flag, Value: b, Usage: s.help, Sources: src}
	}
	return &cli.StringFlag{Name: s.flag, Value: s.def, Usage: s.help, Sources: src}
}

// serveFlags are the flags of the serve command: one per setting, and -demo.
func serveFlags(env map[string]string) []cli.Flag {
	var fs []cli.Flag
	for _, s := range settings {
		fs = append(fs, settingFlag(s, env))
	}
	return append(fs, &cli.BoolFlag{Name: "demo", Usage: "start an in-process Apple simulator with three generated accounts, add them and sync (for trying Orchard out; database default: " + demoDatabase + ")"})
}

// loadConfig reads the configuration of the serve command from env and args (the flags of
// `orchard serve`).
func loadConfig(args []string, env []string, stderr io.Writer) (*Config, error) {
	var cfg *Config
	cmd := serveCommand(envMap(env), func(_ context.Context, c *Config) error { cfg = c; return nil })
	cmd.Writer, cmd.ErrWriter = stderr, stderr
	cmd.ExitErrHandler = func(context.Context, *cli.Command, error) {}
	if err := cmd.Run(context.Background(), append([]string{"orchard serve"}, args...)); err != nil {
		return nil, flagError(err)
	}
	if cfg == nil {
		return nil, errHelpShown
	}
	return cfg, nil
}

// errHelpShown is loadConfig's answer to -h: the help is printed, there is nothing to run.
var errHelpShown = errors.New("help shown")

// configFromCommand checks the serve command's parsed settings and builds the Config.
func configFromCommand(cmd *cli.Command, envMap map[string]string) (*Config, error) {
	if cmd.Args().Present() {
		return nil, usageErrorf("unexpected argument %q (commands: %s)", cmd.Args().First(), commandNames)
	}
	known := map[string]bool{}
	vals := map[string]*string{}
	for _, s := range settings {
		known[s.env] = true
		var v string
		switch s.kind {
		case kindDuration:
			v = cmd.Duration(s.flag).String()
		case kindBool:
			v = strconv.FormatBool(cmd.Bool(s.flag))
		default:
			v = cmd.String(s.flag)
		}
		vals[s.env] = &v
	}
	var unknown []string
	for k := range envMap {
		if strings.HasPrefix(k, "ORCHARD_") && !known[k] && !strings.HasPrefix(k, "ORCHARD_TEST_") {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("unknown setting %s (known: %s)", strings.Join(unknown, ", "), knownNames())
	}
	demo := cmd.Bool("demo")
	if demo {
		// The settings given explicitly, by environment or flag (an empty variable is not
		// "given").
		set := map[string]bool{}
		for _, s := range settings {
			if strings.TrimSpace(envMap[s.env]) != "" {
				set[s.env] = true
			}
		}
		for _, s := range settings {
			// Given as a flag: set, and not merely read from its (empty) variable.
			if ev, inEnv := envMap[s.env]; cmd.IsSet(s.flag) && (!inEnv || *vals[s.env] != ev) {
				set[s.env] = true
			}
		}
		if err := demoConfig(set, vals); err != nil {
			return nil, err
		}
	}
	get := func(name string) string { return strings.TrimSpace(*vals[name]) }

	c := &Config{Demo: demo, Env: envMap}
	var err error
	if c.Listen, err = parseListen(get("ORCHARD_LISTEN")); err != nil {
		return nil, fmt.Errorf("ORCHARD_LISTEN: %w", err)
	}
	if c.Database, err = db.ParseTarget(get("ORCHARD_DATABASE")); err != nil {
		return nil, fmt.Errorf("ORCHARD_DATABASE: %w", err)
	}
	if c.AppleURL, err = parseURL(get("ORCHARD_APPLE_URL"), false); err != nil {
		return nil, fmt.Errorf("ORCHARD_APPLE_URL: %w", err)
	}
	if c.LookupURL, err = parseURL(get("ORCHARD_LOOKUP_URL"), false); err != nil {
		return nil, fmt.Errorf("ORCHARD_LOOKUP_URL: %w", err)
	}
	if c.SyncInterval, err = parseInterval(get("ORCHARD_SYNC_INTERVAL"), time.Minute, 24*time.Hour); err != nil {
		return nil, fmt.Errorf("ORCHARD_SYNC_INTERVAL: %w", err)
	}
	if c.IncrementalInterval, err = parseInterval(get("ORCHARD_INCREMENTAL_INTERVAL"), 10*time.Second, 24*time.Hour); err != nil {
		return nil, fmt.Errorf("ORCHARD_INCREMENTAL_INTERVAL: %w", err)
	}
	if c.IncrementalInterval > c.SyncInterval {
		return nil, fmt.Errorf("ORCHARD_INCREMENTAL_INTERVAL (%s) must not be longer than ORCHARD_SYNC_INTERVAL (%s)", c.IncrementalInterval, c.SyncInterval)
	}
	if c.AppleConcurrency, err = parseCount(get("ORCHARD_APPLE_CONCURRENCY"), 0, 1024); err != nil {
		return nil, fmt.Errorf("ORCHARD_APPLE_CONCURRENCY: %w", err)
	}
	if c.SecretKey, c.SecretKeySource, err = secretKey(get("ORCHARD_SECRET_KEY"), c.Database); err != nil {
		return nil, fmt.Errorf("ORCHARD_SECRET_KEY: %w", err)
	}
	if v := get("ORCHARD_PUBLIC_URL"); v != "" {
		if c.PublicURL, err = parseURL(v, true); err != nil {
			return nil, fmt.Errorf("ORCHARD_PUBLIC_URL: %w", err)
		}
	}
	c.Introspection, _ = strconv.ParseBool(get("ORCHARD_INTROSPECTION")) // a bool flag: parsed already
	if err := c.LogLevel.UnmarshalText([]byte(get("ORCHARD_LOG_LEVEL"))); err != nil {
		return nil, fmt.Errorf("ORCHARD_LOG_LEVEL: %q is not debug, info, warn or error", get("ORCHARD_LOG_LEVEL"))
	}
	if c.ShutdownTimeout, err = parseInterval(get("ORCHARD_SHUTDOWN_TIMEOUT"), time.Second, 10*time.Minute); err != nil {
		return nil, fmt.Errorf("ORCHARD_SHUTDOWN_TIMEOUT: %w", err)
	}
	// GraphQL transport limits.
	if c.OperationTimeout, err = parseInterval(get("ORCHARD_OPERATION_TIMEOUT"), 100*time.Millisecond, 10*time.Minute); err != nil {
		return nil, fmt.Errorf("ORCHARD_OPERATION_TIMEOUT: %w", err)
	}
	if c.MaxResponseBytes, err = parseCount(get("ORCHARD_MAX_RESPONSE_BYTES"), 1024, 1<<30); err != nil {
		return nil, fmt.Errorf("ORCHARD_MAX_RESPONSE_BYTES: %w", err)
	}
	if c.WSInitTimeout, err = parseInterval(get("ORCHARD_WS_INIT_TIMEOUT"), 100*time.Millisecond, 10*time.Minute); err != nil {
		return nil, fmt.Errorf("ORCHARD_WS_INIT_TIMEOUT: %w", err)
	}
	if c.WSMaxPerKey, err = parseCount(get("ORCHARD_WS_MAX_PER_KEY"), 0, 1<<20); err != nil {
		return nil, fmt.Errorf("ORCHARD_WS_MAX_PER_KEY: %w", err)
	}
	if c.WSMaxPerAddress, err = parseCount(get("ORCHARD_WS_MAX_PER_ADDRESS"), 0, 1<<20); err != nil {
		return nil, fmt.Errorf("ORCHARD_WS_MAX_PER_ADDRESS: %w", err)
	}
	if v := get("ORCHARD_METRICS_ADDR"); v != "" {
		if c.MetricsAddr, err = parseListen(v); err != nil {
			return nil, fmt.Errorf("ORCHARD_METRICS_ADDR: %w", err)
		}
		if _, port, _ := net.SplitHostPort(c.MetricsAddr); c.MetricsAddr == c.Listen && port != "0" {
			return nil, fmt.Errorf("ORCHARD_METRICS_ADDR: %s is ORCHARD_LISTEN; give another address, or leave it unset", c.MetricsAddr)
		}
	}
	if c.MetricsToken = get("ORCHARD_METRICS_TOKEN"); c.MetricsToken != "" && (len(c.MetricsToken) < 16 || strings.ContainsAny(c.MetricsToken, " \t\r\n")) {
		return nil, errors.New("ORCHARD_METRICS_TOKEN: must be at least 16 characters without spaces (e.g. `openssl rand -hex 16`)")
	}
	return c, nil
}

// parseCount parses a whole number from min to max.
func parseCount(s string, min, max int) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a whole number", s)
	}
	if n < min || n > max {
		return 0, fmt.Errorf("%d is out of range (%d to %d)", n, min, max)
	}
	return n, nil
}

// transportLimits are the GraphQL endpoint's limits as configured (a cap of 0 is no cap).
func (c *Config) transportLimits() resolvers.Limits {
	noCap := func(n int) int {
		if n == 0 {
			return -1
		}
		return n
	}
	return resolvers.Limits{Timeout: c.OperationTimeout, ResponseBytes: c.MaxResponseBytes, WSInitTimeout: c.WSInitTimeout,
		WSPerKey: noCap(c.WSMaxPerKey), WSPerAddress: noCap(c.WSMaxPerAddress)}
}

func knownNames() string {
	var names []string
	for _, s := range settings {
		names = append(names, s.env)
	}
	return strings.Join(names, ", ")
}

func parseListen(s string) (string, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", fmt.Errorf("%q is not HOST:PORT or :PORT", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return "", fmt.Errorf("%q has no valid port", s)
	}
	return net.JoinHostPort(host, port), nil
}

func parseURL(s string, public bool) (string, error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", fmt.Errorf("%q is not an http(s) URL", s)
	}
	if public && u.Scheme != "https" && !isLocal(u.Hostname()) {
		return "", fmt.Errorf("%q must be https: Apple delivers notifications only to https URLs", s)
	}
	return strings.TrimRight(s, "/"), nil
}

func isLocal(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func parseInterval(s string, min, max time.Duration) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration such as 30m or 1h", s)
	}
	if d < min || d > max {
		return 0, fmt.Errorf("%s is out of range (%s to %s)", d, min, max)
	}
	return d, nil
}

// secretKey decodes the key, or with SQLite and no key uses (creating it once) a key file
// beside the database, so that `go run .` works with no set-up. MySQL deployments run several
// replicas that must share one key, so there it must be given.
func secretKey(s string, t *db.Target) ([]byte, string, error) {
	if s != "" {
		k, err := decodeKey(s)
		return k, "ORCHARD_SECRET_KEY", err
	}
	if t.Dialect != db.SQLite {
		return nil, "", errors.New("required with MySQL (32 bytes as 64 hex characters or base64; e.g. `openssl rand -hex 32`)")
	}
	path := t.Path + ".key"
	if b, err := os.ReadFile(path); err == nil {
		k, err := decodeKey(strings.TrimSpace(string(b)))
		if err != nil {
			return nil, "", fmt.Errorf("key file %s: %w", path, err)
		}
		return k, "key file " + path, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, "", fmt.Errorf("read key file %s: %w", path, err)
	}
	k := make([]byte, 32)
	if _, err := randRead(k); err != nil {
		return nil, "", err
	}
	if err := os.WriteFile(path, []byte(hex.EncodeToString(k)+"\n"), 0o600); err != nil {
		return nil, "", fmt.Errorf("create key file %s: %w", path, err)
	}
	return k, "key file " + path + " (created)", nil
}

func decodeKey(s string) ([]byte, error) {
	if k, err := hex.DecodeString(s); err == nil && len(k) == 32 {
		return k, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil && len(k) == 32 {
			return k, nil
		}
	}
	return nil, errors.New("must be 32 bytes, as 64 hex characters or base64")
}

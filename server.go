// Command orchard is Orchard's service: a GraphQL API that keeps an exact picture of every
// Apple Apps and Books license account and hands licenses out and takes them back.
//
//	orchard [serve] [flags]        run the service (the default)
//	orchard migrate [flags]        apply database migrations and exit
//	orchard apikey create|list|revoke
//	orchard applesim [flags]       run the Apple simulator standalone
//	orchard version                print the version, commit and Go version
//
// This file wires the packages together; the command line is in cli.go, the configuration in
// config.go.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"orchard/apple"
	"orchard/db"
	"orchard/license"
	"orchard/model"
	"orchard/resolvers"
	"orchard/scheduler"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "orchard:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var randRead = rand.Read

func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}

// openDB opens and migrates the database (migrations run under a lock, so replicas that start
// together do not race).
func openDB(ctx context.Context, t *db.Target, log *slog.Logger) (*db.DB, error) {
	d, err := db.Open(ctx, t, db.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	applied, err := d.Migrate(ctx)
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("migrate %s: %w", t, err)
	}
	if len(applied) > 0 {
		log.Info("migrations applied", "database", t.String(), "versions", applied)
	}
	return d, nil
}

// serve runs the service until ctx is cancelled, then shuts down gracefully.
func serve(ctx context.Context, cfg *Config, stdout, stderr io.Writer) error {
	log := newLogger(stderr, cfg.LogLevel)
	var dm *demo
	stopTracing, err := setupTracing(ctx, cfg.Env, log)
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := stopTracing(ctx); err != nil {
			log.Warn("flush the last spans", "error", err)
		}
	}()
	if cfg.Demo {
		// The simulator is started, and cfg pointed at it, before anything is built from cfg;
		// it needs Orchard's address, so the demo opens Orchard's listener (demo.go).
		if dm, err = startDemo(cfg, log); err != nil {
			return err
		}
		defer dm.Close()
	}
	d, err := openDB(ctx, cfg.Database, log)
	if err != nil {
		return err
	}
	defer d.Close()
	sealer, err := license.NewSealer(cfg.SecretKey)
	if err != nil {
		return fmt.Errorf("ORCHARD_SECRET_KEY: %w", err)
	}
	mdm, err := instanceMDM(ctx, d)
	if err != nil {
		return err
	}
	api := apple.New(apple.Config{BaseURL: cfg.AppleURL, LookupURL: cfg.LookupURL, MDM: mdm, HTTPClient: appleHTTPClient(),
		Logger: log.With("component", "apple"), Observe: scheduler.ObserveApple, MaxConcurrent: cfg.AppleConcurrency})
	svc := license.New(d, license.Options{Logger: log, Apple: api, Sealer: sealer, PublicURL: cfg.PublicURL})
	sched := scheduler.New(scheduler.Config{DB: d, License: svc, Apple: api, Log: log.With("component", "scheduler"),
		SyncInterval: cfg.SyncInterval, IncrementalInterval: cfg.IncrementalInterval})
	svc.SetKick(sched.Kick)
	secret, created, err := svc.BootstrapAdminKey(ctx)
	if err != nil {
		return fmt.Errorf("create the first admin key: %w", err)
	}

	auth := resolvers.NewAuthenticator(d, db.Now)
	mux := http.NewServeMux()
	streams := resolvers.NewStreams()
	gql := resolvers.NewHandler(resolvers.Config{
		DB: d, License: svc, Auth: auth, Log: log, Introspection: cfg.Introspection, Streams: streams,
		Limits: cfg.transportLimits(),
	})
	// route: the route's server span (outermost, so the log line has the trace id), request
	// id, log line and metrics.
	route := func(name string, h http.Handler) http.Handler {
		return traced(name, resolvers.RequestLog(log, name, h))
	}
	mux.Handle("/graphql", route("graphql", sameOriginWebSocket(log, gql)))
	mux.Handle("GET /{$}", route("graphiql", resolvers.GraphiQL("/graphql")))
	mux.Handle("GET "+resolvers.GraphiQLAssetPrefix, route("graphiql_assets", resolvers.GraphiQLAssets()))
	mux.Handle("GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintln(w, "ok")
	}))
	mux.Handle("GET /readyz", route("readyz", readyz(d)))
	registerGauges(d, log)
	metrics := metricsHandler(cfg.MetricsToken)
	if cfg.MetricsAddr == "" {
		mux.Handle("GET /metrics", metrics)
	}
	mux.Handle("POST /apple/notifications/{accountID}", route("apple_notifications", sched.NotificationHandler()))

	ln := dm.listener()
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return fmt.Errorf("ORCHARD_LISTEN: cannot listen on %s: %w", cfg.Listen, err)
		}
	}
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	var metricsSrv *http.Server
	if cfg.MetricsAddr != "" {
		mln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("ORCHARD_METRICS_ADDR: cannot listen on %s: %w", cfg.MetricsAddr, err)
		}
		mmux := http.NewServeMux()
		mmux.Handle("GET /metrics", metrics)
		metricsSrv = &http.Server{Handler: mmux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: srv.ErrorLog}
		go func() { _ = metricsSrv.Serve(mln) }()
		defer metricsSrv.Close()
		log.Info("metrics on a separate listener", "listen", mln.Addr().String())
		fmt.Fprintf(stdout, "Metrics: http://%s/metrics\n", displayAddr(mln.Addr()))
	}
	base := "http://" + displayAddr(ln.Addr())
	log.Info("orchard started", "listen", ln.Addr().String(), "database", cfg.Database.String(), "secret_key", cfg.SecretKeySource)
	fmt.Fprintf(stdout, "Orchard is listening on %s\n", base)
	fmt.Fprintf(stdout, "GraphiQL: %s/  (GraphQL endpoint: %s/graphql)\n", base, base)
	if created {
		fmt.Fprintf(stdout, "\nThis is a fresh install: an ADMIN API key was created. It is shown only this once;\nstore it now and send it as 'Authorization: Bearer <key>':\n\n    %s\n\n", secret)
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	var serveErr error
	if dm != nil {
		// Once Orchard answers (the simulator notifies it while an account is added) and
		// before the scheduler starts syncing (SQLite has one writer).
		serveErr = dm.addAccounts(ctx, d, svc, stdout, cfg.Database, created)
	}
	schedCtx, stopSched := context.WithCancel(context.WithoutCancel(ctx))
	schedDone := make(chan struct{})
	go func() {
		defer close(schedDone)
		_ = sched.Run(schedCtx)
	}()
	if serveErr == nil {
		select {
		case err := <-errc:
			serveErr = fmt.Errorf("http server: %w", err)
		case <-ctx.Done():
		}
	}
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	if err := shutdown(srv, streams, stopSched, schedDone, cfg.ShutdownTimeout); err != nil {
		log.Warn("shutdown did not finish in time", "error", err)
		// A run that could not finish its work exits non-zero, so that a supervisor or an
		// operator sees it (requests were cut off, or background work was abandoned).
		serveErr = errors.Join(serveErr, err)
	}
	log.Info("stopped")
	return serveErr
}

// sameOriginWebSocket refuses a WebSocket upgrade whose Origin is not this server's own host
// (a page of another site opening a socket with the browser's credentials), as the WebSocket
// library would, but before it does: the refusal is a 403 with a coded GraphQL error, and one
// JSON log line (slog) where the Origin is a quoted, bounded field — not the library's
// free-text line that quotes the header as it came. Requests without an Origin header (not from
// a browser) and same-origin ones pass.
func sameOriginWebSocket(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" || !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			next.ServeHTTP(w, r)
			return
		}
		if u, err := url.Parse(origin); err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host) {
			next.ServeHTTP(w, r)
			return
		}
		log.LogAttrs(r.Context(), slog.LevelWarn, "cross-origin WebSocket upgrade refused",
			slog.String("origin", model.Truncate(origin, 200)), slog.String("host", model.Truncate(r.Host, 200)))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, `{"errors":[{"message":"a WebSocket from another origin is not accepted","extensions":{"code":"FORBIDDEN"}}]}`+"\n")
	})
}

// shutdown stops the service within timeout: the server stops accepting and finishes the
// requests in flight while WebSockets and event streams are told to go away (close code 1001),
// then background work stops at its next step; what it had not finished is picked up again at
// the next start (by this or another replica), since all of it lives in the database. It
// returns an error naming what did not finish in time.
func shutdown(srv *http.Server, streams *resolvers.Streams, stopSched func(), schedDone <-chan struct{}, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var errs []string
	streamsDone := make(chan error, 1)
	go func() { streamsDone <- streams.Close(ctx) }()
	if err := srv.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Sprintf("requests still in flight after %s (%v)", timeout, err))
	}
	if err := <-streamsDone; err != nil {
		errs = append(errs, fmt.Sprintf("subscriptions still open after %s (%v)", timeout, err))
	}
	stopSched()
	select {
	case <-schedDone:
	case <-ctx.Done():
		errs = append(errs, fmt.Sprintf("background work still running after %s", timeout))
	}
	if len(errs) > 0 {
		return errors.New("shutdown: " + strings.Join(errs, "; "))
	}
	return nil
}

// registerGauges adds the gauges read from the database to /metrics (once per process: tests
// start the service several times).
func registerGauges(d *db.DB, log *slog.Logger) {
	gauges.mu.Lock()
	defer gauges.mu.Unlock()
	if gauges.c == nil {
		gauges.c = &scheduler.GaugeCollector{}
		prometheus.MustRegister(gauges.c)
	}
	gauges.c.Use(d, log)
}

var gauges struct {
	mu sync.Mutex
	c  *scheduler.GaugeCollector
}

// instanceMDM is this installation's claim on Apple accounts (mdmInfo): its id is created once
// and shared by every replica through the database, so replicas never look like "another
// manager" to each other.
func instanceMDM(ctx context.Context, d *db.DB) (apple.MDMInfo, error) {
	b := make([]byte, 16)
	if _, err := randRead(b); err != nil {
		return apple.MDMInfo{}, err
	}
	id, _, err := d.ClaimSetting(ctx, "mdm_id", fmt.Sprintf("orchard-%x", b))
	if err != nil {
		return apple.MDMInfo{}, fmt.Errorf("read this installation's id: %w", err)
	}
	return apple.MDMInfo{ID: id, Name: "Orchard", Metadata: "orchard/1"}, nil
}

// readyz answers 200 when the database answers and its schema is current.
func readyz(d *db.DB) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "text/plain")
		if err := d.Ping(ctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "database unreachable")
			return
		}
		st, err := d.Status(ctx)
		if err != nil || !st.Current() {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "database schema not current (applied %d, expected %d)\n", st.Applied, st.Latest)
			return
		}
		fmt.Fprintln(w, "ready")
	})
}

func displayAddr(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	if tcp.IP == nil || tcp.IP.IsUnspecified() {
		return fmt.Sprintf("localhost:%d", tcp.Port)
	}
	return tcp.String()
}
